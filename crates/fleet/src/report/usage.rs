//! License usage as CSV (seed 002: "reports of license usage at customer-level and virtual
//! account level"), through the server's CSV writer so formulas are neutralised the same way.

use super::{compliance, license_totals, ClusterUsage, Pool, PoolLicense};
use smartlic_core::csv::to_csv;
use std::collections::{BTreeMap, BTreeSet};

/// Per customer, per virtual account and license: the licenses its clusters use, and how many
/// clusters use them.
pub fn per_customer_csv(usage: &[ClusterUsage]) -> String {
    let mut totals: BTreeMap<(&str, &Pool, &str), (i64, BTreeSet<&str>)> = BTreeMap::new();
    for u in usage {
        let total = totals.entry((&u.customer, &u.pool, &u.license)).or_default();
        total.0 += u.count;
        total.1.insert(&u.cluster_address);
    }
    let rows = totals.into_iter().map(|((customer, pool, license), (count, clusters))| {
        vec![
            customer.to_string(),
            pool.to_string(),
            pool.manager.as_str().to_string(),
            license.to_string(),
            count.to_string(),
            clusters.len().to_string(),
        ]
    });
    to_csv(&["Customer", "Virtual Account", "Manager", "License", "In Use", "Clusters"], rows)
}

/// Per virtual account and license, over its subscriptions: installed, in use, available and the
/// compliance words.
pub fn per_virtual_account_csv(pools: &[PoolLicense]) -> String {
    let rows = license_totals(pools).into_iter().map(|((pool, license), totals)| {
        vec![
            pool.to_string(),
            pool.manager.as_str().to_string(),
            license.to_string(),
            totals.installed.to_string(),
            totals.in_use.to_string(),
            totals.available().to_string(),
            compliance(totals.available() >= 0).to_string(),
        ]
    });
    to_csv(&["Virtual Account", "Manager", "License", "Installed", "In Use", "Available", "Status"], rows)
}

#[cfg(test)]
mod tests {
    use super::super::Manager;
    use super::*;
    use smartlic_core::LicenseKind;

    fn pool(va: &str) -> Pool {
        Pool { virtual_account: va.into(), account: "sa.example.com".into(), manager: Manager::Cssm }
    }

    fn used(customer: &str, va: &str, address: &str, license: &str, count: i64) -> ClusterUsage {
        ClusterUsage {
            customer: customer.into(),
            pool: pool(va),
            application: "HUCM".into(),
            cluster_address: address.into(),
            license: license.into(),
            count,
        }
    }

    fn line(va: &str, license: &str, subscription: &str, installed: i64, in_use: i64) -> PoolLicense {
        PoolLicense {
            pool: pool(va),
            subscription_id: Some(subscription.into()),
            expires: None,
            kind: LicenseKind::Subscription,
            application: "HUCM".into(),
            version: "14".into(),
            license: license.into(),
            installed,
            in_use,
        }
    }

    #[test]
    fn per_customer_totals_over_clusters() {
        let csv = per_customer_csv(&[
            used("C2", "va1", "10.0.0.2", "HUCM_Foundation", 1),
            used("C1", "va1", "10.0.0.1", "HUCM_Foundation", 3),
            used("C1", "va1", "10.0.0.9", "HUCM_Foundation", 2),
            used("=cmd|' /C calc'!A0", "va2", "10.0.0.3", "HUCM_Basic", 1),
        ]);
        assert_eq!(
            csv,
            "Customer,Virtual Account,Manager,License,In Use,Clusters\r\n\
             '=cmd|' /C calc'!A0,va2@sa.example.com,CSSM,HUCM_Basic,1,1\r\n\
             C1,va1@sa.example.com,CSSM,HUCM_Foundation,5,2\r\n\
             C2,va1@sa.example.com,CSSM,HUCM_Foundation,1,1\r\n"
        );
    }

    #[test]
    fn per_virtual_account_sums_subscriptions_and_flags_overuse() {
        let csv = per_virtual_account_csv(&[
            line("va1", "HUCM_Foundation", "S1", 10, 4),
            line("va1", "HUCM_Foundation", "S2", 5, 3),
            line("va2", "HUCM_Basic", "S3", 1, 2),
        ]);
        assert_eq!(
            csv,
            "Virtual Account,Manager,License,Installed,In Use,Available,Status\r\n\
             va1@sa.example.com,CSSM,HUCM_Foundation,15,7,8,In Compliance\r\n\
             va2@sa.example.com,CSSM,HUCM_Basic,1,2,-1,Out Of Compliance\r\n"
        );
    }
}
