//! Offline reservations: paste a device's request code, choose licenses among those
//! available, get the authorization code; give licenses back with the device's return code.
//! The rules are [`crate::reservation`]'s, as for both REST front-ends.

use super::layout::{csrf_field, empty, place, shell, when_text, Notice, Place, Tab};
use super::session::Viewer;
use super::{number, PageResult, Posted};
use crate::api::ledger_of;
use crate::error::{ApiError, ApiResult};
use crate::reservation::{create, give_back as take_back, Ask};
use crate::state::AppState;
use crate::views::ReservationView;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use maud::{html, Markup};
use serde::Deserialize;
use smartlic_core::role::Action;
use smartlic_store::ReservationFilter;

type PoolPath = Path<(String, String)>;

pub async fn page(State(state): State<AppState>, v: Viewer, Path((domain, va)): PoolPath) -> PageResult {
    let place = place(&state, &v, &domain, &va).await?;
    page_with(&state, &v, &place, StatusCode::OK, Notice::None).await
}

async fn page_with(state: &AppState, v: &Viewer, place: &Place, code: StatusCode, notice: Notice) -> PageResult {
    super::respond(code, render(state, v, place, notice).await?)
}

async fn render(state: &AppState, v: &Viewer, place: &Place, notice: Notice) -> ApiResult<Markup> {
    v.caller.require(Action::View, &place.account, Some(&place.pool))?;
    let may_reserve = v.caller.require(Action::ReserveLicenses, &place.account, Some(&place.pool)).is_ok();
    let ledger = ledger_of(state, &place.pool, state.clock.now()).await?;
    let available: Vec<(String, i64)> =
        ledger.tags.iter().filter(|t| t.balance() > 0).map(|t| (t.tag.clone(), t.balance())).collect();
    let found = state.store.reservations(ReservationFilter::VirtualAccount(place.pool.id)).await?;
    let views: Vec<ReservationView> =
        found.iter().rev().map(|r| ReservationView::new(r, &place.pool.name, &state.catalog)).collect();
    let content = html! {
        @if may_reserve {
            form method="post" action=(place.url("reservations")) {
                (csrf_field(v))
                fieldset {
                    legend { "Reserve licenses" }
                    div.field {
                        label for="request_code" { "Reservation request code (from " code { "license smart reservation request local" } ")" }
                        textarea #request_code name="request_code" required {}
                    }
                    div.row {
                        div.field {
                            label for="tag" { "License (available now)" }
                            select #tag name="tag" {
                                option value="" { "None (universal reservation)" }
                                @for (tag, n) in &available { option value=(tag) { (state.catalog.display_name(tag)) " (" (n) " available)" } }
                            }
                        }
                        div.field {
                            label for="count" { "Quantity" }
                            input #count name="count" type="number" min="1" value="1";
                        }
                        button type="submit" { "Reserve" }
                    }
                }
            }
            form method="post" action=(place.url("reservations/return")) {
                (csrf_field(v))
                fieldset {
                    legend { "Return a reservation" }
                    div.field {
                        label for="return_code" { "Return code (from " code { "license smart reservation return" } ")" }
                        textarea #return_code name="return_code" required {}
                    }
                    button type="submit" { "Return licenses" }
                }
            }
        }
        h2 { "Reservations" }
        @if views.is_empty() { (empty("No reservation in this virtual account.")) } @else {
            table {
                thead { tr {
                    th scope="col" { "Device" } th scope="col" { "Kind" } th scope="col" { "Licenses" }
                    th scope="col" { "Reserved" } th scope="col" { "Status" } th scope="col" { "Authorization code" }
                } }
                tbody {
                    @for r in &views {
                        tr {
                            td { (r.udi) }
                            td { (r.kind) }
                            td { @for l in &r.licenses { (l.display_name) " × " (l.count) br; } }
                            td { (when_text(&r.created_at)) " by " (r.created_by) }
                            td { (r.status) @if let Some(at) = &r.returned_at { " " (when_text(at)) } }
                            td { @if r.status == "reserved" {
                                label.muted for={ "auth-" (r.id) } { "Authorization code for " (r.udi) }
                                input.secret id={ "auth-" (r.id) } type="text" readonly value=(r.authorization_code);
                            } }
                        }
                    }
                }
            }
        }
    };
    Ok(shell(v, place, Tab::Reservations, "Reservations", notice, content))
}

#[derive(Deserialize)]
pub struct Reserve {
    #[serde(default)]
    request_code: String,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    count: String,
}

pub async fn reserve(
    State(state): State<AppState>,
    Path((domain, va)): PoolPath,
    Posted(v, f): Posted<Reserve>,
) -> PageResult {
    let place = place(&state, &v, &domain, &va).await?;
    let outcome = async {
        // The request code says whether the reservation is universal or specific.
        let tag = f.tag.trim();
        let licenses = if tag.is_empty() {
            vec![]
        } else {
            let count = number("count", "Quantity", &f.count)?
                .ok_or_else(|| ApiError::invalid("count", "Quantity: give how many licenses to reserve"))?;
            vec![(tag.to_string(), count)]
        };
        let ask = Ask { request_code: f.request_code, kind: None, licenses };
        let made = create(&state, &v.caller, &place.account, &place.pool, &[ask]).await?;
        let r = &made[0];
        Ok(Notice::Secret {
            said: format!("Licenses reserved for {}.", r.udi()),
            label: "Authorization code: enter it on the device with 'license smart reservation install'".into(),
            secret: r.authorization_code.clone(),
        })
    }
    .await;
    let (code, notice) = Notice::of(outcome);
    page_with(&state, &v, &place, code, notice).await
}

#[derive(Deserialize)]
pub struct Return {
    #[serde(default)]
    return_code: String,
}

pub async fn give_back(
    State(state): State<AppState>,
    Path((domain, va)): PoolPath,
    Posted(v, f): Posted<Return>,
) -> PageResult {
    let place = place(&state, &v, &domain, &va).await?;
    let outcome = take_back(&state, &v.caller, &place.account, &place.pool, &f.return_code, None)
        .await
        .map(|r| Notice::Done(format!("The licenses of {} are back in {}.", r.udi(), place.pool.name)));
    let (code, notice) = Notice::of(outcome);
    page_with(&state, &v, &place, code, notice).await
}
