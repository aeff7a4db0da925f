//! The pages, by what they are about. Each handler makes the service calls its page needs and
//! renders one template; a change is a form POST whose CSRF secret is checked first, answered
//! with a redirect to the page that shows its result (or, for a token, the page that shows it
//! once).

pub mod account;
pub mod package;
pub mod repository;
pub mod workspace;

use askama::Template;
use axum::Form;
use axum::extract::{FromRequest, Request};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::de::DeserializeOwned;

use crate::error::{PageError, PageResult};

/// A form that carries nothing but its CSRF secret (a button).
#[derive(serde::Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    pub csrf: String,
}

/// A form's fields; a body that is not a form is refused as a page.
pub struct Fields<T>(pub T);

impl<S, T> FromRequest<S> for Fields<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = PageError;

    async fn from_request(request: Request, state: &S) -> Result<Self, PageError> {
        Form::<T>::from_request(request, state)
            .await
            .map(|Form(fields)| Fields(fields))
            .map_err(|rejection| PageError::new(rejection.status(), rejection.body_text()))
    }
}

pub fn render(page: impl Template) -> PageResult<Response> {
    Ok(Html(page.render()?).into_response())
}

/// After a change: see the page that shows it (a reload does not post the form again).
pub fn see(path: &str) -> PageResult<Response> {
    Ok(Redirect::to(path).into_response())
}
