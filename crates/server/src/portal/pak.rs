//! The License Conversion tab (V-2, seed 004): "Convert PAKs", the smart account's PAKs with
//! their status and a form per PAK to convert it into a virtual account (quantities per SKU
//! when it allows partial fulfilment, otherwise all at once), and "Conversion History". Both go
//! through the REST API's own functions ([`crate::pak`]), so the same rules and rights apply.

use super::layout::{csrf_field, empty, place, shell, when_text, Notice, Place, Tab};
use super::session::Viewer;
use super::{number, PageResult, Posted};
use crate::error::{ApiError, ApiResult};
use crate::pak::{convert as convert_pak, history as conversions, list, PakView, SkuQuantity};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use maud::{html, Markup};
use smartlic_core::role::Action;
use std::collections::BTreeMap;

type PoolPath = Path<(String, String)>;

/// The prefix of a SKU's quantity field in a PAK's form: `qty:C9500-NW-A`.
const QUANTITY: &str = "qty:";

pub async fn page(State(state): State<AppState>, v: Viewer, Path((domain, va)): PoolPath) -> PageResult {
    let place = place(&state, &v, &domain, &va).await?;
    page_with(&state, &v, &place, StatusCode::OK, Notice::None).await
}

async fn page_with(state: &AppState, v: &Viewer, place: &Place, code: StatusCode, notice: Notice) -> PageResult {
    super::respond(code, render(state, v, place, notice).await?)
}

/// The sub-tabs of the seed's License Conversion page.
fn sections(place: &Place, history: bool) -> Markup {
    let current = |on: bool| on.then_some("page");
    html! {
        nav.tabs aria-label="License Conversion" {
            a href=(place.url("conversion")) aria-current=[current(!history)] { "Convert PAKs" }
            a href=(place.url("conversion/history")) aria-current=[current(history)] { "Conversion History" }
            a href=(place.url("events")) { "Event Log" }
        }
    }
}

async fn render(state: &AppState, v: &Viewer, place: &Place, notice: Notice) -> ApiResult<Markup> {
    let paks = list(state, &v.caller, &place.account).await?;
    // Destinations: the pools the viewer may bring licenses into.
    let targets: Vec<&str> = place
        .pools
        .iter()
        .filter(|p| v.caller.require(Action::TransferLicenses, &place.account, Some(p)).is_ok())
        .map(|p| p.name.as_str())
        .collect();
    let content = html! {
        (sections(place, false))
        p { "The Product Activation Keys (PAKs) below contain licenses that can be converted to smart licenses. \
             To add some or all of them to a virtual account, convert them below. If the PAK allows partial \
             fulfilment you choose the number of licenses to convert, otherwise all its licenses are converted." }
        @if paks.is_empty() { (empty("No PAK has been imported into this smart account.")) } @else {
            table {
                thead { tr {
                    th scope="col" { "PAK" } th scope="col" { "SKUs" } th scope="col" { "Order Number" }
                    th scope="col" { "Order Date" } th scope="col" { "Virtual Account" } th scope="col" { "Status" }
                    th scope="col" { "Actions" }
                } }
                tbody {
                    @for p in &paks {
                        tr {
                            td { (p.pak) }
                            td { (p.skus) }
                            td { (p.order_number) }
                            td { (p.order_date) }
                            td { (p.virtual_account.as_deref().unwrap_or("")) }
                            td { (p.status) }
                            td { @if p.remaining.is_empty() || targets.is_empty() { } @else { (form(v, place, p, &targets)) } }
                        }
                    }
                }
            }
        }
    };
    Ok(shell(v, place, Tab::Conversion, "License Conversion", notice, content))
}

/// The "Convert to Smart Licenses" form of one PAK.
fn form(v: &Viewer, place: &Place, p: &PakView, targets: &[&str]) -> Markup {
    let id = |what: &str| format!("{what}-{}", p.pak);
    let chosen = p.virtual_account.as_deref().filter(|va| targets.contains(va)).unwrap_or(place.pool.name.as_str());
    html! {
        form method="post" action=(place.url(&format!("conversion/paks/{}", super::layout::path_part(&p.pak)))) {
            (csrf_field(v))
            div.field {
                label for=(id("to")) { "Destination virtual account" }
                select id=(id("to")) name="virtual_account" {
                    @for t in targets { option value=(t) selected[*t == chosen] { (t) } }
                }
            }
            @if p.partial_fulfillment {
                @for l in p.lines.iter().filter(|l| l.remaining > 0) {
                    div.field {
                        label for=(id(&l.sku)) { (l.sku) " (" (l.remaining) " available to convert)" }
                        input id=(id(&l.sku)) name={ (QUANTITY) (l.sku) } type="number" min="0" max=(l.remaining) value=(l.remaining);
                    }
                }
            } @else {
                p.muted { "Partial fulfilment: not allowed. All " (p.remaining) " will be converted." }
            }
            button type="submit" { "Convert Licenses" }
        }
    }
}

pub async fn history(State(state): State<AppState>, v: Viewer, Path((domain, va)): PoolPath) -> PageResult {
    let place = place(&state, &v, &domain, &va).await?;
    let done = conversions(&state, &v.caller, &place.account).await?;
    let content = html! {
        (sections(&place, true))
        @if done.is_empty() { (empty("No PAK has been converted in this smart account.")) } @else {
            table {
                thead { tr {
                    th scope="col" { "PAK" } th scope="col" { "SKUs" } th scope="col" { "Licenses" }
                    th scope="col" { "Virtual Account" } th scope="col" { "Converted By" } th scope="col" { "Date" }
                } }
                tbody {
                    @for c in &done {
                        tr {
                            td { (c.pak) }
                            td { (c.skus) }
                            td { @for l in &c.lines { (l.tag) " × " (l.licenses) br; } }
                            td { (c.virtual_account) }
                            td { (c.by) }
                            td { (when_text(&c.at)) }
                        }
                    }
                }
            }
        }
    };
    super::respond(StatusCode::OK, shell(&v, &place, Tab::Conversion, "Conversion History", Notice::None, content))
}

/// Converts one PAK from its form: the destination, and for a partial PAK the quantities typed
/// (a blank or 0 leaves that SKU).
pub async fn convert(
    State(state): State<AppState>,
    Path((domain, va, pak)): Path<(String, String, String)>,
    Posted(v, form): Posted<BTreeMap<String, String>>,
) -> PageResult {
    let place = place(&state, &v, &domain, &va).await?;
    let outcome = async {
        let to = form.get("virtual_account").map(String::as_str).unwrap_or_default();
        let mut lines = Vec::new();
        for (field, text) in &form {
            let Some(sku) = field.strip_prefix(QUANTITY) else { continue };
            match number("quantity", sku, text)? {
                None | Some(0) => {}
                Some(quantity) => lines.push(SkuQuantity { sku: sku.to_string(), quantity }),
            }
        }
        let partial = form.keys().any(|k| k.starts_with(QUANTITY));
        if partial && lines.is_empty() {
            return Err(ApiError::invalid("quantity", "give a quantity to convert for at least one SKU"));
        }
        let done =
            convert_pak(&state, &v.caller, &place.account, &pak, to, partial.then_some(lines.as_slice())).await?;
        let c = &done.conversion;
        Ok(Notice::Done(format!("{} of PAK {} converted into {}.", c.skus, c.pak, c.virtual_account)))
    }
    .await;
    let (code, notice) = Notice::of(outcome);
    page_with(&state, &v, &place, code, notice).await
}
