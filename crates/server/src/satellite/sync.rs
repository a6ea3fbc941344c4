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
//! (altered, cut short, stale, replayed, another satellite's) and changes nothing.

use super::{granted_pool, LocalAccountView};
use super::{load_local, local_view, mirrored_license, refuse_on_satellite, require_satellite};
use crate::auth::Caller;
use crate::body::{Body, Path};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::{engine::general_purpose::STANDARD as B64, Engine};
use serde::{Deserialize, Serialize};
use smartlic_core::Timestamp;
use smartlic_proto::cert;
use smartlic_proto::keys::{KeyAlgorithm, PublicKey};
use smartlic_proto::sync::{
    PoolReport, RemovedFromPool, RemovedInstance, ReportedInstance, SyncError, SyncFile, SyncRequest, SyncResponse,
    KIND_SYNC_REQUEST, KIND_SYNC_RESPONSE,
};
use smartlic_store::satellite::{
    AppliedSync, LocalAccount, MirroredInstance, MirroredPool, PoolInstances, RemovedUdi, SatelliteSync,
};
use smartlic_store::NewAlert;

/// A scheduled synchronisation is due this long after the last one (seed 001: 30 days).
const SYNC_INTERVAL_DAYS: i64 = 30;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/satellites/sync", post(network_sync))
        .route("/api/v1/satellites/file-sync", post(file_sync))
        .route("/api/v1/satellites/{id}/instances", get(satellite_instances))
        .route("/api/v1/satellites/{id}/instances/remove", post(remove_instance))
        .route("/api/v1/sync/now", post(sync_now))
        .route("/api/v1/sync/export", post(export))
        .route("/api/v1/sync/import", post(import))
        .route("/api/v1/sync/status", get(status))
}

fn refused(field: &str, e: SyncError) -> ApiError {
    ApiError::invalid(field, e.to_string())
}

fn foreign(field: &str, why: String) -> ApiError {
    ApiError::invalid(field, format!("{why} (a foreign file); nothing changed"))
}

// ---- the cloud ---------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestBody {
    /// The satellite's signed request, as the YAML file it wrote.
    request: String,
}

#[derive(Serialize, Deserialize)]
struct ResponseBody {
    /// The cloud's signed response, as the YAML file to carry back.
    response: String,
}

fn mirrored(pools: Vec<PoolReport>) -> Vec<PoolInstances> {
    let instance = |i: ReportedInstance| MirroredInstance {
        pid: i.pid,
        sn: i.sn,
        hostname: i.hostname,
        last_contact_at: Timestamp(i.last_contact_at),
        usage: i.usage,
    };
    pools
        .into_iter()
        .map(|p| PoolInstances {
            pool: p.name,
            instances: p.instances.into_iter().map(instance).collect(),
            removed: p.removed.into_iter().map(|r| (r.pid, r.sn)).collect(),
        })
        .collect()
}

/// Checks, applies and answers a satellite's request: signed by the key the cloud certified
/// for the satellite it names, for that satellite's local account, newer than the last applied.
async fn answer(state: &AppState, text: &str) -> ApiResult<String> {
    let field = "request";
    refuse_on_satellite(state, "answering synchronisations")?;
    let file = SyncFile::parse(text).map_err(|e| refused(field, e))?;
    let (id, local_account) = file.claim().map_err(|e| refused(field, e))?;
    let sat = state.store.satellite(id).await?.filter(|s| s.approved_at.is_some()).ok_or_else(|| {
        foreign(field, format!("the request names satellite {id}, which this cloud has not approved"))
    })?;
    let key = PublicKey {
        algorithm: KeyAlgorithm::parse(&sat.key_algorithm)
            .ok_or_else(|| ApiError::internal("satellite key of an unknown algorithm"))?,
        raw: B64.decode(&sat.public_key).map_err(ApiError::internal)?,
    };
    let request = file.open_request(&key).map_err(|e| refused(field, e))?;
    if local_account != sat.local_account {
        return Err(foreign(
            field,
            format!(
                "the request is for local account '{local_account}'; satellite {id} registered '{}'",
                sat.local_account
            ),
        ));
    }
    let negative = request.pools.iter().flat_map(|p| &p.instances).find(|i| i.usage.values().any(|n| *n < 0));
    if let Some(i) = negative {
        return Err(ApiError::invalid(field, format!("PID:{},SN:{} reports a negative usage count", i.pid, i.sn)));
    }
    let sync = SatelliteSync {
        satellite_id: id,
        sequence: request.sequence,
        full: request.full,
        pools: mirrored(request.pools),
    };
    let (synced, removed) = state.store.apply_satellite_sync(sync, state.clock.now()).await?;
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
        sequence: request.sequence,
        created_at: state.clock.now().0,
        pools,
        removed: removed.into_iter().map(|r| RemovedFromPool { pool: r.pool, pid: r.pid, sn: r.sn }).collect(),
    };
    let sealed = SyncFile::seal(KIND_SYNC_RESPONSE, &response, state.ca.signer()).map_err(ApiError::internal)?;
    Ok(sealed.to_yaml())
}

/// Network synchronisation: the request's signature authenticates the satellite.
async fn network_sync(State(state): State<AppState>, Body(b): Body<RequestBody>) -> ApiResult<Json<ResponseBody>> {
    Ok(Json(ResponseBody { response: answer(&state, &b.request).await? }))
}

/// The cloud operator's File Sync: a request file carried from the satellite, answered.
async fn file_sync(
    State(state): State<AppState>,
    caller: Caller,
    Body(b): Body<RequestBody>,
) -> ApiResult<Json<ResponseBody>> {
    caller.require_operator("answer satellite synchronisations")?;
    Ok(Json(ResponseBody { response: answer(&state, &b.request).await? }))
}

#[derive(Serialize)]
struct MirroredView {
    virtual_account: String,
    pid: String,
    sn: String,
    hostname: String,
    last_contact_at: String,
    usage: std::collections::BTreeMap<String, i64>,
}

/// The satellite's instances and usage as of its last synchronisation.
async fn satellite_instances(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> ApiResult<Json<serde_json::Value>> {
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
    Ok(Json(serde_json::json!({
        "satellite": sat.name,
        "last_sync_at": sat.last_sync_at.map(Timestamp::to_rfc3339),
        "instances": views,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoveBody {
    virtual_account: String,
    pid: String,
    sn: String,
}

/// The cloud's operator removes a satellite's instance: its usage leaves the pool now, and the
/// satellite removes it when it applies the next response.
async fn remove_instance(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Body(b): Body<RemoveBody>,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require_operator("remove satellite instances")?;
    super::load_satellite(&state, id).await?;
    let udi = RemovedUdi { pool: b.virtual_account, pid: b.pid, sn: b.sn };
    state.store.remove_satellite_instance(id, udi.clone(), caller.login(), state.clock.now()).await?;
    Ok(Json(serde_json::json!({
        "satellite": id,
        "virtual_account": udi.pool,
        "pid": udi.pid,
        "sn": udi.sn,
        "status": "removed; the satellite removes it with its next synchronisation",
    })))
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

/// Makes the next request of the local account, signed with this satellite's key (YAML).
async fn make_request(state: &AppState, name: Option<&str>, full: bool) -> ApiResult<(LocalAccount, String)> {
    let local = pick_local(state, name).await?;
    let now = state.clock.now();
    let draft = state.store.begin_sync(&local.name, full, now).await?;
    let satellite_id =
        draft.local.cloud_satellite_id.ok_or_else(|| ApiError::internal("approved local account without cloud id"))?;
    let pools = draft.pools.into_iter().map(|p| PoolReport {
        name: p.pool,
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
    });
    let request = SyncRequest {
        satellite_id,
        local_account: draft.local.name.clone(),
        smart_account: draft.local.domain.clone(),
        sequence: draft.sequence,
        acknowledges: draft.acknowledges,
        full,
        created_at: now.0,
        pools: pools.collect(),
    };
    let sealed = SyncFile::seal(KIND_SYNC_REQUEST, &request, state.ca.signer()).map_err(ApiError::internal)?;
    Ok((draft.local, sealed.to_yaml()))
}

/// Checks and applies the cloud's response: signed by the cloud CA that approved the local
/// account it names, for this satellite, answering a request it made and newer than the last.
async fn apply_response(state: &AppState, caller: &Caller, text: &str) -> ApiResult<LocalAccount> {
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
    let applied = AppliedSync { local_account: name, sequence: response.sequence, pools, removed };
    Ok(state.store.apply_sync_response(applied, caller.login(), state.clock.now()).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportBody {
    local_account: Option<String>,
    #[serde(default)]
    full: bool,
}

#[derive(Serialize)]
struct ExportView {
    local_account: String,
    sequence: i64,
    request: String,
}

/// Manual synchronisation, step 1: the request file to carry to the cloud.
async fn export(
    State(state): State<AppState>,
    caller: Caller,
    Body(b): Body<ExportBody>,
) -> ApiResult<Json<ExportView>> {
    require_satellite(&state, &caller, "export synchronisation requests")?;
    let (local, request) = make_request(&state, b.local_account.as_deref(), b.full).await?;
    Ok(Json(ExportView { local_account: local.name, sequence: local.sync_sequence, request }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportBody {
    response: String,
}

/// Manual synchronisation, step 3: the cloud's response file, applied.
async fn import(
    State(state): State<AppState>,
    caller: Caller,
    Body(b): Body<ImportBody>,
) -> ApiResult<Json<SyncStatus>> {
    require_satellite(&state, &caller, "import synchronisation responses")?;
    let local = apply_response(&state, &caller, &b.response).await?;
    Ok(Json(sync_status(&state, &local)))
}

#[derive(Deserialize)]
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
async fn sync_now(
    State(state): State<AppState>,
    caller: Caller,
    Body(b): Body<NowBody>,
) -> ApiResult<Json<SyncStatus>> {
    require_satellite(&state, &caller, "synchronise with the cloud")?;
    let local = pick_local(&state, b.local_account.as_deref()).await?;
    let cloud = b.cloud.or_else(|| local.cloud_url.clone()).ok_or_else(|| {
        ApiError::invalid(
            "cloud",
            format!("local account '{}' was registered by files: name the cloud's URL (--cloud)", local.name),
        )
    })?;
    let cloud_ca = local.cloud_ca.clone().ok_or_else(|| ApiError::internal("approved local account without CA"))?;
    let http = smartlic_agent::tls::https_client(&cloud_ca).map_err(ApiError::internal)?;
    let (local, request) = make_request(&state, Some(&local.name), b.full).await?;
    let url = format!("{}/api/v1/satellites/sync", cloud.trim_end_matches('/'));
    let unreachable = |e: reqwest::Error| {
        ApiError::new(StatusCode::BAD_GATEWAY, "CLOUD_UNREACHABLE", format!("cannot reach the cloud at {url}: {e}"))
    };
    let answer = http.post(&url).json(&serde_json::json!({ "request": request })).send().await.map_err(unreachable)?;
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
    let local = apply_response(&state, &caller, &body.response).await?;
    Ok(Json(sync_status(&state, &local)))
}

/// A local account's synchronisation state, as the satellite's Synchronization page shows it.
#[derive(Serialize)]
struct SyncStatus {
    #[serde(flatten)]
    account: LocalAccountView,
    last_synchronization: Option<String>,
    synchronization_due: Option<String>,
    overdue: bool,
    requests_made: i64,
    responses_applied: i64,
}

/// When the next scheduled synchronisation is due: 30 days after the last (or the approval).
pub(super) fn due_after(last: Option<Timestamp>) -> Option<Timestamp> {
    last.map(|t| t.plus_days(SYNC_INTERVAL_DAYS))
}

fn sync_due(a: &LocalAccount) -> Option<Timestamp> {
    due_after(a.last_sync_at.or(a.approved_at))
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
        let last = a.last_sync_at.map_or("never".to_string(), |t| t.to_rfc3339());
        alerts.push(NewAlert {
            kind: "synchronization-overdue".into(),
            severity: "major".into(),
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

async fn status(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<serde_json::Value>> {
    require_satellite(&state, &caller, "show the synchronisation status")?;
    let accounts: Vec<_> = state.store.local_accounts().await?.iter().map(|a| sync_status(&state, a)).collect();
    Ok(Json(serde_json::json!({ "local_accounts": accounts })))
}
