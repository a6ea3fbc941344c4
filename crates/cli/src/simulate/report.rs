//! What a simulation produces: one row per simulated day, written as CSV, drawn as SVG and
//! summed up on the terminal.
//!
//! The chart is hand-drawn SVG (a few polylines per panel): a plotting crate would bring more
//! code than the four panels need.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// The registration and authorization states a device is counted in, in CSV column order.
pub const REGISTRATION: [&str; 7] = [
    "not_deployed",
    "unregistered",
    "registering",
    "registration_failed",
    "registered",
    "registration_expired",
    "retired",
];
pub const AUTHORIZATION: [&str; 6] = [
    "evaluation",
    "evaluation_expired",
    "authorized",
    "out_of_compliance",
    "authorization_expired",
    "no_licenses_in_use",
];
/// Requests the devices sent, by kind (those lost in an outage included).
pub const REQUESTS: [&str; 4] = ["register", "authorize", "renew_id", "deregister"];
/// Failed requests, by what the device made of them.
pub const FAILURES: [&str; 3] = ["communication", "refused", "not_registered"];

/// One simulated day, counted at its end.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DayRow {
    pub day: u32,
    pub date: String,
    pub registration: [u64; REGISTRATION.len()],
    pub authorization: [u64; AUTHORIZATION.len()],
    pub requests: [u64; REQUESTS.len()],
    pub failures: [u64; FAILURES.len()],
    /// Per (pool, tag): purchased, in use, balance.
    pub pools: BTreeMap<(String, String), (i64, i64, i64)>,
    /// Alerts open on the manager.
    pub alerts: u64,
}

pub fn csv(rows: &[DayRow]) -> String {
    let mut out = String::from("day,date");
    for name in REGISTRATION.iter().chain(&AUTHORIZATION) {
        let _ = write!(out, ",{name}");
    }
    for name in REQUESTS {
        let _ = write!(out, ",requests_{name}");
    }
    for name in FAILURES {
        let _ = write!(out, ",failures_{name}");
    }
    if let Some(first) = rows.first() {
        for (pool, tag) in first.pools.keys() {
            for what in ["purchased", "in_use", "balance"] {
                let _ = write!(out, ",{pool}/{tag}/{what}");
            }
        }
    }
    out.push_str(",alerts\n");
    for r in rows {
        let _ = write!(out, "{},{}", r.day, r.date);
        for n in r.registration.iter().chain(&r.authorization).chain(&r.requests).chain(&r.failures) {
            let _ = write!(out, ",{n}");
        }
        for (purchased, in_use, balance) in r.pools.values() {
            let _ = write!(out, ",{purchased},{in_use},{balance}");
        }
        let _ = writeln!(out, ",{}", r.alerts);
    }
    out
}

/// The terminal summary: totals, final states, and each pool tag's worst balance.
pub fn summary(rows: &[DayRow], devices: u64, took: std::time::Duration) -> String {
    let mut out = String::new();
    let Some(last) = rows.last() else { return out };
    let _ = writeln!(out, "simulated {} devices over {} days in {:.1} s", devices, rows.len(), took.as_secs_f64());
    let total = |pick: fn(&DayRow) -> &[u64], i: usize| rows.iter().map(|r| pick(r)[i]).sum::<u64>();
    let list = |names: &[&str], pick: fn(&DayRow) -> &[u64]| {
        names.iter().enumerate().map(|(i, n)| format!("{n} {}", total(pick, i))).collect::<Vec<_>>().join(", ")
    };
    let _ = writeln!(out, "requests: {}", list(&REQUESTS, |r| &r.requests));
    let _ = writeln!(out, "failures: {}", list(&FAILURES, |r| &r.failures));
    let state = |names: &[&str], counts: &[u64]| {
        names
            .iter()
            .zip(counts)
            .filter(|(_, c)| **c > 0)
            .map(|(n, c)| format!("{n} {c}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(out, "at the end: {}", state(&REGISTRATION, &last.registration));
    let _ = writeln!(out, "            {}", state(&AUTHORIZATION, &last.authorization));
    for key in last.pools.keys() {
        let balances: Vec<(u32, i64)> = rows.iter().map(|r| (r.day, r.pools[key].2)).collect();
        let short_days = balances.iter().filter(|(_, b)| *b < 0).count();
        let worst = balances.iter().min_by_key(|(_, b)| *b).copied().unwrap_or_default();
        let _ = writeln!(
            out,
            "pool {}, {}: lowest balance {} on day {}, out of compliance {short_days} days",
            key.0, key.1, worst.1, worst.0
        );
    }
    let peak = rows.iter().max_by_key(|r| r.alerts).map(|r| (r.alerts, r.day)).unwrap_or_default();
    let _ = writeln!(out, "alerts: at most {} open (day {})", peak.0, peak.1);
    out
}

/// Writes `days.csv` and `days.svg` into `dir` (created if needed).
pub fn write(dir: &Path, rows: &[DayRow]) -> anyhow::Result<()> {
    use anyhow::Context;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, text) in [("days.csv", csv(rows)), ("days.svg", svg(rows))] {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// A series of one panel: its name and one value per day.
type Series = (String, Vec<f64>);

const WIDTH: f64 = 960.0;
const PANEL: f64 = 220.0;
const MARGIN: f64 = 60.0;
const COLORS: [&str; 8] = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

/// Four panels over the days: registration states, authorization states, requests and failures,
/// pool balances.
pub fn svg(rows: &[DayRow]) -> String {
    let column = |pick: &dyn Fn(&DayRow) -> f64| rows.iter().map(pick).collect::<Vec<f64>>();
    let states = |names: &[&str], pick: fn(&DayRow) -> &[u64]| -> Vec<Series> {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.replace('_', " "), column(&|r| pick(r)[i] as f64)))
            .filter(|(_, v)| v.iter().any(|x| *x != 0.0))
            .collect()
    };
    let mut traffic = states(&REQUESTS, |r| &r.requests);
    traffic.extend(states(&FAILURES, |r| &r.failures).into_iter().map(|(n, v)| (format!("failed: {n}"), v)));
    let pools: Vec<Series> = rows
        .first()
        .map(|r| r.pools.keys().cloned().collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|key| (format!("{} / {}", key.0, key.1), column(&|r| r.pools[&key].2 as f64)))
        .collect();
    let panels = [
        ("Devices by registration state", states(&REGISTRATION, |r| &r.registration)),
        ("Devices by authorization state", states(&AUTHORIZATION, |r| &r.authorization)),
        ("Requests to the manager and failures per day", traffic),
        ("License balance per pool and tag (below 0: out of compliance)", pools),
    ];
    let height = MARGIN + panels.len() as f64 * (PANEL + MARGIN);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    for (i, (title, series)) in panels.iter().enumerate() {
        panel(&mut out, MARGIN + i as f64 * (PANEL + MARGIN), title, series, rows.len());
    }
    out.push_str("</svg>\n");
    out
}

fn panel(out: &mut String, top: f64, title: &str, series: &[Series], days: usize) {
    let (left, right) = (MARGIN, WIDTH - 220.0);
    let all = series.iter().flat_map(|(_, v)| v.iter().copied());
    let (lo, hi) = all.fold((0.0f64, 1.0f64), |(lo, hi), x| (lo.min(x), hi.max(x)));
    let x = |d: usize| left + (right - left) * d as f64 / (days.max(2) - 1) as f64;
    let y = |v: f64| top + PANEL - PANEL * (v - lo) / (hi - lo);
    let _ = writeln!(out, "<text x=\"{left}\" y=\"{}\" font-weight=\"bold\">{}</text>", top - 10.0, escape(title));
    let _ = writeln!(
        out,
        "<rect x=\"{left}\" y=\"{top}\" width=\"{}\" height=\"{PANEL}\" fill=\"none\" stroke=\"#999\"/>",
        right - left
    );
    for v in [lo, 0.0, hi] {
        let _ = writeln!(out, "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{v}</text>", left - 4.0, y(v) + 4.0);
    }
    if lo < 0.0 {
        let _ = writeln!(
            out,
            "<line x1=\"{left}\" x2=\"{right}\" y1=\"{0:.1}\" y2=\"{0:.1}\" stroke=\"#999\" stroke-dasharray=\"4\"/>",
            y(0.0)
        );
    }
    let _ = writeln!(
        out,
        "<text x=\"{right}\" y=\"{}\" text-anchor=\"end\">day {}</text>",
        top + PANEL + 16.0,
        days.saturating_sub(1)
    );
    for (k, (name, values)) in series.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        let points: Vec<String> = values.iter().enumerate().map(|(d, v)| format!("{:.1},{:.1}", x(d), y(*v))).collect();
        let _ = writeln!(
            out,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" points=\"{}\"/>",
            points.join(" ")
        );
        let ly = top + 14.0 + 16.0 * k as f64;
        let _ = writeln!(
            out,
            "<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{color}\"/>",
            right + 12.0,
            ly - 9.0
        );
        let _ = writeln!(out, "<text x=\"{}\" y=\"{ly}\">{}</text>", right + 26.0, escape(name));
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
