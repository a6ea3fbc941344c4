//! The satellite and its cloud (issue 12; S-1, S-2, S-4, S-6).
//!
//! On a satellite (`--mode satellite`) the operator creates local accounts, each mirroring one
//! smart account of the cloud; it serves none of its devices until the cloud approved it: the
//! smart account and the granted pools, with their licenses at approval, exist on the satellite
//! only from the import of the cloud's answer. The registration is signed with the satellite's
//! CA key, which the cloud certifies: the satellite keeps signing device answers with that key
//! and sends the certificate with each answer, so devices trust it through the cloud CA.
//!
//! In the cloud, a registration waits for the operator, who approves it naming the pools the
//! satellite serves: from then on the cloud refuses those pools' devices (one manager per
//! pool). Online, the satellite's operator sends the registration and fetches the answer with
//! `smartlic admin local-account register --cloud`; offline, the files are carried by hand and
//! the cloud's `satellite answer` approves in the same step.
//!
//! Tokens end with their manager's identifier (S-4): a token brought to another manager is
//! refused with the words of seed 000 rather than as unknown.

use crate::api::{created, load_account, Page};
use crate::auth::Caller;
use crate::body::{Body, Path, Query};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::{engine::general_purpose::STANDARD as B64, Engine};
use serde::{Deserialize, Serialize};
use smartlic_core::{validate, LicenseKind, LicenseTerm, Timestamp};
use smartlic_proto::satellite::{self as doc, Approval, GrantedLicense, GrantedPool, Registration, Sealed};
use smartlic_proto::{cert, wire, CertificateRequest};
use smartlic_store::satellite::{
    LocalAccount, LocalApproval, MirroredPool, NewSatellite, Satellite, SatelliteApproval,
};
use smartlic_store::{NewLicense, Store};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;

pub(crate) mod reassign;
mod spool;
pub(crate) mod sync;
pub(crate) use sync::{overdue_alerts, scheduled_syncs};

/// How long a satellite certificate is valid from its approval.
pub const CERTIFICATE_DAYS: i64 = 365;

crate::openapi::pages! {
    SatellitePage { satellites: SatelliteView },
    LocalAccountPage { local_accounts: LocalAccountView },
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/satellites", get(list_satellites).post(register_satellite))
        .route("/api/v1/satellites/answer", post(answer_offline))
        .route("/api/v1/satellites/{id}/approve", post(approve))
        .route("/api/v1/satellites/{id}/answer", get(fetch_answer))
        .route("/api/v1/local-accounts", get(list_local_accounts).post(create_local_account))
        .route("/api/v1/local-accounts/{name}/registration", get(registration))
        .route("/api/v1/local-accounts/{name}/sent", post(registration_sent))
        .route("/api/v1/local-accounts/{name}/approval", post(import_approval))
        .merge(sync::router())
        .merge(reassign::router())
}

/// What the satellite role adds to a manager: whether it is one, and the certificate its
/// device answers carry (the approved local account's whose certificate ends last).
pub struct SatelliteRole {
    enabled: bool,
    certificate: RwLock<Option<HeaderValue>>,
    /// Whether any pool of this manager is served by a satellite: until one is, device
    /// requests skip the look-up (the cost of an authorization stays as it was).
    serves_pools: AtomicBool,
}

impl SatelliteRole {
    pub async fn load(mode: &crate::Mode, store: &dyn Store) -> smartlic_store::Result<Self> {
        let serves_pools = store.satellites().await?.iter().any(|s| !s.pools.is_empty());
        let role = SatelliteRole {
            enabled: matches!(mode, crate::Mode::Satellite),
            certificate: RwLock::new(None),
            serves_pools: AtomicBool::new(serves_pools),
        };
        role.refresh(store).await?;
        Ok(role)
    }

    /// Whether this manager is a satellite (`--mode satellite`).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The header value for device answers, once a local account is approved.
    pub fn certificate_header(&self) -> Option<HeaderValue> {
        self.certificate.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    async fn refresh(&self, store: &dyn Store) -> smartlic_store::Result<()> {
        if !self.enabled {
            return Ok(());
        }
        let accounts = store.local_accounts().await?;
        let newest = accounts.iter().filter_map(|a| Some((a.certificate_expires_at?, a.certificate.as_deref()?))).max();
        let header = newest.and_then(|(_, pem)| HeaderValue::from_str(&B64.encode(pem)).ok());
        *self.certificate.write().unwrap_or_else(|e| e.into_inner()) = header;
        Ok(())
    }
}

/// This manager's identifier: it ends the tokens it issues.
pub fn manager_id(state: &AppState) -> String {
    doc::manager_id(&state.ca.signer().public_key())
}

/// Marks a new token's text (`<id>-<ms>|<random>`, public facts §2.4) with the manager.
pub fn mark_token(state: &AppState, raw: &str) -> String {
    format!("{raw}.{}", manager_id(state))
}

/// Whether a token no pool of this manager knows was issued by another manager (a cloud token
/// at a satellite, a satellite's at the cloud): marked, and not with this manager's mark.
fn issued_elsewhere(state: &AppState, token: &str) -> bool {
    let raw = B64.decode(token.trim()).ok().and_then(|b| String::from_utf8(b).ok());
    let mark = raw.as_deref().and_then(|r| r.rsplit_once('.')).map(|(_, m)| m.to_string());
    mark.is_some_and(|m| m.len() == 8 && m.bytes().all(|b| b.is_ascii_hexdigit()) && m != manager_id(state))
}

/// The refusal of an unknown token: seed 000's words when another manager issued it (S-4).
pub fn unknown_token(state: &AppState, token: &str) -> ApiError {
    let text =
        if issued_elsewhere(state, token) { wire::text::TOKEN_OF_ANOTHER_MANAGER } else { wire::text::INVALID_TOKEN };
    ApiError::new(StatusCode::BAD_REQUEST, wire::code::INVALID_TOKEN, text).with_field("token")
}

fn served_elsewhere(satellite: &Satellite) -> ApiError {
    let message = format!(
        "this virtual account is served by the satellite '{}' (local account '{}'): register and authorize the product with the satellite, using the token from the satellite manager",
        satellite.name, satellite.local_account
    );
    ApiError::new(StatusCode::CONFLICT, wire::code::SERVED_BY_SATELLITE, message)
}

/// A satellite refuses the devices of a pool the cloud reassigned to another manager.
fn released(pool: &str) -> ApiError {
    let message = format!(
        "virtual account '{pool}' is no longer served by this satellite: the cloud reassigned it; register the product with the manager that serves it now, using a token from that manager"
    );
    ApiError::new(StatusCode::CONFLICT, wire::code::SERVED_BY_SATELLITE, message)
}

/// One manager per pool: the cloud refuses a device whose token is of a pool a satellite serves,
/// a satellite one whose token is of a pool the cloud took from it.
pub async fn refuse_served_token(state: &AppState, token_hash: &str) -> ApiResult<()> {
    if state.satellite.enabled {
        return match state.store.released_pool_of_token(token_hash).await? {
            Some(pool) => Err(released(&pool)),
            None => Ok(()),
        };
    }
    if !state.satellite.serves_pools.load(Ordering::Acquire) {
        return Ok(());
    }
    match state.store.satellite_serving_token(token_hash).await? {
        Some(s) => Err(served_elsewhere(&s)),
        None => Ok(()),
    }
}

/// One manager per pool: the cloud refuses requests of instances of a pool a satellite serves,
/// a satellite those of a pool the cloud took from it.
pub async fn refuse_served_pool(state: &AppState, virtual_account_id: i64) -> ApiResult<()> {
    if state.satellite.enabled {
        return match state.store.released_pool(virtual_account_id).await? {
            Some(pool) => Err(released(&pool)),
            None => Ok(()),
        };
    }
    if !state.satellite.serves_pools.load(Ordering::Acquire) {
        return Ok(());
    }
    match state.store.satellite_serving_pool(virtual_account_id).await? {
        Some(s) => Err(served_elsewhere(&s)),
        None => Ok(()),
    }
}

/// Tokens are per manager (S-4): a pool's registration tokens come from the manager serving
/// it, so the cloud issues none for a pool a satellite serves and a satellite none for a pool
/// the cloud took from it.
pub async fn refuse_token_of_served_pool(state: &AppState, pool: &smartlic_store::VirtualAccount) -> ApiResult<()> {
    if state.satellite.enabled {
        return match state.store.released_pool(pool.id).await? {
            Some(name) => Err(released(&name).with_field("virtual_account")),
            None => Ok(()),
        };
    }
    if !state.satellite.serves_pools.load(Ordering::Acquire) {
        return Ok(());
    }
    match state.store.satellite_serving_pool(pool.id).await? {
        Some(s) => Err(ApiError::conflict(format!(
            "virtual account '{}' is served by the satellite '{}' (local account '{}'): its registration tokens are created and revoked at the satellite",
            pool.name, s.name, s.local_account
        ))),
        None => Ok(()),
    }
}

/// Tokens are per manager (S-4): a satellite's tokens never reach the cloud (nor the cloud's a
/// satellite), so a manager cannot revoke another's token; it says where to revoke it instead
/// of answering that the token is unknown.
pub async fn refuse_foreign_revocation(
    state: &AppState,
    pool: &smartlic_store::VirtualAccount,
    token: &str,
) -> ApiResult<()> {
    if !issued_elsewhere(state, token) {
        return Ok(());
    }
    let served = if state.satellite.enabled { None } else { state.store.satellite_serving_pool(pool.id).await? };
    let at = served.map_or("the manager that issued it".to_string(), |s| {
        format!("the satellite '{}' (local account '{}')", s.name, s.local_account)
    });
    Err(ApiError::conflict(format!(
        "this token of virtual account '{}' was issued by another manager: tokens are per manager, revoke it at {at}",
        pool.name
    ))
    .with_field("token"))
}

/// One manager per pool: the cloud deletes no pool a satellite serves (the satellite would keep
/// serving it); reassigning it to the cloud first takes it from the satellite at its next sync.
pub async fn refuse_deleting_served(state: &AppState, pool: &smartlic_store::VirtualAccount) -> ApiResult<()> {
    if state.satellite.enabled || !state.satellite.serves_pools.load(Ordering::Acquire) {
        return Ok(());
    }
    let moving = state.store.satellite_serving_pool(pool.id).await?;
    match moving {
        Some(s) => Err(ApiError::conflict(format!(
            "virtual account '{}' is served by the satellite '{}': reassign it to the cloud first (POST /api/v1/satellites/reassign); it leaves the satellite with its next synchronisation",
            pool.name, s.name
        ))),
        None => Ok(()),
    }
}

// ---- the cloud ---------------------------------------------------------------------------

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct SatelliteView {
    id: i64,
    name: String,
    local_account: String,
    smart_account: String,
    manager_id: String,
    status: &'static str,
    requested_at: String,
    requested_by: String,
    approved_at: Option<String>,
    certificate_expires_at: Option<String>,
    virtual_accounts: Vec<String>,
    /// Virtual accounts reassigned away from it, which move with its next synchronisation:
    /// "'Lab' to satellite two" or "'Lab' to the cloud".
    pending_moves: Vec<String>,
    /// The last synchronisation applied (S-3) and when the next scheduled one is due.
    last_synchronization: Option<String>,
    synchronization_due: Option<String>,
}

fn pending_move(m: &smartlic_store::satellite::PendingMove) -> String {
    let to = m.to.as_ref().map_or("the cloud".to_string(), |t| format!("satellite {t}"));
    format!("'{}' to {to} (asked by {} at {})", m.pool, m.requested_by, m.requested_at.to_rfc3339())
}

async fn view(state: &AppState, s: &Satellite) -> ApiResult<SatelliteView> {
    let account = state
        .store
        .account_by_id(s.account_id)
        .await?
        .ok_or_else(|| ApiError::internal("satellite without account"))?;
    Ok(SatelliteView {
        id: s.id,
        name: s.name.clone(),
        local_account: s.local_account.clone(),
        smart_account: account.domain,
        manager_id: s.manager_id.clone(),
        status: s.status(),
        requested_at: s.requested_at.to_rfc3339(),
        requested_by: s.requested_by.clone(),
        approved_at: s.approved_at.map(Timestamp::to_rfc3339),
        certificate_expires_at: s.certificate_expires_at.map(Timestamp::to_rfc3339),
        virtual_accounts: s.pools.clone(),
        pending_moves: s.pending_moves.iter().map(pending_move).collect(),
        last_synchronization: s.last_sync_at.map(Timestamp::to_rfc3339),
        synchronization_due: s.last_sync_at.or(s.approved_at).map(|t| t.plus_days(s.sync_interval_days).to_rfc3339()),
    })
}

/// The cloud's own operations, refused on a satellite: its accounts come from approvals.
pub(crate) fn refuse_on_satellite(state: &AppState, what: &str) -> ApiResult<()> {
    if state.satellite.enabled {
        return Err(ApiError::conflict(format!("this manager is a satellite: {what} is the cloud's")));
    }
    Ok(())
}

fn bad_document(field: &str, e: doc::SatelliteError) -> ApiError {
    ApiError::invalid(field, e.to_string())
}

/// Records a sealed registration (the caller must hold a role in its smart account).
async fn record_registration(
    state: &AppState,
    caller: &Caller,
    sealed: &Sealed,
) -> ApiResult<(Satellite, CertificateRequest)> {
    let field = "registration";
    refuse_on_satellite(state, "registering satellites")?;
    let (r, request) = sealed.open_registration().map_err(|e| bad_document(field, e))?;
    let name = validate::text("satellite", &r.satellite, validate::MAX_NAME)?;
    let local_account = validate::text("local_account", &r.local_account, validate::MAX_NAME)?;
    if r.manager_id != doc::manager_id(&request.public_key) {
        return Err(ApiError::invalid(field, "the registration's manager_id is not the one of its key"));
    }
    let account = load_account(state, caller, &r.smart_account).await?;
    caller.require(smartlic_core::role::Action::ManageVirtualAccounts, &account, None)?;
    let new = NewSatellite {
        account_id: account.id,
        name,
        local_account,
        manager_id: r.manager_id,
        key_algorithm: request.public_key.algorithm.as_str().to_string(),
        public_key: B64.encode(&request.public_key.raw),
        csr: r.csr,
    };
    Ok((state.store.create_satellite(new, caller.login(), state.clock.now()).await?, request))
}

#[utoipa::path(
    post,
    path = "/api/v1/satellites",
    operation_id = "register_satellite",
    tag = "smartlic",
    summary = "Cloud: record a satellite's signed registration (operator or a role in its smart account); pending until approved",
    request_body = crate::openapi::SealedDocument,
    responses(
        (status = 201, description = "recorded, pending approval", body = SatelliteView),
        (status = 403, description = "FORBIDDEN: the caller has no role in the satellite's smart account"),
        (status = 404, description = "NOT_FOUND: the smart account does not exist or the caller has no role in it"),
        (status = 409, description = "CONFLICT: this manager is a satellite, or the satellite is recorded already"),
    )
)]
async fn register_satellite(
    State(state): State<AppState>,
    caller: Caller,
    Body(sealed): Body<Sealed>,
) -> ApiResult<Response> {
    let (s, _) = record_registration(&state, &caller, &sealed).await?;
    Ok(created(view(&state, &s).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/satellites",
    operation_id = "list_satellites",
    tag = "smartlic",
    summary = "Cloud: satellites, pending and approved, with the pools they serve (operator)",
    params(crate::openapi::PageParams),
    responses(
        (status = 200, description = "a page of satellites", body = SatellitePage),
        (status = 403, description = "FORBIDDEN: only the operator"),
    )
)]
async fn list_satellites(
    State(state): State<AppState>,
    caller: Caller,
    Query(page): Query<Page>,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require_operator("list satellites")?;
    let mut views = Vec::new();
    for s in state.store.satellites().await? {
        views.push(view(&state, &s).await?);
    }
    page.answer("satellites", views)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ApproveBody {
    virtual_accounts: Vec<String>,
}

/// Issues the certificate, grants the pools with their licenses as they are now, and records
/// it all with the sealed answer in one transaction.
async fn approve_satellite(
    state: &AppState,
    caller: &Caller,
    s: &Satellite,
    request: &CertificateRequest,
    pools: &[String],
) -> ApiResult<(Satellite, Sealed)> {
    caller.require_operator("approve satellites")?;
    if pools.is_empty() {
        return Err(ApiError::invalid("virtual_accounts", "name at least one virtual account the satellite serves"));
    }
    let account = state
        .store
        .account_by_id(s.account_id)
        .await?
        .ok_or_else(|| ApiError::internal("satellite without account"))?;
    let mut granted = Vec::new();
    let mut ids = Vec::new();
    for name in pools {
        let va = state.store.virtual_account(account.id, name).await?.ok_or_else(|| {
            ApiError::not_found(format!("virtual account '{name}' does not exist in {}", account.domain))
                .with_field("virtual_accounts")
        })?;
        if ids.contains(&va.id) {
            return Err(ApiError::invalid("virtual_accounts", format!("'{name}' is named twice")));
        }
        granted.push(granted_pool(state, &va).await?);
        ids.push(va.id);
    }
    let now = state.clock.now();
    let secs = now.0 / 1000;
    let expires = Timestamp((secs + CERTIFICATE_DAYS * 86_400) * 1000);
    let serial = rand::random::<u64>() >> 1;
    let issued = state
        .ca
        .issue_id_certificate(request, &format!("satellite:{}", s.name), serial, secs, expires.0 / 1000)
        .map_err(ApiError::internal)?;
    let approval = Approval {
        satellite_id: s.id,
        satellite: s.name.clone(),
        local_account: s.local_account.clone(),
        smart_account: account.domain.clone(),
        smart_account_name: account.name.clone(),
        certificate: issued.pem,
        cloud_ca: state.ca.cert_pem().to_string(),
        pools: granted,
        approved_at: now.0,
    };
    let sealed = Sealed::seal(doc::KIND_APPROVAL, &approval, state.ca.signer()).map_err(ApiError::internal)?;
    let record = SatelliteApproval {
        satellite_id: s.id,
        virtual_account_ids: ids,
        certificate_expires_at: expires,
        answer: sealed.to_json(),
    };
    let approved = state.store.approve_satellite(record, caller.login(), now).await?;
    state.satellite.serves_pools.store(true, Ordering::Release);
    Ok((approved, sealed))
}

/// A pool with its licenses as the cloud holds them now: what an approval grants and each
/// synchronisation brings down.
async fn granted_pool(state: &AppState, va: &smartlic_store::VirtualAccount) -> ApiResult<GrantedPool> {
    let licenses = state.store.licenses(va.id).await?.into_iter().map(|l| GrantedLicense {
        tag: l.tag,
        sku: l.sku,
        quantity: l.quantity,
        kind: l.term.kind.as_str().to_string(),
        start: l.term.start.map(|t| t.0),
        end: l.term.end.map(|t| t.0),
        subscription_id: l.subscription_id,
    });
    Ok(GrantedPool { name: va.name.clone(), description: va.description.clone(), licenses: licenses.collect() })
}

/// The request a pending satellite registered, for the CA to certify.
fn stored_request(s: &Satellite) -> ApiResult<CertificateRequest> {
    CertificateRequest::from_pem(&s.csr).map_err(ApiError::internal)
}

async fn load_satellite(state: &AppState, id: i64) -> ApiResult<Satellite> {
    state
        .store
        .satellite(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("satellite {id} does not exist")).with_field("id"))
}

#[utoipa::path(
    post,
    path = "/api/v1/satellites/{id}/approve",
    operation_id = "approve_satellite",
    tag = "smartlic",
    summary = "Cloud: approve a satellite: certificate from the cloud CA (1 year), the named virtual accounts served by it alone",
    params(crate::openapi::SatellitePath),
    request_body = ApproveBody,
    responses(
        (status = 200, description = "approved", body = SatelliteView),
        (status = 403, description = "FORBIDDEN: only the operator"),
        (status = 404, description = "NOT_FOUND: no such satellite, or no such virtual account"),
        (status = 409, description = "CONFLICT: the satellite is approved already, or a pool is served by another"),
    )
)]
async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Body(b): Body<ApproveBody>,
) -> ApiResult<Json<SatelliteView>> {
    caller.require_operator("approve satellites")?;
    let s = load_satellite(&state, id).await?;
    let request = stored_request(&s)?;
    let (approved, _) = approve_satellite(&state, &caller, &s, &request, &b.virtual_accounts).await?;
    Ok(Json(view(&state, &approved).await?))
}

/// The sealed answer, once approved, for whoever may see the satellite's smart account.
#[utoipa::path(
    get,
    path = "/api/v1/satellites/{id}/answer",
    operation_id = "satellite_answer",
    tag = "smartlic",
    summary = "Cloud: the signed approval for the satellite to import (409 NOT_APPROVED before)",
    params(crate::openapi::SatellitePath),
    responses(
        (status = 200, description = "the signed approval", body = crate::openapi::SealedDocument),
        (status = 403, description = "FORBIDDEN: the caller has no role in the satellite's smart account"),
        (status = 404, description = "NOT_FOUND: no such satellite"),
        (status = 409, description = "NOT_APPROVED: the satellite waits for the operator's approval"),
    )
)]
async fn fetch_answer(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> ApiResult<Json<Sealed>> {
    let s = load_satellite(&state, id).await?;
    let account = state
        .store
        .account_by_id(s.account_id)
        .await?
        .ok_or_else(|| ApiError::internal("satellite without account"))?;
    caller.require_account_view(&account)?;
    let answer = s.answer.ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "NOT_APPROVED",
            format!("satellite {id} ({}) waits for the cloud operator's approval", s.name),
        )
    })?;
    Ok(Json(Sealed::parse(&answer).map_err(ApiError::internal)?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct OfflineBody {
    #[schema(value_type = crate::openapi::SealedDocument)]
    registration: Sealed,
    virtual_accounts: Vec<String>,
}

/// Offline registration: the file's registration is recorded and approved in one step, with
/// the pools the operator names, and the sealed answer comes back to be carried to the satellite.
#[utoipa::path(
    post,
    path = "/api/v1/satellites/answer",
    operation_id = "answer_satellite_offline",
    tag = "smartlic",
    summary = "Cloud, offline registration: record and approve a registration file with the named pools; answers the approval file",
    request_body = OfflineBody,
    responses(
        (status = 200, description = "the signed approval", body = crate::openapi::SealedDocument),
        (status = 403, description = "FORBIDDEN: only the operator"),
        (status = 404, description = "NOT_FOUND: the smart account or a virtual account does not exist"),
        (status = 409, description = "CONFLICT: this manager is a satellite, or the satellite is recorded already, or a pool is served by another"),
    )
)]
async fn answer_offline(
    State(state): State<AppState>,
    caller: Caller,
    Body(b): Body<OfflineBody>,
) -> ApiResult<Json<Sealed>> {
    caller.require_operator("answer satellite registrations")?;
    refuse_on_satellite(&state, "answering satellite registrations")?;
    if b.virtual_accounts.is_empty() {
        return Err(ApiError::invalid("virtual_accounts", "name at least one virtual account the satellite serves"));
    }
    let (s, request) = record_registration(&state, &caller, &b.registration).await?;
    let (_, sealed) = approve_satellite(&state, &caller, &s, &request, &b.virtual_accounts).await?;
    Ok(Json(sealed))
}

// ---- the satellite -----------------------------------------------------------------------

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct LocalAccountView {
    name: String,
    smart_account: String,
    status: &'static str,
    created_at: String,
    cloud_url: Option<String>,
    cloud_satellite_id: Option<i64>,
    approved_at: Option<String>,
    certificate_expires_at: Option<String>,
    manager_id: String,
}

fn local_view(state: &AppState, a: &LocalAccount) -> LocalAccountView {
    LocalAccountView {
        name: a.name.clone(),
        smart_account: a.domain.clone(),
        status: a.status(),
        created_at: a.created_at.to_rfc3339(),
        cloud_url: a.cloud_url.clone(),
        cloud_satellite_id: a.cloud_satellite_id,
        approved_at: a.approved_at.map(Timestamp::to_rfc3339),
        certificate_expires_at: a.certificate_expires_at.map(Timestamp::to_rfc3339),
        manager_id: manager_id(state),
    }
}

fn require_satellite(state: &AppState, caller: &Caller, what: &str) -> ApiResult<()> {
    caller.require_operator(what)?;
    if !state.satellite.enabled {
        return Err(ApiError::conflict(
            "local accounts live on a satellite: start it with `smartlic server --mode satellite`",
        ));
    }
    Ok(())
}

async fn load_local(state: &AppState, name: &str) -> ApiResult<LocalAccount> {
    state
        .store
        .local_account(name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("local account '{name}' does not exist")).with_field("name"))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewLocalAccount {
    #[schema(min_length = 1, max_length = 128)]
    name: String,
    /// The domain of the smart account in the cloud.
    #[schema(min_length = 1, max_length = 253)]
    smart_account: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/local-accounts",
    operation_id = "create_local_account",
    tag = "smartlic",
    summary = "Satellite: create a local account mirroring a smart account of the cloud (operator)",
    request_body = NewLocalAccount,
    responses(
        (status = 201, description = "created", body = LocalAccountView),
        (status = 403, description = "FORBIDDEN: only the operator"),
        (status = 409, description = "CONFLICT: this manager is not a satellite (start it with --mode satellite), or the name is taken"),
    )
)]
async fn create_local_account(
    State(state): State<AppState>,
    caller: Caller,
    Body(b): Body<NewLocalAccount>,
) -> ApiResult<Response> {
    require_satellite(&state, &caller, "create local accounts")?;
    let name = validate::text("name", &b.name, validate::MAX_NAME)?;
    let domain = validate::domain(&b.smart_account).map_err(|e| ApiError::invalid("smart_account", e.to_string()))?;
    let a = state.store.create_local_account(&name, &domain, caller.login(), state.clock.now()).await?;
    Ok(created(local_view(&state, &a)))
}

#[utoipa::path(
    get,
    path = "/api/v1/local-accounts",
    operation_id = "list_local_accounts",
    tag = "smartlic",
    summary = "Satellite: local accounts and their registration status (operator)",
    params(crate::openapi::PageParams),
    responses(
        (status = 200, description = "a page of local accounts", body = LocalAccountPage),
        (status = 403, description = "FORBIDDEN: only the operator"),
        (status = 409, description = "CONFLICT: this manager is not a satellite (start it with --mode satellite)"),
    )
)]
async fn list_local_accounts(
    State(state): State<AppState>,
    caller: Caller,
    Query(page): Query<Page>,
) -> ApiResult<Json<serde_json::Value>> {
    require_satellite(&state, &caller, "list local accounts")?;
    let accounts: Vec<_> = state.store.local_accounts().await?.iter().map(|a| local_view(&state, a)).collect();
    page.answer("local_accounts", accounts)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct RegistrationQuery {
    /// The satellite's name in the cloud (smartlic-satellite when absent).
    #[param(min_length = 1, max_length = 128)]
    satellite: Option<String>,
}

/// The local account's registration, signed with this satellite's key, to send or carry.
#[utoipa::path(
    get,
    path = "/api/v1/local-accounts/{name}/registration",
    operation_id = "local_account_registration",
    tag = "smartlic",
    summary = "Satellite: the local account's registration signed with the satellite's key",
    params(crate::openapi::LocalAccountPath, RegistrationQuery),
    responses(
        (status = 200, description = "the signed registration", body = crate::openapi::SealedDocument),
        (status = 403, description = "FORBIDDEN: only the operator"),
        (status = 404, description = "NOT_FOUND: no such local account"),
        (status = 409, description = "CONFLICT: this manager is not a satellite (start it with --mode satellite), or the local account is approved already"),
    )
)]
async fn registration(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<RegistrationQuery>,
) -> ApiResult<Json<Sealed>> {
    require_satellite(&state, &caller, "register local accounts")?;
    let a = load_local(&state, &name).await?;
    if a.approved_at.is_some() {
        return Err(ApiError::conflict(format!("local account '{name}' is approved already")));
    }
    let satellite =
        validate::text("satellite", q.satellite.as_deref().unwrap_or("smartlic-satellite"), validate::MAX_NAME)?;
    let key = state.ca.signer();
    let r = Registration {
        csr: key.certificate_request(&format!("satellite:{satellite}")).map_err(ApiError::internal)?,
        satellite,
        local_account: a.name,
        smart_account: a.domain,
        manager_id: manager_id(&state),
        created_at: state.clock.now().0,
    };
    Ok(Json(Sealed::seal(doc::KIND_REGISTRATION, &r, key).map_err(ApiError::internal)?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SentBody {
    cloud_satellite_id: i64,
    #[schema(min_length = 1, max_length = 512)]
    cloud_url: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/local-accounts/{name}/sent",
    operation_id = "local_account_sent",
    tag = "smartlic",
    summary = "Satellite: note the cloud's identifier of a registration sent online",
    params(crate::openapi::LocalAccountPath),
    request_body = SentBody,
    responses(
        (status = 200, description = "the local account", body = LocalAccountView),
        (status = 403, description = "FORBIDDEN: only the operator"),
        (status = 404, description = "NOT_FOUND: no such local account"),
        (status = 409, description = "CONFLICT: this manager is not a satellite (start it with --mode satellite)"),
    )
)]
async fn registration_sent(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(b): Body<SentBody>,
) -> ApiResult<Json<LocalAccountView>> {
    require_satellite(&state, &caller, "register local accounts")?;
    load_local(&state, &name).await?;
    let url = validate::text("cloud_url", &b.cloud_url, 512)?;
    let a =
        state.store.local_account_sent(&name, b.cloud_satellite_id, &url, caller.login(), state.clock.now()).await?;
    Ok(Json(local_view(&state, &a)))
}

fn mirrored_license(l: GrantedLicense) -> ApiResult<NewLicense> {
    let kind = LicenseKind::parse(&l.kind)?;
    let term = LicenseTerm::new(kind, l.start.map(Timestamp), l.end.map(Timestamp))?;
    Ok(NewLicense {
        virtual_account_id: 0,
        tag: l.tag,
        sku: l.sku,
        quantity: l.quantity,
        term,
        subscription_id: l.subscription_id,
    })
}

/// Imports the cloud's answer: it must be signed by the cloud CA it names, certify this
/// satellite's key, and answer this local account; then the account serves devices.
#[utoipa::path(
    post,
    path = "/api/v1/local-accounts/{name}/approval",
    operation_id = "import_approval",
    tag = "smartlic",
    summary = "Satellite: import the cloud's signed approval; the smart account and its granted pools then serve devices",
    params(crate::openapi::LocalAccountPath),
    request_body = crate::openapi::SealedDocument,
    responses(
        (status = 200, description = "the local account, approved", body = LocalAccountView),
        (status = 403, description = "FORBIDDEN: only the operator"),
        (status = 404, description = "NOT_FOUND: no such local account"),
        (status = 409, description = "CONFLICT: this manager is not a satellite (start it with --mode satellite), or it is approved already"),
    )
)]
async fn import_approval(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(sealed): Body<Sealed>,
) -> ApiResult<Json<LocalAccountView>> {
    require_satellite(&state, &caller, "import approvals")?;
    let a = load_local(&state, &name).await?;
    let approval = sealed.open_approval(&state.ca.signer().public_key()).map_err(|e| bad_document("answer", e))?;
    if approval.local_account != a.name || approval.smart_account != a.domain {
        return Err(ApiError::invalid(
            "answer",
            format!(
                "the answer is for local account '{}' of {}, not '{}' of {}",
                approval.local_account, approval.smart_account, a.name, a.domain
            ),
        ));
    }
    if let Some(sent) = a.cloud_satellite_id.filter(|id| *id != approval.satellite_id) {
        return Err(ApiError::invalid(
            "answer",
            format!(
                "the answer is for satellite {} in the cloud; this registration was sent as {sent}",
                approval.satellite_id
            ),
        ));
    }
    let checked =
        cert::certificate_facts(&approval.certificate).map_err(|e| ApiError::invalid("answer", e.to_string()))?;
    let mut pools = Vec::new();
    for p in approval.pools {
        let licenses = p.licenses.into_iter().map(mirrored_license).collect::<ApiResult<Vec<_>>>()?;
        pools.push(MirroredPool { name: p.name, description: p.description, licenses });
    }
    let local = LocalApproval {
        local_account: a.name,
        cloud_satellite_id: approval.satellite_id,
        smart_account_name: approval.smart_account_name,
        certificate: approval.certificate,
        certificate_expires_at: Timestamp(checked.1 * 1000),
        cloud_ca: approval.cloud_ca,
        pools,
    };
    let approved = state.store.approve_local_account(local, caller.login(), state.clock.now()).await?;
    state.satellite.refresh(state.store.as_ref()).await?;
    Ok(Json(local_view(&state, &approved)))
}
