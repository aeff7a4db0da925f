//! Maven errors: the status Maven acts on and a plain-text reason it prints. Service errors
//! are mapped here and nowhere else.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use stowage_service::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MavenError {
    pub status: StatusCode,
    pub message: String,
}

impl MavenError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not found")
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl From<Error> for MavenError {
    fn from(error: Error) -> Self {
        let status = match &error {
            Error::Invalid(_) | Error::DigestMismatch { .. } | Error::SizeMismatch(_) => {
                StatusCode::BAD_REQUEST
            }
            Error::Unauthenticated => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) | Error::UploadUnknown => StatusCode::NOT_FOUND,
            Error::Conflict(_) | Error::UploadBroken => StatusCode::CONFLICT,
            Error::TooLarge(_) | Error::QuotaExceeded { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::UploadOutOfOrder { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            Error::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Error::StorageFull => StatusCode::INSUFFICIENT_STORAGE,
            Error::Metadata(_) | Error::Blob(_) | Error::Corrupt(_) => {
                tracing::error!(?error, "maven request failed");
                return MavenError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
            }
        };
        let message = match &error {
            Error::NotFound(_) => "not found".to_owned(),
            other => other.to_string(),
        };
        MavenError::new(status, message)
    }
}

impl From<stowage_storage::MetadataError> for MavenError {
    fn from(error: stowage_storage::MetadataError) -> Self {
        Error::from(error).into()
    }
}

impl From<stowage_storage::BlobError> for MavenError {
    fn from(error: stowage_storage::BlobError) -> Self {
        Error::from(error).into()
    }
}

impl IntoResponse for MavenError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            [(CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{}\n", self.message),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            // Maven sends credentials on GET only after this challenge.
            response.headers_mut().insert(
                WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Basic realm=\"Stowage Maven\""),
            );
        }
        response
    }
}

pub type MavenResult<T> = Result<T, MavenError>;
