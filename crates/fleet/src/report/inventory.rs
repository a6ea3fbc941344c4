//! The Service Inventory license summary in the seed's pipe-separated format, smart-licensing
//! rows only (the orchestrator has no PLM). From the seed's sample and its format line:
//!
//! ```text
//! |LICENSESUMMARYSTART|
//! |SUMMARY|PLMINFO|<va>@<account>,<CSSM|Satellite>,<subscription>,<expiry date>,<license model>|<application>|<version>|<license>|<installed>|<required>|<available>|<status>|
//! |SUMMARY|CUSTLICENSEINFO|<va>@<account>,<CSSM|Satellite>|~|~|<customer>|<application>|<cluster address>|<license>|<count>|
//! |SUMMARY|SITELICENSEINFO|~|~|<customer>|~|<license>|<count>|
//! |LICENSESUMMARYEND|
//! ```
//!
//! The seed's scan reads `PIMINFO`, `FIMINFO`, `SUMARY` and `INF0` in places; its format line
//! says `PLMINFO` and its other rows `SUMMARY`, `CUSTLICENSEINFO`, which is what is written here.
//! `~` stands for an empty field, as in the seed. The site rows total each customer's use of each
//! license over its clusters. Rows are sorted, so two reports of the same data are identical.

use super::{compliance, date, ClusterUsage, PoolLicense};
use std::collections::BTreeMap;

/// The report, lines ending in `\n`.
pub fn service_inventory(pools: &[PoolLicense], usage: &[ClusterUsage]) -> String {
    let mut lines = vec!["|LICENSESUMMARYSTART|".to_string()];
    let mut pools: Vec<&PoolLicense> = pools.iter().collect();
    pools.sort_by(|a, b| {
        (&a.pool, &a.application, &a.license, &a.subscription_id).cmp(&(
            &b.pool,
            &b.application,
            &b.license,
            &b.subscription_id,
        ))
    });
    for p in pools {
        let source = [
            p.pool.to_string(),
            p.pool.manager.as_str().to_string(),
            p.subscription_id.clone().unwrap_or_default(),
            p.expires.map(date).unwrap_or_default(),
            p.kind.as_str().to_uppercase(),
        ];
        lines.push(row(&[
            "SUMMARY".into(),
            "PLMINFO".into(),
            composite(&source),
            field(&p.application),
            field(&p.version),
            field(&p.license),
            p.installed.to_string(),
            p.in_use.to_string(),
            p.available().to_string(),
            compliance(p.available() >= 0).into(),
        ]));
    }
    let mut usage: Vec<&ClusterUsage> = usage.iter().collect();
    usage.sort_by(|a, b| {
        (&a.customer, &a.application, &a.cluster_address, &a.license, &a.pool).cmp(&(
            &b.customer,
            &b.application,
            &b.cluster_address,
            &b.license,
            &b.pool,
        ))
    });
    let mut site: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for u in &usage {
        lines.push(row(&[
            "SUMMARY".into(),
            "CUSTLICENSEINFO".into(),
            composite(&[u.pool.to_string(), u.pool.manager.as_str().to_string()]),
            "~".into(),
            "~".into(),
            field(&u.customer),
            field(&u.application),
            field(&u.cluster_address),
            field(&u.license),
            u.count.to_string(),
        ]));
        *site.entry((&u.customer, &u.license)).or_default() += u.count;
    }
    for ((customer, license), count) in site {
        lines.push(row(&[
            "SUMMARY".into(),
            "SITELICENSEINFO".into(),
            "~".into(),
            "~".into(),
            field(customer),
            "~".into(),
            field(license),
            count.to_string(),
        ]));
    }
    lines.push("|LICENSESUMMARYEND|".to_string());
    lines.iter().map(|l| format!("{l}\n")).collect()
}

fn row(fields: &[String]) -> String {
    format!("|{}|", fields.join("|"))
}

/// A field as the format allows it: `~` when empty; a `|` or a line break (which would end the
/// field or the row) becomes a space, so a name cannot forge rows.
fn field(value: &str) -> String {
    clean(value, &['|', '\r', '\n'])
}

/// The comma-separated first field of PLMINFO and CUSTLICENSEINFO rows: commas inside a part
/// become spaces too.
fn composite(parts: &[String]) -> String {
    parts.iter().map(|p| clean(p, &['|', '\r', '\n', ','])).collect::<Vec<_>>().join(",")
}

fn clean(value: &str, forbidden: &[char]) -> String {
    if value.is_empty() {
        "~".to_string()
    } else {
        value.replace(forbidden, " ")
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Manager, Pool};
    use super::*;
    use smartlic_core::{LicenseKind, Timestamp};

    fn pool(va: &str, account: &str, manager: Manager) -> Pool {
        Pool { virtual_account: va.into(), account: account.into(), manager }
    }

    fn license(pool: Pool, license: &str, installed: i64, in_use: i64) -> PoolLicense {
        PoolLicense {
            pool,
            subscription_id: Some("1000".into()),
            expires: Timestamp::parse("2021-11-26"),
            kind: LicenseKind::Term,
            application: license.split('_').next().unwrap().into(),
            version: "10".into(),
            license: license.into(),
            installed,
            in_use,
        }
    }

    fn used(customer: &str, pool: Pool, address: &str, license: &str, count: i64) -> ClusterUsage {
        ClusterUsage {
            customer: customer.into(),
            pool,
            application: license.split('_').next().unwrap().into(),
            cluster_address: address.into(),
            license: license.into(),
            count,
        }
    }

    /// The seed's smart-licensing sample rows, with the scan's misreadings corrected.
    #[test]
    fn the_seeds_sample() {
        let cloud = pool("virtual-account1", "smart-account.cisco.com", Manager::Cssm);
        let local = pool("virtual-account1", "local-account", Manager::Satellite);
        let pools =
            [license(cloud.clone(), "HUCM_Foundation", 46000, 2), license(local.clone(), "HUCM_Basic", 56010, 0)];
        let usage = [
            used("C3", cloud.clone(), "200.2.1.12", "HUCM_Foundation", 1),
            used("C3", local.clone(), "200.2.1.12", "HUCM_TelePresenceRoom", 0),
            used("C1", cloud.clone(), "200.2.1.11", "HCS Foundation", 1),
        ];
        let report = service_inventory(&pools, &usage);
        let lines: Vec<&str> = report.lines().collect();
        assert_eq!(
            lines,
            [
                "|LICENSESUMMARYSTART|",
                "|SUMMARY|PLMINFO|virtual-account1@local-account,Satellite,1000,2021-11-26,TERM|HUCM|10|HUCM_Basic|56010|0|56010|In Compliance|",
                "|SUMMARY|PLMINFO|virtual-account1@smart-account.cisco.com,CSSM,1000,2021-11-26,TERM|HUCM|10|HUCM_Foundation|46000|2|45998|In Compliance|",
                "|SUMMARY|CUSTLICENSEINFO|virtual-account1@smart-account.cisco.com,CSSM|~|~|C1|HCS Foundation|200.2.1.11|HCS Foundation|1|",
                "|SUMMARY|CUSTLICENSEINFO|virtual-account1@smart-account.cisco.com,CSSM|~|~|C3|HUCM|200.2.1.12|HUCM_Foundation|1|",
                "|SUMMARY|CUSTLICENSEINFO|virtual-account1@local-account,Satellite|~|~|C3|HUCM|200.2.1.12|HUCM_TelePresenceRoom|0|",
                "|SUMMARY|SITELICENSEINFO|~|~|C1|~|HCS Foundation|1|",
                "|SUMMARY|SITELICENSEINFO|~|~|C3|~|HUCM_Foundation|1|",
                "|SUMMARY|SITELICENSEINFO|~|~|C3|~|HUCM_TelePresenceRoom|0|",
                "|LICENSESUMMARYEND|",
            ]
        );
        assert!(report.ends_with("|LICENSESUMMARYEND|\n"));
    }

    #[test]
    fn overuse_is_out_of_compliance_and_empty_fields_are_tildes() {
        let mut line = license(pool("va", "acct", Manager::Cssm), "HUCM_Standard", 5, 7);
        line.subscription_id = None;
        line.expires = None;
        line.kind = LicenseKind::Perpetual;
        let report = service_inventory(&[line], &[]);
        assert!(
            report.contains(
                "|SUMMARY|PLMINFO|va@acct,CSSM,~,~,PERPETUAL|HUCM|10|HUCM_Standard|5|7|-2|Out Of Compliance|\n"
            ),
            "{report}"
        );
    }

    #[test]
    fn names_cannot_forge_fields_or_rows() {
        let sneaky = pool("va|x,y", "acct\n|SUMMARY|", Manager::Cssm);
        let report = service_inventory(&[], &[used("C|1\n", sneaky, "10.0.0.1", "L", 3)]);
        let lines: Vec<&str> = report.lines().collect();
        assert_eq!(lines.len(), 4, "{report}");
        assert_eq!(lines[1], "|SUMMARY|CUSTLICENSEINFO|va x y@acct  SUMMARY ,CSSM|~|~|C 1 |L|10.0.0.1|L|3|");
        assert_eq!(lines[2], "|SUMMARY|SITELICENSEINFO|~|~|C 1 |~|L|3|");
    }

    #[test]
    fn an_empty_estate_is_just_the_markers() {
        assert_eq!(service_inventory(&[], &[]), "|LICENSESUMMARYSTART|\n|LICENSESUMMARYEND|\n");
    }
}
