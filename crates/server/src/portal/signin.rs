//! Signing in and out. The password is checked by the token endpoint's own sequence
//! ([`crate::login::verify_login`]): the same failed-login budgets per login and per address,
//! Argon2 on the same bounded hashing pool, a dummy hash for unknown logins.

use super::layout::{self, Notice};
use super::session::{self, Viewer, SESSION_COOKIE, SIGNIN_COOKIE};
use super::{respond, Failure, NoFields, PageResult, Posted};
use crate::auth::random_text;
use crate::login::{Refused, RetryAfter};
use crate::state::AppState;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::html;
use serde::Deserialize;
use smartlic_core::Role;
use smartlic_store::{PrincipalKind, VirtualAccount};
use std::net::SocketAddr;

/// `/`: the viewer's first smart account, its default virtual account (or the first its role
/// covers); the sign-in form for a browser without a session.
pub async fn home(State(state): State<AppState>, v: Viewer) -> PageResult {
    let caller = &v.caller;
    let accounts = state.store.accounts().await?;
    for account in accounts.into_iter().filter(|a| caller.role() == Role::Operator || caller.0.account_id == Some(a.id))
    {
        let pools: Vec<VirtualAccount> = state.store.virtual_accounts(account.id).await?;
        let pool = pools.iter().filter(|p| caller.sees(&account, p.id)).min_by_key(|p| !p.is_default);
        if let Some(pool) = pool {
            return Ok(Redirect::to(&layout::url(&account.domain, &pool.name, "general")).into_response());
        }
    }
    let why = "there is no smart account yet: create one with `smartlic admin account create`";
    respond(StatusCode::OK, layout::bare("Welcome", Notice::Done(why.into())))
}

/// The sign-in form, with a fresh double-submit token in a cookie and in the form.
pub async fn form() -> Response {
    sign_in_page(StatusCode::OK, Notice::None)
}

fn sign_in_page(status: StatusCode, notice: Notice) -> Response {
    let token = random_text(24);
    let content = html! {
        form.signin method="post" action="/signin" {
            input type="hidden" name="csrf" value=(token);
            div.field {
                label for="login" { "Login (name@domain)" }
                input #login name="login" type="text" autocomplete="username" required autofocus;
            }
            div.field {
                label for="password" { "Password" }
                input #password name="password" type="password" autocomplete="current-password" required;
            }
            button type="submit" { "Sign in" }
        }
    };
    let mut answer = super::html(status, layout::bare_with("Sign in", notice, content));
    answer.headers_mut().append(header::SET_COOKIE, session::set_cookie(SIGNIN_COOKIE, &token, None));
    answer
}

#[derive(Deserialize)]
pub struct SignIn {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
}

/// Checks the password and starts a session: the same answer for an unknown login and a
/// wrong password; the reason for a refusal only to whoever proved the password.
pub async fn submit(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(f): Form<SignIn>,
) -> Response {
    let expected = session::cookie(&headers, SIGNIN_COOKIE).unwrap_or_default();
    if !session::same_secret(&expected, &f.csrf) {
        let why = "the sign-in form was out of date or did not come from this portal: try again";
        return sign_in_page(StatusCode::FORBIDDEN, Notice::Error(why.into()));
    }
    let login = f.login.trim().to_string();
    if login.is_empty() || f.password.is_empty() {
        return sign_in_page(StatusCode::BAD_REQUEST, Notice::Error("give your login and your password".into()));
    }
    let address = peer.map(|Extension(ConnectInfo(a))| a.ip());
    let principal = match crate::login::verify_login(&state, &login, f.password, address).await {
        Ok(p) => p,
        Err(Refused::Throttled(RetryAfter(secs))) => {
            let why = format!("too many failed sign-ins for this login or from this address; retry in {secs} s");
            let mut answer = sign_in_page(StatusCode::TOO_MANY_REQUESTS, Notice::Error(why));
            answer.headers_mut().insert(header::RETRY_AFTER, secs.into());
            return answer;
        }
        Err(Refused::Busy) => {
            let why = crate::login::busy_error().message;
            return sign_in_page(StatusCode::SERVICE_UNAVAILABLE, Notice::Error(why));
        }
        Err(Refused::Store(e)) => return Failure(e.into()).into_response(),
        Err(Refused::Wrong) => {
            return sign_in_page(StatusCode::UNAUTHORIZED, Notice::Error("wrong login or password".into()))
        }
    };
    if principal.disabled_at.is_some() {
        let why = format!("the {} '{login}' is disabled", principal.kind.as_str());
        return sign_in_page(StatusCode::FORBIDDEN, Notice::Error(why));
    }
    // Programs use the REST API; the operator's bootstrap client is the one exception, so that
    // the operator can look after every account here too.
    if principal.kind == PrincipalKind::ApiClient && principal.role != Role::Operator {
        let why = "API clients use the REST API; sign in with a user's login";
        return sign_in_page(StatusCode::FORBIDDEN, Notice::Error(why.into()));
    }
    let id = match session::start(&state, &principal).await {
        Ok(id) => id,
        Err(e) => return Failure(e).into_response(),
    };
    tracing::info!(login = %login, "portal sign-in");
    let mut answer = Redirect::to("/").into_response();
    let h = answer.headers_mut();
    h.append(header::SET_COOKIE, session::set_cookie(SESSION_COOKIE, &id, None));
    h.append(header::SET_COOKIE, session::set_cookie(SIGNIN_COOKIE, "", Some(0)));
    answer
}

/// Ends the session (forgotten by the server, the cookie deleted).
pub async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    Posted(v, NoFields {}): Posted<NoFields>,
) -> Response {
    if let Some(id) = session::cookie(&headers, SESSION_COOKIE) {
        if let Err(e) = session::end(&state, &id).await {
            return Failure(e).into_response();
        }
    }
    tracing::info!(login = %v.caller.login(), "portal sign-out");
    let mut answer = Redirect::to("/signin").into_response();
    answer.headers_mut().append(header::SET_COOKIE, session::set_cookie(SESSION_COOKIE, "", Some(0)));
    answer
}
