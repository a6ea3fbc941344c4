//! One error type for every HTTP answer: status, stable code, message naming what is wrong.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use smartlic_proto::wire::{ErrorDetail, ErrorResponse};
use smartlic_store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    /// The `WWW-Authenticate` challenge of a 401 (RFC 6750 §3): the scheme to use, and why a
    /// presented token was refused.
    pub challenge: Option<&'static str>,
}

const BEARER_CHALLENGE: &str = r#"Bearer realm="smartlic""#;
const INVALID_TOKEN_CHALLENGE: &str = r#"Bearer realm="smartlic", error="invalid_token""#;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), field: None, challenge: None }
    }

    pub fn with_field(mut self, field: &str) -> Self {
        self.field = Some(field.to_string());
        self
    }

    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "INVALID_INPUT", message).with_field(field)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::CONFLICT, "CONFLICT", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, "FORBIDDEN", message)
    }

    /// No usable `Authorization` header: the challenge names the scheme only.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        ApiError {
            challenge: Some(BEARER_CHALLENGE),
            ..ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", message)
        }
    }

    /// A bearer token was presented and refused (unknown, expired, revoked).
    pub fn invalid_token(message: impl Into<String>) -> Self {
        ApiError { challenge: Some(INVALID_TOKEN_CHALLENGE), ..ApiError::unauthenticated(message) }
    }

    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!("internal error: {err}");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", "internal error; see the server log")
    }

    /// This error's status and challenge with `body`: the API's shape, or the original API's;
    /// the body names the request's id (`request_id`), as the log does.
    pub fn answer(&self, body: impl serde::Serialize) -> Response {
        let mut answer = (self.status, axum::Json(crate::observe::with_request_id(&body))).into_response();
        if let Some(challenge) = self.challenge {
            answer.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        answer
    }

    pub fn body(&self) -> ErrorResponse {
        ErrorResponse {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message.clone(),
                field: self.field.clone(),
            },
            request_nonce: None,
        }
    }
}

impl From<smartlic_core::Invalid> for ApiError {
    fn from(e: smartlic_core::Invalid) -> Self {
        ApiError::invalid(e.field, e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => ApiError::not_found(m),
            StoreError::Conflict(m) => ApiError::conflict(m),
            StoreError::Replay => replayed(),
            // Drifted counters: the operator must see which (`smartlic admin check`), devices too.
            StoreError::Corrupt(m) => {
                tracing::error!("stored data is inconsistent: {m}");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INCONSISTENT_DATA",
                    format!("stored data is inconsistent: {m}"),
                )
            }
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.answer(self.body())
    }
}

// axum's own rejections answer plain text; these give them the API's shape and codes.

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let (code, message) = match &r {
            JsonRejection::MissingJsonContentType(_) => {
                ("UNSUPPORTED_MEDIA_TYPE", "send the body with 'Content-Type: application/json'".to_string())
            }
            _ if r.status() == StatusCode::PAYLOAD_TOO_LARGE => ("PAYLOAD_TOO_LARGE", r.body_text()),
            _ => ("MALFORMED_JSON", r.body_text()),
        };
        ApiError::new(r.status(), code, message)
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "INVALID_QUERY", r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        match r {
            PathRejection::FailedToDeserializePathParams(e) => {
                ApiError::new(StatusCode::BAD_REQUEST, "INVALID_PATH", e.body_text())
            }
            other => ApiError::internal(other.body_text()),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// A device request whose nonce was seen before.
pub fn replayed() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        smartlic_proto::wire::code::REPLAY,
        "this request was seen before (replayed nonce)",
    )
    .with_field("nonce")
}
