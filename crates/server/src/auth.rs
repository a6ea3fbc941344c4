//! OAuth2 token endpoint (client credentials and password grants) and the bearer-token
//! check with role and scope rules (C-2, C-3). Secrets are stored as Argon2 hashes, access
//! and registration tokens as SHA-256 digests: the database never holds a usable secret.

use crate::error::{ApiError, ApiResult};
use crate::login::{Refused, RetryAfter};
use crate::state::AppState;
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::{header, request::Parts, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form, Json};
use base64::{engine::general_purpose::STANDARD, engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use smartlic_core::role::Action;
use smartlic_core::{Role, Timestamp};
use smartlic_store::{Account, Principal, VirtualAccount};
use std::net::SocketAddr;

pub fn hash_secret(secret: &str) -> ApiResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default().hash_password(secret.as_bytes(), &salt).map(|h| h.to_string()).map_err(ApiError::internal)
}

/// Constant-time in the secret (Argon2 compares digests in constant time).
pub fn verify_secret(secret: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(secret.as_bytes(), &h).is_ok())
}

pub fn sha256_hex(text: &str) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, text.as_bytes()))
}

/// How listings show an access token: its first characters, enough to tell tokens apart.
pub fn token_prefix(token: &str) -> String {
    token.chars().take(8).collect()
}

/// Random URL-safe text with `bytes` bytes of entropy (client IDs, secrets, tokens).
pub fn random_text(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// RFC 6749 §4.4 (client credentials; the client may authenticate with HTTP Basic instead)
/// or §4.3 (a user's password).
#[derive(Deserialize, utoipa::ToSchema)]
pub struct TokenRequest {
    /// client_credentials or password.
    #[schema(pattern = "^(client_credentials|password)$")]
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct TokenAnswer {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
}

/// OAuth2 errors use the RFC 6749 shape so that ordinary OAuth2 clients understand them.
pub(crate) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = serde_json::json!({"error": error, "error_description": description});
    (status, Json(body)).into_response()
}

/// 401 `invalid_client`, with the challenge RFC 6749 §5.2 requires.
fn wrong_client(description: &str) -> Response {
    let mut answer = oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", description);
    answer
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static(r#"Basic realm="smartlic""#));
    answer
}

/// 429 or 503 with `Retry-After`, in the OAuth2 shape (`temporarily_unavailable`).
fn try_later(status: StatusCode, retry_after_secs: i64, description: &str) -> Response {
    let mut answer = oauth_error(status, "temporarily_unavailable", description);
    answer.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(retry_after_secs));
    answer
}

/// The credentials of an `Authorization` value of `scheme`, whose name is case-insensitive
/// (RFC 9110 §11.1).
fn credentials<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let (name, credentials) = value.split_once(' ')?;
    name.eq_ignore_ascii_case(scheme).then_some(credentials)
}

/// `client_id:client_secret` from an HTTP Basic header, as RFC 6749 §2.3.1 allows.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = credentials(value, "Basic")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

#[utoipa::path(
    post,
    path = "/oauth/token",
    operation_id = "get_token",
    tag = "smartlic",
    summary = "OAuth2 token (client_credentials or password grant, form-encoded)",
    security(()),
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "an access token", body = TokenAnswer),
        (status = 400, description = "invalid_request, unsupported_grant_type, or invalid_grant (a user's wrong or disabled login)",
         body = crate::openapi::OAuthErrorBody),
        (status = 401, description = "invalid_client: wrong or disabled client", body = crate::openapi::OAuthErrorBody,
         headers(("WWW-Authenticate" = String, description = "Basic realm=\"smartlic\""))),
        (status = 429, description = "too many failed logins for this client ID or from this address",
         body = crate::openapi::OAuthErrorBody, headers(("Retry-After" = i64, description = "seconds"))),
        (status = 503, description = "too many logins being checked at once", body = crate::openapi::OAuthErrorBody,
         headers(("Retry-After" = i64, description = "seconds"))),
    )
)]
pub async fn token(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    form: Result<Form<TokenRequest>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(req)) = form else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "send a form-encoded body with grant_type");
    };
    let password_grant = req.grant_type.as_deref() == Some("password");
    let (name, secret) = match req.grant_type.as_deref() {
        Some("client_credentials") => match (req.client_id, req.client_secret, basic_credentials(&headers)) {
            (Some(id), Some(secret), _) => (id, secret),
            (_, _, Some(pair)) => pair,
            _ => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "client_id and client_secret are required",
                )
            }
        },
        Some("password") => match (req.username, req.password) {
            (Some(u), Some(p)) => (u, p),
            _ => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "username and password are required"),
        },
        Some(other) => {
            let msg = format!("grant_type '{other}' is not supported; use client_credentials or password");
            return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", &msg);
        }
        None => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "grant_type is required"),
    };
    let address = peer.map(|Extension(ConnectInfo(a))| a.ip());
    let principal = match crate::login::verify_login(&state, &name, secret, address).await {
        Ok(p) => p,
        Err(Refused::Throttled(RetryAfter(secs))) => {
            let msg = format!("too many failed logins for this client ID or from this address; retry in {secs} s");
            return try_later(StatusCode::TOO_MANY_REQUESTS, secs, &msg);
        }
        Err(Refused::Busy) => {
            return try_later(StatusCode::SERVICE_UNAVAILABLE, 1, &crate::login::busy_error().message)
        }
        Err(Refused::Store(e)) => return ApiError::internal(e).into_response(),
        Err(Refused::Wrong) if password_grant => {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "wrong username or password")
        }
        Err(Refused::Wrong) => return wrong_client("wrong client ID or secret"),
    };
    // Said only to whoever proved the secret.
    if principal.disabled_at.is_some() {
        let what = format!("the {} '{name}' is disabled", principal.kind.as_str());
        return if password_grant {
            oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", &what)
        } else {
            wrong_client(&what)
        };
    }
    let access = random_text(32);
    let ttl = state.policy.access_token_secs;
    let now = state.clock.now();
    let expires = Timestamp(now.0 + ttl * 1000);
    let prefix = token_prefix(&access);
    if let Err(e) = state.store.insert_access_token(&sha256_hex(&access), &prefix, principal.id, now, expires).await {
        return ApiError::internal(e).into_response();
    }
    Json(TokenAnswer { access_token: access, token_type: "Bearer", expires_in: ttl }).into_response()
}

/// The authenticated caller of a REST request.
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthenticated("missing Authorization: Bearer token; get one at /oauth/token"))?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| credentials(v, "Bearer"))
            .ok_or_else(|| ApiError::unauthenticated("the Authorization header must be 'Bearer <access token>'"))?;
        let refused = || {
            let why = "the access token is unknown, expired or revoked, or its holder was disabled or deleted";
            ApiError::invalid_token(why)
        };
        let hash = sha256_hex(token.trim());
        let principal = state.store.principal_for_access_token(&hash, state.clock.now()).await?.ok_or_else(refused)?;
        Ok(Caller(principal))
    }
}

fn action_words(action: Action) -> &'static str {
    match action {
        Action::Operate => "operate the manager",
        Action::ManageVirtualAccounts => "manage virtual accounts",
        Action::ManageAccess => "manage users and API clients",
        Action::TransferLicenses => "transfer licenses",
        Action::ReserveLicenses => "reserve licenses",
        Action::ManageTokens => "manage registration tokens",
        Action::ManageInstances => "manage product instances",
        Action::View => "view",
    }
}

impl Caller {
    pub fn role(&self) -> Role {
        self.0.role
    }

    /// How events and messages name the caller: its login, unique across the manager (a
    /// display name is unique only in its smart account).
    pub fn login(&self) -> &str {
        &self.0.login
    }

    fn refuse(&self, action: Action, scope: &str) -> ApiError {
        ApiError::forbidden(format!(
            "'{}' ({}) may not {} in {scope}",
            self.login(),
            self.0.role.as_str(),
            action_words(action)
        ))
    }

    /// Allows `action` on `account` (and `va` when the action is inside one virtual account).
    pub fn require(&self, action: Action, account: &Account, va: Option<&VirtualAccount>) -> ApiResult<()> {
        let scope = match va {
            Some(v) => format!("{} / {}", account.domain, v.name),
            None => account.domain.clone(),
        };
        if !self.0.role.allows(action) {
            return Err(self.refuse(action, &scope));
        }
        if self.0.role == Role::Operator {
            return Ok(());
        }
        if self.0.account_id != Some(account.id) {
            return Err(self.refuse(action, &scope));
        }
        if self.0.role.is_virtual_account_scoped() {
            match va {
                Some(v) if Some(v.id) == self.0.virtual_account_id => {}
                _ => return Err(self.refuse(action, &scope)),
            }
        }
        Ok(())
    }

    /// Allows managing principal `p` of `account` (bound to `va`): the right to manage access
    /// in that scope and to grant its role.
    pub fn require_manage(&self, account: &Account, va: Option<&VirtualAccount>, p: &Principal) -> ApiResult<()> {
        self.require(Action::ManageAccess, account, va)?;
        if !self.0.role.may_grant(p.role) {
            return Err(ApiError::forbidden(format!(
                "{} may not manage a principal with the role {}",
                self.0.role.as_str(),
                p.role.as_str()
            )));
        }
        Ok(())
    }

    /// Whether listings of an account may show this virtual account to the caller.
    pub fn sees(&self, account: &Account, va_id: i64) -> bool {
        match self.0.role {
            Role::Operator => true,
            r if r.is_virtual_account_scoped() => self.0.virtual_account_id == Some(va_id),
            _ => self.0.account_id == Some(account.id),
        }
    }

    /// Whether the caller holds any role in the account (the operator holds one in all).
    pub fn has_role_in(&self, account: &Account) -> bool {
        self.0.role == Role::Operator || self.0.account_id == Some(account.id)
    }

    /// For account-wide reads: any role of the account may read, VA roles see a filtered view.
    pub fn require_account_view(&self, account: &Account) -> ApiResult<()> {
        if self.has_role_in(account) {
            Ok(())
        } else {
            Err(self.refuse(Action::View, &account.domain))
        }
    }

    pub fn require_operator(&self, what: &str) -> ApiResult<()> {
        if self.0.role == Role::Operator {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!("only the operator may {what}")))
        }
    }
}
