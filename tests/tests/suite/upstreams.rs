//! Upstreams through the management API, on both storage pairs: their life, who may manage
//! them, the addresses they may have, their sealed credentials and concurrent changes.

use std::collections::BTreeSet;

use http::StatusCode;
use serde_json::{Value, json};
use stowage_domain::{PackageType, TokenSecret, UpstreamReach};
use stowage_http::Limits;
use stowage_service::{Credential, Settings};
use stowage_storage::Query;
use stowage_tests::race::race;
use stowage_tests::{ADMIN_TOKEN, Auth, Stores, TestServer, on_both_backends};

use secrecy::ExposeSecret;

on_both_backends!(
    an_admin_attaches_lists_changes_and_removes_upstreams,
    credentials_are_sealed_at_rest_and_never_returned,
    only_repository_admins_manage_upstreams_and_readers_reach_their_own,
    bad_upstreams_are_refused_and_nothing_is_written,
    private_upstreams_need_the_operators_consent,
    racing_changes_of_one_upstream_lose_nothing,
);

const UPSTREAMS: &str = "/api/workspaces/acme/repositories/hub/upstreams";
const PASSWORD: &str = "npm_sEcReTuPsTrEaMpAsSwOrD0123456789";

/// A server with workspace `acme` and its repository `hub`, owned by the site admin.
async fn server_with_repository(stores: Stores, reach: UpstreamReach) -> TestServer {
    let settings = Settings {
        upstream_reach: reach,
        ..Settings::default()
    };
    let server = TestServer::start_with(stores, settings, Limits::local(64 * 1024 * 1024)).await;
    for (path, body) in [
        (
            "/api/workspaces",
            json!({"slug": "acme", "plan": "standard"}),
        ),
        ("/api/workspaces/acme/repositories", json!({"slug": "hub"})),
    ] {
        let (status, body) = server
            .call("POST", path, Auth::Bearer(ADMIN_TOKEN), Some(body))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    server
}

async fn attach(server: &TestServer, body: Value) -> (StatusCode, Value) {
    server
        .call("POST", UPSTREAMS, Auth::Bearer(ADMIN_TOKEN), Some(body))
        .await
}

async fn listed(server: &TestServer) -> Vec<Value> {
    let (status, body) = server
        .call("GET", UPSTREAMS, Auth::Bearer(ADMIN_TOKEN), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["values"].as_array().expect("values").clone()
}

async fn an_admin_attaches_lists_changes_and_removes_upstreams(stores: Stores) {
    let server = server_with_repository(stores, UpstreamReach::PublicOnly).await;
    let (status, npm) = attach(
        &server,
        json!({"type": "npm", "url": "https://registry.npmjs.org", "priority": 20}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{npm}");
    assert_eq!(npm["url"], "https://registry.npmjs.org/");
    assert_eq!(npm["type"], "npm");
    assert_eq!(npm["repository"], "hub");
    assert_eq!(npm["has_password"], false);
    assert_eq!(npm["created_by"], "admin");
    let (status, maven) = attach(
        &server,
        json!({"type": "maven", "url": "https://repo.maven.apache.org/maven2"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{maven}");
    assert_eq!(maven["priority"], 100, "the default priority");

    // Listed in resolution order: the lower priority first.
    let ids: Vec<Value> = listed(&server)
        .await
        .iter()
        .map(|u| u["id"].clone())
        .collect();
    assert_eq!(ids, vec![npm["id"].clone(), maven["id"].clone()]);

    let one = format!("{UPSTREAMS}/{}", maven["id"].as_str().expect("id"));
    let (status, body) = server
        .call("GET", &one, Auth::Bearer(ADMIN_TOKEN), None)
        .await;
    assert_eq!((status, &body), (StatusCode::OK, &maven));

    let (status, changed) = server
        .call(
            "PATCH",
            &one,
            Auth::Bearer(ADMIN_TOKEN),
            Some(json!({"priority": 5, "url": "https://maven.example.org/releases"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["url"], "https://maven.example.org/releases/");
    assert_eq!(changed["type"], "maven", "the rest is kept");
    let ids: Vec<Value> = listed(&server)
        .await
        .iter()
        .map(|u| u["id"].clone())
        .collect();
    assert_eq!(ids, vec![maven["id"].clone(), npm["id"].clone()]);

    let (status, _) = server
        .call("DELETE", &one, Auth::Bearer(ADMIN_TOKEN), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for method in ["GET", "DELETE", "PATCH"] {
        let (status, body) = server
            .call(method, &one, Auth::Bearer(ADMIN_TOKEN), Some(json!({})))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method}: {body}");
    }
    assert_eq!(listed(&server).await.len(), 1);

    // Each change is in the workspace's trail.
    let (_, audit) = server
        .call(
            "GET",
            "/api/workspaces/acme/audit",
            Auth::Bearer(ADMIN_TOKEN),
            None,
        )
        .await;
    let actions: Vec<(String, String)> = audit["values"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|event| event["subject"].as_str().unwrap_or("").contains("upstream"))
        .map(|event| {
            (
                event["action"].as_str().unwrap_or("").to_owned(),
                event["subject"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(actions.len(), 4, "{actions:?}");
    for action in ["created", "changed", "deleted"] {
        assert!(actions.iter().any(|(a, _)| a == action), "{actions:?}");
    }
}

async fn credentials_are_sealed_at_rest_and_never_returned(stores: Stores) {
    let server = server_with_repository(stores, UpstreamReach::PublicOnly).await;
    let (status, upstream) = attach(
        &server,
        json!({"type": "npm", "url": "https://npm.example.com", "username": "ci", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{upstream}");
    assert_eq!(upstream["has_password"], true);
    assert_eq!(upstream["username"], "ci");
    let one = format!("{UPSTREAMS}/{}", upstream["id"].as_str().expect("id"));
    for path in [UPSTREAMS, one.as_str()] {
        let (_, body) = server
            .call("GET", path, Auth::Bearer(ADMIN_TOKEN), None)
            .await;
        assert!(!body.to_string().contains(PASSWORD), "{body}");
        assert!(body.to_string().contains("has_password"), "{body}");
    }

    // What is stored holds no password in clear, under any encoding a reader might try.
    let stored = server
        .registry
        .inspect_metadata()
        .query(&Query::prefix("WS#acme", "UPSTREAM#", 10))
        .await
        .expect("query");
    assert_eq!(stored.items.len(), 1);
    let data = String::from_utf8_lossy(&stored.items[0].data).into_owned();
    use base64::Engine;
    for clear in [
        PASSWORD.to_owned(),
        base64::engine::general_purpose::STANDARD.encode(PASSWORD),
        hex::encode(PASSWORD),
    ] {
        assert!(!data.contains(&clear), "stored in clear: {data}");
    }
    assert!(data.contains("sealed_password"), "{data}");

    // The service opens it again for a fetch.
    let admin = server
        .registry
        .authenticate(&Credential::Bearer(TokenSecret::from_presented(
            ADMIN_TOKEN.to_owned(),
        )))
        .await
        .expect("admin");
    let reachable = server
        .registry
        .reachable_upstreams(&admin, "acme", PackageType::Npm)
        .await
        .expect("reachable");
    let credentials = reachable[0].credentials.as_ref().expect("credentials");
    assert_eq!(credentials.username.as_deref(), Some("ci"));
    assert_eq!(credentials.password.expose_secret(), PASSWORD);

    // A sealed password copied to another upstream opens for nobody.
    let (status, other) = attach(
        &server,
        json!({"type": "npm", "url": "https://other.example.com", "priority": 1}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{other}");
    let metadata = server.registry.inspect_metadata();
    let page = metadata
        .query(&Query::prefix("WS#acme", "UPSTREAM#", 10))
        .await
        .expect("query");
    let (with, without): (Vec<_>, Vec<_>) = page
        .items
        .into_iter()
        .partition(|item| String::from_utf8_lossy(&item.data).contains("sealed_password"));
    let mut forged: Value = serde_json::from_slice(&without[0].data).expect("json");
    let original: Value = serde_json::from_slice(&with[0].data).expect("json");
    forged["sealed_password"] = original["sealed_password"].clone();
    forged["username"] = json!("ci");
    metadata
        .write(stowage_storage::Write::Put(stowage_storage::Put::new(
            without[0].key.clone(),
            serde_json::to_vec(&forged).expect("json"),
        )))
        .await
        .expect("forge");
    let error = server
        .registry
        .reachable_upstreams(&admin, "acme", PackageType::Npm)
        .await
        .err()
        .expect("a moved secret does not open");
    assert!(error.is_internal(), "{error:?}");

    // Removing the credentials removes the sealed password.
    let (status, changed) = server
        .call(
            "PATCH",
            &one,
            Auth::Bearer(ADMIN_TOKEN),
            Some(json!({"username": null, "password": null})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["has_password"], false);
    assert!(changed.get("username").is_none(), "{changed}");
}

async fn only_repository_admins_manage_upstreams_and_readers_reach_their_own(stores: Stores) {
    let server = server_with_repository(stores, UpstreamReach::PublicOnly).await;
    let (status, _) = server
        .call(
            "POST",
            "/api/workspaces/acme/repositories",
            Auth::Bearer(ADMIN_TOKEN),
            Some(json!({"slug": "other"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, hub) = attach(
        &server,
        json!({"type": "npm", "url": "https://hub.example.com"}),
    )
    .await;
    let (status, _) = server
        .call(
            "POST",
            "/api/workspaces/acme/repositories/other/upstreams",
            Auth::Bearer(ADMIN_TOKEN),
            Some(json!({"type": "npm", "url": "https://other.example.com", "priority": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    let writer = server
        .user_with_token("wendy", &["read:package", "write:package"])
        .await;
    let outsider = server
        .user_with_token("olga", &["read:package", "write:package"])
        .await;
    let (status, _) = server
        .call(
            "PUT",
            "/api/workspaces/acme/repositories/hub/permissions/wendy",
            Auth::Bearer(ADMIN_TOKEN),
            Some(json!({"role": "write"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let one = format!("{UPSTREAMS}/{}", hub["id"].as_str().expect("id"));
    for (token, expected) in [
        (&writer, StatusCode::FORBIDDEN),
        (&outsider, StatusCode::NOT_FOUND),
    ] {
        for (method, path, body) in [
            (
                "POST",
                UPSTREAMS,
                Some(json!({"type": "npm", "url": "https://x.example.com"})),
            ),
            ("GET", UPSTREAMS, None),
            ("GET", one.as_str(), None),
            ("PATCH", one.as_str(), Some(json!({"priority": 1}))),
            ("DELETE", one.as_str(), None),
        ] {
            let (status, body) = server.call(method, path, Auth::Bearer(token), body).await;
            assert_eq!(status, expected, "{method} {path}: {body}");
        }
    }
    let (status, _) = server.call("GET", UPSTREAMS, Auth::None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(listed(&server).await.len(), 1, "nothing was changed");

    // A reader of `hub` fetches through hub's upstream only; an outsider through none.
    let principal = |token: &str| {
        let credential = Credential::Bearer(TokenSecret::from_presented(token.to_owned()));
        let registry = std::sync::Arc::clone(&server.registry);
        async move { registry.authenticate(&credential).await.expect("principal") }
    };
    let wendy = principal(&writer).await;
    let reachable = server
        .registry
        .reachable_upstreams(&wendy, "acme", PackageType::Npm)
        .await
        .expect("reachable");
    let urls: Vec<&str> = reachable.iter().map(|r| r.upstream.url.as_str()).collect();
    assert_eq!(urls, vec!["https://hub.example.com/"]);
    assert!(
        server
            .registry
            .reachable_upstreams(&wendy, "acme", PackageType::Maven)
            .await
            .expect("reachable")
            .is_empty()
    );
    let olga = principal(&outsider).await;
    assert!(
        server
            .registry
            .reachable_upstreams(&olga, "acme", PackageType::Npm)
            .await
            .is_err()
    );

    // A deleted repository's upstreams are reached by nobody and cannot be managed.
    let (status, _) = server
        .call(
            "DELETE",
            "/api/workspaces/acme/repositories/hub",
            Auth::Bearer(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let admin = principal(ADMIN_TOKEN).await;
    let reachable = server
        .registry
        .reachable_upstreams(&admin, "acme", PackageType::Npm)
        .await
        .expect("reachable");
    let urls: Vec<&str> = reachable.iter().map(|r| r.upstream.url.as_str()).collect();
    assert_eq!(urls, vec!["https://other.example.com/"]);
    let (status, _) = attach(
        &server,
        json!({"type": "npm", "url": "https://late.example.com"}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Purged with its repository; the other repository's stays.
    server.clock.advance(chrono::Duration::days(31));
    server
        .registry
        .purge(&stowage_purge::Content, std::time::Duration::from_secs(120))
        .await
        .expect("purge");
    let left = server
        .registry
        .inspect_metadata()
        .query(&Query::prefix("WS#acme", "UPSTREAM#", 10))
        .await
        .expect("query");
    let keys: Vec<&str> = left
        .items
        .iter()
        .map(|item| item.key.sort.as_str())
        .collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].starts_with("UPSTREAM#other#"), "{keys:?}");
}

async fn bad_upstreams_are_refused_and_nothing_is_written(stores: Stores) {
    let server = server_with_repository(stores, UpstreamReach::PublicOnly).await;
    let long_password = "p".repeat(4097);
    for (body, field) in [
        (
            json!({"type": "npm", "url": "http://registry.npmjs.org"}),
            "url",
        ),
        (
            json!({"type": "npm", "url": "https://127.0.0.1:4873"}),
            "url",
        ),
        (
            json!({"type": "npm", "url": "https://169.254.169.254/"}),
            "url",
        ),
        (json!({"type": "npm", "url": "https://localhost/"}), "url"),
        (
            json!({"type": "npm", "url": "https://u:p@example.com/"}),
            "url",
        ),
        (json!({"type": "npm", "url": "not a url"}), "url"),
        (json!({"type": "npm"}), "url"),
        (json!({"type": "pypi", "url": "https://pypi.org/"}), "type"),
        (json!({"url": "https://registry.npmjs.org"}), "type"),
        (
            json!({"type": "npm", "url": "https://example.com", "username": "u"}),
            "password",
        ),
        (
            json!({"type": "npm", "url": "https://example.com", "password": ""}),
            "password",
        ),
        (
            json!({"type": "npm", "url": "https://example.com", "password": long_password}),
            "password",
        ),
        (
            json!({"type": "npm", "url": "https://example.com", "username": "a\nb", "password": "p"}),
            "username",
        ),
        (
            json!({"type": "npm", "url": "https://example.com", "priority": 70000}),
            "priority",
        ),
        (
            json!({"type": "npm", "url": "https://example.com", "priority": -1}),
            "priority",
        ),
    ] {
        let (status, answer) = attach(&server, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{body}: {answer}");
    }
    assert!(listed(&server).await.is_empty(), "nothing was attached");

    let (_, upstream) = attach(
        &server,
        json!({"type": "npm", "url": "https://registry.npmjs.org"}),
    )
    .await;
    let one = format!("{UPSTREAMS}/{}", upstream["id"].as_str().expect("id"));
    for (body, field) in [
        (json!({"type": "maven"}), "type"),
        (json!({"url": "https://10.0.0.1/"}), "url"),
        (json!({"username": "u"}), "password"),
        (json!({"priority": "high"}), "priority"),
    ] {
        let (status, answer) = server
            .call("PATCH", &one, Auth::Bearer(ADMIN_TOKEN), Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        let named = answer["error"]["field"].as_str().unwrap_or("");
        assert!(
            named == field || answer.to_string().contains(field),
            "{body}: {answer}"
        );
    }
    let (_, unchanged) = server
        .call("GET", &one, Auth::Bearer(ADMIN_TOKEN), None)
        .await;
    assert_eq!(unchanged, upstream, "a refused change changes nothing");
    for path in [
        format!("{UPSTREAMS}/nonexistent"),
        format!("{UPSTREAMS}/NOT%20AN%20ID"),
        "/api/workspaces/acme/repositories/nope/upstreams".to_owned(),
        "/api/workspaces/nope/repositories/hub/upstreams".to_owned(),
    ] {
        let (status, body) = server
            .call("GET", &path, Auth::Bearer(ADMIN_TOKEN), None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
}

async fn private_upstreams_need_the_operators_consent(stores: Stores) {
    let server = server_with_repository(stores, UpstreamReach::AnyAddress).await;
    let (status, body) = attach(
        &server,
        json!({"type": "container", "url": "http://127.0.0.1:5000"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["url"], "http://127.0.0.1:5000/");
    let (status, body) = attach(
        &server,
        json!({"type": "container", "url": "ftp://127.0.0.1/"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

async fn racing_changes_of_one_upstream_lose_nothing(stores: Stores) {
    let server =
        std::sync::Arc::new(server_with_repository(stores, UpstreamReach::PublicOnly).await);
    let (_, upstream) = attach(
        &server,
        json!({"type": "npm", "url": "https://registry.npmjs.org"}),
    )
    .await;
    let one = format!("{UPSTREAMS}/{}", upstream["id"].as_str().expect("id"));
    let outcomes = race(8, |i| {
        let server = std::sync::Arc::clone(&server);
        let one = one.clone();
        async move {
            let priority = 200 + i;
            let (status, _) = server
                .call(
                    "PATCH",
                    &one,
                    Auth::Bearer(ADMIN_TOKEN),
                    Some(json!({ "priority": priority })),
                )
                .await;
            (status, priority)
        }
    })
    .await;
    let won: BTreeSet<usize> = outcomes
        .iter()
        .filter(|(status, _)| *status == StatusCode::OK)
        .map(|(_, priority)| *priority)
        .collect();
    assert!(!won.is_empty(), "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|(status, _)| *status == StatusCode::OK || *status == StatusCode::CONFLICT),
        "{outcomes:?}"
    );
    let (_, now) = server
        .call("GET", &one, Auth::Bearer(ADMIN_TOKEN), None)
        .await;
    let final_priority = now["priority"].as_u64().expect("priority") as usize;
    assert!(won.contains(&final_priority), "{now} {outcomes:?}");
    // Every change that was answered 200 is in the trail, and no other.
    let (_, audit) = server
        .call(
            "GET",
            "/api/workspaces/acme/audit",
            Auth::Bearer(ADMIN_TOKEN),
            None,
        )
        .await;
    let changes = audit["values"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|event| event["action"] == "changed")
        .count();
    assert_eq!(changes, won.len(), "{outcomes:?}");
}
