//! The management API's errors: `{"error": {"code", "message", "field"?}}`, mapped from the
//! service's errors here and nowhere else.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::WWW_AUTHENTICATE;
use serde_json::json;
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

fn status_and_code(error: &Error) -> (StatusCode, &'static str) {
    match error {
        Error::Invalid(_) | Error::DigestMismatch { .. } | Error::SizeMismatch(_) => {
            (StatusCode::BAD_REQUEST, "invalid")
        }
        Error::UploadUnknown => (StatusCode::NOT_FOUND, "not_found"),
        Error::UploadOutOfOrder { .. } => (StatusCode::RANGE_NOT_SATISFIABLE, "out_of_order"),
        Error::UploadBroken => (StatusCode::CONFLICT, "conflict"),
        Error::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
        Error::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
        Error::QuotaExceeded { .. } => (StatusCode::FORBIDDEN, "quota_exceeded"),
        Error::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
        Error::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
        Error::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
        Error::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
        Error::StorageFull => (StatusCode::INSUFFICIENT_STORAGE, "storage_full"),
        Error::Metadata(_) | Error::Blob(_) | Error::Corrupt(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "internal")
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = status_and_code(&self.0);
        let message = if self.0.is_internal() {
            tracing::error!(error = ?self.0, "management request failed");
            "internal error".to_owned()
        } else {
            self.0.to_string()
        };
        let mut error = json!({ "code": code, "message": message });
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

pub type ApiResult<T> = Result<T, ApiError>;
