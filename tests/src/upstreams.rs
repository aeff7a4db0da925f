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

/// The URL a Lambda handed a read over to ([`stowage_http::handover`]): `response` is a 307 to
/// a path below `<root>/-/fetches/`.
pub fn handed_over_to(response: &reqwest::Response, root: &str) -> String {
    assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT);
    let location = response.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    assert!(
        location.starts_with(&format!("{root}/-/fetches/")),
        "{location}"
    );
    location
}

/// Checks that a handed-over URL made below `root` is refused when presented below
/// `elsewhere` (another workspace's root) of the server at `base`.
pub async fn assert_refused_elsewhere(base: &str, location: &str, root: &str, elsewhere: &str) {
    let moved = location.replacen(root, elsewhere, 1);
    let refused = reqwest::get(format!("{base}{moved}")).await.expect("GET");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{moved}");
}
