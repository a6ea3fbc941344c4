//! The administration actions of the portal's forms: disable, enable and delete users and API
//! clients, a client's new secret (shown once), a user's password, virtual accounts added and
//! deleted, licenses transferred, a product instance moved to another virtual account. Each runs the REST API's own handler with the signed-in
//! caller, so the same checks, messages and events apply; the page then shows the outcome.

use super::layout::{self, place, Notice};
use super::session::Viewer;
use super::{admin, inventory, respond, NoFields, PageResult, Posted};
use crate::api::{self, AccountChange, MoveBody, NewVaBody, PrincipalChange, TransferBody};
use crate::auth::Caller;
use crate::body::{self, Body};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;

type PoolPath = Path<(String, String)>;

/// The signed-in principal as the API handlers take it.
pub(super) fn caller(v: &Viewer) -> Caller {
    Caller(v.caller.0.clone())
}

#[derive(Deserialize)]
pub struct Password {
    #[serde(default)]
    password: String,
}

/// `admin/{users|api-clients}/{name}/{enable|disable|delete|rotate-secret}`.
pub async fn principal(
    State(state): State<AppState>,
    Path((domain, va, kind, name, action)): Path<(String, String, String, String, String)>,
    Posted(v, NoFields {}): Posted<NoFields>,
) -> PageResult {
    let place = place(&state, &v, &domain, &va).await?;
    let outcome = principal_action(&state, &v, &place.account.domain, &kind, &name, &action, None).await;
    let (code, notice) = Notice::of(outcome);
    respond(code, admin::render(&state, &v, &place, notice).await?)
}

/// `admin/users/{name}/password`: a user's new password.
pub async fn password(
    State(state): State<AppState>,
    Path((domain, va, name)): Path<(String, String, String)>,
    Posted(v, f): Posted<Password>,
) -> PageResult {
    let place = place(&state, &v, &domain, &va).await?;
    let outcome =
        principal_action(&state, &v, &place.account.domain, "users", &name, "password", Some(f.password)).await;
    let (code, notice) = Notice::of(outcome);
    respond(code, admin::render(&state, &v, &place, notice).await?)
}

async fn principal_action(
    state: &AppState,
    v: &Viewer,
    domain: &str,
    kind: &str,
    name: &str,
    action: &str,
    password: Option<String>,
) -> ApiResult<Notice> {
    let (st, who) = (State(state.clone()), body::Path((domain.to_string(), name.to_string())));
    let change = |disabled: Option<bool>, password: Option<String>| Body(PrincipalChange { disabled, password });
    match (kind, action) {
        ("users", "enable" | "disable") => {
            let p = api::change_user(st, caller(v), who, change(Some(action == "disable"), None)).await?;
            Ok(Notice::Done(format!("User {} {action}d.", p.0.login)))
        }
        ("api-clients", "enable" | "disable") => {
            let p = api::change_client(st, caller(v), who, change(Some(action == "disable"), None)).await?;
            Ok(Notice::Done(format!("API client {} {action}d.", p.0.login)))
        }
        ("users", "password") => {
            let p = api::change_user(st, caller(v), who, change(None, password)).await?;
            Ok(Notice::Done(format!("The password of {} is set; their other sessions ended.", p.0.login)))
        }
        ("users", "delete") => {
            let gone = api::delete_user(st, caller(v), who).await?;
            Ok(Notice::Done(format!("User {} deleted.", gone.0["login"].as_str().unwrap_or(name))))
        }
        ("api-clients", "delete") => {
            let gone = api::delete_client(st, caller(v), who).await?;
            Ok(Notice::Done(format!("API client {} deleted.", gone.0["login"].as_str().unwrap_or(name))))
        }
        ("api-clients", "rotate-secret") => {
            let rotated = api::rotate_client_secret(st, caller(v), who).await?;
            Ok(Notice::Secret {
                said: format!("API client {name} has a new secret; the old one no longer works."),
                label: "Its new client secret".into(),
                secret: rotated.0.client_secret,
            })
        }
        _ => Err(ApiError::not_found(format!("there is no action '{action}' on {kind}"))),
    }
}

#[derive(Deserialize)]
pub struct NewPool {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
}

/// `admin/virtual-accounts`: a new virtual account.
pub async fn create_pool(
    State(state): State<AppState>,
    Path((domain, va)): PoolPath,
    Posted(v, f): Posted<NewPool>,
) -> PageResult {
    let body = Body(NewVaBody { name: f.name.clone(), description: Some(f.description) });
    let outcome = api::create_va(State(state.clone()), caller(&v), body::Path(domain.clone()), body)
        .await
        .map(|_| Notice::Done(format!("Virtual account {} added.", f.name.trim())));
    let (code, notice) = Notice::of(outcome);
    let place = place(&state, &v, &domain, &va).await?;
    respond(code, admin::render(&state, &v, &place, notice).await?)
}

#[derive(Deserialize)]
pub struct AccountSettings {
    /// `true` or `false`, as the form's select sends it (a form has no booleans).
    #[serde(default)]
    universal_reservation: String,
}

/// `admin/settings`: the account's settings (the operator's, as in the API).
pub async fn account_settings(
    State(state): State<AppState>,
    Path((domain, va)): PoolPath,
    Posted(v, f): Posted<AccountSettings>,
) -> PageResult {
    let outcome = match f.universal_reservation.as_str() {
        "true" | "false" => {
            let body = Body(AccountChange { universal_reservation: f.universal_reservation == "true" });
            api::update_account(State(state.clone()), caller(&v), body::Path(domain.clone()), body)
                .await
                .map(|_| Notice::Done("Account settings saved.".into()))
        }
        other => Err(ApiError::invalid("universal_reservation", format!("'{other}' is neither true nor false"))),
    };
    let (code, notice) = Notice::of(outcome);
    let place = place(&state, &v, &domain, &va).await?;
    respond(code, admin::render(&state, &v, &place, notice).await?)
}

/// `admin/virtual-accounts/{name}/delete`; deleting the pool on screen leads to the default one.
pub async fn delete_pool(
    State(state): State<AppState>,
    Path((domain, va, name)): Path<(String, String, String)>,
    Posted(v, NoFields {}): Posted<NoFields>,
) -> PageResult {
    let path = body::Path((domain.clone(), name.clone()));
    let outcome = api::delete_va(State(state.clone()), caller(&v), path)
        .await
        .map(|_| Notice::Done(format!("Virtual account {name} deleted.")));
    if outcome.is_ok() && name == va {
        return Ok(Redirect::to("/").into_response());
    }
    let (code, notice) = Notice::of(outcome);
    let place = place(&state, &v, &domain, &va).await?;
    respond(code, admin::render(&state, &v, &place, notice).await?)
}

#[derive(Deserialize)]
pub struct Transfer {
    #[serde(default)]
    tag: String,
    #[serde(default)]
    count: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    kind: String,
}

/// `licenses/transfer`: available licenses of this pool to another.
pub async fn transfer(
    State(state): State<AppState>,
    Path((domain, va)): PoolPath,
    Posted(v, f): Posted<Transfer>,
) -> PageResult {
    let place = place(&state, &v, &domain, &va).await?;
    let outcome = async {
        let count = super::number("count", "Quantity", &f.count)?
            .ok_or_else(|| ApiError::invalid("count", "give the quantity to transfer"))?;
        let kind = Some(f.kind.trim().to_string()).filter(|k| !k.is_empty());
        let body = Body(TransferBody { tag: f.tag.clone(), count, to: f.to.clone(), kind });
        let path = body::Path((domain.clone(), va.clone()));
        let done = api::transfer_licenses(State(state.clone()), caller(&v), path, body).await?.0;
        let to = done["to"].as_str().unwrap_or_default();
        Ok(Notice::Done(format!("{count} of {} transferred to {to}.", state.catalog.display_name(&f.tag))))
    }
    .await;
    let (code, notice) = Notice::of(outcome);
    respond(code, inventory::licenses_page(&state, &v, &place, notice).await?)
}

#[derive(Deserialize)]
pub struct MoveTo {
    #[serde(default)]
    to: String,
}

/// `instances/{id}/move`: the instance to another pool of the account; its page there follows.
pub async fn move_instance(
    State(state): State<AppState>,
    Path((domain, va, id)): Path<(String, String, String)>,
    Posted(v, f): Posted<MoveTo>,
) -> PageResult {
    let place = place(&state, &v, &domain, &va).await?;
    let path = body::Path((place.account.domain.clone(), id.clone()));
    let moved = api::move_instance(State(state.clone()), caller(&v), path, Body(MoveBody { to: f.to })).await;
    match moved {
        Ok(view) => {
            let rest = format!("instances/{}", layout::path_part(&view.0.id));
            Ok(Redirect::to(&layout::url(&place.account.domain, &view.0.virtual_account, &rest)).into_response())
        }
        Err(e) => {
            let (code, notice) = Notice::of(Err(e));
            respond(code, inventory::instance_page(&state, &v, &place, &id, notice).await?)
        }
    }
}
