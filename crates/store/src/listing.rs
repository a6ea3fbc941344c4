//! Keyset paging of instance listings: a page starts after the last instance of the previous
//! one, found in the `(virtual_account_id, udi_pid, udi_sn)` index of each backend, so a page
//! deep in a pool of a million instances costs what the first one does (an `OFFSET` walks
//! every skipped entry), and an instance added or removed between pages moves no other.

use crate::Instance;

/// Where an instance stands in a listing's order: its pool, then its PID and serial number
/// (unique together). A page starts after such a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceKey {
    pub virtual_account_id: i64,
    pub udi_pid: String,
    pub udi_sn: String,
}

impl InstanceKey {
    pub fn of(i: &Instance) -> Self {
        InstanceKey { virtual_account_id: i.virtual_account_id, udi_pid: i.udi_pid.clone(), udi_sn: i.udi_sn.clone() }
    }
}

/// The pools a page after `after` reads, in listing order (ascending id), each with the
/// (PID, serial) its range starts after: the pool of `after` from there, the later ones whole;
/// earlier pools are done. Each backend reads them in turn, one index range each, until the
/// page is full: no sort over several pools, whatever the planner knows of the list.
pub(crate) fn pool_ranges(mut pools: Vec<i64>, after: Option<&InstanceKey>) -> Vec<(i64, Option<(String, String)>)> {
    pools.sort_unstable();
    pools.dedup();
    pools
        .into_iter()
        .filter_map(|pool| match after {
            Some(k) if pool < k.virtual_account_id => None,
            Some(k) if pool == k.virtual_account_id => Some((pool, Some((k.udi_pid.clone(), k.udi_sn.clone())))),
            _ => Some((pool, None)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_start_at_the_pool_of_the_key_and_skip_the_earlier_ones() {
        let key = InstanceKey { virtual_account_id: 5, udi_pid: "P".into(), udi_sn: "S".into() };
        assert_eq!(pool_ranges(vec![9, 2, 5, 9], None), [(2, None), (5, None), (9, None)]);
        assert_eq!(pool_ranges(vec![9, 2, 5], Some(&key)), [(5, Some(("P".into(), "S".into()))), (9, None)]);
        // The key's pool is no longer visible: the later pools only.
        assert_eq!(pool_ranges(vec![2, 9], Some(&key)), [(9, None)]);
    }
}
