//! The npm registry over real HTTP, on both storage pairs.

use std::sync::Arc;

use serde_json::{Value, json};
use stowage_storage::{Put, Query, Write};
use stowage_tests::npm::{
    encoded, integrity, publish_document, put_without_version, shasum, tarball,
};
use stowage_tests::race::{race, tally};
use stowage_tests::{Auth, Backend, Stores, TestServer, follow_redirect, on_both_backends};

on_both_backends!(
    publish_then_read_every_way,
    a_version_is_published_once,
    publishing_needs_a_package_and_write_access,
    concurrent_publishes_lose_no_version,
    dist_tags_deprecation_and_unpublishing,
    bad_input_is_refused_and_stores_nothing,
    logins_whoami_ping_audits_and_search,
    an_abbreviated_document_is_one_query,
    a_package_of_two_thousand_versions,
    versions_with_the_same_bytes_share_one_blob,
    document_updates_never_drop_or_reuse_versions,
);

/// A server with npm packages `@acme/ui` and `left-pad` in repository `web` of `acme`.
async fn fixture(stores: Stores) -> (TestServer, String) {
    let server = TestServer::start(stores).await;
    let alice = server
        .user_with_token("alice", &["read:package", "write:package"])
        .await;
    server
        .package(&alice, "acme", "web", "npm", "@acme/ui")
        .await;
    let (status, _) = server
        .call(
            "POST",
            "/api/workspaces/acme/packages",
            Auth::Bearer(&alice),
            Some(json!({"type": "npm", "name": "left-pad", "repository": "web"})),
        )
        .await;
    assert_eq!(status, 201);
    (server, alice)
}

async fn publish(server: &TestServer, token: &str, name: &str, version: &str) -> (u16, Value) {
    let document = publish_document(name, version, &tarball(name, version));
    let (status, body) = server
        .call(
            "PUT",
            &format!("/npm/acme/{}", encoded(name)),
            Auth::Bearer(token),
            Some(document),
        )
        .await;
    (status.as_u16(), body)
}

async fn document(
    server: &TestServer,
    token: &str,
    path: &str,
    accept: &str,
) -> (u16, String, Value) {
    let response = server
        .client
        .get(format!("{}{path}", server.url))
        .bearer_auth(token)
        .header("accept", accept)
        .send()
        .await
        .expect("GET");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().expect("header").to_owned())
        .unwrap_or_default();
    (
        status,
        content_type,
        response.json().await.unwrap_or(Value::Null),
    )
}

async fn publish_then_read_every_way(stores: Stores) {
    let (server, alice) = fixture(stores).await;
    assert_eq!(publish(&server, &alice, "@acme/ui", "1.0.0").await.0, 201);
    assert_eq!(
        publish(&server, &alice, "@acme/ui", "1.1.0-beta.1").await.0,
        201
    );
    // Every spelling of a scoped name clients use.
    for path in [
        "/npm/acme/@acme%2fui",
        "/npm/acme/@acme%2Fui",
        "/npm/acme/%40acme%2fui",
        "/npm/acme/@acme/ui",
    ] {
        let (status, content_type, body) =
            document(&server, &alice, path, "application/json").await;
        assert_eq!(status, 200, "{path}");
        assert!(content_type.starts_with("application/json"), "{path}");
        assert_eq!(body["name"], "@acme/ui");
        assert_eq!(body["_id"], "@acme/ui");
        assert!(body["_rev"].as_str().is_some_and(|rev| !rev.is_empty()));
        assert_eq!(body["dist-tags"]["latest"], "1.1.0-beta.1");
        assert!(body["time"]["1.0.0"].is_string() && body["time"]["created"].is_string());
        assert_eq!(body["description"], "@acme/ui, for tests");
    }
    let (_, _, full) = document(&server, &alice, "/npm/acme/@acme%2fui", "application/json").await;
    let version = &full["versions"]["1.0.0"];
    let bytes = tarball("@acme/ui", "1.0.0");
    assert_eq!(version["dist"]["shasum"], shasum(&bytes).as_str());
    assert_eq!(version["dist"]["integrity"], integrity(&bytes).as_str());
    let tarball_url = version["dist"]["tarball"]
        .as_str()
        .expect("tarball URL")
        .to_owned();
    assert_eq!(
        tarball_url,
        format!("{}/npm/acme/@acme/ui/-/ui-1.0.0.tgz", server.url)
    );

    let (status, content_type, abbreviated) = document(
        &server,
        &alice,
        "/npm/acme/@acme%2fui",
        "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8",
    )
    .await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "application/vnd.npm.install-v1+json")
    );
    assert!(abbreviated["modified"].is_string());
    assert!(abbreviated["versions"]["1.0.0"]["dist"]["tarball"].is_string());
    assert!(
        abbreviated["versions"]["1.0.0"]
            .get("description")
            .is_none(),
        "the abbreviated document is lean"
    );

    // Tarballs: a redirect, from the URL in the document and from the one yarn 4 builds.
    for url in [
        tarball_url.clone(),
        format!("{}/npm/acme/@acme%2fui/-/ui-1.0.0.tgz", server.url),
    ] {
        let response = server
            .client
            .get(&url)
            .bearer_auth(&alice)
            .send()
            .await
            .expect("tarball");
        assert_eq!(follow_redirect(response).await, bytes);
    }
    let response = server
        .client
        .get(format!("{}/npm/acme/@acme/ui/-/ui-9.9.9.tgz", server.url))
        .bearer_auth(&alice)
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 404);
    // One version, by number or by tag.
    for reference in ["1.0.0", "latest"] {
        let (status, _, body) = document(
            &server,
            &alice,
            &format!("/npm/acme/@acme%2fui/{reference}"),
            "application/json",
        )
        .await;
        assert_eq!(status, 200);
        assert!(body["version"].is_string() && body["dist"]["tarball"].is_string());
    }
    // The management API lists npm versions like any others.
    let (_, package) = server
        .call(
            "GET",
            "/api/workspaces/acme/packages/npm/@acme%2Fui",
            Auth::Bearer(&alice),
            None,
        )
        .await;
    assert_eq!(package["versions"].as_array().map(Vec::len), Some(2));
    // Unpublished names are simply not found.
    let (status, _, body) =
        document(&server, &alice, "/npm/acme/left-pad", "application/json").await;
    assert_eq!(status, 404);
    assert!(body["error"].is_string());
}

async fn a_version_is_published_once(stores: Stores) {
    let (server, alice) = fixture(stores).await;
    assert_eq!(publish(&server, &alice, "left-pad", "1.0.0").await.0, 201);
    let (status, body) = publish(&server, &alice, "left-pad", "1.0.0").await;
    assert_eq!(status, 409, "npm reports 409 as EPUBLISHCONFLICT: {body}");
    assert!(
        body["error"]
            .as_str()
            .expect("error")
            .contains("previously published")
    );
}

async fn publishing_needs_a_package_and_write_access(stores: Stores) {
    let (server, alice) = fixture(stores).await;
    let (status, body) = publish(&server, &alice, "not-created", "1.0.0").await;
    assert_eq!(status, 403);
    assert!(
        body["error"]
            .as_str()
            .expect("error")
            .contains("repository admin must create"),
        "{body}"
    );
    let reader = server
        .user_with_token("rita", &["read:package", "write:package"])
        .await;
    server
        .call(
            "PUT",
            "/api/workspaces/acme/repositories/web/permissions/rita",
            Auth::Bearer(&alice),
            Some(json!({"role": "read"})),
        )
        .await;
    let (status, body) = publish(&server, &reader, "left-pad", "1.0.0").await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = server
        .call(
            "PUT",
            "/npm/acme/left-pad",
            Auth::None,
            Some(publish_document(
                "left-pad",
                "1.0.0",
                &tarball("left-pad", "1.0.0"),
            )),
        )
        .await;
    assert_eq!(status, 401);
    // A pipeline publishes to its own repository's packages only.
    server
        .package(&alice, "acme", "other", "npm", "other-lib")
        .await;
    let (_, pipeline) = server
        .call(
            "POST",
            "/api/workspaces/acme/repositories/web/pipeline-tokens",
            Auth::Bearer(&alice),
            Some(json!({})),
        )
        .await;
    let (user, token) = (
        pipeline["username"].as_str().expect("user"),
        pipeline["token"].as_str().expect("token"),
    );
    let document = publish_document("left-pad", "2.0.0", &tarball("left-pad", "2.0.0"));
    let (status, _) = server
        .call(
            "PUT",
            "/npm/acme/left-pad",
            Auth::Basic(user, token),
            Some(document),
        )
        .await;
    assert_eq!(status, 201, "Basic, as npm's _auth sends it");
    let document = publish_document("other-lib", "1.0.0", &tarball("other-lib", "1.0.0"));
    let (status, _) = server
        .call(
            "PUT",
            "/npm/acme/other-lib",
            Auth::Basic(user, token),
            Some(document),
        )
        .await;
    assert_eq!(status, 403);
}

async fn concurrent_publishes_lose_no_version(stores: Stores) {
    let (server, alice) = fixture(stores).await;
    let server = Arc::new(server);
    let statuses = race(20, |i| {
        let server = Arc::clone(&server);
        let alice = alice.clone();
        async move {
            publish(&server, &alice, "left-pad", &format!("1.{i}.0"))
                .await
                .0
        }
    })
    .await;
    assert_eq!(tally(&statuses), [(201, 20)].into(), "{statuses:?}");
    let (_, _, body) = document(&server, &alice, "/npm/acme/left-pad", "application/json").await;
    assert_eq!(
        body["versions"].as_object().map(|v| v.len()),
        Some(20),
        "every version is there"
    );
    // And racing the same version: exactly one wins.
    let statuses = race(10, |_| {
        let server = Arc::clone(&server);
        let alice = alice.clone();
        async move { publish(&server, &alice, "left-pad", "9.0.0").await.0 }
    })
    .await;
    assert_eq!(
        tally(&statuses),
        [(201, 1), (409, 9)].into(),
        "{statuses:?}"
    );
}

async fn dist_tags_deprecation_and_unpublishing(stores: Stores) {
    let (server, alice) = fixture(stores).await;
    for version in ["1.0.0", "1.1.0", "2.0.0"] {
        assert_eq!(publish(&server, &alice, "left-pad", version).await.0, 201);
    }
    let tags = |server: &TestServer, alice: &str| {
        let request = server
            .client
            .get(format!(
                "{}/npm/acme/-/package/left-pad/dist-tags",
                server.url
            ))
            .bearer_auth(alice);
        async move {
            request
                .send()
                .await
                .expect("tags")
                .json::<Value>()
                .await
                .expect("json")
        }
    };
    assert_eq!(tags(&server, &alice).await, json!({"latest": "2.0.0"}));
    let response = server
        .request(
            "PUT",
            "/npm/acme/-/package/left-pad/dist-tags/stable",
            Auth::Bearer(&alice),
            Some("\"1.1.0\"".into()),
        )
        .await;
    assert_eq!(response.status(), 201);
    assert_eq!(
        tags(&server, &alice).await,
        json!({"latest": "2.0.0", "stable": "1.1.0"})
    );
    for (tag, body, status) in [
        ("stable", "\"9.9.9\"", 404),
        ("1.0.0", "\"1.0.0\"", 400),
        ("x", "not json", 400),
    ] {
        let response = server
            .request(
                "PUT",
                &format!("/npm/acme/-/package/left-pad/dist-tags/{tag}"),
                Auth::Bearer(&alice),
                Some(body.into()),
            )
            .await;
        assert_eq!(response.status(), status, "{tag} {body}");
    }
    assert_eq!(
        server
            .status(
                "DELETE",
                "/npm/acme/-/package/left-pad/dist-tags/latest",
                &alice
            )
            .await,
        400
    );
    assert_eq!(
        server
            .status(
                "DELETE",
                "/npm/acme/-/package/left-pad/dist-tags/stable",
                &alice
            )
            .await,
        200
    );
    assert_eq!(tags(&server, &alice).await, json!({"latest": "2.0.0"}));

    // Deprecate, as npm does it: GET ?write=true, then PUT the document changed.
    let (_, _, mut full) = document(
        &server,
        &alice,
        "/npm/acme/left-pad?write=true",
        "application/json",
    )
    .await;
    full["versions"]["1.0.0"]["deprecated"] = json!("use 2.x");
    assert_eq!(
        server
            .call(
                "PUT",
                "/npm/acme/left-pad",
                Auth::Bearer(&alice),
                Some(full.clone())
            )
            .await
            .0,
        200
    );
    let (_, _, body) = document(
        &server,
        &alice,
        "/npm/acme/left-pad",
        "application/vnd.npm.install-v1+json",
    )
    .await;
    assert_eq!(body["versions"]["1.0.0"]["deprecated"], "use 2.x");
    // A document read before that change is stale now: its update is refused, whole.
    full["versions"]["1.0.0"]["deprecated"] = json!("");
    let (status, body) = server
        .call(
            "PUT",
            "/npm/acme/left-pad",
            Auth::Bearer(&alice),
            Some(full.clone()),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    let (_, _, mut full) = document(
        &server,
        &alice,
        "/npm/acme/left-pad?write=true",
        "application/json",
    )
    .await;
    full["versions"]["1.0.0"]["deprecated"] = json!("");
    assert_eq!(
        server
            .call(
                "PUT",
                "/npm/acme/left-pad",
                Auth::Bearer(&alice),
                Some(full.clone())
            )
            .await
            .0,
        200
    );
    let (_, _, body) = document(&server, &alice, "/npm/acme/left-pad", "application/json").await;
    assert!(
        body["versions"]["1.0.0"].get("deprecated").is_none(),
        "un-deprecated"
    );

    // Unpublish one version: PUT the document without it, then DELETE its tarball.
    let rev = put_without_version(
        &server,
        &alice,
        "left-pad",
        "2.0.0",
        Some(json!({"latest": "1.1.0"})),
    )
    .await;
    assert_eq!(
        server
            .call(
                "DELETE",
                &format!("/npm/acme/left-pad/-/left-pad-2.0.0.tgz/-rev/{rev}"),
                Auth::Bearer(&alice),
                None
            )
            .await
            .0,
        200
    );
    let (_, _, body) = document(&server, &alice, "/npm/acme/left-pad", "application/json").await;
    let versions: Vec<_> = body["versions"]
        .as_object()
        .expect("versions")
        .keys()
        .cloned()
        .collect();
    assert_eq!(versions, ["1.0.0", "1.1.0"]);
    assert_eq!(body["dist-tags"], json!({"latest": "1.1.0"}));
    let stale = rev;
    let rev = body["_rev"].as_str().expect("rev").to_owned();

    // Unpublishing the whole package takes an admin, and the revision it was read at.
    let writer = server.user_with_token("wes", &["write:package"]).await;
    server
        .call(
            "PUT",
            "/api/workspaces/acme/repositories/web/permissions/wes",
            Auth::Bearer(&alice),
            Some(json!({"role": "write"})),
        )
        .await;
    assert_eq!(
        server
            .call(
                "DELETE",
                &format!("/npm/acme/left-pad/-rev/{rev}"),
                Auth::Bearer(&writer),
                None
            )
            .await
            .0,
        403
    );
    assert_eq!(
        server
            .call(
                "DELETE",
                &format!("/npm/acme/left-pad/-rev/{stale}"),
                Auth::Bearer(&alice),
                None
            )
            .await
            .0,
        409
    );
    assert_eq!(
        server
            .call(
                "DELETE",
                &format!("/npm/acme/left-pad/-rev/{rev}"),
                Auth::Bearer(&alice),
                None
            )
            .await
            .0,
        200
    );
    assert_eq!(
        document(&server, &alice, "/npm/acme/left-pad", "application/json")
            .await
            .0,
        404
    );
}

async fn bad_input_is_refused_and_stores_nothing(stores: Stores) {
    let (server, alice) = fixture(stores).await;
    let good = |name: &str, version: &str| publish_document(name, version, &tarball(name, version));
    let mut cases: Vec<(&str, String, Value)> = Vec::new();
    let mut doc = good("left-pad", "1.0.0");
    doc["versions"]["1.0.0"]["dist"]["shasum"] = json!(shasum(b"other"));
    cases.push(("shasum mismatch", "left-pad".into(), doc));
    let mut doc = good("left-pad", "1.0.0");
    doc["versions"]["1.0.0"]["dist"]["integrity"] = json!(integrity(b"other"));
    cases.push(("integrity mismatch", "left-pad".into(), doc));
    let mut doc = good("left-pad", "1.0.0");
    doc["_attachments"]["left-pad-1.0.0.tgz"]["length"] = json!(3);
    cases.push(("length mismatch", "left-pad".into(), doc));
    let mut doc = good("left-pad", "1.0.0");
    let attachment = doc["_attachments"]["left-pad-1.0.0.tgz"].clone();
    doc["_attachments"] = json!({ "left-pad-2.0.0.tgz": attachment });
    cases.push(("attachment of another version", "left-pad".into(), doc));
    let mut doc = good("left-pad", "1.0.0");
    doc["versions"]["1.0.0"]
        .as_object_mut()
        .expect("version")
        .remove("dist");
    cases.push(("missing dist", "left-pad".into(), doc));
    cases.push(("not semver", "left-pad".into(), good("left-pad", "1.0")));
    cases.push((
        "another package's document",
        "left-pad".into(),
        good("@acme/ui", "1.0.0"),
    ));
    let mut doc = good("left-pad", "1.0.0");
    doc["_attachments"]["left-pad-1.0.0.tgz"]["data"] = json!("!!! not base64");
    cases.push(("data not base64", "left-pad".into(), doc));
    let mut doc = good("left-pad", "1.0.0");
    doc["versions"]["1.0.1"] = doc["versions"]["1.0.0"].clone();
    cases.push(("two versions", "left-pad".into(), doc));
    let mut doc = good("left-pad", "1.0.0");
    doc["dist-tags"] = json!({ "2.0.0": "1.0.0" });
    cases.push(("a version as a tag", "left-pad".into(), doc));
    cases.push((
        "uppercase name",
        "Left-Pad".into(),
        good("Left-Pad", "1.0.0"),
    ));
    cases.push(("leading dot", ".hidden".into(), good(".hidden", "1.0.0")));
    cases.push((
        "leading underscore",
        "_under".into(),
        good("_under", "1.0.0"),
    ));
    let long = "a".repeat(215);
    cases.push(("too long", long.clone(), good(&long, "1.0.0")));
    for (what, name, document) in cases {
        let (status, body) = server
            .call(
                "PUT",
                &format!("/npm/acme/{}", encoded(&name)),
                Auth::Bearer(&alice),
                Some(document),
            )
            .await;
        assert_eq!(status, 400, "{what}: {body}");
        assert!(body["error"].is_string(), "{what}: npm's error shape");
    }
    for raw in ["{not json", "[1]", ""] {
        let response = server
            .request(
                "PUT",
                "/npm/acme/left-pad",
                Auth::Bearer(&alice),
                Some(raw.into()),
            )
            .await;
        assert_eq!(response.status(), 400, "{raw:?}");
    }
    // Traversal, sent as written.
    for path in [
        "/npm/acme/../acme/left-pad",
        "/npm/acme/left-pad/-/../../x.tgz",
        "/npm/acme/%2e%2e/left-pad",
    ] {
        let (status, body) = server
            .raw(
                "GET",
                path,
                &[("Authorization", &format!("Bearer {alice}"))],
                b"",
            )
            .await;
        assert!(status == 400 || status == 404, "{path}: {status} {body}");
        assert!(body.contains("error"), "{path}: {body}");
    }
    assert_eq!(
        document(&server, &alice, "/npm/acme/left-pad", "application/json")
            .await
            .0,
        404,
        "nothing was stored"
    );
    let (_, package) = server
        .call(
            "GET",
            "/api/workspaces/acme/packages/npm/left-pad",
            Auth::Bearer(&alice),
            None,
        )
        .await;
    assert_eq!(package["versions"], json!([]));
}

async fn logins_whoami_ping_audits_and_search(stores: Stores) {
    let (server, alice) = fixture(stores).await;
    publish(&server, &alice, "left-pad", "1.0.0").await;
    publish(&server, &alice, "@acme/ui", "3.0.0").await;
    // Legacy login with a token as the password gives the token back.
    let (status, body) = server
        .call(
            "PUT",
            "/npm/acme/-/user/org.couchdb.user:alice",
            Auth::None,
            Some(json!({"name": "alice", "password": alice})),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(body["token"], alice.as_str());
    let (status, body) = server
        .call(
            "PUT",
            "/npm/acme/-/user/org.couchdb.user:alice",
            Auth::None,
            Some(json!({"name": "alice", "password": "hunter2"})),
        )
        .await;
    assert_eq!(status, 401);
    assert!(
        body["error"]
            .as_str()
            .expect("error")
            .contains("API token as the password")
    );
    let (status, body) = server
        .call("POST", "/npm/acme/-/v1/login", Auth::None, Some(json!({})))
        .await;
    assert_eq!(status, 404);
    assert!(
        body["error"]
            .as_str()
            .expect("error")
            .contains("_authToken")
    );

    assert_eq!(
        server
            .call("GET", "/npm/acme/-/whoami", Auth::Bearer(&alice), None)
            .await
            .1,
        json!({"username": "alice"})
    );
    assert_eq!(
        server
            .call("GET", "/npm/acme/-/whoami", Auth::None, None)
            .await
            .0,
        401
    );
    assert_eq!(
        server
            .call("GET", "/npm/acme/-/ping", Auth::None, None)
            .await
            .0,
        200
    );
    let (status, body) = server
        .call(
            "POST",
            "/npm/acme/-/npm/v1/security/advisories/bulk",
            Auth::Bearer(&alice),
            Some(json!({"left-pad": ["1.0.0"]})),
        )
        .await;
    assert_eq!((status.as_u16(), body), (200, json!({})));
    let (status, body) = server
        .call(
            "POST",
            "/npm/acme/-/npm/v1/security/audits/quick",
            Auth::Bearer(&alice),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["metadata"]["vulnerabilities"]["critical"], 0);

    let (status, body) = server
        .call(
            "GET",
            "/npm/acme/-/v1/search?text=pad&size=20&from=0",
            Auth::Bearer(&alice),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["total"], 1);
    assert_eq!(body["objects"][0]["package"]["name"], "left-pad");
    assert_eq!(body["objects"][0]["package"]["version"], "1.0.0");
    let (_, body) = server
        .call(
            "GET",
            "/npm/acme/-/v1/search?text=&size=1&from=1",
            Auth::Bearer(&alice),
            None,
        )
        .await;
    assert_eq!(
        (
            body["total"].as_u64(),
            body["objects"].as_array().map(Vec::len)
        ),
        (Some(2), Some(1))
    );
    // Someone without access finds nothing.
    let mallory = server.user_with_token("mallory", &["read:package"]).await;
    assert_eq!(
        server
            .status("GET", "/npm/acme/-/v1/search?text=pad", &mallory)
            .await,
        404
    );
}

async fn an_abbreviated_document_is_one_query(stores: Stores) {
    let (server, alice) = fixture(stores).await;
    let server = Arc::new(server);
    publish_many(&server, &alice, "left-pad", 100).await;
    server.metadata_calls.reset();
    let (status, _, body) = document(
        &server,
        &alice,
        "/npm/acme/left-pad",
        "application/vnd.npm.install-v1+json",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["versions"].as_object().map(|v| v.len()), Some(100));
    let (reads, queries, writes) = server.metadata_calls.snapshot();
    assert_eq!(
        (queries, writes),
        (1, 0),
        "one query, paged, and nothing written"
    );
    assert!(
        reads <= 2,
        "the access check: at most two batch reads ({reads})"
    );
}

/// Publishes versions 1.0.0 … 1.0.<count-1>, several at a time.
async fn publish_many(server: &Arc<TestServer>, token: &str, name: &str, count: usize) {
    let versions: Vec<usize> = (0..count).collect();
    for chunk in versions.chunks(16) {
        let tasks: Vec<_> = chunk
            .iter()
            .map(|i| {
                let server = Arc::clone(server);
                let (token, name) = (token.to_owned(), name.to_owned());
                let version = format!("1.0.{i}");
                tokio::spawn(async move { publish(&server, &token, &name, &version).await.0 })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.expect("task"), 201);
        }
    }
}

async fn a_package_of_two_thousand_versions(stores: Stores) {
    let backend = stores.backend;
    let (server, alice) = fixture(stores).await;
    let server = Arc::new(server);
    if backend == Backend::Embedded {
        publish_many(&server, &alice, "left-pad", 2000).await;
    } else {
        // moto copies the whole table on every transaction, which makes 2,000 publishes take
        // ten minutes there (real DynamoDB has no such cost). So they are published to an
        // embedded server, and the package's items copied over through the port: DynamoDB's
        // paged reads then serve records that real publishes wrote.
        let (source, token) = fixture(Stores::embedded(
            url::Url::parse("http://127.0.0.1:1/").expect("url"),
        ))
        .await;
        let source = Arc::new(source);
        publish_many(&source, &token, "left-pad", 2000).await;
        let mut query = Query::prefix("PKG#acme#npm#left-pad", "", 1000);
        loop {
            let page = source
                .stores
                .metadata
                .query(&query)
                .await
                .expect("read the source");
            for item in &page.items {
                let mut put = Put::new(item.key.clone(), item.data.clone());
                put.index = item.index.clone();
                server
                    .stores
                    .metadata
                    .write(Write::Put(put))
                    .await
                    .expect("copy");
            }
            match page.next {
                Some(cursor) => query = query.after(Some(cursor)),
                None => break,
            }
        }
    }
    let (status, _, body) =
        document(&server, &alice, "/npm/acme/left-pad", "application/json").await;
    assert_eq!(status, 200);
    assert_eq!(body["versions"].as_object().map(|v| v.len()), Some(2000));
    let (status, _, body) = document(
        &server,
        &alice,
        "/npm/acme/left-pad",
        "application/vnd.npm.install-v1+json",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["versions"].as_object().map(|v| v.len()), Some(2000));
}

/// Two versions whose tarballs are the same bytes: one object, both downloadable, and
/// unpublishing one leaves the other whole.
async fn versions_with_the_same_bytes_share_one_blob(stores: Stores) {
    let (server, alice) = fixture(stores).await;
    let bytes = tarball("left-pad", "1.0.0");
    let download = |version: &str| {
        let request = server
            .client
            .get(format!(
                "{}/npm/acme/left-pad/-/left-pad-{version}.tgz",
                server.url
            ))
            .bearer_auth(&alice);
        async move { follow_redirect(request.send().await.expect("GET")).await }
    };
    let objects = server.stores.object_count().await;
    for version in ["1.0.0", "1.0.1"] {
        let (status, _) = server
            .call(
                "PUT",
                "/npm/acme/left-pad",
                Auth::Bearer(&alice),
                Some(publish_document("left-pad", version, &bytes)),
            )
            .await;
        assert_eq!(status, 201, "{version}");
    }
    assert_eq!(server.stores.object_count().await, objects + 1);
    assert_eq!(download("1.0.0").await, bytes);
    assert_eq!(download("1.0.1").await, bytes);

    let rev = put_without_version(&server, &alice, "left-pad", "1.0.0", None).await;
    let (status, _) = server
        .call(
            "DELETE",
            &format!("/npm/acme/left-pad/-/left-pad-1.0.0.tgz/-rev/{rev}"),
            Auth::Bearer(&alice),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(download("1.0.1").await, bytes);
}

/// The package's versions, as its full document lists them.
async fn versions_of(server: &TestServer, token: &str, name: &str) -> Vec<String> {
    let path = format!("/npm/acme/{}", encoded(name));
    let (_, _, body) = document(server, token, &path, "application/json").await;
    body["versions"]
        .as_object()
        .map(|v| v.keys().cloned().collect())
        .unwrap_or_default()
}

/// A document update changes only what npm changes through it, at the revision it was read
/// at: a body that adds a version without its tarball, or drops every version without the
/// admin role, or comes from a stale read, changes nothing. An unpublished version's number
/// is never published again.
async fn document_updates_never_drop_or_reuse_versions(stores: Stores) {
    let (server, alice) = fixture(stores).await;
    for version in ["1.0.0", "2.0.0"] {
        assert_eq!(publish(&server, &alice, "@acme/ui", version).await.0, 201);
    }
    let path = "/npm/acme/@acme%2fui";
    let both = vec!["1.0.0".to_owned(), "2.0.0".to_owned()];
    // A version without its tarball.
    let (status, body) = server
        .call(
            "PUT",
            path,
            Auth::Bearer(&alice),
            Some(json!({
                "name": "@acme/ui",
                "versions": { "3.0.0": { "name": "@acme/ui", "version": "3.0.0" } },
                "_attachments": {},
            })),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(versions_of(&server, &alice, "@acme/ui").await, both);
    // A pipeline (write role) emptying the package, with a made-up revision, then the real one.
    let (_, pipeline) = server
        .call(
            "POST",
            "/api/workspaces/acme/repositories/web/pipeline-tokens",
            Auth::Bearer(&alice),
            Some(json!({})),
        )
        .await;
    let pipeline = pipeline["token"].as_str().expect("token").to_owned();
    let (status, _) = server
        .call(
            "PUT",
            &format!("{path}/-rev/anything"),
            Auth::Bearer(&pipeline),
            Some(json!({ "versions": {} })),
        )
        .await;
    assert_eq!(status, 409);
    let (_, _, current) = document(
        &server,
        &alice,
        &format!("{path}?write=true"),
        "application/json",
    )
    .await;
    let rev = current["_rev"].as_str().expect("rev").to_owned();
    let (status, body) = server
        .call(
            "PUT",
            &format!("{path}/-rev/{rev}"),
            Auth::Bearer(&pipeline),
            Some(json!({ "_rev": rev, "versions": {} })),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|m| m.contains("admin")),
        "{body}"
    );
    // No revision at all.
    let mut unrevised = current.clone();
    unrevised.as_object_mut().expect("object").remove("_rev");
    let (status, _) = server
        .call("PUT", path, Auth::Bearer(&alice), Some(unrevised))
        .await;
    assert_eq!(status, 409);
    // What an update may not change is not taken from it.
    let mut tampered = current.clone();
    tampered["versions"]["1.0.0"]["dist"]["integrity"] = json!("sha512-forged");
    tampered["versions"]["1.0.0"]["dependencies"] = json!({ "evil": "*" });
    let (status, _) = server
        .call("PUT", path, Auth::Bearer(&alice), Some(tampered))
        .await;
    assert_eq!(status, 200);
    let (_, _, after) = document(&server, &alice, path, "application/json").await;
    assert_eq!(
        after["versions"]["1.0.0"]["dist"]["integrity"],
        current["versions"]["1.0.0"]["dist"]["integrity"]
    );
    assert!(after["versions"]["1.0.0"].get("dependencies").is_none());
    assert_eq!(versions_of(&server, &alice, "@acme/ui").await, both);

    // Unpublished, 2.0.0 is retired: neither other bytes nor the same are taken under it.
    put_without_version(
        &server,
        &alice,
        "@acme/ui",
        "2.0.0",
        Some(json!({"latest": "1.0.0"})),
    )
    .await;
    assert_eq!(versions_of(&server, &alice, "@acme/ui").await, ["1.0.0"]);
    let other = tarball("@acme/ui", "2.0.0-other");
    let mut republish = publish_document("@acme/ui", "2.0.0", &other);
    republish["versions"]["2.0.0"]["description"] = json!("other bytes");
    for document in [
        republish,
        publish_document("@acme/ui", "2.0.0", &tarball("@acme/ui", "2.0.0")),
    ] {
        let (status, body) = server
            .call("PUT", path, Auth::Bearer(&alice), Some(document))
            .await;
        assert_eq!(status, 409, "{body}");
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|m| m.contains("published before")),
            "{body}"
        );
    }
    // A tag cannot land on it either.
    let response = server
        .request(
            "PUT",
            "/npm/acme/-/package/@acme%2fui/dist-tags/next",
            Auth::Bearer(&alice),
            Some("\"2.0.0\"".into()),
        )
        .await;
    assert_eq!(response.status(), 404);
    assert_eq!(versions_of(&server, &alice, "@acme/ui").await, ["1.0.0"]);
    assert_eq!(publish(&server, &alice, "@acme/ui", "2.0.1").await.0, 201);
}
