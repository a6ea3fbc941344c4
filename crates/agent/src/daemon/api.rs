//! The product REST API: what a product embedding the agent calls on loopback, with the
//! status codes, codes and messages of seed 002's "Smart Licensing Error Code and Message
//! Mapping", and a status document shaped like Cisco Modeling Labs' licensing JSON.
//!
//! | method | path (under [`BASE`]) | body | success |
//! |---|---|---|---|
//! | POST | `transportsettings` | `{"transport_mode": 0-2, "url", "proxy_ip", "proxy_port"}` | 200, details |
//! | POST | `register` | `{"token": "...", "force": false}` | 200, details |
//! | POST | `deregister` | none | 200, details |
//! | POST | `renewID` | none | 200, details |
//! | POST | `renewAuth` | none | 200, details |
//! | GET | `licensedetails` | | 200, details |
//!
//! Errors are `{"code": "INVALID_PARAMETER", "message": "<seed text>"}`, with `"reason"` when
//! the agent recorded a more precise cause (the `Failure reason:` of `show license status`).
//! Unknown paths answer 404 `NOT_FOUND`, another method 405 `METHOD_NOT_ALLOWED`. With
//! [`ApiCredentials`] configured, any call (unknown paths too) without them answers 401
//! `NOT_AUTHORIZED` before anything else is looked at.

use super::{flush_log, ApiCredentials, Shared};
use crate::config::TransportKind;
use crate::device::{Device, SEND_FAILED};
use crate::tls::ProxyConfig;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::{engine::general_purpose::STANDARD as B64, Engine};
use ring::digest::{digest, SHA256};
use serde_json::{json, Map, Value};
use smartlic_core::agent::{
    format_device_time, format_time_left, Attempt, AuthAnswer, Authorization, Coverage, Event, LogEntry, Outcome,
    Registration, TRANSPORT_NOT_AVAILABLE,
};
use smartlic_core::Timestamp;
use smartlic_proto::wire;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Where the API lives.
pub const BASE: &str = "/api/v1/smartlicensing";

/// Seed 002's messages.
pub mod text {
    pub const TRANSPORT_REGISTERED: &str = "Edit Transport Settings operation is not allowed since product is in either Registered state or is a Subscriber node";
    pub const TRANSPORT_FAILED: &str = "Failed to apply the Transport Settings";
    pub const TRANSPORT_MODE: &str = "Please enter a valid Transport Mode within the range (0 - 2)";
    pub const GATEWAY_URL: &str = "Please enter a valid Transport Gateway URL";
    pub const PROXY_MISSING: &str = "Please provide valid HTTP/HTTPS Proxy IP Address and/or HTTP/HTTPS Proxy Port";
    pub const PROXY_IP: &str = "Please enter a valid HTTP/HTTPS Proxy IP Address";
    pub const PROXY_PORT: &str = "Please enter a valid HTTP/HTTPS Proxy Port within the range (1 - 65535)";
    pub const DEREGISTER_UNREGISTERED: &str =
        "Deregistration is not allowed since product is in either unregistered state or is a Subscriber node";
    pub const ALREADY_REGISTERED: &str = "Product is already registered on CSSM. To Re-register it use 'force' flag";
    pub const REGISTER_FAILED: &str = "The Product Instance was unable to register with Smart Software Licensing";
    pub const RENEW_ID_UNREGISTERED: &str =
        "Renewal of ID is not allowed since product is in either unregistered state or is a Subscriber node";
    pub const RENEW_AUTH_UNREGISTERED: &str =
        "Renewal of Authorization is not allowed since product is in either unregistered state or is a Subscriber node";
    pub const UNKNOWN: &str = "The requested operation was not successful due to an unknown error";
    pub const TRUST_CHAIN: &str = "The requested operation was not successful due to invalid trust chain pool";
    pub const SEND_ERROR: &str = "The requested operation was not successful due to communication send error";
    /// Register and deregister end it with a full stop, the renewals do not (seed 002).
    pub const TIMEOUT: &str = "The requested operation was not successful due to a communication timeout";
    /// Not in the seed: smart licensing turned off with `no license smart enable`.
    pub const DISABLED: &str =
        "Smart Software Licensing is disabled on this product (license smart enable turns it on)";
    /// Not in the seed: an offline reservation is installed; it is returned, not deregistered.
    pub const RESERVED: &str =
        "Operation not allowed: a license reservation is installed (license smart reservation return local)";
    /// "All APIs 401": credentials missing or wrong.
    pub const NOT_AUTHORIZED: &str = "User is not authorized to perform this operation";
}

pub const INVALID_PARAMETER: &str = "INVALID_PARAMETER";
pub const METHOD_NOT_ALLOWED: &str = "METHOD_NOT_ALLOWED";
pub const INTERNAL_SERVER_ERROR: &str = "INTERNAL_SERVER_ERROR";
pub const NOT_FOUND: &str = "NOT_FOUND";
pub const NOT_AUTHORIZED: &str = "NOT_AUTHORIZED";

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .route("/transportsettings", post(transport_settings))
        .route("/register", post(register))
        .route("/deregister", post(deregister))
        .route("/renewID", post(renew_id))
        .route("/renewAuth", post(renew_auth))
        .route("/licensedetails", get(license_details));
    Router::new()
        .nest(BASE, api)
        .fallback(not_found)
        .method_not_allowed_fallback(wrong_method)
        .layer(axum::middleware::from_fn_with_state(shared.clone(), authenticate))
        .with_state(shared)
}

/// Lets a call through when it carries the configured credentials (or none are configured);
/// answers 401 `NOT_AUTHORIZED` otherwise, naming the schemes it accepts.
async fn authenticate(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let credentials = &shared.credentials;
    if credentials.admits(request.headers().get(AUTHORIZATION)) {
        return next.run(request).await;
    }
    tracing::warn!("product REST API: {} {} refused: no valid credentials", request.method(), request.uri().path());
    let mut response = ApiError::new(StatusCode::UNAUTHORIZED, NOT_AUTHORIZED, text::NOT_AUTHORIZED).into_response();
    let challenges = [
        credentials.basic.as_ref().map(|_| "Basic realm=\"smartlic agent\""),
        credentials.bearer.as_ref().map(|_| "Bearer realm=\"smartlic agent\""),
    ];
    for challenge in challenges.into_iter().flatten() {
        response.headers_mut().append(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    }
    response
}

impl ApiCredentials {
    /// Whether an `Authorization` header value carries the configured credentials. Secrets are
    /// compared as SHA-256 digests in constant time: neither their bytes nor their lengths show
    /// in the time taken.
    fn admits(&self, header: Option<&HeaderValue>) -> bool {
        if self.basic.is_none() && self.bearer.is_none() {
            return true;
        }
        let Some((scheme, value)) = header.and_then(|h| h.to_str().ok()).and_then(|h| h.trim().split_once(' ')) else {
            return false;
        };
        let value = value.trim();
        if scheme.eq_ignore_ascii_case("Bearer") {
            return self.bearer.as_deref().is_some_and(|token| same_secret(value.as_bytes(), token.as_bytes()));
        }
        if !scheme.eq_ignore_ascii_case("Basic") {
            return false;
        }
        let Some((user, password)) = &self.basic else { return false };
        let Ok(presented) = B64.decode(value) else { return false };
        same_secret(&presented, format!("{user}:{password}").as_bytes())
    }
}

fn same_secret(presented: &[u8], expected: &[u8]) -> bool {
    bool::from(digest(&SHA256, presented).as_ref().ct_eq(digest(&SHA256, expected).as_ref()))
}

/// An error answer: `{"code", "message", "reason"?}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub reason: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), reason: None }
    }
    fn invalid(message: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, INVALID_PARAMETER, message)
    }
    fn not_allowed(message: &str) -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, METHOD_NOT_ALLOWED, message)
    }
    fn internal(message: &str, reason: impl Into<String>) -> Self {
        ApiError {
            reason: Some(reason.into()),
            ..Self::new(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_SERVER_ERROR, message)
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "code": self.code, "message": self.message });
        if let Some(reason) = self.reason {
            body["reason"] = Value::String(reason);
        }
        (self.status, Json(body)).into_response()
    }
}

type Answer = Result<Json<Value>, ApiError>;

async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        NOT_FOUND,
        format!("No such endpoint: {}; the product API is under {BASE}/", uri.path()),
    )
}

async fn wrong_method(method: Method, uri: Uri) -> ApiError {
    let allowed = if uri.path().ends_with("/licensedetails") { "GET" } else { "POST" };
    ApiError::not_allowed(&format!("Method {method} is not allowed on {}; use {allowed}", uri.path()))
}

/// The request body as a JSON object; an empty body reads as `{}`.
fn object(body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::invalid("The request body must be a JSON object")),
        Err(e) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            INVALID_PARAMETER,
            format!("The request body is not valid JSON: {e}"),
        )),
    }
}

/// An integer field, also accepted as a string of digits; Err(()) when present but not one.
fn integer(map: &Map<String, Value>, key: &str) -> Result<Option<i64>, ()> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or(()),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| ()),
        Some(_) => Err(()),
    }
}

/// A string field; blank counts as absent. Err(()) when present but not a string.
fn string(map: &Map<String, Value>, key: &str) -> Result<Option<String>, ()> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
        Some(_) => Err(()),
    }
}

fn valid_url(url: &str) -> bool {
    let Some((scheme, rest)) = url.split_once("://") else { return false };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https")
        && !host.is_empty()
        && !host.starts_with(':')
        && url.chars().all(|c| c.is_ascii_graphic())
}

/// An IP address, or a host name (proxies are often named): letters, digits, dots, hyphens.
fn valid_proxy_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let labels_ok = host.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    // All-numeric dotted names are mistyped IPv4 addresses, not host names.
    let numeric = host.chars().all(|c| c.is_ascii_digit() || c == '.');
    host.len() <= 253 && labels_ok && !numeric
}

/// The transport settings asked for, validated in the seed's order.
struct Transport {
    mode: i64,
    url: Option<String>,
    proxy: Option<ProxyConfig>,
}

fn parse_transport(map: &Map<String, Value>) -> Result<Transport, ApiError> {
    let mode = integer(map, "transport_mode")
        .ok()
        .flatten()
        .filter(|m| (0..=2).contains(m))
        .ok_or_else(|| ApiError::invalid(text::TRANSPORT_MODE))?;
    let url = string(map, "url").map_err(|()| ApiError::invalid(text::GATEWAY_URL))?;
    if url.as_deref().is_some_and(|u| !valid_url(u)) || (mode == 1 && url.is_none()) {
        return Err(ApiError::invalid(text::GATEWAY_URL));
    }
    let proxy = if mode == 2 {
        let host = string(map, "proxy_ip").map_err(|()| ApiError::invalid(text::PROXY_IP))?;
        let port = integer(map, "proxy_port").map_err(|()| ApiError::invalid(text::PROXY_PORT))?;
        let (Some(host), Some(port)) = (host, port) else { return Err(ApiError::invalid(text::PROXY_MISSING)) };
        if !valid_proxy_host(&host) {
            return Err(ApiError::invalid(text::PROXY_IP));
        }
        let port = u16::try_from(port).ok().filter(|&p| p >= 1).ok_or_else(|| ApiError::invalid(text::PROXY_PORT))?;
        Some(ProxyConfig { host, port, username: None, password: None })
    } else {
        None
    };
    Ok(Transport { mode, url, proxy })
}

/// `POST transportsettings`: 0 direct to the manager, 1 through a transport gateway (satellite)
/// at `url`, 2 through the HTTP(S) proxy `proxy_ip`:`proxy_port`. Modes 0 and 2 keep the
/// configured manager URL unless `url` is given. Refused while registered.
async fn transport_settings(State(shared): State<Arc<Shared>>, body: Bytes) -> Answer {
    let map = object(&body)?;
    let mut device = shared.device.lock().await;
    if device.agent.registration.is_registered() {
        return Err(ApiError::not_allowed(text::TRANSPORT_REGISTERED));
    }
    let asked = parse_transport(&map)?;
    let transport = &mut device.config.transport;
    transport.kind = if asked.mode == 1 { TransportKind::Satellite } else { TransportKind::Smart };
    if asked.url.is_some() || asked.mode == 1 {
        transport.url = asked.url;
    }
    match asked.proxy {
        Some(proxy) => {
            transport.proxy = Some(proxy);
            transport.proxy_enabled = true;
        }
        None => transport.proxy_enabled = false,
    }
    let applied = device.transport_changed().await;
    flush_log(&mut device);
    shared.wake.notify_one();
    applied.map_err(|e| ApiError::internal(text::TRANSPORT_FAILED, e.to_string()))?;
    Ok(Json(details(&device)))
}

/// `POST register`: `{"token": "...", "force": false}` (`reregister` is read as `force`, as in
/// Cisco Modeling Labs). Waits for the exchange and answers from the state it left.
async fn register(State(shared): State<Arc<Shared>>, body: Bytes) -> Answer {
    let map = object(&body)?;
    let token = string(&map, "token").ok().flatten().ok_or_else(|| ApiError::invalid(wire::text::INVALID_TOKEN))?;
    let force = ["force", "reregister"].iter().any(|k| map.get(*k).is_some_and(|v| v == &Value::Bool(true)));
    let mut device = shared.device.lock().await;
    if !device.agent.enabled {
        return Err(ApiError::not_allowed(text::DISABLED));
    }
    if device.agent.registration.reserved().is_some() {
        return Err(ApiError::not_allowed(text::RESERVED));
    }
    if device.agent.registration.is_registered() && !force {
        return Err(ApiError::not_allowed(text::ALREADY_REGISTERED));
    }
    let applied = device.apply(Event::Register { token, force }).await;
    flush_log(&mut device);
    shared.wake.notify_one();
    applied.map_err(|e| ApiError::internal(text::UNKNOWN, e.to_string()))?;
    match &device.agent.registration {
        Registration::Registered(_) => Ok(Json(details(&device))),
        Registration::Registering(a) | Registration::Failed(a) => match a.failure_reason() {
            Some(reason) if a.last().is_some_and(Attempt::failed) => Err(register_error(reason)),
            // Still under way (more exchanges than one call performs): see licensedetails.
            _ => Ok(Json(details(&device))),
        },
        Registration::Unidentified | Registration::Expired { .. } | Registration::Reserved(_) => {
            Err(ApiError::internal(text::REGISTER_FAILED, "the registration was cancelled"))
        }
    }
}

fn register_error(reason: &str) -> ApiError {
    if reason == wire::text::INVALID_TOKEN {
        return ApiError::invalid(wire::text::INVALID_TOKEN);
    }
    if reason == wire::text::ALREADY_REGISTERED {
        return ApiError { reason: Some(reason.into()), ..ApiError::not_allowed(text::ALREADY_REGISTERED) };
    }
    ApiError::internal(communication_text(reason, text::REGISTER_FAILED, true), reason)
}

/// The seed's 500 text for a failure reason recorded by the agent.
fn communication_text(reason: &str, otherwise: &'static str, full_stop: bool) -> &'static str {
    let lower = reason.to_ascii_lowercase();
    if lower.contains("not trusted") || lower.contains("trust point") {
        text::TRUST_CHAIN
    } else if lower.contains("timed out") || lower.contains("timeout") {
        if full_stop {
            "The requested operation was not successful due to a communication timeout."
        } else {
            text::TIMEOUT
        }
    } else if reason == TRANSPORT_NOT_AVAILABLE || reason.starts_with(SEND_FAILED) {
        text::SEND_ERROR
    } else {
        otherwise
    }
}

/// `POST deregister`: removes the registration (at the manager when it can be reached, locally
/// in any case) or cancels one under way. 500 when the manager could not be told.
async fn deregister(State(shared): State<Arc<Shared>>) -> Answer {
    let mut device = shared.device.lock().await;
    if matches!(device.agent.registration, Registration::Unidentified | Registration::Expired { .. }) {
        return Err(ApiError::not_allowed(text::DEREGISTER_UNREGISTERED));
    }
    let seen = device.messages.len();
    let applied = device.apply(Event::Deregister).await;
    let failed = device.messages[seen..]
        .iter()
        .find(|e| e.message.contains("-AGENT_DEREG_FAILED:"))
        .map(|e| after(e, "failed: ").to_string());
    flush_log(&mut device);
    shared.wake.notify_one();
    applied.map_err(|e| ApiError::internal(text::UNKNOWN, e.to_string()))?;
    match failed {
        Some(reason) => Err(ApiError::internal(communication_text(&reason, text::UNKNOWN, true), reason)),
        None => Ok(Json(details(&device))),
    }
}

/// The text of a log entry after `marker` (the whole message if absent).
fn after<'a>(entry: &'a LogEntry, marker: &str) -> &'a str {
    entry.message.split_once(marker).map_or(entry.message.as_str(), |(_, rest)| rest)
}

/// `POST renewID`: renews the ID certificate now.
async fn renew_id(State(shared): State<Arc<Shared>>) -> Answer {
    renew(shared, Event::RenewId, text::RENEW_ID_UNREGISTERED).await
}

/// `POST renewAuth`: sends an authorization request now.
async fn renew_auth(State(shared): State<Arc<Shared>>) -> Answer {
    renew(shared, Event::RenewAuth, text::RENEW_AUTH_UNREGISTERED).await
}

async fn renew(shared: Arc<Shared>, event: Event, unregistered: &str) -> Answer {
    let id = matches!(event, Event::RenewId);
    let mut device = shared.device.lock().await;
    if !device.agent.registration.is_registered() {
        return Err(ApiError::not_allowed(unregistered));
    }
    if !device.agent.enabled {
        return Err(ApiError::not_allowed(text::DISABLED));
    }
    let seen = device.messages.len();
    let applied = device.apply(event).await;
    // The manager no longer knowing the device ends the registration: say what it answered.
    let lost = device.messages[seen..]
        .iter()
        .rev()
        .find(|e| e.message.contains("_RENEW_FAILED:"))
        .map(|e| e.message.clone())
        .filter(|_| !device.agent.registration.is_registered());
    flush_log(&mut device);
    shared.wake.notify_one();
    applied.map_err(|e| ApiError::internal(text::UNKNOWN, e.to_string()))?;
    if let Some(message) = lost {
        return Err(ApiError::internal(text::UNKNOWN, message));
    }
    let last = match &device.agent.registration {
        Registration::Registered(r) if id => r.last_renewal.clone(),
        _ => device.agent.communication.last.clone(),
    };
    match last.map(|a| a.outcome) {
        Some(Outcome::Failed { reason }) => {
            Err(ApiError::internal(communication_text(&reason, text::UNKNOWN, false), reason))
        }
        _ => Ok(Json(details(&device))),
    }
}

/// `GET licensedetails`.
async fn license_details(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let device = shared.device.lock().await;
    Json(details(&device))
}

fn time(t: Option<Timestamp>) -> Value {
    t.map_or(Value::Null, |t| Value::String(t.to_rfc3339()))
}

/// CML's `{succeeded, attempted, scheduled, status, failure}` block for one kind of attempt.
fn attempt_block(last: Option<&Attempt>, succeeded: Option<Timestamp>, scheduled: Option<Timestamp>) -> Value {
    let (status, failure) = match last.map(|a| &a.outcome) {
        None => (Value::Null, Value::Null),
        Some(Outcome::Succeeded) => (json!("SUCCEEDED"), Value::Null),
        Some(Outcome::Pending) => (json!("PENDING"), Value::Null),
        Some(Outcome::Failed { reason }) => (json!("FAILED"), json!(reason)),
    };
    json!({
        "attempted": time(last.map(|a| a.at)),
        "succeeded": time(succeeded),
        "scheduled": time(scheduled),
        "status": status,
        "failure": failure,
    })
}

/// The transport mode of `transportsettings` the configuration amounts to (None: off).
fn transport_mode(device: &Device) -> Option<u8> {
    let t = &device.config.transport;
    match t.kind {
        TransportKind::Off => None,
        _ if device.config.active_proxy().is_some() => Some(2),
        TransportKind::Satellite => Some(1),
        TransportKind::Smart | TransportKind::Callhome => Some(0),
    }
}

/// The status document of `GET licensedetails` (also the body of every successful POST).
pub fn details(device: &Device) -> Value {
    let agent = &device.agent;
    let now = device.now();
    let registration = match &agent.registration {
        Registration::Unidentified if agent.reservation.request.is_some() => {
            json!({ "status": "RESERVATION_IN_PROGRESS" })
        }
        Registration::Unidentified => json!({ "status": "NOT_REGISTERED" }),
        Registration::Reserved(r) => json!({
            "status": "COMPLETED",
            "reservation": {
                "type": r.kind.display(),
                "installed": time(Some(r.installed_at)),
                "confirmation_code": r.confirmation_code,
                "licenses": r.licenses.iter().map(|l| json!({
                    "tag": l.tag, "count": l.count, "license_type": l.license_type, "end": time(l.end),
                })).collect::<Vec<_>>(),
            },
        }),
        Registration::Expired { at } => json!({ "status": "EXPIRED", "expired": time(Some(*at)) }),
        Registration::Registering(a) | Registration::Failed(a) => {
            let status = match &agent.registration {
                Registration::Failed(_) => "FAILED",
                _ if a.failures > 0 => "RETRY_IN_PROGRESS",
                _ => "IN_PROGRESS",
            };
            json!({
                "status": status,
                "register_time": attempt_block(a.last(), None, a.next_attempt),
            })
        }
        Registration::Registered(r) => {
            let renewed = match r.last_renewal.as_ref().map(|a| &a.outcome) {
                Some(Outcome::Succeeded) => Some(r.certificate_valid_from),
                _ => None,
            };
            json!({
                "status": "COMPLETED",
                "smart_account": r.smart_account,
                "virtual_account": r.virtual_account,
                "instance_id": r.instance_id,
                "export_controlled": if r.export_controlled { "Allowed" } else { "Not Allowed" },
                "expires": time(Some(r.expires)),
                "register_time": attempt_block(
                    Some(&Attempt { at: r.initial_registration, outcome: Outcome::Succeeded }),
                    Some(r.initial_registration),
                    None,
                ),
                "renew_time": attempt_block(r.last_renewal.as_ref(), renewed, Some(r.next_renewal)),
            })
        }
    };
    let mut registration = registration;
    registration["display"] = json!(agent.registration.display());

    // Evaluation use is accrued at each step; project it to now for the time left.
    let ev = &agent.evaluation;
    let left_ms =
        if agent.evaluation_counting() { ev.left_ms() - (now.0 - agent.clock.0).max(0) } else { ev.left_ms() }.max(0);
    let auth_status = match &agent.authorization {
        Authorization::Evaluation => "EVAL",
        Authorization::EvaluationExpired { .. } => "EVAL_EXPIRED",
        Authorization::Authorized { .. } => "IN_COMPLIANCE",
        Authorization::OutOfCompliance { .. } => "OUT_OF_COMPLIANCE",
        Authorization::AuthorizationExpired { .. } => "AUTHORIZATION_EXPIRED",
        Authorization::NoLicensesInUse { .. } => "NO_LICENSES_IN_USE",
        Authorization::Reserved { .. } => "AUTHORIZED_RESERVATION",
    };
    let mut authorization = json!({
        "status": auth_status,
        "display": agent.authorization.display(),
        "since": time(agent.authorization.since()),
        "evaluation": {
            "counting": agent.evaluation_counting(),
            "seconds_left": left_ms / 1000,
            "time_left": format_time_left(left_ms),
            "expired": time(ev.expired_at),
        },
    });
    if agent.registration.is_registered() {
        let c = &agent.communication;
        let succeeded = c.last.as_ref().filter(|a| a.outcome == Outcome::Succeeded).map(|a| a.at);
        authorization["renew_time"] = attempt_block(c.last.as_ref(), succeeded, c.next_attempt);
        authorization["expires"] = time(c.deadline);
    }

    let feature_status = |tag: &str| -> &'static str {
        if !agent.enabled {
            return "DISABLED";
        }
        if !device.config.catalog.is_empty() && !device.config.catalog.contains_key(tag) {
            return "INVALID_TAG";
        }
        match &agent.authorization {
            Authorization::Reserved { .. } => match agent.reservation_coverage(tag, agent.usage[tag], now) {
                Some(Coverage::Covered) => "RESERVATION_IN_COMPLIANCE",
                _ => "NOT_AUTHORIZED",
            },
            Authorization::Evaluation if agent.registration.is_registered() => "WAITING",
            Authorization::Evaluation => "EVALUATION",
            Authorization::EvaluationExpired { .. } => "EVALUATION_EXPIRED",
            // Each tag's own status in the manager's last answer, as `show license` prints it.
            Authorization::Authorized { .. } | Authorization::OutOfCompliance { .. } => {
                match agent.communication.entitlements.get(tag) {
                    Some(AuthAnswer::Authorized) => "IN_COMPLIANCE",
                    Some(AuthAnswer::OutOfCompliance) => "OUT_OF_COMPLIANCE",
                    Some(AuthAnswer::NoLicensesInUse) | None => "WAITING",
                }
            }
            Authorization::AuthorizationExpired { .. } => "AUTHORIZATION_EXPIRED",
            Authorization::NoLicensesInUse { .. } => "WAITING",
        }
    };
    let features: Vec<Value> = agent
        .usage
        .iter()
        .map(|(tag, count)| {
            json!({
                "tag": tag,
                "name": device.config.catalog.get(tag),
                "in_use": count,
                "status": feature_status(tag),
            })
        })
        .collect();

    let t = &device.config.transport;
    let proxy = device.config.active_proxy().map(|p| json!({ "server": p.host, "port": p.port }));
    json!({
        "udi": { "pid": agent.pid, "sn": agent.sn, "hostname": device.config.hostname },
        "enabled": agent.enabled,
        "clock": now.to_rfc3339(),
        "clock_display": format_device_time(now),
        "registration": registration,
        "authorization": authorization,
        "features": features,
        "faults": agent.faults.iter().map(|f| f.name()).collect::<Vec<_>>(),
        "transport": {
            "mode": transport_mode(device),
            "type": t.kind.display(),
            "url": t.url,
            "proxy": proxy,
            "available": agent.transport_available,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_proxy_hosts() {
        assert!(valid_url("https://127.0.0.1:8443/"));
        assert!(valid_url("http://satellite.example.com/Transportgateway/services/DeviceRequestHandler"));
        assert!(!valid_url("ftp://x"));
        assert!(!valid_url("https://"));
        assert!(!valid_url("https:// x"));
        assert!(!valid_url("not a url"));
        assert!(valid_proxy_host("10.0.0.1"));
        assert!(valid_proxy_host("::1"));
        assert!(valid_proxy_host("proxy.example.com"));
        assert!(!valid_proxy_host("300.1.1.1"));
        assert!(!valid_proxy_host("bad host"));
        assert!(!valid_proxy_host("-x.example"));
    }

    #[test]
    fn credentials_admit_exactly_the_configured_ones() {
        let header = |v: &str| HeaderValue::from_str(v).unwrap();
        assert!(ApiCredentials::default().admits(None), "none configured: open");
        let basic = ApiCredentials { basic: Some(("bob".into(), "pw:with:colons".into())), bearer: None };
        let good = format!("basic {}", B64.encode("bob:pw:with:colons"));
        assert!(basic.admits(Some(&header(&good))));
        for bad in [B64.encode("bob:pw"), B64.encode("alice:pw:with:colons"), "not base64!".into()] {
            assert!(!basic.admits(Some(&header(&format!("Basic {bad}")))), "{bad}");
        }
        assert!(!basic.admits(Some(&header("Bearer pw:with:colons"))), "no token configured");
        assert!(!basic.admits(None));
        let bearer = ApiCredentials { basic: None, bearer: Some("t0ken".into()) };
        assert!(bearer.admits(Some(&header("Bearer  t0ken "))));
        assert!(!bearer.admits(Some(&header("Bearer t0ke"))));
        assert!(!bearer.admits(Some(&header("t0ken"))));
    }

    #[test]
    fn failure_reasons_map_to_seed_texts() {
        assert_eq!(communication_text(TRANSPORT_NOT_AVAILABLE, text::UNKNOWN, true), text::SEND_ERROR);
        assert_eq!(communication_text(SEND_FAILED, text::UNKNOWN, true), text::SEND_ERROR);
        let untrusted = format!("{SEND_FAILED}: the server certificate is not trusted (invalid peer certificate)");
        assert_eq!(communication_text(&untrusted, text::UNKNOWN, true), text::TRUST_CHAIN);
        assert_eq!(communication_text("Data and signature do not match", text::UNKNOWN, false), text::UNKNOWN);
        assert_eq!(register_error(wire::text::INVALID_TOKEN).status, StatusCode::BAD_REQUEST);
        let again = register_error(wire::text::ALREADY_REGISTERED);
        assert_eq!((again.status, again.message.as_str()), (StatusCode::METHOD_NOT_ALLOWED, text::ALREADY_REGISTERED));
    }
}
