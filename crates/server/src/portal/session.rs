//! Portal sessions: a random id in an HttpOnly, Secure, SameSite=Strict cookie; the store
//! keeps only the id's SHA-256 digest with who signed in, the session's CSRF token and when it
//! ends (on the manager's clock, so a moved simulated clock ends sessions like real time).
//! Being in the database, a session outlives a restart and every manager over the database
//! knows it; the jobs drop the sessions that ended.

use crate::auth::{random_text, sha256_hex, Caller};
use crate::error::ApiResult;
use crate::state::AppState;
use axum::http::{header, HeaderMap, HeaderValue};
use smartlic_core::Timestamp;
use smartlic_store::{PortalSession, Principal};
use subtle::ConstantTimeEq;

/// The session cookie. `__Host-` makes browsers refuse it unless Secure, without Domain and
/// with Path=/, so no sibling host or plain-HTTP page can plant or read it.
pub const SESSION_COOKIE: &str = "__Host-smartlic-session";
/// The sign-in form's double-submit CSRF cookie (there is no session yet to hold a token).
pub const SIGNIN_COOKIE: &str = "__Host-smartlic-signin";

/// A session ends after this long without a request.
pub const IDLE_MS: i64 = 30 * 60 * 1000;
/// ... and this long after sign-in, however busy.
pub const LIFETIME_MS: i64 = 12 * 60 * 60 * 1000;
/// A request moves the session's end only when it moves by more than this: most page views
/// then only read the session, and the idle limit is kept to within a minute.
const EXTEND_STEP_MS: i64 = 60 * 1000;

/// A signed-in request: the principal (as a REST [`Caller`], so the API's role checks apply
/// unchanged) and the CSRF token its forms carry.
pub struct Viewer {
    pub caller: Caller,
    pub csrf: String,
}

impl Viewer {
    /// Whether a submitted CSRF token is this session's (compared in constant time).
    pub fn csrf_matches(&self, sent: &str) -> bool {
        same_secret(&self.csrf, sent)
    }
}

/// Constant-time comparison of two secrets (their lengths are not secret).
pub fn same_secret(expected: &str, sent: &str) -> bool {
    !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(sent.as_bytes()))
}

fn fingerprint(p: &Principal) -> String {
    sha256_hex(p.secret_hash.as_deref().unwrap_or(""))
}

/// When a session started at `started` ends if a request comes at `now`.
fn ends_at(started: Timestamp, now: Timestamp) -> Timestamp {
    Timestamp((now.0 + IDLE_MS).min(started.0 + LIFETIME_MS))
}

/// Starts a session for `p`; answers the cookie value (the session id), shown only to the browser.
pub async fn start(state: &AppState, p: &Principal) -> ApiResult<String> {
    let id = random_text(32);
    let now = state.clock.now();
    let session = PortalSession {
        id_hash: sha256_hex(&id),
        principal_id: p.id,
        csrf: random_text(32),
        secret_fingerprint: fingerprint(p),
        started_at: now,
        expires_at: ends_at(now, now),
    };
    state.store.start_portal_session(session).await?;
    Ok(id)
}

/// Ends the session of this id, if any.
pub async fn end(state: &AppState, id: &str) -> ApiResult<()> {
    Ok(state.store.end_portal_session(&sha256_hex(id)).await?)
}

/// The viewer of a request: its session cookie names a live session whose principal still
/// exists, is enabled and has the secret it signed in with. A session found otherwise ends.
pub async fn viewer(state: &AppState, headers: &HeaderMap) -> ApiResult<Option<Viewer>> {
    let Some(id) = cookie(headers, SESSION_COOKIE) else { return Ok(None) };
    let now = state.clock.now();
    let Some(session) = state.store.portal_session(&sha256_hex(&id), now).await? else { return Ok(None) };
    let principal = state.store.principal_by_id(session.principal_id).await?;
    let Some(p) = principal.filter(|p| p.disabled_at.is_none() && fingerprint(p) == session.secret_fingerprint) else {
        state.store.end_portal_session(&session.id_hash).await?;
        return Ok(None);
    };
    let later = ends_at(session.started_at, now);
    if later.0 - session.expires_at.0 > EXTEND_STEP_MS {
        state.store.extend_portal_session(&session.id_hash, later).await?;
    }
    Ok(Some(Viewer { caller: Caller(p), csrf: session.csrf }))
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_string())
}

/// A `Set-Cookie` value for a cookie only this site's HTTPS pages send and no script reads;
/// `max_age` None is a browser-session cookie, Some(0) deletes it.
pub fn set_cookie(name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    let age = max_age.map(|s| format!("; Max-Age={s}")).unwrap_or_default();
    let text = format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Strict{age}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}
