//! npm errors: `{"error": "<message>"}` with the status npm clients act on. Service errors are
//! mapped here and nowhere else.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::WWW_AUTHENTICATE;
use serde_json::json;
use stowage_http::{Refusal, code_of, code_of_status, public_message, status_of};
use stowage_service::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpmError {
    pub status: StatusCode,
    pub message: String,
    /// Its short name, for the request's log line.
    pub reason: &'static str,
}

impl NpmError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            reason: code_of_status(status),
        }
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not found")
    }

    pub fn not_found_with(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }
}

impl From<Error> for NpmError {
    fn from(error: Error) -> Self {
        let message = match &error {
            Error::NotFound(_) => "not found".to_owned(),
            Error::Unauthenticated => {
                "authentication required: set _authToken for this registry in .npmrc".to_owned()
            }
            other => public_message(other, "npm"),
        };
        NpmError {
            reason: code_of(&error),
            ..NpmError::new(status_of(&error), message)
        }
    }
}

impl IntoResponse for NpmError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(json!({ "error": self.message }))).into_response();
        response.extensions_mut().insert(Refusal(self.reason));
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Basic realm=\"Stowage npm\""),
            );
        }
        response
    }
}

pub type NpmResult<T> = Result<T, NpmError>;
