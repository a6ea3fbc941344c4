//! Usage over time (C-15): the jobs record, once a day (the day's last run wins), how many
//! licenses of each tag every pool uses and holds; the Reports page draws the last
//! [`DAYS_SHOWN`] days per tag as an SVG line chart, and offers the same numbers as CSV.
//! Days older than [`DAYS_KEPT`] are dropped by the same job, so the table stays bounded (one
//! row per pool, tag and day kept).

use super::layout::{empty, Place};
use crate::state::AppState;
use maud::{html, Markup};
use smartlic_core::time::DAY_MS;
use smartlic_core::Timestamp;
use smartlic_store::{StoreError, UsageDay};
use std::collections::BTreeMap;

/// Days the chart covers, today included.
pub const DAYS_SHOWN: i64 = 30;

/// Days of usage history kept, today included (two years): a longer chart or report is for the
/// usage report of the REST API, computed from the instances.
pub const DAYS_KEPT: i64 = 730;

/// The start (00:00 UTC) of the day holding `t`.
fn day_of(t: Timestamp) -> Timestamp {
    Timestamp(t.0 - t.0.rem_euclid(DAY_MS))
}

/// `YYYY-MM-DD` of a day.
pub fn date(day: Timestamp) -> String {
    day.to_datetime().format("%Y-%m-%d").to_string()
}

/// Records today's usage of every pool (a job), and drops the days past [`DAYS_KEPT`]. A pool
/// whose counters drifted is skipped: the jobs raise its alert, and a wrong number is never
/// recorded.
pub async fn record_today(state: &AppState, now: Timestamp) -> anyhow::Result<()> {
    let mut days = Vec::new();
    for pool in state.store.all_virtual_accounts().await? {
        let counts = match state.store.pool_counts(pool.id, now).await {
            Err(StoreError::Corrupt(_)) => continue,
            counts => counts?,
        };
        for t in counts.ledger(&state.catalog).tags {
            days.push(UsageDay {
                virtual_account_id: pool.id,
                tag: t.tag.clone(),
                day: day_of(now),
                in_use: t.in_use,
                purchased: t.purchased,
            });
        }
    }
    state.store.record_usage_days(days).await?;
    let pruned = state.store.prune_usage_history(day_of(now).plus_days(1 - DAYS_KEPT)).await?;
    if pruned > 0 {
        tracing::info!(days = pruned, "usage history older than {DAYS_KEPT} days dropped");
    }
    Ok(())
}

/// The recorded days of `pool` within the chart's window, by tag.
pub async fn recent(state: &AppState, pool_id: i64) -> Result<BTreeMap<String, Vec<UsageDay>>, StoreError> {
    let since = day_of(state.clock.now()).plus_days(1 - DAYS_SHOWN);
    let mut by_tag: BTreeMap<String, Vec<UsageDay>> = BTreeMap::new();
    for d in state.store.usage_history(pool_id, since).await? {
        by_tag.entry(d.tag.clone()).or_default().push(d);
    }
    Ok(by_tag)
}

/// One chart per tag: licenses purchased (light line) and in use (dark line) per day, with a
/// table of the same numbers for screen readers and for reading exact values.
pub fn charts(state: &AppState, place: &Place, by_tag: &BTreeMap<String, Vec<UsageDay>>) -> Markup {
    let first = day_of(state.clock.now()).plus_days(1 - DAYS_SHOWN);
    html! {
        @if by_tag.is_empty() {
            (empty("No usage recorded yet: the manager records each pool's usage once a day."))
        }
        @for (tag, days) in by_tag {
            @let name = state.catalog.display_name(tag);
            figure {
                (line_chart(&format!("{name}: purchased and in use per day"), first, days))
                figcaption { (name) " in " (place.pool.name) ", last " (DAYS_SHOWN) " days" }
            }
        }
    }
}

fn line_chart(title: &str, first: Timestamp, days: &[UsageDay]) -> Markup {
    const LEFT: i64 = 40;
    const WIDTH: i64 = 600;
    const HEIGHT: i64 = 160;
    let most = days.iter().map(|d| d.in_use.max(d.purchased)).max().unwrap_or(1).max(1);
    let x = |d: &UsageDay| LEFT + (d.day.0 - first.0) / DAY_MS * WIDTH / (DAYS_SHOWN - 1);
    let y = |n: i64| 10 + HEIGHT - n.max(0) * HEIGHT / most;
    let line = |value: fn(&UsageDay) -> i64| {
        days.iter().map(|d| format!("{},{}", x(d), y(value(d)))).collect::<Vec<_>>().join(" ")
    };
    let last = days.last();
    html! {
        svg.chart role="img" aria-label=(title) viewBox={ "0 0 760 " (HEIGHT + 40) } width="760" height=(HEIGHT + 40) xmlns="http://www.w3.org/2000/svg" {
            title { (title) }
            line.axis x1=(LEFT) y1=(HEIGHT + 10) x2=(LEFT + WIDTH) y2=(HEIGHT + 10) {}
            text x="4" y="16" { (most) }
            text x="4" y=(HEIGHT + 10) { "0" }
            text x=(LEFT) y=(HEIGHT + 30) { (date(first)) }
            text x=(LEFT + WIDTH - 70) y=(HEIGHT + 30) { (date(first.plus_days(DAYS_SHOWN - 1))) }
            polyline.line-owned points=(line(|d| d.purchased)) {}
            polyline.line-used points=(line(|d| d.in_use)) {}
            // Dots too, so that a single recorded day shows.
            @for d in days {
                circle.dot-owned cx=(x(d)) cy=(y(d.purchased)) r="3" {}
                circle.dot-used cx=(x(d)) cy=(y(d.in_use)) r="3" {}
            }
            @if let Some(d) = last {
                text x=(LEFT + WIDTH + 8) y=(y(d.purchased)) { (d.purchased) " purchased" }
                text x=(LEFT + WIDTH + 8) y=(y(d.in_use) + 12) { (d.in_use) " in use" }
            }
        }
    }
}

/// The CSV rows of the history of `pools`: pool, tag, date, in use, purchased.
pub async fn csv_rows(state: &AppState, place: &Place) -> Result<Vec<Vec<String>>, StoreError> {
    let mut rows = Vec::new();
    for pool in &place.pools {
        for days in recent(state, pool.id).await?.into_values() {
            for d in days {
                rows.push(vec![
                    place.account.domain.clone(),
                    pool.name.clone(),
                    d.tag,
                    date(d.day),
                    d.in_use.to_string(),
                    d.purchased.to_string(),
                ]);
            }
        }
    }
    Ok(rows)
}
