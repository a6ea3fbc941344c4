//! The REST API under `/api/v1` (docs/API.md): thin handlers that check input and rights,
//! then call the store and the pure domain.

use crate::auth::{random_text, sha256_hex, Caller};
use crate::body::{Body, Path, Query};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::views::*;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use smartlic_core::compliance::Ledger;
use smartlic_core::role::Action;
use smartlic_core::{token, validate, LicenseKind, LicenseTerm, Role, Timestamp};
use smartlic_proto::reservation::ReservationKind;
use smartlic_store::*;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/accounts", get(list_accounts).post(create_account))
        .route("/api/v1/accounts/{domain}", get(show_account).patch(update_account))
        .route("/api/v1/accounts/{domain}/virtual-accounts", get(list_vas).post(create_va))
        .route("/api/v1/accounts/{domain}/virtual-accounts/{va}", delete(delete_va))
        .route("/api/v1/accounts/{domain}/users", get(list_users).post(create_user))
        .route("/api/v1/accounts/{domain}/api-clients", get(list_clients).post(create_client))
        .route("/api/v1/accounts/{domain}/users/{name}", patch(change_user).delete(delete_user))
        .route("/api/v1/accounts/{domain}/api-clients/{name}", patch(change_client).delete(delete_client))
        .route("/api/v1/accounts/{domain}/api-clients/{name}/rotate-secret", post(rotate_client_secret))
        .route("/api/v1/accounts/{domain}/access-tokens", get(list_access_tokens))
        .route("/api/v1/access-tokens", get(list_operator_tokens))
        .route("/api/v1/access-tokens/revoke", post(revoke_access_token))
        .route("/api/v1/accounts/{domain}/virtual-accounts/{va}/licenses", get(list_licenses).post(add_license))
        .route("/api/v1/accounts/{domain}/virtual-accounts/{va}/licenses/transfer", post(transfer_licenses))
        .route("/api/v1/accounts/{domain}/virtual-accounts/{va}/tokens", get(list_tokens).post(create_token))
        .route("/api/v1/accounts/{domain}/virtual-accounts/{va}/tokens/revoke", post(revoke_token))
        .route(
            "/api/v1/accounts/{domain}/virtual-accounts/{va}/reservations",
            get(list_pool_reservations).post(create_reservation),
        )
        .route("/api/v1/accounts/{domain}/virtual-accounts/{va}/reservations/return", post(return_reservation))
        .route("/api/v1/accounts/{domain}/reservations", get(list_account_reservations))
        .route("/api/v1/accounts/{domain}/virtual-accounts/{va}/instances", get(list_pool_instances))
        .route("/api/v1/accounts/{domain}/instances", get(list_account_instances))
        .route("/api/v1/accounts/{domain}/instances/{id}", get(show_instance).delete(remove_instance))
        .route("/api/v1/accounts/{domain}/instances/{id}/move", post(move_instance))
        .route("/api/v1/accounts/{domain}/events", get(account_events))
        .route("/api/v1/events", get(all_events))
        .route("/api/v1/accounts/{domain}/alerts", get(list_alerts))
        .route("/api/v1/accounts/{domain}/reports/usage", get(usage_report))
        .route("/api/v1/accounts/{domain}/reports/instances", get(instances_report))
        .route("/api/v1/clock", get(show_clock).post(set_clock))
        .route("/api/v1/check", get(check_counters))
        .route("/api/v1/check/repair", post(repair_counters))
        .route("/api/v1/catalog", get(catalog))
}

/// The smart account of a request. A caller with no role in it hears exactly what it would
/// for an account that does not exist: other tenants' domains and pools do not leak.
pub(crate) async fn load_account(state: &AppState, caller: &Caller, domain: &str) -> ApiResult<Account> {
    let domain = domain.to_ascii_lowercase();
    state.store.account(&domain).await?.filter(|a| caller.has_role_in(a)).ok_or_else(|| {
        ApiError::not_found(format!("smart account '{domain}' does not exist or you have no role in it"))
            .with_field("domain")
    })
}

pub(crate) async fn load_va(state: &AppState, account: &Account, name: &str) -> ApiResult<VirtualAccount> {
    state.store.virtual_account(account.id, name).await?.ok_or_else(|| {
        ApiError::not_found(format!("virtual account '{name}' does not exist in {}", account.domain))
            .with_field("virtual_account")
    })
}

/// Account and pool of a request, with the caller's right to `action` in that pool checked.
pub(crate) async fn pool_for(
    state: &AppState,
    caller: &Caller,
    domain: &str,
    va: &str,
    action: Action,
) -> ApiResult<(Account, VirtualAccount)> {
    let account = load_account(state, caller, domain).await?;
    let pool = load_va(state, &account, va).await?;
    caller.require(action, &account, Some(&pool))?;
    Ok((account, pool))
}

/// `?limit=&offset=` (or `cursor=`) of the listings built in memory: pages of
/// [`PAGE_DEFAULT`] items, at most [`PAGE_MAX`].
#[derive(Deserialize)]
pub(crate) struct Page {
    limit: Option<usize>,
    offset: Option<usize>,
    cursor: Option<String>,
}

const PAGE_DEFAULT: usize = 100;
const PAGE_MAX: usize = 1000;

/// `limit`, or [`PAGE_DEFAULT`], checked to be at most `max`.
fn page_limit(limit: Option<usize>, max: usize) -> ApiResult<usize> {
    let limit = limit.unwrap_or(PAGE_DEFAULT);
    if !(1..=max).contains(&limit) {
        return Err(ApiError::invalid("limit", format!("must be between 1 and {max}, got {limit}")));
    }
    Ok(limit)
}

impl Page {
    /// (offset, limit), the limit checked; the offset given or the cursor's.
    fn bounds(&self) -> ApiResult<(usize, usize)> {
        let limit = page_limit(self.limit, PAGE_MAX)?;
        let offset = match (&self.cursor, self.offset) {
            (Some(_), Some(_)) => return Err(ApiError::invalid("cursor", "give `cursor` or `offset`, not both")),
            (Some(c), None) => crate::cursor::decode::<crate::cursor::OffsetCursor>(c)?.offset,
            (None, offset) => offset.unwrap_or(0),
        };
        Ok((offset, limit))
    }

    /// This page of `items` under `key`, with `next` (the cursor of the next page) and
    /// `next_offset` (its `offset`), both null after the last page.
    pub(crate) fn answer<T: serde::Serialize>(&self, key: &str, items: Vec<T>) -> ApiResult<Json<Value>> {
        let (offset, limit) = self.bounds()?;
        let end = offset.saturating_add(limit);
        let next = (items.len() > end).then_some(end);
        let cursor = next.map(|offset| crate::cursor::encode(&crate::cursor::OffsetCursor { offset }));
        let page: Vec<T> = items.into_iter().skip(offset).take(limit).collect();
        Ok(Json(json!({ key: page, "next": cursor, "next_offset": next })))
    }
}

/// `?limit=&cursor=` of the listings paged by keyset (instances, up to [`INSTANCE_PAGE_MAX`]
/// a page; events): an offset would make a page deep in a large pool or a long event log walk
/// every item before it, so one is refused, naming the parameter, rather than ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CursorPage {
    limit: Option<usize>,
    cursor: Option<String>,
}

/// Instances an instance listing's page holds at most: a page is read and answered whole, and
/// its memory (about 1 KB an instance) does not grow with the listing.
const INSTANCE_PAGE_MAX: usize = 10_000;

pub(crate) fn created<T: serde::Serialize>(value: T) -> Response {
    (StatusCode::CREATED, Json(value)).into_response()
}

// ---- accounts and virtual accounts -------------------------------------------------------

#[utoipa::path(
    get,
    path = "/api/v1/accounts",
    operation_id = "list_accounts",
    tag = "smartlic",
    summary = "List smart accounts (all for the operator, else the caller's own)",
    params(crate::openapi::PageParams),
    responses(
        (status = 200, description = "a page of smart accounts", body = crate::openapi::AccountPage),
    )
)]
async fn list_accounts(
    State(state): State<AppState>,
    caller: Caller,
    Query(page): Query<Page>,
) -> ApiResult<Json<Value>> {
    let accounts: Vec<AccountView> = state
        .store
        .accounts()
        .await?
        .iter()
        .filter(|a| caller.role() == Role::Operator || caller.0.account_id == Some(a.id))
        .map(AccountView::from)
        .collect();
    page.answer("accounts", accounts)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewAccountBody {
    /// The smart account's domain name, like example.com (stored in lower case).
    #[schema(
        min_length = 1,
        max_length = 253,
        pattern = r"^\s*[A-Za-z0-9-][A-Za-z0-9.-]*\.[A-Za-z0-9.-]*[A-Za-z0-9-]\s*$"
    )]
    domain: String,
    /// A name shown to people (the domain when absent).
    #[schema(max_length = 128)]
    name: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/accounts",
    operation_id = "create_account",
    tag = "smartlic",
    summary = "Create a smart account (operator)",
    request_body = NewAccountBody,
    responses(
        (status = 201, description = "created", body = crate::views::AccountView),
        (status = 403, description = "FORBIDDEN: only the operator creates smart accounts"),
        (status = 409, description = "CONFLICT: the domain is taken, or this manager is a satellite"),
    )
)]
async fn create_account(
    State(state): State<AppState>,
    caller: Caller,
    Body(b): Body<NewAccountBody>,
) -> ApiResult<Response> {
    caller.require_operator("create smart accounts")?;
    let what = "creating smart accounts (a local account brings its own once approved)";
    crate::satellite::refuse_on_satellite(&state, what)?;
    let domain = validate::domain(&b.domain)?;
    let name = validate::text("name", b.name.as_deref().unwrap_or(&domain), validate::MAX_NAME)?;
    let account = state.store.create_account(&domain, &name, caller.login(), state.clock.now()).await?;
    Ok(created(AccountView::from(&account)))
}

#[utoipa::path(
    get,
    path = "/api/v1/accounts/{domain}",
    operation_id = "show_account",
    tag = "smartlic",
    summary = "Show a smart account",
    params(crate::openapi::AccountPath),
    responses(
        (status = 200, description = "the smart account", body = crate::views::AccountView),
        (status = 403, description = "FORBIDDEN: the caller's role may not view the whole account"),
        (status = 404, description = "NOT_FOUND: the smart account does not exist or the caller has no role in it"),
    )
)]
async fn show_account(
    State(state): State<AppState>,
    caller: Caller,
    Path(domain): Path<String>,
) -> ApiResult<Json<AccountView>> {
    let account = load_account(&state, &caller, &domain).await?;
    caller.require_account_view(&account)?;
    Ok(Json(AccountView::from(&account)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccountChange {
    #[serde(alias = "universalReservation")]
    pub(crate) universal_reservation: bool,
}

/// Allows or forbids universal reservations for the account's devices (operator only).
#[utoipa::path(
    patch,
    path = "/api/v1/accounts/{domain}",
    operation_id = "update_account",
    tag = "smartlic",
    summary = "Allow or forbid universal reservations (operator)",
    params(crate::openapi::AccountPath),
    request_body = AccountChange,
    responses(
        (status = 200, description = "the smart account changed", body = crate::views::AccountView),
        (status = 403, description = "FORBIDDEN: only the operator"),
        (status = 404, description = "NOT_FOUND: the smart account does not exist or the caller has no role in it"),
    )
)]
pub(crate) async fn update_account(
    State(state): State<AppState>,
    caller: Caller,
    Path(domain): Path<String>,
    Body(b): Body<AccountChange>,
) -> ApiResult<Json<AccountView>> {
    caller.require_operator("allow or forbid universal reservations")?;
    let account = load_account(&state, &caller, &domain).await?;
    let changed = state
        .store
        .set_universal_reservation(account.id, b.universal_reservation, caller.login(), state.clock.now())
        .await?;
    Ok(Json(AccountView::from(&changed)))
}

#[utoipa::path(
    get,
    path = "/api/v1/accounts/{domain}/virtual-accounts",
    operation_id = "list_virtual_accounts",
    tag = "smartlic",
    summary = "List virtual accounts",
    params(crate::openapi::AccountPath, crate::openapi::PageParams),
    responses(
        (status = 200, description = "a page of virtual accounts", body = crate::openapi::VirtualAccountPage),
        (status = 403, description = "FORBIDDEN: the caller's role may not view the whole account"),
        (status = 404, description = "NOT_FOUND: the smart account does not exist or the caller has no role in it"),
    )
)]
async fn list_vas(
    State(state): State<AppState>,
    caller: Caller,
    Path(domain): Path<String>,
    Query(page): Query<Page>,
) -> ApiResult<Json<Value>> {
    let account = load_account(&state, &caller, &domain).await?;
    caller.require_account_view(&account)?;
    let vas: Vec<VirtualAccountView> = state
        .store
        .virtual_accounts(account.id)
        .await?
        .iter()
        .filter(|v| caller.sees(&account, v.id))
        .map(VirtualAccountView::from)
        .collect();
    page.answer("virtual_accounts", vas)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewVaBody {
    #[schema(min_length = 1, max_length = 128)]
    pub(crate) name: String,
    #[schema(max_length = 512)]
    pub(crate) description: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/accounts/{domain}/virtual-accounts",
    operation_id = "create_virtual_account",
    tag = "smartlic",
    summary = "Create a virtual account",
    params(crate::openapi::AccountPath),
    request_body = NewVaBody,
    responses(
        (status = 201, description = "created", body = crate::views::VirtualAccountView),
        (status = 403, description = "FORBIDDEN: the caller may not manage virtual accounts"),
        (status = 404, description = "NOT_FOUND: the smart account does not exist or the caller has no role in it"),
        (status = 409, description = "CONFLICT: the name is taken in the account"),
    )
)]
pub(crate) async fn create_va(
    State(state): State<AppState>,
    caller: Caller,
    Path(domain): Path<String>,
    Body(b): Body<NewVaBody>,
) -> ApiResult<Response> {
    let account = load_account(&state, &caller, &domain).await?;
    caller.require(Action::ManageVirtualAccounts, &account, None)?;
    let name = validate::text("name", &b.name, validate::MAX_NAME)?;
    let description =
        validate::optional_text("description", b.description.as_deref().unwrap_or(""), validate::MAX_DESCRIPTION)?;
    let va =
        state.store.create_virtual_account(&account, &name, &description, caller.login(), state.clock.now()).await?;
    Ok(created(VirtualAccountView::from(&va)))
}

/// Deletes an empty virtual account; the store refuses one that still holds anything, naming what.
#[utoipa::path(
    delete,
    path = "/api/v1/accounts/{domain}/virtual-accounts/{va}",
    operation_id = "delete_virtual_account",
    tag = "smartlic",
    summary = "Delete an empty virtual account",
    params(crate::openapi::PoolPath),
    responses(
        (status = 200, description = "deleted", body = crate::openapi::DeletedPool),
        (status = 403, description = "FORBIDDEN: the caller may not manage virtual accounts"),
        (status = 404, description = "NOT_FOUND: the smart account or the virtual account does not exist, or the caller has no role in it"),
        (status = 409, description = "CONFLICT: the virtual account still holds licenses, instances, tokens or reservations (named), or is the default one"),
    )
)]
pub(crate) async fn delete_va(
    State(state): State<AppState>,
    caller: Caller,
    Path((domain, va)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (_, pool) = pool_for(&state, &caller, &domain, &va, Action::ManageVirtualAccounts).await?;
    crate::satellite::refuse_deleting_served(&state, &pool).await?;
    let gone = state.store.delete_virtual_account(pool.id, caller.login(), state.clock.now()).await?;
    Ok(Json(json!({ "deleted": gone.name })))
}

// ---- users and API clients ---------------------------------------------------------------

async fn principals_of(
    state: &AppState,
    caller: &Caller,
    domain: &str,
    kind: PrincipalKind,
) -> ApiResult<Vec<PrincipalView>> {
    let account = load_account(state, caller, domain).await?;
    caller.require_account_view(&account)?;
    let vas = state.store.virtual_accounts(account.id).await?;
    Ok(state
        .store
        .principals(Some(account.id))
        .await?
        .iter()
        .filter(|p| p.kind == kind)
        .filter(|p| p.virtual_account_id.is_none_or(|v| caller.sees(&account, v)))
        .map(|p| PrincipalView::new(p, Some(&account), vas.iter().find(|v| Some(v.id) == p.virtual_account_id)))
        .collect())
}

#[utoipa::path(
    get,
    path = "/api/v1/accounts/{domain}/users",
    operation_id = "list_users",
    tag = "smartlic",
    summary = "List users (login name@domain, status)",
    params(crate::openapi::AccountPath, crate::openapi::PageParams),
    responses(
        (status = 200, description = "a page of users", body = crate::openapi::UserPage),
        (status = 403, description = "FORBIDDEN: the caller's role may not view the whole account"),
        (status = 404, description = "NOT_FOUND: the smart account does not exist or the caller has no role in it"),
    )
)]
async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
    Path(domain): Path<String>,
    Query(page): Query<Page>,
) -> ApiResult<Json<Value>> {
    let users = principals_of(&state, &caller, &domain, PrincipalKind::User).await?;
    page.answer("users", users)
}

#[utoipa::path(
    get,
    path = "/api/v1/accounts/{domain}/api-clients",
    operation_id = "list_api_clients",
    tag = "smartlic",
    summary = "List API clients (generated client ID, status)",
    params(crate::openapi::AccountPath, crate::openapi::PageParams),
    responses(
        (status = 200, description = "a page of API clients", body = crate::openapi::ApiClientPage),
        (status = 403, description = "FORBIDDEN: the caller's role may not view the whole account"),
        (status = 404, description = "NOT_FOUND: the smart account does not exist or the caller has no role in it"),
    )
)]
async fn list_clients(
    State(state): State<AppState>,
    caller: Caller,
    Path(domain): Path<String>,
    Query(page): Query<Page>,
) -> ApiResult<Json<Value>> {
    let clients = principals_of(&state, &caller, &domain, PrincipalKind::ApiClient).await?;
    page.answer("api_clients", clients)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewPrincipalBody {
    /// A user's name (required, no '@': the login is name@domain); an API client's (its client ID when absent).
    #[serde(alias = "username")]
    #[schema(max_length = 128)]
    pub(crate) name: Option<String>,
    /// A role other than operator (see docs/API.md).
    #[schema(pattern = r"^\s*(smart-account-admin|smart-account-user|virtual-account-admin|virtual-account-user)\s*$")]
    pub(crate) role: String,
    /// The virtual account a virtual-account role is bound to.
    pub(crate) virtual_account: Option<String>,
    /// A user's password (API clients get a generated secret).
    #[schema(min_length = 12)]
    pub(crate) password: Option<String>,
}

/// A password or secret long enough to keep, as its Argon2 hash (off the async workers).
async fn secret_hash(state: &AppState, secret: String) -> ApiResult<String> {
    if secret.len() < 12 {
        return Err(ApiError::invalid("password", "must be at least 12 characters"));
    }
    state.hashing.hash(secret).await
}

/// Creates a user or API client after checking the caller may grant that role in that scope.
pub(crate) async fn grant(
    state: &AppState,
    caller: &Caller,
    domain: &str,
    kind: PrincipalKind,
    b: NewPrincipalBody,
    secret: Option<String>,
) -> ApiResult<(Principal, Account, Option<VirtualAccount>)> {
    let account = load_account(state, caller, domain).await?;
    let role = Role::parse(&b.role).ok_or_else(|| {
        let all: Vec<_> = Role::ALL.iter().skip(1).map(|r| r.as_str()).collect();
        ApiError::invalid("role", format!("'{}' is not a role; use one of {}", b.role, all.join(", ")))
    })?;
    if role == Role::Operator {
        return Err(ApiError::invalid("role", "the operator role is not granted through the API"));
    }
    let va = match (&b.virtual_account, role.is_virtual_account_scoped()) {
        (Some(name), true) => Some(load_va(state, &account, name).await?),
        (None, true) => {
            return Err(ApiError::invalid("virtual_account", format!("role {} needs a virtual account", role.as_str())))
        }
        (Some(_), false) => {
            return Err(ApiError::invalid(
                "virtual_account",
                format!("role {} covers the whole smart account", role.as_str()),
            ))
        }
        (None, false) => None,
    };
    caller.require(Action::ManageAccess, &account, va.as_ref())?;
    if !caller.role().may_grant(role) {
        return Err(ApiError::forbidden(format!(
            "{} may not grant the role {}",
            caller.role().as_str(),
            role.as_str()
        )));
    }
    // A user logs in as name@domain; an API client with its generated client ID, which uses
    // URL-safe characters only so that unencoded form bodies still work.
    let (name, login) = match (kind, b.name) {
        (PrincipalKind::User, Some(n)) => {
            let n = validate::text("username", &n, validate::MAX_NAME)?;
            if n.contains('@') {
                return Err(ApiError::invalid("username", "a user name has no '@' (the login is name@domain)"));
            }
            let login = login_of(&n, Some(&account));
            (n, login)
        }
        (PrincipalKind::User, None) => return Err(ApiError::invalid("username", "is required")),
        (PrincipalKind::ApiClient, n) => {
            let client_id = format!("client-{}", random_text(12));
            let name = n.as_deref().map(|n| validate::text("name", n, validate::MAX_NAME)).transpose()?;
            (name.unwrap_or_else(|| client_id.clone()), client_id)
        }
    };
    let secret_hash = match secret.or(b.password) {
        Some(s) => Some(secret_hash(state, s).await?),
        None => None,
    };
    let new = NewPrincipal {
        kind,
        name,
        login,
        secret_hash,
        role,
        account_id: Some(account.id),
        virtual_account_id: va.as_ref().map(|v| v.id),
    };
    let p = state.store.create_principal(new, caller.login(), state.clock.now()).await?;
    Ok((p, account, va))
}

#[utoipa::path(
    post,
    path = "/api/v1/accounts/{domain}/users",
    operation_id = "create_user",
    tag = "smartlic",
    summary = "Create a user with a role (name unique in the account)",
    params(crate::openapi::AccountPath),
    request_body = NewPrincipalBody,
    responses(
        (status = 201, description = "created", body = crate::views::PrincipalView),
        (status = 403, description = "FORBIDDEN: the caller may not grant this role in this scope"),
        (status = 404, description = "NOT_FOUND: the smart account does not exist or the caller has no role in it, or the named virtual account does not exist"),
        (status = 409, description = "CONFLICT: the name is taken in the account"),
    )
)]
async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(domain): Path<String>,
    Body(b): Body<NewPrincipalBody>,
) -> ApiResult<Response> {
    let (p, account, va) = grant(&state, &caller, &domain, PrincipalKind::User, b, None).await?;
    Ok(created(PrincipalView::new(&p, Some(&account), va.as_ref())))
}

/// An API client's view with its client ID and its secret, shown this once.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct ClientWithSecret {
    #[serde(flatten)]
    view: PrincipalView,
    client_id: String,
    pub(crate) client_secret: String,
}

fn client_with_secret(p: &Principal, account: &Account, va: Option<&VirtualAccount>, secret: &str) -> ClientWithSecret {
    let view = PrincipalView::new(p, Some(account), va);
    ClientWithSecret { view, client_id: p.login.clone(), client_secret: secret.to_string() }
}

#[utoipa::path(
    post,
    path = "/api/v1/accounts/{domain}/api-clients",
    operation_id = "create_api_client",
    tag = "smartlic",
    summary = "Create an API client (client ID generated, secret shown once)",
    params(crate::openapi::AccountPath),
    request_body = NewPrincipalBody,
    responses(
        (status = 201, description = "created, with its secret shown this once", body = ClientWithSecret),
        (status = 403, description = "FORBIDDEN: the caller may not grant this role in this scope"),
        (status = 404, description = "NOT_FOUND: the smart account does not exist or the caller has no role in it, or the named virtual account does not exist"),
        (status = 409, description = "CONFLICT: the name is taken in the account"),
    )
)]
async fn create_client(
    State(state): State<AppState>,
    caller: Caller,
    Path(domain): Path<String>,
    Body(b): Body<NewPrincipalBody>,
) -> ApiResult<Response> {
    if b.password.is_some() {
        return Err(ApiError::invalid("password", "API clients get a generated secret"));
    }
    let secret = random_text(32);
    let (p, account, va) = grant(&state, &caller, &domain, PrincipalKind::ApiClient, b, Some(secret.clone())).await?;
    Ok(created(client_with_secret(&p, &account, va.as_ref(), &secret)))
}

/// A user or API client of the account, named as listed, that the caller may manage: the right
/// to manage access in its scope and to grant its role. With `own_ok`, a principal may also
/// act on itself (change its own password).
async fn managed(
    state: &AppState,
    caller: &Caller,
    domain: &str,
    kind: PrincipalKind,
    name: &str,
    own_ok: bool,
) -> ApiResult<(Account, Option<VirtualAccount>, Principal)> {
    let account = load_account(state, caller, domain).await?;
    let p = state.store.principal_named(account.id, kind, name).await?.ok_or_else(|| {
        ApiError::not_found(format!("{} '{name}' does not exist in {}", kind.as_str(), account.domain))
            .with_field("name")
    })?;
    let va = pool_of(state, &p).await?;
    if !(own_ok && p.id == caller.0.id) {
        caller.require_manage(&account, va.as_ref(), &p)?;
    }
    Ok((account, va, p))
}

/// The virtual account a principal's role is bound to, if any.
async fn pool_of(state: &AppState, p: &Principal) -> ApiResult<Option<VirtualAccount>> {
    Ok(match p.virtual_account_id {
        Some(v) => state.store.virtual_account_by_id(v).await?,
        None => None,
    })
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PrincipalChange {
    pub(crate) disabled: Option<bool>,
    /// A user's new password (users may change their own).
    #[schema(min_length = 12)]
    pub(crate) password: Option<String>,
}

/// Disables or enables a principal, or sets a user's new password; either revokes its live
/// access tokens at once.
async fn change_principal(
    state: &AppState,
    caller: &Caller,
    domain: &str,
    kind: PrincipalKind,
    name: &str,
    b: PrincipalChange,
) -> ApiResult<Json<PrincipalView>> {
    let own_ok = b.disabled.is_none();
    let (account, va, p) = managed(state, caller, domain, kind, name, own_ok).await?;
    let now = state.clock.now();
    let changed = match (b.disabled, b.password) {
        (None, None) => return Err(ApiError::invalid("disabled", "give disabled (true or false) or password")),
        (Some(_), Some(_)) => return Err(ApiError::invalid("password", "change the password in a request of its own")),
        (None, Some(_)) if kind == PrincipalKind::ApiClient => {
            return Err(ApiError::invalid("password", "API clients get a generated secret: rotate it instead"))
        }
        (None, Some(password)) => {
            let hash = secret_hash(state, password).await?;
            state.store.set_principal_secret(p.id, &hash, caller.login(), now).await?
        }
        (Some(disabled), None) => state.store.set_principal_disabled(p.id, disabled, caller.login(), now).await?,
    };
    Ok(Json(PrincipalView::new(&changed, Some(&account), va.as_ref())))
}

#[utoipa::path(
    patch,
    path = "/api/v1/accounts/{domain}/users/{name}",
    operation_id = "change_user",
    tag = "smartlic",
    summary = "Disable or enable a user, or set its password (a user may set its own); revokes its access tokens",
    params(crate::openapi::PrincipalPath),
    request_body = PrincipalChange,
    responses(
        (status = 200, description = "the user changed", body = crate::views::PrincipalView),
        (status = 403, description = "FORBIDDEN: the caller may not manage this user"),
        (status = 404, description = "NOT_FOUND: no such user in the account"),
    )
)]
pub(crate) async fn change_user(
    State(state): State<AppState>,
    caller: Caller,
    Path((domain, name)): Path<(String, String)>,
    Body(b): Body<PrincipalChange>,
) -> ApiResult<Json<PrincipalView>> {
    change_principal(&state, &caller, &domain, PrincipalKind::User, &name, b).await
}

#[utoipa::path(
    patch,
    path = "/api/v1/accounts/{domain}/api-clients/{name}",
    operation_id = "change_api_client",
    tag = "smartlic",
    summary = "Disable or enable an API client; disabling revokes its access tokens",
    params(crate::openapi::PrincipalPath),
    request_body = PrincipalChange,
    responses(
        (status = 200, description = "the API client changed", body = crate::views::PrincipalView),
        (status = 403, description = "FORBIDDEN: the caller may not manage this API client"),
        (status = 404, description = "NOT_FOUND: no such API client in the account"),
    )
)]
pub(crate) async fn change_client(
    State(state): State<AppState>,
    caller: Caller,
    Path((domain, name)): Path<(String, String)>,
    Body(b): Body<PrincipalChange>,
) -> ApiResult<Json<PrincipalView>> {
    change_principal(&state, &caller, &domain, PrincipalKind::ApiClient, &name, b).await
}

async fn delete_principal(
    state: &AppState,
    caller: &Caller,
    domain: &str,
    kind: PrincipalKind,
    name: &str,
) -> ApiResult<Json<Value>> {
    let (_, _, p) = managed(state, caller, domain, kind, name, false).await?;
    let gone = state.store.delete_principal(p.id, caller.login(), state.clock.now()).await?;
    Ok(Json(json!({ "deleted": gone.name, "login": gone.login })))
}

#[utoipa::path(
    delete,
    path = "/api/v1/accounts/{domain}/users/{name}",
    operation_id = "delete_user",
    tag = "smartlic",
    summary = "Delete a user; its access tokens end at once",
    params(crate::openapi::PrincipalPath),
    responses(
        (status = 200, description = "deleted", body = crate::openapi::DeletedPrincipal),
        (status = 403, description = "FORBIDDEN: the caller may not manage this user"),
        (status = 404, description = "NOT_FOUND: no such user in the account"),
        (status = 409, description = "CONFLICT: the user may not be deleted (named why)"),
    )
)]
pub(crate) async fn delete_user(
    State(state): State<AppState>,
    caller: Caller,
    Path((domain, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    delete_principal(&state, &caller, &domain, PrincipalKind::User, &name).await
}

#[utoipa::path(
    delete,
    path = "/api/v1/accounts/{domain}/api-clients/{name}",
    operation_id = "delete_api_client",
    tag = "smartlic",
    summary = "Delete an API client; its access tokens end at once",
    params(crate::openapi::PrincipalPath),
    responses(
        (status = 200, description = "deleted", body = crate::openapi::DeletedPrincipal),
        (status = 403, description = "FORBIDDEN: the caller may not manage this API client"),
        (status = 404, description = "NOT_FOUND: no such API client in the account"),
        (status = 409, description = "CONFLICT: the API client may not be deleted (named why)"),
    )
)]
pub(crate) async fn delete_client(
    State(state): State<AppState>,
    caller: Caller,
    Path((domain, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    delete_principal(&state, &caller, &domain, PrincipalKind::ApiClient, &name).await
}

/// Gives an API client a new generated secret, shown this once; the old one and every live
/// access token of the client stop working at once.
#[utoipa::path(
    post,
    path = "/api/v1/accounts/{domain}/api-clients/{name}/rotate-secret",
    operation_id = "rotate_api_client_secret",
    tag = "smartlic",
    summary = "Give an API client a new secret (shown once); the old one and its access tokens end at once",
    params(crate::openapi::PrincipalPath),
    responses(
        (status = 200, description = "the new secret, shown this once", body = ClientWithSecret),
        (status = 403, description = "FORBIDDEN: the caller may not manage this API client"),
        (status = 404, description = "NOT_FOUND: no such API client in the account"),
    )
)]
pub(crate) async fn rotate_client_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path((domain, name)): Path<(String, String)>,
) -> ApiResult<Json<ClientWithSecret>> {
    let (account, va, p) = managed(&state, &caller, &domain, PrincipalKind::ApiClient, &name, false).await?;
    let secret = random_text(32);
    let hash = state.hashing.hash(secret.clone()).await?;
    let rotated = state.store.set_principal_secret(p.id, &hash, caller.login(), state.clock.now()).await?;
    Ok(Json(client_with_secret(&rotated, &account, va.as_ref(), &secret)))
}

// ---- access tokens -----------------------------------------------------------------------

/// Live access tokens of the account's users and API clients (smart-account admins).
#[utoipa::path(
    get,
    path = "/api/v1/accounts/{domain}/access-tokens",
    operation_id = "list_account_access_tokens",
    tag = "smartlic",
    summary = "Live access tokens of the account (id and prefix only)",
    params(crate::openapi::AccountPath, crate::openapi::PageParams),
    responses(
        (status = 200, description = "a page of access tokens", body = crate::openapi::AccessTokenPage),
        (status = 403, description = "FORBIDDEN: the caller may not manage access in the account"),
        (status = 404, description = "NOT_FOUND: the smart account does not exist or the caller has no role in it"),
    )
)]
async fn list_access_tokens(
    State(state): State<AppState>,
    caller: Caller,
    Path(domain): Path<String>,
    Query(page): Query<Page>,
) -> ApiResult<Json<Value>> {
    let account = load_account(&state, &caller, &domain).await?;
    caller.require(Action::ManageAccess, &account, None)?;
    access_tokens_json(&state, AccessTokenFilter::Account(account.id), Some(account.id), page).await
}

/// Live access tokens of the operators (operator only).
#[utoipa::path(
    get,
    path = "/api/v1/access-tokens",
    operation_id = "list_operator_access_tokens",
    tag = "smartlic",
    summary = "Live access tokens of the operators (operator)",
    params(crate::openapi::PageParams),
    responses(
        (status = 200, description = "a page of access tokens", body = crate::openapi::AccessTokenPage),
        (status = 403, description = "FORBIDDEN: only the operator"),
    )
)]
async fn list_operator_tokens(
    State(state): State<AppState>,
    caller: Caller,
    Query(page): Query<Page>,
) -> ApiResult<Json<Value>> {
    caller.require_operator("list the operators' access tokens")?;
    access_tokens_json(&state, AccessTokenFilter::Operators, None, page).await
}

/// A page of `{"access_tokens": [...]}` for the tokens of `filter`, held by principals of `account_id`.
async fn access_tokens_json(
    state: &AppState,
    filter: AccessTokenFilter,
    account_id: Option<i64>,
    page: Page,
) -> ApiResult<Json<Value>> {
    let holders: Vec<Principal> =
        state.store.principals(account_id).await?.into_iter().filter(|p| p.account_id == account_id).collect();
    let tokens: Vec<AccessTokenView> = state
        .store
        .access_tokens(filter, state.clock.now())
        .await?
        .iter()
        .filter_map(|t| Some(AccessTokenView::new(t, holders.iter().find(|p| p.id == t.principal_id)?)))
        .collect();
    page.answer("access_tokens", tokens)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct AccessTokenRevoke {
    /// The token itself.
    token: Option<String>,
    /// Its id, as listed.
    id: Option<i64>,
}

/// Ends a live access token at once: one's own (logging out), or one of a principal the caller
/// manages. Any other token is answered as unknown.
#[utoipa::path(
    post,
    path = "/api/v1/access-tokens/revoke",
    operation_id = "revoke_access_token",
    tag = "smartlic",
    summary = "End an access token at once, by value or id: one's own, or one of a principal one manages",
    request_body = AccessTokenRevoke,
    responses(
        (status = 200, description = "the token ended", body = crate::openapi::RevokedAccessToken),
        (status = 404, description = "NOT_FOUND: no live access token of the caller or of whom it manages matches"),
    )
)]
async fn revoke_access_token(
    State(state): State<AppState>,
    caller: Caller,
    Body(b): Body<AccessTokenRevoke>,
) -> ApiResult<Json<Value>> {
    let now = state.clock.now();
    let (filter, field) = match (b.token, b.id) {
        (Some(t), None) => (AccessTokenFilter::Hash(sha256_hex(t.trim())), "token"),
        (None, Some(id)) => (AccessTokenFilter::Id(id), "id"),
        _ => return Err(ApiError::invalid("token", "give either the token or its id")),
    };
    let unknown =
        || ApiError::not_found("no live access token of yours or of whom you manage matches").with_field(field);
    let found = state.store.access_tokens(filter, now).await?.pop().ok_or_else(unknown)?;
    let holder = state.store.principal_by_id(found.principal_id).await?.ok_or_else(unknown)?;
    let account = match holder.account_id {
        Some(a) => state.store.account_by_id(a).await?,
        None => None,
    };
    let allowed = holder.id == caller.0.id
        || caller.role() == Role::Operator
        || match &account {
            Some(a) => caller.require_manage(a, pool_of(&state, &holder).await?.as_ref(), &holder).is_ok(),
            None => false,
        };
    if !allowed {
        return Err(unknown());
    }
    let revoked = state.store.revoke_access_token(found.id, caller.login(), now).await?;
    Ok(Json(json!({ "revoked": AccessTokenView::new(&revoked, &holder) })))
}

// ---- licenses ----------------------------------------------------------------------------

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewLicenseBody {
    /// An entitlement tag of the catalogue (GET /api/v1/catalog).
    #[schema(min_length = 1, max_length = 128)]
    tag: String,
    #[schema(minimum = 1, maximum = 1_000_000)]
    count: i64,
    #[schema(max_length = 128)]
    sku: Option<String>,
    /// perpetual (the default), term or subscription.
    #[serde(rename = "type")]
    #[schema(pattern = r"^\s*(?i:perpetual|term|subscription)\s*$")]
    kind: Option<String>,
    /// YYYY-MM-DD or RFC 3339.
    start: Option<String>,
    /// YYYY-MM-DD or RFC 3339.
    end: Option<String>,
    #[schema(min_length = 1, max_length = 128)]
    subscription_id: Option<String>,
}

fn parse_date(field: &'static str, text: Option<&str>) -> ApiResult<Option<Timestamp>> {
    text.map(|t| {
        Timestamp::parse(t)
            .ok_or_else(|| ApiError::invalid(field, format!("'{t}' is not a date (YYYY-MM-DD or RFC 3339)")))
    })
    .transpose()
}

fn known_tag(state: &AppState, tag: &str) -> ApiResult<String> {
    let tag = validate::text("tag", tag, validate::MAX_NAME)?;
    if !state.catalog.contains(&tag) {
        return Err(ApiError::invalid(
            "tag",
            format!("'{tag}' is not an entitlement tag of the catalogue (see GET /api/v1/catalog)"),
        ));
    }
    Ok(tag)
}

#[utoipa::path(
    post,
    path = "/api/v1/accounts/{domain}/virtual-accounts/{va}/licenses",
    operation_id = "add_license",
    tag = "smartlic",
    summary = "Deposit licenses (operator)",
    params(crate::openapi::PoolPath),
    request_body = NewLicenseBody,
    responses(
        (status = 201, description = "deposited", body = crate::views::LicenseRecordView),
        (status = 403, description = "FORBIDDEN: only the operator"),
        (status = 404, description = "NOT_FOUND: the smart account or the virtual account does not exist, or the caller has no role in it"),
        (status = 409, description = "CONFLICT: the deposit conflicts with the pool (named why)"),
    )
)]
async fn add_license(
    State(state): State<AppState>,
    caller: Caller,
    Path((domain, va)): Path<(String, String)>,
    Body(b): Body<NewLicenseBody>,
) -> ApiResult<Response> {
    caller.require_operator("deposit purchased licenses")?;
    let (_, pool) = pool_for(&state, &caller, &domain, &va, Action::Operate).await?;
    let tag = known_tag(&state, &b.tag)?;
    let quantity = validate::count("count", b.count)?;
    let kind = LicenseKind::parse(b.kind.as_deref().unwrap_or("perpetual"))?;
    let term = LicenseTerm::new(kind, parse_date("start", b.start.as_deref())?, parse_date("end", b.end.as_deref())?)?;
    let sku = validate::optional_text("sku", b.sku.as_deref().unwrap_or(""), validate::MAX_NAME)?;
    let subscription_id =
        b.subscription_id.as_deref().map(|s| validate::text("subscription_id", s, validate::MAX_NAME)).transpose()?;
    let new = NewLicense { virtual_account_id: pool.id, tag, sku, quantity, term, subscription_id };
    let now = state.clock.now();
    let record = state.store.add_license(new, caller.login(), now).await?;
    Ok(created(LicenseRecordView::new(&record, now)))
}

pub(crate) async fn ledger_of(state: &AppState, pool: &VirtualAccount, now: Timestamp) -> ApiResult<Ledger> {
    Ok(state.store.pool_counts(pool.id, now).await?.ledger(&state.catalog))
}

#[utoipa::path(
    get,
    path = "/api/v1/accounts/{domain}/virtual-accounts/{va}/licenses",
    operation_id = "list_licenses",
    tag = "smartlic",
    summary = "Licenses of a pool with tier lending",
    params(crate::openapi::PoolPath),
    responses(
        (status = 200, description = "the pool's licenses", body = crate::views::PoolLicenses),
        (status = 403, description = "FORBIDDEN: the caller may not view the pool"),
        (status = 404, description = "NOT_FOUND: the smart account or the virtual account does not exist, or the caller has no role in it"),
    )
)]
async fn list_licenses(
    State(state): State<AppState>,
    caller: Caller,
    Path((domain, va)): Path<(String, String)>,
) -> ApiResult<Json<PoolLicenses>> {
    let (account, pool) = pool_for(&state, &caller, &domain, &va, Action::View).await?;
    let now = state.clock.now();
    let ledger = ledger_of(&state, &pool, now).await?;
    let records = state.store.licenses(pool.id).await?;
    Ok(Json(PoolLicenses::new(&state.catalog, &account, &pool, ledger, &records, now)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TransferBody {
    #[schema(min_length = 1, max_length = 128)]
    pub(crate) tag: String,
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub(crate) count: i64,
    /// The target virtual account.
    pub(crate) to: String,
    /// Only licenses of this kind: perpetual, term or subscription.
    #[serde(rename = "type")]
    #[schema(pattern = r"^\s*(?i:perpetual|term|subscription)\s*$")]
    pub(crate) kind: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/accounts/{domain}/virtual-accounts/{va}/licenses/transfer",
    operation_id = "transfer_licenses",
    tag = "smartlic",
    summary = "Transfer available licenses (not in use, reserved or lent to lower tiers) to another pool",
    params(crate::openapi::PoolPath),
    request_body = TransferBody,
    responses(
        (status = 200, description = "transferred", body = crate::openapi::Transferred),
        (status = 403, description = "FORBIDDEN: the caller may not transfer licenses from or to these pools"),
        (status = 404, description = "NOT_FOUND: the smart account or the virtual account does not exist, or the caller has no role in it, or the target pool does not exist"),
        (status = 409, description = "CONFLICT: not that many licenses are available (nothing was transferred)"),
    )
)]
pub(crate) async fn transfer_licenses(
    State(state): State<AppState>,
    caller: Caller,
    Path((domain, va)): Path<(String, String)>,
    Body(b): Body<TransferBody>,
) -> ApiResult<Json<Value>> {
    let (account, from) = pool_for(&state, &caller, &domain, &va, Action::TransferLicenses).await?;
    let to = load_va(&state, &account, &b.to).await.map_err(|e| e.with_field("to"))?;
    caller.require(Action::TransferLicenses, &account, Some(&to))?;
    if to.id == from.id {
        return Err(ApiError::invalid("to", "source and target virtual accounts are the same"));
    }
    let tag = known_tag(&state, &b.tag)?;
    let quantity = validate::count("count", b.count)?;
    let kind = b.kind.as_deref().map(LicenseKind::parse).transpose()?;
    let t = Transfer { to_virtual_account_id: to.id, tag, quantity, kind };
    transfer(&state, &caller, &from, vec![t]).await?;
    Ok(Json(json!({ "transferred": quantity, "from": from.name, "to": to.name })))
}

/// Moves every one of `items` out of `from`, or none, in one transaction; both REST
/// front-ends transfer here. Only available licenses go: not in use, not reserved, not needed
/// by what the pool lends to lower tiers ([`PoolCounts::check_transfer`], inside the transaction).
pub(crate) async fn transfer(
    state: &AppState,
    caller: &Caller,
    from: &VirtualAccount,
    items: Vec<Transfer>,
) -> ApiResult<()> {
    let (shared, pool) = (state.clone(), from.name.clone());
    let check: TransferCheck = Box::new(move |counts, outgoing| {
        counts.check_transfer(&shared.catalog, outgoing).map_err(|s| {
            format!(
                "only {} of '{}' can be transferred from virtual account '{pool}', {} requested: the rest is in \
                 use, reserved or lent to lower tiers; nothing was transferred",
                s.available, s.tag, s.requested
            )
        })
    });
    Ok(state.store.transfer_licenses(from.id, items, check, caller.login(), state.clock.now()).await?)
}

// ---- offline reservations (R-1) ----------------------------------------------------------

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewReservationBody {
    #[serde(alias = "requestCode")]
    request_code: String,
    /// Must agree with the request code when given.
    universal: Option<bool>,
    #[serde(default)]
    licenses: Vec<ReserveLine>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ReserveLine {
    tag: String,
    #[serde(alias = "quantity")]
    count: i64,
}

#[utoipa::path(
    post,
    path = "/api/v1/accounts/{domain}/virtual-accounts/{va}/reservations",
    operation_id = "create_reservation",
    tag = "smartlic",
    summary = "Reserve licenses for an offline device: request code in, signed authorization code out",
    params(crate::openapi::PoolPath),
    request_body = NewReservationBody,
    responses(
        (status = 201, description = "reserved, with the authorization code", body = crate::views::ReservationView),
        (status = 403, description = "FORBIDDEN: the caller may not reserve licenses in the pool, or universal reservations are not allowed"),
        (status = 404, description = "NOT_FOUND: the smart account or the virtual account does not exist, or the caller has no role in it"),
        (status = 409, description = "CONFLICT: not enough licenses, or the device already holds a reservation"),
    )
)]
async fn create_reservation(
    State(state): State<AppState>,
    caller: Caller,
    Path((domain, va)): Path<(String, String)>,
    Body(b): Body<NewReservationBody>,
) -> ApiResult<Response> {
    let (account, pool) = pool_for(&state, &caller, &domain, &va, Action::ReserveLicenses).await?;
    let ask = crate::reservation::Ask {
        request_code: b.request_code,
        kind: b.universal.map(|u| if u { ReservationKind::Universal } else { ReservationKind::Specific }),
        licenses: b.licenses.into_iter().map(|l| (l.tag, l.count)).collect(),
    };
    let made = crate::reservation::create(&state, &caller, &account, &pool, &[ask]).await?;
    Ok(created(ReservationView::new(&made[0], &pool.name, &state.catalog)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ReturnBody {
    #[serde(alias = "returnCode")]
    return_code: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/accounts/{domain}/virtual-accounts/{va}/reservations/return",
    operation_id = "return_reservation",
    tag = "smartlic",
    summary = "Take back reserved licenses with the device's return code",
    params(crate::openapi::PoolPath),
    request_body = ReturnBody,
    responses(
        (status = 200, description = "returned", body = crate::views::ReservationView),
        (status = 403, description = "FORBIDDEN: the caller may not reserve licenses in the pool"),
        (status = 404, description = "NOT_FOUND: the smart account or the virtual account does not exist, or the caller has no role in it, or no reservation matches the code"),
        (status = 409, description = "CONFLICT: the reservation was already returned"),
    )
)]
async fn return_reservation(
    State(state): State<AppState>,
    caller: Caller,
    Path((domain, va)): Path<(String, String)>,
    Body(b): Body<ReturnBody>,
) -> ApiResult<Json<ReservationView>> {
    let (account, pool) = pool_for(&state, &caller, &domain, &va, Action::ReserveLicenses).await?;
    let back = crate::reservation::give_back(&state, &caller, &account, &pool, &b.return_code, None).await?;
    Ok(Json(ReservationView::new(&back, &pool.name, &state.catalog)))
}

#[utoipa::path(
    get,
    path = "/api/v1/accounts/{domain}/virtual-accounts/{va}/reservations",
    operation_id = "list_pool_reservations",
    tag = "smartlic",
    summary = "Offline reservations of a pool",
    params(crate::openapi::PoolPath, crate::openapi::PageParams),
    responses(
        (status = 200, description = "a page of reservations", body = crate::openapi::ReservationPage),
        (status = 403, description = "FORBIDDEN: the caller may not view the pool"),
        (status = 404, description = "NOT_FOUND: the smart account or the virtual account does not exist, or the caller has no role in it"),
    )
)]
async fn list_pool_reservations(
    State(state): State<AppState>,
    caller: Caller,
    Path((domain, va)): Path<(String, String)>,
    Query(page): Query<Page>,
) -> ApiResult<Json<Value>> {
    let (_, pool) = pool_for(&state, &caller, &domain, &va, Action::View).await?;
    let found = state.store.reservations(ReservationFilter::VirtualAccount(pool.id)).await?;
    let views: Vec<ReservationView> =
        found.iter().map(|r| ReservationView::new(r, &pool.name, &state.catalog)).collect();
    page.answer("reservations", views)
}

#[utoipa::path(
    get,
    path = "/api/v1/accounts/{domain}/reservations",
    operation_id = "list_account_reservations",
    tag = "smartlic",
    summary = "Offline reservations of an account",
    params(crate::openapi::AccountPath, crate::openapi::PageParams),
    responses(
        (status = 200, description = "a page of reservations", body = crate::openapi::ReservationPage),
        (status = 403, description = "FORBIDDEN: the caller's role may not view the whole account"),
        (status = 404, description = "NOT_FOUND: the smart account does not exist or the caller has no role in it"),
    )
)]
async fn list_account_reservations(
    State(state): State<AppState>,
    caller: Caller,
    Path(domain): Path<String>,
    Query(page): Query<Page>,
) -> ApiResult<Json<Value>> {
    let account = load_account(&state, &caller, &domain).await?;
    caller.require_account_view(&account)?;
    let vas = state.store.virtual_accounts(account.id).await?;
    let views: Vec<ReservationView> = state
        .store
        .reservations(ReservationFilter::Account(account.id))
        .await?
        .iter()
        .filter(|r| caller.sees(&account, r.virtual_account_id))
        .filter_map(|r| {
            let va = vas.iter().find(|v| v.id == r.virtual_account_id)?;
            Some(ReservationView::new(r, &va.name, &state.catalog))
        })
        .collect();
    page.answer("reservations", views)
}

// ---- registration tokens -----------------------------------------------------------------

#[utoipa::path(
    get,
    path = "/api/v1/accounts/{domain}/virtual-accounts/{va}/tokens",
    operation_id = "list_registration_tokens",
    tag = "smartlic",
    summary = "List registration tokens (by prefix)",
    params(crate::openapi::PoolPath, crate::openapi::PageParams),
    responses(
        (status = 200, description = "a page of registration tokens", body = crate::openapi::TokenPage),
        (status = 403, description = "FORBIDDEN: the caller may not view the pool"),
        (status = 404, description = "NOT_FOUND: the smart account or the virtual account does not exist, or the caller has no role in it"),
    )
)]
async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
    Path((domain, va)): Path<(String, String)>,
    Query(page): Query<Page>,
) -> ApiResult<Json<Value>> {
    let (_, pool) = pool_for(&state, &caller, &domain, &va, Action::View).await?;
    let now = state.clock.now();
    let tokens: Vec<TokenView> =
        state.store.tokens(pool.id).await?.iter().map(|t| TokenView::new(t, &pool, now)).collect();
    page.answer("tokens", tokens)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewTokenBody {
    #[schema(max_length = 512)]
    description: Option<String>,
    /// Days until it expires (30 when absent).
    #[schema(minimum = 1, maximum = 365)]
    expires_days: Option<i64>,
    /// Registrations it allows (unlimited when absent).
    #[schema(minimum = 1, maximum = 1_000_000)]
    max_uses: Option<i64>,
    #[serde(default)]
    export_controlled: bool,
}

/// A token in the original format: base64 of `<id>-<creation ms>|<random>` (public facts §2.4),
/// ended with the manager's mark (S-4, [`crate::satellite::mark_token`]).
fn new_token_text(state: &AppState, now: Timestamp) -> String {
    use base64::Engine;
    let raw = crate::satellite::mark_token(state, &format!("{}-{}|{}", random_text(16), now.0, random_text(24)));
    base64::engine::general_purpose::STANDARD.encode(raw)
}

#[utoipa::path(
    post,
    path = "/api/v1/accounts/{domain}/virtual-accounts/{va}/tokens",
    operation_id = "create_registration_token",
    tag = "smartlic",
    summary = "Create a registration token (shown once: only its hash is kept)",
    params(crate::openapi::PoolPath),
    request_body = NewTokenBody,
    responses(
        (status = 201, description = "created, with its text shown this once", body = crate::views::TokenView),
        (status = 403, description = "FORBIDDEN: the caller may not manage registration tokens"),
        (status = 404, description = "NOT_FOUND: the smart account or the virtual account does not exist, or the caller has no role in it"),
    )
)]
async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    Path((domain, va)): Path<(String, String)>,
    Body(b): Body<NewTokenBody>,
) -> ApiResult<Response> {
    let (_, pool) = pool_for(&state, &caller, &domain, &va, Action::ManageTokens).await?;
    let description =
        validate::optional_text("description", b.description.as_deref().unwrap_or(""), validate::MAX_DESCRIPTION)?;
    let days = b.expires_days.unwrap_or(token::DEFAULT_EXPIRES_DAYS);
    if !(1..=token::MAX_EXPIRES_DAYS).contains(&days) {
        return Err(ApiError::invalid(
            "expires_days",
            format!("must be between 1 and {}, got {days}", token::MAX_EXPIRES_DAYS),
        ));
    }
    let max_uses = b.max_uses.map(|n| validate::count("max_uses", n)).transpose()?;
    let (t, text) = issue_token(&state, &caller, &pool, description, days, max_uses, b.export_controlled).await?;
    Ok(created(TokenView { token: Some(text), ..TokenView::new(&t, &pool, state.clock.now()) }))
}

/// Creates a registration token from checked input; both REST front-ends issue tokens here.
/// Returns it with its text, which is not stored (only its hash and prefix are): show it once.
pub(crate) async fn issue_token(
    state: &AppState,
    caller: &Caller,
    pool: &VirtualAccount,
    description: String,
    expires_days: i64,
    max_uses: Option<i64>,
    export_controlled: bool,
) -> ApiResult<(RegistrationToken, String)> {
    crate::satellite::refuse_token_of_served_pool(state, pool).await?;
    let now = state.clock.now();
    let text = new_token_text(state, now);
    let new = NewToken {
        virtual_account_id: pool.id,
        token_hash: sha256_hex(&text),
        prefix: text.chars().take(REGISTRATION_TOKEN_PREFIX).collect(),
        description,
        expires_at: now.plus_days(expires_days),
        max_uses,
        export_controlled,
    };
    Ok((state.store.create_token(new, caller.login(), now).await?, text))
}

/// Revokes a registration token of the pool named by its whole text or its listed prefix.
pub(crate) async fn revoke_registration_token(
    state: &AppState,
    caller: &Caller,
    pool: &VirtualAccount,
    text: &str,
) -> ApiResult<RegistrationToken> {
    let text = text.trim();
    crate::satellite::refuse_foreign_revocation(state, pool, text).await?;
    let prefix = text.trim_end_matches('…');
    let now = state.clock.now();
    Ok(state.store.revoke_token(pool.id, &sha256_hex(text), prefix, caller.login(), now).await?)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    token: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/accounts/{domain}/virtual-accounts/{va}/tokens/revoke",
    operation_id = "revoke_registration_token",
    tag = "smartlic",
    summary = "Revoke a registration token given whole or by its listed prefix",
    params(crate::openapi::PoolPath),
    request_body = RevokeBody,
    responses(
        (status = 200, description = "revoked", body = crate::views::TokenView),
        (status = 403, description = "FORBIDDEN: the caller may not manage registration tokens"),
        (status = 404, description = "NOT_FOUND: the smart account or the virtual account does not exist, or the caller has no role in it, or no token matches"),
        (status = 409, description = "CONFLICT: the token is already revoked, or the prefix matches several"),
    )
)]
async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path((domain, va)): Path<(String, String)>,
    Body(b): Body<RevokeBody>,
) -> ApiResult<Json<TokenView>> {
    let (_, pool) = pool_for(&state, &caller, &domain, &va, Action::ManageTokens).await?;
    let t = revoke_registration_token(&state, &caller, &pool, &b.token).await.map_err(|e| e.with_field("token"))?;
    Ok(Json(TokenView::new(&t, &pool, state.clock.now())))
}

// ---- product instances -------------------------------------------------------------------

/// Renders instances with their usage and compliance, computing each pool's ledger once.
pub(crate) async fn instance_views(
    state: &AppState,
    instances: &[Instance],
    vas: &[VirtualAccount],
) -> ApiResult<Vec<InstanceView>> {
    let now = state.clock.now();
    let mut ledgers = std::collections::BTreeMap::new();
    let mut usage = state.store.instances_usage(instances.iter().map(|i| i.id.clone()).collect()).await?;
    let mut out = Vec::with_capacity(instances.len());
    for i in instances {
        let va = vas
            .iter()
            .find(|v| v.id == i.virtual_account_id)
            .ok_or_else(|| ApiError::internal("instance without pool"))?;
        if let std::collections::btree_map::Entry::Vacant(slot) = ledgers.entry(va.id) {
            slot.insert(ledger_of(state, va, now).await?);
        }
        let usage = usage.remove(&i.id).unwrap_or_default();
        out.push(InstanceView::new(i, &va.name, &usage, &ledgers[&va.id]));
    }
    Ok(out)
}

#[utoipa::path(
    get,
    path = "/api/v1/accounts/{domain}/virtual-accounts/{va}/instances",
    operation_id = "list_pool_instances",
    tag = "smartlic",
    summary = "Product instances of a pool",
    params(crate::openapi::PoolPath, crate::openapi::InstancePageParams),
    responses(
        (status = 200, description = "a page of product instances", body = crate::openapi::InstancePage,
            headers(("Link" = String, description = "`<?limit=N&cursor=C>; rel=\"next\"`: the next page, when there is one"))),
        (status = 403, description = "FORBIDDEN: the caller may not view the pool"),
        (status = 404, description = "NOT_FOUND: the smart account or the virtual account does not exist, or the caller has no role in it"),
    )
)]
async fn list_pool_instances(
    State(state): State<AppState>,
    caller: Caller,
    Path((domain, va)): Path<(String, String)>,
    Query(page): Query<CursorPage>,
) -> ApiResult<Response> {
    let (_, pool) = pool_for(&state, &caller, &domain, &va, Action::View).await?;
    instance_page(&state, &page, std::slice::from_ref(&pool)).await
}

/// One page of the instances of `pools`, read as a page (its instances after the cursor's,
/// then their usage), so a listing costs the same on every page of a pool of any size.
async fn instance_page(state: &AppState, page: &CursorPage, pools: &[VirtualAccount]) -> ApiResult<Response> {
    let limit = page_limit(page.limit, INSTANCE_PAGE_MAX)?;
    let after = page.cursor.as_deref().map(crate::cursor::decode::<crate::cursor::InstanceCursor>).transpose()?;
    let ids = pools.iter().map(|v| v.id).collect();
    let wanted = i64::try_from(limit).unwrap_or(i64::MAX);
    // One more than the page tells whether another follows.
    let mut shown = state.store.instances_page(ids, after.map(Into::into), wanted.saturating_add(1)).await?;
    let more = shown.len() > limit;
    shown.truncate(limit);
    let next = shown
        .last()
        .filter(|_| more)
        .map(|i| crate::cursor::encode(&crate::cursor::InstanceCursor::from(&InstanceKey::of(i))));
    let instances = instance_views(state, &shown, pools).await?;
    // The next page's address in a `Link` header too (RFC 8288; a reference of a query only,
    // relative to this request's), so a client can ask for it before reading this body.
    let link = next.as_ref().map(|c| format!("<?limit={limit}&cursor={c}>; rel=\"next\""));
    let answer = Json(crate::openapi::InstancePage { instances, next });
    Ok(match link {
        Some(link) => ([(header::LINK, link)], answer).into_response(),
        None => answer.into_response(),
    })
}

#[utoipa::path(
    get,
    path = "/api/v1/accounts/{domain}/instances",
    operation_id = "list_account_instances",
    tag = "smartlic",
    summary = "Product instances of an account",
    params(crate::openapi::AccountPath, crate::openapi::InstancePageParams),
    responses(
        (status = 200, description = "a page of product instances", body = crate::openapi::InstancePage,
            headers(("Link" = String, description = "`<?limit=N&cursor=C>; rel=\"next\"`: the next page, when there is one"))),
        (status = 403, description = "FORBIDDEN: the caller's role may not view the whole account"),
        (status = 404, description = "NOT_FOUND: the smart account does not exist or the caller has no role in it"),
    )
)]
async fn list_account_instances(
    State(state): State<AppState>,
    caller: Caller,
    Path(domain): Path<String>,
    Query(page): Query<CursorPage>,
) -> ApiResult<Response> {
    let account = load_account(&state, &caller, &domain).await?;
    caller.require_account_view(&account)?;
    let mut pools = state.store.virtual_accounts(account.id).await?;
    pools.retain(|v| caller.sees(&account, v.id));
    instance_page(&state, &page, &pools).await
}

/// An instance of the account with the caller's right to `action` on its pool.
pub(crate) async fn instance_for(
    state: &AppState,
    caller: &Caller,
    domain: &str,
    id: &str,
    action: Action,
) -> ApiResult<(Account, VirtualAccount, Instance)> {
    let account = load_account(state, caller, domain).await?;
    let missing = || ApiError::not_found(format!("product instance '{id}' does not exist in {}", account.domain));
    let inst = state.store.instance(id).await?.ok_or_else(missing)?;
    let pool = state.store.virtual_account_by_id(inst.virtual_account_id).await?.ok_or_else(missing)?;
    if pool.account_id != account.id {
        return Err(missing());
    }
    caller.require(action, &account, Some(&pool))?;
    Ok((account, pool, inst))
}

#[utoipa::path(
    get,
    path = "/api/v1/accounts/{domain}/instances/{id}",
    operation_id = "show_instance",
    tag = "smartlic",
    summary = "Show a product instance, with the evaluation use it reported at registration",
    params(crate::openapi::InstancePath),
    responses(
        (status = 200, description = "the product instance", body = crate::views::InstanceView),
        (status = 403, description = "FORBIDDEN: the caller may not view its pool"),
        (status = 404, description = "NOT_FOUND: no such product instance in the account"),
    )
)]
async fn show_instance(
    State(state): State<AppState>,
    caller: Caller,
    Path((domain, id)): Path<(String, String)>,
) -> ApiResult<Json<InstanceView>> {
    let (_, pool, inst) = instance_for(&state, &caller, &domain, &id, Action::View).await?;
    let mut views = instance_views(&state, std::slice::from_ref(&inst), std::slice::from_ref(&pool)).await?;
    Ok(Json(views.remove(0)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MoveBody {
    pub(crate) to: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/accounts/{domain}/instances/{id}/move",
    operation_id = "move_instance",
    tag = "smartlic",
    summary = "Move a product instance to another pool",
    params(crate::openapi::InstancePath),
    request_body = MoveBody,
    responses(
        (status = 200, description = "moved", body = crate::views::InstanceView),
        (status = 403, description = "FORBIDDEN: the caller may not manage instances of these pools"),
        (status = 404, description = "NOT_FOUND: no such product instance, or no such target pool, in the account"),
        (status = 409, description = "CONFLICT: the instance is already there, or the target cannot take it"),
    )
)]
pub(crate) async fn move_instance(
    State(state): State<AppState>,
    caller: Caller,
    Path((domain, id)): Path<(String, String)>,
    Body(b): Body<MoveBody>,
) -> ApiResult<Json<InstanceView>> {
    let (account, _, inst) = instance_for(&state, &caller, &domain, &id, Action::ManageInstances).await?;
    let to = load_va(&state, &account, &b.to).await.map_err(|e| e.with_field("to"))?;
    caller.require(Action::ManageInstances, &account, Some(&to))?;
    let moved = state.store.move_instance(&inst.id, to.id, caller.login(), state.clock.now()).await?;
    let mut views = instance_views(&state, std::slice::from_ref(&moved), std::slice::from_ref(&to)).await?;
    Ok(Json(views.remove(0)))
}

#[utoipa::path(
    delete,
    path = "/api/v1/accounts/{domain}/instances/{id}",
    operation_id = "remove_instance",
    tag = "smartlic",
    summary = "Remove a product instance",
    params(crate::openapi::InstancePath),
    responses(
        (status = 200, description = "removed", body = crate::openapi::RemovedInstance),
        (status = 403, description = "FORBIDDEN: the caller may not manage instances of its pool"),
        (status = 404, description = "NOT_FOUND: no such product instance in the account"),
    )
)]
async fn remove_instance(
    State(state): State<AppState>,
    caller: Caller,
    Path((domain, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (_, _, inst) = instance_for(&state, &caller, &domain, &id, Action::ManageInstances).await?;
    state.store.remove_instance(&inst.id, "removed", caller.login(), state.clock.now()).await?;
    Ok(Json(json!({ "removed": inst.id })))
}

// ---- events, alerts, reports -------------------------------------------------------------

/// `?format=csv` of a report.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct Listing {
    /// `json` (the default) or `csv`.
    #[param(pattern = "^(json|csv)$")]
    format: Option<String>,
}

pub(crate) async fn names(state: &AppState) -> ApiResult<Names> {
    let mut n = Names::default();
    for a in state.store.accounts().await? {
        n.accounts.insert(a.id, a.domain);
    }
    for v in state.store.all_virtual_accounts().await? {
        n.pools.insert(v.id, v.name);
    }
    Ok(n)
}

async fn events_json(
    state: &AppState,
    caller: &Caller,
    account: Option<&Account>,
    page: CursorPage,
) -> ApiResult<Json<Value>> {
    use crate::cursor::{decode, encode, EventCursor};
    let limit = page_limit(page.limit, PAGE_MAX)?;
    let before = page.cursor.as_deref().map(decode::<EventCursor>).transpose()?.map(|c| c.before);
    let names = names(state).await?;
    // Most recent first: the page's events and one more, to tell whether a next page exists.
    let wanted = i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1);
    let mut read = state.store.events_before(account.map(|a| a.id), before, wanted).await?;
    let more = read.len() > limit;
    read.truncate(limit);
    let next = read.last().filter(|_| more).map(|e| encode(&EventCursor { before: e.id }));
    let events: Vec<EventView> = read
        .iter()
        .filter(|e| match (account, e.virtual_account_id) {
            (Some(a), Some(v)) => caller.sees(a, v),
            _ => true,
        })
        .map(|e| EventView::new(e, &names))
        .collect();
    Ok(Json(json!({ "events": events, "next": next })))
}

#[utoipa::path(
    get,
    path = "/api/v1/accounts/{domain}/events",
    operation_id = "list_account_events",
    tag = "smartlic",
    summary = "Event log of an account (most recent first)",
    params(crate::openapi::AccountPath, crate::openapi::EventPageParams),
    responses(
        (status = 200, description = "a page of events", body = crate::openapi::EventPage),
        (status = 403, description = "FORBIDDEN: the caller's role may not view the whole account"),
        (status = 404, description = "NOT_FOUND: the smart account does not exist or the caller has no role in it"),
    )
)]
async fn account_events(
    State(state): State<AppState>,
    caller: Caller,
    Path(domain): Path<String>,
    Query(page): Query<CursorPage>,
) -> ApiResult<Json<Value>> {
    let account = load_account(&state, &caller, &domain).await?;
    caller.require_account_view(&account)?;
    events_json(&state, &caller, Some(&account), page).await
}

#[utoipa::path(
    get,
    path = "/api/v1/events",
    operation_id = "list_events",
    tag = "smartlic",
    summary = "Event log of the manager (operator; most recent first)",
    params(crate::openapi::EventPageParams),
    responses(
        (status = 200, description = "a page of events", body = crate::openapi::EventPage),
        (status = 403, description = "FORBIDDEN: only the operator"),
    )
)]
async fn all_events(
    State(state): State<AppState>,
    caller: Caller,
    Query(page): Query<CursorPage>,
) -> ApiResult<Json<Value>> {
    caller.require_operator("read the events of every account")?;
    events_json(&state, &caller, None, page).await
}

#[utoipa::path(
    get,
    path = "/api/v1/accounts/{domain}/alerts",
    operation_id = "list_alerts",
    tag = "smartlic",
    summary = "Current alerts",
    params(crate::openapi::AccountPath, crate::openapi::PageParams),
    responses(
        (status = 200, description = "a page of alerts", body = crate::openapi::AlertPage),
        (status = 403, description = "FORBIDDEN: the caller's role may not view the whole account"),
        (status = 404, description = "NOT_FOUND: the smart account does not exist or the caller has no role in it"),
    )
)]
async fn list_alerts(
    State(state): State<AppState>,
    caller: Caller,
    Path(domain): Path<String>,
    Query(page): Query<Page>,
) -> ApiResult<Json<Value>> {
    let account = load_account(&state, &caller, &domain).await?;
    caller.require_account_view(&account)?;
    let names = names(&state).await?;
    let alerts: Vec<AlertView> = state
        .store
        .alerts(account.id)
        .await?
        .iter()
        .filter(|a| a.virtual_account_id.is_none_or(|v| caller.sees(&account, v)))
        .map(|a| AlertView::new(a, &names))
        .collect();
    page.answer("alerts", alerts)
}

/// Answers JSON `{"rows": [...]}`, or CSV with `?format=csv`.
fn report<T: serde::Serialize>(
    format: Option<&str>,
    header: &[&str],
    rows: Vec<T>,
    csv_row: impl Fn(&T) -> Vec<String>,
) -> ApiResult<Response> {
    match format {
        None | Some("json") => Ok(Json(json!({ "rows": rows })).into_response()),
        Some("csv") => {
            let body = to_csv(header, rows.iter().map(csv_row));
            Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response())
        }
        Some(other) => Err(ApiError::invalid("format", format!("'{other}' is not json or csv"))),
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/accounts/{domain}/reports/usage",
    operation_id = "usage_report",
    tag = "smartlic",
    summary = "Usage report (format=json|csv)",
    params(crate::openapi::AccountPath, Listing),
    responses(
        (status = 200, description = "the report: JSON rows, or CSV with format=csv", content((crate::openapi::UsageReport = "application/json"), (String = "text/csv"))),
        (status = 403, description = "FORBIDDEN: the caller's role may not view the whole account"),
        (status = 404, description = "NOT_FOUND: the smart account does not exist or the caller has no role in it"),
    )
)]
async fn usage_report(
    State(state): State<AppState>,
    caller: Caller,
    Path(domain): Path<String>,
    Query(q): Query<Listing>,
) -> ApiResult<Response> {
    let account = load_account(&state, &caller, &domain).await?;
    caller.require_account_view(&account)?;
    let now = state.clock.now();
    let mut rows = Vec::new();
    for va in state.store.virtual_accounts(account.id).await?.iter().filter(|v| caller.sees(&account, v.id)) {
        for t in ledger_of(&state, va, now).await?.tags {
            rows.push(UsageRow {
                smart_account: account.domain.clone(),
                virtual_account: va.name.clone(),
                display_name: state.catalog.display_name(&t.tag).to_string(),
                purchased: t.purchased,
                in_use: t.in_use,
                lent: t.lent,
                borrowed: t.borrowed,
                balance: t.balance(),
                status: compliance_words(t.in_compliance()),
                reserved: t.reserved,
                tag: t.tag,
            });
        }
    }
    let header = [
        "smart_account",
        "virtual_account",
        "tag",
        "display_name",
        "purchased",
        "in_use",
        "lent",
        "borrowed",
        "balance",
        "status",
        // Last, so that scripts reading the earlier columns by position keep working.
        "reserved",
    ];
    report(q.format.as_deref(), &header, rows, |r| {
        vec![
            r.smart_account.clone(),
            r.virtual_account.clone(),
            r.tag.clone(),
            r.display_name.clone(),
            r.purchased.to_string(),
            r.in_use.to_string(),
            r.lent.to_string(),
            r.borrowed.to_string(),
            r.balance.to_string(),
            r.status.to_string(),
            r.reserved.to_string(),
        ]
    })
}

#[utoipa::path(
    get,
    path = "/api/v1/accounts/{domain}/reports/instances",
    operation_id = "instances_report",
    tag = "smartlic",
    summary = "Product instance report (format=json|csv)",
    params(crate::openapi::AccountPath, Listing),
    responses(
        (status = 200, description = "the report: JSON rows, or CSV with format=csv", content((crate::openapi::InstanceReport = "application/json"), (String = "text/csv"))),
        (status = 403, description = "FORBIDDEN: the caller's role may not view the whole account"),
        (status = 404, description = "NOT_FOUND: the smart account does not exist or the caller has no role in it"),
    )
)]
async fn instances_report(
    State(state): State<AppState>,
    caller: Caller,
    Path(domain): Path<String>,
    Query(q): Query<Listing>,
) -> ApiResult<Response> {
    let account = load_account(&state, &caller, &domain).await?;
    let pools = crate::streamed::visible_pools(&state, &caller, &account).await?;
    let (content_type, body) = match q.format.as_deref() {
        None | Some("json") => {
            let page = |views: &[InstanceView], after_one: bool| {
                crate::streamed::json_items(views, after_one, |v| serde_json::to_string(v).unwrap_or_default())
            };
            ("application/json", crate::streamed::instance_report(state, pools, "{\"rows\":[".into(), page, "]}"))
        }
        Some("csv") => {
            let header = [
                "id",
                "udi_pid",
                "udi_serial_number",
                "hostname",
                "virtual_account",
                "registered_at",
                "last_contact_at",
                "certificate_expires_at",
                "usage",
                "status",
            ];
            let page = |views: &[InstanceView], _: bool| csv_rows(views.iter().map(instance_csv_row));
            let head = to_csv(&header, std::iter::empty());
            ("text/csv; charset=utf-8", crate::streamed::instance_report(state, pools, head, page, ""))
        }
        Some(other) => return Err(ApiError::invalid("format", format!("'{other}' is not json or csv"))),
    };
    Ok(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

/// A row of the instance report's CSV.
fn instance_csv_row(r: &InstanceView) -> Vec<String> {
    let usage: Vec<String> = r.usage.iter().map(|u| format!("{}={}", u.tag, u.count)).collect();
    vec![
        r.id.clone(),
        r.udi_pid.clone(),
        r.udi_serial_number.clone(),
        r.hostname.clone(),
        r.virtual_account.clone(),
        r.registered_at.clone(),
        r.last_contact_at.clone(),
        r.certificate_expires_at.clone(),
        usage.join(";"),
        r.status.to_string(),
    ]
}

// ---- clock and catalogue -----------------------------------------------------------------

fn clock_json(state: &AppState) -> Json<Value> {
    Json(json!({ "now": state.clock.now().to_rfc3339(), "simulated": state.simulated.is_some() }))
}

/// Recomputes the pools' in-use and reserved counts from the records and lists every stored
/// counter that differs (issue 10: counters never hide drift).
#[utoipa::path(
    get,
    path = "/api/v1/check",
    operation_id = "check_counters",
    tag = "smartlic",
    summary = "Counters recomputed from the records: every difference (operator)",
    responses(
        (status = 200, description = "the check", body = crate::openapi::CounterCheck),
        (status = 403, description = "FORBIDDEN: only the operator"),
    )
)]
async fn check_counters(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require_operator("check the counters of every pool")?;
    let differences = drift_json(&state.store.check_counters(state.clock.now()).await?);
    Ok(Json(json!({ "consistent": differences.is_empty(), "differences": differences })))
}

fn drift_json(drift: &[smartlic_store::CounterDrift]) -> Vec<Value> {
    drift
        .iter()
        .map(|d| {
            json!({
                "account": d.account, "virtual_account": d.virtual_account, "tag": d.tag,
                "counter": d.counter, "stored": d.stored, "recomputed": d.recomputed,
            })
        })
        .collect()
}

/// Sets each drifted in-use counter to its count recomputed from the records (one transaction,
/// a `counters.repaired` event each), then checks again: what is left (reserved counts, which
/// are not recomputable into draws) is answered as after a check.
#[utoipa::path(
    post,
    path = "/api/v1/check/repair",
    operation_id = "repair_counters",
    tag = "smartlic",
    summary = "Drifted in-use counters set to the count of the records (operator)",
    responses(
        (status = 200, description = "what was repaired and what still differs", body = crate::openapi::CounterRepair),
        (status = 403, description = "FORBIDDEN: only the operator"),
    )
)]
async fn repair_counters(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require_operator("repair the counters of every pool")?;
    let now = state.clock.now();
    let repaired = drift_json(&state.store.repair_in_use_counters(caller.login(), now).await?);
    let differences = drift_json(&state.store.check_counters(now).await?);
    Ok(Json(json!({ "repaired": repaired, "consistent": differences.is_empty(), "differences": differences })))
}

#[utoipa::path(
    get,
    path = "/api/v1/clock",
    operation_id = "show_clock",
    tag = "smartlic",
    summary = "The manager's time",
    responses(
        (status = 200, description = "the time", body = crate::openapi::ClockView),
    )
)]
async fn show_clock(State(state): State<AppState>, _caller: Caller) -> Json<Value> {
    clock_json(&state)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ClockBody {
    time: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/clock",
    operation_id = "set_clock",
    tag = "smartlic",
    summary = "Set the simulated clock (operator, --clock simulated); the jobs run at once on the new time",
    request_body = ClockBody,
    responses(
        (status = 200, description = "the new time", body = crate::openapi::ClockView),
        (status = 403, description = "FORBIDDEN: only the operator"),
        (status = 409, description = "CONFLICT: the server does not run with --clock simulated"),
    )
)]
async fn set_clock(State(state): State<AppState>, caller: Caller, Body(b): Body<ClockBody>) -> ApiResult<Json<Value>> {
    caller.require_operator("set the clock")?;
    if state.simulated.is_none() {
        return Err(ApiError::conflict("the clock can be set only when the server runs with --clock simulated"));
    }
    let to = parse_date("time", Some(&b.time))?.unwrap_or(Timestamp(0));
    let before = state.clock.now();
    crate::clock::set(&state, to).await?;
    let detail = format!("from {before} to {to}");
    state
        .store
        .record_event(NewEvent {
            at: to,
            actor: caller.login().into(),
            kind: "clock.set".into(),
            account_id: None,
            virtual_account_id: None,
            object: "clock".into(),
            detail,
        })
        .await?;
    // Jobs run at once on the new time, so the consequences show in the next answer; among
    // replicas, here when this one holds the jobs lease or the move expired it.
    crate::jobs::run_leased(&state).await.map_err(ApiError::internal)?;
    Ok(clock_json(&state))
}

#[utoipa::path(
    get,
    path = "/api/v1/catalog",
    operation_id = "show_catalog",
    tag = "smartlic",
    summary = "Entitlement tags and tiers",
    responses(
        (status = 200, description = "the catalogue", body = crate::openapi::CatalogView),
    )
)]
async fn catalog(State(state): State<AppState>, _caller: Caller) -> Json<Value> {
    let tags: Vec<Value> = state
        .catalog
        .tags()
        .iter()
        .map(|t| json!({ "tag": t.name, "display_name": t.display_name, "family": t.family, "fulfilled_by": t.fulfilled_by }))
        .collect();
    Json(json!({ "tags": tags }))
}
