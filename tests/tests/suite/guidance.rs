//! Errors that say what to do, on both storage pairs: a read-only token is told its scope, an
//! expired token when it expired, a deleted package, repository or workspace that it was
//! deleted, until when it is kept and how to restore it (to those who could read it, and to
//! nobody else); the API lists the caller's workspaces and what they could restore, and
//! answers every 404 and 405 in JSON; Maven's reason phrase carries the error; npm's document
//! names its maintainer with an e-mail and keeps its creation time.

use reqwest::StatusCode;
use serde_json::{Value, json};
use stowage_tests::npm::{encoded, publish_document, tarball};
use stowage_tests::{Auth, Stores, TestServer, on_both_backends};
use tokio::io::AsyncReadExt;

on_both_backends!(
    a_read_only_token_is_told_its_scope,
    an_expired_token_is_told_when,
    deleted_names_say_how_to_restore_them,
    the_api_lists_workspaces_and_answers_in_json,
    maven_puts_the_error_in_the_reason_phrase,
    the_npm_document_names_its_maintainer_and_keeps_its_creation,
    the_catalog_lists_what_the_caller_can_read,
    maven_folders_list_what_the_caller_can_read,
    the_audit_trail_says_who_changed_what,
    a_token_expires_at_a_date_or_after_days
);

/// alice, admin of acme/api holding a container, an npm and a Maven package; her token.
async fn acme(server: &TestServer) -> String {
    let alice = server
        .user_with_token("alice", &["read:package", "write:package"])
        .await;
    server
        .package(&alice, "acme", "api", "container", "api/server")
        .await;
    server
        .package(&alice, "acme", "api", "npm", "@acme/ui")
        .await;
    server
        .package(&alice, "acme", "api", "maven", "com.acme:lib")
        .await;
    alice
}

/// A request over a plain socket: the status line (with its reason phrase), and the body.
async fn status_line(
    server: &TestServer,
    method: &str,
    path: &str,
    user: &str,
    token: &str,
    body: &[u8],
) -> (String, String) {
    let authorization = stowage_tests::basic_authorization(user, token);
    let mut stream = server
        .send_partly(
            method,
            path,
            &[("Authorization", &authorization)],
            body.len(),
            body,
        )
        .await;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
    let response = String::from_utf8_lossy(&response).into_owned();
    let (line, rest) = response.split_once("\r\n").expect("a status line");
    let body = rest.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    (line.to_owned(), body.to_owned())
}

/// alice gives bob the read role on acme/api.
async fn grant_bob_read(server: &TestServer, alice: &str) {
    let (status, body) = server
        .call(
            "PUT",
            "/api/workspaces/acme/repositories/api/permissions/bob",
            Auth::Bearer(alice),
            Some(json!({"role": "read"})),
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
}

async fn a_read_only_token_is_told_its_scope(stores: Stores) {
    let server = TestServer::start(stores).await;
    let alice = acme(&server).await;
    let read_only = server.token_for("alice", &["read:package"]).await;
    let basic = Auth::Basic("alice", &read_only);
    let scope = "this token is read-only: changes to repository acme/api need a token with the write:package scope";

    let (status, body) = server
        .call("POST", "/v2/acme/api/server/blobs/uploads/", basic, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["errors"][0]["code"], "DENIED");
    assert_eq!(body["errors"][0]["message"], scope, "{body}");

    let tgz = tarball("@acme/ui", "1.0.0");
    let (status, body) = server
        .call(
            "PUT",
            &format!("/npm/acme/{}", encoded("@acme/ui")),
            basic,
            Some(publish_document("@acme/ui", "1.0.0", &tgz)),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], scope, "{body}");

    let (line, body) = status_line(
        &server,
        "PUT",
        "/maven/acme/com/acme/lib/1.0/lib-1.0.jar",
        "alice",
        &read_only,
        b"jar",
    )
    .await;
    assert_eq!(line, format!("HTTP/1.1 403 {scope}"));
    assert_eq!(body.trim(), scope);

    let (status, body) = server
        .call(
            "POST",
            "/api/workspaces/acme/repositories",
            basic,
            Some(json!({"slug": "more"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("read-only")),
        "{body}"
    );

    // A reader with a write token lacks the role, and is told that instead.
    let bob = server
        .user_with_token("bob", &["read:package", "write:package"])
        .await;
    grant_bob_read(&server, &alice).await;
    let (status, body) = server
        .call(
            "POST",
            "/v2/acme/api/server/blobs/uploads/",
            Auth::Basic("bob", &bob),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["errors"][0]["message"],
        "you need the write role on repository acme/api"
    );
}

async fn an_expired_token_is_told_when(stores: Stores) {
    let server = TestServer::start(stores).await;
    let alice = acme(&server).await;
    let (_, tokens) = server
        .call("GET", "/api/tokens", Auth::Bearer(&alice), None)
        .await;
    let expires_at: chrono::DateTime<chrono::Utc> = tokens["values"][0]["expires_at"]
        .as_str()
        .expect("expiry")
        .parse()
        .expect("RFC 3339");
    server.clock.set(expires_at + chrono::Duration::seconds(1));
    let expired = format!(
        "this token expired at {}",
        expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let says_expired = |message: &Value| {
        message
            .as_str()
            .is_some_and(|m| m.starts_with(&expired) && m.contains("create a new one"))
    };

    let (status, body) = server
        .call("GET", "/api/user", Auth::Bearer(&alice), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "token_expired");
    assert!(says_expired(&body["error"]["message"]), "{body}");

    let basic = Auth::Basic("alice", &alice);
    for path in ["/v2/", "/v2/token?scope=repository:acme/api/server:pull"] {
        let (status, body) = server.call("GET", path, basic, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED");
        assert!(
            says_expired(&body["errors"][0]["message"]),
            "{path}: {body}"
        );
    }

    let (status, body) = server
        .call("GET", "/npm/acme/-/whoami", Auth::Bearer(&alice), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(says_expired(&body["error"]), "{body}");
    // skopeo shows it, where it said "invalid username/password" alone.
    if stowage_tests::clients::available(&["skopeo"]) {
        let host = server.url.trim_start_matches("http://");
        let inspected = stowage_tests::clients::run(
            "skopeo",
            &[
                "inspect",
                "--tls-verify=false",
                "--creds",
                &format!("alice:{alice}"),
                &format!("docker://{host}/acme/api/server:1"),
            ],
            &[],
        )
        .await;
        assert!(!inspected.success);
        assert!(inspected.stderr.contains(&expired), "{}", inspected.stderr);
    }

    let (line, _) = status_line(
        &server,
        "GET",
        "/maven/acme/com/acme/lib/maven-metadata.xml",
        "alice",
        &alice,
        b"",
    )
    .await;
    assert!(
        line.starts_with(&format!("HTTP/1.1 401 {expired}")),
        "{line}"
    );

    // A token that never existed learns nothing, nor does a real one under another name.
    let unknown = "stw_neverIssuedNeverIssuedNeverIssued000000";
    for auth in [Auth::Bearer(unknown), Auth::Basic("bob", &alice)] {
        let (status, body) = server.call("GET", "/api/user", auth, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"]["code"], "unauthenticated", "{body}");
        assert!(!body.to_string().contains("expire"), "{body}");
    }
}

async fn deleted_names_say_how_to_restore_them(stores: Stores) {
    let server = TestServer::start(stores).await;
    let alice = acme(&server).await;
    let bob = server.user_with_token("bob", &["read:package"]).await;
    let carol = server.user_with_token("carol", &["read:package"]).await;
    grant_bob_read(&server, &alice).await;
    let package = "/api/workspaces/acme/packages/npm/%40acme%2Fui";
    let (status, deletion) = server
        .call("DELETE", package, Auth::Bearer(&alice), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{deletion}");
    let purge_after = deletion["purge_after"].as_str().expect("purge_after");
    let deleted = "npm package @acme/ui in workspace acme was deleted at ";
    let restore = format!("POST {package}/restore");
    let explains = |message: &str| {
        message.starts_with(deleted)
            && message.contains("by alice")
            && message.contains(&purge_after.replace(".000", "")[..19])
            && message.ends_with(&format!(
                "an admin of its repository can restore it: {restore}"
            ))
    };

    // A reader who could read it is told; an outsider is told nothing.
    let document = format!("/npm/acme/{}", encoded("@acme/ui"));
    let (status, body) = server
        .call("GET", &document, Auth::Bearer(&bob), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        explains(body["error"].as_str().unwrap_or_default()),
        "{body}"
    );
    let (status, body) = server
        .call("GET", &document, Auth::Bearer(&carol), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "not found");

    // Publishing to it, and creating it again, say the same.
    let tgz = tarball("@acme/ui", "1.0.0");
    let (status, body) = server
        .call(
            "PUT",
            &document,
            Auth::Bearer(&alice),
            Some(publish_document("@acme/ui", "1.0.0", &tgz)),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        explains(body["error"].as_str().unwrap_or_default()),
        "{body}"
    );
    let (status, body) = server
        .call(
            "POST",
            "/api/workspaces/acme/packages",
            Auth::Bearer(&alice),
            Some(json!({"type": "npm", "name": "@acme/ui", "repository": "api"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        explains(body["error"]["message"].as_str().unwrap_or_default()),
        "{body}"
    );
    let (status, body) = server.call("GET", package, Auth::Bearer(&bob), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "deleted");

    // The workspace's admin sees it among what may be restored; a reader sees nothing there.
    let (status, listed) = server
        .call(
            "GET",
            "/api/workspaces/acme/deleted",
            Auth::Bearer(&alice),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["repositories"], json!([]));
    assert_eq!(listed["packages"][0]["name"], "@acme/ui");
    assert_eq!(listed["packages"][0]["deleted_by"], "alice");
    assert_eq!(listed["packages"][0]["purge_after"], purge_after);
    let (_, listed) = server
        .call(
            "GET",
            "/api/workspaces/acme/deleted",
            Auth::Bearer(&bob),
            None,
        )
        .await;
    assert_eq!(listed, json!({"repositories": [], "packages": []}));
    let (status, _) = server
        .call(
            "GET",
            "/api/workspaces/acme/deleted",
            Auth::Bearer(&carol),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The path the message gives restores it.
    let (status, body) = server
        .call(
            "POST",
            &format!("{package}/restore"),
            Auth::Bearer(&alice),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = server
        .call("GET", &document, Auth::Bearer(&bob), None)
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "restored, and still without versions"
    );

    // A deleted repository: its readers are told, through any protocol.
    let (status, _) = server
        .call(
            "DELETE",
            "/api/workspaces/acme/repositories/api",
            Auth::Bearer(&alice),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, body) = server
        .call(
            "GET",
            "/v2/acme/api/server/tags/list",
            Auth::Basic("bob", &bob),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["errors"][0]["code"], "NAME_UNKNOWN");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("repository acme/api was deleted at ")
            && message.ends_with("POST /api/workspaces/acme/repositories/api/restore"),
        "{message}"
    );
    let (status, body) = server
        .call(
            "GET",
            "/v2/acme/api/server/tags/list",
            Auth::Basic("carol", &carol),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!body.to_string().contains("deleted"), "{body}");
    let (_, listed) = server
        .call(
            "GET",
            "/api/workspaces/acme/deleted",
            Auth::Bearer(&alice),
            None,
        )
        .await;
    assert_eq!(listed["repositories"][0]["slug"], "api");
    assert!(listed["repositories"][0]["purge_after"].is_string());
}

async fn the_api_lists_workspaces_and_answers_in_json(stores: Stores) {
    let server = TestServer::start(stores).await;
    let alice = acme(&server).await;
    let bob = server.user_with_token("bob", &["read:package"]).await;
    let carol = server.user_with_token("carol", &["read:package"]).await;
    grant_bob_read(&server, &alice).await;
    let (status, _) = server
        .call(
            "POST",
            "/api/workspaces",
            Auth::Bearer(&alice),
            Some(json!({"slug": "beta", "plan": "standard"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let slugs = |body: &Value| -> Vec<(String, bool)> {
        body["values"]
            .as_array()
            .expect("values")
            .iter()
            .map(|w| {
                (
                    w["slug"].as_str().unwrap_or_default().to_owned(),
                    w["admin"].as_bool().unwrap_or_default(),
                )
            })
            .collect()
    };
    let (status, body) = server
        .call("GET", "/api/workspaces", Auth::Bearer(&alice), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(slugs(&body), [("acme".into(), true), ("beta".into(), true)]);
    let (_, body) = server
        .call("GET", "/api/workspaces", Auth::Bearer(&bob), None)
        .await;
    assert_eq!(slugs(&body), [("acme".into(), false)]);
    let (_, body) = server
        .call("GET", "/api/workspaces", Auth::Bearer(&carol), None)
        .await;
    assert_eq!(body, json!({"values": []}));
    let (status, _) = server
        .call("DELETE", "/api/workspaces/beta", Auth::Bearer(&alice), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (_, body) = server
        .call("GET", "/api/workspaces", Auth::Bearer(&alice), None)
        .await;
    assert_eq!(slugs(&body), [("acme".into(), true)]);

    let response = server
        .request("DELETE", "/api/users", Auth::Bearer(&alice), None)
        .await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "POST");
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(body["error"]["code"], "method_not_allowed");
    let (status, body) = server
        .call("GET", "/api/nothing/here", Auth::Bearer(&alice), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
}

async fn maven_puts_the_error_in_the_reason_phrase(stores: Stores) {
    let server = TestServer::start(stores).await;
    let alice = acme(&server).await;
    let path = "/maven/acme/com/acme/lib/1.0/lib-1.0.jar";
    let (line, _) = status_line(&server, "PUT", path, "alice", &alice, b"jar bytes").await;
    assert_eq!(line, "HTTP/1.1 201 Created");
    let (line, body) = status_line(&server, "PUT", path, "alice", &alice, b"other bytes").await;
    let reason = "release 1.0 of com.acme:lib is already deployed (lib-1.0.jar): releases never change; deploy a new version";
    assert_eq!(line, format!("HTTP/1.1 409 {reason}"));
    assert_eq!(body.trim(), reason);
    let (line, _) = status_line(
        &server,
        "GET",
        "/maven/acme/com/acme/nothing/1.0/nothing-1.0.jar",
        "alice",
        &alice,
        b"",
    )
    .await;
    assert_eq!(line, "HTTP/1.1 404 not found");
}

async fn the_npm_document_names_its_maintainer_and_keeps_its_creation(stores: Stores) {
    let server = TestServer::start(stores).await;
    let alice = acme(&server).await;
    let document = format!("/npm/acme/{}", encoded("@acme/ui"));
    for version in ["1.0.0", "1.1.0"] {
        let tgz = tarball("@acme/ui", version);
        let (status, body) = server
            .call(
                "PUT",
                &document,
                Auth::Bearer(&alice),
                Some(publish_document("@acme/ui", version, &tgz)),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        server.clock.advance(chrono::Duration::minutes(5));
    }
    let (_, before) = server
        .call("GET", &document, Auth::Bearer(&alice), None)
        .await;
    assert_eq!(
        before["maintainers"],
        json!([{"name": "alice", "email": "alice@example.com"}])
    );
    let created = before["time"]["created"].clone();
    assert!(created.as_str() <= before["time"]["1.0.0"].as_str());
    let mut after = before.clone();
    after["versions"]
        .as_object_mut()
        .expect("versions")
        .remove("1.0.0");
    after["time"].as_object_mut().expect("time").remove("1.0.0");
    let revision = before["_rev"].as_str().unwrap_or_default();
    let (status, body) = server
        .call(
            "PUT",
            &format!("{document}/-rev/{revision}"),
            Auth::Bearer(&alice),
            Some(after),
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
    let (_, unpublished) = server
        .call("GET", &document, Auth::Bearer(&alice), None)
        .await;
    assert!(unpublished["versions"].get("1.0.0").is_none());
    assert_eq!(unpublished["time"]["created"], created);
}

/// `skopeo copy … host/server:1` (no workspace): the HEAD of a layer is answered "not found"
/// (its answer has no body to explain), so the client goes on to the upload's POST, whose
/// answer it prints: what a name is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_without_a_workspace_is_explained_to_the_client() {
    if !stowage_tests::clients::available(&["skopeo"]) {
        return;
    }
    let stores = Stores::new(stowage_tests::Backend::Embedded)
        .await
        .expect("stores");
    let server = TestServer::start(stores).await;
    let alice = acme(&server).await;
    let digest = format!("sha256:{}", "a".repeat(64));
    let response = server
        .request(
            "HEAD",
            &format!("/v2/server/blobs/{digest}"),
            Auth::Basic("alice", &alice),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    let work = tempfile::tempdir().expect("folder");
    let image = stowage_tests::oci::image(&[64], "amd64", stowage_tests::oci::OCI_MANIFEST);
    stowage_tests::oci::write_layout(&work.path().join("image"), &image, "1");
    let host = server.url.trim_start_matches("http://");
    let pushed = stowage_tests::clients::run(
        "skopeo",
        &[
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            &format!("alice:{alice}"),
            &format!("oci:{}:1", work.path().join("image").display()),
            &format!("docker://{host}/server:1"),
        ],
        &[],
    )
    .await;
    assert!(!pushed.success);
    assert!(
        pushed.stderr.contains("a name is <workspace>/<image path>"),
        "{}",
        pushed.stderr
    );
}

/// `/v2/_catalog` names the images the caller can read, paged, and nothing else.
async fn the_catalog_lists_what_the_caller_can_read(stores: Stores) {
    let server = TestServer::start(stores).await;
    let alice = acme(&server).await;
    server
        .package(&alice, "acme", "api", "container", "api/worker")
        .await;
    server
        .package(&alice, "acme", "vault", "container", "vault/keys")
        .await;
    let bob = server.user_with_token("bob", &["read:package"]).await;
    let carol = server.user_with_token("carol", &["read:package"]).await;
    grant_bob_read(&server, &alice).await;
    let catalog = |user: &'static str, token: String, query: &'static str| {
        let server = &server;
        async move {
            let response = server
                .request(
                    "GET",
                    &format!("/v2/_catalog{query}"),
                    Auth::Basic(user, &token),
                    None,
                )
                .await;
            assert_eq!(response.status(), StatusCode::OK);
            let link = response
                .headers()
                .get("link")
                .map(|l| l.to_str().unwrap_or_default().to_owned());
            let body: Value = response.json().await.expect("JSON");
            (body["repositories"].clone(), link)
        }
    };
    let (all, link) = catalog("alice", alice.clone(), "").await;
    assert_eq!(
        all,
        json!(["acme/api/server", "acme/api/worker", "acme/vault/keys"])
    );
    assert_eq!(link, None);
    let (first, link) = catalog("bob", bob.clone(), "?n=1").await;
    assert_eq!(first, json!(["acme/api/server"]));
    assert_eq!(
        link.as_deref(),
        Some("</v2/_catalog?n=1&last=acme/api/server>; rel=\"next\"")
    );
    let (rest, link) = catalog("bob", bob.clone(), "?n=1&last=acme/api/server").await;
    assert_eq!(rest, json!(["acme/api/worker"]));
    assert_eq!(link, None);
    let (none, _) = catalog("carol", carol, "").await;
    assert_eq!(none, json!([]));
    let (_, pipeline) = server
        .call(
            "POST",
            "/api/workspaces/acme/repositories/vault/pipeline-tokens",
            Auth::Bearer(&alice),
            Some(json!({})),
        )
        .await;
    let (own, _) = catalog(
        "pipeline@acme/vault",
        pipeline["token"].as_str().expect("token").to_owned(),
        "",
    )
    .await;
    assert_eq!(own, json!(["acme/vault/keys"]));
}

/// A Maven folder opened in a browser lists what the caller may read, as HTML.
async fn maven_folders_list_what_the_caller_can_read(stores: Stores) {
    let server = TestServer::start(stores).await;
    let alice = acme(&server).await;
    server
        .package(&alice, "acme", "vault", "maven", "com.other:secret")
        .await;
    for file in ["lib-1.0.jar", "lib-1.0.pom"] {
        let (line, _) = status_line(
            &server,
            "PUT",
            &format!("/maven/acme/com/acme/lib/1.0/{file}"),
            "alice",
            &alice,
            file.as_bytes(),
        )
        .await;
        assert_eq!(line, "HTTP/1.1 201 Created");
    }
    let bob = server.user_with_token("bob", &["read:package"]).await;
    grant_bob_read(&server, &alice).await;
    assert_eq!(
        listing(&server, "bob", &bob, "/maven/acme/").await,
        (StatusCode::OK, vec!["com/".to_owned()])
    );
    assert_eq!(
        listing(&server, "bob", &bob, "/maven/acme/com/").await,
        (StatusCode::OK, vec!["../".to_owned(), "acme/".to_owned()])
    );
    assert_eq!(
        listing(&server, "alice", &alice, "/maven/acme/com/")
            .await
            .1,
        ["../", "acme/", "other/"]
    );
    assert_eq!(
        listing(&server, "bob", &bob, "/maven/acme/com/acme/lib/")
            .await
            .1,
        ["../", "1.0/", "maven-metadata.xml"]
    );
    assert_eq!(
        listing(&server, "bob", &bob, "/maven/acme/com/acme/lib/1.0/")
            .await
            .1,
        ["../", "lib-1.0.jar", "lib-1.0.pom"]
    );
    assert_eq!(
        listing(&server, "bob", &bob, "/maven/acme/com/other/")
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let anonymous = server
        .request("GET", "/maven/acme/", Auth::None, None)
        .await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert!(anonymous.headers().contains_key("www-authenticate"));
}

/// A folder's listing as `user`: the status and the page's links.
async fn listing(
    server: &TestServer,
    user: &str,
    token: &str,
    path: &str,
) -> (StatusCode, Vec<String>) {
    let response = server
        .request("GET", path, Auth::Basic(user, token), None)
        .await;
    let status = response.status();
    let html = response.text().await.expect("body");
    let links = html
        .split("<a href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect();
    (status, links)
}

/// The workspace's audit trail: who created, granted, revoked, deleted and restored what,
/// newest first, for its admins alone; purged with the retention period.
async fn the_audit_trail_says_who_changed_what(stores: Stores) {
    let server = TestServer::start(stores).await;
    let alice = acme(&server).await;
    let bob = server
        .user_with_token("bob", &["read:package", "write:package"])
        .await;
    let permission = "/api/workspaces/acme/repositories/api/permissions/bob";
    let package = "/api/workspaces/acme/packages/npm/%40acme%2Fui";
    for (method, path, body) in [
        ("PUT", permission, Some(json!({"role": "read"}))),
        ("DELETE", permission, None),
        ("DELETE", package, None),
        ("POST", &format!("{package}/restore") as &str, None),
    ] {
        let (status, body) = server.call(method, path, Auth::Bearer(&alice), body).await;
        assert!(status.is_success(), "{method} {path}: {status} {body}");
    }
    let (status, trail) = server
        .call(
            "GET",
            "/api/workspaces/acme/audit",
            Auth::Bearer(&alice),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let events: Vec<(String, String, String)> = trail["values"]
        .as_array()
        .expect("values")
        .iter()
        .map(|event| {
            assert!(event["at"].is_string());
            (
                event["actor"].as_str().unwrap_or_default().to_owned(),
                event["action"].as_str().unwrap_or_default().to_owned(),
                event["subject"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("restored", "npm package @acme/ui (repository acme/api)"),
        ("deleted", "npm package @acme/ui (repository acme/api)"),
        ("revoked", "role on acme/api of bob"),
        ("granted", "read role on acme/api to bob"),
        (
            "created",
            "maven package com.acme:lib (repository acme/api)",
        ),
        ("created", "npm package @acme/ui (repository acme/api)"),
        (
            "created",
            "container package api/server (repository acme/api)",
        ),
        ("created", "repository acme/api"),
        ("created", "workspace acme"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(action, subject)| ("alice".into(), (*action).into(), (*subject).into()))
        .collect();
    assert_eq!(events, expected);
    let (status, _) = server
        .call(
            "GET",
            "/api/workspaces/acme/audit",
            Auth::Bearer(&bob),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "bob is no longer a member");

    // Past the retention period the purge removes the events: they are gone, not hidden
    // (with the clock set back they do not come back).
    let then = server.clock_now();
    server.clock.advance(chrono::Duration::days(31));
    let report = server
        .registry
        .purge(&stowage_purge::Content, std::time::Duration::from_secs(60))
        .await
        .expect("purge");
    assert_eq!(report.audit_events_expired, 9);
    assert!(report.purged.is_empty(), "{:?}", report.purged);
    server.clock.set(then);
    let (_, trail) = server
        .call(
            "GET",
            "/api/workspaces/acme/audit",
            Auth::Bearer(&alice),
            None,
        )
        .await;
    assert_eq!(trail, json!({"values": []}));
}

/// A token's expiry is a date or a number of days, exactly one, within a year.
async fn a_token_expires_at_a_date_or_after_days(stores: Stores) {
    let server = TestServer::start(stores).await;
    let alice = acme(&server).await;
    let create = |body: Value| {
        let server = &server;
        let alice = alice.clone();
        async move {
            server
                .call("POST", "/api/tokens", Auth::Bearer(&alice), Some(body))
                .await
        }
    };
    let scopes = json!(["read:package"]);
    let (status, token) =
        create(json!({"name": "ci", "scopes": scopes, "expires_in_days": 30})).await;
    assert_eq!(status, StatusCode::CREATED, "{token}");
    let expires: chrono::DateTime<chrono::Utc> = token["expires_at"]
        .as_str()
        .expect("expires_at")
        .parse()
        .expect("RFC 3339");
    assert_eq!(expires, server.clock_now() + chrono::Duration::days(30));
    for (body, field, message) in [
        (
            json!({"name": "ci", "scopes": scopes}),
            "expires_at",
            "is required (or expires_in_days)",
        ),
        (
            json!({"name": "ci", "scopes": scopes, "expires_in_days": 0}),
            "expires_in_days",
            "must be 1 to 365",
        ),
        (
            json!({"name": "ci", "scopes": scopes, "expires_in_days": 400}),
            "expires_in_days",
            "must be 1 to 365",
        ),
        (
            json!({"name": "ci", "scopes": scopes, "expires_in_days": 3, "expires_at": "2099-01-01T00:00:00Z"}),
            "expires_in_days",
            "cannot be given with expires_at",
        ),
        (
            json!({"name": "ci", "scopes": scopes, "expires_in_days": "soon"}),
            "expires_in_days",
            "invalid type",
        ),
    ] {
        let (status, error) = create(body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error["error"]["field"], field, "{body}: {error}");
        assert!(
            error["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(message)),
            "{body}: {error}"
        );
    }
}
