//! The subscription mapper (seed 002, "Subscription Mapper"): each subscription id found by the
//! sync is mapped to one customer with a license model, which the usage reports use to tell whose
//! order a license belongs to.
//!
//! The seed's rules kept here: one subscription id maps to a single customer (mapping it again
//! replaces the mapping), several subscriptions may map to one customer, perpetual licenses are
//! mapped to the provider unless mapped otherwise, and start and end dates are shown for
//! subscriptions only ("For Perpetual licenses Start Date and End date is not valid").

use super::date;
use serde::Serialize;
use smartlic_core::{Invalid, Timestamp};

/// The seed's license models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LicenseModel {
    Perpetual,
    NamedUser,
    NamedUserPerpetual,
    EnterpriseAgreement,
}

impl LicenseModel {
    pub const ALL: [LicenseModel; 4] = [
        LicenseModel::Perpetual,
        LicenseModel::NamedUser,
        LicenseModel::NamedUserPerpetual,
        LicenseModel::EnterpriseAgreement,
    ];

    /// The seed's words.
    pub fn as_str(self) -> &'static str {
        match self {
            LicenseModel::Perpetual => "Perpetual",
            LicenseModel::NamedUser => "Named User",
            LicenseModel::NamedUserPerpetual => "Named User + Perpetual",
            LicenseModel::EnterpriseAgreement => "Enterprise Agreement",
        }
    }

    /// The JSON and database name (`named_user_perpetual`).
    pub fn key(self) -> &'static str {
        match self {
            LicenseModel::Perpetual => "perpetual",
            LicenseModel::NamedUser => "named_user",
            LicenseModel::NamedUserPerpetual => "named_user_perpetual",
            LicenseModel::EnterpriseAgreement => "enterprise_agreement",
        }
    }

    /// The seed's words (any case) or the JSON name (`named_user_perpetual`).
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        let text = text.trim();
        LicenseModel::ALL.into_iter().find(|m| m.as_str().eq_ignore_ascii_case(text) || m.key() == text).ok_or_else(
            || {
                let known: Vec<_> = LicenseModel::ALL.iter().map(|m| m.as_str()).collect();
                Invalid::new("license_model", format!("license model {text:?} is not one of: {}", known.join(", ")))
            },
        )
    }
}

/// A license a subscription holds, and how many of it are in use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LicenseCount {
    pub license: String,
    pub count: i64,
}

/// A subscription as the last sync found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Perpetual licenses might have none.
    pub id: Option<String>,
    pub perpetual: bool,
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
    pub licenses: Vec<LicenseCount>,
}

/// A subscription's customer and license model, as the operator chose them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mapping {
    pub subscription_id: String,
    pub customer: String,
    pub license_model: LicenseModel,
}

/// Checks a request to map a subscription; the mapping to store, or what is wrong.
pub fn check(
    subscription_id: &str,
    customer: &str,
    license_model: &str,
    subscriptions: &[Subscription],
    customers: &[String],
) -> Result<Mapping, Invalid> {
    let subscription_id = subscription_id.trim();
    if subscription_id.is_empty() {
        return Err(Invalid::new("subscription_id", "a subscription id is required"));
    }
    if !subscriptions.iter().any(|s| s.id.as_deref() == Some(subscription_id)) {
        return Err(Invalid::new(
            "subscription_id",
            format!("subscription {subscription_id:?} is not one the last sync found (sync the accounts first)"),
        ));
    }
    let customer = customer.trim();
    if !customers.iter().any(|c| c == customer) {
        return Err(Invalid::new("customer", format!("customer {customer:?} does not exist")));
    }
    Ok(Mapping {
        subscription_id: subscription_id.to_string(),
        customer: customer.to_string(),
        license_model: LicenseModel::parse(license_model)?,
    })
}

/// One line of the Subscription Mapper page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MapperRow {
    pub subscription_id: Option<String>,
    /// In use over the subscription's licenses (the seed's "License Details").
    pub licenses_in_use: i64,
    pub license_details: Vec<LicenseCount>,
    /// `YYYY-MM-DD`; subscriptions only.
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    /// `None` while an operator has not mapped a subscription.
    pub customer: Option<String>,
    pub license_model: Option<LicenseModel>,
}

/// The page's rows, soonest end date first (the seed sorts by it to see what expires), then
/// by id; perpetual licenses without a mapping go to `provider` as Perpetual.
pub fn rows(subscriptions: &[Subscription], mappings: &[Mapping], provider: &str) -> Vec<MapperRow> {
    let mut rows: Vec<(Option<Timestamp>, MapperRow)> = subscriptions
        .iter()
        .map(|s| {
            let mapped = s.id.as_deref().and_then(|id| mappings.iter().find(|m| m.subscription_id == id));
            let (customer, license_model) = match (mapped, s.perpetual) {
                (Some(m), _) => (Some(m.customer.clone()), Some(m.license_model)),
                (None, true) => (Some(provider.to_string()), Some(LicenseModel::Perpetual)),
                (None, false) => (None, None),
            };
            let dated = |t: Option<Timestamp>| t.filter(|_| !s.perpetual).map(date);
            let end = s.end.filter(|_| !s.perpetual);
            let row = MapperRow {
                subscription_id: s.id.clone(),
                licenses_in_use: s.licenses.iter().map(|l| l.count).sum(),
                license_details: s.licenses.clone(),
                start_date: dated(s.start),
                end_date: dated(s.end),
                customer,
                license_model,
            };
            (end, row)
        })
        .collect();
    // `None` (no end) sorts after every date.
    rows.sort_by(|(a, ra), (b, rb)| (a.is_none(), a, &ra.subscription_id).cmp(&(b.is_none(), b, &rb.subscription_id)));
    rows.into_iter().map(|(_, row)| row).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscription(id: Option<&str>, perpetual: bool, end: Option<&str>) -> Subscription {
        Subscription {
            id: id.map(Into::into),
            perpetual,
            start: Timestamp::parse("2024-01-01"),
            end: end.and_then(Timestamp::parse),
            licenses: vec![
                LicenseCount { license: "HUCM_Foundation".into(), count: 3 },
                LicenseCount { license: "HUCM_Basic".into(), count: 2 },
            ],
        }
    }

    fn synced() -> Vec<Subscription> {
        vec![
            subscription(Some("Sub900"), false, Some("2026-06-30")),
            subscription(Some("Sub100"), false, Some("2025-03-31")),
            subscription(None, true, None),
            subscription(Some("P-1"), true, None),
        ]
    }

    #[test]
    fn license_models_are_the_seeds() {
        let words: Vec<_> = LicenseModel::ALL.iter().map(|m| m.as_str()).collect();
        assert_eq!(words, ["Perpetual", "Named User", "Named User + Perpetual", "Enterprise Agreement"]);
        assert_eq!(LicenseModel::parse("named user + perpetual").unwrap(), LicenseModel::NamedUserPerpetual);
        assert_eq!(LicenseModel::parse("enterprise_agreement").unwrap(), LicenseModel::EnterpriseAgreement);
        let wrong = LicenseModel::parse("Flex").unwrap_err();
        assert_eq!(wrong.field, "license_model");
        assert!(
            wrong.message.contains("\"Flex\"") && wrong.message.contains("Enterprise Agreement"),
            "{}",
            wrong.message
        );
    }

    #[test]
    fn a_mapping_names_a_synced_subscription_and_a_customer() {
        let customers = ["Acme".to_string(), "Globex".to_string()];
        let ok = check(" Sub100 ", "Acme", "Named User", &synced(), &customers).unwrap();
        assert_eq!(
            ok,
            Mapping {
                subscription_id: "Sub100".into(),
                customer: "Acme".into(),
                license_model: LicenseModel::NamedUser
            }
        );
        let refused = [
            ("", "Acme", "Named User", "subscription_id", "required"),
            ("Sub404", "Acme", "Named User", "subscription_id", "\"Sub404\" is not one the last sync found"),
            ("Sub100", "Initech", "Named User", "customer", "\"Initech\" does not exist"),
            ("Sub100", "Acme", "", "license_model", "is not one of"),
        ];
        for (id, customer, model, field, says) in refused {
            let err = check(id, customer, model, &synced(), &customers).unwrap_err();
            assert_eq!(err.field, field, "{id} {customer} {model}");
            assert!(err.message.contains(says), "{}", err.message);
        }
    }

    #[test]
    fn rows_sort_by_end_date_and_perpetual_goes_to_the_provider() {
        let mappings = [
            Mapping {
                subscription_id: "Sub900".into(),
                customer: "Acme".into(),
                license_model: LicenseModel::EnterpriseAgreement,
            },
            Mapping {
                subscription_id: "P-1".into(),
                customer: "Globex".into(),
                license_model: LicenseModel::NamedUserPerpetual,
            },
        ];
        let rows = rows(&synced(), &mappings, "Provider");
        let seen: Vec<_> = rows
            .iter()
            .map(|r| {
                (
                    r.subscription_id.as_deref(),
                    r.end_date.as_deref(),
                    r.customer.as_deref(),
                    r.license_model.map(LicenseModel::as_str),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                (Some("Sub100"), Some("2025-03-31"), None, None),
                (Some("Sub900"), Some("2026-06-30"), Some("Acme"), Some("Enterprise Agreement")),
                (None, None, Some("Provider"), Some("Perpetual")),
                (Some("P-1"), None, Some("Globex"), Some("Named User + Perpetual")),
            ]
        );
        assert_eq!(rows[0].start_date.as_deref(), Some("2024-01-01"));
        assert_eq!(rows[2].start_date, None, "no dates for perpetual licenses");
        assert_eq!(rows[0].licenses_in_use, 5);
    }
}
