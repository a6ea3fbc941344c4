//! Synchronisation between a satellite and its cloud (S-3).
//!
//! The satellite's request carries its pools' instances and usage up (all of them in a full
//! sync; in a standard one, those contacted since the request the cloud last answered); the
//! cloud keeps them apart from its own instances, counts their usage in the pools, and answers
//! with the pools' licenses as it holds them, which replace the satellite's copy. Between syncs
//! the satellite decides compliance with that copy; after a sync the cloud is authoritative.
//!
//! Online, the satellite POSTs the request to the cloud over HTTPS: the request's signature by
//! the key the cloud certified is the authentication. By files, the satellite exports the YAML
//! request, the cloud's operator turns it into a YAML response (`file-sync`), the satellite
//! imports it. Either side applies a document in one transaction, or refuses it naming why
//! (tampered, truncated, stale, replayed, foreign) and changes nothing.
//!
//! The satellite synchronises by itself when a local account's sync falls due (every 30 days by
//! default, `sync_interval_days`), from the background jobs on the manager's clock; a failed
//! attempt is recorded (event and status) and retried an hour later until one succeeds.
//!
//! What comes down: the served pools' licenses, the instances the cloud's operator removed, and
//! the pools the operator reassigned to another manager (released: the satellite removes their
//! instances and serves them no more). A pool the cloud serves is given to a satellite at once
//! when no instance is registered in it with the cloud; one a satellite serves moves with that
//! satellite's next request, after its usage: one manager per pool at every moment, and usage
//! counted once (the released devices register again with the new manager's token).

use super::spool::{self, Spool};
use super::{granted_pool, LocalAccountView};
use super::{load_local, local_view, mirrored_license, refuse_on_satellite, require_satellite};
use crate::auth::{random_text, Caller};
use crate::body::{Body, Path};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::{engine::general_purpose::STANDARD as B64, Engine};
use serde::{Deserialize, Serialize};
use smartlic_core::Timestamp;
use smartlic_proto::cert;
use smartlic_proto::keys::{KeyAlgorithm, PublicKey};
use smartlic_proto::sync::stream::{self, RequestHead, RequestPart, RequestParts, RequestWriter};
use smartlic_proto::sync::{
    RemovedFromPool, RemovedInstance, ReportedInstance, SignedBy, SyncAuth, SyncError, SyncFile, SyncResponse,
    KIND_SYNC_RESPONSE, SYNC_AUTH_HEADER,
};
use smartlic_proto::wire;
use smartlic_store::satellite::{
    AppliedSync, LocalAccount, MirroredInstance, MirroredPool, PoolInstances, RemovedUdi, Satellite, SatelliteSync,
    SyncSettings,
};
use smartlic_store::StoreError;
use smartlic_store::{AlertKind, AlertSeverity, NewAlert};
use std::sync::{Arc, Mutex};
use tempfile::NamedTempFile;

/// The longest interval between scheduled synchronisations an operator may set (the default,
/// seed 001's 30 days, is the store's).
const MAX_INTERVAL_DAYS: i64 = 365;
/// A scheduled synchronisation that failed is tried again this long after (manager's clock).
const RETRY_MINUTES: i64 = 60;
/// Who the events of a scheduled synchronisation name.
const SCHEDULER: &str = "scheduler";
/// The largest request the cloud reads. A full request carries every instance, about 150
/// bytes each: a million make about 150 MB, which axum's default (2 MB, about 13,000
/// instances) would refuse. This leaves room for long host names and several tags each. Only
/// an authenticated sender's body is read at all: an approved satellite's
/// ([`SatelliteSender`], from a header) or the operator's (File Sync).
const MAX_SYNC_REQUEST: usize = 512 * 1024 * 1024;
/// How long the satellite waits for the cloud's answer to a network request: the cloud applies
/// a full request of a million instances in about a minute on 2 shared cores (BENCHMARKS.md),
/// past the HTTPS client's 60 s default.
const CLOUD_SYNC_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/satellites/sync", post(network_sync).layer(DefaultBodyLimit::max(MAX_SYNC_REQUEST)))
        .route("/api/v1/satellites/file-sync", post(file_sync).layer(DefaultBodyLimit::max(MAX_SYNC_REQUEST)))
        .route("/api/v1/satellites/{id}/instances", get(satellite_instances))
        .route("/api/v1/satellites/{id}/instances/remove", post(remove_instance))
        .route("/api/v1/sync/now", post(sync_now))
        .route("/api/v1/sync/export", post(export))
        .route("/api/v1/sync/import", post(import))
        .route("/api/v1/sync/status", get(status))
        .route("/api/v1/sync/schedule", post(schedule))
}

fn refused(field: &str, e: SyncError) -> ApiError {
    ApiError::invalid(field, e.to_string())
}

fn foreign(field: &str, why: String) -> ApiError {
    ApiError::invalid(field, format!("{why} (a foreign file); nothing changed"))
}

// ---- the cloud ---------------------------------------------------------------------------

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RequestBody {
    /// The satellite's signed request, as the YAML file it wrote.
    request: String,
}

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
struct ResponseBody {
    /// The cloud's signed response, as the YAML file to carry back.
    response: String,
}

/// A part of a request as the cloud mirrors it; one reporting a negative usage is refused.
fn mirrored(part: RequestPart) -> ApiResult<PoolInstances> {
    if let Some(i) = part.instances.iter().find(|i| i.usage.values().any(|n| *n < 0)) {
        return Err(ApiError::invalid("request", format!("PID:{},SN:{} reports a negative usage count", i.pid, i.sn)));
    }
    let instance = |i: ReportedInstance| MirroredInstance {
        pid: i.pid,
        sn: i.sn,
        hostname: i.hostname,
        last_contact_at: Timestamp(i.last_contact_at),
        usage: i.usage,
    };
    Ok(PoolInstances {
        pool: part.pool,
        instances: part.instances.into_iter().map(instance).collect(),
        removed: part.removed.into_iter().map(|r| (r.pid, r.sn)).collect(),
    })
}

/// A request file as a route receives it: the file itself (`application/yaml`, as the satellite
/// sends it), received into a temporary file as it comes, or `{"request": "..."}` in JSON.
async fn received(state: &AppState, request: Request) -> ApiResult<Spool> {
    let yaml = request.headers().get(CONTENT_TYPE).is_some_and(|t| t.as_bytes().starts_with(b"application/yaml"));
    if yaml {
        return spool::receive(request.into_body(), MAX_SYNC_REQUEST).await;
    }
    let Body(b) = Body::<RequestBody>::from_request(request, state).await?;
    Ok(Spool::text(b.request))
}

/// The approved satellite `id` and the key the cloud certified for it, or none.
async fn approved_satellite(state: &AppState, id: i64) -> ApiResult<Option<(Satellite, PublicKey)>> {
    let Some(sat) = state.store.satellite(id).await?.filter(|s| s.approved_at.is_some()) else {
        return Ok(None);
    };
    let key = PublicKey {
        algorithm: KeyAlgorithm::parse(&sat.key_algorithm)
            .ok_or_else(|| ApiError::internal("satellite key of an unknown algorithm"))?,
        raw: B64.decode(&sat.public_key).map_err(ApiError::internal)?,
    };
    Ok(Some((sat, key)))
}

/// A network synchronisation's sender, authenticated by its [`SYNC_AUTH_HEADER`] header before
/// the body is read (an extractor of the request's head: axum runs it before the body's): an
/// approved satellite's signature, a timestamp within the clock tolerance of the cloud's clock,
/// a nonce never seen. Anyone else is refused (401) without a byte of the body read.
struct SatelliteSender(i64);

fn unauthenticated(why: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", format!("{SYNC_AUTH_HEADER}: {why}"))
        .with_field(SYNC_AUTH_HEADER)
}

impl FromRequestParts<AppState> for SatelliteSender {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        refuse_on_satellite(state, "answering synchronisations")?;
        let value = parts
            .headers
            .get(SYNC_AUTH_HEADER)
            .ok_or_else(|| unauthenticated("missing: a network synchronisation is signed by the satellite's key"))?;
        let value = value.to_str().map_err(|_| unauthenticated("not ASCII text"))?;
        let file = SyncFile::from_header(value).map_err(unauthenticated)?;
        let (id, local_account) = file.claim().map_err(unauthenticated)?;
        let (sat, key) = approved_satellite(state, id)
            .await?
            .ok_or_else(|| unauthenticated(format!("names satellite {id}, which this cloud has not approved")))?;
        let auth = file.open_auth(&key).map_err(unauthenticated)?;
        if local_account != sat.local_account {
            let why =
                format!("names local account '{local_account}'; satellite {id} registered '{}'", sat.local_account);
            return Err(unauthenticated(why));
        }
        let now = state.clock.now();
        let tolerance = state.policy.clock_tolerance_ms;
        if auth.timestamp.checked_sub(now.0).and_then(i64::checked_abs).is_none_or(|ms| ms > tolerance) {
            return Err(unauthenticated(format!(
                "its timestamp {} is stale: more than {} minutes from the cloud's clock ({}); check the satellite's clock",
                Timestamp(auth.timestamp).to_rfc3339(),
                tolerance / 60_000,
                now.to_rfc3339()
            )));
        }
        if !wire::nonce_well_formed(&auth.nonce) {
            return Err(unauthenticated("its nonce must be 16 to 128 printable characters"));
        }
        // Kept as long as a timestamp could pass the tolerance check.
        let keep_until = now.plus_ms(2 * tolerance);
        if !state.store.consume_nonce(&format!("satellite-sync/{id}"), &auth.nonce, keep_until).await? {
            return Err(unauthenticated("its nonce was seen before (a replayed request); each request has a new one"));
        }
        Ok(SatelliteSender(id))
    }
}

/// Checks, applies and answers a satellite's request: signed by the key the cloud certified
/// for the satellite it names (the one `sender` authenticated, over the network), for that
/// satellite's local account, newer than the last applied.
///
/// The file is read twice, a document at a time: once whole to check its signature, then
/// again as the store applies its parts in one transaction; a part refused (or a file changed
/// since the check) ends the transaction, which then changes nothing.
async fn answer(state: &AppState, spool: Spool, sender: Option<SatelliteSender>) -> ApiResult<String> {
    let field = "request";
    refuse_on_satellite(state, "answering synchronisations")?;
    let claim = stream::request_head(spool.reader()?).map_err(|e| refused(field, e))?;
    let id = claim.satellite_id;
    if let Some(SatelliteSender(sent_by)) = sender.filter(|s| s.0 != id) {
        return Err(foreign(field, format!("the request names satellite {id}, but satellite {sent_by} sent it")));
    }
    let (sat, key) = approved_satellite(state, id).await?.ok_or_else(|| {
        foreign(field, format!("the request names satellite {id}, which this cloud has not approved"))
    })?;
    let input = spool.reader()?;
    let checked = tokio::task::spawn_blocking(move || stream::check_request(input, &key))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| refused(field, e))?;
    let head: RequestHead = checked.head.clone();
    if head.local_account != sat.local_account {
        return Err(foreign(
            field,
            format!(
                "the request is for local account '{}'; satellite {id} registered '{}'",
                head.local_account, sat.local_account
            ),
        ));
    }
    if !(1..=MAX_INTERVAL_DAYS).contains(&head.interval_days) {
        let days = head.interval_days;
        return Err(ApiError::invalid(
            field,
            format!("the scheduled synchronisation interval {days} is not 1 to {MAX_INTERVAL_DAYS} days"),
        ));
    }
    // Why a part was refused, kept here: the store only learns that the import ends.
    let refusal: Arc<Mutex<Option<ApiError>>> = Arc::default();
    let kept = refusal.clone();
    let parts = RequestParts::new(spool.reader()?, &checked).map(move |part| {
        part.map_err(|e| refused(field, e)).and_then(mirrored).map_err(|e| {
            let why = e.message.clone();
            *kept.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
            StoreError::Conflict(why)
        })
    });
    let sync = SatelliteSync {
        satellite_id: id,
        sequence: head.sequence,
        acknowledges: head.acknowledges,
        full: head.full,
        interval_days: head.interval_days,
        parts: Box::new(parts),
    };
    let applied = state.store.apply_satellite_sync(sync, state.clock.now()).await;
    let outcome = match applied {
        Ok(outcome) => outcome,
        Err(e) => return Err(refusal.lock().unwrap_or_else(|p| p.into_inner()).take().unwrap_or_else(|| e.into())),
    };
    drop(spool);
    let synced = outcome.satellite;
    let account = state
        .store
        .account_by_id(synced.account_id)
        .await?
        .ok_or_else(|| ApiError::internal("satellite without account"))?;
    let mut pools = Vec::new();
    for name in &synced.pools {
        if let Some(va) = state.store.virtual_account(account.id, name).await? {
            pools.push(granted_pool(state, &va).await?);
        }
    }
    let response = SyncResponse {
        satellite_id: id,
        local_account: synced.local_account,
        smart_account: account.domain,
        sequence: head.sequence,
        created_at: state.clock.now().0,
        pools,
        removed: outcome.removed.into_iter().map(|r| RemovedFromPool { pool: r.pool, pid: r.pid, sn: r.sn }).collect(),
        released: outcome.released,
        signed_by: SignedBy::of(state.ca.signer()),
    };
    let sealed = SyncFile::seal(KIND_SYNC_RESPONSE, &response, state.ca.signer()).map_err(ApiError::internal)?;
    Ok(sealed.to_yaml())
}

/// Network synchronisation: the header authenticates the satellite before the body is read,
/// and the request's own signature is checked as in File Sync.
#[utoipa::path(
    post,
    path = "/api/v1/satellites/sync",
    operation_id = "satellite_network_sync",
    tag = "smartlic",
    summary = "Cloud, network synchronisation: a request signed by the satellite's certified key (no bearer token), sent with the signed x-smartlic-satellite-auth header; answers the signed response",
    security(()),
    params(
        ("x-smartlic-satellite-auth" = String, Header, description = "base64 of a synchronisation file of kind smartlic-sync-auth: the satellite id, local account, timestamp (within the clock tolerance) and a new nonce, signed by the satellite's certified key"),
    ),
    request_body(
        description = "the request file: as JSON, or the YAML file itself (what the satellite sends, read as it comes)",
        content((RequestBody = "application/json"), (String = "application/yaml"))
    ),
    responses(
        (status = 200, description = "the signed response", body = ResponseBody),
        (status = 401, description = "UNAUTHENTICATED: the x-smartlic-satellite-auth header is missing, malformed, not signed by the approved satellite's key, stale or replayed (the body is not read)"),
        (status = 403, description = "FORBIDDEN: the request is not signed by an approved satellite's certified key"),
        (status = 409, description = "CONFLICT: this manager is a satellite, or the request is older than the last applied"),
    )
)]
async fn network_sync(
    State(state): State<AppState>,
    sender: SatelliteSender,
    request: Request,
) -> ApiResult<Json<ResponseBody>> {
    let spool = received(&state, request).await?;
    Ok(Json(ResponseBody { response: answer(&state, spool, Some(sender)).await? }))
}

/// The cloud operator's File Sync: a request file carried from the satellite, answered. The
/// caller is the operator before the body is read: only the operator's may be large.
#[utoipa::path(
    post,
    path = "/api/v1/satellites/file-sync",
    operation_id = "satellite_file_sync",
    tag = "smartlic",
    summary = "Cloud, File Sync (operator): apply a satellite's request file; answers the response file",
    request_body(
        description = "the request file: as JSON, or the YAML file itself (read as it comes)",
        content((RequestBody = "application/json"), (String = "application/yaml"))
    ),
    responses(
        (status = 200, description = "the signed response", body = ResponseBody),
        (status = 403, description = "FORBIDDEN: only the operator, or the request is not signed by an approved satellite"),
        (status = 409, description = "CONFLICT: this manager is a satellite, or the request is older than the last applied"),
    )
)]
async fn file_sync(State(state): State<AppState>, caller: Caller, request: Request) -> ApiResult<Json<ResponseBody>> {
    caller.require_operator("answer satellite synchronisations")?;
    let spool = received(&state, request).await?;
    Ok(Json(ResponseBody { response: answer(&state, spool, None).await? }))
}

#[derive(Serialize, utoipa::ToSchema)]
struct MirroredView {
    virtual_account: String,
    pid: String,
    sn: String,
    hostname: String,
    last_contact_at: String,
    usage: std::collections::BTreeMap<String, i64>,
}

/// The satellite's instances and usage as of its last synchronisation.
#[utoipa::path(
    get,
    path = "/api/v1/satellites/{id}/instances",
    operation_id = "satellite_instances",
    tag = "smartlic",
    summary = "Cloud: the satellite's instances and usage as of its last synchronisation (operator)",
    params(crate::openapi::SatellitePath),
    responses(
        (status = 200, description = "the instances", body = SatelliteInstances),
        (status = 403, description = "FORBIDDEN: only the operator"),
        (status = 404, description = "NOT_FOUND: no such satellite"),
    )
)]
async fn satellite_instances(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> ApiResult<Json<SatelliteInstances>> {
    caller.require_operator("list satellite instances")?;
    let sat = super::load_satellite(&state, id).await?;
    let mut views = Vec::new();
    for p in state.store.satellite_instances(id).await? {
        for i in p.instances {
            views.push(MirroredView {
                virtual_account: p.pool.clone(),
                pid: i.pid,
                sn: i.sn,
                hostname: i.hostname,
                last_contact_at: i.last_contact_at.to_rfc3339(),
                usage: i.usage,
            });
        }
    }
    Ok(Json(SatelliteInstances {
        satellite: sat.name,
        last_sync_at: sat.last_sync_at.map(Timestamp::to_rfc3339),
        instances: views,
    }))
}

/// A satellite's instances as of its last synchronisation.
#[derive(Serialize, utoipa::ToSchema)]
struct SatelliteInstances {
    satellite: String,
    last_sync_at: Option<String>,
    instances: Vec<MirroredView>,
}

/// A satellite's instance removed by the cloud.
#[derive(Serialize, utoipa::ToSchema)]
struct RemovedSatelliteInstance {
    satellite: i64,
    virtual_account: String,
    pid: String,
    sn: String,
    status: &'static str,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RemoveBody {
    virtual_account: String,
    pid: String,
    sn: String,
}

/// The cloud's operator removes a satellite's instance: its usage leaves the pool now, and the
/// satellite removes it when it applies the next response.
#[utoipa::path(
    post,
    path = "/api/v1/satellites/{id}/instances/remove",
    operation_id = "remove_satellite_instance",
    tag = "smartlic",
    summary = "Cloud: remove a satellite's instance (operator); the satellite removes it at its next sync",
    params(crate::openapi::SatellitePath),
    request_body = RemoveBody,
    responses(
        (status = 200, description = "removed", body = RemovedSatelliteInstance),
        (status = 403, description = "FORBIDDEN: only the operator"),
        (status = 404, description = "NOT_FOUND: no such satellite or instance"),
        (status = 409, description = "CONFLICT: the instance is removed already"),
    )
)]
async fn remove_instance(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Body(b): Body<RemoveBody>,
) -> ApiResult<Json<RemovedSatelliteInstance>> {
    caller.require_operator("remove satellite instances")?;
    super::load_satellite(&state, id).await?;
    let udi = RemovedUdi { pool: b.virtual_account, pid: b.pid, sn: b.sn };
    state.store.remove_satellite_instance(id, udi.clone(), caller.login(), state.clock.now()).await?;
    Ok(Json(RemovedSatelliteInstance {
        satellite: id,
        virtual_account: udi.pool,
        pid: udi.pid,
        sn: udi.sn,
        status: "removed; the satellite removes it with its next synchronisation",
    }))
}

// ---- the satellite -----------------------------------------------------------------------

/// The local account a command names, or the only approved one.
async fn pick_local(state: &AppState, name: Option<&str>) -> ApiResult<LocalAccount> {
    if let Some(name) = name {
        return load_local(state, name).await;
    }
    let mut approved: Vec<_> =
        state.store.local_accounts().await?.into_iter().filter(|a| a.approved_at.is_some()).collect();
    match approved.len() {
        1 => Ok(approved.remove(0)),
        0 => Err(ApiError::conflict("no local account is approved by the cloud yet: nothing to synchronise")),
        n => Err(ApiError::invalid("local_account", format!("{n} local accounts are approved: name one"))),
    }
}

/// Makes the next request of the local account, signed with this satellite's key: the YAML
/// file, in a temporary file. The instances go from a read snapshot (devices keep registering)
/// to the file a part at a time, through a channel of a few parts: a full request of a million
/// instances is never in memory.
async fn make_request(state: &AppState, name: Option<&str>, full: bool) -> ApiResult<(LocalAccount, NamedTempFile)> {
    let local = pick_local(state, name).await?;
    let now = state.clock.now();
    let draft = state.store.begin_sync(&local.name, full, now).await?;
    let head = RequestHead {
        satellite_id: draft
            .local
            .cloud_satellite_id
            .ok_or_else(|| ApiError::internal("approved local account without cloud id"))?,
        local_account: draft.local.name.clone(),
        smart_account: draft.local.domain.clone(),
        sequence: draft.sequence,
        acknowledges: draft.acknowledges,
        full,
        interval_days: draft.local.sync_interval_days,
        created_at: now.0,
        signed_by: SignedBy::of(state.ca.signer()),
    };
    let (parts, each) = std::sync::mpsc::sync_channel::<PoolInstances>(2);
    let signer = state.clone();
    let writer = tokio::task::spawn_blocking(move || -> Result<NamedTempFile, String> {
        let file = NamedTempFile::new().map_err(|e| e.to_string())?;
        let mut out = RequestWriter::begin(std::io::BufWriter::new(file), &head).map_err(|e| e.to_string())?;
        for p in each {
            out.part(&reported(p)).map_err(|e| e.to_string())?;
        }
        let out = out.finish(signer.ca.signer()).map_err(|e| e.to_string())?;
        out.into_inner().map_err(|e| e.to_string())
    });
    let read = state.store.sync_instances(&draft.local.name, full, parts).await;
    let written = writer.await.map_err(ApiError::internal)?;
    let file = written.map_err(|e| ApiError::internal(format!("cannot write the synchronisation request: {e}")))?;
    read?;
    Ok((draft.local, file))
}

/// A part of the satellite's instances as its request reports it.
fn reported(p: PoolInstances) -> RequestPart {
    RequestPart {
        pool: p.pool,
        instances: p
            .instances
            .into_iter()
            .map(|i| ReportedInstance {
                pid: i.pid,
                sn: i.sn,
                hostname: i.hostname,
                last_contact_at: i.last_contact_at.0,
                usage: i.usage,
            })
            .collect(),
        removed: p.removed.into_iter().map(|(pid, sn)| RemovedInstance { pid, sn }).collect(),
    }
}

/// Checks and applies the cloud's response: signed by the cloud CA that approved the local
/// account it names, for this satellite, answering a request it made and newer than the last.
async fn apply_response(state: &AppState, actor: &str, text: &str) -> ApiResult<LocalAccount> {
    let field = "response";
    let file = SyncFile::parse(text).map_err(|e| refused(field, e))?;
    let (id, name) = file.claim().map_err(|e| refused(field, e))?;
    let local = state.store.local_account(&name).await?.filter(|a| a.approved_at.is_some()).ok_or_else(|| {
        foreign(field, format!("the response is for local account '{name}', which this satellite has not had approved"))
    })?;
    let cloud_ca = local.cloud_ca.as_deref().ok_or_else(|| ApiError::internal("approved local account without CA"))?;
    let key = cert::public_key_of_certificate(cloud_ca).map_err(ApiError::internal)?;
    let response = file.open_response(&key).map_err(|e| refused(field, e))?;
    if local.cloud_satellite_id != Some(id) || response.smart_account != local.domain {
        return Err(foreign(
            field,
            format!(
                "the response is for satellite {id} of {} in the cloud, not this satellite's local account '{name}'",
                response.smart_account
            ),
        ));
    }
    let mut pools = Vec::new();
    for p in response.pools {
        let licenses = p.licenses.into_iter().map(mirrored_license).collect::<ApiResult<Vec<_>>>()?;
        pools.push(MirroredPool { name: p.name, description: p.description, licenses });
    }
    let removed = response.removed.into_iter().map(|r| RemovedUdi { pool: r.pool, pid: r.pid, sn: r.sn }).collect();
    let applied =
        AppliedSync { local_account: name, sequence: response.sequence, pools, removed, released: response.released };
    Ok(state.store.apply_sync_response(applied, actor, state.clock.now()).await?)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ExportBody {
    local_account: Option<String>,
    #[serde(default)]
    full: bool,
}

/// The export's answer. `request` comes last: the answer is sent as this view with an empty
/// request, cut before its closing quote, then the file escaped as it is read.
#[derive(Serialize, utoipa::ToSchema)]
struct ExportView {
    local_account: String,
    sequence: i64,
    request: String,
}

/// Manual synchronisation, step 1: the request file to carry to the cloud.
#[utoipa::path(
    post,
    path = "/api/v1/sync/export",
    operation_id = "sync_export",
    tag = "smartlic",
    summary = "Satellite: the next signed request to carry to the cloud",
    request_body = ExportBody,
    responses(
        (status = 200, description = "the request file", body = ExportView),
        (status = 403, description = "FORBIDDEN: only the operator"),
        (status = 404, description = "NOT_FOUND: no such local account"),
        (status = 409, description = "CONFLICT: this manager is not a satellite (start it with --mode satellite), or the local account is not approved"),
    )
)]
async fn export(State(state): State<AppState>, caller: Caller, Body(b): Body<ExportBody>) -> ApiResult<Response> {
    require_satellite(&state, &caller, "export synchronisation requests")?;
    let (local, file) = make_request(&state, b.local_account.as_deref(), b.full).await?;
    let view = ExportView { local_account: local.name, sequence: local.sync_sequence, request: String::new() };
    let whole = serde_json::to_string(&view).map_err(ApiError::internal)?;
    let prefix = whole.strip_suffix("\"}").ok_or_else(|| ApiError::internal("the export view ends otherwise"))?;
    let body = spool::send_file(file, prefix.to_string(), true, "\"}");
    Ok(([(CONTENT_TYPE, "application/json")], axum::body::Body::new(body)).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ImportBody {
    response: String,
}

/// Manual synchronisation, step 3: the cloud's response file, applied.
#[utoipa::path(
    post,
    path = "/api/v1/sync/import",
    operation_id = "sync_import",
    tag = "smartlic",
    summary = "Satellite: apply the cloud's response file in one transaction",
    request_body = ImportBody,
    responses(
        (status = 200, description = "the synchronisation status", body = SyncStatus),
        (status = 403, description = "FORBIDDEN: only the operator"),
        (status = 409, description = "CONFLICT: this manager is not a satellite (start it with --mode satellite), or the response was applied already"),
    )
)]
async fn import(
    State(state): State<AppState>,
    caller: Caller,
    Body(b): Body<ImportBody>,
) -> ApiResult<Json<SyncStatus>> {
    require_satellite(&state, &caller, "import synchronisation responses")?;
    let local = apply_response(&state, caller.login(), &b.response).await?;
    Ok(Json(sync_status(&state, &local)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NowBody {
    local_account: Option<String>,
    #[serde(default)]
    full: bool,
    /// The cloud's base URL, for a local account registered by files (else the one it was
    /// registered with).
    cloud: Option<String>,
}

/// Network synchronisation: sends the request to the cloud and applies its response.
#[utoipa::path(
    post,
    path = "/api/v1/sync/now",
    operation_id = "sync_now",
    tag = "smartlic",
    summary = "Satellite: synchronise with the cloud over HTTPS now",
    request_body = NowBody,
    responses(
        (status = 200, description = "the synchronisation status", body = SyncStatus),
        (status = 400, description = "INVALID: a local account registered by files names no cloud URL (--cloud)"),
        (status = 403, description = "FORBIDDEN: only the operator"),
        (status = 409, description = "CONFLICT: this manager is not a satellite, or no local account is approved"),
        (status = 502, description = "CLOUD_UNREACHABLE or CLOUD_REFUSED: recorded on the local account; the schedule retries"),
    )
)]
async fn sync_now(
    State(state): State<AppState>,
    caller: Caller,
    Body(b): Body<NowBody>,
) -> ApiResult<Json<SyncStatus>> {
    require_satellite(&state, &caller, "synchronise with the cloud")?;
    let local = pick_local(&state, b.local_account.as_deref()).await?;
    let local = network_sync_of(&state, local, b.full, b.cloud, caller.login()).await?;
    Ok(Json(sync_status(&state, &local)))
}

/// Network synchronisation of `local` with the cloud at `cloud` (else the one it knows, which
/// a first success remembers for the schedule). A failure is recorded on the local account
/// (event and status) before it is answered, so that it shows and the schedule retries it.
async fn network_sync_of(
    state: &AppState,
    local: LocalAccount,
    full: bool,
    cloud: Option<String>,
    actor: &str,
) -> ApiResult<LocalAccount> {
    let remember = local.cloud_url.is_none();
    let cloud = cloud.or_else(|| local.cloud_url.clone()).ok_or_else(|| {
        ApiError::invalid(
            "cloud",
            format!("local account '{}' was registered by files: name the cloud's URL (--cloud)", local.name),
        )
    })?;
    match send_and_apply(state, &local, full, &cloud, actor).await {
        Ok(done) if remember => {
            let settings = SyncSettings { cloud_url: Some(cloud), ..SyncSettings::default() };
            Ok(state.store.set_sync_settings(&done.name, settings, actor, state.clock.now()).await?)
        }
        Ok(done) => Ok(done),
        Err(e) => {
            state.store.record_sync_failure(&local.name, &e.message, actor, state.clock.now()).await?;
            Err(e)
        }
    }
}

async fn send_and_apply(
    state: &AppState,
    local: &LocalAccount,
    full: bool,
    cloud: &str,
    actor: &str,
) -> ApiResult<LocalAccount> {
    let cloud_ca = local.cloud_ca.clone().ok_or_else(|| ApiError::internal("approved local account without CA"))?;
    let http = smartlic_agent::tls::https_client(&cloud_ca).map_err(ApiError::internal)?;
    let (local, file) = make_request(state, Some(&local.name), full).await?;
    let url = format!("{}/api/v1/satellites/sync", cloud.trim_end_matches('/'));
    let unreachable = |e: reqwest::Error| {
        ApiError::new(StatusCode::BAD_GATEWAY, "CLOUD_UNREACHABLE", format!("cannot reach the cloud at {url}: {e}"))
    };
    let auth = SyncAuth {
        satellite_id: local
            .cloud_satellite_id
            .ok_or_else(|| ApiError::internal("approved local account without cloud id"))?,
        local_account: local.name.clone(),
        timestamp: state.clock.now().0,
        nonce: random_text(24),
        signed_by: SignedBy::of(state.ca.signer()),
    };
    let header = auth.to_header(state.ca.signer()).map_err(ApiError::internal)?;
    // The file itself, sent as it is read.
    let body = reqwest::Body::wrap(spool::send_file(file, String::new(), false, ""));
    let sent = http
        .post(&url)
        .timeout(CLOUD_SYNC_TIMEOUT)
        .header(SYNC_AUTH_HEADER, header)
        .header(reqwest::header::CONTENT_TYPE, "application/yaml")
        .body(body);
    let answer = sent.send().await.map_err(unreachable)?;
    let code = answer.status();
    let text = answer.text().await.map_err(unreachable)?;
    if !code.is_success() {
        let why = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or(text);
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "CLOUD_REFUSED",
            format!(
                "the cloud refused synchronisation request {} of '{}' ({code}): {why}",
                local.sync_sequence, local.name
            ),
        ));
    }
    let body: ResponseBody = serde_json::from_str(&text).map_err(|e| {
        ApiError::new(StatusCode::BAD_GATEWAY, "CLOUD_REFUSED", format!("the cloud's answer is not a response: {e}"))
    })?;
    apply_response(state, actor, &body.response).await
}

/// Runs the network synchronisation of every local account whose sync is due (the background
/// jobs call it on the manager's clock). One that fails is recorded by [`network_sync_of`] and
/// retried [`RETRY_MINUTES`] later; a local account with no cloud URL (registered by files and
/// never synchronised over the network) waits for its operator, and its alert says so.
pub(crate) async fn scheduled_syncs(state: &AppState, now: Timestamp) -> smartlic_store::Result<()> {
    if !state.satellite.enabled {
        return Ok(());
    }
    for local in state.store.local_accounts().await? {
        let due = sync_due(&local).is_some_and(|d| d <= now);
        let resting = local.last_attempt_at.is_some_and(|t| now.0 < t.0 + RETRY_MINUTES * 60_000);
        if !due || resting || local.cloud_url.is_none() {
            continue;
        }
        let name = local.name.clone();
        match network_sync_of(state, local, false, None, SCHEDULER).await {
            Ok(_) => tracing::info!(local_account = %name, "scheduled synchronisation done"),
            Err(e) => tracing::warn!(local_account = %name, "scheduled synchronisation failed: {}", e.message),
        }
    }
    Ok(())
}

/// A local account's synchronisation state, as the satellite's Synchronization page shows it.
#[derive(Serialize, utoipa::ToSchema)]
struct SyncStatus {
    #[serde(flatten)]
    account: LocalAccountView,
    last_synchronization: Option<String>,
    synchronization_due: Option<String>,
    overdue: bool,
    requests_made: i64,
    responses_applied: i64,
    /// The scheduled synchronisation runs this many days after the last.
    interval_days: i64,
    /// The last attempt that failed since the last success, and why (the schedule retries).
    last_failed_attempt: Option<String>,
    last_error: Option<String>,
}

/// When the local account's next scheduled synchronisation is due: its interval after the last
/// (or the approval).
fn sync_due(a: &LocalAccount) -> Option<Timestamp> {
    a.last_sync_at.or(a.approved_at).map(|t| t.plus_days(a.sync_interval_days))
}

fn sync_status(state: &AppState, a: &LocalAccount) -> SyncStatus {
    let due = sync_due(a);
    SyncStatus {
        account: local_view(state, a),
        last_synchronization: a.last_sync_at.map(Timestamp::to_rfc3339),
        synchronization_due: due.map(Timestamp::to_rfc3339),
        overdue: due.is_some_and(|d| state.clock.now() > d),
        requests_made: a.sync_sequence,
        responses_applied: a.acknowledged_sequence,
        interval_days: a.sync_interval_days,
        last_failed_attempt: a.last_attempt_at.map(Timestamp::to_rfc3339),
        last_error: a.last_sync_error.clone(),
    }
}

/// C-14: a local account past its Synchronization Due raises an alert (the job recomputes them).
pub(crate) async fn overdue_alerts(state: &AppState, now: Timestamp) -> smartlic_store::Result<Vec<NewAlert>> {
    let mut alerts = Vec::new();
    if !state.satellite.enabled {
        return Ok(alerts);
    }
    for a in state.store.local_accounts().await? {
        let Some(due) = sync_due(&a).filter(|d| *d < now) else { continue };
        let Some(account) = state.store.account(&a.domain).await? else { continue };
        let mut last = a.last_sync_at.map_or("never".to_string(), |t| t.to_rfc3339());
        if let Some(error) = &a.last_sync_error {
            last.push_str(&format!("; the last attempt failed: {error}"));
        }
        alerts.push(NewAlert {
            kind: AlertKind::SynchronizationOverdue,
            severity: AlertSeverity::Major,
            account_id: account.id,
            virtual_account_id: None,
            object: format!("local-account/{}", a.name),
            message: format!(
                "Synchronization Due {} has passed for local account '{}' (last synchronised: {last}): run `smartlic admin sync now` or a manual synchronisation",
                due.to_rfc3339(),
                a.name
            ),
        });
    }
    Ok(alerts)
}

#[utoipa::path(
    get,
    path = "/api/v1/sync/status",
    operation_id = "sync_status",
    tag = "smartlic",
    summary = "Satellite: each local account's last synchronisation, Synchronization Due (its interval on), whether overdue, and the last failed attempt",
    responses(
        (status = 200, description = "the status of each local account", body = SyncStatusList),
        (status = 403, description = "FORBIDDEN: only the operator"),
        (status = 409, description = "CONFLICT: this manager is not a satellite (start it with --mode satellite)"),
    )
)]
async fn status(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<SyncStatusList>> {
    require_satellite(&state, &caller, "show the synchronisation status")?;
    let local_accounts = state.store.local_accounts().await?.iter().map(|a| sync_status(&state, a)).collect();
    Ok(Json(SyncStatusList { local_accounts }))
}

/// The synchronisation status of every local account.
#[derive(Serialize, utoipa::ToSchema)]
struct SyncStatusList {
    local_accounts: Vec<SyncStatus>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ScheduleBody {
    local_account: Option<String>,
    /// Days between scheduled synchronisations (1 to 365; 30 by default).
    interval_days: Option<i64>,
    /// The cloud's base URL the scheduled synchronisation uses (a local account registered by
    /// files has none until a network synchronisation names it).
    cloud: Option<String>,
}

/// The scheduled synchronisation's settings of a local account.
#[utoipa::path(
    post,
    path = "/api/v1/sync/schedule",
    operation_id = "sync_schedule",
    tag = "smartlic",
    summary = "Satellite: set the scheduled synchronisation's interval (days) and cloud URL",
    request_body = ScheduleBody,
    responses(
        (status = 200, description = "the synchronisation status", body = SyncStatus),
        (status = 400, description = "INVALID: an interval out of 1..365, or a cloud URL that is not https"),
        (status = 403, description = "FORBIDDEN: only the operator"),
        (status = 409, description = "CONFLICT: this manager is not a satellite, or no local account is approved"),
    )
)]
async fn schedule(
    State(state): State<AppState>,
    caller: Caller,
    Body(b): Body<ScheduleBody>,
) -> ApiResult<Json<SyncStatus>> {
    require_satellite(&state, &caller, "schedule synchronisations")?;
    if let Some(days) = b.interval_days.filter(|d| !(1..=MAX_INTERVAL_DAYS).contains(d)) {
        return Err(ApiError::invalid(
            "interval_days",
            format!("must be between 1 and {MAX_INTERVAL_DAYS} days, got {days}"),
        ));
    }
    if let Some(url) = b.cloud.as_deref().filter(|u| !u.starts_with("https://")) {
        return Err(ApiError::invalid("cloud", format!("'{url}' is not an https:// URL of the cloud")));
    }
    let local = pick_local(&state, b.local_account.as_deref()).await?;
    let settings = SyncSettings { interval_days: b.interval_days, cloud_url: b.cloud };
    let local = state.store.set_sync_settings(&local.name, settings, caller.login(), state.clock.now()).await?;
    Ok(Json(sync_status(&state, &local)))
}
