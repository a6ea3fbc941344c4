//! What the operator sees of each request: a request id (the caller's `X-Request-Id` when it is
//! sane, else a new one) returned in the `X-Request-Id` header and in every JSON error body, one
//! access-log line, and the request metrics. The log line and the metrics name the matched
//! route template, never the raw URI: no query string, no path value, no header is logged.

use crate::state::AppState;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use rand::Rng;
use serde::Serialize;
use std::net::SocketAddr;
use tokio::time::Instant;

pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Longest incoming request id kept; a longer one is replaced by a new one.
const MAX_REQUEST_ID: usize = 64;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being answered (none outside a request, e.g. in a job).
pub fn request_id() -> Option<String> {
    REQUEST_ID.try_with(String::clone).ok()
}

/// `body` as JSON with the request's id added (`"request_id"`), for error answers.
pub fn with_request_id(body: &impl Serialize) -> serde_json::Value {
    let mut json = serde_json::to_value(body).unwrap_or_default();
    if let (Some(id), Some(fields)) = (request_id(), json.as_object_mut()) {
        fields.insert("request_id".into(), id.into());
    }
    json
}

/// An incoming id is kept when it is 1 to 64 characters among letters, digits and `-_.:`, so
/// it can go into a log line and a header as it is.
fn sane(value: &HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?;
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_.:".contains(c);
    ((1..=MAX_REQUEST_ID).contains(&text.len()) && text.chars().all(safe)).then(|| text.to_string())
}

fn new_request_id() -> String {
    format!("{:016x}", rand::thread_rng().gen::<u64>())
}

/// Inner layer (routes only): hands the matched route template out to [`requests`].
pub async fn matched_route(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let mut response = next.run(request).await;
    if let Some(route) = route {
        response.extensions_mut().insert(route);
    }
    response
}

/// Outer layer: request id, access log and request metrics for every request.
pub async fn requests(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request.headers().get(REQUEST_ID_HEADER).and_then(sane).unwrap_or_else(new_request_id);
    let method = request.method().clone();
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let mut response = REQUEST_ID.scope(id.clone(), next.run(request)).await;
    let took = started.elapsed();
    // Requests no route matched share one label: unknown paths cannot grow the metrics.
    let matched = response.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    let status = response.status().as_u16();
    state.metrics.request(&method, route, status, took);
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    let peer = peer.map(|p| p.to_string()).unwrap_or_default();
    let duration_ms = took.as_secs_f64() * 1000.0;
    tracing::info!(target: "smartlic::access", request_id = %id, method = %method, route = %route, status, duration_ms, peer = %peer, "request");
    response
}

/// `GET /health`: the process answers.
#[utoipa::path(
    get,
    path = "/health",
    operation_id = "health",
    tag = "operating",
    summary = "Liveness: the process answers",
    security(()),
    responses((status = 200, description = "alive", body = String, content_type = "text/plain", example = "ok"))
)]
pub async fn health() -> &'static str {
    "ok"
}

/// `GET /ready`: 200 when the manager can serve: the database takes a write, the CA key
/// signs, and the background jobs ran within the last few intervals; else 503 naming each
/// failed check. No credentials: it tells nothing about the data.
#[utoipa::path(
    get,
    path = "/ready",
    operation_id = "ready",
    tag = "operating",
    summary = "Readiness: the database takes a write, the CA key signs, the background jobs ran within three intervals",
    security(()),
    responses(
        (status = 200, description = "ready", body = crate::openapi::Readiness),
        (status = 503, description = "not ready; each failed check says why", body = crate::openapi::Readiness),
    )
)]
pub async fn ready(State(state): State<AppState>) -> Response {
    use axum::response::IntoResponse;
    let database = state.store.probe_writable().await.map_err(|e| e.to_string());
    let ca = state.ca.signer().sign_b64(b"ready").map(drop).map_err(|e| e.to_string());
    let jobs = if state.job_heartbeat.alive() { Ok(()) } else { Err("no run within the last intervals".to_string()) };
    let checks = [("database", database), ("ca", ca), ("jobs", jobs)];
    let ok = checks.iter().all(|(_, r)| r.is_ok());
    let report: serde_json::Map<String, serde_json::Value> =
        checks.into_iter().map(|(name, r)| (name.to_string(), r.err().unwrap_or_else(|| "ok".into()).into())).collect();
    let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    if !ok {
        tracing::warn!(checks = %serde_json::Value::Object(report.clone()), "not ready");
    }
    // Which replica runs the background jobs (replicas over one database run them once).
    let lease = state.store.lease(crate::jobs::JOBS_LEASE).await.ok().flatten();
    let jobs_lease = lease.map(|l| serde_json::json!({ "holder": l.holder, "expires_at": l.expires_at.to_rfc3339() }));
    let body =
        serde_json::json!({ "ready": ok, "checks": report, "replica": state.replica.id, "jobs_lease": jobs_lease });
    (status, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_plain_request_ids_are_kept() {
        let kept = |v: &str| sane(&HeaderValue::from_str(v).unwrap());
        assert_eq!(kept("abc-123_x.y:z").as_deref(), Some("abc-123_x.y:z"));
        assert_eq!(kept(&"a".repeat(64)).map(|s| s.len()), Some(64));
        assert_eq!(kept(&"a".repeat(65)), None);
        assert_eq!(kept(""), None);
        assert_eq!(kept("two words"), None);
        assert_eq!(kept("a\"b"), None);
        assert_eq!(new_request_id().len(), 16);
    }
}
