//! The license dashboard's figures (seed 002: "a view of the licenses at virtual account-level
//! and customer-level", "consumption details and compliance status"), as one JSON-ready value.

use super::{compliance, license_totals, ClusterUsage, Manager, Pool, PoolLicense, Totals};
use crate::cluster_status::ClusterStatus;
use serde::Serialize;
use std::collections::BTreeMap;

/// One cluster as the dashboard counts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterFigure {
    pub customer: String,
    pub status: ClusterStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dashboard {
    pub customers: usize,
    pub clusters: usize,
    /// Every status in the seed's priority order, with how many clusters have it (0 included).
    pub cluster_statuses: Vec<StatusCount>,
    /// Over every virtual account and license.
    pub installed: i64,
    pub in_use: i64,
    /// Licenses (a license of a virtual account) with more in use than installed.
    pub licenses_out_of_compliance: usize,
    pub virtual_accounts: Vec<VirtualAccountFigures>,
    pub customer_usage: Vec<CustomerFigures>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusCount {
    pub status: ClusterStatus,
    /// The seed's words for it.
    pub text: &'static str,
    pub clusters: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VirtualAccountFigures {
    /// `virtual-account@account`.
    pub virtual_account: String,
    pub manager: Manager,
    pub installed: i64,
    pub in_use: i64,
    pub available: i64,
    /// Licenses of this account used beyond what is installed.
    pub licenses_out_of_compliance: usize,
    /// `In Compliance` when none is.
    pub status: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CustomerFigures {
    pub customer: String,
    pub clusters: usize,
    pub in_use: i64,
}

/// The figures; `customers` names every customer, those without clusters too.
pub fn dashboard(
    customers: &[String],
    clusters: &[ClusterFigure],
    pools: &[PoolLicense],
    usage: &[ClusterUsage],
) -> Dashboard {
    let cluster_statuses = ClusterStatus::PRIORITY
        .into_iter()
        .map(|status| StatusCount {
            status,
            text: status.as_str(),
            clusters: clusters.iter().filter(|c| c.status == status).count(),
        })
        .collect();
    let mut per_account: BTreeMap<&Pool, Vec<Totals>> = BTreeMap::new();
    for ((pool, _), totals) in license_totals(pools) {
        per_account.entry(pool).or_default().push(totals);
    }
    let virtual_accounts: Vec<VirtualAccountFigures> = per_account
        .into_iter()
        .map(|(pool, licenses)| {
            let installed = licenses.iter().map(|l| l.installed).sum::<i64>();
            let in_use = licenses.iter().map(|l| l.in_use).sum::<i64>();
            let over = licenses.iter().filter(|l| l.available() < 0).count();
            VirtualAccountFigures {
                virtual_account: pool.to_string(),
                manager: pool.manager,
                installed,
                in_use,
                available: installed - in_use,
                licenses_out_of_compliance: over,
                status: compliance(over == 0),
            }
        })
        .collect();
    let customer_usage = customers
        .iter()
        .map(|customer| CustomerFigures {
            customer: customer.clone(),
            clusters: clusters.iter().filter(|c| &c.customer == customer).count(),
            in_use: usage.iter().filter(|u| &u.customer == customer).map(|u| u.count).sum(),
        })
        .collect();
    Dashboard {
        customers: customers.len(),
        clusters: clusters.len(),
        cluster_statuses,
        installed: virtual_accounts.iter().map(|v| v.installed).sum(),
        in_use: virtual_accounts.iter().map(|v| v.in_use).sum(),
        licenses_out_of_compliance: virtual_accounts.iter().map(|v| v.licenses_out_of_compliance).sum(),
        virtual_accounts,
        customer_usage,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smartlic_core::LicenseKind;

    fn pool(va: &str, manager: Manager) -> Pool {
        Pool { virtual_account: va.into(), account: "acct".into(), manager }
    }

    fn line(pool: Pool, license: &str, installed: i64, in_use: i64) -> PoolLicense {
        PoolLicense {
            pool,
            subscription_id: None,
            expires: None,
            kind: LicenseKind::Perpetual,
            application: "HUCM".into(),
            version: "14".into(),
            license: license.into(),
            installed,
            in_use,
        }
    }

    #[test]
    fn figures_per_account_customer_and_status() {
        let ops = pool("ops", Manager::Cssm);
        let sat = pool("sat", Manager::Satellite);
        let pools = [
            line(ops.clone(), "HUCM_Foundation", 10, 4),
            line(ops.clone(), "HUCM_Foundation", 5, 1),
            line(sat.clone(), "HUCM_Basic", 2, 3),
            line(sat.clone(), "HUCM_Standard", 4, 0),
        ];
        let usage = [ClusterUsage {
            customer: "C1".into(),
            pool: ops,
            application: "HUCM".into(),
            cluster_address: "10.0.0.1".into(),
            license: "HUCM_Foundation".into(),
            count: 5,
        }];
        let clusters = [
            ClusterFigure { customer: "C1".into(), status: ClusterStatus::AutoRegistered },
            ClusterFigure { customer: "C1".into(), status: ClusterStatus::PartiallyRegistered },
            ClusterFigure { customer: "C2".into(), status: ClusterStatus::AutoRegistered },
        ];
        let customers = ["C1".to_string(), "C2".to_string(), "C3".to_string()];
        let d = dashboard(&customers, &clusters, &pools, &usage);
        assert_eq!((d.customers, d.clusters, d.installed, d.in_use, d.licenses_out_of_compliance), (3, 3, 21, 8, 1));
        let counts: Vec<_> =
            d.cluster_statuses.iter().filter(|s| s.clusters > 0).map(|s| (s.text, s.clusters)).collect();
        assert_eq!(counts, [("Partially Registered", 1), ("Auto Registered", 2)]);
        assert_eq!(d.cluster_statuses.len(), 10);
        let accounts: Vec<_> = d
            .virtual_accounts
            .iter()
            .map(|v| (v.virtual_account.as_str(), v.installed, v.in_use, v.available, v.status))
            .collect();
        assert_eq!(accounts, [("ops@acct", 15, 5, 10, "In Compliance"), ("sat@acct", 6, 3, 3, "Out Of Compliance")]);
        let per_customer: Vec<_> =
            d.customer_usage.iter().map(|c| (c.customer.as_str(), c.clusters, c.in_use)).collect();
        assert_eq!(per_customer, [("C1", 2, 5), ("C2", 1, 0), ("C3", 0, 0)]);
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["cluster_statuses"][5]["status"], "partially_registered");
        assert_eq!(json["virtual_accounts"][1]["manager"], "satellite");
    }
}
