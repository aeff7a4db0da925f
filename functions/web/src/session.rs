//! Signing in to the web interface, and the session that follows.
//!
//! The session cookie holds what the user signed in with (their name and API token) and a
//! random CSRF secret, encrypted and authenticated with AES-GCM under a key derived from the
//! deployment's signing key: the browser keeps it but cannot read or change it, and nothing is
//! stored on the server. Every request authenticates the token again (the service caches it for
//! a few seconds), so a revoked or expired token ends its sessions. The cookie is `HttpOnly`,
//! `SameSite=Lax`, `Secure` when the site is served over HTTPS, and expires with the token or
//! after [`SESSION_MAX`], whichever is first. It authenticates the interface's routes only:
//! the protocols and the API read `Authorization` and nothing else.
//!
//! Every form carries the session's CSRF secret; a POST without it is refused
//! ([`Session::check_csrf`]). The sign-in form, before there is a session, carries one bound
//! to a short-lived cookie of its own.

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use cookie::{Cookie, CookieJar, Key, SameSite};
use http::HeaderMap;
use http::header::{COOKIE, SET_COOKIE};
use http::request::Parts;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use stowage_domain::{Principal, TokenSecret, Username};
use stowage_http::{AppState, base_url};
use stowage_service::{Credential, Registry};

use crate::error::PageError;

const SESSION_COOKIE: &str = "stowage_session";
const SIGN_IN_COOKIE: &str = "stowage_sign_in";
/// The longest a session lasts, whatever its token's expiry.
const SESSION_MAX: chrono::Duration = chrono::Duration::hours(12);
/// How long the sign-in form may be left open.
const SIGN_IN_FORM_MAX: chrono::Duration = chrono::Duration::minutes(30);

/// What the session cookie holds, encrypted.
#[derive(Serialize, Deserialize)]
struct Sealed {
    /// The name the user signed in with (a username or e-mail address).
    name: String,
    token: String,
    csrf: String,
    expires_at: DateTime<Utc>,
}

/// A signed-in user, on a route of the interface.
pub struct Session {
    pub principal: Principal,
    pub csrf: String,
}

impl Session {
    pub fn username(&self) -> &Username {
        self.principal
            .user()
            .expect("only users sign in (Registry::sign_in)")
    }

    /// Refuses a form that does not carry this session's CSRF secret.
    pub fn check_csrf(&self, presented: &str) -> Result<(), PageError> {
        check_csrf(&self.csrf, presented)
    }
}

fn check_csrf(expected: &str, presented: &str) -> Result<(), PageError> {
    // Compared as hashes, so the time taken says nothing about how much of it matched.
    if !expected.is_empty() && Sha256::digest(expected) == Sha256::digest(presented) {
        Ok(())
    } else {
        Err(PageError::csrf())
    }
}

fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

async fn cookie_key(registry: &Registry) -> Result<Key, PageError> {
    let master = registry.signing_key("web-session").await?;
    Ok(Key::derive_from(&master))
}

fn jar_of(headers: &HeaderMap) -> CookieJar {
    let mut jar = CookieJar::new();
    for value in headers.get_all(COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        for cookie in Cookie::split_parse(value.to_owned()).flatten() {
            jar.add_original(cookie);
        }
    }
    jar
}

/// The value of an encrypted cookie, if present and intact.
async fn open_cookie(
    registry: &Registry,
    headers: &HeaderMap,
    name: &str,
) -> Result<Option<String>, PageError> {
    let jar = jar_of(headers);
    if jar.get(name).is_none() {
        return Ok(None);
    }
    let key = cookie_key(registry).await?;
    Ok(jar
        .private(&key)
        .get(name)
        .map(|cookie| cookie.value().to_owned()))
}

/// A `Set-Cookie` value for an encrypted cookie that lasts until `expires_at`.
async fn sealed_cookie(
    state: &AppState,
    headers: &HeaderMap,
    name: &'static str,
    value: String,
    expires_at: DateTime<Utc>,
) -> Result<String, PageError> {
    let key = cookie_key(&state.registry).await?;
    let seconds = (expires_at - state.registry.now()).num_seconds().max(0);
    let cookie = Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(base_url(state, headers).starts_with("https://"))
        .max_age(cookie::time::Duration::seconds(seconds))
        .build();
    let mut jar = CookieJar::new();
    jar.private_mut(&key).add(cookie);
    let sealed = jar.get(name).expect("just added");
    Ok(sealed.to_string())
}

/// A `Set-Cookie` value that removes cookie `name`.
fn removal(name: &'static str) -> String {
    Cookie::build((name, ""))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(cookie::time::Duration::ZERO)
        .build()
        .to_string()
}

impl FromRequestParts<AppState> for Session {
    /// A visitor without a valid session is sent to sign in, and back here after.
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let back = parts.uri.path().to_owned();
        let to_sign_in = || {
            let mut response =
                Redirect::to(&format!("/sign-in?next={}", encode_next(&back))).into_response();
            if let Ok(value) = removal(SESSION_COOKIE).parse() {
                response.headers_mut().append(SET_COOKIE, value);
            }
            response
        };
        let sealed = open_cookie(&state.registry, &parts.headers, SESSION_COOKIE)
            .await
            .map_err(IntoResponse::into_response)?;
        let Some(sealed) = sealed.and_then(|text| serde_json::from_str::<Sealed>(&text).ok())
        else {
            return Err(to_sign_in());
        };
        if sealed.expires_at <= state.registry.now() {
            return Err(to_sign_in());
        }
        let credential = Credential::Basic {
            username: sealed.name,
            secret: TokenSecret::from_presented(sealed.token),
        };
        match state.registry.sign_in(&credential).await {
            Ok((principal, _)) => Ok(Session {
                principal,
                csrf: sealed.csrf,
            }),
            Err(error) if error.is_internal() => Err(PageError::from(error).into_response()),
            Err(_) => Err(to_sign_in()),
        }
    }
}

/// Where to go after signing in: a path of this site only (never another origin).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

fn encode_next(path: &str) -> String {
    path.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// The CSRF secret of the sign-in form, and the cookie that binds it to this browser.
pub async fn sign_in_form(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(String, String), PageError> {
    let secret = random_secret();
    let expires_at = state.registry.now() + SIGN_IN_FORM_MAX;
    let cookie = sealed_cookie(state, headers, SIGN_IN_COOKIE, secret.clone(), expires_at).await?;
    Ok((secret, cookie))
}

/// Signs in with a name and a token from the sign-in form: the `Set-Cookie` values that start
/// the session (and drop the form's cookie).
pub async fn sign_in(
    state: &AppState,
    headers: &HeaderMap,
    form_csrf: &str,
    name: &str,
    token: &str,
) -> Result<Vec<String>, PageError> {
    let expected = open_cookie(&state.registry, headers, SIGN_IN_COOKIE)
        .await?
        .unwrap_or_default();
    check_csrf(&expected, form_csrf)?;
    let name = name.trim();
    let token = token.trim();
    if name.is_empty() || token.is_empty() {
        return Err(PageError::sign_in_refused());
    }
    let credential = Credential::Basic {
        username: name.to_owned(),
        secret: TokenSecret::from_presented(token.to_owned()),
    };
    let (_, token_expires_at) = state
        .registry
        .sign_in(&credential)
        .await
        .map_err(PageError::from_sign_in)?;
    let expires_at = token_expires_at.min(state.registry.now() + SESSION_MAX);
    let sealed = Sealed {
        name: name.to_owned(),
        token: token.to_owned(),
        csrf: random_secret(),
        expires_at,
    };
    let value = serde_json::to_string(&sealed).expect("a session always serialises");
    let session = sealed_cookie(state, headers, SESSION_COOKIE, value, expires_at).await?;
    Ok(vec![session, removal(SIGN_IN_COOKIE)])
}

/// The `Set-Cookie` value that ends the session.
pub fn sign_out() -> String {
    removal(SESSION_COOKIE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_of_this_site_are_followed_after_signing_in() {
        assert_eq!(safe_next(Some("/workspaces/acme")), "/workspaces/acme");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn a_form_without_the_sessions_secret_is_refused() {
        assert!(check_csrf("abc", "abc").is_ok());
        assert!(check_csrf("abc", "abd").is_err());
        assert!(check_csrf("abc", "").is_err());
        assert!(check_csrf("", "").is_err());
    }
}
