//! The web interface's errors: an HTML page with the status and a sentence, mapped from the
//! service's and the protocols' errors here and nowhere else.

use askama::Template;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use stowage_http::{Refusal, code_of, code_of_status, public_message, status_of};
use stowage_service::Error;

use crate::view::Chrome;

#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub message: String,
    reason: &'static str,
    /// The page to go back to (the form's), else the home page.
    back: Option<String>,
}

pub type PageResult<T> = Result<T, PageError>;

impl PageError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            reason: code_of_status(status),
            back: None,
        }
    }

    /// The page the error page links back to: the one whose form failed.
    pub fn back_to(mut self, path: impl Into<String>) -> Self {
        self.back = Some(path.into());
        self
    }

    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "There is nothing here that you can see.",
        )
    }

    pub fn csrf() -> Self {
        Self {
            reason: "csrf",
            ..Self::new(
                StatusCode::FORBIDDEN,
                "This form has expired or did not come from this site. Go back, reload the page and try again.",
            )
        }
    }

    pub fn sign_in_refused() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "That name and token do not match a valid token.",
        )
    }

    /// A refused sign-in says why only when the token is known to be the user's (expired);
    /// otherwise one sentence for every wrong name or token.
    pub fn from_sign_in(error: Error) -> Self {
        match error {
            Error::TokenExpired(_) | Error::Forbidden(_) => error.into(),
            other if other.is_internal() => other.into(),
            _ => Self::sign_in_refused(),
        }
    }
}

impl From<Error> for PageError {
    fn from(error: Error) -> Self {
        let message = match &error {
            Error::NotFound(_) => "There is nothing here that you can see.".to_owned(),
            Error::Invalid(invalid) => format!("{}: {}", invalid.field, invalid.message),
            other => public_message(other, "web"),
        };
        Self {
            status: status_of(&error),
            message,
            reason: code_of(&error),
            back: None,
        }
    }
}

impl From<stowage_domain::Invalid> for PageError {
    fn from(invalid: stowage_domain::Invalid) -> Self {
        Error::Invalid(invalid).into()
    }
}

impl From<stowage_oci::OciError> for PageError {
    fn from(error: stowage_oci::OciError) -> Self {
        Self::new(error.status, error.message)
    }
}

impl From<stowage_npm::NpmError> for PageError {
    fn from(error: stowage_npm::NpmError) -> Self {
        Self::new(error.status, error.message)
    }
}

impl From<stowage_maven::MavenError> for PageError {
    fn from(error: stowage_maven::MavenError) -> Self {
        Self::new(error.status, error.message)
    }
}

impl From<askama::Error> for PageError {
    fn from(error: askama::Error) -> Self {
        tracing::error!(%error, "a page failed to render");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "This page could not be shown.",
        )
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    chrome: Chrome,
    message: &'a str,
    back: &'a str,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error");
        let page = ErrorPage {
            chrome: Chrome::signed_out(title),
            message: &self.message,
            back: self.back.as_deref().unwrap_or("/"),
        };
        let body = page
            .render()
            .unwrap_or_else(|_| "This page could not be shown.".to_owned());
        let mut response = (self.status, axum::response::Html(body)).into_response();
        response.extensions_mut().insert(Refusal(self.reason));
        response
    }
}
