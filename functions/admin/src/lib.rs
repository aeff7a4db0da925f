//! The management API under `/api`: users, tokens, workspaces, repositories, permissions,
//! pipeline tokens, upstreams and packages. JSON in and out; errors as `{"error": {…}}`.

mod accounts;
mod api;
mod body;
mod error;
mod packages;
mod upstreams;
mod workspaces;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};
use stowage_http::AppState;

/// Management requests are small; anything bigger is a mistake or an attack.
pub(crate) const MAX_BODY: usize = 64 * 1024;

pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/user", get(accounts::current_user))
        .route("/users", post(accounts::create_user))
        .route(
            "/users/{username}/tokens",
            post(accounts::create_token_for_user),
        )
        .route(
            "/tokens",
            post(accounts::create_own_token).get(accounts::list_tokens),
        )
        .route("/tokens/{id}", delete(accounts::revoke_token))
        .route(
            "/workspaces",
            post(workspaces::create_workspace).get(workspaces::list_workspaces),
        )
        .route(
            "/workspaces/{workspace}",
            get(workspaces::get_workspace)
                .patch(workspaces::change_workspace)
                .delete(workspaces::delete_workspace),
        )
        .route(
            "/workspaces/{workspace}/repositories",
            post(workspaces::create_repository).get(workspaces::list_repositories),
        )
        .route(
            "/workspaces/{workspace}/repositories/{repository}",
            delete(workspaces::delete_repository),
        )
        .route(
            "/workspaces/{workspace}/restore",
            post(workspaces::restore_workspace),
        )
        .route("/workspaces/{workspace}/usage", get(workspaces::usage))
        .route("/workspaces/{workspace}/deleted", get(workspaces::deleted))
        .route("/workspaces/{workspace}/audit", get(workspaces::audit))
        .route(
            "/workspaces/{workspace}/repositories/{repository}/restore",
            post(workspaces::restore_repository),
        )
        .route(
            "/workspaces/{workspace}/repositories/{repository}/permissions/{username}",
            put(workspaces::set_permission).delete(workspaces::remove_permission),
        )
        .route(
            "/workspaces/{workspace}/repositories/{repository}/pipeline-tokens",
            post(workspaces::create_pipeline_token),
        )
        .route(
            "/workspaces/{workspace}/repositories/{repository}/upstreams",
            post(upstreams::attach_upstream).get(upstreams::list_upstreams),
        )
        .route(
            "/workspaces/{workspace}/repositories/{repository}/upstreams/{id}",
            get(upstreams::get_upstream)
                .patch(upstreams::change_upstream)
                .delete(upstreams::remove_upstream),
        )
        .route(
            "/workspaces/{workspace}/packages",
            post(packages::create_package).get(packages::list_packages),
        )
        .route(
            "/workspaces/{workspace}/packages/{kind}/{name}",
            get(packages::get_package).delete(packages::delete_package),
        )
        .route(
            "/workspaces/{workspace}/packages/{kind}/{name}/restore",
            post(packages::restore_package),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state);
    Router::new().nest("/api", stowage_http::edge(routes))
}

async fn not_found() -> axum::response::Response {
    error::route_not_found()
}

async fn method_not_allowed() -> axum::response::Response {
    error::method_not_allowed()
}
