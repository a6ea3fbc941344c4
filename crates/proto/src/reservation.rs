//! Offline license reservation codes: the three texts an operator carries between a device
//! that never talks to a manager and the manager's portal, CLI or API.
//!
//! * **Request code** (device → manager), in the shape devices print:
//!   `C<kind>-Z<PID>:<SN>-<key>-<check>`. `<kind>` is `B` for a specific reservation and `U`
//!   for a universal one; `<key>` is nine Base58 characters of the SHA-256 of the device's
//!   reservation public key (a commitment to the key that will sign the return code); `<check>`
//!   is the first byte of the SHA-256 of everything before the last `-`, in upper-case hex, so a
//!   mistyped code is refused before anything is looked up.
//! * **Authorization code** (manager → device), the XML shape of the original system:
//!   `<specificPLR>` or `<universalPLR>` holding an `<authorizationCode>` element, its
//!   `<signature>` (base64, by the manager's CA key, over the exact bytes of the
//!   `<authorizationCode>…</authorizationCode>` element) and the `<udi>`. The signed element
//!   carries the request code, so a code made for one request cannot be installed on another.
//!   The device prints the first 4 bytes of the SHA-256 of the signed element as the 8-hex-digit
//!   confirmation code; the manager can print the same.
//! * **Return code** (device → manager): Base58 in groups of six joined by `-`. It holds a version,
//!   whether the code had been installed, the first 8 bytes of the SHA-256 of the signed
//!   authorization element (which reservation), the device's Ed25519 reservation public key and
//!   its signature over all of that and the request code. The manager accepts it only when the
//!   key matches the commitment in the reservation's request code and the signature verifies.
//!
//! The authorization code's XML is ours to write and read: one fixed layout, parsed strictly.

use crate::keys::{KeyAlgorithm, PublicKey, SigningKey};
use chrono::{DateTime, SecondsFormat, Utc};
use ring::digest::{digest, SHA256};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReservationError {
    #[error("the reservation request code is malformed: {0}")]
    BadRequestCode(String),
    #[error("the reservation request code's check characters do not match: it was mistyped or altered")]
    RequestChecksum,
    #[error("the authorization code is malformed: {0}")]
    BadAuthorizationCode(String),
    #[error("the authorization code's signature does not match any trusted manager key")]
    AuthorizationSignature,
    #[error("the return code is malformed: {0}")]
    BadReturnCode(String),
    #[error("the return code was not made by the device the licenses are reserved for")]
    ReturnKeyMismatch,
    #[error("the return code's signature does not match: it was altered")]
    ReturnSignature,
    #[error("signing failed: {0}")]
    Signing(String),
}

type Result<T> = std::result::Result<T, ReservationError>;

/// Specific (named licenses) or universal (everything) reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReservationKind {
    Specific,
    Universal,
}

impl ReservationKind {
    fn letter(self) -> char {
        match self {
            ReservationKind::Specific => 'B',
            ReservationKind::Universal => 'U',
        }
    }

    /// The `<flag>` of its authorization codes.
    fn flag(self) -> &'static str {
        match self {
            ReservationKind::Specific => "A",
            ReservationKind::Universal => "U",
        }
    }

    fn root(self) -> &'static str {
        match self {
            ReservationKind::Specific => "specificPLR",
            ReservationKind::Universal => "universalPLR",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ReservationKind::Specific => "specific",
            ReservationKind::Universal => "universal",
        }
    }

    /// The original API's `reservationType`.
    pub fn api_name(self) -> &'static str {
        match self {
            ReservationKind::Specific => "SPECIFIC",
            ReservationKind::Universal => "UNIVERSAL",
        }
    }
}

/// Takes back exactly [`ReservationKind::as_str`], as the manager stores it.
impl std::str::FromStr for ReservationKind {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        [ReservationKind::Specific, ReservationKind::Universal]
            .into_iter()
            .find(|k| k.as_str() == text)
            .ok_or_else(|| format!("unknown reservation kind '{text}'"))
    }
}

const KEY_FINGERPRINT_LEN: usize = 9;
const BASE58: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

fn sha256(bytes: &[u8]) -> [u8; 32] {
    digest(&SHA256, bytes).as_ref().try_into().expect("SHA-256 is 32 bytes")
}

/// Nine Base58 characters committing to a reservation public key.
fn key_fingerprint(key: &PublicKey) -> String {
    sha256(&key.raw)[..KEY_FINGERPRINT_LEN].iter().map(|b| BASE58[usize::from(*b) % BASE58.len()] as char).collect()
}

fn check_chars(body: &str) -> String {
    format!("{:02X}", sha256(body.as_bytes())[0])
}

/// A device's reservation request, as printed by `license smart reservation request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestCode {
    pub kind: ReservationKind,
    pub pid: String,
    pub sn: String,
    key_fingerprint: String,
}

fn valid_udi_part(what: &str, value: &str) -> Result<()> {
    if value.is_empty() || value.len() > 64 || !value.chars().all(|c| c.is_ascii_graphic() && c != ':') {
        return Err(ReservationError::BadRequestCode(format!(
            "the {what} must be 1 to 64 printable characters without ':' (got {value:?})"
        )));
    }
    Ok(())
}

impl RequestCode {
    /// The request of device `pid`/`sn` whose reservation key is `key`.
    pub fn new(kind: ReservationKind, pid: &str, sn: &str, key: &PublicKey) -> Result<Self> {
        valid_udi_part("product ID", pid)?;
        valid_udi_part("serial number", sn)?;
        Ok(RequestCode { kind, pid: pid.into(), sn: sn.into(), key_fingerprint: key_fingerprint(key) })
    }

    pub fn parse(text: &str) -> Result<Self> {
        let bad = |why: &str| ReservationError::BadRequestCode(why.to_string());
        let text = text.trim();
        let (body, check) = text.rsplit_once('-').ok_or_else(|| bad("expected C?-Z<PID>:<SN>-<key>-<check>"))?;
        let (udi_part, fingerprint) =
            body.rsplit_once('-').ok_or_else(|| bad("expected C?-Z<PID>:<SN>-<key>-<check>"))?;
        let kind = match udi_part.get(..4) {
            Some("CB-Z") => ReservationKind::Specific,
            Some("CU-Z") => ReservationKind::Universal,
            _ => return Err(bad("it must start with CB-Z (specific) or CU-Z (universal)")),
        };
        let (pid, sn) = udi_part[4..].rsplit_once(':').ok_or_else(|| bad("expected <PID>:<SN> after the kind"))?;
        valid_udi_part("product ID", pid)?;
        valid_udi_part("serial number", sn)?;
        if fingerprint.len() != KEY_FINGERPRINT_LEN || !fingerprint.bytes().all(|b| BASE58.contains(&b)) {
            return Err(bad("the key field must be 9 Base58 characters"));
        }
        if check.len() != 2 || !check.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("the check field must be 2 hexadecimal characters"));
        }
        if !check.eq_ignore_ascii_case(&check_chars(body)) {
            return Err(ReservationError::RequestChecksum);
        }
        Ok(RequestCode { kind, pid: pid.into(), sn: sn.into(), key_fingerprint: fingerprint.into() })
    }

    /// Whether `key` is the reservation key this request committed to.
    pub fn made_with(&self, key: &PublicKey) -> bool {
        key_fingerprint(key) == self.key_fingerprint
    }

    /// `P:<PID>,S:<SN>`, the `<udi>` of authorization codes.
    pub fn udi(&self) -> String {
        format!("P:{},S:{}", self.pid, self.sn)
    }
}

impl fmt::Display for RequestCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let body = format!("C{}-Z{}:{}-{}", self.kind.letter(), self.pid, self.sn, self.key_fingerprint);
        write!(f, "{body}-{}", check_chars(&body))
    }
}

/// One reserved entitlement of a specific reservation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReservedEntitlement {
    pub tag: String,
    pub count: i64,
    /// Unix milliseconds; None for perpetual licenses.
    pub start: Option<i64>,
    pub end: Option<i64>,
    /// `PERPETUAL`, `TERM` or `DEMO`.
    pub license_type: String,
    pub display_name: String,
    pub subscription_id: String,
}

/// What an authorization code grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub kind: ReservationKind,
    /// Product instance identifier the manager gave the reservation.
    pub piid: String,
    /// Issue time, Unix milliseconds.
    pub timestamp: i64,
    pub request_code: String,
    pub entitlements: Vec<ReservedEntitlement>,
}

/// An authorization code whose signature was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAuthorization {
    pub authorization: Authorization,
    pub identity: CodeIdentity,
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn unescape(text: &str) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let entity_end = rest[at..].find(';').ok_or_else(|| bad_auth("an unterminated '&' escape"))?;
        out.push(match &rest[at..at + entity_end + 1] {
            "&amp;" => '&',
            "&lt;" => '<',
            "&gt;" => '>',
            "&quot;" => '"',
            "&apos;" => '\'',
            other => return Err(bad_auth(&format!("unknown escape {other}"))),
        });
        rest = &rest[at + entity_end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn bad_auth(why: &str) -> ReservationError {
    ReservationError::BadAuthorizationCode(why.to_string())
}

fn iso(ms: Option<i64>) -> String {
    ms.and_then(DateTime::<Utc>::from_timestamp_millis)
        .map(|d| d.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_default()
}

fn parse_iso(text: &str) -> Result<Option<i64>> {
    if text.is_empty() {
        return Ok(None);
    }
    DateTime::parse_from_rfc3339(text)
        .map(|d| Some(d.timestamp_millis()))
        .map_err(|_| bad_auth(&format!("{text:?} is not an ISO-8601 date")))
}

/// Reads the strict layout written by [`Authorization::to_code`] one element at a time.
struct Elements<'a> {
    rest: &'a str,
}

impl<'a> Elements<'a> {
    /// The raw content of the next element, which must be `<name>`.
    fn next(&mut self, name: &str) -> Result<&'a str> {
        let rest = self.rest.trim_start();
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        let body = rest.strip_prefix(open.as_str()).ok_or_else(|| bad_auth(&format!("expected <{name}>")))?;
        let end = body.find(close.as_str()).ok_or_else(|| bad_auth(&format!("<{name}> is not closed")))?;
        self.rest = &body[end + close.len()..];
        Ok(&body[..end])
    }

    fn text(&mut self, name: &str) -> Result<String> {
        let raw = self.next(name)?;
        if raw.contains('<') {
            return Err(bad_auth(&format!("<{name}> must hold text only")));
        }
        unescape(raw)
    }

    fn done(&self) -> Result<()> {
        if self.rest.trim().is_empty() {
            Ok(())
        } else {
            Err(bad_auth("unexpected text after the last element"))
        }
    }
}

fn entitlement_xml(e: &ReservedEntitlement) -> String {
    format!(
        "<entitlement><tag>{}</tag><count>{}</count><startDate>{}</startDate><endDate>{}</endDate>\
         <licenseType>{}</licenseType><displayName>{}</displayName><tagDescription>{}</tagDescription>\
         <subscriptionID>{}</subscriptionID></entitlement>",
        escape(&e.tag),
        e.count,
        iso(e.start),
        iso(e.end),
        escape(&e.license_type),
        escape(&e.display_name),
        escape(&e.display_name),
        escape(&e.subscription_id)
    )
}

fn parse_entitlement(xml: &str) -> Result<ReservedEntitlement> {
    let mut el = Elements { rest: xml };
    let tag = el.text("tag")?;
    let count = el.text("count")?;
    let count =
        count.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| bad_auth("a count must be a positive integer"))?;
    let start = parse_iso(&el.text("startDate")?)?;
    let end = parse_iso(&el.text("endDate")?)?;
    let license_type = el.text("licenseType")?;
    let display_name = el.text("displayName")?;
    el.text("tagDescription")?;
    let subscription_id = el.text("subscriptionID")?;
    el.done()?;
    if tag.is_empty() {
        return Err(bad_auth("an entitlement has an empty <tag>"));
    }
    Ok(ReservedEntitlement { tag, count, start, end, license_type, display_name, subscription_id })
}

impl Authorization {
    fn signed_element(&self) -> String {
        let flag = self.kind.flag();
        let entitlements: String = self.entitlements.iter().map(entitlement_xml).collect();
        format!(
            "<authorizationCode><flag>{flag}</flag><version>C</version><piid>{}</piid><timestamp>{}</timestamp>\
             <requestCode>{}</requestCode><entitlements>{entitlements}</entitlements></authorizationCode>",
            escape(&self.piid),
            self.timestamp,
            escape(&self.request_code)
        )
    }

    /// The code to hand to the device, signed by the manager's `signer`.
    pub fn to_code(&self, signer: &SigningKey, udi: &str) -> Result<String> {
        let signed = self.signed_element();
        let signature = signer.sign_b64(signed.as_bytes()).map_err(|e| ReservationError::Signing(e.to_string()))?;
        let root = self.kind.root();
        Ok(format!("<{root}>{signed}<signature>{signature}</signature><udi>{}</udi></{root}>", escape(udi)))
    }

    /// Parses `code` and checks its signature against each of `trusted` (the device's trust points).
    pub fn verify(code: &str, trusted: &[PublicKey]) -> Result<VerifiedAuthorization> {
        let parts = CodeParts::split(code)?;
        let signed = parts.signed();
        if !trusted.iter().any(|k| k.verify_b64(signed.as_bytes(), &parts.signature)) {
            return Err(ReservationError::AuthorizationSignature);
        }
        let kind = parts.kind;
        let mut fields = Elements { rest: parts.body };
        if fields.text("flag")? != kind.flag() {
            return Err(bad_auth("the <flag> does not match the reservation kind"));
        }
        fields.text("version")?;
        let piid = fields.text("piid")?;
        let timestamp = fields.text("timestamp")?.parse().map_err(|_| bad_auth("<timestamp> must be an integer"))?;
        let request_code = fields.text("requestCode")?;
        let mut list = Elements { rest: fields.next("entitlements")? };
        fields.done()?;
        let mut entitlements = Vec::new();
        while !list.rest.trim().is_empty() {
            entitlements.push(parse_entitlement(list.next("entitlement")?)?);
        }
        Ok(VerifiedAuthorization {
            authorization: Authorization { kind, piid, timestamp, request_code, entitlements },
            identity: CodeIdentity::of_signed(&signed),
        })
    }
}

/// An authorization code taken apart: its kind, the signed element's content, the signature.
struct CodeParts<'a> {
    kind: ReservationKind,
    body: &'a str,
    signature: String,
}

impl<'a> CodeParts<'a> {
    fn split(code: &'a str) -> Result<Self> {
        let code = code.trim();
        let kind = [ReservationKind::Specific, ReservationKind::Universal]
            .into_iter()
            .find(|k| code.starts_with(&format!("<{}>", k.root())))
            .ok_or_else(|| bad_auth("it must start with <specificPLR> or <universalPLR>"))?;
        let mut outer = Elements { rest: code };
        let mut inner = Elements { rest: outer.next(kind.root())? };
        outer.done()?;
        let body = inner.next("authorizationCode")?;
        let signature = inner.text("signature")?;
        inner.text("udi")?;
        inner.done()?;
        Ok(CodeParts { kind, body, signature })
    }

    /// The exact bytes the signature covers.
    fn signed(&self) -> String {
        format!("<authorizationCode>{}</authorizationCode>", self.body)
    }
}

/// What names an authorization code, from its signed element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeIdentity {
    /// The 8 hex digits the device prints as `Last Confirmation code`.
    pub confirmation_code: String,
    /// Names this authorization in return codes.
    pub digest: [u8; 8],
}

impl CodeIdentity {
    fn of_signed(signed: &str) -> Self {
        let hash = sha256(signed.as_bytes());
        CodeIdentity { confirmation_code: hex_lower(&hash[..4]), digest: hash[..8].try_into().expect("8 bytes") }
    }

    /// The identity of `code` without checking its signature: the manager's own code just signed,
    /// or a code installed earlier (a device returns its reservation even if its trust points
    /// changed since).
    pub fn of(code: &str) -> Result<Self> {
        Ok(Self::of_signed(&CodeParts::split(code)?.signed()))
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const RETURN_VERSION: u8 = 1;
const RETURN_GROUP: usize = 6;
const ED25519_KEY_LEN: usize = 32;
const ED25519_SIG_LEN: usize = 64;
const RETURN_LEN: usize = 2 + 8 + ED25519_KEY_LEN + ED25519_SIG_LEN;

/// A device's proof that it removed (or never installed) an authorization code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnCode {
    /// False for `return authorization` of a code that was never installed.
    pub was_installed: bool,
    /// Which authorization ([`VerifiedAuthorization::digest`]).
    pub authorization_digest: [u8; 8],
    key: PublicKey,
    signature: Vec<u8>,
}

fn return_signing_input(was_installed: bool, digest: &[u8; 8], request_code: &str) -> Vec<u8> {
    let mut v = b"smartlic-reservation-return-v1\n".to_vec();
    v.push(u8::from(was_installed));
    v.extend_from_slice(digest);
    v.extend_from_slice(request_code.as_bytes());
    v
}

impl ReturnCode {
    /// Signs the return of `authorization` with the device's reservation key (Ed25519).
    pub fn create(authorization: &VerifiedAuthorization, was_installed: bool, key: &SigningKey) -> Result<String> {
        Self::create_for(&authorization.identity.digest, &authorization.authorization.request_code, was_installed, key)
    }

    /// [`create`](Self::create) from the authorization's digest and request code.
    pub fn create_for(digest: &[u8; 8], request_code: &str, was_installed: bool, key: &SigningKey) -> Result<String> {
        if key.algorithm() != KeyAlgorithm::Ed25519 {
            return Err(ReservationError::Signing("reservation keys are Ed25519".into()));
        }
        let input = return_signing_input(was_installed, digest, request_code);
        let signature = key.sign(&input).map_err(|e| ReservationError::Signing(e.to_string()))?;
        let mut bytes = vec![RETURN_VERSION, u8::from(was_installed)];
        bytes.extend_from_slice(digest);
        bytes.extend_from_slice(&key.public_key().raw);
        bytes.extend_from_slice(&signature);
        let text = bs58::encode(bytes).into_string();
        let groups: Vec<&str> =
            text.as_bytes().chunks(RETURN_GROUP).map(|g| std::str::from_utf8(g).expect("Base58 is ASCII")).collect();
        Ok(groups.join("-"))
    }

    pub fn parse(text: &str) -> Result<Self> {
        let bad = |why: &str| ReservationError::BadReturnCode(why.to_string());
        let compact: String = text.trim().split('-').collect();
        let bytes = bs58::decode(&compact).into_vec().map_err(|e| bad(&format!("not Base58 text ({e})")))?;
        if bytes.len() != RETURN_LEN || bytes[0] != RETURN_VERSION || bytes[1] > 1 {
            return Err(bad("wrong length or version; copy the whole code the device printed"));
        }
        let key_end = 10 + ED25519_KEY_LEN;
        Ok(ReturnCode {
            was_installed: bytes[1] == 1,
            authorization_digest: bytes[2..10].try_into().expect("8 bytes"),
            key: PublicKey { algorithm: KeyAlgorithm::Ed25519, raw: bytes[10..key_end].to_vec() },
            signature: bytes[key_end..].to_vec(),
        })
    }

    /// Checks that the device which made `request` signed this return.
    pub fn verify(&self, request: &RequestCode) -> Result<()> {
        if !request.made_with(&self.key) {
            return Err(ReservationError::ReturnKeyMismatch);
        }
        let input = return_signing_input(self.was_installed, &self.authorization_digest, &request.to_string());
        if self.key.verify(&input, &self.signature) {
            Ok(())
        } else {
            Err(ReservationError::ReturnSignature)
        }
    }
}

/// The digest of an authorization code as the manager stores it, to find it from a return code.
pub fn digest_hex(digest: &[u8; 8]) -> String {
    hex_lower(digest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CertificateAuthority;

    fn device_key() -> SigningKey {
        SigningKey::generate(KeyAlgorithm::Ed25519).unwrap()
    }

    fn grant(request: &RequestCode) -> Authorization {
        Authorization {
            kind: request.kind,
            piid: "6ca07f56-0000-4000-8000-000000000001".into(),
            timestamp: 1_795_000_000_000,
            request_code: request.to_string(),
            entitlements: vec![ReservedEntitlement {
                tag: "C9500 Network Advantage".into(),
                count: 2,
                start: Some(1_790_000_000_000),
                end: Some(1_800_000_000_000),
                license_type: "TERM".into(),
                display_name: "C9500 Network Advantage & <more>".into(),
                subscription_id: "Sub-1".into(),
            }],
        }
    }

    #[test]
    fn request_codes_round_trip_and_catch_typos() {
        let key = device_key();
        let code = RequestCode::new(ReservationKind::Specific, "C9300-24UX", "FCW2134L0RN", &key.public_key()).unwrap();
        let text = code.to_string();
        assert!(text.starts_with("CB-ZC9300-24UX:FCW2134L0RN-"), "{text}");
        assert_eq!(text.len(), "CB-ZC9300-24UX:FCW2134L0RN-AK9A6sMTr-86".len());
        assert_eq!(RequestCode::parse(&text).unwrap(), code);
        assert!(code.made_with(&key.public_key()));
        assert!(!code.made_with(&device_key().public_key()));
        let typo = text.replacen("FCW", "FCV", 1);
        assert_eq!(RequestCode::parse(&typo), Err(ReservationError::RequestChecksum));
        for garbled in
            ["", "CB-ZC9300", "XX-ZC9300:SN-AK9A6sMTr-86", "CB-ZC9300:SN-AK9A6sMT0-86", "CB-Z:SN-AK9A6sMTr-86"]
        {
            assert!(RequestCode::parse(garbled).is_err(), "{garbled}");
        }
        let universal = RequestCode::new(ReservationKind::Universal, "C9300", "X1", &key.public_key()).unwrap();
        assert!(universal.to_string().starts_with("CU-ZC9300:X1-"));
    }

    #[test]
    fn authorization_codes_verify_against_the_manager_key_only() {
        let ca = CertificateAuthority::generate("test CA", 1_800_000_000).unwrap();
        let request = RequestCode::new(ReservationKind::Specific, "C9500", "SN1", &device_key().public_key()).unwrap();
        let auth = grant(&request);
        let code = auth.to_code(ca.signer(), &request.udi()).unwrap();
        assert!(code.starts_with("<specificPLR><authorizationCode><flag>A</flag>"), "{code}");
        let trusted = [ca.signer().public_key()];
        let verified = Authorization::verify(&code, &trusted).unwrap();
        assert_eq!(verified.authorization, auth);
        assert_eq!(verified.identity.confirmation_code.len(), 8);
        let other = CertificateAuthority::generate("other", 1_800_000_000).unwrap();
        assert_eq!(
            Authorization::verify(&code, &[other.signer().public_key()]),
            Err(ReservationError::AuthorizationSignature)
        );
        let tampered = code.replace("<count>2</count>", "<count>9</count>");
        assert_eq!(Authorization::verify(&tampered, &trusted), Err(ReservationError::AuthorizationSignature));
        assert!(matches!(
            Authorization::verify("<specificPLR>junk", &trusted),
            Err(ReservationError::BadAuthorizationCode(_))
        ));
    }

    #[test]
    fn return_codes_prove_the_device_key() {
        let ca = CertificateAuthority::generate("test CA", 1_800_000_000).unwrap();
        let key = device_key();
        let request = RequestCode::new(ReservationKind::Specific, "C9500", "SN1", &key.public_key()).unwrap();
        let code = grant(&request).to_code(ca.signer(), &request.udi()).unwrap();
        let verified = Authorization::verify(&code, &[ca.signer().public_key()]).unwrap();
        assert_eq!(CodeIdentity::of(&code), Ok(verified.identity.clone()));
        let text = ReturnCode::create(&verified, true, &key).unwrap();
        assert!(text.split('-').all(|g| g.len() <= 6 && !g.contains(['0', 'O', 'I', 'l'])), "{text}");
        let parsed = ReturnCode::parse(&text).unwrap();
        assert!(parsed.was_installed);
        assert_eq!(parsed.authorization_digest, verified.identity.digest);
        assert_eq!(parsed.verify(&request), Ok(()));

        let forged = ReturnCode::create(&verified, true, &device_key()).unwrap();
        assert_eq!(ReturnCode::parse(&forged).unwrap().verify(&request), Err(ReservationError::ReturnKeyMismatch));
        let flipped = ReturnCode::create(&verified, false, &key).unwrap();
        let mut mixed = ReturnCode::parse(&flipped).unwrap();
        mixed.was_installed = true;
        assert_eq!(mixed.verify(&request), Err(ReservationError::ReturnSignature));
        assert!(ReturnCode::parse("ChWhde-okvz5f").is_err());
        assert!(ReturnCode::parse("0OIl00").is_err());
    }
}
