//! Inventory: General (registration tokens), Licenses and Product Instances of one virtual
//! account, through the REST API's own store calls and role checks.

use super::layout::{self, csrf_field, empty, place, shell, status, when, when_text, Notice, Place, Tab};
use super::session::Viewer;
use super::{number, respond, NoFields, PageResult, Posted};
use crate::api::{instance_for, instance_views, issue_token, ledger_of, revoke_registration_token};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::views::{PoolLicenses, TokenView};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use maud::{html, Markup};
use serde::Deserialize;
use smartlic_core::role::Action;
use smartlic_core::{token, validate};
use smartlic_store::{
    indexed_search, Account, Instance, VirtualAccount, INDEXED_SEARCH_CHARS, INSTANCE_MATCHES_LISTED,
    SHORT_SEARCH_INSTANCES,
};

type PoolPath = Path<(String, String)>;

// ---- General: registration tokens ---------------------------------------------------------

pub async fn general(State(state): State<AppState>, v: Viewer, Path((domain, va)): PoolPath) -> PageResult {
    let place = place(&state, &v, &domain, &va).await?;
    respond(StatusCode::OK, general_page(&state, &v, &place, Notice::None).await?)
}

async fn general_page(state: &AppState, v: &Viewer, place: &Place, notice: Notice) -> ApiResult<Markup> {
    v.caller.require(Action::View, &place.account, Some(&place.pool))?;
    let now = state.clock.now();
    let tokens: Vec<TokenView> =
        state.store.tokens(place.pool.id).await?.iter().rev().map(|t| TokenView::new(t, &place.pool, now)).collect();
    let may_manage = v.caller.require(Action::ManageTokens, &place.account, Some(&place.pool)).is_ok();
    let content = html! {
        h2 { "Product Instance Registration Tokens" }
        p.muted { "A device registers into this virtual account with a token: " code { "license smart register idtoken <token>" } "." }
        @if may_manage {
            form method="post" action=(place.url("general")) {
                (csrf_field(v))
                fieldset {
                    legend { "New token" }
                    div.row {
                        div.field {
                            label for="description" { "Description" }
                            input #description name="description" type="text" maxlength="256";
                        }
                        div.field {
                            label for="expires_days" { "Expire after (days, 1 to " (token::MAX_EXPIRES_DAYS) ")" }
                            input #expires_days name="expires_days" type="number" min="1" max=(token::MAX_EXPIRES_DAYS) value=(token::DEFAULT_EXPIRES_DAYS);
                        }
                        div.field {
                            label for="max_uses" { "Maximum number of uses (empty: no limit)" }
                            input #max_uses name="max_uses" type="number" min="1";
                        }
                        div.field {
                            label { input name="export_controlled" type="checkbox" value="on"; " Allow export-controlled functionality" }
                        }
                        button type="submit" { "Create token" }
                    }
                }
            }
        }
        @if tokens.is_empty() { (empty("No token yet.")) } @else {
            table {
                caption.muted { "Tokens of " (place.pool.name) ", newest first" }
                thead { tr {
                    th scope="col" { "Token" } th scope="col" { "Description" } th scope="col" { "Expires" }
                    th scope="col" class="num" { "Uses" } th scope="col" { "Export-controlled" }
                    th scope="col" { "Created by" } th scope="col" { "Status" }
                    @if may_manage { th scope="col" { span.muted { "Action" } } }
                } }
                tbody {
                    @for t in &tokens {
                        tr {
                            td { code { (t.prefix) "…" } }
                            td { (t.description) }
                            td { (when_text(&t.expires_at)) }
                            td.num { (t.uses) @if let Some(max) = t.max_uses { " of " (max) } }
                            td { @if t.export_controlled { "Allowed" } @else { "Not allowed" } }
                            td { (t.created_by) }
                            td { (t.status) }
                            @if may_manage { td {
                                @if t.status.eq_ignore_ascii_case("active") {
                                    form.inline method="post" action=(place.url("general/revoke")) {
                                        (csrf_field(v))
                                        input type="hidden" name="token" value=(t.prefix);
                                        button.danger type="submit" aria-label={ "Revoke token " (t.prefix) } { "Revoke" }
                                    }
                                }
                            } }
                        }
                    }
                }
            }
        }
    };
    Ok(shell(v, place, Tab::General, "Inventory: General", notice, content))
}

#[derive(Deserialize)]
pub struct NewToken {
    #[serde(default)]
    description: String,
    #[serde(default)]
    expires_days: String,
    #[serde(default)]
    max_uses: String,
    export_controlled: Option<String>,
}

/// Creates a token as `POST .../tokens` does and shows it this once.
pub async fn create_token(
    State(state): State<AppState>,
    Path((domain, va)): PoolPath,
    Posted(v, f): Posted<NewToken>,
) -> PageResult {
    let place = place(&state, &v, &domain, &va).await?;
    let outcome = async {
        v.caller.require(Action::ManageTokens, &place.account, Some(&place.pool))?;
        let description = validate::optional_text("description", &f.description, validate::MAX_DESCRIPTION)?;
        let days = number("expires_days", "Expire after", &f.expires_days)?.unwrap_or(token::DEFAULT_EXPIRES_DAYS);
        if !(1..=token::MAX_EXPIRES_DAYS).contains(&days) {
            let why = format!("Expire after: must be between 1 and {} days, got {days}", token::MAX_EXPIRES_DAYS);
            return Err(ApiError::invalid("expires_days", why));
        }
        let max_uses = number("max_uses", "Maximum number of uses", &f.max_uses)?
            .map(|n| validate::count("max_uses", n))
            .transpose()?;
        let export = f.export_controlled.is_some();
        let (_, text) = issue_token(&state, &v.caller, &place.pool, description, days, max_uses, export).await?;
        Ok(Notice::Secret {
            said: format!("Token created; it expires in {days} days."),
            label: "The new token".into(),
            secret: text,
        })
    }
    .await;
    let (code, notice) = Notice::of(outcome);
    respond(code, general_page(&state, &v, &place, notice).await?)
}

#[derive(Deserialize)]
pub struct RevokeToken {
    #[serde(default)]
    token: String,
}

pub async fn revoke_token(
    State(state): State<AppState>,
    Path((domain, va)): PoolPath,
    Posted(v, f): Posted<RevokeToken>,
) -> PageResult {
    let place = place(&state, &v, &domain, &va).await?;
    let outcome = async {
        v.caller.require(Action::ManageTokens, &place.account, Some(&place.pool))?;
        let t = revoke_registration_token(&state, &v.caller, &place.pool, &f.token).await?;
        Ok(Notice::Done(format!("Token {}… revoked: devices can no longer register with it.", t.prefix)))
    }
    .await;
    let (code, notice) = Notice::of(outcome);
    respond(code, general_page(&state, &v, &place, notice).await?)
}

// ---- Licenses -------------------------------------------------------------------------------

pub async fn licenses(State(state): State<AppState>, v: Viewer, Path((domain, va)): PoolPath) -> PageResult {
    let place = place(&state, &v, &domain, &va).await?;
    respond(StatusCode::OK, licenses_page(&state, &v, &place, Notice::None).await?)
}

/// The Licenses page of `place`, with a form to transfer licenses to another pool for a
/// viewer whose role may.
pub async fn licenses_page(state: &AppState, v: &Viewer, place: &Place, notice: Notice) -> ApiResult<Markup> {
    v.caller.require(Action::View, &place.account, Some(&place.pool))?;
    let now = state.clock.now();
    let ledger = ledger_of(state, &place.pool, now).await?;
    let records = state.store.licenses(place.pool.id).await?;
    let pool = PoolLicenses::new(&state.catalog, &place.account, &place.pool, ledger, &records, now);
    let may_transfer = v.caller.require(Action::TransferLicenses, &place.account, Some(&place.pool)).is_ok();
    let targets: Vec<_> = place.pools.iter().filter(|p| p.id != place.pool.id).collect();
    let content = html! {
        p { "Virtual account " strong { (pool.virtual_account) } ": " (status(pool.status)) }
        @if pool.licenses.is_empty() { (empty("No license in this virtual account.")) } @else {
            table {
                caption.muted { "Purchased counts show what higher tiers lend to lower ones: " code { "12 (-10)" } " lends 10, " code { "0 (+10)" } " borrows 10." }
                thead { tr {
                    th scope="col" { "License" } th scope="col" class="num" { "Purchased" } th scope="col" class="num" { "In use" }
                    th scope="col" class="num" { "Reserved" } th scope="col" class="num" { "Balance" } th scope="col" { "Status" }
                } }
                tbody {
                    @for l in &pool.licenses {
                        tr {
                            td { (l.display_name) br; span.muted { code { (l.tag) } } }
                            td.num { (l.purchased_display) }
                            td.num { (l.in_use) }
                            td.num { (l.reserved) }
                            td.num { (l.balance) }
                            td { (status(l.status)) }
                        }
                    }
                }
            }
            @if !pool.substitutions.is_empty() {
                h2 { "Lending between tiers" }
                ul {
                    @for s in &pool.substitutions {
                        li { code { (s.fulfilled_by) } " lends " (s.quantity) " to " code { (s.requested) } }
                    }
                }
            }
            h2 { "Purchase records" }
            table {
                thead { tr {
                    th scope="col" { "License" } th scope="col" { "SKU" } th scope="col" class="num" { "Quantity" }
                    th scope="col" { "Type" } th scope="col" { "Start" } th scope="col" { "End" }
                    th scope="col" { "Subscription" } th scope="col" { "Status" }
                } }
                tbody {
                    @for l in &pool.licenses { @for r in &l.records {
                        tr {
                            td { code { (r.tag) } }
                            td { (r.sku) }
                            td.num { (r.quantity) }
                            td { (r.kind) }
                            td { (r.start.as_deref().map(when_text).unwrap_or_default()) }
                            td { (r.end.as_deref().map(when_text).unwrap_or_default()) }
                            td { (r.subscription_id.as_deref().unwrap_or("")) }
                            td { (r.status) }
                        }
                    } }
                }
            }
            @if may_transfer && !targets.is_empty() {
                form method="post" action=(place.url("licenses/transfer")) {
                    (csrf_field(v))
                    fieldset {
                        legend { "Transfer licenses to another virtual account" }
                        div.row {
                            div.field {
                                label for="transfer-tag" { "License" }
                                select #transfer-tag name="tag" {
                                    @for l in &pool.licenses { option value=(l.tag) { (l.display_name) } }
                                }
                            }
                            div.field { label for="transfer-count" { "Quantity" } input #transfer-count name="count" type="number" min="1" required; }
                            div.field {
                                label for="transfer-to" { "To" }
                                select #transfer-to name="to" { @for p in &targets { option value=(p.name) { (p.name) } } }
                            }
                            div.field {
                                label for="transfer-type" { "Type" }
                                select #transfer-type name="kind" {
                                    option value="" { "any" }
                                    @for k in ["perpetual", "term", "subscription"] { option value=(k) { (k) } }
                                }
                            }
                            button type="submit" { "Transfer" }
                        }
                    }
                }
            }
        }
    };
    Ok(shell(v, place, Tab::Licenses, "Inventory: Licenses", notice, content))
}

// ---- Product instances ----------------------------------------------------------------------

/// Instances per page.
const PAGE: usize = 50;

#[derive(Deserialize, Default)]
pub struct Search {
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: usize,
}

pub async fn instances(
    State(state): State<AppState>,
    v: Viewer,
    Path((domain, va)): PoolPath,
    Query(s): Query<Search>,
) -> PageResult {
    let place = place(&state, &v, &domain, &va).await?;
    v.caller.require(Action::View, &place.account, Some(&place.pool))?;
    let q = s.q.trim();
    let search = |page: usize| {
        let offset = i64::try_from(page.saturating_mul(PAGE)).unwrap_or(i64::MAX);
        state.store.search_instances(place.pool.id, q, offset, i64::try_from(PAGE).unwrap_or(i64::MAX))
    };
    let (mut shown, total) = search(s.page).await?;
    let total = usize::try_from(total).unwrap_or(0);
    // Past the store's cap only the listed matches are paged through (and the page says so).
    let listed = usize::try_from(INSTANCE_MATCHES_LISTED).unwrap_or(usize::MAX);
    let more = !q.is_empty() && total > listed;
    let pages = total.min(if q.is_empty() { usize::MAX } else { listed }).div_ceil(PAGE).max(1);
    // A page past the end (the list shrank, or a typed URL) shows the last one.
    let at = s.page.min(pages - 1);
    if at != s.page {
        shown = search(at).await?.0;
    }
    let views = instance_views(&state, &shown, std::slice::from_ref(&place.pool)).await?;
    let link = |p: usize| format!("{}?q={}&page={p}", place.url("instances"), layout::path_part(q));
    let content = html! {
        form method="get" action=(place.url("instances")) role="search" {
            div.row {
                div.field {
                    label for="q" { "Search by name, PID, serial number or hostname" }
                    // With JavaScript, results follow the typing (the form still works without).
                    input #q name="q" type="search" value=(q) hx-get=(place.url("instances"))
                        hx-trigger="input changed delay:400ms, search" hx-target="#results" hx-select="#results"
                        hx-swap="outerHTML" hx-push-url="true";
                }
                button type="submit" { "Search" }
            }
        }
        div #results {
        @if more {
            p.muted { "More than " (listed) " product instances matching “" (q) "”: " (listed) " of them are listed. Refine your search to see the others." }
        } @else {
            p.muted { (total) " product instance" @if total != 1 { "s" } @if !q.is_empty() { " matching “" (q) "”" } }
        }
        @if !q.is_empty() && !indexed_search(q) {
            p.muted { "A search of fewer than " (INDEXED_SEARCH_CHARS) " characters looks at the first " (SHORT_SEARCH_INSTANCES)
                " product instances only (by PID and serial number): type " (INDEXED_SEARCH_CHARS) " characters or more to search them all." }
        }
        @if !views.is_empty() {
            table {
                thead { tr {
                    th scope="col" { "Name" } th scope="col" { "Product type (PID)" } th scope="col" { "Serial number" }
                    th scope="col" { "Last contact" } th scope="col" { "Licenses used" } th scope="col" { "Status" }
                } }
                tbody {
                    @for i in &views {
                        tr {
                            td { a href=(place.url(&format!("instances/{}", layout::path_part(&i.id)))) {
                                @if i.hostname.is_empty() { "UDI_PID:" (i.udi_pid) "; UDI_SN:" (i.udi_serial_number) } @else { (i.hostname) }
                            } }
                            td { (i.udi_pid) }
                            td { (i.udi_serial_number) }
                            td { (when_text(&i.last_contact_at)) }
                            td { @for u in &i.usage { code { (u.tag) } " × " (u.count) br; } }
                            td { (status(i.status)) }
                        }
                    }
                }
            }
            nav.pager aria-label="Pages" {
                @if at > 0 { a href=(link(at - 1)) rel="prev" { "Previous" } }
                span { "Page " (at + 1) " of " (pages) }
                @if at + 1 < pages { a href=(link(at + 1)) rel="next" { "Next" } }
            }
        }
        }
    };
    respond(StatusCode::OK, shell(&v, &place, Tab::Instances, "Inventory: Product Instances", Notice::None, content))
}

/// An instance of the place's pool, with the viewer's right to `action` on it checked as the
/// API checks it; one of another pool is "not found" here, as its URL names the wrong pool.
async fn pooled_instance(
    state: &AppState,
    v: &Viewer,
    place: &Place,
    id: &str,
    action: Action,
) -> ApiResult<(Account, VirtualAccount, Instance)> {
    let found = instance_for(state, &v.caller, &place.account.domain, id, action).await?;
    if found.1.id != place.pool.id {
        let why = format!("product instance '{id}' is not in virtual account '{}'", place.pool.name);
        return Err(ApiError::not_found(why));
    }
    Ok(found)
}

pub async fn instance(
    State(state): State<AppState>,
    v: Viewer,
    Path((domain, va, id)): Path<(String, String, String)>,
) -> PageResult {
    let place = place(&state, &v, &domain, &va).await?;
    respond(StatusCode::OK, instance_page(&state, &v, &place, &id, Notice::None).await?)
}

/// An instance's details, with the forms that remove it or move it to another pool of the
/// account, each shown only to whom the API would let do it.
pub async fn instance_page(state: &AppState, v: &Viewer, place: &Place, id: &str, notice: Notice) -> ApiResult<Markup> {
    let (account, pool, inst) = pooled_instance(state, v, place, id, Action::View).await?;
    let view = instance_views(state, std::slice::from_ref(&inst), std::slice::from_ref(&pool)).await?.remove(0);
    let may_remove = v.caller.require(Action::ManageInstances, &place.account, Some(&pool)).is_ok();
    let targets: Vec<&VirtualAccount> = if may_remove {
        place
            .pools
            .iter()
            .filter(|p| p.id != pool.id && v.caller.require(Action::ManageInstances, &account, Some(p)).is_ok())
            .collect()
    } else {
        Vec::new()
    };
    let here = |rest: &str| place.url(&format!("instances/{}/{rest}", layout::path_part(&inst.id)));
    let content = html! {
        dl.details {
            dt { "Hostname" } dd { (view.hostname) }
            dt { "UDI" } dd { "PID:" (view.udi_pid) ", SN:" (view.udi_serial_number) }
            dt { "Virtual account" } dd { (view.virtual_account) }
            dt { "Registered" } dd { (when(inst.registered_at)) }
            dt { "Last contact" } dd { (when(inst.last_contact_at)) }
            dt { "ID certificate" } dd { "serial " code { (view.certificate_serial) } ", expires " (when(inst.certificate.expires_at)) }
            dt { "Export-controlled" } dd { @if inst.export_controlled { "Allowed" } @else { "Not allowed" } }
            dt { "Status" } dd { (status(view.status)) }
            dt { "Licenses used" } dd {
                @if view.usage.is_empty() { "none" }
                @for u in &view.usage { code { (u.tag) } " × " (u.count) br; }
                @if view.usage_released { span.muted { "(released: not heard from for " (state.policy.silent_release_days) " days)" } }
            }
            @if let Some(e) = &view.evaluation_used { dt { "Evaluation used" } dd { (e) } }
        }
        @if !targets.is_empty() {
            form method="post" action=(here("move")) {
                (csrf_field(v))
                div.row {
                    div.field {
                        label for="to" { "Move to virtual account" }
                        select #to name="to" { @for p in &targets { option value=(p.name) { (p.name) } } }
                    }
                    button type="submit" { "Move product instance" }
                }
                p.muted { "Its licenses in use move with it: the target virtual account must hold them." }
            }
        }
        @if may_remove {
            form method="post" action=(here("remove")) {
                (csrf_field(v))
                p { "Removing gives its licenses back; the device learns it is unregistered at its next contact." }
                button.danger type="submit" { "Remove product instance" }
            }
        }
        p { a href=(place.url("instances")) { "Back to the product instances" } }
    };
    let title = format!("Product instance {}", inst.id);
    Ok(shell(v, place, Tab::Instances, &title, notice, content))
}

pub async fn remove_instance(
    State(state): State<AppState>,
    Path((domain, va, id)): Path<(String, String, String)>,
    Posted(v, NoFields {}): Posted<NoFields>,
) -> PageResult {
    let place = place(&state, &v, &domain, &va).await?;
    let (_, _, inst) = pooled_instance(&state, &v, &place, &id, Action::ManageInstances).await?;
    state.store.remove_instance(&inst.id, "removed", v.caller.login(), state.clock.now()).await?;
    Ok(Redirect::to(&place.url("instances")).into_response())
}
