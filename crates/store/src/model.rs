//! Records as stored and read back.

use smartlic_core::{LicenseTerm, Role, Timestamp, TokenFacts};
pub use smartlic_proto::reservation::ReservationKind;

/// Text a closed set of values was asked to parse and does not hold: a stored value no
/// version of smartlic wrote, reported as corrupt data rather than read as some default.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} '{value}'")]
pub struct UnknownValue {
    pub what: &'static str,
    pub value: String,
}

/// An enum of a closed set of values kept as text: `as_str` gives the text (stored, shown in
/// listings and events) and `FromStr` takes exactly that text back, refusing any other.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownValue;

            fn from_str(text: &str) -> Result<Self, UnknownValue> {
                match text {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownValue { what: $what, value: text.into() }),
                }
            }
        }
    };
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: i64,
    pub domain: String,
    pub name: String,
    pub created_at: Timestamp,
    /// Whether its devices may get universal reservations; off until the operator allows it.
    pub universal_reservation: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualAccount {
    pub id: i64,
    pub account_id: i64,
    pub name: String,
    pub description: String,
    pub is_default: bool,
    pub created_at: Timestamp,
}

/// The name of the virtual account every smart account starts with (C-1).
pub const DEFAULT_VIRTUAL_ACCOUNT: &str = "Default";

text_enum! {
    /// What a principal is: a person logging in or a program holding a client secret.
    PrincipalKind, "principal kind" {
        User = "user",
        ApiClient = "api-client",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub id: i64,
    pub kind: PrincipalKind,
    /// Display name, unique within its smart account.
    pub name: String,
    /// What it logs in with, unique across the manager (see [`login_of`]).
    pub login: String,
    /// Argon2 PHC string; never leaves the server.
    pub secret_hash: Option<String>,
    pub role: Role,
    pub account_id: Option<i64>,
    pub virtual_account_id: Option<i64>,
    pub created_at: Timestamp,
    /// Set while disabled: the record stays, logins and bearer tokens are refused.
    pub disabled_at: Option<Timestamp>,
}

/// A user's login: `name@domain` (names are unique only per smart account); an account-less
/// operator logs in with its bare name. API clients log in with a generated client ID.
pub fn login_of(name: &str, account: Option<&Account>) -> String {
    match account {
        Some(a) => format!("{name}@{}", a.domain),
        None => name.to_string(),
    }
}

/// A live OAuth2 access token, as listed: only its prefix is known after issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    pub id: i64,
    pub prefix: String,
    pub principal_id: i64,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// Which live access tokens to list.
#[derive(Debug, Clone)]
pub enum AccessTokenFilter {
    /// Those of the principals of one smart account.
    Account(i64),
    /// Those of principals without an account (operators).
    Operators,
    Id(i64),
    /// The token whose SHA-256 digest (hex) this is.
    Hash(String),
}

#[derive(Debug, Clone)]
pub struct NewPrincipal {
    pub kind: PrincipalKind,
    pub name: String,
    pub login: String,
    pub secret_hash: Option<String>,
    pub role: Role,
    pub account_id: Option<i64>,
    pub virtual_account_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseRecord {
    pub id: i64,
    pub virtual_account_id: i64,
    pub tag: String,
    pub sku: String,
    pub quantity: i64,
    pub term: LicenseTerm,
    pub subscription_id: Option<String>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct NewLicense {
    pub virtual_account_id: i64,
    pub tag: String,
    pub sku: String,
    pub quantity: i64,
    pub term: LicenseTerm,
    pub subscription_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationToken {
    pub id: i64,
    pub virtual_account_id: i64,
    /// The first [`REGISTRATION_TOKEN_PREFIX`] characters: the token itself is kept only as a hash.
    pub prefix: String,
    pub description: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub max_uses: Option<i64>,
    pub uses: i64,
    pub export_controlled: bool,
    pub revoked_at: Option<Timestamp>,
    pub created_by: String,
}

/// How many characters of a registration token listings show and revocation accepts.
pub const REGISTRATION_TOKEN_PREFIX: usize = 12;

impl NewLicense {
    /// The perpetual purchase record a conversion deposits (device-led or from a PAK).
    pub(crate) fn perpetual(virtual_account_id: i64, tag: &str, sku: String, quantity: i64) -> Self {
        let term = LicenseTerm { kind: smartlic_core::LicenseKind::Perpetual, start: None, end: None };
        NewLicense { virtual_account_id, tag: tag.to_string(), sku, quantity, term, subscription_id: None }
    }

    /// The record this became, stored as `id` at `now`.
    pub(crate) fn recorded(self, id: i64, now: Timestamp) -> LicenseRecord {
        let NewLicense { virtual_account_id, tag, sku, quantity, term, subscription_id } = self;
        LicenseRecord { id, virtual_account_id, tag, sku, quantity, term, subscription_id, created_at: now }
    }
}

impl RegistrationToken {
    pub fn facts(&self) -> TokenFacts {
        TokenFacts {
            expires_at: self.expires_at,
            max_uses: self.max_uses,
            uses: self.uses,
            revoked: self.revoked_at.is_some(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewToken {
    pub virtual_account_id: i64,
    /// See [`RegistrationToken::prefix`]; the store never sees the whole token.
    pub prefix: String,
    pub token_hash: String,
    pub description: String,
    pub expires_at: Timestamp,
    pub max_uses: Option<i64>,
    pub export_controlled: bool,
}

/// The ID certificate facts kept for an instance: enough to verify its signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFacts {
    pub serial: String,
    pub expires_at: Timestamp,
    pub key_algorithm: String,
    /// Raw public key, base64.
    pub public_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    pub virtual_account_id: i64,
    pub udi_pid: String,
    pub udi_sn: String,
    pub hostname: String,
    pub registered_at: Timestamp,
    pub last_contact_at: Timestamp,
    pub certificate: CertificateFacts,
    pub export_controlled: bool,
    pub usage_released: bool,
    /// The key before the last ID renewal, accepted until the new key signs a request: a
    /// renewal answer lost on its way must not lock the device out.
    pub previous_key: Option<StoredKey>,
    /// The evaluation use the device reported at its registration (ms, at most 90 days);
    /// None when it reported none.
    pub evaluation_used_ms: Option<i64>,
}

/// A device public key as the manager keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub algorithm: String,
    /// Raw public key, base64.
    pub public_key: String,
}

#[derive(Debug, Clone)]
pub struct NewInstance {
    pub id: String,
    pub token_hash: String,
    pub udi_pid: String,
    pub udi_sn: String,
    pub hostname: String,
    pub force: bool,
    pub certificate: CertificateFacts,
    /// The evaluation use the device reported (see [`Instance::evaluation_used_ms`]).
    pub evaluation_used_ms: Option<i64>,
}

/// A successful registration and where the device landed.
#[derive(Debug, Clone)]
pub struct Registered {
    pub instance: Instance,
    pub virtual_account: VirtualAccount,
    pub account: Account,
    /// The instance a forced registration replaced.
    pub replaced: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: i64,
    pub at: Timestamp,
    pub actor: String,
    pub kind: String,
    pub account_id: Option<i64>,
    pub virtual_account_id: Option<i64>,
    pub object: String,
    pub detail: String,
}

#[derive(Debug, Clone)]
pub struct NewEvent {
    pub at: Timestamp,
    pub actor: String,
    pub kind: String,
    pub account_id: Option<i64>,
    pub virtual_account_id: Option<i64>,
    pub object: String,
    pub detail: String,
}

text_enum! {
    /// What an alert is about; one alert per kind and object at a time.
    AlertKind, "alert kind" {
        /// Stored pool counters differ from the counts recomputed from the records.
        CountersDrifted = "counters-drifted",
        /// A pool uses or reserves more licenses than it holds.
        PoolOutOfCompliance = "pool-out-of-compliance",
        /// Licenses of a pool end soon.
        LicensesExpiring = "licenses-expiring",
        /// A product instance has not been heard from for too long.
        InstanceSilent = "instance-silent",
        /// A satellite has not synchronized within its period.
        SynchronizationOverdue = "synchronization-overdue",
    }
}

text_enum! {
    /// How urgently an alert asks for an operator.
    AlertSeverity, "alert severity" {
        Critical = "critical",
        Major = "major",
        Minor = "minor",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub id: i64,
    pub kind: AlertKind,
    pub severity: AlertSeverity,
    pub account_id: i64,
    pub virtual_account_id: Option<i64>,
    pub object: String,
    pub message: String,
    pub raised_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAlert {
    pub kind: AlertKind,
    pub severity: AlertSeverity,
    pub account_id: i64,
    pub virtual_account_id: Option<i64>,
    pub object: String,
    pub message: String,
}

text_enum! {
    /// Where a reservation's licenses are.
    ReservationStatus, "reservation status" {
        /// The licenses are out of the pool, on an offline device.
        Reserved = "reserved",
        /// The device's return code gave them back.
        Returned = "returned",
    }
}

/// One chunk of a reservation, taken from one purchase record (its term and subscription).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservedLicense {
    pub tag: String,
    pub quantity: i64,
    pub term: LicenseTerm,
    pub subscription_id: Option<String>,
    /// The purchase record it is drawn from: no other reservation draws the same licenses, and
    /// the chunk counts only while that record is valid. `None` only for chunks of reservations
    /// made before records were named whose record could not be found.
    pub license_id: Option<i64>,
}

/// Licenses reserved for one offline device and the signed code that carries them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub id: i64,
    pub virtual_account_id: i64,
    /// The device's request code, canonical form.
    pub request_code: String,
    pub kind: ReservationKind,
    pub udi_pid: String,
    pub udi_sn: String,
    pub piid: String,
    pub authorization_code: String,
    /// Hex of the digest return codes name the authorization by.
    pub authorization_digest: String,
    pub confirmation_code: String,
    pub status: ReservationStatus,
    pub created_at: Timestamp,
    pub created_by: String,
    pub returned_at: Option<Timestamp>,
    pub licenses: Vec<ReservedLicense>,
}

impl Instance {
    /// `PID:<pid>,SN:<sn>`, as events and messages name devices.
    pub fn udi(&self) -> String {
        format!("PID:{},SN:{}", self.udi_pid, self.udi_sn)
    }
}

impl Reservation {
    /// `PID:<pid>,SN:<sn>`, as events and messages name devices.
    pub fn udi(&self) -> String {
        format!("PID:{},SN:{}", self.udi_pid, self.udi_sn)
    }
}

#[derive(Debug, Clone)]
pub struct NewReservation {
    pub request_code: String,
    pub kind: ReservationKind,
    pub udi_pid: String,
    pub udi_sn: String,
    pub piid: String,
    pub authorization_code: String,
    pub authorization_digest: String,
    pub confirmation_code: String,
    pub licenses: Vec<ReservedLicense>,
}
