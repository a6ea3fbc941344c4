//! The original manager's public REST API (C-17, public facts §1), served as a thin layer over
//! the same domain and store as `/api/v1`: existing scripts keep working when pointed at
//! smartlic. Field names, the `status`/`statusMessage` envelope and the token endpoints follow
//! §1.1–1.3. Covered: the token endpoints, accounts and account search, virtual accounts
//! (list, create, delete), licenses (with `reserved`), license subscriptions and transfer,
//! registration tokens (list, create, revoke), devices (list, transfer, remove with or without a
//! reservation return code) and `reserve-licenses` (R-1, through `crate::reservation`).
//! Requests naming several items (token revoke, license and device transfer, reservations,
//! device removal) run as one store transaction each: all happen or none, even when they race.
//!
//! The satellite's variant (§1.5) is the same v1 resources under `/backend/api/v1`, with the
//! account named by its local account's name rather than its domain, `POST
//! /upstream_satellites/accounts` listing those names, and a JSON token body at
//! `/backend/oauth/token`. The handlers take the account from one path parameter through one
//! lookup ([`account`]), so that variant is [`resources`] under another base with the other
//! lookup, not a copy. Its `/api/v1` base is smartlic's own too: there a path is the original
//! API's when its account segment is no domain (smartlic's always is), see [`satellite_alias`].
//! Each kind of manager answers the other's original-API paths with a refusal naming its own.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use crate::views::InstanceView;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Extension, Form, Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use smartlic_core::role::Action;
use smartlic_core::{token, validate, LicenseKind, Role, Timestamp};
use smartlic_proto::reservation::ReservationKind;
use smartlic_store::{
    Account, Instance, InstanceFilter, InstanceMove, RegistrationToken, Removal, Removed, Reservation, TokenRef,
    Transfer, VirtualAccount,
};
use std::net::SocketAddr;

/// Where the original API lives.
pub const PREFIX: &str = "/services/api/smart-accounts-and-licensing";

/// Where a satellite serves the original API (§1.5); its `/api/v1` twin is [`satellite_alias`].
pub const SATELLITE_BASE: &str = "/backend/api/v1";

/// The original API of a manager: the cloud's, or a satellite's variant; each refuses the other's paths.
pub fn routes(satellite: bool) -> Router<AppState> {
    if satellite {
        satellite_router()
    } else {
        router().merge(satellite_paths_refused())
    }
}

/// The cloud's original API (§1.2).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/as/token.oauth2", post(crate::auth::token))
        .route("/oauth2/default/v1/token", post(crate::auth::token))
        .route(&format!("{PREFIX}/v2/accounts"), get(accounts))
        .route(&format!("{PREFIX}/v1/accounts/{{domain}}/{{kind}}/virtual-accounts"), get(virtual_accounts))
        .route(&format!("{PREFIX}/v1/accounts/search"), get(search_accounts))
        .route(&format!("{PREFIX}/v2/accounts/search"), get(search_accounts_v2))
        .route(
            &format!("{PREFIX}/v2/accounts/{{domain}}/virtual-accounts/{{va}}/reserve-licenses"),
            post(reserve_licenses),
        )
        .route(&format!("{PREFIX}/v2/accounts/{{domain}}/virtual-accounts/{{va}}/devices/remove"), post(remove_devices))
        .merge(resources(&format!("{PREFIX}/v1")))
        // Clients read `status` even on a path smartlic does not serve.
        .route(&format!("{PREFIX}/{{*rest}}"), any(unknown_endpoint))
}

/// The v1 resources of one account under `base`: the cloud's, and a satellite's (§1.5 lists
/// the same paths). The path parameter `domain` holds what [`account`] looks up.
fn resources(base: &str) -> Router<AppState> {
    let at = |path: &str| format!("{base}/accounts/{{domain}}{path}");
    Router::new()
        .route(&at("/licenses"), post(licenses))
        .route(&at("/virtual-accounts"), post(create_virtual_account))
        .route(&at("/virtual-accounts/{va}/tokens"), get(tokens).post(create_token))
        .route(&at("/virtual-accounts/{va}/tokens/revoke"), post(revoke_tokens))
        .route(&at("/virtual-accounts/{va}/devices"), get(pool_devices))
        .route(&at("/devices"), post(devices))
        .route(&at("/virtual-accounts/{va}/licenses/transfer"), post(transfer))
        .route(&at("/license-subscriptions"), post(license_subscriptions))
        .route(&at("/virtual-accounts/{va}/devices/transfer"), post(transfer_devices))
        .route(&at("/virtual-accounts/{va}/delete"), post(delete_virtual_account))
        .route(&at("/virtual-accounts/{va}/reserve-licenses"), post(reserve_licenses))
}

/// A satellite's original API (§1.5): the resources with accounts named by local account name,
/// the list of those names, the JSON token endpoint; the cloud's paths refused.
fn satellite_router() -> Router<AppState> {
    let at = |path: &str| format!("{SATELLITE_BASE}/accounts/{{domain}}{path}");
    resources(SATELLITE_BASE)
        .route(&at("/virtual-accounts"), get(local_virtual_accounts))
        .layer(Extension(ByLocalAccountName))
        .route(&format!("{SATELLITE_BASE}/upstream_satellites/accounts"), post(local_accounts))
        .route("/backend/oauth/token", post(backend_token))
        .route(&format!("{SATELLITE_BASE}/{{*rest}}"), any(unknown_endpoint))
        .route(&format!("{PREFIX}/{{*rest}}"), any(cloud_path))
        .route("/as/token.oauth2", any(cloud_path))
        .route("/oauth2/default/v1/token", any(cloud_path))
}

/// The satellite's paths on the cloud: a refusal saying where the cloud serves the same.
fn satellite_paths_refused() -> Router<AppState> {
    Router::new()
        .route("/backend/{*rest}", any(satellite_path))
        .route("/api/v1/upstream_satellites/{*rest}", any(satellite_path))
}

async fn unknown_endpoint(uri: Uri) -> LegacyError {
    LegacyError(ApiError::not_found(format!(
        "{} is not an endpoint of the Smart Accounts and Licensing API",
        uri.path()
    )))
}

async fn cloud_path(uri: Uri) -> LegacyError {
    LegacyError(ApiError::not_found(format!(
        "{} is a path of the cloud's API; this manager is a satellite: its original API is at \
         {SATELLITE_BASE}/accounts/{{local account name}}/... (or /api/v1/...), its token endpoint \
         /backend/oauth/token or /oauth/token",
        uri.path()
    )))
}

async fn satellite_path(uri: Uri) -> LegacyError {
    LegacyError(ApiError::not_found(format!(
        "{} is a path of a satellite's API; this manager is the cloud: its original API is at \
         {PREFIX}/v1/accounts/{{domain}}/..., its token endpoint /oauth/token",
        uri.path()
    )))
}

/// On a satellite, the `/api/v1` twin of a path of [`SATELLITE_BASE`] (§1.5: scripts use both
/// bases), for the router to route as that one: `upstream_satellites/...`, and the paths of an
/// account segment that is no domain (a local account's name; smartlic's own `/api/v1` names
/// accounts by domain, so nothing of it is taken). Applied before routing.
pub fn satellite_alias(uri: &Uri) -> Option<Uri> {
    let rest = uri.path().strip_prefix("/api/v1/")?;
    let original = match rest.split_once('/') {
        Some(("upstream_satellites", _)) => true,
        Some(("accounts", tail)) => tail.split_once('/').is_some_and(|(name, _)| validate::domain(name).is_err()),
        _ => false,
    };
    if !original {
        return None;
    }
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    format!("{SATELLITE_BASE}/{rest}{query}").parse().ok()
}

/// Whether errors of `path` take the original API's envelope (those of `/api/v1` its own).
pub fn is_original_path(path: &str) -> bool {
    path.starts_with(PREFIX) || path.starts_with("/backend/")
}

/// Clients write `//services/...` or `/services/api/services/api/...`; the original gateway
/// tolerated both, so the path is put right before routing.
pub fn normalize_path(uri: &Uri) -> Option<Uri> {
    let path = uri.path();
    let mut clean = String::with_capacity(path.len());
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        clean.push('/');
        clean.push_str(segment);
    }
    while let Some(rest) = clean.strip_prefix("/services/api/services/api/") {
        clean = format!("/services/api/{rest}");
    }
    if clean.is_empty() {
        clean.push('/');
    }
    if clean == path {
        return None;
    }
    let with_query = match uri.query() {
        Some(q) => format!("{clean}?{q}"),
        None => clean,
    };
    with_query.parse().ok()
}

/// An error in the original API's shape: `{"status": "ERROR", "statusMessage": ...}`.
pub struct LegacyError(ApiError);

impl From<ApiError> for LegacyError {
    fn from(e: ApiError) -> Self {
        LegacyError(e)
    }
}

impl From<smartlic_store::StoreError> for LegacyError {
    fn from(e: smartlic_store::StoreError) -> Self {
        LegacyError(e.into())
    }
}

impl IntoResponse for LegacyError {
    fn into_response(self) -> Response {
        self.0.answer(json!({"status": "ERROR", "statusMessage": self.0.message}))
    }
}

type LegacyResult<T> = Result<T, LegacyError>;

/// Path parameters, refused in the original shape.
struct Path<T>(T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for Path<T> {
    type Rejection = LegacyError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, LegacyError> {
        Ok(Path(crate::body::Path::from_request_parts(parts, state).await?.0))
    }
}

/// The query string, refused in the original shape.
struct Query<T>(T);

impl<T: DeserializeOwned> FromRequestParts<AppState> for Query<T> {
    type Rejection = LegacyError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, LegacyError> {
        Ok(Query(crate::body::Query::from_request_parts(parts, state).await?.0))
    }
}

/// Marks a satellite's requests: their path names the account by local account name, not domain.
#[derive(Clone, Copy)]
struct ByLocalAccountName;

/// The caller of a request, and how its path names the account ([`account`] looks it up so).
pub struct Client {
    caller: Caller,
    by_local_name: bool,
}

impl std::ops::Deref for Client {
    type Target = Caller;

    fn deref(&self) -> &Caller {
        &self.caller
    }
}

/// The bearer-token check of `/api/v1`, answering in the original shape.
pub struct LegacyCaller(Client);

impl FromRequestParts<AppState> for LegacyCaller {
    type Rejection = LegacyError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, LegacyError> {
        let by_local_name = parts.extensions.get::<ByLocalAccountName>().is_some();
        let caller = Caller::from_request_parts(parts, state).await?;
        Ok(LegacyCaller(Client { caller, by_local_name }))
    }
}

fn success(mut body: Value) -> Json<Value> {
    body["status"] = json!("SUCCESS");
    body["statusMessage"] = json!("");
    Json(body)
}

/// The smart account a path names (its domain, or on a satellite its approved local account's
/// name); "not found" too when the caller has no role in it, so an outsider cannot tell another
/// tenant's account from an unknown one.
async fn account(state: &AppState, caller: &Client, key: &str) -> LegacyResult<Account> {
    let (found, what) = if caller.by_local_name {
        let local = state.store.local_account(key).await?.filter(|l| l.approved_at.is_some());
        let found = match local {
            Some(l) => state.store.account(&l.domain).await?,
            None => None,
        };
        (found, format!("Local Account {key}"))
    } else {
        let domain = key.to_ascii_lowercase();
        (state.store.account(&domain).await?, format!("Smart Account {domain}"))
    };
    let account =
        found.filter(|a| caller.has_role_in(a)).ok_or_else(|| ApiError::not_found(format!("{what} not found")))?;
    Ok(account)
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Operator => "SMART_ACCOUNT_ADMIN",
        Role::SmartAccountAdmin => "SMART_ACCOUNT_ADMIN",
        Role::SmartAccountUser => "SMART_ACCOUNT_USER",
        Role::VirtualAccountAdmin => "VIRTUAL_ACCOUNT_ADMIN",
        Role::VirtualAccountUser => "VIRTUAL_ACCOUNT_USER",
    }
}

#[utoipa::path(
    get,
    path = "/services/api/smart-accounts-and-licensing/v2/accounts",
    operation_id = "original_accounts",
    tag = "original-api",
    summary = "Smart accounts of the caller",
    responses(
        (status = 200, description = "SUCCESS: the original API's answer (public facts §1)", body = Object),
    )
)]
async fn accounts(State(state): State<AppState>, LegacyCaller(caller): LegacyCaller) -> LegacyResult<Json<Value>> {
    let mut out = Vec::new();
    for a in state.store.accounts().await? {
        if caller.require_account_view(&a).is_err() {
            continue;
        }
        let mut role = json!({"role": role_name(caller.role())});
        if let Some(va) = caller.0.virtual_account_id {
            if let Some(v) = state.store.virtual_account_by_id(va).await? {
                role["virtualAccount"] = json!(v.name);
            }
        }
        out.push(json!({
            "accountName": a.name, "accountDomain": a.domain, "accountStatus": "Active",
            "accountType": "CUSTOMER", "roles": [role]
        }));
    }
    Ok(success(json!({ "accounts": out })))
}

#[utoipa::path(
    get,
    path = "/services/api/smart-accounts-and-licensing/v1/accounts/{domain}/{accountType}/virtual-accounts",
    operation_id = "original_virtual_accounts",
    tag = "original-api",
    summary = "Virtual accounts",
    params(("domain" = String, Path, description = "the smart account's domain", example = "example.com"), ("accountType" = String, Path, description = "the account type (any value; CUSTOMER)")),
    responses(
        (status = 200, description = "SUCCESS: the original API's answer (public facts §1)", body = Object),
    )
)]
async fn virtual_accounts(
    State(state): State<AppState>,
    LegacyCaller(caller): LegacyCaller,
    Path((domain, _kind)): Path<(String, String)>,
) -> LegacyResult<Json<Value>> {
    list_virtual_accounts(&state, &caller, &domain).await
}

/// A satellite's listing (§1.5) has no account type in its path.
async fn local_virtual_accounts(
    State(state): State<AppState>,
    LegacyCaller(caller): LegacyCaller,
    Path(name): Path<String>,
) -> LegacyResult<Json<Value>> {
    list_virtual_accounts(&state, &caller, &name).await
}

async fn list_virtual_accounts(state: &AppState, caller: &Client, key: &str) -> LegacyResult<Json<Value>> {
    let account = account(state, caller, key).await?;
    let vas: Vec<Value> = state
        .store
        .virtual_accounts(account.id)
        .await?
        .iter()
        .filter(|v| caller.sees(&account, v.id))
        .map(va_json)
        .collect();
    Ok(success(json!({ "virtualAccounts": vas })))
}

// ---- the satellite's own endpoints (§1.5) -------------------------------------------------

/// The token endpoint of `/oauth/token` with the JSON body satellite scripts send
/// (`{"grant_type": "client_credentials", "client_id": ..., "client_secret": ...}`).
async fn backend_token(
    state: State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Result<Json<crate::auth::TokenRequest>, JsonRejection>,
) -> Response {
    match body {
        Ok(Json(request)) => crate::auth::token(state, peer, headers, Ok(Form(request))).await,
        Err(e) => crate::auth::oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("send a JSON body with grant_type, client_id and client_secret: {}", e.body_text()),
        ),
    }
}

/// `POST /upstream_satellites/accounts`: the local accounts whose smart account the caller
/// holds a role in (the operator sees all, approved or not), by the names paths use.
async fn local_accounts(
    State(state): State<AppState>,
    LegacyCaller(caller): LegacyCaller,
) -> LegacyResult<Json<Value>> {
    let mut out = Vec::new();
    for local in state.store.local_accounts().await? {
        let account = state.store.account(&local.domain).await?;
        let visible = match &account {
            Some(a) => caller.has_role_in(a),
            None => caller.role() == Role::Operator,
        };
        if visible {
            out.push(json!({"name": local.name, "accountDomain": local.domain,
                            "accountName": account.map(|a| a.name), "status": local.status()}));
        }
    }
    Ok(success(json!({ "accounts": out })))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct ListRequest {
    #[serde(default)]
    virtual_accounts: Vec<String>,
    limit: Option<usize>,
    offset: Option<usize>,
}

/// The pools a listing covers: those named (all when none), each visible to the caller.
async fn pools(
    state: &AppState,
    caller: &Caller,
    account: &Account,
    names: &[String],
) -> LegacyResult<Vec<VirtualAccount>> {
    let all = state.store.virtual_accounts(account.id).await?;
    if names.is_empty() {
        return Ok(all.into_iter().filter(|v| caller.sees(account, v.id)).collect());
    }
    names
        .iter()
        .map(|name| {
            let va = all.iter().find(|v| &v.name == name).ok_or_else(|| {
                ApiError::not_found(format!("Virtual Account {name} not found in {}", account.domain))
            })?;
            caller.require(Action::View, account, Some(va))?;
            Ok(va.clone())
        })
        .collect()
}

fn iso(t: Option<Timestamp>) -> Value {
    t.map_or(Value::Null, |t| json!(t.to_rfc3339()))
}

#[utoipa::path(
    post,
    path = "/services/api/smart-accounts-and-licensing/v1/accounts/{domain}/licenses",
    operation_id = "original_licenses",
    tag = "original-api",
    summary = "Licenses with substitutions and details",
    params(("domain" = String, Path, description = "the smart account's domain", example = "example.com")),
    request_body = ListRequest,
    responses(
        (status = 200, description = "SUCCESS: the original API's answer (public facts §1)", body = Object),
    )
)]
async fn licenses(
    State(state): State<AppState>,
    LegacyCaller(caller): LegacyCaller,
    Path(domain): Path<String>,
    body: Result<Json<ListRequest>, JsonRejection>,
) -> LegacyResult<Json<Value>> {
    let req = parsed(body)?;
    let account = account(&state, &caller, &domain).await?;
    let now = state.clock.now();
    let mut rows = Vec::new();
    for va in pools(&state, &caller, &account, &req.virtual_accounts).await? {
        let ledger = state.store.pool_counts(va.id, now).await?.ledger(&state.catalog);
        let records = state.store.licenses(va.id).await?;
        for t in &ledger.tags {
            let substitutions: Vec<Value> = ledger
                .substitutions
                .iter()
                .filter(|s| s.requested == t.tag || s.fulfilled_by == t.tag)
                .map(|s| {
                    json!({"licenseName": state.catalog.display_name(&s.requested),
                           "substitutedLicense": state.catalog.display_name(&s.fulfilled_by),
                           "substitutedQuantity": s.quantity,
                           "substitutionType": if s.fulfilled_by == t.tag { "LENT" } else { "BORROWED" }})
                })
                .collect();
            let details: Vec<Value> = records
                .iter()
                .filter(|r| r.tag == t.tag)
                .map(|r| {
                    json!({"licenseType": r.term.kind.as_str().to_ascii_uppercase(), "quantity": r.quantity,
                           "startDate": iso(r.term.start.or(Some(r.created_at))), "endDate": iso(r.term.end),
                           "subscriptionId": r.subscription_id,
                           "status": if r.term.active_at(now) { "ACTIVE" } else { "EXPIRED" }})
                })
                .collect();
            rows.push(json!({
                "license": state.catalog.display_name(&t.tag), "virtualAccount": va.name,
                "quantity": t.purchased, "inUse": t.in_use, "available": t.balance().max(0),
                "pendingQuantity": 0, "reserved": t.reserved,
                "status": crate::views::compliance_words(t.in_compliance()),
                "billingType": "PREPAID", "ahaApps": false, "isPortable": false,
                "licenseSubstitutions": substitutions, "licenseDetails": details
            }));
        }
    }
    Ok(success(paged(&req, "licenses", rows)))
}

/// `{totalRecords, <key>: [one page]}`; `totalRecords` counts every match.
fn paged(req: &ListRequest, key: &str, rows: Vec<Value>) -> Value {
    let total = rows.len();
    let offset = req.offset.unwrap_or(0);
    let limit = req.limit.unwrap_or(50).min(1000);
    let page: Vec<Value> = rows.into_iter().skip(offset).take(limit).collect();
    json!({ "totalRecords": total, key: page })
}

/// A JSON body, or a 400 in the original envelope.
fn parsed<T>(body: Result<Json<T>, JsonRejection>) -> LegacyResult<T> {
    let Json(value) = body.map_err(ApiError::from)?;
    Ok(value)
}

/// Account and pool of a request, with the caller's right to `action` in that pool checked.
async fn pool(
    state: &AppState,
    caller: &Client,
    domain: &str,
    name: &str,
    action: Action,
) -> LegacyResult<(Account, VirtualAccount)> {
    let account = account(state, caller, domain).await?;
    let va = state
        .store
        .virtual_account(account.id, name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Virtual Account {name} not found in {}", account.domain)))?;
    caller.require(action, &account, Some(&va))?;
    Ok((account, va))
}

// ---- virtual accounts --------------------------------------------------------------------

#[derive(Deserialize, utoipa::ToSchema)]
struct NewVirtualAccount {
    name: String,
    #[serde(default)]
    description: String,
}

fn va_json(v: &VirtualAccount) -> Value {
    json!({"isDefault": if v.is_default { "true" } else { "false" }, "name": v.name,
           "description": v.description, "commerceAccessLevel": "FULL"})
}

#[utoipa::path(
    post,
    path = "/services/api/smart-accounts-and-licensing/v1/accounts/{domain}/virtual-accounts",
    operation_id = "original_create_virtual_account",
    tag = "original-api",
    summary = "Create a virtual account",
    params(("domain" = String, Path, description = "the smart account's domain", example = "example.com")),
    request_body = NewVirtualAccount,
    responses(
        (status = 200, description = "SUCCESS: the original API's answer (public facts §1)", body = Object),
        (status = 409, description = "refused: nothing changed (the message says why)"),
    )
)]
async fn create_virtual_account(
    State(state): State<AppState>,
    LegacyCaller(caller): LegacyCaller,
    Path(domain): Path<String>,
    body: Result<Json<NewVirtualAccount>, JsonRejection>,
) -> LegacyResult<Json<Value>> {
    let req = parsed(body)?;
    let account = account(&state, &caller, &domain).await?;
    caller.require(Action::ManageVirtualAccounts, &account, None)?;
    let name = validate::text("name", &req.name, validate::MAX_NAME).map_err(ApiError::from)?;
    let description =
        validate::optional_text("description", &req.description, validate::MAX_DESCRIPTION).map_err(ApiError::from)?;
    let va =
        state.store.create_virtual_account(&account, &name, &description, caller.login(), state.clock.now()).await?;
    Ok(success(json!({ "virtualAccount": va_json(&va) })))
}

// ---- registration tokens -----------------------------------------------------------------

fn export_words(allowed: bool) -> &'static str {
    if allowed {
        "Allowed"
    } else {
        "Not Allowed"
    }
}

/// A token in the original shape; `text` (the whole token) only in the answer that creates it,
/// listings show its prefix.
fn token_json(t: &RegistrationToken, text: Option<&str>, va: &VirtualAccount, now: Timestamp) -> Value {
    let shown = text.map_or_else(|| format!("{}…", t.prefix), str::to_string);
    json!({
        "token": shown, "expirationDate": t.expires_at.to_rfc3339(), "creationDate": t.created_at.to_rfc3339(),
        "description": t.description, "createdBy": t.created_by, "virtualAccount": va.name,
        "exportControlled": export_words(t.export_controlled), "numberOfUses": t.max_uses, "usedCount": t.uses,
        "status": t.facts().status_at(now).as_str()
    })
}

#[utoipa::path(
    get,
    path = "/services/api/smart-accounts-and-licensing/v1/accounts/{domain}/virtual-accounts/{va}/tokens",
    operation_id = "original_tokens",
    tag = "original-api",
    summary = "Registration tokens of a virtual account",
    params(("domain" = String, Path, description = "the smart account's domain", example = "example.com"), ("va" = String, Path, description = "the virtual account's name", example = "Default")),
    responses(
        (status = 200, description = "SUCCESS: the original API's answer (public facts §1)", body = Object),
    )
)]
async fn tokens(
    State(state): State<AppState>,
    LegacyCaller(caller): LegacyCaller,
    Path((domain, va)): Path<(String, String)>,
) -> LegacyResult<Json<Value>> {
    let (_, va) = pool(&state, &caller, &domain, &va, Action::View).await?;
    let now = state.clock.now();
    let tokens: Vec<Value> = state.store.tokens(va.id).await?.iter().map(|t| token_json(t, None, &va, now)).collect();
    Ok(success(json!({ "tokens": tokens })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct NewTokenRequest {
    #[serde(default)]
    description: String,
    /// A number, or a string of digits as some scripts send it.
    expires_after_days: Option<Value>,
    export_controlled: Option<String>,
    #[serde(alias = "numberofUses")]
    number_of_uses: Option<i64>,
}

#[utoipa::path(
    post,
    path = "/services/api/smart-accounts-and-licensing/v1/accounts/{domain}/virtual-accounts/{va}/tokens",
    operation_id = "original_create_token",
    tag = "original-api",
    summary = "Create a registration token",
    params(("domain" = String, Path, description = "the smart account's domain", example = "example.com"), ("va" = String, Path, description = "the virtual account's name", example = "Default")),
    request_body = NewTokenRequest,
    responses(
        (status = 200, description = "SUCCESS: the original API's answer (public facts §1)", body = Object),
    )
)]
async fn create_token(
    State(state): State<AppState>,
    LegacyCaller(caller): LegacyCaller,
    Path((domain, va)): Path<(String, String)>,
    body: Result<Json<NewTokenRequest>, JsonRejection>,
) -> LegacyResult<Json<Value>> {
    let req = parsed(body)?;
    let (_, va) = pool(&state, &caller, &domain, &va, Action::ManageTokens).await?;
    let description =
        validate::optional_text("description", &req.description, validate::MAX_DESCRIPTION).map_err(ApiError::from)?;
    let days = match &req.expires_after_days {
        None => Some(token::DEFAULT_EXPIRES_DAYS),
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        Some(_) => None,
    }
    .filter(|d| (1..=token::MAX_EXPIRES_DAYS).contains(d))
    .ok_or_else(|| {
        ApiError::invalid("expiresAfterDays", format!("must be a number of days from 1 to {}", token::MAX_EXPIRES_DAYS))
    })?;
    let export_controlled = match req.export_controlled.as_deref().map(str::trim) {
        None | Some("Not Allowed") => false,
        Some("Allowed") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "exportControlled",
                format!("'{other}' is not \"Allowed\" or \"Not Allowed\""),
            )
            .into())
        }
    };
    let max_uses =
        req.number_of_uses.map(|n| validate::count("numberOfUses", n)).transpose().map_err(ApiError::from)?;
    let (t, text) =
        crate::api::issue_token(&state, &caller, &va, description, days, max_uses, export_controlled).await?;
    Ok(success(json!({ "tokenInfo": token_json(&t, Some(&text), &va, state.clock.now()) })))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct RevokeRequest {
    tokens: Vec<String>,
}

/// Revokes every listed token, or none when one of them is unknown, revoked already or listed
/// twice: one store transaction.
#[utoipa::path(
    post,
    path = "/services/api/smart-accounts-and-licensing/v1/accounts/{domain}/virtual-accounts/{va}/tokens/revoke",
    operation_id = "original_revoke_tokens",
    tag = "original-api",
    summary = "Revoke registration tokens (all or none)",
    params(("domain" = String, Path, description = "the smart account's domain", example = "example.com"), ("va" = String, Path, description = "the virtual account's name", example = "Default")),
    request_body = RevokeRequest,
    responses(
        (status = 200, description = "SUCCESS: the original API's answer (public facts §1)", body = Object),
        (status = 409, description = "refused: nothing changed (the message says why)"),
    )
)]
async fn revoke_tokens(
    State(state): State<AppState>,
    LegacyCaller(caller): LegacyCaller,
    Path((domain, va)): Path<(String, String)>,
    body: Result<Json<RevokeRequest>, JsonRejection>,
) -> LegacyResult<Json<Value>> {
    let req = parsed(body)?;
    let (_, va) = pool(&state, &caller, &domain, &va, Action::ManageTokens).await?;
    if req.tokens.is_empty() {
        return Err(ApiError::invalid("tokens", "lists no token").into());
    }
    let texts: Vec<&str> = req.tokens.iter().map(|t| t.trim()).collect();
    for (i, text) in texts.iter().enumerate() {
        if let Some(first) = texts[..i].iter().position(|t| t == text) {
            return Err(ApiError::invalid("tokens", format!("tokens[{i}] repeats tokens[{first}]")).into());
        }
    }
    for text in &texts {
        crate::satellite::refuse_foreign_revocation(&state, &va, text).await?;
    }
    let refs = texts.iter().map(|text| TokenRef::new(text, crate::auth::sha256_hex(text))).collect();
    let now = state.clock.now();
    let revoked = state
        .store
        .revoke_tokens(va.id, refs, caller.login(), now)
        .await
        .map_err(|e| ApiError::from(e).with_field("tokens"))?;
    let out: Vec<Value> = revoked.iter().map(|t| token_json(t, None, &va, now)).collect();
    Ok(success(json!({ "tokens": out })))
}

// ---- devices -----------------------------------------------------------------------------

/// A product instance in the original device shape (public facts §1.3).
fn device(catalog: &smartlic_core::Catalog, v: &InstanceView) -> Value {
    let license_usage: Vec<Value> =
        v.usage.iter().map(|u| json!({"license": catalog.display_name(&u.tag), "quantity": u.count})).collect();
    json!({
        "licenseUsage": license_usage,
        "hostName": v.hostname,
        "sudi": {"macAddress": null, "suvi": null, "hostIdentifier": null, "udiSerialNumber": v.udi_serial_number,
                 "udiPid": v.udi_pid, "uuid": v.id, "udiVid": null},
        "displayName": format!("UDI_PID:{}; UDI_SN:{}; ", v.udi_pid, v.udi_serial_number),
        "registrationDate": v.registered_at,
        "lastContactDate": v.last_contact_at,
        "productTagName": null,
        "virtualAccount": v.virtual_account,
        "productName": v.udi_pid, "productDescription": "", "productType": "",
        "status": v.status
    })
}

#[utoipa::path(
    get,
    path = "/services/api/smart-accounts-and-licensing/v1/accounts/{domain}/virtual-accounts/{va}/devices",
    operation_id = "original_pool_devices",
    tag = "original-api",
    summary = "Product instances of a virtual account",
    params(("domain" = String, Path, description = "the smart account's domain", example = "example.com"), ("va" = String, Path, description = "the virtual account's name", example = "Default")),
    responses(
        (status = 200, description = "SUCCESS: the original API's answer (public facts §1)", body = Object),
    )
)]
async fn pool_devices(
    State(state): State<AppState>,
    LegacyCaller(caller): LegacyCaller,
    Path((domain, va)): Path<(String, String)>,
) -> LegacyResult<Response> {
    let (_, va) = pool(&state, &caller, &domain, &va, Action::View).await?;
    // Every device of the pool in one answer, as the original API gives it: sent a page at a
    // time as it is read (`crate::streamed`), so a pool of a million costs the memory of a page.
    let (total, _) = state.store.instances_at(vec![va.id], 0, 0).await?;
    let head = format!(r#"{{"status":"SUCCESS","statusMessage":"","totalRecords":{total},"devices":["#);
    let shown = state.clone();
    let page = move |views: &[InstanceView], after_one: bool| {
        crate::streamed::json_items(views, after_one, |v| device(&shown.catalog, v).to_string())
    };
    let body = crate::streamed::instance_report(state, vec![va], head, page, "]}");
    Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response())
}

#[utoipa::path(
    post,
    path = "/services/api/smart-accounts-and-licensing/v1/accounts/{domain}/devices",
    operation_id = "original_devices",
    tag = "original-api",
    summary = "Product instances of virtual accounts, paged",
    params(("domain" = String, Path, description = "the smart account's domain", example = "example.com")),
    request_body = ListRequest,
    responses(
        (status = 200, description = "SUCCESS: the original API's answer (public facts §1)", body = Object),
    )
)]
async fn devices(
    State(state): State<AppState>,
    LegacyCaller(caller): LegacyCaller,
    Path(domain): Path<String>,
    body: Result<Json<ListRequest>, JsonRejection>,
) -> LegacyResult<Json<Value>> {
    let req = parsed(body)?;
    let account = account(&state, &caller, &domain).await?;
    let vas = pools(&state, &caller, &account, &req.virtual_accounts).await?;
    // Only the page asked for is read, and the total counted: not every device of the pools.
    let (offset, limit) = (req.offset.unwrap_or(0), req.limit.unwrap_or(50).min(1000));
    let offset = i64::try_from(offset).map_err(|_| ApiError::invalid("offset", "is too large".to_string()))?;
    let ids = vas.iter().map(|v| v.id).collect();
    let (total, instances) = state.store.instances_at(ids, offset, limit as i64).await?;
    let rows: Vec<Value> =
        crate::api::instance_views(&state, &instances, &vas).await?.iter().map(|v| device(&state.catalog, v)).collect();
    Ok(success(json!({ "totalRecords": total, "devices": rows })))
}

// ---- license transfer --------------------------------------------------------------------

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct TransferRequest {
    licenses: Vec<TransferItem>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct TransferItem {
    license: String,
    license_type: Option<String>,
    quantity: i64,
    target_virtual_account: String,
}

/// The tag a license display name (or a tag itself) stands for.
fn tag_of(state: &AppState, license: &str) -> LegacyResult<String> {
    let tags = state.catalog.tags();
    if let Some(t) = tags.iter().find(|t| t.name == license) {
        return Ok(t.name.clone());
    }
    let named: Vec<&str> = tags.iter().filter(|t| t.display_name == license).map(|t| t.name.as_str()).collect();
    match named.as_slice() {
        [one] => Ok(one.to_string()),
        [] => Err(ApiError::invalid("license", format!("'{license}' is not a license of the catalogue")).into()),
        _ => {
            Err(ApiError::invalid("license", format!("'{license}' names several entitlement tags; use the tag")).into())
        }
    }
}

/// Moves every listed quantity or nothing, in one store transaction; only available licenses go
/// (the rule of `/api/v1`, [`crate::api::transfer`]).
#[utoipa::path(
    post,
    path = "/services/api/smart-accounts-and-licensing/v1/accounts/{domain}/virtual-accounts/{va}/licenses/transfer",
    operation_id = "original_transfer_licenses",
    tag = "original-api",
    summary = "Transfer available licenses to other virtual accounts (all or none)",
    params(("domain" = String, Path, description = "the smart account's domain", example = "example.com"), ("va" = String, Path, description = "the virtual account's name", example = "Default")),
    request_body = TransferRequest,
    responses(
        (status = 200, description = "SUCCESS: the original API's answer (public facts §1)", body = Object),
        (status = 409, description = "refused: nothing changed (the message says why)"),
    )
)]
async fn transfer(
    State(state): State<AppState>,
    LegacyCaller(caller): LegacyCaller,
    Path((domain, va)): Path<(String, String)>,
    body: Result<Json<TransferRequest>, JsonRejection>,
) -> LegacyResult<Json<Value>> {
    let req = parsed(body)?;
    let (account, from) = pool(&state, &caller, &domain, &va, Action::TransferLicenses).await?;
    if req.licenses.is_empty() {
        return Err(ApiError::invalid("licenses", "lists no license").into());
    }
    let mut moves = Vec::with_capacity(req.licenses.len());
    for item in &req.licenses {
        let tag = tag_of(&state, &item.license)?;
        let quantity = validate::count("quantity", item.quantity).map_err(ApiError::from)?;
        let kind = item.license_type.as_deref().map(LicenseKind::parse).transpose().map_err(ApiError::from)?;
        let to = state.store.virtual_account(account.id, &item.target_virtual_account).await?.ok_or_else(|| {
            ApiError::not_found(format!(
                "Virtual Account {} not found in {}",
                item.target_virtual_account, account.domain
            ))
            .with_field("targetVirtualAccount")
        })?;
        caller.require(Action::TransferLicenses, &account, Some(&to))?;
        if to.id == from.id {
            return Err(
                ApiError::invalid("targetVirtualAccount", "source and target virtual accounts are the same").into()
            );
        }
        moves.push(Transfer { to_virtual_account_id: to.id, tag, quantity, kind });
    }
    crate::api::transfer(&state, &caller, &from, moves).await?;
    let out: Vec<Value> = req
        .licenses
        .iter()
        .map(|item| {
            json!({"license": item.license, "licenseType": item.license_type, "quantity": item.quantity,
                   "targetVirtualAccount": item.target_virtual_account, "status": "SUCCESS"})
        })
        .collect();
    Ok(success(json!({ "licenses": out })))
}

// ---- device transfer --------------------------------------------------------------------

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct DeviceTransferRequest {
    product_instances: Vec<DeviceTransferItem>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct DeviceTransferItem {
    sudi: Sudi,
    #[serde(default)]
    product_tag_name: Option<String>,
    target_virtual_account: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct Sudi {
    udi_pid: Option<String>,
    udi_serial_number: Option<String>,
    /// The product instance identifier, as `devices` lists it.
    uuid: Option<String>,
}

impl Sudi {
    /// The instance of `present` this names: by `uuid` when given, else by PID and serial number.
    fn find<'a>(&self, present: &'a [Instance], va: &VirtualAccount) -> LegacyResult<&'a Instance> {
        let found = present.iter().find(|i| match (&self.uuid, &self.udi_pid, &self.udi_serial_number) {
            (Some(id), _, _) if !id.is_empty() => &i.id == id,
            (_, Some(pid), Some(sn)) => &i.udi_pid == pid && &i.udi_sn == sn,
            _ => false,
        });
        found.ok_or_else(|| {
            ApiError::not_found(format!(
                "product instance UDI_PID:{}; UDI_SN:{} not found in Virtual Account {}",
                self.udi_pid.as_deref().unwrap_or(""),
                self.udi_serial_number.as_deref().unwrap_or(""),
                va.name
            ))
            .with_field("sudi")
            .into()
        })
    }
}

/// Moves every listed product instance or none: all are found and checked, then moved in one
/// store transaction (which refuses all when one was moved out of the pool meanwhile).
#[utoipa::path(
    post,
    path = "/services/api/smart-accounts-and-licensing/v1/accounts/{domain}/virtual-accounts/{va}/devices/transfer",
    operation_id = "original_transfer_devices",
    tag = "original-api",
    summary = "Move product instances to other virtual accounts (all or none)",
    params(("domain" = String, Path, description = "the smart account's domain", example = "example.com"), ("va" = String, Path, description = "the virtual account's name", example = "Default")),
    request_body = DeviceTransferRequest,
    responses(
        (status = 200, description = "SUCCESS: the original API's answer (public facts §1)", body = Object),
        (status = 409, description = "refused: nothing changed (the message says why)"),
    )
)]
async fn transfer_devices(
    State(state): State<AppState>,
    LegacyCaller(caller): LegacyCaller,
    Path((domain, va)): Path<(String, String)>,
    body: Result<Json<DeviceTransferRequest>, JsonRejection>,
) -> LegacyResult<Json<Value>> {
    let req = parsed(body)?;
    let (account, from) = pool(&state, &caller, &domain, &va, Action::ManageInstances).await?;
    if req.product_instances.is_empty() {
        return Err(ApiError::invalid("productInstances", "lists no product instance").into());
    }
    let present = state.store.instances(InstanceFilter::VirtualAccount(from.id)).await?;
    let mut moves = Vec::new();
    for item in &req.product_instances {
        let inst = item.sudi.find(&present, &from)?;
        if moves.iter().any(|(i, _, _): &(&Instance, _, _)| i.id == inst.id) {
            return Err(ApiError::invalid("productInstances", format!("{} is listed twice", inst.id)).into());
        }
        let to = state.store.virtual_account(account.id, &item.target_virtual_account).await?.ok_or_else(|| {
            ApiError::not_found(format!(
                "Virtual Account {} not found in {}",
                item.target_virtual_account, account.domain
            ))
            .with_field("targetVirtualAccount")
        })?;
        caller.require(Action::ManageInstances, &account, Some(&to))?;
        moves.push((inst, to, item.product_tag_name.clone()));
    }
    let batch = moves
        .iter()
        .map(|(inst, to, _)| InstanceMove {
            instance_id: inst.id.clone(),
            from_virtual_account_id: Some(from.id),
            to_virtual_account_id: to.id,
        })
        .collect();
    let moved = state.store.move_instances(batch, caller.login(), state.clock.now()).await?;
    let out: Vec<Value> = moved
        .iter()
        .zip(moves)
        .map(|(m, (_, to, tag))| {
            json!({
                "sudi": {"udiPid": m.udi_pid, "udiSerialNumber": m.udi_sn, "uuid": m.id},
                "productTagName": tag, "targetVirtualAccount": to.name, "status": "SUCCESS"
            })
        })
        .collect();
    Ok(success(json!({ "productInstances": out })))
}

// ---- virtual account deletion ------------------------------------------------------------

#[utoipa::path(
    post,
    path = "/services/api/smart-accounts-and-licensing/v1/accounts/{domain}/virtual-accounts/{va}/delete",
    operation_id = "original_delete_virtual_account",
    tag = "original-api",
    summary = "Delete an empty virtual account",
    params(("domain" = String, Path, description = "the smart account's domain", example = "example.com"), ("va" = String, Path, description = "the virtual account's name", example = "Default")),
    responses(
        (status = 200, description = "SUCCESS: the original API's answer (public facts §1)", body = Object),
        (status = 409, description = "refused: nothing changed (the message says why)"),
    )
)]
async fn delete_virtual_account(
    State(state): State<AppState>,
    LegacyCaller(caller): LegacyCaller,
    Path((domain, va)): Path<(String, String)>,
) -> LegacyResult<Json<Value>> {
    let (_, va) = pool(&state, &caller, &domain, &va, Action::ManageVirtualAccounts).await?;
    crate::satellite::refuse_deleting_served(&state, &va).await?;
    let gone = state.store.delete_virtual_account(va.id, caller.login(), state.clock.now()).await?;
    let mut answer = success(json!({ "virtualAccount": va_json(&gone) }));
    answer.0["statusMessage"] = json!(format!("Virtual Account {} deleted", gone.name));
    Ok(answer)
}

// ---- reservation (R-1) -------------------------------------------------------------------

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct ReserveRequest {
    reservation_requests: Vec<ReserveItem>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct ReserveItem {
    reservation_code: String,
    reservation_type: Option<String>,
    #[serde(default)]
    licenses: Vec<ReserveLicense>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct ReserveLicense {
    entitlement_tag: String,
    /// A number, or a string of digits as some clients send it.
    quantity: Value,
    precedence: Option<String>,
}

impl ReserveItem {
    fn ask(&self) -> Result<crate::reservation::Ask, ApiError> {
        let kind = match self.reservation_type.as_deref().map(str::trim) {
            None => None,
            Some(t) if t.eq_ignore_ascii_case("SPECIFIC") => Some(ReservationKind::Specific),
            Some(t) if t.eq_ignore_ascii_case("UNIVERSAL") => Some(ReservationKind::Universal),
            Some(other) => {
                return Err(ApiError::invalid("reservationType", format!("'{other}' is not SPECIFIC or UNIVERSAL")))
            }
        };
        let mut licenses = Vec::with_capacity(self.licenses.len());
        for l in &self.licenses {
            if let Some(p) = l.precedence.as_deref().filter(|p| !p.trim().eq_ignore_ascii_case("LONGEST_TERM_FIRST")) {
                return Err(ApiError::invalid("precedence", format!("'{p}' is not supported; use LONGEST_TERM_FIRST")));
            }
            let quantity = match &l.quantity {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            }
            .ok_or_else(|| {
                ApiError::invalid("quantity", format!("{} is not a whole number of licenses", l.quantity))
            })?;
            licenses.push((l.entitlement_tag.clone(), quantity));
        }
        Ok(crate::reservation::Ask { request_code: self.reservation_code.clone(), kind, licenses })
    }
}

fn reservation_json(state: &AppState, r: &Reservation) -> Value {
    let licenses: Vec<Value> = r
        .licenses
        .iter()
        .map(|l| {
            json!({"entitlementTag": l.tag, "license": state.catalog.display_name(&l.tag), "quantity": l.quantity,
                   "licenseType": l.term.kind.as_str().to_ascii_uppercase(), "startDate": iso(l.term.start),
                   "endDate": iso(l.term.end), "subscriptionId": l.subscription_id})
        })
        .collect();
    json!({"authorizationCode": r.authorization_code, "reservationCode": r.request_code,
           "reservationType": r.kind.api_name(), "confirmationCode": r.confirmation_code, "piid": r.piid,
           "sudi": {"udiPid": r.udi_pid, "udiSerialNumber": r.udi_sn}, "licenses": licenses})
}

/// Reserves for every listed request or none (all checked, then stored in one transaction).
#[utoipa::path(
    post,
    path = "/services/api/smart-accounts-and-licensing/v1/accounts/{domain}/virtual-accounts/{va}/reserve-licenses",
    operation_id = "original_reserve_licenses",
    tag = "original-api",
    summary = "Reserve licenses for offline devices (all requests or none)",
    params(("domain" = String, Path, description = "the smart account's domain", example = "example.com"), ("va" = String, Path, description = "the virtual account's name", example = "Default")),
    request_body = ReserveRequest,
    responses(
        (status = 200, description = "SUCCESS: the original API's answer (public facts §1)", body = Object),
        (status = 409, description = "refused: nothing changed (the message says why)"),
    )
)]
async fn reserve_licenses(
    State(state): State<AppState>,
    LegacyCaller(caller): LegacyCaller,
    Path((domain, va)): Path<(String, String)>,
    body: Result<Json<ReserveRequest>, JsonRejection>,
) -> LegacyResult<Json<Value>> {
    let req = parsed(body)?;
    let (account, va) = pool(&state, &caller, &domain, &va, Action::ReserveLicenses).await?;
    let n = req.reservation_requests.len();
    let asks = req
        .reservation_requests
        .iter()
        .enumerate()
        .map(|(i, r)| r.ask().map_err(|e| crate::reservation::at(n, i, e)))
        .collect::<Result<Vec<_>, _>>()?;
    let made = crate::reservation::create(&state, &caller, &account, &va, &asks).await?;
    let codes: Vec<Value> = made.iter().map(|r| reservation_json(&state, r)).collect();
    let mut answer = success(json!({ "authorizationCodes": codes }));
    answer.0["statusMessage"] = json!(format!("Licenses reserved for {} product instance(s)", made.len()));
    Ok(answer)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct RemoveRequest {
    /// Spelled as the public script sends it; the correct spelling is accepted too.
    #[serde(alias = "productInstancesRemoveRequests")]
    product_instaces_remove_requests: Vec<RemoveItem>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct RemoveItem {
    sudi: Sudi,
    #[serde(default)]
    product_tag_name: Option<String>,
    /// A reservation return code: the device's reserved licenses come back instead.
    #[serde(default)]
    return_code: Option<String>,
}

/// Removes every listed device or none, in one store transaction: with a return code, its
/// reservation is returned (the code must be that device's); without, the registered product
/// instance of that UDI is removed.
#[utoipa::path(
    post,
    path = "/services/api/smart-accounts-and-licensing/v2/accounts/{domain}/virtual-accounts/{va}/devices/remove",
    operation_id = "original_remove_devices",
    tag = "original-api",
    summary = "Remove product instances, or return their reservations with return codes (all or none)",
    params(("domain" = String, Path, description = "the smart account's domain", example = "example.com"), ("va" = String, Path, description = "the virtual account's name", example = "Default")),
    request_body = RemoveRequest,
    responses(
        (status = 200, description = "SUCCESS: the original API's answer (public facts §1)", body = Object),
        (status = 409, description = "refused: nothing changed (the message says why)"),
    )
)]
async fn remove_devices(
    State(state): State<AppState>,
    LegacyCaller(caller): LegacyCaller,
    Path((domain, va)): Path<(String, String)>,
    body: Result<Json<RemoveRequest>, JsonRejection>,
) -> LegacyResult<Json<Value>> {
    let req = parsed(body)?;
    let items = &req.product_instaces_remove_requests;
    let (account, va) = pool(&state, &caller, &domain, &va, Action::View).await?;
    if items.is_empty() {
        return Err(ApiError::invalid("productInstacesRemoveRequests", "lists no product instance").into());
    }
    let present = state.store.instances(InstanceFilter::VirtualAccount(va.id)).await?;
    let mut plan: Vec<Removal> = Vec::with_capacity(items.len());
    for item in items {
        let s = &item.sudi;
        let step = match item.return_code.as_deref().filter(|c| !c.trim().is_empty()) {
            Some(code) => {
                let device = s.udi_pid.as_deref().zip(s.udi_serial_number.as_deref());
                let r = crate::reservation::check_return(&state, &caller, &account, &va, code, device).await?;
                Removal::Reservation(r.id)
            }
            None => {
                caller.require(Action::ManageInstances, &account, Some(&va))?;
                let id = s.find(&present, &va)?.id.clone();
                Removal::Instance { id, from_virtual_account_id: Some(va.id) }
            }
        };
        let twice = plan.iter().any(|p| match (p, &step) {
            (Removal::Reservation(a), Removal::Reservation(b)) => a == b,
            (Removal::Instance { id: a, .. }, Removal::Instance { id: b, .. }) => a == b,
            _ => false,
        });
        if twice {
            return Err(ApiError::invalid("sudi", "a product instance is listed twice").into());
        }
        plan.push(step);
    }
    let done = state.store.remove_instances(plan, "removed", caller.login(), state.clock.now()).await?;
    let out: Vec<Value> = done
        .into_iter()
        .zip(items)
        .map(|(step, item)| {
            let (pid, sn, action) = match step {
                Removed::Reservation(back) => (back.udi_pid, back.udi_sn, "RETURNED"),
                Removed::Instance(gone) => (gone.udi_pid, gone.udi_sn, "REMOVED"),
            };
            json!({"sudi": {"udiPid": pid, "udiSerialNumber": sn}, "productTagName": item.product_tag_name,
                   "action": action, "status": "SUCCESS"})
        })
        .collect();
    Ok(success(json!({ "productInstances": out })))
}

// ---- account search ----------------------------------------------------------------------

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct SearchQuery {
    #[serde(default)]
    domain: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    limit: Option<usize>,
    offset: Option<usize>,
}

/// Accounts the caller sees whose domain contains `domain` (a substring match, as the original).
#[utoipa::path(
    get,
    path = "/services/api/smart-accounts-and-licensing/v1/accounts/search",
    operation_id = "original_search_accounts",
    tag = "original-api",
    summary = "Search smart accounts by domain substring",
    params(SearchQuery),
    responses(
        (status = 200, description = "SUCCESS: the original API's answer (public facts §1)", body = Object),
    )
)]
async fn search_accounts(
    State(state): State<AppState>,
    LegacyCaller(caller): LegacyCaller,
    Query(q): Query<SearchQuery>,
) -> LegacyResult<Json<Value>> {
    let needle = q.domain.trim().to_ascii_lowercase();
    let customer = q.kind.as_deref().is_none_or(|k| k.eq_ignore_ascii_case("CUSTOMER"));
    let rows: Vec<Value> = state
        .store
        .accounts()
        .await?
        .iter()
        .filter(|a| customer && a.domain.contains(&needle) && caller.require_account_view(a).is_ok())
        .map(|a| json!({"domain": a.domain, "name": a.name, "id": a.id, "type": "CUSTOMER", "status": "Active"}))
        .collect();
    let req = ListRequest { virtual_accounts: Vec::new(), limit: Some(q.limit.unwrap_or(1000)), offset: q.offset };
    Ok(success(paged(&req, "accounts", rows)))
}

/// The snake_case search giving numeric account and pool ids (public facts §1.2).
#[utoipa::path(
    get,
    path = "/services/api/smart-accounts-and-licensing/v2/accounts/search",
    operation_id = "original_search_accounts_v2",
    tag = "original-api",
    summary = "Smart accounts with numeric account and virtual account ids (snake_case)",
    responses(
        (status = 200, description = "SUCCESS: the original API's answer (public facts §1)", body = Object),
    )
)]
async fn search_accounts_v2(
    State(state): State<AppState>,
    LegacyCaller(caller): LegacyCaller,
) -> LegacyResult<Json<Value>> {
    let mut out = Vec::new();
    for a in state.store.accounts().await? {
        if caller.require_account_view(&a).is_err() {
            continue;
        }
        let vas: Vec<Value> = state
            .store
            .virtual_accounts(a.id)
            .await?
            .iter()
            .filter(|v| caller.sees(&a, v.id))
            .map(|v| json!({"default": v.is_default, "name": v.name, "virtual_account_id": v.id}))
            .collect();
        out.push(json!({"account_id": a.id, "domain": a.domain, "name": a.name, "virtual_accounts": vas}));
    }
    Ok(Json(json!({"status": "COMPLETE", "message_code": null, "message": null, "accounts": out})))
}

// ---- license subscriptions ---------------------------------------------------------------

/// Term and subscription licenses, one row per record.
#[utoipa::path(
    post,
    path = "/services/api/smart-accounts-and-licensing/v1/accounts/{domain}/license-subscriptions",
    operation_id = "original_license_subscriptions",
    tag = "original-api",
    summary = "Term and subscription licenses, paged",
    params(("domain" = String, Path, description = "the smart account's domain", example = "example.com")),
    request_body = ListRequest,
    responses(
        (status = 200, description = "SUCCESS: the original API's answer (public facts §1)", body = Object),
    )
)]
async fn license_subscriptions(
    State(state): State<AppState>,
    LegacyCaller(caller): LegacyCaller,
    Path(domain): Path<String>,
    body: Result<Json<ListRequest>, JsonRejection>,
) -> LegacyResult<Json<Value>> {
    let req = parsed(body)?;
    let account = account(&state, &caller, &domain).await?;
    let now = state.clock.now();
    let mut rows = Vec::new();
    for va in pools(&state, &caller, &account, &req.virtual_accounts).await? {
        for r in state.store.licenses(va.id).await? {
            if r.term.kind == LicenseKind::Perpetual && r.subscription_id.is_none() {
                continue;
            }
            rows.push(json!({
                "subscriptionId": r.subscription_id, "virtualAccount": va.name,
                "license": state.catalog.display_name(&r.tag), "sku": r.sku,
                "licenseType": r.term.kind.as_str().to_ascii_uppercase(), "quantity": r.quantity,
                "startDate": iso(r.term.start.or(Some(r.created_at))), "endDate": iso(r.term.end),
                "status": if r.term.active_at(now) { "ACTIVE" } else { "EXPIRED" }
            }));
        }
    }
    Ok(success(paged(&req, "licenseSubscriptions", rows)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_put_right() {
        let fix = |p: &str| normalize_path(&p.parse().unwrap()).map(|u| u.to_string());
        assert_eq!(fix("//services/api/x"), Some("/services/api/x".into()));
        assert_eq!(fix("/services/api/services/api/x?limit=1"), Some("/services/api/x?limit=1".into()));
        assert_eq!(fix("/services/api/x"), None);
    }

    #[test]
    fn a_satellite_takes_only_non_domain_accounts_of_api_v1() {
        let alias = |p: &str| satellite_alias(&p.parse().unwrap()).map(|u| u.to_string());
        assert_eq!(
            alias("/api/v1/accounts/Plant%20A/licenses?x=1"),
            Some("/backend/api/v1/accounts/Plant%20A/licenses?x=1".into())
        );
        assert_eq!(
            alias("/api/v1/upstream_satellites/accounts"),
            Some("/backend/api/v1/upstream_satellites/accounts".into())
        );
        assert_eq!(alias("/api/v1/accounts/example.com/virtual-accounts"), None);
        assert_eq!(alias("/api/v1/accounts/Plant"), None);
        assert_eq!(alias("/api/v1/local-accounts/Plant/registration"), None);
    }
}
