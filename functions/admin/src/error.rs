//! The management API's errors: `{"error": {"code", "message", "field"?}}`, mapped from the
//! service's errors here and nowhere else.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::WWW_AUTHENTICATE;
use serde_json::json;
use stowage_http::{public_message, status_of};
use stowage_service::Error;

pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        Self(error)
    }
}

impl From<stowage_domain::Invalid> for ApiError {
    fn from(invalid: stowage_domain::Invalid) -> Self {
        Self(Error::Invalid(invalid))
    }
}

/// The management API's name for each error, beside its status (the shared table's).
fn code(error: &Error) -> &'static str {
    match error {
        Error::Invalid(_) | Error::DigestMismatch { .. } | Error::SizeMismatch(_) => "invalid",
        Error::NotFound(_) | Error::UploadUnknown => "not_found",
        Error::Deleted(_) => "deleted",
        Error::UploadOutOfOrder { .. } => "out_of_order",
        Error::Conflict(_) | Error::UploadBroken => "conflict",
        Error::Unauthenticated => "unauthenticated",
        Error::TokenExpired(_) => "token_expired",
        Error::Forbidden(_) => "forbidden",
        Error::QuotaExceeded { .. } => "quota_exceeded",
        Error::TooLarge(_) => "too_large",
        Error::Busy => "busy",
        Error::StorageFull => "storage_full",
        Error::Metadata(_) | Error::Blob(_) | Error::Corrupt(_) => "internal",
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_of(&self.0);
        let message = public_message(&self.0, "management");
        let mut error = json!({ "code": code(&self.0), "message": message });
        if let Error::Invalid(invalid) = &self.0 {
            error["field"] = json!(invalid.field);
            error["message"] = json!(invalid.message);
        }
        let mut response = (status, Json(json!({ "error": error }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Basic realm=\"Stowage\""),
            );
        }
        response
    }
}

/// A path the management API does not have, answered in its error format.
pub fn route_not_found() -> Response {
    let error = json!({ "code": "not_found", "message": "route not found" });
    (StatusCode::NOT_FOUND, Json(json!({ "error": error }))).into_response()
}

/// A method the path does not take, answered in the API's error format (axum adds `Allow`).
pub fn method_not_allowed() -> Response {
    let error =
        json!({ "code": "method_not_allowed", "message": "this path does not take that method" });
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(json!({ "error": error })),
    )
        .into_response()
}

pub type ApiResult<T> = Result<T, ApiError>;
