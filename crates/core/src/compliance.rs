//! Compliance of one virtual account (C-6, C-11): licenses valid now against usage reported by
//! its product instances, with higher tiers lending to lower ones.
//!
//! Each tag's own licenses serve its own usage first; only a surplus is lent, and a shortage
//! borrows from the tags that fulfil it in catalogue order. Lower tiers are served first, so
//! the result is the same whatever order the counts arrive in.

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
    /// Given to lower tiers (shown as `(-N)`).
    pub lent: i64,
    /// Taken from higher tiers (shown as `(+N)`).
    pub borrowed: i64,
}

impl TagBalance {
    /// What is left: negative when usage exceeds what the tag has and could borrow.
    pub fn balance(&self) -> i64 {
        self.purchased + self.borrowed - self.in_use - self.lent
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

impl Ledger {
    /// Computes balances from per-tag purchased and in-use counts; the cost depends on the
    /// number of tags in the pool, never on the number of instances.
    pub fn compute(catalog: &Catalog, purchased: &BTreeMap<String, i64>, in_use: &BTreeMap<String, i64>) -> Ledger {
        let mut names: Vec<&String> = purchased.keys().chain(in_use.keys()).collect();
        names.sort_by(|a, b| catalog.rank(a).cmp(&catalog.rank(b)).then(a.cmp(b)));
        names.dedup();
        let mut tags: Vec<TagBalance> = names
            .iter()
            .map(|t| TagBalance {
                tag: (*t).clone(),
                purchased: purchased.get(*t).copied().unwrap_or(0).max(0),
                in_use: in_use.get(*t).copied().unwrap_or(0).max(0),
                lent: 0,
                borrowed: 0,
            })
            .collect();
        let position: BTreeMap<String, usize> = tags.iter().enumerate().map(|(i, t)| (t.tag.clone(), i)).collect();
        let mut substitutions = Vec::new();
        for i in 0..tags.len() {
            let mut shortage = tags[i].in_use - tags[i].purchased;
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

    #[test]
    fn seed_000_advantage_lends_to_essentials() {
        let c = Catalog::builtin();
        let l = Ledger::compute(&c, &counts(&[("ACI Advantage", 12)]), &counts(&[("ACI Essentials", 10)]));
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
        let l = Ledger::compute(&c, &counts(&[("ACI Essentials", 50)]), &counts(&[("ACI Advantage", 1)]));
        assert!(!l.tag_in_compliance("ACI Advantage"));
        assert_eq!(l.get("ACI Essentials").unwrap().lent, 0);
    }

    #[test]
    fn generic_c9500_fulfils_model_specific_and_hcs_order() {
        let c = Catalog::builtin();
        let l =
            Ledger::compute(&c, &counts(&[("C9500 Network Advantage", 2)]), &counts(&[("C9500 32C NW Advantage", 2)]));
        assert!(l.in_compliance());
        let l = Ledger::compute(
            &c,
            &counts(&[("HCS Cisco UCM Foundation License", 3), ("HCS Cisco UCM Standard License", 5)]),
            &counts(&[("CUCM Basic", 4)]),
        );
        assert_eq!(l.get("HCS Cisco UCM Foundation License").unwrap().lent, 3);
        assert_eq!(l.get("HCS Cisco UCM Standard License").unwrap().lent, 1);
    }

    #[test]
    fn unknown_tags_are_out_of_compliance_when_used() {
        let l = Ledger::compute(&Catalog::builtin(), &BTreeMap::new(), &counts(&[("Not A Tag", 1)]));
        assert!(!l.tag_in_compliance("Not A Tag"));
        assert!(l.tag_in_compliance("ACI Essentials"));
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
        fn counts_always_balance(purchased in aci(), used in aci()) {
            let l = Ledger::compute(&Catalog::builtin(), &purchased, &used);
            let lent: i64 = l.tags.iter().map(|t| t.lent).sum();
            let borrowed: i64 = l.tags.iter().map(|t| t.borrowed).sum();
            prop_assert_eq!(lent, borrowed);
            let substituted: i64 = l.substitutions.iter().map(|s| s.quantity).sum();
            prop_assert_eq!(substituted, lent);
            let total: i64 = l.tags.iter().map(TagBalance::balance).sum();
            prop_assert_eq!(total, purchased.values().sum::<i64>() - used.values().sum::<i64>());
            for t in &l.tags {
                // A lender only gives its surplus, a borrower only takes its shortage.
                prop_assert!(t.lent <= (t.purchased - t.in_use).max(0));
                prop_assert!(t.borrowed <= (t.in_use - t.purchased).max(0));
                prop_assert!(t.lent == 0 || t.borrowed == 0);
                if t.lent > 0 { prop_assert!(t.balance() >= 0); }
            }
            // Order of input does not matter: recomputing gives the same answer.
            let again = Ledger::compute(&Catalog::builtin(), &purchased, &used);
            prop_assert_eq!(again.tags, l.tags);
        }
    }
}
