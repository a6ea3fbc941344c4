//! Messages of the device protocol (JSON over HTTPS, `docs/PROTOCOL.md`).
//!
//! Every request body carries a timestamp and a nonce and is signed by the device key; every
//! answer, errors included, is signed by the manager. Signatures cover a domain-separated
//! string holding the path, so a message signed for one endpoint means nothing at another.

use serde::{Deserialize, Serialize};

pub const PROTOCOL_VERSION: u32 = 1;

/// Base64 signature of the request (device key) or the answer (manager key).
pub const SIGNATURE_HEADER: &str = "x-smartlic-signature";

/// On a satellite's answers: base64 of its certificate (PEM), issued by the cloud CA. The
/// answer's signature is then by the key of that certificate, and the device trusts it when
/// the certificate chains to the manager CA it trusts and is valid by its clock (S-6).
pub const SATELLITE_CERTIFICATE_HEADER: &str = "x-smartlic-satellite-certificate";

pub const PATH_REGISTER: &str = "/device/v1/register";
pub const PATH_RENEW_ID: &str = "/device/v1/renew-id";
pub const PATH_AUTHORIZE: &str = "/device/v1/authorize";
pub const PATH_DEREGISTER: &str = "/device/v1/deregister";
pub const PATH_CONVERT: &str = "/device/v1/convert";

/// The bytes a device signs for a request to `path`.
pub fn request_signing_input(path: &str, body: &[u8]) -> Vec<u8> {
    signing_input(b"smartlic-request-v1\n", path, body)
}

/// The bytes the manager signs for its answer at `path`.
pub fn response_signing_input(path: &str, body: &[u8]) -> Vec<u8> {
    signing_input(b"smartlic-response-v1\n", path, body)
}

fn signing_input(domain: &[u8], path: &str, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(domain.len() + path.len() + 1 + body.len());
    v.extend_from_slice(domain);
    v.extend_from_slice(path.as_bytes());
    v.push(b'\n');
    v.extend_from_slice(body);
    v
}

/// Unique device identifier: product ID and serial number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Udi {
    pub pid: String,
    pub sn: String,
}

impl std::fmt::Display for Udi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PID:{},SN:{}", self.pid, self.sn)
    }
}

/// Fields present in every request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    pub version: u32,
    /// Device time, Unix milliseconds; must be within the manager's tolerance.
    pub timestamp: i64,
    /// At least 16 characters, never reused by the device.
    pub nonce: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    #[serde(flatten)]
    pub envelope: Envelope,
    pub token: String,
    pub udi: Udi,
    #[serde(default)]
    pub hostname: Option<String>,
    /// Replace an instance already registered with this UDI.
    #[serde(default)]
    pub force: bool,
    /// PKCS#10 request (PEM) for the device's new key; the request body is signed by it too.
    pub csr: String,
    /// How much of its 90-day evaluation the device has used, shown in the manager's
    /// instance view. Absent from devices that predate it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation_used_ms: Option<i64>,
}

/// Intervals the device follows until the next answer tells otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intervals {
    /// Renew the ID certificate this long after it was issued.
    pub id_renew_secs: i64,
    /// Request authorization again this long after a success, even without a usage change.
    pub auth_renew_secs: i64,
    /// An authorization stays valid this long without a renewal.
    pub auth_validity_secs: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterResponse {
    pub request_nonce: String,
    pub timestamp: i64,
    pub instance_id: String,
    pub smart_account: String,
    pub smart_account_domain: String,
    pub virtual_account: String,
    pub export_controlled: bool,
    pub certificate: String,
    pub certificate_serial: String,
    /// End of the certificate's validity, Unix milliseconds.
    pub certificate_expires: i64,
    pub intervals: Intervals,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenewIdRequest {
    #[serde(flatten)]
    pub envelope: Envelope,
    pub instance_id: String,
    /// A request for the device's next key, signed by it; the body is signed by the current key.
    pub csr: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewIdResponse {
    pub request_nonce: String,
    pub timestamp: i64,
    pub certificate: String,
    pub certificate_serial: String,
    /// End of the certificate's validity, Unix milliseconds.
    pub certificate_expires: i64,
    pub intervals: Intervals,
}

/// One entitlement tag in use and how many.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Usage {
    pub tag: String,
    pub count: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeRequest {
    #[serde(flatten)]
    pub envelope: Envelope,
    pub instance_id: String,
    #[serde(default)]
    pub hostname: Option<String>,
    /// The full list in use, possibly empty.
    pub usage: Vec<Usage>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuthorizationStatus {
    Authorized,
    OutOfCompliance,
    NoLicensesInUse,
}

impl AuthorizationStatus {
    /// The words the device shows (`show license status`).
    pub fn display(self) -> &'static str {
        match self {
            AuthorizationStatus::Authorized => "AUTHORIZED",
            AuthorizationStatus::OutOfCompliance => "OUT OF COMPLIANCE",
            AuthorizationStatus::NoLicensesInUse => "NO LICENSES IN USE",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntitlementStatus {
    pub tag: String,
    pub display_name: String,
    pub count: i64,
    pub status: AuthorizationStatus,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizeResponse {
    pub request_nonce: String,
    pub timestamp: i64,
    pub status: AuthorizationStatus,
    pub entitlements: Vec<EntitlementStatus>,
    /// Until when the authorization holds without renewal (Unix ms).
    pub valid_until: i64,
    pub intervals: Intervals,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeregisterRequest {
    #[serde(flatten)]
    pub envelope: Envelope,
    pub instance_id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeregisterResponse {
    pub request_nonce: String,
    pub timestamp: i64,
    pub instance_id: String,
}

/// One legacy license a device holds, by the name it reports (device-led conversion, V-1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegacyLicense {
    pub name: String,
    pub count: i64,
}

/// A registered device asks for its legacy licenses to be converted (once in its lifetime).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvertRequest {
    #[serde(flatten)]
    pub envelope: Envelope,
    pub instance_id: String,
    pub legacy: Vec<LegacyLicense>,
}

/// What one legacy license became: `quantity` of `tag`, or nothing when the manager's
/// catalogue does not know the name (`tag` None: reported, never guessed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvertedLicense {
    pub name: String,
    pub count: i64,
    #[serde(default)]
    pub tag: Option<String>,
    #[serde(default)]
    pub quantity: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvertResponse {
    pub request_nonce: String,
    pub timestamp: i64,
    /// The device was converted before: nothing was deposited now, `items` is empty.
    pub already_converted: bool,
    pub items: Vec<ConvertedLicense>,
}

/// Stable error codes of the device protocol.
pub mod code {
    pub const MALFORMED: &str = "MALFORMED_REQUEST";
    pub const UNSUPPORTED_VERSION: &str = "UNSUPPORTED_VERSION";
    pub const INVALID_TOKEN: &str = "INVALID_TOKEN";
    pub const ALREADY_REGISTERED: &str = "ALREADY_REGISTERED";
    pub const CLOCK_SKEW: &str = "CLOCK_SKEW";
    pub const BAD_SIGNATURE: &str = "SIGNATURE_MISMATCH";
    pub const REPLAY: &str = "REPLAYED_NONCE";
    pub const UNKNOWN_INSTANCE: &str = "UNKNOWN_INSTANCE";
    pub const CERTIFICATE_EXPIRED: &str = "CERTIFICATE_EXPIRED";
    pub const BAD_CSR: &str = "INVALID_CSR";
    /// The cloud refuses a device of a pool a satellite serves (one manager per pool).
    pub const SERVED_BY_SATELLITE: &str = "SERVED_BY_SATELLITE";
    /// Device-led conversion is enabled neither for the device's virtual account nor its smart account.
    pub const CONVERSION_NOT_ENABLED: &str = "CONVERSION_NOT_ENABLED";
    /// Device-led conversion asked of a satellite, which does not do it (seed 000).
    pub const CONVERSION_NOT_SUPPORTED: &str = "CONVERSION_NOT_SUPPORTED";
    pub const INTERNAL: &str = "INTERNAL_ERROR";
}

/// The seeds' texts for the errors they name.
pub mod text {
    /// Seed 002's text for a refused token (sent with code `INVALID_TOKEN`).
    pub const INVALID_TOKEN: &str = "The Product Instance Registration Token you have entered is either invalid or has been expired. Ensure that you have pasted the entire token and that the token has not expired";
    /// Seed 004 scenario 1.
    pub const ALREADY_REGISTERED: &str = "Product already registered";
    /// Seed 004 scenario 9.
    pub const BAD_SIGNATURE: &str = "Data and signature do not match";
    /// Seed 004 scenario 6: the answer of a satellite whose certificate has expired (or is not
    /// yet valid, or was not issued by the manager CA the device trusts).
    pub const SATELLITE_CERTIFICATE_INVALID: &str = "Missing Id Certificate Serial Number Field; Missing Signing Certificate Serial Number Field; Signed Data And Certificate Do Not Match";
    /// Seed 000: a registration token brought to another manager than the one that issued it (S-4).
    pub const TOKEN_OF_ANOTHER_MANAGER: &str = "The Product Instance Registration Token was issued by another license manager. If registering with the Smart Software Manager Satellite server, use the token from the satellite manager to register. Do not use the token from CSSM.";

    /// Seed 000: conversion must be enabled "for the Smart Account as a whole or for the virtual
    /// account to which [the device] is registered".
    pub const CONVERSION_NOT_ENABLED: &str = "Device Led Conversion is not enabled for the Smart Account or the Virtual Account this product is registered to; the Smart Account administrator can enable it under License Conversion";

    /// Seed 004 scenario 3.
    pub fn clock_skew(device_ms: i64) -> String {
        format!("The device date '{device_ms}' is offset beyond the allowed tolerance limit.")
    }

    /// Public facts §2.3: the manager no longer knows this instance.
    pub fn unknown_instance(id: &str) -> String {
        format!("The identity for the instance {id} is not valid.Please re-register the instance.")
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    /// The request field at fault, when there is one (`timestamp`, `token`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// Body of every error answer, device protocol and REST API alike.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub error: ErrorDetail,
    /// A device-protocol error echoes the nonce of the request it answers (when the request had
    /// a well-formed one), so a recorded error cannot be replayed as the answer to another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_nonce: Option<String>,
}

/// Whether `nonce` has the shape every request nonce must have: 16 to 128 printable characters.
pub fn nonce_well_formed(nonce: &str) -> bool {
    (16..=128).contains(&nonce.len()) && nonce.chars().all(|c| c.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_reject_unknown_fields() {
        let req = AuthorizeRequest {
            envelope: Envelope { version: 1, timestamp: 5, nonce: "n".repeat(16) },
            instance_id: "i".into(),
            hostname: None,
            usage: vec![Usage { tag: "ACI Essentials".into(), count: 3 }],
        };
        let json = serde_json::to_string(&req).unwrap();
        assert!(json.contains("\"timestamp\":5"));
        assert_eq!(serde_json::from_str::<AuthorizeRequest>(&json).unwrap(), req);
        let extra = json.replace("\"usage\"", "\"bogus\":1,\"usage\"");
        assert!(serde_json::from_str::<AuthorizeRequest>(&extra).is_err());
        assert_ne!(request_signing_input(PATH_AUTHORIZE, b"x"), request_signing_input(PATH_REGISTER, b"x"));
        assert_ne!(request_signing_input(PATH_AUTHORIZE, b"x"), response_signing_input(PATH_AUTHORIZE, b"x"));
    }
}
