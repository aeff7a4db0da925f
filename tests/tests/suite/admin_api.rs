//! The management API over real HTTP, on both storage pairs.

use std::sync::Arc;

use http::StatusCode;
use serde_json::{Value, json};
use stowage_tests::race::{race, tally};
use stowage_tests::{ADMIN_TOKEN, Auth, Stores, TestServer, on_both_backends};

on_both_backends!(
    a_workspace_to_a_package,
    tokens_are_listed_without_secrets_and_revocable,
    bad_input_names_the_field_and_writes_nothing,
    racing_creators_of_one_slug_get_one_201,
    racing_creators_of_one_package_get_one_201,
    errors_are_json_with_challenges,
    a_refused_field_is_named_with_the_domains_message,
);

async fn a_workspace_to_a_package(stores: Stores) {
    let server = TestServer::start(stores).await;
    let alice = server
        .user_with_token("alice", &["read:package", "write:package"])
        .await;
    let auth = Auth::Basic("alice", &alice);
    let (status, body) = server
        .call(
            "POST",
            "/api/workspaces",
            auth,
            Some(json!({"slug": "acme", "plan": "premium"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        (body["slug"].as_str(), body["plan"].as_str()),
        (Some("acme"), Some("premium"))
    );
    let (status, body) = server.call("GET", "/api/workspaces/acme", auth, None).await;
    assert_eq!(
        (status, body["admin"].as_bool()),
        (StatusCode::OK, Some(true))
    );

    let (status, _) = server
        .call(
            "POST",
            "/api/workspaces/acme/repositories",
            auth,
            Some(json!({"slug": "api"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = server
        .call(
            "POST",
            "/api/workspaces/acme/packages",
            auth,
            Some(json!({"type": "container", "name": "api/server", "repository": "api"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = server
        .call(
            "GET",
            "/api/workspaces/acme/packages/container/api%2Fserver",
            auth,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["repository"], "api");
    assert_eq!(body["versions"], json!([]));
    let (status, body) = server
        .call(
            "POST",
            "/api/workspaces/acme/packages",
            auth,
            Some(json!({"type": "npm", "name": "@acme/ui", "repository": "api"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = server
        .call(
            "GET",
            "/api/workspaces/acme/packages/npm/@acme%2Fui",
            auth,
            None,
        )
        .await;
    assert_eq!(
        (status, body["name"].as_str()),
        (StatusCode::OK, Some("@acme/ui"))
    );
    let (_, body) = server
        .call("GET", "/api/workspaces/acme/packages", auth, None)
        .await;
    let names: Vec<_> = body["values"]
        .as_array()
        .expect("list")
        .iter()
        .map(|p| p["name"].clone())
        .collect();
    assert_eq!(names, [json!("api/server"), json!("@acme/ui")]);

    // Roles: bob gets read on api and then sees it, in the list and by name.
    let bob = server.user_with_token("bob", &["read:package"]).await;
    let (status, _) = server
        .call("GET", "/api/workspaces/acme", Auth::Bearer(&bob), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server
        .call(
            "PUT",
            "/api/workspaces/acme/repositories/api/permissions/bob",
            auth,
            Some(json!({"role": "read"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = server
        .call(
            "PUT",
            "/api/workspaces/acme/repositories/api/permissions/bob",
            auth,
            Some(json!({"role": "write"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = server
        .call(
            "GET",
            "/api/workspaces/acme/repositories",
            Auth::Bearer(&bob),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // bob's token is read-only, so his write role is capped at read.
    assert_eq!(
        body["values"],
        json!([{"workspace": "acme", "slug": "api", "role": "read", "created_at": body["values"][0]["created_at"]}])
    );
    let (status, _) = server
        .call(
            "DELETE",
            "/api/workspaces/acme/repositories/api/permissions/bob",
            auth,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = server
        .call(
            "GET",
            "/api/workspaces/acme/repositories",
            Auth::Bearer(&bob),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Pipeline tokens: Bitbucket's username/token pair, write to their repository only.
    let (status, pipeline) = server
        .call(
            "POST",
            "/api/workspaces/acme/repositories/api/pipeline-tokens",
            auth,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{pipeline}");
    assert_eq!(pipeline["username"], "pipeline@acme/api");
    assert!(
        pipeline["token"]
            .as_str()
            .expect("token")
            .starts_with("stw_")
    );
    let (pipeline_user, pipeline_token) = (
        pipeline["username"].as_str().expect("user"),
        pipeline["token"].as_str().expect("token"),
    );
    let (status, body) = server
        .call(
            "GET",
            "/api/workspaces/acme/packages",
            Auth::Basic(pipeline_user, pipeline_token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["values"].as_array().map(Vec::len), Some(2));
    let (status, _) = server
        .call(
            "POST",
            "/api/workspaces/acme/repositories/api/pipeline-tokens",
            auth,
            Some(json!({"expires_in_seconds": 86_401})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Deleting the repository hides it and its packages at once.
    let (status, body) = server
        .call(
            "DELETE",
            "/api/workspaces/acme/repositories/api",
            auth,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(body["purge_after"].is_string());
    let (status, _) = server
        .call(
            "GET",
            "/api/workspaces/acme/packages/container/api%2Fserver",
            auth,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, body) = server
        .call("GET", "/api/workspaces/acme/packages", auth, None)
        .await;
    assert_eq!(body["values"], json!([]));
    // The slug stays reserved until the purge.
    let (status, _) = server
        .call(
            "POST",
            "/api/workspaces/acme/repositories",
            auth,
            Some(json!({"slug": "api"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    let (status, _) = server
        .call("DELETE", "/api/workspaces/acme", auth, None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _) = server.call("GET", "/api/workspaces/acme", auth, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server
        .call(
            "POST",
            "/api/workspaces",
            auth,
            Some(json!({"slug": "acme", "plan": "standard"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

async fn tokens_are_listed_without_secrets_and_revocable(stores: Stores) {
    let server = TestServer::start(stores).await;
    let alice = server.user_with_token("alice", &["write:package"]).await;
    let expires = (server.clock_now() + chrono::Duration::days(10)).to_rfc3339();
    let (status, second) = server
        .call(
            "POST",
            "/api/tokens",
            Auth::Bearer(&alice),
            Some(json!({"name": "ci", "scopes": ["read:package"], "expires_at": expires})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(second["scopes"], json!(["read:package"]));
    let (status, listed) = server
        .call("GET", "/api/tokens", Auth::Bearer(&alice), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let listed = listed["values"].as_array().expect("list").clone();
    assert_eq!(listed.len(), 2);
    assert!(
        listed
            .iter()
            .all(|t| t.get("token").is_none() && t["id"].is_string())
    );
    assert!(!listed.iter().any(|t| t.to_string().contains("stw_")));

    // Someone else cannot revoke it, nor mint for alice.
    let bob = server.user_with_token("bob", &["write:package"]).await;
    let path = format!("/api/tokens/{}", second["id"].as_str().expect("id"));
    let (status, _) = server.call("DELETE", &path, Auth::Bearer(&bob), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server
        .call(
            "POST",
            "/api/users/alice/tokens",
            Auth::Bearer(&bob),
            Some(json!({"name": "x", "scopes": ["read:package"], "expires_at": expires})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let second_token = second["token"].as_str().expect("token");
    assert_eq!(
        server.status("GET", "/api/user", second_token).await,
        StatusCode::OK
    );
    let (status, _) = server
        .call("DELETE", &path, Auth::Bearer(&alice), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        server.status("GET", "/api/user", second_token).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        server.status("DELETE", &path, &alice).await,
        StatusCode::NOT_FOUND
    );

    // Basic takes the username or the e-mail; any other name fails.
    assert_eq!(
        server
            .call("GET", "/api/user", Auth::Basic("alice", &alice), None)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        server
            .call(
                "GET",
                "/api/user",
                Auth::Basic("ALICE@example.com", &alice),
                None
            )
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        server
            .call("GET", "/api/user", Auth::Basic("bob", &alice), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );

    // Expired tokens stop working (the fixture's tokens last 300 days).
    server.clock.advance(chrono::Duration::days(301));
    assert_eq!(
        server.status("GET", "/api/user", &alice).await,
        StatusCode::UNAUTHORIZED
    );
}

/// Everything that exists after set-up, as a fingerprint to compare after refused requests.
async fn snapshot(server: &TestServer, token: &str) -> Vec<Value> {
    let mut all = Vec::new();
    for path in [
        "/api/workspaces/acme",
        "/api/workspaces/acme/repositories",
        "/api/workspaces/acme/packages",
        "/api/tokens",
    ] {
        all.push(server.call("GET", path, Auth::Bearer(token), None).await.1);
    }
    all
}

async fn bad_input_names_the_field_and_writes_nothing(stores: Stores) {
    let server = TestServer::start(stores).await;
    let alice = server.user_with_token("alice", &["write:package"]).await;
    server
        .package(&alice, "acme", "api", "container", "api/server")
        .await;
    let before = snapshot(&server, &alice).await;
    let now = server.clock_now();
    let long = "a".repeat(63);
    let cases: Vec<(&str, &str, Value, &str)> = vec![
        (
            "POST",
            "/api/workspaces",
            json!({"slug": "Acme2", "plan": "standard"}),
            "slug",
        ),
        (
            "POST",
            "/api/workspaces",
            json!({"slug": "..", "plan": "standard"}),
            "slug",
        ),
        (
            "POST",
            "/api/workspaces",
            json!({"slug": "a/b", "plan": "standard"}),
            "slug",
        ),
        (
            "POST",
            "/api/workspaces",
            json!({"slug": long, "plan": "standard"}),
            "slug",
        ),
        (
            "POST",
            "/api/workspaces",
            json!({"slug": "", "plan": "standard"}),
            "slug",
        ),
        (
            "POST",
            "/api/workspaces",
            json!({"plan": "standard"}),
            "slug",
        ),
        (
            "POST",
            "/api/workspaces",
            json!({"slug": 5, "plan": "standard"}),
            "slug",
        ),
        (
            "POST",
            "/api/workspaces",
            json!({"slug": "fine", "plan": "gold"}),
            "plan",
        ),
        (
            "POST",
            "/api/workspaces/acme/repositories",
            json!({"slug": "Web"}),
            "slug",
        ),
        (
            "PUT",
            "/api/workspaces/acme/repositories/api/permissions/alice",
            json!({"role": "owner"}),
            "role",
        ),
        (
            "POST",
            "/api/workspaces/acme/packages",
            json!({"type": "pypi", "name": "x", "repository": "api"}),
            "type",
        ),
        (
            "POST",
            "/api/workspaces/acme/packages",
            json!({"type": "npm", "name": "Upper", "repository": "api"}),
            "name",
        ),
        (
            "POST",
            "/api/workspaces/acme/packages",
            json!({"type": "maven", "name": "no-colon", "repository": "api"}),
            "name",
        ),
        (
            "POST",
            "/api/workspaces/acme/packages",
            json!({"type": "container", "name": "../x", "repository": "api"}),
            "name",
        ),
        (
            "POST",
            "/api/workspaces/acme/packages",
            json!({"type": "container", "name": "x", "repository": "A"}),
            "repository",
        ),
        (
            "POST",
            "/api/tokens",
            json!({"name": "t", "scopes": ["read:package"], "expires_at": (now - chrono::Duration::hours(1)).to_rfc3339()}),
            "expires_at",
        ),
        (
            "POST",
            "/api/tokens",
            json!({"name": "t", "scopes": ["read:package"], "expires_at": (now + chrono::Duration::days(367)).to_rfc3339()}),
            "expires_at",
        ),
        (
            "POST",
            "/api/tokens",
            json!({"name": "t", "scopes": ["read:package"], "expires_at": "next tuesday"}),
            "expires_at",
        ),
        (
            "POST",
            "/api/tokens",
            json!({"name": "t", "scopes": ["admin:everything"], "expires_at": (now + chrono::Duration::days(1)).to_rfc3339()}),
            "scopes",
        ),
        (
            "POST",
            "/api/tokens",
            json!({"name": "t", "scopes": [], "expires_at": (now + chrono::Duration::days(1)).to_rfc3339()}),
            "scopes",
        ),
        (
            "POST",
            "/api/tokens",
            json!({"name": "", "scopes": ["read:package"], "expires_at": (now + chrono::Duration::days(1)).to_rfc3339()}),
            "name",
        ),
        (
            "POST",
            "/api/users",
            json!({"username": "Carol", "email": "c@example.com"}),
            "username",
        ),
    ];
    for (method, path, body, field) in cases {
        let token = if path == "/api/users" {
            ADMIN_TOKEN
        } else {
            alice.as_str()
        };
        let (status, response) = server
            .call(method, path, Auth::Bearer(token), Some(body.clone()))
            .await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{method} {path} {body}: {response}"
        );
        assert_eq!(
            response["error"]["field"], field,
            "{method} {path} {body}: {response}"
        );
        assert_eq!(response["error"]["code"], "invalid");
    }
    for raw in ["{not json", "[1,2]", "\"slug\""] {
        let response = server
            .request(
                "POST",
                "/api/workspaces",
                Auth::Bearer(&alice),
                Some(raw.to_owned()),
            )
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{raw}");
        let body: Value = response.json().await.expect("json error");
        assert_eq!(body["error"]["field"], "body");
    }
    assert_eq!(
        snapshot(&server, &alice).await,
        before,
        "a refused request changed something"
    );
}

async fn racing_creators_of_one_slug_get_one_201(stores: Stores) {
    let server = Arc::new(TestServer::start(stores).await);
    let alice = server.user_with_token("alice", &["write:package"]).await;
    let statuses = race(20, |_| {
        let server = Arc::clone(&server);
        let alice = alice.clone();
        async move {
            let body = Some(json!({"slug": "race", "plan": "standard"}));
            server
                .call("POST", "/api/workspaces", Auth::Bearer(&alice), body)
                .await
                .0
        }
    })
    .await;
    assert_eq!(
        tally(&statuses),
        [(StatusCode::CREATED, 1), (StatusCode::CONFLICT, 19)].into(),
        "{statuses:?}"
    );
}

async fn racing_creators_of_one_package_get_one_201(stores: Stores) {
    let server = Arc::new(TestServer::start(stores).await);
    let alice = server.user_with_token("alice", &["write:package"]).await;
    server.package(&alice, "acme", "api", "npm", "first").await;
    let statuses = race(20, |_| {
        let server = Arc::clone(&server);
        let alice = alice.clone();
        async move {
            let body = Some(json!({"type": "npm", "name": "contested", "repository": "api"}));
            server
                .call(
                    "POST",
                    "/api/workspaces/acme/packages",
                    Auth::Bearer(&alice),
                    body,
                )
                .await
                .0
        }
    })
    .await;
    assert_eq!(
        tally(&statuses),
        [(StatusCode::CREATED, 1), (StatusCode::CONFLICT, 19)].into(),
        "{statuses:?}"
    );
}

async fn errors_are_json_with_challenges(stores: Stores) {
    let server = TestServer::start(stores).await;
    let response = server
        .request("GET", "/api/workspaces/acme", Auth::None, None)
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .expect("header")
            .starts_with("Basic")
    );
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], "unauthenticated");
    for bad in [
        Auth::Bearer("stw_unknown"),
        Auth::Basic("admin", "wrong"),
        Auth::Basic("nobody", ADMIN_TOKEN),
    ] {
        assert_eq!(
            server.call("GET", "/api/user", bad, None).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let garbled = server
        .client
        .get(format!("{}/api/user", server.url))
        .header("authorization", "Basic !!!notbase64")
        .send()
        .await
        .expect("request");
    assert_eq!(garbled.status(), StatusCode::UNAUTHORIZED);
    let (status, body) = server
        .call("GET", "/api/nothing/here", Auth::Bearer(ADMIN_TOKEN), None)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
}

async fn a_refused_field_is_named_with_the_domains_message(stores: Stores) {
    let server = TestServer::start(stores).await;
    let alice = server.user_with_token("alice", &["write:package"]).await;
    let refusal = |body: Value| {
        let server = &server;
        let alice = &alice;
        async move {
            let (status, response) = server
                .call("POST", "/api/workspaces", Auth::Bearer(alice), Some(body))
                .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{response}");
            let error = &response["error"];
            (
                error["field"].as_str().unwrap_or_default().to_owned(),
                error["message"].as_str().unwrap_or_default().to_owned(),
            )
        }
    };
    assert_eq!(
        refusal(json!({"plan": "standard"})).await,
        ("slug".to_owned(), "is required".to_owned())
    );
    let (field, message) = refusal(json!({"slug": "Acme", "plan": "standard"})).await;
    assert_eq!(field, "slug");
    assert!(message.starts_with("may contain only"), "{message}");
    let (field, message) = refusal(json!({"slug": "acme", "plan": ["standard"]})).await;
    assert_eq!(field, "plan");
    assert!(message.contains("expected a string"), "{message}");
    // The token's fields, read by the same rules.
    let (status, response) = server
        .call(
            "POST",
            "/api/tokens",
            Auth::Bearer(&alice),
            Some(json!({"name": "ci", "scopes": "read:package", "expires_at": "2999-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{response}");
    assert_eq!(response["error"]["field"], "scopes", "{response}");
}
