//! Maven errors: the status Maven acts on and a plain-text reason it prints. Service errors
//! are mapped here and nowhere else.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use stowage_http::{Refusal, code_of, code_of_status, public_message, status_of};
use stowage_service::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MavenError {
    pub status: StatusCode,
    pub message: String,
    /// Its short name, for the request's log line.
    pub reason: &'static str,
}

impl MavenError {
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

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl From<Error> for MavenError {
    fn from(error: Error) -> Self {
        // Maven prints a 413's reason as "the file is too large", which a quota breach is.
        let status = match &error {
            Error::QuotaExceeded { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            other => status_of(other),
        };
        let message = match &error {
            Error::NotFound(_) => "not found".to_owned(),
            other => public_message(other, "maven"),
        };
        MavenError {
            reason: code_of(&error),
            ..MavenError::new(status, message)
        }
    }
}

/// The longest reason phrase sent: Maven prints it whole, on one line.
const REASON_MAX: usize = 300;

/// `message` as an HTTP/1.1 reason phrase: Maven prints only the status line of a failed
/// deploy or download (`status code: 409, reason phrase: …`), so the reason goes there too, as
/// other Maven repositories do. Characters a status line cannot carry become spaces.
fn reason_phrase(message: &str) -> Option<hyper::ext::ReasonPhrase> {
    let mut phrase: String = message
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                ' '
            }
        })
        .collect();
    if phrase.len() > REASON_MAX {
        phrase.truncate(REASON_MAX);
    }
    hyper::ext::ReasonPhrase::try_from(phrase.trim().to_owned()).ok()
}

impl IntoResponse for MavenError {
    fn into_response(self) -> Response {
        let reason = reason_phrase(&self.message);
        let mut response = (
            self.status,
            [(CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{}\n", self.message),
        )
            .into_response();
        if let Some(reason) = reason {
            response.extensions_mut().insert(reason);
        }
        response.extensions_mut().insert(Refusal(self.reason));
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
