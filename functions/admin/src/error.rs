//! The management API's errors: `{"error": {"code", "message", "field"?}}`, mapped from the
//! service's errors here and nowhere else.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::WWW_AUTHENTICATE;
use serde_json::json;
use stowage_http::{Refusal, code_of, public_message, status_of};
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_of(&self.0);
        let message = public_message(&self.0, "management");
        let code = code_of(&self.0);
        let mut error = json!({ "code": code, "message": message });
        if let Error::Invalid(invalid) = &self.0 {
            error["field"] = json!(invalid.field);
            error["message"] = json!(invalid.message);
        }
        let mut response = (status, Json(json!({ "error": error }))).into_response();
        response.extensions_mut().insert(Refusal(code));
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
