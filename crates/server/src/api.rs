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

async fn load_va(state: &AppState, account: &Account, name: &str) -> ApiResult<VirtualAccount> {
    state.store.virtual_account(account.id, name).await?.ok_or_else(|| {
        ApiError::not_found(format!("virtual account '{name}' does not exist in {}", account.domain))
            .with_field("virtual_account")
    })
}

/// Account and pool of a request, with the caller's right to `action` in that pool checked.
async fn pool_for(
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

/// `?limit=&offset=` of every listing: pages of [`PAGE_DEFAULT`] items, at most [`PAGE_MAX`].
#[derive(Deserialize)]
pub(crate) struct Page {
    limit: Option<usize>,
    offset: Option<usize>,
}

const PAGE_DEFAULT: usize = 100;
const PAGE_MAX: usize = 1000;

impl Page {
    /// (offset, limit), the limit checked.
    fn bounds(&self) -> ApiResult<(usize, usize)> {
        let limit = self.limit.unwrap_or(PAGE_DEFAULT);
        if !(1..=PAGE_MAX).contains(&limit) {
            return Err(ApiError::invalid("limit", format!("must be between 1 and {PAGE_MAX}, got {limit}")));
        }
        Ok((self.offset.unwrap_or(0), limit))
    }

    /// This page of `items` under `key`, and `next_offset`: the `offset` of the next page, null
    /// after the last one.
    pub(crate) fn answer<T: serde::Serialize>(&self, key: &str, items: Vec<T>) -> ApiResult<Json<Value>> {
        let (offset, limit) = self.bounds()?;
        let end = offset.saturating_add(limit);
        let next = (items.len() > end).then_some(end);
        let page: Vec<T> = items.into_iter().skip(offset).take(limit).collect();
        Ok(Json(json!({ key: page, "next_offset": next })))
    }
}

pub(crate) fn created<T: serde::Serialize>(value: T) -> Response {
    (StatusCode::CREATED, Json(value)).into_response()
}

// ---- accounts and virtual accounts -------------------------------------------------------

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAccountBody {
    domain: String,
    name: Option<String>,
}

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

async fn show_account(
    State(state): State<AppState>,
    caller: Caller,
    Path(domain): Path<String>,
) -> ApiResult<Json<AccountView>> {
    let account = load_account(&state, &caller, &domain).await?;
    caller.require_account_view(&account)?;
    Ok(Json(AccountView::from(&account)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountChange {
    #[serde(alias = "universalReservation")]
    universal_reservation: bool,
}

/// Allows or forbids universal reservations for the account's devices (operator only).
async fn update_account(
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewVaBody {
    name: String,
    description: Option<String>,
}

async fn create_va(
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
async fn delete_va(
    State(state): State<AppState>,
    caller: Caller,
    Path((domain, va)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (_, pool) = pool_for(&state, &caller, &domain, &va, Action::ManageVirtualAccounts).await?;
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

async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
    Path(domain): Path<String>,
    Query(page): Query<Page>,
) -> ApiResult<Json<Value>> {
    let users = principals_of(&state, &caller, &domain, PrincipalKind::User).await?;
    page.answer("users", users)
}

async fn list_clients(
    State(state): State<AppState>,
    caller: Caller,
    Path(domain): Path<String>,
    Query(page): Query<Page>,
) -> ApiResult<Json<Value>> {
    let clients = principals_of(&state, &caller, &domain, PrincipalKind::ApiClient).await?;
    page.answer("api_clients", clients)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPrincipalBody {
    #[serde(alias = "username")]
    name: Option<String>,
    role: String,
    virtual_account: Option<String>,
    password: Option<String>,
}

/// A password or secret long enough to keep, as its Argon2 hash (off the async workers).
async fn secret_hash(state: &AppState, secret: String) -> ApiResult<String> {
    if secret.len() < 12 {
        return Err(ApiError::invalid("password", "must be at least 12 characters"));
    }
    state.hashing.hash(secret).await
}

/// Creates a user or API client after checking the caller may grant that role in that scope.
async fn grant(
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
fn client_with_secret(p: &Principal, account: &Account, va: Option<&VirtualAccount>, secret: &str) -> ApiResult<Value> {
    let mut view = serde_json::to_value(PrincipalView::new(p, Some(account), va)).map_err(ApiError::internal)?;
    view["client_id"] = json!(p.login);
    view["client_secret"] = json!(secret);
    Ok(view)
}

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
    Ok(created(client_with_secret(&p, &account, va.as_ref(), &secret)?))
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PrincipalChange {
    disabled: Option<bool>,
    /// A user's new password (users may change their own).
    password: Option<String>,
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

async fn change_user(
    State(state): State<AppState>,
    caller: Caller,
    Path((domain, name)): Path<(String, String)>,
    Body(b): Body<PrincipalChange>,
) -> ApiResult<Json<PrincipalView>> {
    change_principal(&state, &caller, &domain, PrincipalKind::User, &name, b).await
}

async fn change_client(
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

async fn delete_user(
    State(state): State<AppState>,
    caller: Caller,
    Path((domain, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    delete_principal(&state, &caller, &domain, PrincipalKind::User, &name).await
}

async fn delete_client(
    State(state): State<AppState>,
    caller: Caller,
    Path((domain, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    delete_principal(&state, &caller, &domain, PrincipalKind::ApiClient, &name).await
}

/// Gives an API client a new generated secret, shown this once; the old one and every live
/// access token of the client stop working at once.
async fn rotate_client_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path((domain, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (account, va, p) = managed(&state, &caller, &domain, PrincipalKind::ApiClient, &name, false).await?;
    let secret = random_text(32);
    let hash = state.hashing.hash(secret.clone()).await?;
    let rotated = state.store.set_principal_secret(p.id, &hash, caller.login(), state.clock.now()).await?;
    Ok(Json(client_with_secret(&rotated, &account, va.as_ref(), &secret)?))
}

// ---- access tokens -----------------------------------------------------------------------

/// Live access tokens of the account's users and API clients (smart-account admins).
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessTokenRevoke {
    /// The token itself.
    token: Option<String>,
    /// Its id, as listed.
    id: Option<i64>,
}

/// Ends a live access token at once: one's own (logging out), or one of a principal the caller
/// manages. Any other token is answered as unknown.
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewLicenseBody {
    tag: String,
    count: i64,
    sku: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    start: Option<String>,
    end: Option<String>,
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

async fn ledger_of(state: &AppState, pool: &VirtualAccount, now: Timestamp) -> ApiResult<Ledger> {
    Ok(state.store.pool_counts(pool.id, now).await?.ledger(&state.catalog))
}

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferBody {
    tag: String,
    count: i64,
    to: String,
    #[serde(rename = "type")]
    kind: Option<String>,
}

async fn transfer_licenses(
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewReservationBody {
    #[serde(alias = "requestCode")]
    request_code: String,
    /// Must agree with the request code when given.
    universal: Option<bool>,
    #[serde(default)]
    licenses: Vec<ReserveLine>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReserveLine {
    tag: String,
    #[serde(alias = "quantity")]
    count: i64,
}

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReturnBody {
    #[serde(alias = "returnCode")]
    return_code: String,
}

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTokenBody {
    description: Option<String>,
    expires_days: Option<i64>,
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
    let prefix = text.trim_end_matches('…');
    let now = state.clock.now();
    Ok(state.store.revoke_token(pool.id, &sha256_hex(text), prefix, caller.login(), now).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    token: String,
}

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
async fn instance_views(
    state: &AppState,
    instances: &[Instance],
    vas: &[VirtualAccount],
) -> ApiResult<Vec<InstanceView>> {
    let now = state.clock.now();
    let mut ledgers = std::collections::BTreeMap::new();
    let mut out = Vec::with_capacity(instances.len());
    for i in instances {
        let va = vas
            .iter()
            .find(|v| v.id == i.virtual_account_id)
            .ok_or_else(|| ApiError::internal("instance without pool"))?;
        if let std::collections::btree_map::Entry::Vacant(slot) = ledgers.entry(va.id) {
            slot.insert(ledger_of(state, va, now).await?);
        }
        let usage = state.store.instance_usage(&i.id).await?;
        out.push(InstanceView::new(i, &va.name, &usage, &ledgers[&va.id]));
    }
    Ok(out)
}

async fn list_pool_instances(
    State(state): State<AppState>,
    caller: Caller,
    Path((domain, va)): Path<(String, String)>,
    Query(page): Query<Page>,
) -> ApiResult<Json<Value>> {
    let (_, pool) = pool_for(&state, &caller, &domain, &va, Action::View).await?;
    let instances = state.store.instances(InstanceFilter::VirtualAccount(pool.id)).await?;
    let views = instance_views(&state, &instances, std::slice::from_ref(&pool)).await?;
    page.answer("instances", views)
}

/// Instances of an account the caller may see.
async fn visible_instances(
    state: &AppState,
    caller: &Caller,
    account: &Account,
) -> ApiResult<(Vec<Instance>, Vec<VirtualAccount>)> {
    caller.require_account_view(account)?;
    let vas = state.store.virtual_accounts(account.id).await?;
    let instances = state
        .store
        .instances(InstanceFilter::Account(account.id))
        .await?
        .into_iter()
        .filter(|i| caller.sees(account, i.virtual_account_id))
        .collect();
    Ok((instances, vas))
}

async fn list_account_instances(
    State(state): State<AppState>,
    caller: Caller,
    Path(domain): Path<String>,
    Query(page): Query<Page>,
) -> ApiResult<Json<Value>> {
    let account = load_account(&state, &caller, &domain).await?;
    let (instances, vas) = visible_instances(&state, &caller, &account).await?;
    let views = instance_views(&state, &instances, &vas).await?;
    page.answer("instances", views)
}

/// An instance of the account with the caller's right to `action` on its pool.
async fn instance_for(
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

async fn show_instance(
    State(state): State<AppState>,
    caller: Caller,
    Path((domain, id)): Path<(String, String)>,
) -> ApiResult<Json<InstanceView>> {
    let (_, pool, inst) = instance_for(&state, &caller, &domain, &id, Action::View).await?;
    let mut views = instance_views(&state, std::slice::from_ref(&inst), std::slice::from_ref(&pool)).await?;
    Ok(Json(views.remove(0)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MoveBody {
    to: String,
}

async fn move_instance(
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
#[derive(Deserialize)]
struct Listing {
    format: Option<String>,
}

async fn names(state: &AppState) -> ApiResult<Names> {
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
    page: Page,
) -> ApiResult<Json<Value>> {
    let (offset, limit) = page.bounds()?;
    let names = names(state).await?;
    // Most recent first: the page's events and one more, to tell whether a next page exists.
    let wanted = i64::try_from(offset + limit + 1).unwrap_or(i64::MAX);
    let events: Vec<EventView> = state
        .store
        .events(account.map(|a| a.id), wanted)
        .await?
        .iter()
        .filter(|e| match (account, e.virtual_account_id) {
            (Some(a), Some(v)) => caller.sees(a, v),
            _ => true,
        })
        .map(|e| EventView::new(e, &names))
        .collect();
    page.answer("events", events)
}

async fn account_events(
    State(state): State<AppState>,
    caller: Caller,
    Path(domain): Path<String>,
    Query(page): Query<Page>,
) -> ApiResult<Json<Value>> {
    let account = load_account(&state, &caller, &domain).await?;
    caller.require_account_view(&account)?;
    events_json(&state, &caller, Some(&account), page).await
}

async fn all_events(State(state): State<AppState>, caller: Caller, Query(page): Query<Page>) -> ApiResult<Json<Value>> {
    caller.require_operator("read the events of every account")?;
    events_json(&state, &caller, None, page).await
}

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

async fn instances_report(
    State(state): State<AppState>,
    caller: Caller,
    Path(domain): Path<String>,
    Query(q): Query<Listing>,
) -> ApiResult<Response> {
    let account = load_account(&state, &caller, &domain).await?;
    let (instances, vas) = visible_instances(&state, &caller, &account).await?;
    let rows = instance_views(&state, &instances, &vas).await?;
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
    report(q.format.as_deref(), &header, rows, |r| {
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
    })
}

// ---- clock and catalogue -----------------------------------------------------------------

fn clock_json(state: &AppState) -> Json<Value> {
    Json(json!({ "now": state.clock.now().to_rfc3339(), "simulated": state.simulated.is_some() }))
}

/// Recomputes the pools' in-use and reserved counts from the records and lists every stored
/// counter that differs (issue 10: counters never hide drift).
async fn check_counters(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require_operator("check the counters of every pool")?;
    let drift = state.store.check_counters(state.clock.now()).await?;
    let differences: Vec<Value> = drift
        .iter()
        .map(|d| {
            json!({
                "account": d.account, "virtual_account": d.virtual_account, "tag": d.tag,
                "counter": d.counter, "stored": d.stored, "recomputed": d.recomputed,
            })
        })
        .collect();
    Ok(Json(json!({ "consistent": differences.is_empty(), "differences": differences })))
}

async fn show_clock(State(state): State<AppState>, _caller: Caller) -> Json<Value> {
    clock_json(&state)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockBody {
    time: String,
}

async fn set_clock(State(state): State<AppState>, caller: Caller, Body(b): Body<ClockBody>) -> ApiResult<Json<Value>> {
    caller.require_operator("set the clock")?;
    let Some(sim) = &state.simulated else {
        return Err(ApiError::conflict("the clock can be set only when the server runs with --clock simulated"));
    };
    let to = parse_date("time", Some(&b.time))?.unwrap_or(Timestamp(0));
    let before = state.clock.now();
    sim.set(to);
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
    // Jobs run at once on the new time, so the consequences show in the next answer.
    crate::jobs::run_once(&state).await.map_err(ApiError::internal)?;
    Ok(clock_json(&state))
}

async fn catalog(State(state): State<AppState>, _caller: Caller) -> Json<Value> {
    let tags: Vec<Value> = state
        .catalog
        .tags()
        .iter()
        .map(|t| json!({ "tag": t.name, "display_name": t.display_name, "family": t.family, "fulfilled_by": t.fulfilled_by }))
        .collect();
    Json(json!({ "tags": tags }))
}
