//! The device protocol (docs/PROTOCOL.md): registration with a token, ID certificate
//! renewal, authorization of usage, deregistration. Every request is checked for version,
//! clock skew, signature and replay before it changes anything; every answer is signed.

use crate::error::ApiError;
use crate::metrics::Outcome;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::Uri;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::Router;
use base64::{engine::general_purpose::STANDARD as B64, Engine};
use rand::RngCore;
use serde::de::DeserializeOwned;
use serde::Serialize;
use smartlic_core::{validate, Timestamp};
use smartlic_proto::wire::Udi;
use smartlic_proto::wire::{self, code, text, AuthorizationStatus, Envelope};
use smartlic_proto::{CertificateRequest, KeyAlgorithm, PublicKey};
use smartlic_store::{CertificateFacts, Instance, NewInstance, RegisterRefusal, UsageReport};
use std::collections::BTreeMap;

/// The prefixes a device's configured URL may carry before the protocol paths (the URL is a
/// base the paths are appended to, docs/PROTOCOL.md): a satellite's `/SmartTransport`, the
/// legacy transport gateway's, and the original cloud's call-home service (the default
/// destination of call home). Answers are signed over the protocol path alone, whatever the prefix.
pub const PATH_PREFIXES: [&str; 3] =
    ["/SmartTransport", "/Transportgateway/services/DeviceRequestHandler", "/its/service/oddce/services/DDCEService"];

/// The protocol paths, bare and under each of [`PATH_PREFIXES`].
pub fn router() -> Router<AppState> {
    let paths = Router::new()
        .route(wire::PATH_REGISTER, post(register))
        .route(wire::PATH_RENEW_ID, post(renew_id))
        .route(wire::PATH_AUTHORIZE, post(authorize))
        .route(wire::PATH_DEREGISTER, post(deregister))
        .route(wire::PATH_CONVERT, post(crate::conversion::convert))
        .route("/device/{*rest}", any(unknown_path));
    PATH_PREFIXES.iter().fold(paths.clone(), |router, prefix| router.nest(prefix, paths.clone()))
}

/// Devices act only on signed answers, so even "no such endpoint" is signed.
async fn unknown_path(State(state): State<AppState>, uri: Uri) -> Response {
    let e = ApiError::not_found(format!("no device endpoint at {}; see docs/PROTOCOL.md", uri.path()));
    signed(&state, uri.path(), e.status, &e.body())
}

/// The request body, or a signed refusal (too large, unreadable) in the device's terms.
pub(crate) type RawBody = Result<Bytes, BytesRejection>;

/// The request's bytes kept for a refusal (its nonce, what it was about): a reference, not a copy.
pub(crate) fn readable(body: &RawBody) -> Option<Bytes> {
    body.as_ref().ok().cloned()
}

pub(crate) fn body_bytes(body: RawBody) -> Result<Bytes, ApiError> {
    body.map_err(|r| {
        let code = if r.status() == StatusCode::PAYLOAD_TOO_LARGE { "PAYLOAD_TOO_LARGE" } else { code::MALFORMED };
        refusal(r.status(), code, r.body_text())
    })
}

/// An answer signed by the manager over the path and the exact body bytes.
fn signed(state: &AppState, path: &str, status: StatusCode, body: &impl Serialize) -> Response {
    let bytes = match serde_json::to_vec(body) {
        Ok(b) => b,
        Err(e) => return ApiError::internal(e).into_response(),
    };
    let signature = match state.ca.signer().sign_b64(&wire::response_signing_input(path, &bytes)) {
        Ok(s) => s,
        Err(e) => return ApiError::internal(e).into_response(),
    };
    let mut response = (status, [(axum::http::header::CONTENT_TYPE, "application/json")], bytes).into_response();
    if let Ok(v) = HeaderValue::from_str(&signature) {
        response.headers_mut().insert(wire::SIGNATURE_HEADER, v);
    }
    // A satellite's key is trusted through the certificate the cloud issued it (S-6).
    if let Some(certificate) = state.satellite.certificate_header() {
        response.headers_mut().insert(wire::SATELLITE_CERTIFICATE_HEADER, certificate);
    }
    response
}

pub(crate) fn refusal(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(status, code, message)
}

pub(crate) fn malformed(message: impl Into<String>) -> ApiError {
    refusal(StatusCode::BAD_REQUEST, code::MALFORMED, message)
}

fn bad_signature() -> ApiError {
    refusal(StatusCode::UNAUTHORIZED, code::BAD_SIGNATURE, text::BAD_SIGNATURE)
}

pub(crate) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| malformed(format!("the request is not a valid message: {e}")))
}

/// Version, nonce shape and clock tolerance (C-9).
fn check_envelope(state: &AppState, e: &Envelope, now: Timestamp) -> Result<(), ApiError> {
    if e.version != wire::PROTOCOL_VERSION {
        let msg =
            format!("protocol version {} is not supported; this manager speaks {}", e.version, wire::PROTOCOL_VERSION);
        return Err(refusal(StatusCode::BAD_REQUEST, code::UNSUPPORTED_VERSION, msg).with_field("version"));
    }
    if !wire::nonce_well_formed(&e.nonce) {
        return Err(malformed("the nonce must be 16 to 128 printable characters").with_field("nonce"));
    }
    // Checked: a timestamp near the integer limits must not wrap into the tolerance.
    let skew = e.timestamp.checked_sub(now.0).and_then(i64::checked_abs);
    if skew.is_none_or(|ms| ms > state.policy.clock_tolerance_ms) {
        return Err(
            refusal(StatusCode::BAD_REQUEST, code::CLOCK_SKEW, text::clock_skew(e.timestamp)).with_field("timestamp")
        );
    }
    Ok(())
}

fn signature_of(headers: &HeaderMap) -> &str {
    headers.get(wire::SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// Refuses a nonce seen before in `scope`; nonces are kept as long as a timestamp could pass.
fn nonce_keep_until(state: &AppState, now: Timestamp) -> Timestamp {
    now.plus_ms(2 * state.policy.clock_tolerance_ms)
}

async fn consume_nonce(state: &AppState, scope: &str, nonce: &str, now: Timestamp) -> Result<(), ApiError> {
    let keep_until = nonce_keep_until(state, now);
    if !state.store.consume_nonce(scope, nonce, keep_until).await? {
        return Err(crate::error::replayed());
    }
    Ok(())
}

/// A device key as the store keeps it (algorithm name, raw key in base64).
fn stored_key(algorithm: &str, public_key: &str) -> Result<PublicKey, ApiError> {
    let key = KeyAlgorithm::parse(algorithm)
        .and_then(|algorithm| Some(PublicKey { algorithm, raw: B64.decode(public_key).ok()? }));
    key.ok_or_else(|| ApiError::internal("stored key unreadable"))
}

/// Whether [`authenticate`] records the nonce itself, or the caller does it in the same
/// transaction as the request's change.
#[derive(PartialEq)]
pub(crate) enum Nonce {
    Consume,
    ConsumedByCaller,
}

/// A request as received: where, its headers (the signature) and its exact body bytes.
pub(crate) struct SignedRequest<'a> {
    pub(crate) path: &'a str,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) body: &'a [u8],
}

/// Loads the instance and checks the request is signed by its key, in time, fresh and with
/// a live certificate (C-10).
pub(crate) async fn authenticate(
    state: &AppState,
    request: SignedRequest<'_>,
    instance_id: &str,
    envelope: &Envelope,
    nonce: Nonce,
    now: Timestamp,
) -> Result<Instance, ApiError> {
    let inst = state.store.instance(instance_id).await?.ok_or_else(|| {
        refusal(StatusCode::NOT_FOUND, code::UNKNOWN_INSTANCE, text::unknown_instance(instance_id))
            .with_field("instance_id")
    })?;
    crate::satellite::refuse_served_pool(state, inst.virtual_account_id).await?;
    let signed = wire::request_signing_input(request.path, request.body);
    let signature = signature_of(request.headers);
    let by_current =
        stored_key(&inst.certificate.key_algorithm, &inst.certificate.public_key)?.verify_b64(&signed, signature);
    // The key before a renewal whose answer may have been lost stays good until the new one is used.
    if !by_current {
        let previous = inst.previous_key.as_ref().ok_or_else(bad_signature)?;
        if !stored_key(&previous.algorithm, &previous.public_key)?.verify_b64(&signed, signature) {
            return Err(bad_signature());
        }
    }
    check_envelope(state, envelope, now)?;
    if inst.certificate.expires_at <= now {
        let msg = format!("the ID certificate expired on {}; register the product again", inst.certificate.expires_at);
        return Err(refusal(StatusCode::UNAUTHORIZED, code::CERTIFICATE_EXPIRED, msg));
    }
    if nonce == Nonce::Consume {
        consume_nonce(state, &inst.id, &envelope.nonce, now).await?;
    }
    if by_current && inst.previous_key.is_some() {
        state.store.forget_previous_key(&inst.id).await?;
    }
    Ok(inst)
}

fn intervals(state: &AppState) -> wire::Intervals {
    const DAY: i64 = 86_400;
    wire::Intervals {
        id_renew_secs: state.policy.id_renew_days * DAY,
        auth_renew_secs: state.policy.auth_renew_days * DAY,
        auth_validity_secs: state.policy.auth_validity_days * DAY,
    }
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// An instance identifier in the UUID layout devices show.
fn new_instance_id() -> String {
    let h = random_hex(16);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// A CSR parsed and self-signature checked; refused as the request's fault otherwise.
fn certificate_request(csr: &str) -> Result<CertificateRequest, ApiError> {
    CertificateRequest::from_pem(csr)
        .map_err(|e| refusal(StatusCode::BAD_REQUEST, code::BAD_CSR, e.to_string()).with_field("csr"))
}

/// Issues an ID certificate for the request, valid from now for the policy's lifetime.
fn issue(
    state: &AppState,
    request: &CertificateRequest,
    udi: &Udi,
    now: Timestamp,
) -> Result<(String, CertificateFacts), ApiError> {
    let serial = rand::thread_rng().next_u64() >> 1;
    let secs = now.0 / 1000;
    let lifetime = state.policy.id_certificate_days * 86_400;
    let issued = state
        .ca
        .issue_id_certificate(request, &udi.to_string(), serial, secs, secs + lifetime)
        .map_err(ApiError::internal)?;
    let facts = CertificateFacts {
        serial: issued.serial.clone(),
        expires_at: Timestamp((secs + lifetime) * 1000),
        key_algorithm: issued.public_key.algorithm.as_str().to_string(),
        public_key: B64.encode(&issued.public_key.raw),
    };
    Ok((issued.pem, facts))
}

pub(crate) fn field_text(field: &'static str, value: &str, max: usize) -> Result<String, ApiError> {
    validate::text(field, value, max).map_err(ApiError::from)
}

async fn register(State(state): State<AppState>, headers: HeaderMap, body: RawBody) -> Response {
    let path = wire::PATH_REGISTER;
    let request = readable(&body);
    let result = match body_bytes(body) {
        Ok(body) => do_register(&state, &headers, &body).await,
        Err(e) => Err(e),
    };
    match &result {
        Ok(_) => state.metrics.registration(Outcome::registered),
        Err(e) => {
            let about = about(request.as_deref(), |r| r.udi.map(|u| format!("PID:{},SN:{}", u.pid, u.sn)));
            refused(&state, "registration", about, e).await
        }
    }
    respond(&state, path, request.as_deref(), result)
}

/// What a refused request was about, as far as its body tells (a UDI, an instance ID), for
/// the log and the event; never the token or the signature. Read only once refused.
#[derive(serde::Deserialize)]
struct Readable {
    udi: Option<Udi>,
    instance_id: Option<String>,
}

fn about(body: Option<&[u8]>, what: fn(Readable) -> Option<String>) -> String {
    let read = body.and_then(|b| serde_json::from_slice::<Readable>(b).ok()).and_then(what);
    read.filter(|t| t.len() <= 2 * validate::MAX_NAME).unwrap_or_else(|| "an unreadable request".into())
}

/// Refused device requests recorded as events in one minute at most: anyone can send requests
/// to be refused, and they must not fill the event log (past it they are counted and logged).
const REFUSAL_EVENTS_PER_MINUTE: u32 = 120;

/// The refusal events recorded in the current minute of wall time.
#[derive(Default)]
pub struct RefusalEvents(std::sync::Mutex<Option<(tokio::time::Instant, u32)>>);

impl RefusalEvents {
    /// Whether one more refusal may be recorded at `now`.
    fn admit(&self, now: tokio::time::Instant) -> bool {
        let mut window = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match &mut *window {
            Some((start, recorded)) if now.duration_since(*start) < std::time::Duration::from_secs(60) => {
                *recorded = recorded.saturating_add(1);
                *recorded <= REFUSAL_EVENTS_PER_MINUTE
            }
            _ => {
                *window = Some((now, 1));
                true
            }
        }
    }
}

/// A refused registration or authorization: counted, logged with its reason and recorded as
/// an event (`registration.refused`, `authorization.refused`) for the operator.
async fn refused(state: &AppState, what: &'static str, about: String, e: &ApiError) {
    let outcome = if e.status.is_server_error() { Outcome::failed } else { Outcome::refused };
    match what {
        "registration" => state.metrics.registration(outcome),
        _ => state.metrics.authorization(outcome),
    }
    tracing::warn!(code = e.code, reason = %e.message, device = %about, "{what} refused");
    if !state.refusal_events.admit(tokio::time::Instant::now()) {
        return;
    }
    let event = smartlic_store::NewEvent {
        at: state.clock.now(),
        actor: "device".into(),
        kind: format!("{what}.refused"),
        account_id: None,
        virtual_account_id: None,
        object: about,
        detail: format!("{} ({})", e.message, e.code),
    };
    if let Err(e) = state.store.record_event(event).await {
        tracing::error!("cannot record the {what}.refused event: {e}");
    }
}

async fn do_register(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<wire::RegisterResponse, ApiError> {
    let now = state.clock.now();
    let req: wire::RegisterRequest = parse(body)?;
    check_envelope(state, &req.envelope, now)?;
    let pid = field_text("udi.pid", &req.udi.pid, 64)?;
    let sn = field_text("udi.sn", &req.udi.sn, 64)?;
    let hostname = validate::optional_text("hostname", req.hostname.as_deref().unwrap_or(""), 64)?;
    if req.token.trim().is_empty() || req.token.len() > 512 {
        return Err(refusal(StatusCode::BAD_REQUEST, code::INVALID_TOKEN, text::INVALID_TOKEN).with_field("token"));
    }
    let evaluation_limit = smartlic_core::agent::schedule::EVALUATION_MS;
    if let Some(ms) = req.evaluation_used_ms.filter(|ms| !(0..=evaluation_limit).contains(ms)) {
        let why = format!("evaluation_used_ms is {ms}: it must be between 0 and {evaluation_limit} (90 days)");
        return Err(malformed(why).with_field("evaluation_used_ms"));
    }
    let request = certificate_request(&req.csr)?;
    // The body must be signed by the key being certified (proof of possession), checked
    // before any certificate is made.
    if !request.public_key.verify_b64(&wire::request_signing_input(wire::PATH_REGISTER, body), signature_of(headers)) {
        return Err(bad_signature());
    }
    let token_hash = crate::auth::sha256_hex(req.token.trim());
    crate::satellite::refuse_served_token(state, &token_hash).await?;
    consume_nonce(state, "register", &req.envelope.nonce, now).await?;
    let udi = Udi { pid: pid.clone(), sn: sn.clone() };
    let (pem, cert) = issue(state, &request, &udi, now)?;
    let new = NewInstance {
        id: new_instance_id(),
        token_hash,
        udi_pid: pid,
        udi_sn: sn,
        hostname,
        force: req.force,
        certificate: cert.clone(),
        evaluation_used_ms: req.evaluation_used_ms,
    };
    let done = state.store.register_instance(new, now).await.map_err(|e| match e {
        RegisterRefusal::InvalidToken => crate::satellite::unknown_token(state, &req.token),
        RegisterRefusal::AlreadyRegistered => {
            refusal(StatusCode::CONFLICT, code::ALREADY_REGISTERED, text::ALREADY_REGISTERED)
        }
        RegisterRefusal::Store(s) => ApiError::from(s),
    })?;
    tracing::info!(%udi, instance = %done.instance.id, account = %done.account.domain, "device registered");
    Ok(wire::RegisterResponse {
        request_nonce: req.envelope.nonce,
        timestamp: now.0,
        instance_id: done.instance.id,
        smart_account: done.account.name,
        smart_account_domain: done.account.domain,
        virtual_account: done.virtual_account.name,
        export_controlled: done.instance.export_controlled,
        certificate: pem,
        certificate_serial: cert.serial,
        certificate_expires: cert.expires_at.0,
        intervals: intervals(state),
    })
}

async fn renew_id(State(state): State<AppState>, headers: HeaderMap, body: RawBody) -> Response {
    let path = wire::PATH_RENEW_ID;
    let request = readable(&body);
    let result = async {
        let now = state.clock.now();
        let body = body_bytes(body)?;
        let req: wire::RenewIdRequest = parse(&body)?;
        let signed = SignedRequest { path, headers: &headers, body: &body };
        let inst = authenticate(&state, signed, &req.instance_id, &req.envelope, Nonce::Consume, now).await?;
        let request = certificate_request(&req.csr)?;
        let udi = Udi { pid: inst.udi_pid.clone(), sn: inst.udi_sn.clone() };
        let (pem, cert) = issue(&state, &request, &udi, now)?;
        state.store.renew_certificate(&inst.id, &cert, now).await?;
        Ok::<_, ApiError>(wire::RenewIdResponse {
            request_nonce: req.envelope.nonce,
            timestamp: now.0,
            certificate: pem,
            certificate_serial: cert.serial,
            certificate_expires: cert.expires_at.0,
            intervals: intervals(&state),
        })
    }
    .await;
    respond(&state, path, request.as_deref(), result)
}

/// Signs the answer; an error carries the request's nonce, when it had a well-formed one, so
/// that it answers that request only (a recorded refusal cannot be replayed to a device).
pub(crate) fn respond<T: Serialize>(
    state: &AppState,
    path: &str,
    request: Option<&[u8]>,
    result: Result<T, ApiError>,
) -> Response {
    match result {
        Ok(answer) => signed(state, path, StatusCode::OK, &answer),
        Err(e) => {
            let body = wire::ErrorResponse { request_nonce: nonce_of(request), ..e.body() };
            signed(state, path, e.status, &crate::observe::with_request_id(&body))
        }
    }
}

/// The nonce of a request readable enough to have a well-formed one, whatever else is wrong.
/// Read for refusals only: an answer echoes the nonce of the request it parsed.
fn nonce_of(body: Option<&[u8]>) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Readable {
        nonce: String,
    }
    let body = body?;
    serde_json::from_slice::<Readable>(body).ok().map(|r| r.nonce).filter(|n| wire::nonce_well_formed(n))
}

/// The usage list as counts per tag, refusing duplicates and absurd values.
fn usage_map(usage: &[wire::Usage]) -> Result<BTreeMap<String, i64>, ApiError> {
    if usage.len() > 1000 {
        return Err(malformed("at most 1000 entitlement tags per request").with_field("usage"));
    }
    let mut map = BTreeMap::new();
    for u in usage {
        let tag = field_text("usage.tag", &u.tag, validate::MAX_NAME)?;
        let count = validate::usage("usage.count", u.count)?;
        if map.insert(tag.clone(), count).is_some() {
            return Err(malformed(format!("tag '{tag}' appears twice in the usage list")).with_field("usage"));
        }
    }
    Ok(map)
}

async fn authorize(State(state): State<AppState>, headers: HeaderMap, body: RawBody) -> Response {
    let path = wire::PATH_AUTHORIZE;
    let request = readable(&body);
    let result = async {
        let now = state.clock.now();
        let body = body_bytes(body)?;
        let req: wire::AuthorizeRequest = parse(&body)?;
        let usage = usage_map(&req.usage)?;
        let hostname = req.hostname.as_deref().map(|h| validate::optional_text("hostname", h, 64)).transpose()?;
        let signed = SignedRequest { path, headers: &headers, body: &body };
        let inst = authenticate(&state, signed, &req.instance_id, &req.envelope, Nonce::ConsumedByCaller, now).await?;
        let report = UsageReport {
            instance_id: inst.id,
            usage: usage.clone(),
            hostname,
            nonce: req.envelope.nonce.clone(),
            nonce_expires_at: nonce_keep_until(&state, now),
        };
        let counts = state.store.report_usage(report, now).await?;
        let ledger = counts.ledger(&state.catalog);
        let entitlements: Vec<wire::EntitlementStatus> = usage
            .iter()
            .filter(|(_, c)| **c > 0)
            .map(|(tag, count)| wire::EntitlementStatus {
                display_name: state.catalog.display_name(tag).to_string(),
                status: if ledger.tag_in_compliance(tag) {
                    AuthorizationStatus::Authorized
                } else {
                    AuthorizationStatus::OutOfCompliance
                },
                tag: tag.clone(),
                count: *count,
            })
            .collect();
        let status = if entitlements.is_empty() {
            AuthorizationStatus::NoLicensesInUse
        } else if entitlements.iter().all(|e| e.status == AuthorizationStatus::Authorized) {
            AuthorizationStatus::Authorized
        } else {
            AuthorizationStatus::OutOfCompliance
        };
        Ok::<_, ApiError>(wire::AuthorizeResponse {
            request_nonce: req.envelope.nonce,
            timestamp: now.0,
            status,
            entitlements,
            valid_until: now.plus_days(state.policy.auth_validity_days).0,
            intervals: intervals(&state),
        })
    }
    .await;
    match &result {
        Ok(answer) => state.metrics.authorization(match answer.status {
            AuthorizationStatus::Authorized => Outcome::authorized,
            AuthorizationStatus::OutOfCompliance => Outcome::out_of_compliance,
            AuthorizationStatus::NoLicensesInUse => Outcome::no_licenses_in_use,
        }),
        Err(e) => {
            let about = about(request.as_deref(), |r| r.instance_id.map(|id| format!("instance {id}")));
            refused(&state, "authorization", about, e).await
        }
    }
    respond(&state, path, request.as_deref(), result)
}

async fn deregister(State(state): State<AppState>, headers: HeaderMap, body: RawBody) -> Response {
    let path = wire::PATH_DEREGISTER;
    let request = readable(&body);
    let result = async {
        let now = state.clock.now();
        let body = body_bytes(body)?;
        let req: wire::DeregisterRequest = parse(&body)?;
        let signed = SignedRequest { path, headers: &headers, body: &body };
        let inst = authenticate(&state, signed, &req.instance_id, &req.envelope, Nonce::Consume, now).await?;
        let udi = format!("PID:{},SN:{}", inst.udi_pid, inst.udi_sn);
        state.store.remove_instance(&inst.id, "deregistered", &udi, now).await?;
        Ok::<_, ApiError>(wire::DeregisterResponse {
            request_nonce: req.envelope.nonce,
            timestamp: now.0,
            instance_id: inst.id,
        })
    }
    .await;
    respond(&state, path, request.as_deref(), result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_events_are_bounded_per_minute() {
        let budget = RefusalEvents::default();
        let start = tokio::time::Instant::now();
        assert!((0..REFUSAL_EVENTS_PER_MINUTE).all(|_| budget.admit(start)));
        assert!(!budget.admit(start + std::time::Duration::from_secs(59)));
        assert!(budget.admit(start + std::time::Duration::from_secs(60)));
    }
}
