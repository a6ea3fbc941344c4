//! The original manager's public REST API (C-17, public facts §1), served as a thin layer over
//! the same domain and store as `/api/v1`: existing scripts keep working when pointed at
//! smartlic. Field names, the `status`/`statusMessage` envelope and the token endpoints follow
//! §1.1–1.3. This first part covers the token endpoints, accounts, virtual accounts and
//! licenses; the other endpoints of §1.2 come with reservation (issue 5).

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use smartlic_core::compliance::Ledger;
use smartlic_core::role::Action;
use smartlic_core::{Role, Timestamp};
use smartlic_store::{Account, VirtualAccount};

/// Where the original API lives.
pub const PREFIX: &str = "/services/api/smart-accounts-and-licensing";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/as/token.oauth2", post(crate::auth::token))
        .route("/oauth2/default/v1/token", post(crate::auth::token))
        .route(&format!("{PREFIX}/v2/accounts"), get(accounts))
        .route(&format!("{PREFIX}/v1/accounts/{{domain}}/{{kind}}/virtual-accounts"), get(virtual_accounts))
        .route(&format!("{PREFIX}/v1/accounts/{{domain}}/licenses"), post(licenses))
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
        (self.0.status, Json(json!({"status": "ERROR", "statusMessage": self.0.message}))).into_response()
    }
}

type LegacyResult<T> = Result<T, LegacyError>;

/// The bearer-token check of `/api/v1`, answering in the original shape.
pub struct LegacyCaller(Caller);

impl FromRequestParts<AppState> for LegacyCaller {
    type Rejection = LegacyError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, LegacyError> {
        Ok(LegacyCaller(Caller::from_request_parts(parts, state).await?))
    }
}

fn success(mut body: Value) -> Json<Value> {
    body["status"] = json!("SUCCESS");
    body["statusMessage"] = json!("");
    Json(body)
}

async fn account(state: &AppState, caller: &Caller, domain: &str) -> LegacyResult<Account> {
    let account = state
        .store
        .account(&domain.to_ascii_lowercase())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Smart Account {domain} not found")))?;
    caller.require_account_view(&account)?;
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

async fn virtual_accounts(
    State(state): State<AppState>,
    LegacyCaller(caller): LegacyCaller,
    Path((domain, _kind)): Path<(String, String)>,
) -> LegacyResult<Json<Value>> {
    let account = account(&state, &caller, &domain).await?;
    let vas: Vec<Value> = state
        .store
        .virtual_accounts(account.id)
        .await?
        .iter()
        .filter(|v| caller.sees(&account, v.id))
        .map(|v| {
            json!({"isDefault": if v.is_default { "true" } else { "false" }, "name": v.name,
                   "description": v.description, "commerceAccessLevel": "FULL"})
        })
        .collect();
    Ok(success(json!({ "virtualAccounts": vas })))
}

#[derive(Deserialize, Default)]
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

async fn licenses(
    State(state): State<AppState>,
    LegacyCaller(caller): LegacyCaller,
    Path(domain): Path<String>,
    body: Result<Json<ListRequest>, JsonRejection>,
) -> LegacyResult<Json<Value>> {
    let Json(req) = body.map_err(|r| ApiError::new(StatusCode::BAD_REQUEST, "MALFORMED_JSON", r.body_text()))?;
    let account = account(&state, &caller, &domain).await?;
    let now = state.clock.now();
    let mut rows = Vec::new();
    for va in pools(&state, &caller, &account, &req.virtual_accounts).await? {
        let counts = state.store.pool_counts(va.id, now).await?;
        let ledger = Ledger::compute(&state.catalog, &counts.purchased, &counts.in_use);
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
                "pendingQuantity": 0, "reserved": 0,
                "status": crate::views::compliance_words(t.in_compliance()),
                "billingType": "PREPAID", "ahaApps": false, "isPortable": false,
                "licenseSubstitutions": substitutions, "licenseDetails": details
            }));
        }
    }
    let total = rows.len();
    let offset = req.offset.unwrap_or(0);
    let limit = req.limit.unwrap_or(50).min(1000);
    let page: Vec<Value> = rows.into_iter().skip(offset).take(limit).collect();
    Ok(success(json!({ "totalRecords": total, "licenses": page })))
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
}
