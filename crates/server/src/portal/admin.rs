//! Administration: the users and API clients of a smart account (C-2, C-3). New ones are
//! granted by the REST API's own `grant`, so the same rules decide who may give which role.

use super::layout::{csrf_field, empty, path_part, place, shell, when, Notice, Place, Tab};
use super::session::Viewer;
use super::{respond, PageResult, Posted};
use crate::api::{grant, NewPrincipalBody};
use crate::auth::random_text;
use crate::error::ApiResult;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use maud::{html, Markup};
use serde::Deserialize;
use smartlic_core::role::Action;
use smartlic_core::Role;
use smartlic_store::{Principal, PrincipalKind};

type PoolPath = Path<(String, String)>;

pub async fn page(State(state): State<AppState>, v: Viewer, Path((domain, va)): PoolPath) -> PageResult {
    let place = place(&state, &v, &domain, &va).await?;
    super::respond(StatusCode::OK, render(&state, &v, &place, Notice::None).await?)
}

fn role_select(v: &Viewer, place: &Place, id: &str) -> Markup {
    html! {
        div.field {
            label for=(format!("{id}-role")) { "Role" }
            select id=(format!("{id}-role")) name="role" {
                @for r in Role::ALL.iter().skip(1).filter(|r| v.caller.role().may_grant(**r)) {
                    option value=(r.as_str()) { (r.as_str()) }
                }
            }
        }
        div.field {
            label for=(format!("{id}-va")) { "Virtual account (virtual-account roles)" }
            select id=(format!("{id}-va")) name="virtual_account" {
                @for p in &place.pools { option value=(p.name) selected[p.id == place.pool.id] { (p.name) } }
            }
        }
    }
}

/// The users (`users`) or API clients (`api-clients`) of the account, each with the actions the
/// API offers on it for a viewer who may manage access (the API still decides per principal).
fn principals_table(v: &Viewer, list: &[&Principal], place: &Place, kind: &str, may_manage: bool) -> Markup {
    html! {
        table {
            thead { tr {
                th scope="col" { "Name" } th scope="col" { "Login" } th scope="col" { "Role" }
                th scope="col" { "Virtual account" } th scope="col" { "Created" } th scope="col" { "Status" }
                @if may_manage { th scope="col" { "Actions" } }
            } }
            tbody {
                @for p in list {
                    tr {
                        td { (p.name) }
                        td { code { (p.login) } }
                        td { (p.role.as_str()) }
                        td { (p.virtual_account_id.and_then(|id| place.pools.iter().find(|v| v.id == id)).map(|v| v.name.as_str()).unwrap_or("")) }
                        td { (when(p.created_at)) }
                        td { @if p.disabled_at.is_some() { "disabled" } @else { "active" } }
                        @if may_manage && p.role != Role::Operator { td.actions { (principal_actions(v, place, kind, p)) } }
                        @else if may_manage { td {} }
                    }
                }
            }
        }
    }
}

/// One small form per action, each with its CSRF token; a button's label names its principal.
fn principal_actions(v: &Viewer, place: &Place, kind: &str, p: &Principal) -> Markup {
    let url = |action: &str| place.url(&format!("admin/{kind}/{}/{action}", path_part(&p.name)));
    let toggle = if p.disabled_at.is_some() { "enable" } else { "disable" };
    html! {
        form.inline method="post" action=(url(toggle)) {
            (csrf_field(v))
            button type="submit" aria-label={ (toggle) " " (p.login) } { (toggle) }
        }
        @if kind == "api-clients" {
            form.inline method="post" action=(url("rotate-secret")) {
                (csrf_field(v))
                button type="submit" aria-label={ "new secret for " (p.login) } { "new secret" }
            }
        } @else {
            form.inline method="post" action=(url("password")) {
                (csrf_field(v))
                label for={ "password-" (p.id) } { "New password" }
                input id={ "password-" (p.id) } name="password" type="password" autocomplete="new-password" minlength="12" required;
                button type="submit" aria-label={ "set the password of " (p.login) } { "set" }
            }
        }
        form.inline method="post" action=(url("delete")) {
            (csrf_field(v))
            button.danger type="submit" aria-label={ "delete " (p.login) } { "delete" }
        }
    }
}

/// The account's virtual accounts with a form to add one and a button to delete each (the
/// API refuses a default or non-empty one, naming why).
fn pools_section(v: &Viewer, place: &Place) -> Markup {
    html! {
        h2 { "Virtual accounts" }
        table {
            thead { tr { th scope="col" { "Name" } th scope="col" { "Description" } th scope="col" { "Actions" } } }
            tbody {
                @for p in &place.pools {
                    tr {
                        td { (p.name) @if p.is_default { " (default)" } }
                        td { (p.description) }
                        td {
                            @if !p.is_default {
                                form.inline method="post" action=(place.url(&format!("admin/virtual-accounts/{}/delete", path_part(&p.name)))) {
                                    (csrf_field(v))
                                    button.danger type="submit" aria-label={ "delete virtual account " (p.name) } { "delete" }
                                }
                            }
                        }
                    }
                }
            }
        }
        form method="post" action=(place.url("admin/virtual-accounts")) {
            (csrf_field(v))
            fieldset {
                legend { "New virtual account" }
                div.row {
                    div.field { label for="va-name" { "Name" } input #va-name name="name" type="text" required; }
                    div.field { label for="va-description" { "Description" } input #va-description name="description" type="text"; }
                    button type="submit" { "Add virtual account" }
                }
            }
        }
    }
}

/// The account's settings: for the operator, who alone may change them (as in the API).
fn settings_section(v: &Viewer, place: &Place) -> Markup {
    let allowed = place.account.universal_reservation;
    html! {
        h2 { "Account settings" }
        form method="post" action=(place.url("admin/settings")) {
            (csrf_field(v))
            fieldset {
                legend { "Reservations" }
                div.row {
                    div.field {
                        label for="universal-reservation" { "Universal reservations for this account's devices" }
                        select #universal-reservation name="universal_reservation" {
                            option value="false" selected[!allowed] { "forbidden" }
                            option value="true" selected[allowed] { "allowed" }
                        }
                    }
                    button type="submit" { "Save settings" }
                }
            }
        }
    }
}

/// The Administration page of `place`, with `notice` on top.
pub async fn render(state: &AppState, v: &Viewer, place: &Place, notice: Notice) -> ApiResult<Markup> {
    v.caller.require_account_view(&place.account)?;
    let all = state.store.principals(Some(place.account.id)).await?;
    let visible: Vec<&Principal> =
        all.iter().filter(|p| p.virtual_account_id.is_none_or(|id| v.caller.sees(&place.account, id))).collect();
    let users: Vec<&Principal> = visible.iter().copied().filter(|p| p.kind == PrincipalKind::User).collect();
    let clients: Vec<&Principal> = visible.iter().copied().filter(|p| p.kind == PrincipalKind::ApiClient).collect();
    let may_manage = v.caller.require(Action::ManageAccess, &place.account, Some(&place.pool)).is_ok();
    let may_manage_pools = v.caller.require(Action::ManageVirtualAccounts, &place.account, None).is_ok();
    // Who may create pools (the operator, a smart account administrator) may enable conversion.
    let conversion = match may_manage_pools {
        true => Some(super::conversion::section(state, v, place).await?),
        false => None,
    };
    let content = html! {
        h2 { "Users" }
        @if users.is_empty() { (empty("No user.")) } @else { (principals_table(v, &users, place, "users", may_manage)) }
        @if may_manage {
            form method="post" action=(place.url("admin/users")) {
                (csrf_field(v))
                fieldset {
                    legend { "New user (logs in as name@" (place.account.domain) ")" }
                    div.row {
                        div.field { label for="user-name" { "Name" } input #user-name name="name" type="text" required; }
                        div.field {
                            label for="user-password" { "Password (12 characters or more)" }
                            input #user-password name="password" type="password" autocomplete="new-password" minlength="12" required;
                        }
                        (role_select(v, place, "user"))
                        button type="submit" { "Add user" }
                    }
                }
            }
        }
        h2 { "API clients" }
        @if clients.is_empty() { (empty("No API client.")) } @else { (principals_table(v, &clients, place, "api-clients", may_manage)) }
        @if may_manage {
            form method="post" action=(place.url("admin/api-clients")) {
                (csrf_field(v))
                fieldset {
                    legend { "New API client (its secret is shown once)" }
                    div.row {
                        div.field { label for="client-name" { "Name" } input #client-name name="name" type="text"; }
                        (role_select(v, place, "client"))
                        button type="submit" { "Add API client" }
                    }
                }
            }
        }
        @if may_manage_pools { (pools_section(v, place)) }
        @if let Some(conversion) = conversion { (conversion) }
        @if v.caller.require_operator("change account settings").is_ok() { (settings_section(v, place)) }
    };
    Ok(shell(v, place, Tab::Admin, "Administration", notice, content))
}

#[derive(Deserialize)]
pub struct NewPrincipal {
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    virtual_account: String,
    password: Option<String>,
}

impl NewPrincipal {
    /// The REST body `grant` takes: the pool only for a role bound to one.
    fn body(self) -> NewPrincipalBody {
        let bound = Role::parse(&self.role).is_some_and(Role::is_virtual_account_scoped);
        NewPrincipalBody {
            name: Some(self.name.trim().to_string()).filter(|n| !n.is_empty()),
            role: self.role,
            virtual_account: bound.then_some(self.virtual_account),
            password: self.password,
        }
    }
}

pub async fn create_user(
    State(state): State<AppState>,
    Path((domain, va)): PoolPath,
    Posted(v, f): Posted<NewPrincipal>,
) -> PageResult {
    let place = place(&state, &v, &domain, &va).await?;
    let outcome = grant(&state, &v.caller, &place.account.domain, PrincipalKind::User, f.body(), None)
        .await
        .map(|(p, _, _)| Notice::Done(format!("User {} added; they sign in as {}.", p.name, p.login)));
    let (code, notice) = Notice::of(outcome);
    respond(code, render(&state, &v, &place, notice).await?)
}

pub async fn create_client(
    State(state): State<AppState>,
    Path((domain, va)): PoolPath,
    Posted(v, f): Posted<NewPrincipal>,
) -> PageResult {
    let place = place(&state, &v, &domain, &va).await?;
    let secret = random_text(32);
    let body = NewPrincipalBody { password: None, ..f.body() };
    let outcome = grant(&state, &v.caller, &place.account.domain, PrincipalKind::ApiClient, body, Some(secret.clone()))
        .await
        .map(|(p, _, _)| Notice::Secret {
            said: format!("API client {} added with the client ID {}.", p.name, p.login),
            label: "Its client secret".into(),
            secret,
        });
    let (code, notice) = Notice::of(outcome);
    respond(code, render(&state, &v, &place, notice).await?)
}
