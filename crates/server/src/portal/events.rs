//! The event log of a smart account (C-14): filtered by type, by date and by text.

use super::layout::{empty, place, shell, when, Notice, Tab};
use super::session::Viewer;
use super::{respond, PageResult};
use crate::api::names;
use crate::error::ApiError;
use crate::state::AppState;
use crate::views::EventView;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use maud::html;
use serde::Deserialize;
use smartlic_core::Timestamp;
use smartlic_store::{indexed_search, EventQuery, INDEXED_SEARCH_CHARS, SHORT_SEARCH_EVENTS};

/// Events shown at most (the newest that match); older ones are for the REST API's paging.
const SHOWN: i64 = 200;

#[derive(Deserialize, Default)]
pub struct Filter {
    #[serde(default, rename = "type")]
    kind: String,
    /// `YYYY-MM-DD`, both days included.
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    q: String,
}

/// A day typed in the filter, or a message naming the field.
fn day(field: &str, text: &str) -> Result<Option<Timestamp>, ApiError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    Timestamp::parse(text)
        .map(Some)
        .ok_or_else(|| ApiError::invalid(field, format!("{field}: '{text}' is not a date (YYYY-MM-DD)")))
}

pub async fn page(
    State(state): State<AppState>,
    v: Viewer,
    Path((domain, va)): Path<(String, String)>,
    Query(f): Query<Filter>,
) -> PageResult {
    let place = place(&state, &v, &domain, &va).await?;
    v.caller.require_account_view(&place.account)?;
    let (from, to, notice) = match (day("from", &f.from), day("to", &f.to)) {
        (Ok(from), Ok(to)) => (from, to.map(|t| t.plus_days(1)), Notice::None),
        (Err(e), _) | (_, Err(e)) => (None, None, Notice::Error(e.message)),
    };
    let names = names(&state).await?;
    // A virtual-account role sees its pool's events (and those of no pool); others see all.
    let pools = v.caller.role().is_virtual_account_scoped().then(|| place.pools.iter().map(|p| p.id).collect());
    let query = EventQuery {
        account_id: place.account.id,
        pools,
        kind: f.kind.trim().to_string(),
        from,
        to,
        text: f.q.clone(),
        limit: SHOWN,
    };
    let shown: Vec<EventView> =
        state.store.search_events(query).await?.iter().map(|e| EventView::new(e, &names)).collect();
    let kinds = state.store.event_kinds(place.account.id).await?;
    let content = html! {
        form method="get" action=(place.url("events")) role="search" {
            div.row {
                div.field {
                    label for="type" { "Type" }
                    select #type name="type" {
                        option value="" { "All types" }
                        @for k in &kinds { option value=(k) selected[*k == f.kind] { (k) } }
                    }
                }
                div.field { label for="from" { "From (day)" } input #from name="from" type="date" value=(f.from); }
                div.field { label for="to" { "To (day)" } input #to name="to" type="date" value=(f.to); }
                div.field { label for="q" { "Search" } input #q name="q" type="search" value=(f.q); }
                button type="submit" { "Filter" }
            }
        }
        @if !f.q.trim().is_empty() && !indexed_search(&f.q) {
            p.muted { "A search of fewer than " (INDEXED_SEARCH_CHARS) " characters looks at the newest " (SHORT_SEARCH_EVENTS)
                " events only: type " (INDEXED_SEARCH_CHARS) " characters or more to search the whole log." }
        }
        @if shown.is_empty() { (empty("No event matches.")) } @else {
            table {
                caption.muted { "Most recent first; at most " (SHOWN) " shown" }
                thead { tr {
                    th scope="col" { "Time" } th scope="col" { "Type" } th scope="col" { "Virtual account" }
                    th scope="col" { "By" } th scope="col" { "Object" } th scope="col" { "Message" }
                } }
                tbody {
                    @for e in &shown {
                        tr {
                            td { (Timestamp::parse(&e.at).map(when).unwrap_or_default()) }
                            td { code { (e.kind) } }
                            td { (e.virtual_account.as_deref().unwrap_or("")) }
                            td { (e.actor) }
                            td { (e.object) }
                            td { (e.detail) }
                        }
                    }
                }
            }
        }
    };
    let status = if matches!(notice, Notice::Error(_)) { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    respond(status, shell(&v, &place, Tab::Events, "Inventory: Event Log", notice, content))
}
