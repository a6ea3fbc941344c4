//! The frame of every page, after the original portal: the account switcher and the virtual
//! account selector at the top, the tabs under them, the page below.

use super::assets::{CSS, HTMX};
use super::session::Viewer;
use super::{Failure, PageResult};
use crate::api::{load_account, load_va};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect};
use maud::{html, Markup, DOCTYPE};
use serde::Deserialize;
use smartlic_core::Role;
use smartlic_store::{Account, VirtualAccount};

/// What a page says above its content after a form.
pub enum Notice {
    None,
    Done(String),
    /// Done, with a secret shown this once (a registration token, an API client's secret).
    Secret {
        said: String,
        label: String,
        secret: String,
    },
    Error(String),
}

impl Notice {
    /// The outcome of a form: what it did, or why it was refused.
    pub fn of(outcome: Result<Notice, ApiError>) -> (axum::http::StatusCode, Notice) {
        match outcome {
            Ok(n) => (axum::http::StatusCode::OK, n),
            Err(e) => (e.status, Notice::Error(e.message)),
        }
    }

    fn render(&self) -> Markup {
        html! {
            @match self {
                Notice::None => {},
                Notice::Done(said) => p.notice role="status" { (said) },
                Notice::Secret { said, label, secret } => div.notice role="status" {
                    p { (said) }
                    label for="shown-once" { (label) " (shown this once: copy it now)" }
                    input.secret #shown-once type="text" readonly value=(secret);
                },
                Notice::Error(why) => p.error role="alert" { (why) },
            }
        }
    }
}

/// The tabs, in the original's order. Satellites get theirs with their own pages.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    General,
    Licenses,
    Instances,
    Events,
    Reservations,
    Alerts,
    Reports,
    Conversion,
    Admin,
}

const TABS: [(Tab, &str, &str); 9] = [
    (Tab::General, "general", "General"),
    (Tab::Licenses, "licenses", "Licenses"),
    (Tab::Instances, "instances", "Product Instances"),
    (Tab::Events, "events", "Event Log"),
    (Tab::Reservations, "reservations", "Reservations"),
    (Tab::Alerts, "alerts", "Alerts"),
    (Tab::Reports, "reports", "Reports"),
    (Tab::Conversion, "conversion", "License Conversion"),
    (Tab::Admin, "admin", "Administration"),
];

/// Where a page is: the smart account and virtual account it shows, and the others the
/// viewer may switch to.
pub struct Place {
    pub account: Account,
    pub pool: VirtualAccount,
    pub accounts: Vec<Account>,
    pub pools: Vec<VirtualAccount>,
}

impl Place {
    /// This place's page `rest`.
    pub fn url(&self, rest: &str) -> String {
        url(&self.account.domain, &self.pool.name, rest)
    }
}

/// `/portal/<domain>/<virtual account>/<rest>`, each part escaped for a URL path.
pub fn url(domain: &str, pool: &str, rest: &str) -> String {
    format!("/portal/{}/{}/{rest}", path_part(domain), path_part(pool))
}

/// Percent-encodes what a path segment cannot hold as is.
pub fn path_part(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The place of a page, with the viewer's right to see it checked as the API checks it: an
/// account without a role in it and a pool the role does not cover are "not found".
pub async fn place(state: &AppState, v: &Viewer, domain: &str, va: &str) -> Result<Place, Failure> {
    let caller = &v.caller;
    let account = load_account(state, caller, domain).await?;
    let pool = load_va(state, &account, va).await?;
    if !caller.sees(&account, pool.id) {
        return Err(Failure(ApiError::not_found(format!(
            "virtual account '{va}' does not exist in {} or your role does not cover it",
            account.domain
        ))));
    }
    let accounts = state
        .store
        .accounts()
        .await?
        .into_iter()
        .filter(|a| caller.role() == Role::Operator || caller.0.account_id == Some(a.id))
        .collect();
    let pools =
        state.store.virtual_accounts(account.id).await?.into_iter().filter(|p| caller.sees(&account, p.id)).collect();
    Ok(Place { account, pool, accounts, pools })
}

/// The page head shared by the full pages and the bare ones.
fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            // No inline style from htmx (the CSP forbids it) and no eval.
            meta name="htmx-config" content=r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false}"#;
            title { (title) " · smartlic" }
            link rel="stylesheet" href=(CSS.url());
            script src=(HTMX.url()) defer {}
        }
    }
}

/// A page without the frame: the sign-in form, refusals.
pub fn bare(title: &str, notice: Notice) -> Markup {
    bare_with(title, notice, html! { p { a href="/" { "Back to the portal" } } })
}

pub fn bare_with(title: &str, notice: Notice, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.top { span.brand { "smartlic" } }
                main #main {
                    h1 { (title) }
                    (notice.render())
                    (content)
                }
            }
        }
    }
}

/// A page in the frame: switcher, selector, tabs, then `content` under its title.
pub fn shell(v: &Viewer, place: &Place, tab: Tab, title: &str, notice: Notice, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body hx-boost="true" {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    span.brand { "smartlic" }
                    form method="get" action="/portal/go" {
                        input type="hidden" name="tab" value=(tab_slug(tab));
                        label for="account" { "Smart account" }
                        select #account name="account" {
                            @for a in &place.accounts {
                                option value=(a.domain) selected[a.id == place.account.id] { (a.name) " (" (a.domain) ")" }
                            }
                        }
                        label for="va" { "Virtual account" }
                        select #va name="va" {
                            @for p in &place.pools {
                                option value=(p.name) selected[p.id == place.pool.id] { (p.name) }
                            }
                        }
                        button.quiet type="submit" { "Show" }
                    }
                    span.who { (v.caller.login()) " · " (v.caller.role().as_str()) }
                    form method="post" action="/signout" {
                        (csrf_field(v))
                        button.quiet type="submit" { "Sign out" }
                    }
                }
                nav.tabs aria-label="Sections" {
                    @for (t, slug, label) in TABS {
                        a href=(place.url(slug)) aria-current=[(t == tab).then_some("page")] { (label) }
                    }
                }
                main #main {
                    h1 { (title) }
                    (notice.render())
                    (content)
                }
            }
        }
    }
}

fn tab_slug(tab: Tab) -> &'static str {
    TABS.iter().find(|(t, _, _)| *t == tab).map_or("general", |(_, slug, _)| slug)
}

/// The hidden field every form of a signed-in page carries.
pub fn csrf_field(v: &Viewer) -> Markup {
    html! { input type="hidden" name="csrf" value=(v.csrf); }
}

/// Times as the pages show them: UTC to the minute.
pub fn when(t: smartlic_core::Timestamp) -> String {
    t.to_datetime().format("%Y-%m-%d %H:%M UTC").to_string()
}

/// An RFC 3339 time of a view, shown like [`when`].
pub fn when_text(rfc3339: &str) -> String {
    smartlic_core::Timestamp::parse(rfc3339).map_or_else(|| rfc3339.to_string(), when)
}

/// A compliance word with its colour class.
pub fn status(words: &str) -> Markup {
    let class = if words.contains("OUT") || words.contains("out") { "status-bad" } else { "status-good" };
    html! { span class=(class) { (words) } }
}

/// Nothing in a table yet.
pub fn empty(what: &str) -> Markup {
    html! { p.muted { (what) } }
}

#[derive(Deserialize)]
pub struct GoTo {
    account: String,
    va: Option<String>,
    tab: Option<String>,
}

/// The switcher's target: the tab asked for in the pool asked for, or the first pool of the
/// account the viewer may see when that one is not there.
pub async fn go(State(state): State<AppState>, v: Viewer, Query(q): Query<GoTo>) -> PageResult {
    let account = load_account(&state, &v.caller, &q.account).await?;
    let pools: Vec<VirtualAccount> =
        state.store.virtual_accounts(account.id).await?.into_iter().filter(|p| v.caller.sees(&account, p.id)).collect();
    let pool = pools
        .iter()
        .find(|p| Some(&p.name) == q.va.as_ref())
        .or_else(|| pools.iter().find(|p| p.is_default))
        .or(pools.first())
        .ok_or_else(|| ApiError::not_found(format!("no virtual account of {} is open to you", account.domain)))?;
    let tab = TABS.iter().find(|(_, slug, _)| Some(*slug) == q.tab.as_deref()).map_or("general", |(_, s, _)| s);
    Ok(Redirect::to(&url(&account.domain, &pool.name, tab)).into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn path_parts_are_percent_encoded() {
        assert_eq!(super::path_part("Default"), "Default");
        assert_eq!(super::path_part("Lab 2/x?%"), "Lab%202%2Fx%3F%25");
        assert_eq!(super::url("acme.example", "Lab 2", "general"), "/portal/acme.example/Lab%202/general");
    }
}
