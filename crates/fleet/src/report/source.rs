//! The reports' rows from what the sync stored: the manager's license lines (the original API's
//! `licenses` answer, kept as JSON), each with its `licenseDetails` (one per subscription or
//! purchase: `licenseType`, `quantity`, `startDate`, `endDate`, `subscriptionId`).
//!
//! The manager counts use per license, not per subscription; a license's use is attributed to
//! its lines soonest end first (perpetual last), each up to its quantity, the rest to the last
//! line, so a report line's available count says which subscription runs out.

use super::mapper::{LicenseCount, Subscription};
use super::{Pool, PoolLicense};
use serde_json::Value;
use smartlic_core::{LicenseKind, Timestamp};
use std::collections::BTreeMap;

/// One stored license line of a virtual account.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncedLicense {
    pub pool: Pool,
    pub license: String,
    pub quantity: i64,
    pub in_use: i64,
    /// The manager's JSON for the line.
    pub details: Value,
}

/// One detail of a license line, read leniently: a field the manager left out is empty.
struct Detail {
    kind: LicenseKind,
    quantity: i64,
    start: Option<Timestamp>,
    end: Option<Timestamp>,
    subscription_id: Option<String>,
}

fn details(line: &SyncedLicense) -> Vec<Detail> {
    let entries = line.details["licenseDetails"].as_array().cloned().unwrap_or_default();
    let mut out: Vec<Detail> = entries
        .iter()
        .map(|d| Detail {
            kind: d["licenseType"]
                .as_str()
                .and_then(|t| LicenseKind::parse(&t.to_ascii_lowercase()).ok())
                .unwrap_or(LicenseKind::Perpetual),
            quantity: d["quantity"].as_i64().unwrap_or(0),
            start: d["startDate"].as_str().and_then(Timestamp::parse),
            end: d["endDate"].as_str().and_then(Timestamp::parse),
            subscription_id: d["subscriptionId"].as_str().filter(|s| !s.is_empty()).map(str::to_string),
        })
        .collect();
    if out.is_empty() {
        out.push(Detail {
            kind: LicenseKind::Perpetual,
            quantity: line.quantity,
            start: None,
            end: None,
            subscription_id: None,
        });
    }
    // Soonest end first; no end (perpetual) last.
    out.sort_by_key(|d| (d.end.is_none(), d.end));
    out
}

/// Each detail's share of the line's use, in the order of [`details`].
fn shares(details: &[Detail], in_use: i64) -> Vec<i64> {
    let mut left = in_use.max(0);
    let last = details.len().saturating_sub(1);
    details
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let share = if i == last { left } else { left.min(d.quantity.max(0)) };
            left -= share;
            share
        })
        .collect()
}

/// The Service Inventory's and the usage reports' lines: one per license detail.
pub fn pool_licenses(lines: &[SyncedLicense]) -> Vec<PoolLicense> {
    let mut out = Vec::new();
    for line in lines {
        let details = details(line);
        for (d, used) in details.iter().zip(shares(&details, line.in_use)) {
            out.push(PoolLicense {
                pool: line.pool.clone(),
                subscription_id: d.subscription_id.clone(),
                expires: d.end,
                kind: d.kind,
                application: String::new(),
                version: String::new(),
                license: line.license.clone(),
                installed: d.quantity,
                in_use: used,
            });
        }
    }
    out
}

/// The subscriptions the sync found, for the mapper: one per subscription id, and one without
/// an id gathering perpetual licenses bought without one.
pub fn subscriptions(lines: &[SyncedLicense]) -> Vec<Subscription> {
    let mut by_id: BTreeMap<Option<String>, Subscription> = BTreeMap::new();
    for line in lines {
        let details = details(line);
        for (d, used) in details.iter().zip(shares(&details, line.in_use)) {
            let perpetual = d.kind == LicenseKind::Perpetual;
            if d.subscription_id.is_none() && !perpetual {
                continue;
            }
            let s = by_id.entry(d.subscription_id.clone()).or_insert_with(|| Subscription {
                id: d.subscription_id.clone(),
                perpetual,
                start: d.start,
                end: d.end,
                licenses: Vec::new(),
            });
            s.start = match (s.start, d.start) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            s.end = s.end.max(d.end);
            match s.licenses.iter_mut().find(|l| l.license == line.license) {
                Some(l) => l.count += used,
                None => s.licenses.push(LicenseCount { license: line.license.clone(), count: used }),
            }
        }
    }
    by_id.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::super::Manager;
    use super::*;
    use serde_json::json;

    fn line(license: &str, quantity: i64, in_use: i64, details: Value) -> SyncedLicense {
        SyncedLicense {
            pool: Pool { virtual_account: "ops".into(), account: "sp.example.com".into(), manager: Manager::Cssm },
            license: license.into(),
            quantity,
            in_use,
            details: json!({ "license": license, "licenseDetails": details }),
        }
    }

    /// Lines shaped as the manager's original API answers them (crates/server/src/legacy.rs).
    fn synced() -> Vec<SyncedLicense> {
        vec![
            line(
                "HCS Cisco UCM Foundation License",
                15,
                12,
                json!([
                    {"licenseType": "TERM", "quantity": 10, "startDate": "2025-01-01T00:00:00Z",
                     "endDate": "2026-12-31T00:00:00Z", "subscriptionId": "Sub-B", "status": "ACTIVE"},
                    {"licenseType": "SUBSCRIPTION", "quantity": 5, "startDate": "2025-01-01T00:00:00Z",
                     "endDate": "2026-03-31T00:00:00Z", "subscriptionId": "Sub-A", "status": "ACTIVE"},
                ]),
            ),
            line(
                "HCS Unity Connection Basic License",
                4,
                1,
                json!([{"licenseType": "PERPETUAL", "quantity": 4, "startDate": "2024-05-01T00:00:00Z",
                        "endDate": null, "subscriptionId": null, "status": "ACTIVE"}]),
            ),
            line("HCS Cisco UCM Standard License", 2, 3, json!([])),
        ]
    }

    #[test]
    fn use_goes_to_the_soonest_ending_line_first() {
        let lines = pool_licenses(&synced());
        let seen: Vec<_> = lines
            .iter()
            .map(|l| (l.subscription_id.as_deref(), l.kind, l.installed, l.in_use, l.expires.map(super::super::date)))
            .collect();
        assert_eq!(
            seen,
            [
                (Some("Sub-A"), LicenseKind::Subscription, 5, 5, Some("2026-03-31".to_string())),
                (Some("Sub-B"), LicenseKind::Term, 10, 7, Some("2026-12-31".to_string())),
                (None, LicenseKind::Perpetual, 4, 1, None),
                // No details: the line as a whole, overused.
                (None, LicenseKind::Perpetual, 2, 3, None),
            ]
        );
    }

    #[test]
    fn subscriptions_gather_their_licenses() {
        let subs = subscriptions(&synced());
        let seen: Vec<_> = subs.iter().map(|s| (s.id.as_deref(), s.perpetual, s.licenses.len())).collect();
        assert_eq!(seen, [(None, true, 2), (Some("Sub-A"), false, 1), (Some("Sub-B"), false, 1)]);
        assert_eq!(subs[1].licenses[0], LicenseCount { license: "HCS Cisco UCM Foundation License".into(), count: 5 });
        assert_eq!(subs[1].end, Timestamp::parse("2026-03-31"));
        assert_eq!(subs[0].licenses.iter().map(|l| l.count).sum::<i64>(), 4);
    }
}
