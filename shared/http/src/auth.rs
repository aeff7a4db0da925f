//! Credentials from `Authorization` headers, and the extractors that authenticate them.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::response::IntoResponse;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use http::header::AUTHORIZATION;
use http::request::Parts;
use stowage_domain::{Principal, TokenSecret};
use stowage_service::{Credential, Error};

use crate::AppState;

/// The credential in the `Authorization` header: `Ok(None)` when there is none, an error when
/// it is malformed (an unreadable header is never silently ignored).
pub fn credential_from_headers(headers: &HeaderMap) -> Result<Option<Credential>, Error> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| Error::Unauthenticated)?;
    let (scheme, rest) = value.split_once(' ').ok_or(Error::Unauthenticated)?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = STANDARD.decode(rest).map_err(|_| Error::Unauthenticated)?;
        let decoded = String::from_utf8(decoded).map_err(|_| Error::Unauthenticated)?;
        let (username, password) = decoded.split_once(':').ok_or(Error::Unauthenticated)?;
        if username.is_empty() || password.is_empty() {
            return Err(Error::Unauthenticated);
        }
        Ok(Some(Credential::Basic {
            username: username.to_owned(),
            secret: TokenSecret::from_presented(password.to_owned()),
        }))
    } else if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
        Ok(Some(Credential::Bearer(TokenSecret::from_presented(
            rest.to_owned(),
        ))))
    } else {
        Err(Error::Unauthenticated)
    }
}

/// An authenticated caller; the request is rejected with `R` (the protocol's error type)
/// when the credential is missing or invalid.
pub struct Caller<R>(pub Principal, PhantomData<R>);

impl<R> Caller<R> {
    pub fn principal(&self) -> &Principal {
        &self.0
    }
}

impl<R> FromRequestParts<AppState> for Caller<R>
where
    R: From<Error> + IntoResponse,
{
    type Rejection = R;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, R> {
        let credential = credential_from_headers(&parts.headers)?.ok_or(Error::Unauthenticated)?;
        let principal = state.registry.authenticate(&credential).await?;
        Ok(Caller(principal, PhantomData))
    }
}

/// A caller who may be anonymous; a credential that is present must still be valid.
pub struct MaybeCaller<R>(pub Option<Principal>, PhantomData<R>);

impl<R> FromRequestParts<AppState> for MaybeCaller<R>
where
    R: From<Error> + IntoResponse,
{
    type Rejection = R;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, R> {
        let principal = match credential_from_headers(&parts.headers)? {
            Some(credential) => Some(state.registry.authenticate(&credential).await?),
            None => None,
        };
        Ok(MaybeCaller(principal, PhantomData))
    }
}
