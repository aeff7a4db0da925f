//! The web interface: server-rendered pages over the service, for the people who use the
//! registry. Every page shows only what the signed-in user may read, decided by the same
//! service calls the protocols and the API make; every change is a form POST with a CSRF
//! secret; pages work without JavaScript (one small script adds copy buttons).
//!
//! | file | pages |
//! |---|---|
//! | `pages/account.rs` | sign in, sign out, your tokens, users (site admin) |
//! | `pages/workspace.rs` | workspaces, a workspace (repositories, packages, deleted), its usage |
//! | `pages/package.rs` | a package: versions, how to use it, deletions |
//! | `pages/repository.rs` | a repository: members and roles, pipeline tokens |
//! | `session.rs` | the session cookie and CSRF secrets |
//! | `view.rs` | what every page shares: the layout's data, sizes, dates, the usage chart |
//! | `how_to_use.rs` | how to use a package, for each client |
//! | `error.rs` | errors as pages |
//!
//! Templates are askama's (`templates/`): checked when the crate compiles, escaped by default,
//! rendered without parsing anything at run time (a Lambda's cold start pays nothing for them).

mod assets;
mod error;
mod how_to_use;
mod pages;
mod session;
mod view;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use http::HeaderValue;
use http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_FRAME_OPTIONS};
use stowage_http::AppState;
use tower_http::set_header::SetResponseHeaderLayer;

/// Forms are small; anything bigger is a mistake or an attack.
const MAX_FORM: usize = 16 * 1024;

/// Scripts, styles and images from this site only, none inline; forms post here only; no
/// frames, no plugins, no base-URL tricks.
const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'";

pub fn router(state: AppState) -> Router {
    let pages = Router::new()
        .route("/", get(pages::workspace::home))
        .route("/workspaces", post(pages::workspace::create_workspace))
        .route(
            "/sign-in",
            get(pages::account::sign_in_page).post(pages::account::sign_in),
        )
        .route("/sign-out", post(pages::account::sign_out))
        .route(
            "/tokens",
            get(pages::account::tokens).post(pages::account::create_token),
        )
        .route("/tokens/{id}/revoke", post(pages::account::revoke_token))
        .route(
            "/users",
            get(pages::account::users).post(pages::account::create_user),
        )
        .route("/users/tokens", post(pages::account::create_token_for_user))
        .route("/workspaces/{workspace}", get(pages::workspace::workspace))
        .route(
            "/workspaces/{workspace}/usage",
            get(pages::workspace::usage),
        )
        .route(
            "/workspaces/{workspace}/packages",
            post(pages::workspace::create_package),
        )
        .route(
            "/workspaces/{workspace}/repositories",
            post(pages::workspace::create_repository),
        )
        .route(
            "/workspaces/{workspace}/restore",
            post(pages::workspace::restore),
        )
        .route(
            "/workspaces/{workspace}/repositories/{repository}",
            get(pages::repository::repository),
        )
        .route(
            "/workspaces/{workspace}/repositories/{repository}/members",
            post(pages::repository::set_member),
        )
        .route(
            "/workspaces/{workspace}/repositories/{repository}/members/{username}/revoke",
            post(pages::repository::revoke_member),
        )
        .route(
            "/workspaces/{workspace}/repositories/{repository}/pipeline-tokens",
            post(pages::repository::pipeline_token),
        )
        .route(
            "/workspaces/{workspace}/packages/{kind}/{*name}",
            get(pages::package::package),
        )
        .route(
            "/workspaces/{workspace}/delete-version/{kind}/{*name}",
            get(pages::package::confirm_delete_version).post(pages::package::delete_version),
        )
        .route(
            "/workspaces/{workspace}/delete-package/{kind}/{*name}",
            get(pages::package::confirm_delete_package).post(pages::package::delete_package),
        )
        .layer(SetResponseHeaderLayer::if_not_present(
            CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(DefaultBodyLimit::max(MAX_FORM))
        .with_state(state);
    let site = pages
        .route("/static/{file}", get(assets::serve))
        .layer(SetResponseHeaderLayer::overriding(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ));
    stowage_http::edge(site)
}
