//! Compliance of one virtual account (C-6, C-11): licenses valid now against usage reported by
//! its product instances and licenses reserved for offline devices, with higher tiers
//! lending to lower ones.
//!
//! Each tag's own licenses serve its own usage and reservations first; only a surplus is lent,
//! and a shortage borrows from the tags that fulfil it in catalogue order. Lower tiers are
//! served first, so the result is the same whatever order the counts arrive in.

use crate::catalog::Catalog;
use serde::Serialize;
use std::collections::BTreeMap;

/// Counts of one tag in one pool after substitution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagBalance {
    pub tag: String,
    /// Licenses valid now.
    pub purchased: i64,
    /// Reported in use by instances heard from recently.
    pub in_use: i64,
    /// Taken out of the pool by offline reservations: counted like usage, by devices that never report.
    pub reserved: i64,
    /// Given to lower tiers (shown as `(-N)`).
    pub lent: i64,
    /// Taken from higher tiers (shown as `(+N)`).
    pub borrowed: i64,
}

impl TagBalance {
    /// What is left: negative when usage and reservations exceed what the tag has and could borrow.
    pub fn balance(&self) -> i64 {
        self.purchased + self.borrowed - self.in_use - self.reserved - self.lent
    }

    /// Usage and reservations beyond the tag's own licenses: what it must borrow.
    fn shortage(&self) -> i64 {
        self.in_use + self.reserved - self.purchased
    }

    pub fn in_compliance(&self) -> bool {
        self.balance() >= 0
    }

    /// `12 (-10)`, `0 (+10)` or `5`: the seed 000 notation for purchased with lending.
    pub fn purchased_with_lending(&self) -> String {
        let shift = self.borrowed - self.lent;
        match shift {
            0 => self.purchased.to_string(),
            s if s > 0 => format!("{} (+{s})", self.purchased),
            s => format!("{} ({s})", self.purchased),
        }
    }
}

/// One loan between tags, as the public API reports it (`licenseSubstitutions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Substitution {
    pub requested: String,
    pub fulfilled_by: String,
    pub quantity: i64,
}

/// The balances of one pool.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Ledger {
    pub tags: Vec<TagBalance>,
    pub substitutions: Vec<Substitution>,
}

/// A reservation that does not fit: how many of `tag` were asked for and how many would fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortfall {
    pub tag: String,
    pub requested: i64,
    pub available: i64,
}

impl Ledger {
    /// Computes balances from per-tag purchased, in-use and reserved counts; the cost depends on
    /// the number of tags in the pool, never on the number of instances or reservations.
    pub fn compute(
        catalog: &Catalog,
        purchased: &BTreeMap<String, i64>,
        in_use: &BTreeMap<String, i64>,
        reserved: &BTreeMap<String, i64>,
    ) -> Ledger {
        let mut names: Vec<&String> = purchased.keys().chain(in_use.keys()).chain(reserved.keys()).collect();
        names.sort_by(|a, b| catalog.rank(a).cmp(&catalog.rank(b)).then(a.cmp(b)));
        names.dedup();
        let count = |map: &BTreeMap<String, i64>, tag: &str| map.get(tag).copied().unwrap_or(0).max(0);
        let mut tags: Vec<TagBalance> = names
            .iter()
            .map(|t| TagBalance {
                tag: (*t).clone(),
                purchased: count(purchased, t),
                in_use: count(in_use, t),
                reserved: count(reserved, t),
                lent: 0,
                borrowed: 0,
            })
            .collect();
        let position: BTreeMap<String, usize> = tags.iter().enumerate().map(|(i, t)| (t.tag.clone(), i)).collect();
        let mut substitutions = Vec::new();
        for i in 0..tags.len() {
            let mut shortage = tags[i].shortage();
            if shortage <= 0 {
                continue;
            }
            for lender in catalog.fulfilled_by(&tags[i].tag) {
                let Some(&j) = position.get(lender) else { continue };
                let surplus = tags[j].balance().max(0);
                let take = surplus.min(shortage);
                if take == 0 {
                    continue;
                }
                tags[j].lent += take;
                tags[i].borrowed += take;
                shortage -= take;
                substitutions.push(Substitution {
                    requested: tags[i].tag.clone(),
                    fulfilled_by: lender.clone(),
                    quantity: take,
                });
                if shortage == 0 {
                    break;
                }
            }
        }
        Ledger { tags, substitutions }
    }

    /// Whether `extra` more licenses can be reserved in a pool with these counts. A reservation
    /// takes only what nobody uses: after it, no tag may be shorter than it was (tier lending
    /// shifts included), so devices in compliance stay so. On refusal, names the first tag (in
    /// `extra`'s order) that does not fit, with how many of it would.
    pub fn check_reservation(
        catalog: &Catalog,
        purchased: &BTreeMap<String, i64>,
        in_use: &BTreeMap<String, i64>,
        reserved: &BTreeMap<String, i64>,
        extra: &BTreeMap<String, i64>,
    ) -> Result<(), Shortfall> {
        let before = Ledger::compute(catalog, purchased, in_use, reserved);
        let fits = |more: &BTreeMap<String, i64>| {
            let mut with = reserved.clone();
            for (tag, n) in more {
                *with.entry(tag.clone()).or_default() += n;
            }
            let after = Ledger::compute(catalog, purchased, in_use, &with);
            after.tags.iter().all(|t| t.balance() >= before.get(&t.tag).map_or(0, TagBalance::balance).min(0))
        };
        let mut wanted = BTreeMap::new();
        for (tag, &requested) in extra {
            wanted.insert(tag.clone(), requested);
            if fits(&wanted) {
                continue;
            }
            // Reserving more never frees anything, so the largest quantity that fits is found by bisection.
            let (mut fit, mut unfit) = (0, requested);
            while unfit - fit > 1 {
                let mid = fit + (unfit - fit) / 2;
                wanted.insert(tag.clone(), mid);
                if fits(&wanted) {
                    fit = mid;
                } else {
                    unfit = mid;
                }
            }
            return Err(Shortfall { tag: tag.clone(), requested, available: fit });
        }
        Ok(())
    }

    pub fn get(&self, tag: &str) -> Option<&TagBalance> {
        self.tags.iter().find(|t| t.tag == tag)
    }

    /// Whether a device using `tag` is in compliance: its tag's balance is not negative.
    pub fn tag_in_compliance(&self, tag: &str) -> bool {
        self.get(tag).is_none_or(TagBalance::in_compliance)
    }

    pub fn in_compliance(&self) -> bool {
        self.tags.iter().all(TagBalance::in_compliance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn counts(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
        pairs.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    fn none() -> BTreeMap<String, i64> {
        BTreeMap::new()
    }

    #[test]
    fn seed_000_advantage_lends_to_essentials() {
        let c = Catalog::builtin();
        let l = Ledger::compute(&c, &counts(&[("ACI Advantage", 12)]), &counts(&[("ACI Essentials", 10)]), &none());
        let adv = l.get("ACI Advantage").unwrap();
        let ess = l.get("ACI Essentials").unwrap();
        assert_eq!(adv.purchased_with_lending(), "12 (-10)");
        assert_eq!(ess.purchased_with_lending(), "0 (+10)");
        assert_eq!((adv.balance(), ess.balance()), (2, 0));
        assert!(l.in_compliance());
        assert_eq!(
            l.substitutions,
            vec![Substitution {
                requested: "ACI Essentials".into(),
                fulfilled_by: "ACI Advantage".into(),
                quantity: 10
            }]
        );
    }

    #[test]
    fn own_usage_comes_before_lending() {
        let c = Catalog::builtin();
        let l = Ledger::compute(
            &c,
            &counts(&[("ACI Advantage", 12)]),
            &counts(&[("ACI Essentials", 10), ("ACI Advantage", 5)]),
            &none(),
        );
        assert_eq!(l.get("ACI Advantage").unwrap().lent, 7);
        assert!(l.tag_in_compliance("ACI Advantage"));
        assert_eq!(l.get("ACI Essentials").unwrap().balance(), -3);
        assert!(!l.tag_in_compliance("ACI Essentials"));
        assert!(!l.in_compliance());
    }

    #[test]
    fn lower_tiers_never_lend_upwards() {
        let c = Catalog::builtin();
        let l = Ledger::compute(&c, &counts(&[("ACI Essentials", 50)]), &counts(&[("ACI Advantage", 1)]), &none());
        assert!(!l.tag_in_compliance("ACI Advantage"));
        assert_eq!(l.get("ACI Essentials").unwrap().lent, 0);
    }

    #[test]
    fn generic_c9500_fulfils_model_specific_and_hcs_order() {
        let c = Catalog::builtin();
        let l = Ledger::compute(
            &c,
            &counts(&[("C9500 Network Advantage", 2)]),
            &counts(&[("C9500 32C NW Advantage", 2)]),
            &none(),
        );
        assert!(l.in_compliance());
        let l = Ledger::compute(
            &c,
            &counts(&[("HCS Cisco UCM Foundation License", 3), ("HCS Cisco UCM Standard License", 5)]),
            &counts(&[("CUCM Basic", 4)]),
            &none(),
        );
        assert_eq!(l.get("HCS Cisco UCM Foundation License").unwrap().lent, 3);
        assert_eq!(l.get("HCS Cisco UCM Standard License").unwrap().lent, 1);
    }

    #[test]
    fn unknown_tags_are_out_of_compliance_when_used() {
        let l = Ledger::compute(&Catalog::builtin(), &none(), &counts(&[("Not A Tag", 1)]), &none());
        assert!(!l.tag_in_compliance("Not A Tag"));
        assert!(l.tag_in_compliance("ACI Essentials"));
    }

    #[test]
    fn reservations_count_like_usage_and_borrow_from_higher_tiers() {
        let c = Catalog::builtin();
        let l = Ledger::compute(
            &c,
            &counts(&[("ACI Advantage", 12)]),
            &counts(&[("ACI Essentials", 6)]),
            &counts(&[("ACI Essentials", 4), ("ACI Advantage", 1)]),
        );
        let adv = l.get("ACI Advantage").unwrap();
        let ess = l.get("ACI Essentials").unwrap();
        assert_eq!((adv.reserved, adv.lent, adv.balance()), (1, 10, 1));
        assert_eq!((ess.reserved, ess.borrowed, ess.balance()), (4, 10, 0));
        assert_eq!(adv.purchased_with_lending(), "12 (-10)");
    }

    #[test]
    fn a_reservation_takes_only_what_nobody_uses() {
        let c = Catalog::builtin();
        let purchased = counts(&[("ACI Advantage", 12)]);
        let used = counts(&[("ACI Essentials", 10)]);
        let check = |reserved: &[(&str, i64)], extra: &[(&str, i64)]| {
            Ledger::check_reservation(&c, &purchased, &used, &counts(reserved), &counts(extra))
        };
        assert_eq!(check(&[], &[("ACI Advantage", 2)]), Ok(()));
        // Essentials borrow what Advantage has left.
        assert_eq!(check(&[], &[("ACI Essentials", 2)]), Ok(()));
        let short = |tag: &str, requested, available| Err(Shortfall { tag: tag.into(), requested, available });
        // Advantage's own reservation would come first and leave the devices' Essentials short.
        assert_eq!(check(&[], &[("ACI Advantage", 3)]), short("ACI Advantage", 3, 2));
        assert_eq!(check(&[("ACI Advantage", 1)], &[("ACI Essentials", 5)]), short("ACI Essentials", 5, 1));
        // Together they must fit as well.
        assert_eq!(check(&[], &[("ACI Advantage", 1), ("ACI Essentials", 2)]), short("ACI Essentials", 2, 1));
        // Lower tiers never lend upwards; an unknown tag has nothing.
        assert_eq!(check(&[], &[("ACI Premier", 1)]), short("ACI Premier", 1, 0));
        assert_eq!(check(&[], &[("Not A Tag", 1)]), short("Not A Tag", 1, 0));
    }

    fn aci() -> impl Strategy<Value = BTreeMap<String, i64>> {
        proptest::collection::btree_map(
            prop_oneof![
                Just("ACI Essentials"),
                Just("ACI Advantage"),
                Just("ACI Premier"),
                Just("CUCM Basic"),
                Just("HCS Cisco UCM Foundation License"),
                Just("HCS Cisco UCM Standard License"),
                Just("CUWL")
            ]
            .prop_map(String::from),
            0i64..1000,
            0..7,
        )
    }

    proptest! {
        #[test]
        fn counts_always_balance(purchased in aci(), used in aci(), reserved in aci()) {
            let l = Ledger::compute(&Catalog::builtin(), &purchased, &used, &reserved);
            let lent: i64 = l.tags.iter().map(|t| t.lent).sum();
            let borrowed: i64 = l.tags.iter().map(|t| t.borrowed).sum();
            prop_assert_eq!(lent, borrowed);
            let substituted: i64 = l.substitutions.iter().map(|s| s.quantity).sum();
            prop_assert_eq!(substituted, lent);
            let total: i64 = l.tags.iter().map(TagBalance::balance).sum();
            let taken = used.values().sum::<i64>() + reserved.values().sum::<i64>();
            prop_assert_eq!(total, purchased.values().sum::<i64>() - taken);
            for t in &l.tags {
                // A lender only gives its surplus, a borrower only takes its shortage.
                prop_assert!(t.lent <= (t.purchased - t.in_use - t.reserved).max(0));
                prop_assert!(t.borrowed <= (t.in_use + t.reserved - t.purchased).max(0));
                prop_assert!(t.lent == 0 || t.borrowed == 0);
                if t.lent > 0 { prop_assert!(t.balance() >= 0); }
            }
            // Order of input does not matter: recomputing gives the same answer.
            let again = Ledger::compute(&Catalog::builtin(), &purchased, &used, &reserved);
            prop_assert_eq!(again.tags, l.tags);
        }

        #[test]
        fn accepted_reservations_leave_nobody_short(
            purchased in aci(), used in aci(), reserved in aci(), extra in aci()
        ) {
            let c = Catalog::builtin();
            let extra: BTreeMap<String, i64> = extra.into_iter().filter(|(_, n)| *n > 0).collect();
            let before = Ledger::compute(&c, &purchased, &used, &reserved);
            let with = |more: &BTreeMap<String, i64>| {
                let mut all = reserved.clone();
                for (t, n) in more {
                    *all.entry(t.clone()).or_default() += n;
                }
                Ledger::compute(&c, &purchased, &used, &all)
            };
            let no_one_shorter = |after: &Ledger| {
                after.tags.iter().all(|t| t.balance() >= before.get(&t.tag).map_or(0, TagBalance::balance).min(0))
            };
            match Ledger::check_reservation(&c, &purchased, &used, &reserved, &extra) {
                Ok(()) => prop_assert!(no_one_shorter(&with(&extra))),
                Err(s) => {
                    // Everything before the named tag fits, and `available` of it is the most that does.
                    let mut fitting: BTreeMap<String, i64> =
                        extra.iter().take_while(|(t, _)| **t != s.tag).map(|(t, n)| (t.clone(), *n)).collect();
                    prop_assert!(s.available < s.requested);
                    fitting.insert(s.tag.clone(), s.available);
                    prop_assert!(no_one_shorter(&with(&fitting)));
                    fitting.insert(s.tag.clone(), s.available + 1);
                    prop_assert!(!no_one_shorter(&with(&fitting)));
                }
            }
        }
    }
}
