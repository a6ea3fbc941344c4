//! Compliance of one virtual account (C-6, C-11): licenses valid now against usage reported by
//! its product instances and licenses reserved for offline devices, with higher tiers
//! lending to lower ones.
//!
//! Each tag's own licenses serve its own usage and reservations first; only a surplus is lent,
//! and only a shortage borrows. Lending is an allocation, not a greedy pass: a minimum-cost
//! maximum flow from the tags with a surplus to the tags with a shortage, along the catalogue's
//! "fulfilled by" lists. The maximum flow covers every shortage whenever some allocation can
//! (a greedy pass can hand a CUWL license to a CUCM Basic user and leave Enhanced Plus short
//! while an HCS Foundation license sits idle). Among the allocations covering as much, the
//! cost picks the one that follows the catalogue's order of lenders (a license costs its
//! lender's place in the borrower's list: Enterprise before HCS Foundation before HCS Standard,
//! seed 002), and remaining ties go to the first shortest path in catalogue order of tags. So
//! the same counts give the same substitutions whatever order they arrive in, and the
//! substitution list says who lends to whom. The graph has one node per tag of the pool (a
//! handful), never per instance.

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
    /// the number of tags in the pool, never on the number of instances or reservations. Counts
    /// are shown as given, never clamped: a negative one is drift the store reports instead.
    pub fn compute(
        catalog: &Catalog,
        purchased: &BTreeMap<String, i64>,
        in_use: &BTreeMap<String, i64>,
        reserved: &BTreeMap<String, i64>,
    ) -> Ledger {
        let mut names: Vec<&String> = purchased.keys().chain(in_use.keys()).chain(reserved.keys()).collect();
        names.sort_by(|a, b| catalog.rank(a).cmp(&catalog.rank(b)).then(a.cmp(b)));
        names.dedup();
        let count = |map: &BTreeMap<String, i64>, tag: &str| map.get(tag).copied().unwrap_or(0);
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
        let position: BTreeMap<&str, usize> = names.iter().enumerate().map(|(i, t)| (t.as_str(), i)).collect();
        // Own licenses serve own usage first: only what is left over is offered, only what is
        // missing is asked for.
        let surplus: Vec<i64> = tags.iter().map(|t| (-t.shortage()).max(0)).collect();
        let shortage: Vec<i64> = tags.iter().map(|t| t.shortage().max(0)).collect();
        let mut loans = Vec::new();
        for (b, tag) in tags.iter().enumerate().filter(|(b, _)| shortage[*b] > 0) {
            for (preference, lender) in catalog.fulfilled_by(&tag.tag).iter().enumerate() {
                if let Some(&l) = position.get(lender.as_str()).filter(|&&l| surplus[l] > 0) {
                    loans.push(Loan { lender: l, borrower: b, preference: preference as i64 });
                }
            }
        }
        let lent = allocate(&surplus, &shortage, &loans);
        let mut substitutions = Vec::new();
        for (loan, quantity) in loans.iter().zip(lent).filter(|(_, q)| *q > 0) {
            tags[loan.lender].lent += quantity;
            tags[loan.borrower].borrowed += quantity;
            substitutions.push(Substitution {
                requested: tags[loan.borrower].tag.clone(),
                fulfilled_by: tags[loan.lender].tag.clone(),
                quantity,
            });
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

/// A possible loan: `lender` (a tag with a surplus) may stand in for `borrower` (a tag with a
/// shortage); `preference` is the lender's place in the borrower's catalogue list.
struct Loan {
    lender: usize,
    borrower: usize,
    preference: i64,
}

/// How much each loan carries: a minimum-cost maximum flow from the lenders' `surplus` to the
/// borrowers' `shortage` through `loans`, the cost of a license being its loan's preference.
/// Successive shortest paths (Bellman-Ford over a graph of a few dozen arcs, in a fixed order):
/// every augmentation keeps the flow cheapest for its quantity, so the last one is a maximum
/// flow of least cost, and equal-cost ties go to the path found first.
fn allocate(surplus: &[i64], shortage: &[i64], loans: &[Loan]) -> Vec<i64> {
    let n = surplus.len();
    let (source, sink) = (2 * n, 2 * n + 1);
    // Arcs in pairs: arc `a` and its residual `a ^ 1`, as (from, to, capacity, cost).
    let mut arcs: Vec<(usize, usize, i64, i64)> = Vec::new();
    let mut add = |from: usize, to: usize, capacity: i64, cost: i64| {
        arcs.push((from, to, capacity, cost));
        arcs.push((to, from, 0, -cost));
    };
    for loan in loans {
        add(loan.lender, n + loan.borrower, surplus[loan.lender].min(shortage[loan.borrower]), loan.preference);
    }
    for (t, &s) in surplus.iter().enumerate().filter(|(_, s)| **s > 0) {
        add(source, t, s, 0);
    }
    for (t, &s) in shortage.iter().enumerate().filter(|(_, s)| **s > 0) {
        add(n + t, sink, s, 0);
    }
    loop {
        let mut distance = vec![i64::MAX; 2 * n + 2];
        let mut via = vec![usize::MAX; 2 * n + 2];
        distance[source] = 0;
        for _ in 0..distance.len() {
            let mut changed = false;
            for (a, &(from, to, capacity, cost)) in arcs.iter().enumerate() {
                if capacity > 0 && distance[from] != i64::MAX && distance[from] + cost < distance[to] {
                    distance[to] = distance[from] + cost;
                    via[to] = a;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        if distance[sink] == i64::MAX {
            break;
        }
        let mut path = Vec::new();
        let mut at = sink;
        while at != source {
            path.push(via[at]);
            at = arcs[via[at]].0;
        }
        let quantity = path.iter().map(|&a| arcs[a].2).min().unwrap_or(0);
        for a in path {
            arcs[a].2 -= quantity;
            arcs[a ^ 1].2 += quantity;
        }
    }
    // A loan's arc is the first of its pair, in `loans` order: what it carries sits on its residual.
    (0..loans.len()).map(|i| arcs[2 * i + 1].2).collect()
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

    #[test]
    fn lending_finds_the_allocation_a_greedy_pass_misses() {
        // Issue 10: CUCM Basic could take the CUWL license, leaving Enhanced Plus (which only
        // CUWL or HCS Standard fulfil) short while HCS Foundation sits idle.
        let c = Catalog::builtin();
        let l = Ledger::compute(
            &c,
            &counts(&[("CUWL", 1), ("HCS Cisco UCM Foundation License", 1)]),
            &counts(&[("CUCM Basic", 1), ("CUCM Enhanced Plus", 1)]),
            &none(),
        );
        assert!(l.in_compliance(), "{l:?}");
        let lent = |requested: &str, by: &str| Substitution {
            requested: requested.into(),
            fulfilled_by: by.into(),
            quantity: 1,
        };
        assert_eq!(
            l.substitutions,
            [lent("CUCM Basic", "HCS Cisco UCM Foundation License"), lent("CUCM Enhanced Plus", "CUWL")]
        );
        // A reservation is checked on the same allocation: the second device fits.
        let purchased = counts(&[("CUWL", 1), ("HCS Cisco UCM Foundation License", 1)]);
        let used = counts(&[("CUCM Basic", 1)]);
        let extra = counts(&[("CUCM Enhanced Plus", 1)]);
        assert_eq!(Ledger::check_reservation(&c, &purchased, &used, &none(), &extra), Ok(()));
    }

    #[test]
    fn lenders_follow_the_catalogue_order_when_several_allocations_exist() {
        // Seed 002, dual parenting: Enterprise first, then HCS Foundation, then HCS Standard.
        let c = Catalog::builtin();
        let l = Ledger::compute(
            &c,
            &counts(&[
                ("CUCM Enhanced", 2),
                ("HCS Cisco UCM Foundation License", 2),
                ("HCS Cisco UCM Standard License", 2),
            ]),
            &counts(&[("CUCM Basic", 3)]),
            &none(),
        );
        let by: Vec<(&str, i64)> = l.substitutions.iter().map(|s| (s.fulfilled_by.as_str(), s.quantity)).collect();
        assert_eq!(by, [("CUCM Enhanced", 2), ("HCS Cisco UCM Foundation License", 1)]);
    }

    /// A random catalogue of five tags `T0`..`T4` where `Ti` may be fulfilled by later tags
    /// (so no cycle), each list in a random order, with random counts per tag.
    fn small_world() -> impl Strategy<Value = (Catalog, [BTreeMap<String, i64>; 3])> {
        const N: usize = 5;
        (
            proptest::collection::vec(proptest::option::of(0u8..10), N * (N - 1) / 2),
            proptest::collection::vec(0i64..4, 3 * N),
        )
            .prop_map(|(links, numbers)| {
                let mut toml = String::new();
                let mut pairs = links.into_iter();
                for i in 0..N {
                    let mut lenders: Vec<(u8, usize)> =
                        (i + 1..N).filter_map(|j| pairs.next().flatten().map(|p| (p, j))).collect();
                    lenders.sort();
                    let list: Vec<String> = lenders.iter().map(|(_, j)| format!("\"T{j}\"")).collect();
                    toml.push_str(&format!("[[tag]]\nname = \"T{i}\"\nfulfilled_by = [{}]\n", list.join(", ")));
                }
                let map = |k: usize| (0..N).map(|i| (format!("T{i}"), numbers[k * N + i])).collect();
                (Catalog::from_toml(&toml).unwrap(), [map(0), map(1), map(2)])
            })
    }

    /// The best allocation by exhaustive search: the most licenses lent, then the least total
    /// preference (a license costs its lender's place in the borrower's list).
    fn brute_force(c: &Catalog, t: &[TagBalance]) -> (i64, i64) {
        let surplus: Vec<i64> = t.iter().map(|t| (t.purchased - t.in_use - t.reserved).max(0)).collect();
        let shortage: Vec<i64> = t.iter().map(|t| (t.in_use + t.reserved - t.purchased).max(0)).collect();
        let mut arcs = Vec::new();
        for (b, borrower) in t.iter().enumerate() {
            for (cost, lender) in c.fulfilled_by(&borrower.tag).iter().enumerate() {
                if let Some(l) = t.iter().position(|x| &x.tag == lender) {
                    arcs.push((l, b, cost as i64));
                }
            }
        }
        fn search(
            arcs: &[(usize, usize, i64)],
            left: &mut [i64],
            need: &mut [i64],
            lent: i64,
            cost: i64,
        ) -> (i64, i64) {
            let Some((&(l, b, c), rest)) = arcs.split_first() else { return (lent, cost) };
            let mut best = (i64::MIN, 0);
            for q in 0..=left[l].min(need[b]) {
                left[l] -= q;
                need[b] -= q;
                let got = search(rest, left, need, lent + q, cost + q * c);
                left[l] += q;
                need[b] += q;
                if got.0 > best.0 || (got.0 == best.0 && got.1 < best.1) {
                    best = got;
                }
            }
            best
        }
        search(&arcs, &mut surplus.clone(), &mut shortage.clone(), 0, 0)
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
        fn lending_is_as_good_as_an_exhaustive_search((c, [purchased, used, reserved]) in small_world()) {
            let l = Ledger::compute(&c, &purchased, &used, &reserved);
            let lent: i64 = l.substitutions.iter().map(|s| s.quantity).sum();
            let cost: i64 = l
                .substitutions
                .iter()
                .map(|s| s.quantity * c.fulfilled_by(&s.requested).iter().position(|t| *t == s.fulfilled_by).unwrap() as i64)
                .sum();
            prop_assert_eq!((lent, cost), brute_force(&c, &l.tags));
            for t in &l.tags {
                prop_assert!(t.lent <= (t.purchased - t.in_use - t.reserved).max(0));
                prop_assert!(t.borrowed <= (t.in_use + t.reserved - t.purchased).max(0));
            }
            // The same counts in another order give the same substitutions.
            let reversed: BTreeMap<String, i64> = used.iter().rev().map(|(t, n)| (t.clone(), *n)).collect();
            prop_assert_eq!(Ledger::compute(&c, &purchased, &reversed, &reserved).substitutions, l.substitutions);
        }

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
