//! Signing in and out, the user's own tokens, and the site admin's users.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use http::HeaderMap;
use http::header::SET_COOKIE;
use serde::Deserialize;
use stowage_domain::{Email, Scopes, Username};
use stowage_http::AppState;
use stowage_service::{NewToken, NewUser, TokenExpiry, TokenRef};

use super::{CsrfOnly, Fields, render, see};
use crate::error::{PageError, PageResult};
use crate::session::{self, Session, safe_next};
use crate::view::{Chrome, when};

#[derive(Deserialize)]
pub struct Next {
    next: Option<String>,
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    chrome: Chrome,
    csrf: String,
    next: String,
}

pub async fn sign_in_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(next): Query<Next>,
) -> PageResult<Response> {
    let (csrf, cookie) = session::sign_in_form(&state, &headers).await?;
    let page = SignInPage {
        chrome: Chrome::signed_out("Sign in"),
        csrf,
        next: safe_next(next.next.as_deref()),
    };
    let mut response = render(page)?;
    response.headers_mut().append(
        SET_COOKIE,
        cookie.parse().expect("cookies are header values"),
    );
    Ok(response)
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    next: String,
}

pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    Fields(form): Fields<SignInForm>,
) -> PageResult<Response> {
    let cookies = session::sign_in(&state, &headers, &form.csrf, &form.name, &form.token)
        .await
        .map_err(|error| error.back_to("/sign-in"))?;
    let mut response = Redirect::to(&safe_next(Some(&form.next))).into_response();
    for cookie in cookies {
        response.headers_mut().append(
            SET_COOKIE,
            cookie.parse().expect("cookies are header values"),
        );
    }
    Ok(response)
}

pub async fn sign_out(session: Session, Fields(form): Fields<CsrfOnly>) -> PageResult<Response> {
    session.check_csrf(&form.csrf)?;
    let mut response = Redirect::to("/sign-in").into_response();
    response.headers_mut().append(
        SET_COOKIE,
        session::sign_out()
            .parse()
            .expect("cookies are header values"),
    );
    Ok(response)
}

/// A token as its list shows it: never its secret.
struct TokenRow {
    id: String,
    name: String,
    scopes: String,
    created_at: String,
    expires_at: String,
    expired: bool,
}

fn token_row(token: TokenRef, now: DateTime<Utc>) -> TokenRow {
    TokenRow {
        scopes: scope_names(token.scopes),
        created_at: when(&token.created_at),
        expires_at: when(&token.expires_at),
        expired: token.expires_at <= now,
        id: token.id,
        name: token.name,
    }
}

fn scope_names(scopes: Scopes) -> String {
    if scopes.allows_write() {
        "read:package, write:package".to_owned()
    } else {
        "read:package".to_owned()
    }
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    chrome: Chrome,
    tokens: Vec<TokenRow>,
    /// The token just created, shown this once.
    created: Option<CreatedToken>,
}

struct CreatedToken {
    name: String,
    secret: String,
    expires_at: String,
}

async fn tokens_page(
    state: &AppState,
    session: &Session,
    created: Option<CreatedToken>,
) -> PageResult<Response> {
    let now = state.registry.now();
    let tokens = state.registry.list_tokens(&session.principal).await?;
    render(TokensPage {
        chrome: Chrome::of(session, "Your tokens"),
        tokens: tokens.into_iter().map(|t| token_row(t, now)).collect(),
        created,
    })
}

pub async fn tokens(State(state): State<AppState>, session: Session) -> PageResult<Response> {
    tokens_page(&state, &session, None).await
}

#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    write: Option<String>,
    #[serde(default)]
    expires_in_days: String,
}

/// Creates a token and shows its secret on the answer to the form, this once: it is in no
/// URL, and the page is not cached.
pub async fn create_token(
    State(state): State<AppState>,
    session: Session,
    Fields(form): Fields<TokenForm>,
) -> PageResult<Response> {
    session.check_csrf(&form.csrf)?;
    let created = mint(&state, &session, None, form)
        .await
        .map_err(|error| error.back_to("/tokens"))?;
    tokens_page(&state, &session, Some(created)).await
}

/// Mints the token a form describes, for `for_user` or the signed-in user.
async fn mint(
    state: &AppState,
    session: &Session,
    for_user: Option<&str>,
    form: TokenForm,
) -> PageResult<CreatedToken> {
    let days: u32 = form.expires_in_days.trim().parse().map_err(|_| {
        stowage_domain::Invalid::new("expires in (days)", "must be a number of days, 1 to 365")
    })?;
    let scopes = if form.write.is_some() {
        Scopes::WRITE
    } else {
        Scopes::READ
    };
    let issued = state
        .registry
        .create_token(
            &session.principal,
            for_user,
            NewToken {
                name: form.name,
                scopes,
                expires: TokenExpiry::InDays(days),
            },
        )
        .await?;
    Ok(CreatedToken {
        name: issued.token.name.clone(),
        secret: issued.secret.expose().to_owned(),
        expires_at: when(&issued.token.expires_at),
    })
}

pub async fn revoke_token(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Fields(form): Fields<CsrfOnly>,
) -> PageResult<Response> {
    session.check_csrf(&form.csrf)?;
    state
        .registry
        .revoke_token(&session.principal, &id)
        .await
        .map_err(|error| PageError::from(error).back_to("/tokens"))?;
    see("/tokens")
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    chrome: Chrome,
    created: Option<String>,
    /// A token just minted for a user, shown this once (to hand to them).
    issued: Option<(String, CreatedToken)>,
}

#[derive(Deserialize)]
pub struct Created {
    created: Option<String>,
}

pub async fn users(session: Session, Query(created): Query<Created>) -> PageResult<Response> {
    if !session.principal.is_site_admin() {
        return Err(PageError::not_found());
    }
    render(UsersPage {
        chrome: Chrome::of(&session, "Users"),
        created: created
            .created
            .filter(|name| Username::parse("", name).is_ok()),
        issued: None,
    })
}

#[derive(Deserialize)]
pub struct UserForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
}

pub async fn create_user(
    State(state): State<AppState>,
    session: Session,
    Fields(form): Fields<UserForm>,
) -> PageResult<Response> {
    session.check_csrf(&form.csrf)?;
    let back = |error: PageError| error.back_to("/users");
    let input = NewUser {
        username: Username::parse("username", form.username.trim()).map_err(|e| back(e.into()))?,
        email: Email::parse("e-mail", form.email.trim()).map_err(|e| back(e.into()))?,
    };
    let user = state
        .registry
        .create_user(&session.principal, input)
        .await
        .map_err(|error| back(error.into()))?;
    see(&format!("/users?created={}", user.username))
}

#[derive(Deserialize)]
pub struct UserTokenForm {
    #[serde(flatten)]
    token: TokenForm,
    #[serde(default)]
    username: String,
}

/// Mints a token for a user (the site admin), their first: shown once, to hand to them.
pub async fn create_token_for_user(
    State(state): State<AppState>,
    session: Session,
    Fields(form): Fields<UserTokenForm>,
) -> PageResult<Response> {
    session.check_csrf(&form.token.csrf)?;
    let username = form.username.trim().to_owned();
    let created = mint(&state, &session, Some(&username), form.token)
        .await
        .map_err(|error| error.back_to("/users"))?;
    render(UsersPage {
        chrome: Chrome::of(&session, "Users"),
        created: None,
        issued: Some((username, created)),
    })
}
