//! The web portal (issue 14): what license administrators use in a browser, served by the
//! manager itself at `/` on its HTTPS listener. Pages are rendered on the server with maud
//! (which escapes every value, so a device's hostname is always text); htmx, embedded, only
//! enhances links and forms: every page works with JavaScript off.
//!
//! A signed-in user is a REST [`Caller`](crate::auth::Caller): every page and form goes
//! through the same store calls and role checks as the API, so a page never shows or does
//! what the API would refuse.

mod actions;
mod admin;
mod assets;
mod conversion;
mod events;
mod history;
mod inventory;
mod layout;
mod pak;
mod reports;
mod reservations;
pub mod session;
mod signin;

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::Markup;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use session::Viewer;

pub use history::record_today as record_usage_day;
pub use layout::Notice;

/// The portal's pages, forms and assets, with their security headers.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(signin::home))
        .route("/signin", get(signin::form).post(signin::submit))
        .route("/signout", post(signin::sign_out))
        .route("/portal/go", get(layout::go))
        .route("/portal/{domain}/{va}/general", get(inventory::general).post(inventory::create_token))
        .route("/portal/{domain}/{va}/general/revoke", post(inventory::revoke_token))
        .route("/portal/{domain}/{va}/licenses", get(inventory::licenses))
        .route("/portal/{domain}/{va}/instances", get(inventory::instances))
        .route("/portal/{domain}/{va}/instances/{id}", get(inventory::instance))
        .route("/portal/{domain}/{va}/instances/{id}/remove", post(inventory::remove_instance))
        .route("/portal/{domain}/{va}/instances/{id}/move", post(actions::move_instance))
        .route("/portal/{domain}/{va}/events", get(events::page))
        .route("/portal/{domain}/{va}/reservations", get(reservations::page).post(reservations::reserve))
        .route("/portal/{domain}/{va}/reservations/return", post(reservations::give_back))
        .route("/portal/{domain}/{va}/alerts", get(reports::alerts))
        .route("/portal/{domain}/{va}/reports", get(reports::page))
        .route("/portal/{domain}/{va}/reports/usage.csv", get(reports::usage_csv))
        .route("/portal/{domain}/{va}/reports/instances.csv", get(reports::instances_csv))
        .route("/portal/{domain}/{va}/reports/history.csv", get(reports::history_csv))
        .route("/portal/{domain}/{va}/conversion", get(pak::page))
        .route("/portal/{domain}/{va}/conversion/history", get(pak::history))
        .route("/portal/{domain}/{va}/conversion/paks/{pak}", post(pak::convert))
        .route("/portal/{domain}/{va}/admin", get(admin::page))
        .route("/portal/{domain}/{va}/admin/users", post(admin::create_user))
        .route("/portal/{domain}/{va}/admin/api-clients", post(admin::create_client))
        .route("/portal/{domain}/{va}/admin/users/{name}/password", post(actions::password))
        .route("/portal/{domain}/{va}/admin/{kind}/{name}/{action}", post(actions::principal))
        .route("/portal/{domain}/{va}/admin/settings", post(actions::account_settings))
        .route("/portal/{domain}/{va}/admin/conversion", post(conversion::save))
        .route("/portal/{domain}/{va}/admin/virtual-accounts", post(actions::create_pool))
        .route("/portal/{domain}/{va}/admin/virtual-accounts/{name}/delete", post(actions::delete_pool))
        .route("/portal/{domain}/{va}/licenses/transfer", post(actions::transfer))
        .route("/static/{name}", get(assets::serve))
        .layer(axum::middleware::from_fn(security_headers))
}

/// No inline script or style runs (maud escapes values, and this forbids the rest), no other
/// site frames a page, no type is sniffed, pages are not cached (they hold account data).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn security_headers(req: Request, next: axum::middleware::Next) -> Response {
    let mut answer = next.run(req).await;
    let h = answer.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    answer
}

/// A refusal shown as a page: the API's status and message.
pub struct Failure(pub ApiError);

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Failure(e)
    }
}

impl From<smartlic_store::StoreError> for Failure {
    fn from(e: smartlic_store::StoreError) -> Self {
        Failure(e.into())
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        if self.0.status.is_server_error() {
            tracing::error!("portal: {}", self.0.message);
        }
        html(self.0.status, layout::bare("Not possible", Notice::Error(self.0.message)))
    }
}

pub type PageResult = Result<Response, Failure>;

/// A rendered page with its status.
pub fn respond(status: StatusCode, markup: Markup) -> PageResult {
    Ok(html(status, markup))
}

/// An HTML answer.
pub fn html(status: StatusCode, markup: Markup) -> Response {
    (status, axum::response::Html(markup.into_string())).into_response()
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    /// Without a live session: a page asked for leads to the sign-in form, a form sent is
    /// refused (its content is not kept).
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match session::viewer(state, &parts.headers).await {
            Err(e) => Err(Failure(e).into_response()),
            Ok(Some(v)) => Ok(v),
            Ok(None) if parts.method == Method::GET => Err(Redirect::to("/signin").into_response()),
            Ok(None) => Err(html(
                StatusCode::UNAUTHORIZED,
                layout::bare("Signed out", Notice::Error("your session ended: sign in again".into())),
            )),
        }
    }
}

/// A form of a signed-in viewer whose CSRF token is the session's: anything else is refused
/// before the form is read further, and changes nothing.
pub struct Posted<T>(pub Viewer, pub T);

#[derive(Deserialize)]
struct WithCsrf<T> {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    form: T,
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for Posted<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let viewer = Viewer::from_request_parts(&mut parts, state).await?;
        let req = Request::from_parts(parts, body);
        let Form(sent) = Form::<WithCsrf<T>>::from_request(req, state).await.map_err(|e| {
            let why = format!("the form could not be read: {}", e.body_text());
            Failure(ApiError::invalid("form", why)).into_response()
        })?;
        if !viewer.csrf_matches(&sent.csrf) {
            let why = "the form did not come from this portal page (its CSRF token is missing or out of date): \
                       reload the page and send it again";
            return Err(Failure(ApiError::forbidden(why)).into_response());
        }
        Ok(Posted(viewer, sent.form))
    }
}

/// A form with nothing but its CSRF token (sign out, remove).
#[derive(Deserialize)]
pub struct NoFields {}

/// A whole number typed in a form field, or a message naming the field.
pub fn number(field: &'static str, label: &str, text: &str) -> Result<Option<i64>, ApiError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| ApiError::invalid(field, format!("{label}: '{text}' is not a whole number")))
}
