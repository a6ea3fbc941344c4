//! The orchestrator's REST API under `/api/v1/fleet` (F-1..F-4). Every call carries the
//! administrator's bearer token (the file `admin-token` of the data directory), compared in
//! constant time. Inputs are checked before anything is stored; operations that reach a manager
//! or nodes answer 202 with the job they queued. Errors have the manager's shape
//! (`{"error": {"code", "message", "field"?}}`), secrets never appear.

use crate::db::DbError;
use crate::db::{NewAccount, NewNode};
use crate::jobs::{kind, Fleet};
use crate::model::{self, AccountKind, Application, Transport};
use crate::ops::cluster_status;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use ring::digest::{digest, SHA256};
use serde::Deserialize;
use serde_json::{json, Value};
use smartlic_server::error::ApiError;
use std::sync::Arc;
use subtle::ConstantTimeEq;

pub const BASE: &str = "/api/v1/fleet";

#[derive(Clone)]
pub struct ApiState {
    pub fleet: Arc<Fleet>,
    /// SHA-256 of the administrator's token.
    pub admin_token_sha256: [u8; 32],
}

pub(crate) type Answer = Result<Response, ApiError>;

/// The answer for a database refusal: a bad value, not found, a conflict, or an internal error
/// (logged, not shown).
pub(crate) fn db<T>(r: Result<T, DbError>) -> Result<T, ApiError> {
    r.map_err(|e| match e {
        DbError::Invalid(i) => ApiError::invalid(i.field, i.why),
        DbError::NotFound(m) => ApiError::not_found(m),
        DbError::Conflict(m) => ApiError::conflict(m),
        other => ApiError::internal(other),
    })
}

fn checked<T>(r: Result<T, model::Invalid>) -> Result<T, ApiError> {
    r.map_err(|i| ApiError::invalid(i.field, i.why))
}

pub(crate) fn body<T>(b: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    b.map(|Json(v)| v).map_err(ApiError::from)
}

pub(crate) fn ok(value: impl serde::Serialize) -> Answer {
    Ok(Json(value).into_response())
}

fn created(value: impl serde::Serialize) -> Answer {
    Ok((StatusCode::CREATED, Json(value)).into_response())
}

fn queued(job: crate::model::Job) -> Answer {
    Ok((StatusCode::ACCEPTED, Json(job)).into_response())
}

pub fn router(state: ApiState) -> Router {
    let api = Router::new()
        .route("/accounts", get(accounts).post(add_account))
        .route("/accounts/{name}", get(account))
        .route("/accounts/{name}/sync", post(sync))
        .route("/accounts/{name}/credentials", put(set_credentials))
        .route("/accounts/{name}/operational-va", put(set_operational_va))
        .route("/accounts/{name}/virtual-accounts", get(virtual_accounts))
        .route("/accounts/{name}/virtual-accounts/{va}/license-mode", put(set_license_mode))
        .route("/accounts/{name}/licenses", get(licenses))
        .route("/customers", get(customers).post(add_customer))
        .route("/clusters", get(clusters).post(add_cluster))
        .route("/clusters/{name}", get(cluster))
        .route("/clusters/{name}/nodes", post(add_node))
        .route("/clusters/{name}/assign", post(assign))
        .route("/clusters/{name}/unassign", post(unassign))
        .route("/jobs", get(jobs))
        .route("/jobs/{id}", get(job))
        .merge(crate::api_reports::routes());
    Router::new()
        .nest(BASE, api)
        .route("/health", get(|| async { "ok" }))
        .route(&format!("{BASE}/openapi.json"), get(crate::openapi::serve))
        .fallback(|uri: axum::http::Uri| async move {
            ApiError::not_found(format!("{} is not an endpoint of the fleet orchestrator (see {BASE}/...)", uri.path()))
        })
        .layer(axum::middleware::from_fn_with_state(state.clone(), authenticate))
        .with_state(state)
}

/// Admits calls bearing the administrator's token (compared as SHA-256 digests in constant time);
/// `/health` and the OpenAPI document are open.
async fn authenticate(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    if matches!(request.uri().path(), "/health" | "/api/v1/fleet/openapi.json") {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        .map(str::trim);
    let admitted =
        presented.is_some_and(|t| bool::from(digest(&SHA256, t.as_bytes()).as_ref().ct_eq(&state.admin_token_sha256)));
    if admitted {
        return next.run(request).await;
    }
    ApiError::unauthenticated(
        "send the administrator's token (the file admin-token of the orchestrator's data directory) as a bearer token",
    )
    .into_response()
}

// ---- accounts ----------------------------------------------------------------------------

#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct AddAccount {
    name: String,
    kind: String,
    base_url: String,
    ca_pem: String,
    client_id: String,
    client_secret: String,
    #[schema(value_type = Option<Object>)]
    transport: Option<Transport>,
    operational_va: Option<String>,
}

/// Stores the account and queues its first sync (the seed: adding an account syncs it).
#[utoipa::path(
    post,
    path = "/api/v1/fleet/accounts",
    tag = "fleet",
    summary = "Add a manager account by its API client credentials; its first sync is queued",
    request_body = AddAccount,
    responses(
        (status = 201, description = "the account (no secret) and the job of its first sync"),
        (status = 400, description = "INVALID_INPUT: a field is wrong (named)"),
        (status = 409, description = "CONFLICT: an account of that name exists"),
    )
)]
pub(crate) async fn add_account(State(s): State<ApiState>, b: Result<Json<AddAccount>, JsonRejection>) -> Answer {
    let b = body(b)?;
    let name = checked(model::name("name", &b.name))?;
    let kind = checked(AccountKind::parse(&b.kind))?;
    let base_url = checked(model::base_url("base_url", &b.base_url, true))?;
    if !b.ca_pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err(ApiError::invalid("ca_pem", "must be the manager's CA certificate in PEM"));
    }
    smartlic_agent::tls::https_client(&b.ca_pem).map_err(|e| ApiError::invalid("ca_pem", e.to_string()))?;
    let client_id = checked(model::name("client_id", &b.client_id))?;
    if b.client_secret.is_empty() {
        return Err(ApiError::invalid("client_secret", "is required"));
    }
    let transport = b.transport.map(Transport::checked).transpose().map_err(|i| ApiError::invalid(i.field, i.why))?;
    let operational_va = b.operational_va.as_deref().map(|v| model::name("operational_va", v)).transpose();
    let new = NewAccount {
        name,
        kind,
        base_url,
        ca_pem: b.ca_pem,
        client_id,
        client_secret: b.client_secret,
        transport,
        operational_va: checked(operational_va)?,
    };
    let account = db(s.fleet.db.insert_account(new, s.fleet.clock.now()))?;
    let job = db(s.fleet.enqueue(kind::ADD_ACCOUNT, &account.name, json!({"account": account.name})))?;
    created(json!({"account": account, "job": job}))
}

#[utoipa::path(
    get,
    path = "/api/v1/fleet/accounts",
    tag = "fleet",
    summary = "Manager accounts",
    responses(
        (status = 200, description = "the accounts, without secrets"),
    )
)]
pub(crate) async fn accounts(State(s): State<ApiState>) -> Answer {
    ok(json!({"accounts": db(s.fleet.db.accounts())?}))
}

#[utoipa::path(
    get,
    path = "/api/v1/fleet/accounts/{name}",
    tag = "fleet",
    summary = "One manager account",
    params(("name" = String, Path)),
    responses(
        (status = 200, description = "the account"),
        (status = 404, description = "NOT_FOUND"),
    )
)]
pub(crate) async fn account(State(s): State<ApiState>, Path(name): Path<String>) -> Answer {
    ok(db(s.fleet.db.account(&name))?)
}

#[utoipa::path(
    post,
    path = "/api/v1/fleet/accounts/{name}/sync",
    tag = "fleet",
    summary = "Queue a sync of the account's virtual accounts and licenses",
    params(("name" = String, Path)),
    responses(
        (status = 202, description = "the job"),
        (status = 404, description = "NOT_FOUND"),
    )
)]
pub(crate) async fn sync(State(s): State<ApiState>, Path(name): Path<String>) -> Answer {
    let account = db(s.fleet.db.account(&name))?;
    queued(db(s.fleet.enqueue(kind::SYNC, &account.name, json!({"account": account.name})))?)
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct Credentials {
    client_id: String,
    client_secret: String,
}

/// Replaces the account's client credentials and queues a sync with them.
#[utoipa::path(
    put,
    path = "/api/v1/fleet/accounts/{name}/credentials",
    tag = "fleet",
    summary = "Replace the account's client credentials and queue a sync",
    params(("name" = String, Path)),
    request_body = Credentials,
    responses(
        (status = 202, description = "the job"),
        (status = 400, description = "INVALID_INPUT"),
        (status = 404, description = "NOT_FOUND"),
    )
)]
pub(crate) async fn set_credentials(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    b: Result<Json<Credentials>, JsonRejection>,
) -> Answer {
    let b = body(b)?;
    let client_id = checked(model::name("client_id", &b.client_id))?;
    if b.client_secret.is_empty() {
        return Err(ApiError::invalid("client_secret", "is required"));
    }
    let account = db(s.fleet.db.account(&name))?;
    db(s.fleet.db.set_credentials(&account, &client_id, &b.client_secret))?;
    queued(db(s.fleet.enqueue(kind::SYNC, &account.name, json!({"account": account.name})))?)
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct OperationalVa {
    virtual_account: Option<String>,
}

/// Sets (or clears, with null) the virtual account new clusters are auto-registered to; it must
/// be one the last sync found.
#[utoipa::path(
    put,
    path = "/api/v1/fleet/accounts/{name}/operational-va",
    tag = "fleet",
    summary = "Set or clear the operational virtual account for auto-registration",
    params(("name" = String, Path)),
    request_body = OperationalVa,
    responses(
        (status = 200, description = "the account"),
        (status = 400, description = "INVALID_INPUT: not a synced virtual account"),
        (status = 404, description = "NOT_FOUND"),
    )
)]
pub(crate) async fn set_operational_va(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    b: Result<Json<OperationalVa>, JsonRejection>,
) -> Answer {
    let b = body(b)?;
    let account = db(s.fleet.db.account(&name))?;
    if let Some(va) = &b.virtual_account {
        if db(s.fleet.db.virtual_account(&account, va))?.is_none() {
            return Err(ApiError::invalid(
                "virtual_account",
                format!("{va} is not a virtual account of {name} (as of its last sync)"),
            ));
        }
    }
    db(s.fleet.db.set_operational_va(&account, b.virtual_account.as_deref()))?;
    ok(db(s.fleet.db.account(&name))?)
}

#[utoipa::path(
    get,
    path = "/api/v1/fleet/accounts/{name}/virtual-accounts",
    tag = "fleet",
    summary = "Virtual accounts as the last sync found them",
    params(("name" = String, Path)),
    responses(
        (status = 200, description = "the virtual accounts with their license mode"),
        (status = 404, description = "NOT_FOUND"),
    )
)]
pub(crate) async fn virtual_accounts(State(s): State<ApiState>, Path(name): Path<String>) -> Answer {
    let account = db(s.fleet.db.account(&name))?;
    ok(json!({"virtual_accounts": db(s.fleet.db.virtual_accounts(&account))?}))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct LicenseMode {
    license_mode: String,
}

#[utoipa::path(
    put,
    path = "/api/v1/fleet/accounts/{name}/virtual-accounts/{va}/license-mode",
    tag = "fleet",
    summary = "Set a virtual account's license mode",
    params(("name" = String, Path), ("va" = String, Path)),
    request_body = LicenseMode,
    responses(
        (status = 200, description = "the virtual account"),
        (status = 400, description = "INVALID_INPUT"),
        (status = 404, description = "NOT_FOUND"),
        (status = 409, description = "CONFLICT: clusters are assigned to it"),
    )
)]
pub(crate) async fn set_license_mode(
    State(s): State<ApiState>,
    Path((name, va)): Path<(String, String)>,
    b: Result<Json<LicenseMode>, JsonRejection>,
) -> Answer {
    let mode = checked(model::license_mode(&body(b)?.license_mode))?;
    let account = db(s.fleet.db.account(&name))?;
    db(s.fleet.db.set_license_mode(&account, &va, &mode))?;
    ok(db(s.fleet.db.virtual_account(&account, &va))?)
}

#[utoipa::path(
    get,
    path = "/api/v1/fleet/accounts/{name}/licenses",
    tag = "fleet",
    summary = "Licenses as the last sync found them",
    params(("name" = String, Path)),
    responses(
        (status = 200, description = "the license lines"),
        (status = 404, description = "NOT_FOUND"),
    )
)]
pub(crate) async fn licenses(State(s): State<ApiState>, Path(name): Path<String>) -> Answer {
    let account = db(s.fleet.db.account(&name))?;
    ok(json!({"licenses": db(s.fleet.db.licenses(&account))?}))
}

// ---- customers, clusters -----------------------------------------------------------------

#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct AddCustomer {
    name: String,
    account: String,
    #[schema(value_type = Option<Object>)]
    transport: Option<Transport>,
}

#[utoipa::path(
    post,
    path = "/api/v1/fleet/customers",
    tag = "fleet",
    summary = "Add a customer licensed through an account",
    request_body = AddCustomer,
    responses(
        (status = 201, description = "the customer"),
        (status = 400, description = "INVALID_INPUT"),
        (status = 409, description = "CONFLICT"),
    )
)]
pub(crate) async fn add_customer(State(s): State<ApiState>, b: Result<Json<AddCustomer>, JsonRejection>) -> Answer {
    let b = body(b)?;
    let name = checked(model::name("name", &b.name))?;
    let transport = b.transport.map(Transport::checked).transpose().map_err(|i| ApiError::invalid(i.field, i.why))?;
    let account = s
        .fleet
        .db
        .account(&b.account)
        .map_err(|_| ApiError::invalid("account", format!("no account named {}", b.account)))?;
    created(db(s.fleet.db.insert_customer(&name, &account, transport, s.fleet.clock.now()))?)
}

#[utoipa::path(
    get,
    path = "/api/v1/fleet/customers",
    tag = "fleet",
    summary = "Customers",
    responses(
        (status = 200, description = "the customers"),
    )
)]
pub(crate) async fn customers(State(s): State<ApiState>) -> Answer {
    ok(json!({"customers": db(s.fleet.db.customers())?}))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct AddNode {
    name: String,
    api_url: String,
    api_token: Option<String>,
}

fn new_node(n: AddNode) -> Result<NewNode, ApiError> {
    Ok(NewNode {
        name: checked(model::name("nodes.name", &n.name))?,
        api_url: checked(model::base_url("nodes.api_url", &n.api_url, false))?,
        api_token: n.api_token.filter(|t| !t.is_empty()),
    })
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct AddCluster {
    name: String,
    customer: String,
    application: String,
    #[schema(value_type = Option<Object>)]
    transport: Option<Transport>,
    #[serde(default)]
    nodes: Vec<AddNode>,
}

/// Adds a cluster with its nodes; when its customer's account has an operational virtual
/// account, queues its auto-registration (F-3).
#[utoipa::path(
    post,
    path = "/api/v1/fleet/clusters",
    tag = "fleet",
    summary = "Add a cluster with its nodes; queues its auto-registration when its account has an operational virtual account",
    request_body = AddCluster,
    responses(
        (status = 201, description = "the cluster and the auto-registration job if any"),
        (status = 400, description = "INVALID_INPUT"),
        (status = 409, description = "CONFLICT"),
    )
)]
pub(crate) async fn add_cluster(State(s): State<ApiState>, b: Result<Json<AddCluster>, JsonRejection>) -> Answer {
    let b = body(b)?;
    let name = checked(model::name("name", &b.name))?;
    let application = checked(Application::parse(&b.application))?;
    let transport = b.transport.map(Transport::checked).transpose().map_err(|i| ApiError::invalid(i.field, i.why))?;
    let nodes = b.nodes.into_iter().map(new_node).collect::<Result<Vec<_>, _>>()?;
    let customer = s
        .fleet
        .db
        .customer(&b.customer)
        .map_err(|_| ApiError::invalid("customer", format!("no customer named {}", b.customer)))?;
    let cluster = db(s.fleet.db.insert_cluster(&customer, &name, application, transport, &nodes, s.fleet.clock.now()))?;
    let account = db(s.fleet.db.account(&customer.account))?;
    let job = match (&account.operational_va, nodes.is_empty()) {
        (Some(_), false) => {
            Some(db(s.fleet.enqueue(kind::AUTO_REGISTER, &cluster.name, json!({"cluster": cluster.name})))?)
        }
        _ => None,
    };
    created(json!({"cluster": cluster_view(&s, &cluster.name)?, "job": job}))
}

/// A cluster with its nodes, status (the seed's words and description) and last job.
fn cluster_view(s: &ApiState, name: &str) -> Result<Value, ApiError> {
    let cluster = db(s.fleet.db.cluster(name))?;
    let nodes = db(s.fleet.db.nodes(&cluster))?;
    let status = cluster_status(&cluster, &nodes);
    let last_job = db(s.fleet.db.jobs(Some(&cluster.name)))?.into_iter().next();
    let mut view = serde_json::to_value(&cluster).map_err(ApiError::internal)?;
    view["type"] = json!(cluster.application.display());
    view["status"] = json!(status.as_str());
    view["status_description"] = json!(status.description());
    view["nodes"] = serde_json::to_value(&nodes).map_err(ApiError::internal)?;
    view["last_job"] = serde_json::to_value(last_job).map_err(ApiError::internal)?;
    Ok(view)
}

#[utoipa::path(
    get,
    path = "/api/v1/fleet/clusters",
    tag = "fleet",
    summary = "Clusters with their status (the seed's words) and nodes",
    responses(
        (status = 200, description = "the clusters"),
    )
)]
pub(crate) async fn clusters(State(s): State<ApiState>) -> Answer {
    let names: Vec<String> = db(s.fleet.db.clusters())?.into_iter().map(|c| c.name).collect();
    let views = names.iter().map(|n| cluster_view(&s, n)).collect::<Result<Vec<_>, _>>()?;
    ok(json!({"clusters": views}))
}

#[utoipa::path(
    get,
    path = "/api/v1/fleet/clusters/{name}",
    tag = "fleet",
    summary = "One cluster with its nodes, status and last job",
    params(("name" = String, Path)),
    responses(
        (status = 200, description = "the cluster"),
        (status = 404, description = "NOT_FOUND"),
    )
)]
pub(crate) async fn cluster(State(s): State<ApiState>, Path(name): Path<String>) -> Answer {
    ok(cluster_view(&s, &name)?)
}

#[utoipa::path(
    post,
    path = "/api/v1/fleet/clusters/{name}/nodes",
    tag = "fleet",
    summary = "Add a node (its product REST API) to a cluster",
    params(("name" = String, Path)),
    request_body = AddNode,
    responses(
        (status = 201, description = "the node"),
        (status = 400, description = "INVALID_INPUT"),
        (status = 404, description = "NOT_FOUND"),
        (status = 409, description = "CONFLICT"),
    )
)]
pub(crate) async fn add_node(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    b: Result<Json<AddNode>, JsonRejection>,
) -> Answer {
    let node = new_node(body(b)?)?;
    let cluster = db(s.fleet.db.cluster(&name))?;
    created(db(s.fleet.db.add_node(&cluster, &node))?)
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct Assign {
    account: String,
    virtual_account: String,
}

/// Queues the assignment; the virtual account is checked by the job against the last sync, and
/// its failure carries the seed's code.
#[utoipa::path(
    post,
    path = "/api/v1/fleet/clusters/{name}/assign",
    tag = "fleet",
    summary = "Queue the assignment of a cluster to a virtual account (every node registered)",
    params(("name" = String, Path)),
    request_body = Assign,
    responses(
        (status = 202, description = "the job"),
        (status = 400, description = "INVALID_INPUT"),
        (status = 404, description = "NOT_FOUND"),
    )
)]
pub(crate) async fn assign(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    b: Result<Json<Assign>, JsonRejection>,
) -> Answer {
    let b = body(b)?;
    let cluster = db(s.fleet.db.cluster(&name))?;
    let account = s
        .fleet
        .db
        .account(&b.account)
        .map_err(|_| ApiError::invalid("account", format!("no account named {}", b.account)))?;
    let va = checked(model::name("virtual_account", &b.virtual_account))?;
    let request = json!({"cluster": cluster.name, "account": account.name, "virtual_account": va});
    queued(db(s.fleet.enqueue(kind::ASSIGN, &cluster.name, request))?)
}

#[utoipa::path(
    post,
    path = "/api/v1/fleet/clusters/{name}/unassign",
    tag = "fleet",
    summary = "Queue the unassignment of a cluster (every node deregistered)",
    params(("name" = String, Path)),
    responses(
        (status = 202, description = "the job"),
        (status = 404, description = "NOT_FOUND"),
    )
)]
pub(crate) async fn unassign(State(s): State<ApiState>, Path(name): Path<String>) -> Answer {
    let cluster = db(s.fleet.db.cluster(&name))?;
    queued(db(s.fleet.enqueue(kind::UNASSIGN, &cluster.name, json!({"cluster": cluster.name})))?)
}

// ---- jobs --------------------------------------------------------------------------------

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct JobFilter {
    /// Only the jobs of this account or cluster.
    entity: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/fleet/jobs",
    tag = "fleet",
    summary = "Jobs, newest first (of one entity with ?entity=)",
    params(JobFilter),
    responses(
        (status = 200, description = "the jobs"),
    )
)]
pub(crate) async fn jobs(State(s): State<ApiState>, Query(f): Query<JobFilter>) -> Answer {
    ok(json!({"jobs": db(s.fleet.db.jobs(f.entity.as_deref()))?}))
}

#[utoipa::path(
    get,
    path = "/api/v1/fleet/jobs/{id}",
    tag = "fleet",
    summary = "One job with its per-node results",
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "the job: status, details, error code, message, recommended action, nodes"),
        (status = 404, description = "NOT_FOUND"),
    )
)]
pub(crate) async fn job(State(s): State<ApiState>, Path(id): Path<i64>) -> Answer {
    ok(db(s.fleet.db.job(id))?)
}
