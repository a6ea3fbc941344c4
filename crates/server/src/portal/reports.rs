//! Alerts and reports (C-14, C-15): current alerts, licenses against usage per tag as a chart
//! drawn on the server (SVG), now and over time, and the usage, usage history and instance
//! reports as CSV downloads.

use super::history;
use super::layout::{empty, place, shell, status, when_text, Notice, Place, Tab};
use super::session::Viewer;
use super::{respond, Failure, PageResult};
use crate::api::{ledger_of, names};
use crate::state::AppState;
use crate::streamed::{instance_report, visible_pools};
use crate::views::{compliance_words, csv_rows, to_csv, AlertView, InstanceView};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use smartlic_core::TagBalance;

type PoolPath = Path<(String, String)>;

pub async fn alerts(State(state): State<AppState>, v: Viewer, Path((domain, va)): PoolPath) -> PageResult {
    let place = place(&state, &v, &domain, &va).await?;
    v.caller.require_account_view(&place.account)?;
    let names = names(&state).await?;
    let alerts: Vec<AlertView> = state
        .store
        .alerts(place.account.id)
        .await?
        .iter()
        .filter(|a| a.virtual_account_id.is_none_or(|id| v.caller.sees(&place.account, id)))
        .map(|a| AlertView::new(a, &names))
        .collect();
    let content = html! {
        @if alerts.is_empty() { (empty("No alert: every pool is in compliance and every device was heard from.")) } @else {
            table {
                thead { tr {
                    th scope="col" { "Severity" } th scope="col" { "Kind" } th scope="col" { "Virtual account" }
                    th scope="col" { "Object" } th scope="col" { "Message" } th scope="col" { "Raised" }
                } }
                tbody {
                    @for a in &alerts {
                        tr {
                            td { (a.severity) }
                            td { code { (a.kind) } }
                            td { (a.virtual_account.as_deref().unwrap_or("")) }
                            td { (a.object) }
                            td { (a.message) }
                            td { (when_text(&a.raised_at)) }
                        }
                    }
                }
            }
        }
    };
    respond(StatusCode::OK, shell(&v, &place, Tab::Alerts, "Alerts", Notice::None, content))
}

/// One line of the usage report: a tag of a virtual account.
struct UsageLine {
    pool: String,
    tag: TagBalance,
}

/// The tags of every virtual account of the place's smart account that the viewer sees.
async fn usage_lines(state: &AppState, v: &Viewer, place: &Place) -> Result<Vec<UsageLine>, Failure> {
    v.caller.require_account_view(&place.account)?;
    let now = state.clock.now();
    let mut lines = Vec::new();
    for pool in &place.pools {
        for tag in ledger_of(state, pool, now).await?.tags {
            lines.push(UsageLine { pool: pool.name.clone(), tag });
        }
    }
    Ok(lines)
}

async fn render(state: &AppState, v: &Viewer, place: &Place) -> Result<Markup, Failure> {
    let lines = usage_lines(state, v, place).await?;
    let history = history::charts(state, place, &history::recent(state, place.pool.id).await?);
    let here: Vec<&TagBalance> = lines.iter().filter(|l| l.pool == place.pool.name).map(|l| &l.tag).collect();
    let content = html! {
        h2 { "Licenses and usage in " (place.pool.name) }
        @if here.is_empty() { (empty("No license or usage in this virtual account.")) } @else { (chart(state, &here)) }
        h2 { "Usage over time in " (place.pool.name) }
        (history)
        h2 { "Downloads" }
        ul {
            li { a href=(place.url("reports/history.csv")) download { "Usage per day (CSV)" } }
            li { a href=(place.url("reports/usage.csv")) download { "Usage per virtual account and tag (CSV)" } }
            li { a href=(place.url("reports/instances.csv")) download { "Product instances (CSV)" } }
        }
        h2 { "Usage in " (place.account.domain) }
        table {
            thead { tr {
                th scope="col" { "Virtual account" } th scope="col" { "License" } th scope="col" class="num" { "Purchased" }
                th scope="col" class="num" { "In use" } th scope="col" class="num" { "Reserved" }
                th scope="col" class="num" { "Balance" } th scope="col" { "Status" }
            } }
            tbody {
                @for l in &lines {
                    tr {
                        td { (l.pool) }
                        td { (state.catalog.display_name(&l.tag.tag)) }
                        td.num { (l.tag.purchased_with_lending()) }
                        td.num { (l.tag.in_use) }
                        td.num { (l.tag.reserved) }
                        td.num { (l.tag.balance()) }
                        td { (status(compliance_words(l.tag.in_compliance()))) }
                    }
                }
            }
        }
    };
    Ok(shell(v, place, Tab::Reports, "Reports", Notice::None, content))
}

pub async fn page(State(state): State<AppState>, v: Viewer, Path((domain, va)): PoolPath) -> PageResult {
    let place = place(&state, &v, &domain, &va).await?;
    super::respond(StatusCode::OK, render(&state, &v, &place).await?)
}

/// Bars per tag: licenses valid now after lending between tiers (light) against licenses in
/// use and reserved (dark), with the numbers written out as the table shows them, so the chart
/// says the same to a screen reader.
fn chart(state: &AppState, tags: &[&TagBalance]) -> Markup {
    const ROW: i64 = 34;
    const LEFT: i64 = 260;
    const WIDTH: i64 = 420;
    let held = |t: &TagBalance| t.purchased + t.borrowed - t.lent;
    let most = tags.iter().map(|t| t.purchased.max(held(t)).max(t.in_use + t.reserved)).max().unwrap_or(1).max(1);
    let scale = |n: i64| n.max(0) * WIDTH / most;
    let height = ROW * i64::try_from(tags.len()).unwrap_or(0) + 30;
    html! {
        svg.chart role="img" aria-labelledby="chart-title" viewBox={ "0 0 840 " (height) } width="840" height=(height) xmlns="http://www.w3.org/2000/svg" {
            title #chart-title { "Licenses valid now and licenses used, per tag" }
            @for (i, t) in tags.iter().enumerate() {
                @let y = i64::try_from(i).unwrap_or(0) * ROW + 8;
                @let used = t.in_use + t.reserved;
                text x="4" y=(y + 15) { (state.catalog.display_name(&t.tag)) }
                rect.bar-owned x=(LEFT) y=(y) width=(scale(held(t))) height="12" {}
                rect.bar-used x=(LEFT) y=(y + 13) width=(scale(used)) height="12" {}
                text x=(LEFT + WIDTH + 10) y=(y + 15) { (used) " used of " (t.purchased_with_lending()) }
            }
            text x=(LEFT) y=(height - 6) { "light: valid now, after lending · dark: in use and reserved" }
        }
    }
}

fn csv(name: &str, header: &[&str], rows: Vec<Vec<String>>) -> Response {
    (csv_headers(name), to_csv(header, rows.into_iter())).into_response()
}

/// The headers of a CSV download named `name`.
fn csv_headers(name: &str) -> [(header::HeaderName, HeaderValue); 2] {
    let disposition = format!("attachment; filename=\"{name}\"");
    [
        (header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8")),
        (
            header::CONTENT_DISPOSITION,
            HeaderValue::from_str(&disposition).unwrap_or(HeaderValue::from_static("attachment")),
        ),
    ]
}

pub async fn usage_csv(State(state): State<AppState>, v: Viewer, Path((domain, va)): PoolPath) -> PageResult {
    let place = place(&state, &v, &domain, &va).await?;
    let rows = usage_lines(&state, &v, &place)
        .await?
        .into_iter()
        .map(|l| {
            let t = l.tag;
            vec![
                place.account.domain.clone(),
                l.pool,
                t.tag.clone(),
                state.catalog.display_name(&t.tag).to_string(),
                t.purchased.to_string(),
                t.in_use.to_string(),
                t.reserved.to_string(),
                t.balance().to_string(),
                compliance_words(t.in_compliance()).to_string(),
            ]
        })
        .collect();
    let header = [
        "smart_account",
        "virtual_account",
        "tag",
        "display_name",
        "purchased",
        "in_use",
        "reserved",
        "balance",
        "status",
    ];
    Ok(csv("usage.csv", &header, rows))
}

/// The daily usage of every pool the viewer sees, over the chart's window.
pub async fn history_csv(State(state): State<AppState>, v: Viewer, Path((domain, va)): PoolPath) -> PageResult {
    let place = place(&state, &v, &domain, &va).await?;
    v.caller.require_account_view(&place.account)?;
    let rows = history::csv_rows(&state, &place).await?;
    Ok(csv("usage-history.csv", &["smart_account", "virtual_account", "tag", "date", "in_use", "purchased"], rows))
}

/// Every instance of the account the viewer sees, sent a page at a time as it is read
/// (`crate::streamed`): the manager's memory does not grow with the account.
pub async fn instances_csv(State(state): State<AppState>, v: Viewer, Path((domain, va)): PoolPath) -> PageResult {
    let place = place(&state, &v, &domain, &va).await?;
    let pools = visible_pools(&state, &v.caller, &place.account).await?;
    let row = |i: &InstanceView| {
        let usage: Vec<String> = i.usage.iter().map(|u| format!("{}={}", u.tag, u.count)).collect();
        vec![
            i.id.clone(),
            i.hostname.clone(),
            i.udi_pid.clone(),
            i.udi_serial_number.clone(),
            i.virtual_account.clone(),
            i.registered_at.clone(),
            i.last_contact_at.clone(),
            usage.join(";"),
            i.status.to_string(),
        ]
    };
    let header = [
        "id",
        "hostname",
        "udi_pid",
        "udi_serial_number",
        "virtual_account",
        "registered_at",
        "last_contact_at",
        "usage",
        "status",
    ];
    let page = move |views: &[InstanceView], _: bool| csv_rows(views.iter().map(row));
    let body = instance_report(state, pools, to_csv(&header, std::iter::empty()), page, "");
    Ok((csv_headers("instances.csv"), body).into_response())
}
