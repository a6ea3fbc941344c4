//! JSON shapes of the REST API (docs/API.md). Secrets never appear here.

use serde::Serialize;
use smartlic_core::compliance::Ledger;
use smartlic_core::{Catalog, Timestamp};
use smartlic_store::{
    AccessToken, Account, Alert, Event, Instance, LicenseRecord, Principal, RegistrationToken, Reservation,
    VirtualAccount,
};
use std::collections::BTreeMap;

#[derive(Serialize, utoipa::ToSchema)]
pub struct AccountView {
    pub domain: String,
    pub name: String,
    pub created_at: String,
    pub universal_reservation: bool,
}

impl From<&Account> for AccountView {
    fn from(a: &Account) -> Self {
        AccountView {
            domain: a.domain.clone(),
            name: a.name.clone(),
            created_at: a.created_at.to_rfc3339(),
            universal_reservation: a.universal_reservation,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct VirtualAccountView {
    pub name: String,
    pub description: String,
    pub is_default: bool,
    pub created_at: String,
}

impl From<&VirtualAccount> for VirtualAccountView {
    fn from(v: &VirtualAccount) -> Self {
        VirtualAccountView {
            name: v.name.clone(),
            description: v.description.clone(),
            is_default: v.is_default,
            created_at: v.created_at.to_rfc3339(),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PrincipalView {
    pub kind: &'static str,
    pub name: String,
    /// What it logs in with: `name@domain` for a user, the generated client ID for an API client.
    pub login: String,
    /// `active` or `disabled`.
    pub status: &'static str,
    pub role: &'static str,
    pub smart_account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_account: Option<String>,
    pub created_at: String,
}

impl PrincipalView {
    pub fn new(p: &Principal, account: Option<&Account>, va: Option<&VirtualAccount>) -> Self {
        PrincipalView {
            kind: p.kind.as_str(),
            name: p.name.clone(),
            login: p.login.clone(),
            status: if p.disabled_at.is_some() { "disabled" } else { "active" },
            role: p.role.as_str(),
            smart_account: account.map(|a| a.domain.clone()),
            virtual_account: va.map(|v| v.name.clone()),
            created_at: p.created_at.to_rfc3339(),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LicenseRecordView {
    pub id: i64,
    pub tag: String,
    pub sku: String,
    pub quantity: i64,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub start: Option<String>,
    pub end: Option<String>,
    pub subscription_id: Option<String>,
    pub status: &'static str,
}

impl LicenseRecordView {
    pub fn new(r: &LicenseRecord, now: Timestamp) -> Self {
        let status = if r.term.active_at(now) {
            "ACTIVE"
        } else if r.term.start.is_some_and(|s| now < s) {
            "PENDING"
        } else {
            "EXPIRED"
        };
        LicenseRecordView {
            id: r.id,
            tag: r.tag.clone(),
            sku: r.sku.clone(),
            quantity: r.quantity,
            kind: r.term.kind.as_str(),
            start: r.term.start.map(Timestamp::to_rfc3339),
            end: r.term.end.map(Timestamp::to_rfc3339),
            subscription_id: r.subscription_id.clone(),
            status,
        }
    }
}

pub fn compliance_words(ok: bool) -> &'static str {
    if ok {
        "In Compliance"
    } else {
        "Out Of Compliance"
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TagLine {
    pub tag: String,
    pub display_name: String,
    pub purchased: i64,
    pub in_use: i64,
    pub lent: i64,
    pub borrowed: i64,
    pub balance: i64,
    /// Licenses of this tag not used by anyone: what the public API calls `available`.
    pub available: i64,
    /// Reserved for offline devices; counted like usage.
    pub reserved: i64,
    pub purchased_display: String,
    pub status: &'static str,
    pub records: Vec<LicenseRecordView>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PoolLicenses {
    pub smart_account: String,
    pub virtual_account: String,
    pub status: &'static str,
    pub licenses: Vec<TagLine>,
    #[schema(value_type = Vec<Object>)]
    pub substitutions: Vec<smartlic_core::compliance::Substitution>,
}

impl PoolLicenses {
    pub fn new(
        catalog: &Catalog,
        account: &Account,
        va: &VirtualAccount,
        ledger: Ledger,
        records: &[LicenseRecord],
        now: Timestamp,
    ) -> Self {
        let mut by_tag: BTreeMap<&str, Vec<LicenseRecordView>> = BTreeMap::new();
        for r in records {
            by_tag.entry(&r.tag).or_default().push(LicenseRecordView::new(r, now));
        }
        let status = compliance_words(ledger.in_compliance());
        // Tags whose records all expired still show, with nothing valid now.
        let mut tags = ledger.tags.clone();
        for tag in by_tag.keys() {
            if ledger.get(tag).is_none() {
                tags.push(smartlic_core::TagBalance {
                    tag: tag.to_string(),
                    purchased: 0,
                    in_use: 0,
                    reserved: 0,
                    lent: 0,
                    borrowed: 0,
                });
            }
        }
        let licenses = tags
            .iter()
            .map(|t| TagLine {
                tag: t.tag.clone(),
                display_name: catalog.display_name(&t.tag).to_string(),
                purchased: t.purchased,
                in_use: t.in_use,
                lent: t.lent,
                borrowed: t.borrowed,
                balance: t.balance(),
                available: t.balance().max(0),
                reserved: t.reserved,
                purchased_display: t.purchased_with_lending(),
                status: compliance_words(t.in_compliance()),
                records: by_tag.remove(t.tag.as_str()).unwrap_or_default(),
            })
            .collect();
        PoolLicenses {
            smart_account: account.domain.clone(),
            virtual_account: va.name.clone(),
            status,
            licenses,
            substitutions: ledger.substitutions,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenView {
    /// The whole token: only in the answer that creates it (it is stored as a hash).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// What listings show and revocation accepts.
    pub prefix: String,
    pub description: String,
    pub virtual_account: String,
    pub created_at: String,
    pub expires_at: String,
    pub max_uses: Option<i64>,
    pub uses: i64,
    pub export_controlled: bool,
    pub status: &'static str,
    pub created_by: String,
}

impl TokenView {
    pub fn new(t: &RegistrationToken, va: &VirtualAccount, now: Timestamp) -> Self {
        TokenView {
            token: None,
            prefix: t.prefix.clone(),
            description: t.description.clone(),
            virtual_account: va.name.clone(),
            created_at: t.created_at.to_rfc3339(),
            expires_at: t.expires_at.to_rfc3339(),
            max_uses: t.max_uses,
            uses: t.uses,
            export_controlled: t.export_controlled,
            status: t.facts().status_at(now).as_str(),
            created_by: t.created_by.clone(),
        }
    }
}

/// A live OAuth2 access token: its id and prefix name it for revocation, never its value.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AccessTokenView {
    pub id: i64,
    pub prefix: String,
    /// The login of its holder.
    pub principal: String,
    pub created_at: String,
    pub expires_at: String,
}

impl AccessTokenView {
    pub fn new(t: &AccessToken, holder: &Principal) -> Self {
        AccessTokenView {
            id: t.id,
            prefix: t.prefix.clone(),
            principal: holder.login.clone(),
            created_at: t.created_at.to_rfc3339(),
            expires_at: t.expires_at.to_rfc3339(),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct UsageView {
    pub tag: String,
    pub count: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct InstanceView {
    pub id: String,
    pub udi_pid: String,
    pub udi_serial_number: String,
    pub hostname: String,
    pub virtual_account: String,
    pub registered_at: String,
    pub last_contact_at: String,
    pub certificate_serial: String,
    pub certificate_expires_at: String,
    pub usage: Vec<UsageView>,
    pub usage_released: bool,
    pub status: &'static str,
    /// The evaluation the device had used when it registered: a device whose evaluation
    /// was reset or tampered with shows here. Null when the device did not report it.
    pub evaluation_used_seconds: Option<i64>,
    /// The same, as `N days, H hours, M minutes, S seconds`.
    pub evaluation_used: Option<String>,
}

impl InstanceView {
    pub fn new(i: &Instance, va_name: &str, usage: &BTreeMap<String, i64>, ledger: &Ledger) -> Self {
        let status = if usage.is_empty() || i.usage_released {
            "No Licenses In Use"
        } else {
            compliance_words(usage.keys().all(|t| ledger.tag_in_compliance(t)))
        };
        InstanceView {
            id: i.id.clone(),
            udi_pid: i.udi_pid.clone(),
            udi_serial_number: i.udi_sn.clone(),
            hostname: i.hostname.clone(),
            virtual_account: va_name.to_string(),
            registered_at: i.registered_at.to_rfc3339(),
            last_contact_at: i.last_contact_at.to_rfc3339(),
            certificate_serial: i.certificate.serial.clone(),
            certificate_expires_at: i.certificate.expires_at.to_rfc3339(),
            usage: usage.iter().map(|(t, c)| UsageView { tag: t.clone(), count: *c }).collect(),
            usage_released: i.usage_released,
            status,
            evaluation_used_seconds: i.evaluation_used_ms.map(|ms| ms / 1000),
            evaluation_used: i.evaluation_used_ms.map(smartlic_core::agent::format_time_left),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EventView {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub kind: String,
    pub smart_account: Option<String>,
    pub virtual_account: Option<String>,
    pub object: String,
    pub detail: String,
}

impl EventView {
    pub fn new(e: &Event, names: &Names) -> Self {
        EventView {
            id: e.id,
            at: e.at.to_rfc3339(),
            actor: e.actor.clone(),
            kind: e.kind.clone(),
            smart_account: e.account_id.and_then(|a| names.accounts.get(&a).cloned()),
            virtual_account: e.virtual_account_id.and_then(|v| names.pools.get(&v).cloned()),
            object: e.object.clone(),
            detail: e.detail.clone(),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AlertView {
    pub kind: String,
    pub severity: String,
    pub smart_account: Option<String>,
    pub virtual_account: Option<String>,
    pub object: String,
    pub message: String,
    pub raised_at: String,
}

impl AlertView {
    pub fn new(a: &Alert, names: &Names) -> Self {
        AlertView {
            kind: a.kind.as_str().into(),
            severity: a.severity.as_str().into(),
            smart_account: names.accounts.get(&a.account_id).cloned(),
            virtual_account: a.virtual_account_id.and_then(|v| names.pools.get(&v).cloned()),
            object: a.object.clone(),
            message: a.message.clone(),
            raised_at: a.raised_at.to_rfc3339(),
        }
    }
}

/// Names of accounts and pools by id, to render events and alerts.
#[derive(Default)]
pub struct Names {
    pub accounts: BTreeMap<i64, String>,
    pub pools: BTreeMap<i64, String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct UsageRow {
    pub smart_account: String,
    pub virtual_account: String,
    pub tag: String,
    pub display_name: String,
    pub purchased: i64,
    pub in_use: i64,
    pub lent: i64,
    pub borrowed: i64,
    pub balance: i64,
    pub status: &'static str,
    pub reserved: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ReservedLicenseView {
    pub tag: String,
    pub display_name: String,
    pub count: i64,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub start: Option<String>,
    pub end: Option<String>,
    pub subscription_id: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ReservationView {
    pub id: i64,
    pub virtual_account: String,
    pub kind: String,
    pub udi: String,
    pub udi_pid: String,
    pub udi_serial_number: String,
    pub request_code: String,
    pub piid: String,
    pub authorization_code: String,
    pub confirmation_code: String,
    pub status: &'static str,
    pub created_at: String,
    pub created_by: String,
    pub returned_at: Option<String>,
    pub licenses: Vec<ReservedLicenseView>,
}

impl ReservationView {
    pub fn new(r: &Reservation, va_name: &str, catalog: &Catalog) -> Self {
        ReservationView {
            id: r.id,
            virtual_account: va_name.to_string(),
            kind: r.kind.as_str().into(),
            udi: r.udi(),
            udi_pid: r.udi_pid.clone(),
            udi_serial_number: r.udi_sn.clone(),
            request_code: r.request_code.clone(),
            piid: r.piid.clone(),
            authorization_code: r.authorization_code.clone(),
            confirmation_code: r.confirmation_code.clone(),
            status: r.status.as_str(),
            created_at: r.created_at.to_rfc3339(),
            created_by: r.created_by.clone(),
            returned_at: r.returned_at.map(Timestamp::to_rfc3339),
            licenses: r
                .licenses
                .iter()
                .map(|l| ReservedLicenseView {
                    tag: l.tag.clone(),
                    display_name: catalog.display_name(&l.tag).to_string(),
                    count: l.quantity,
                    kind: l.term.kind.as_str(),
                    start: l.term.start.map(Timestamp::to_rfc3339),
                    end: l.term.end.map(Timestamp::to_rfc3339),
                    subscription_id: l.subscription_id.clone(),
                })
                .collect(),
        }
    }
}

/// The reports' CSV (formulas neutralised), shared with the fleet orchestrator.
pub use smartlic_core::csv::{csv_rows, to_csv};
