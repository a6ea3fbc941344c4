//! One error type for every HTTP answer: status, stable code, message naming what is wrong.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use smartlic_proto::wire::{ErrorDetail, ErrorResponse};
use smartlic_store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), field: None }
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

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", message)
    }

    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!("internal error: {err}");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", "internal error; see the server log")
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
        (self.status, axum::Json(self.body())).into_response()
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
