//! What the proxy tests share: a server that may reach upstreams on loopback, a workspace
//! whose repository proxies an upstream, and readers of its repositories.

use http::StatusCode;
use serde_json::{Value, json};
use stowage_domain::UpstreamReach;
use stowage_http::Limits;
use stowage_service::Settings;

use crate::{ADMIN_TOKEN, Auth, Stores, TestServer};

/// Settings under which upstreams may be on loopback (the tests' upstreams are).
pub fn loopback_upstreams() -> Settings {
    Settings {
        upstream_reach: UpstreamReach::AnyAddress,
        ..Settings::default()
    }
}

/// A server under `settings`, with workspace `acme` and its `repositories`, made by the
/// site admin.
pub async fn proxy_server(stores: Stores, settings: Settings, repositories: &[&str]) -> TestServer {
    let server = TestServer::start_with(stores, settings, Limits::local(64 * 1024 * 1024)).await;
    workspace(&server, repositories).await;
    server
}

/// Workspace `acme` with `repositories`, made by the site admin.
pub async fn workspace(server: &TestServer, repositories: &[&str]) {
    let (status, body) = server
        .call(
            "POST",
            "/api/workspaces",
            Auth::Bearer(ADMIN_TOKEN),
            Some(json!({"slug": "acme", "plan": "standard"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for repository in repositories {
        let (status, body) = server
            .call(
                "POST",
                "/api/workspaces/acme/repositories",
                Auth::Bearer(ADMIN_TOKEN),
                Some(json!({ "slug": repository })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
}

/// Attaches an upstream (a body of `POST …/upstreams`) to `repository` of `acme`.
pub async fn attach(server: &TestServer, repository: &str, upstream: Value) {
    let (status, body) = server
        .call(
            "POST",
            &format!("/api/workspaces/acme/repositories/{repository}/upstreams"),
            Auth::Bearer(ADMIN_TOKEN),
            Some(upstream),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// A new user `user` with `role` on `repository` of `acme`: their token (read and write
/// scopes).
pub async fn member(server: &TestServer, repository: &str, user: &str, role: &str) -> String {
    let token = server
        .user_with_token(user, &["read:package", "write:package"])
        .await;
    let (status, body) = server
        .call(
            "PUT",
            &format!("/api/workspaces/acme/repositories/{repository}/permissions/{user}"),
            Auth::Bearer(ADMIN_TOKEN),
            Some(json!({ "role": role })),
        )
        .await;
    assert!(status.is_success(), "{body}");
    token
}
