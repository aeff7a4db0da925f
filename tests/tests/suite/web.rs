//! The web interface over HTTP: its protections (headers, the session cookie, CSRF secrets, a
//! cookie that never authenticates a protocol), each wrong way in, the storage calls of its
//! package pages against the API's, and the function as its Lambda serves it. The pages
//! themselves are tested in a browser (`web_browser.rs`).

use std::sync::Arc;

use http::StatusCode;
use serde_json::json;
use stowage_domain::ManualClock;
use stowage_http::{AppState, Limits};
use stowage_tests::lambda::{LambdaFunction, registry_with_packages};
use stowage_tests::oci::{OCI_INDEX, OCI_MANIFEST, RegistryClient, image, index, sha256};
use stowage_tests::web::{WebClient, cookie_pair};
use stowage_tests::{ADMIN_TOKEN, Auth, Backend, Stores, TestServer, on_both_backends};

on_both_backends!(package_pages_cost_what_the_api_costs);

async fn server_with_alice() -> (TestServer, String) {
    let server = TestServer::start(Stores::new(Backend::Embedded).await.expect("stores")).await;
    let alice = server
        .user_with_token("alice", &["read:package", "write:package"])
        .await;
    server
        .package(&alice, "acme", "api", "npm", "@acme/left-pad")
        .await;
    (server, alice)
}

#[tokio::test]
async fn pages_carry_a_strict_policy_and_the_session_cookie_is_locked_down() {
    let (server, alice) = server_with_alice().await;
    let web = WebClient::new(&server.url);

    let form = web.get("/sign-in", None).await;
    assert_eq!(form.status, StatusCode::OK);
    let policy = form.headers["content-security-policy"]
        .to_str()
        .expect("csp");
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    assert_eq!(form.headers["x-frame-options"], "DENY");
    assert_eq!(form.headers["x-content-type-options"], "nosniff");
    assert_eq!(form.headers["cache-control"], "no-store");
    assert!(!form.body.contains("<script>"), "no inline script");

    let session = web.sign_in("alice", &alice).await;
    let signed_in = web.get("/", Some(&session.cookie)).await;
    assert_eq!(signed_in.status, StatusCode::OK);
    let page = web.get("/tokens", Some(&session.cookie)).await;
    assert!(page.body.contains("Your tokens"));

    // The cookie's attributes, as a fresh sign-in sets them.
    let form = web.get("/sign-in", None).await;
    let form_cookie = cookie_pair(&form.set_cookies(), "stowage_sign_in").expect("cookie");
    let answer = web
        .post(
            "/sign-in",
            Some(&form_cookie),
            &[
                ("csrf", &form.csrf().expect("csrf")),
                ("name", "alice"),
                ("token", &alice),
            ],
        )
        .await;
    let set = answer
        .set_cookies()
        .into_iter()
        .find(|cookie| cookie.starts_with("stowage_session="))
        .expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age="] {
        assert!(set.contains(attribute), "{attribute} in {set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP here: {set}");
    assert!(
        !set.contains(&alice),
        "the token is sealed in the cookie: {set}"
    );
    assert!(
        !set.contains("alice"),
        "nothing readable in the cookie: {set}"
    );

    // The stylesheet and the script are the site's own.
    let css = web.get("/static/app.css", None).await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(css.headers["content-type"], "text/css; charset=utf-8");
    assert!(css.body.contains("prefers-color-scheme: dark"));
    let js = web.get("/static/app.js", None).await;
    assert_eq!(js.headers["content-type"], "text/javascript; charset=utf-8");
    assert_eq!(
        web.get("/static/other.js", None).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_form_without_its_csrf_secret_is_refused() {
    let (server, alice) = server_with_alice().await;
    let web = WebClient::new(&server.url);
    let session = web.sign_in("alice", &alice).await;
    let other = web.sign_in("alice", &alice).await;
    assert_ne!(session.csrf, other.csrf, "each session has its own secret");

    for fields in [
        vec![("name", "x"), ("expires_in_days", "5")],
        vec![("csrf", ""), ("name", "x"), ("expires_in_days", "5")],
        vec![
            ("csrf", other.csrf.as_str()),
            ("name", "x"),
            ("expires_in_days", "5"),
        ],
    ] {
        let refused = web.post("/tokens", Some(&session.cookie), &fields).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{fields:?}");
        assert!(
            refused.body.contains("did not come from this site"),
            "{}",
            refused.body
        );
    }
    let (_, tokens) = server
        .call("GET", "/api/tokens", Auth::Bearer(&alice), None)
        .await;
    assert_eq!(
        tokens["values"].as_array().map(Vec::len),
        Some(1),
        "{tokens}"
    );

    let refused = web.post("/sign-out", Some(&session.cookie), &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let refused = web
        .post(
            "/workspaces/acme/packages",
            Some(&session.cookie),
            &[("kind", "npm"), ("name", "sneaky"), ("repository", "api")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    // The sign-in form's secret is bound to its own cookie.
    let form = web.get("/sign-in", None).await;
    let csrf = form.csrf().expect("csrf");
    let refused = web
        .post(
            "/sign-in",
            None,
            &[("csrf", &csrf), ("name", "alice"), ("token", &alice)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    // With its secret, the same form works.
    let created = web
        .post(
            "/tokens",
            Some(&session.cookie),
            &[
                ("csrf", &session.csrf),
                ("name", "ok"),
                ("expires_in_days", "5"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    assert!(created.body.contains("Copy it now"));
}

#[tokio::test]
async fn the_cookie_never_authenticates_a_protocol_or_the_api() {
    let (server, alice) = server_with_alice().await;
    let web = WebClient::new(&server.url);
    let session = web.sign_in("alice", &alice).await;
    for path in [
        "/api/user",
        "/api/workspaces",
        "/v2/",
        "/v2/acme/api/server/tags/list",
        "/npm/acme/@acme%2fleft-pad",
        "/maven/acme/com/acme/lib/maven-metadata.xml",
    ] {
        let answer = web.get(path, Some(&session.cookie)).await;
        assert_eq!(
            answer.status,
            StatusCode::UNAUTHORIZED,
            "{path} with only the cookie: {}",
            answer.body
        );
    }
}

#[tokio::test]
async fn wrong_ways_in_lead_back_to_signing_in() {
    let (server, alice) = server_with_alice().await;
    let web = WebClient::new(&server.url);

    let anonymous = web.get("/workspaces/acme", None).await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    assert_eq!(anonymous.location(), Some("/sign-in?next=/workspaces/acme"));

    let session = web.sign_in("alice", &alice).await;
    let (name, value) = session.cookie.split_once('=').expect("pair");
    let mut tampered = value.to_owned().into_bytes();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    let tampered = format!("{name}={}", String::from_utf8(tampered).expect("ascii"));
    for cookie in [
        tampered.as_str(),
        "stowage_session=garbage",
        "stowage_session=",
    ] {
        let answer = web.get("/", Some(cookie)).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{cookie}");
        assert!(answer.location().is_some_and(|l| l.starts_with("/sign-in")));
    }

    // Wrong names and tokens: one answer for all.
    for (name, token) in [
        ("alice", "stw_wrongwrongwrongwrongwrongwrongwrong00"),
        ("bob", alice.as_str()),
        ("", alice.as_str()),
        ("alice", ""),
    ] {
        let form = web.get("/sign-in", None).await;
        let cookie = cookie_pair(&form.set_cookies(), "stowage_sign_in").expect("cookie");
        let refused = web
            .post(
                "/sign-in",
                Some(&cookie),
                &[
                    ("csrf", &form.csrf().expect("csrf")),
                    ("name", name),
                    ("token", token),
                ],
            )
            .await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{name}");
        assert!(refused.body.contains("That name and token do not match"));
        assert!(!refused.body.contains(token) || token.is_empty());
    }

    // A pipeline's token is for builds: it cannot sign in.
    let (status, pipeline) = server
        .call(
            "POST",
            "/api/workspaces/acme/repositories/api/pipeline-tokens",
            Auth::Bearer(&alice),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{pipeline}");
    let form = web.get("/sign-in", None).await;
    let cookie = cookie_pair(&form.set_cookies(), "stowage_sign_in").expect("cookie");
    let refused = web
        .post(
            "/sign-in",
            Some(&cookie),
            &[
                ("csrf", &form.csrf().expect("csrf")),
                ("name", pipeline["username"].as_str().expect("name")),
                ("token", pipeline["token"].as_str().expect("token")),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(refused.body.contains("a pipeline token cannot sign in"));

    // After signing in, only this site's paths are followed.
    let form = web.get("/sign-in?next=//evil.example/", None).await;
    assert!(!form.body.contains("evil.example"), "{}", form.body);
    let cookie = cookie_pair(&form.set_cookies(), "stowage_sign_in").expect("cookie");
    let signed_in = web
        .post(
            "/sign-in",
            Some(&cookie),
            &[
                ("csrf", &form.csrf().expect("csrf")),
                ("name", "alice"),
                ("token", &alice),
                ("next", "https://evil.example/"),
            ],
        )
        .await;
    assert_eq!(signed_in.location(), Some("/"));

    // Revoking the token ends its sessions; so does its expiry.
    let (_, minted) = server
        .call(
            "POST",
            "/api/tokens",
            Auth::Bearer(&alice),
            Some(json!({"name": "short", "scopes": ["read:package"], "expires_in_days": 1})),
        )
        .await;
    let short = minted["token"].as_str().expect("token").to_owned();
    let session = web.sign_in("alice", &short).await;
    server
        .clock
        .advance(chrono::Duration::days(1) + chrono::Duration::seconds(1));
    let expired = web.get("/", Some(&session.cookie)).await;
    assert_eq!(expired.status, StatusCode::SEE_OTHER, "the token expired");
    let session = web.sign_in("alice", &alice).await;
    let id = {
        let (_, tokens) = server
            .call("GET", "/api/tokens", Auth::Bearer(&alice), None)
            .await;
        let listed = tokens["values"].as_array().expect("tokens");
        let signed_in_with = listed
            .iter()
            .find(|token| token["name"] == "test")
            .expect("the token alice signed in with");
        signed_in_with["id"].as_str().expect("id").to_owned()
    };
    let (status, _) = server
        .call(
            "DELETE",
            &format!("/api/tokens/{id}"),
            Auth::Bearer(&alice),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let revoked = web.get("/", Some(&session.cookie)).await;
    assert_eq!(
        revoked.status,
        StatusCode::SEE_OTHER,
        "the token was revoked"
    );
}

/// A form's path, its fields, the status it gets and what its page says.
type FormCase<'a> = (&'a str, Vec<(&'a str, &'a str)>, StatusCode, &'a str);

#[tokio::test]
async fn bad_form_input_gets_a_page_that_says_what_is_wrong() {
    let (server, alice) = server_with_alice().await;
    let web = WebClient::new(&server.url);
    let session = web.sign_in("alice", &alice).await;
    let csrf = session.csrf.as_str();
    let cases: [FormCase; 11] = [
        (
            "/tokens",
            vec![
                ("csrf", csrf),
                ("name", "t"),
                ("expires_in_days", "forever"),
            ],
            StatusCode::BAD_REQUEST,
            "must be a number of days",
        ),
        (
            "/tokens",
            vec![("csrf", csrf), ("name", "t"), ("expires_in_days", "400")],
            StatusCode::BAD_REQUEST,
            "must be 1 to 365",
        ),
        (
            "/tokens",
            vec![("csrf", csrf), ("name", ""), ("expires_in_days", "3")],
            StatusCode::BAD_REQUEST,
            "name",
        ),
        (
            "/workspaces/acme/packages",
            vec![
                ("csrf", csrf),
                ("kind", "rubygems"),
                ("name", "x"),
                ("repository", "api"),
            ],
            StatusCode::BAD_REQUEST,
            "type",
        ),
        (
            "/workspaces/acme/packages",
            vec![
                ("csrf", csrf),
                ("kind", "npm"),
                ("name", "@acme/left-pad"),
                ("repository", "api"),
            ],
            StatusCode::CONFLICT,
            "already",
        ),
        (
            "/workspaces/acme/repositories/api/members",
            vec![("csrf", csrf), ("username", "nobody"), ("role", "read")],
            StatusCode::NOT_FOUND,
            "nothing here",
        ),
        (
            "/workspaces/acme/repositories/api/members",
            vec![("csrf", csrf), ("username", "alice"), ("role", "owner")],
            StatusCode::BAD_REQUEST,
            "role",
        ),
        (
            "/workspaces",
            vec![("csrf", csrf), ("slug", "Not A Slug"), ("plan", "standard")],
            StatusCode::BAD_REQUEST,
            "workspace",
        ),
        (
            "/workspaces",
            vec![("csrf", csrf), ("slug", "acme"), ("plan", "standard")],
            StatusCode::CONFLICT,
            "acme",
        ),
        (
            "/users",
            vec![
                ("csrf", csrf),
                ("username", "eve"),
                ("email", "eve@example.com"),
            ],
            StatusCode::FORBIDDEN,
            "only the site admin can create users",
        ),
        (
            "/users/tokens",
            vec![
                ("csrf", csrf),
                ("username", "admin"),
                ("name", "mine now"),
                ("expires_in_days", "3"),
            ],
            StatusCode::FORBIDDEN,
            "you can only create tokens for yourself",
        ),
    ];
    for (path, fields, status, says) in cases {
        let answer = web.post(path, Some(&session.cookie), &fields).await;
        assert_eq!(answer.status, status, "{path} {fields:?}: {}", answer.body);
        assert!(
            answer.body.to_lowercase().contains(says),
            "{path} {fields:?}: {says:?} in {}",
            answer.body
        );
        assert!(answer.body.contains("Go back"));
    }
    let users = web.get("/users", Some(&session.cookie)).await;
    assert_eq!(
        users.status,
        StatusCode::NOT_FOUND,
        "the users page is the site admin's"
    );
    let huge = "x".repeat(64 * 1024);
    let answer = web
        .post(
            "/tokens",
            Some(&session.cookie),
            &[("csrf", csrf), ("name", &huge)],
        )
        .await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    let not_a_form = web
        .get(
            "/workspaces/acme/packages/npm/not%20a%20name",
            Some(&session.cookie),
        )
        .await;
    assert_eq!(not_a_form.status, StatusCode::NOT_FOUND);
    let missing = web
        .get(
            "/workspaces/acme/packages/npm/@acme/absent",
            Some(&session.cookie),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(
        missing
            .body
            .contains("There is nothing here that you can see.")
    );
}

/// Tag `multi`: an index of two images; and a signature whose subject is the first image.
async fn push_index_with_a_signature(server: &TestServer, token: &str) {
    let registry = RegistryClient::new(&server.url, "alice", token);
    let amd64 = image(&[1000], "amd64", OCI_MANIFEST);
    let arm64 = image(&[2000], "arm64", OCI_MANIFEST);
    for (img, tag) in [(&amd64, "amd64"), (&arm64, "arm64")] {
        registry.push_image("acme/api/server", tag, img).await;
    }
    let index = index(&[(&amd64, "amd64"), (&arm64, "arm64")], OCI_INDEX);
    let pushed = registry
        .push_manifest("acme/api/server", "multi", OCI_INDEX, &index)
        .await;
    assert_eq!(pushed.status(), 201);
    let empty = b"{}".to_vec();
    let payload = b"signature".to_vec();
    for blob in [&empty, &payload] {
        assert_eq!(
            registry.push_blob("acme/api/server", blob).await.status(),
            201
        );
    }
    let signature = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.signature",
        "config": { "mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256(&empty), "size": 2 },
        "layers": [{ "mediaType": "application/octet-stream", "digest": sha256(&payload), "size": payload.len() }],
        "subject": { "mediaType": OCI_MANIFEST, "digest": amd64.digest(), "size": amd64.manifest.len() },
    })
    .to_string()
    .into_bytes();
    let pushed = registry
        .push_manifest(
            "acme/api/server",
            &sha256(&signature),
            OCI_MANIFEST,
            &signature,
        )
        .await;
    assert_eq!(pushed.status(), 201);
}

/// A package page makes the storage calls the API's package call makes, whatever the type.
async fn package_pages_cost_what_the_api_costs(stores: Stores) {
    let server = TestServer::start(stores).await;
    let alice = server
        .user_with_token("alice", &["read:package", "write:package"])
        .await;
    server
        .package(&alice, "acme", "api", "container", "api/server")
        .await;
    server
        .package(&alice, "acme", "api", "npm", "left-pad")
        .await;
    server
        .package(&alice, "acme", "api", "maven", "com.acme:lib")
        .await;
    push_index_with_a_signature(&server, &alice).await;
    for version in ["1.0.0", "1.1.0"] {
        let tarball = stowage_tests::npm::tarball("left-pad", version);
        let document = stowage_tests::npm::publish_document("left-pad", version, &tarball);
        let (status, body) = server
            .call(
                "PUT",
                "/npm/acme/left-pad",
                Auth::Bearer(&alice),
                Some(document),
            )
            .await;
        assert!(status.is_success(), "{status} {body}");
    }
    for file in ["lib-1.0.jar", "lib-1.0.pom"] {
        let response = server
            .request(
                "PUT",
                &format!("/maven/acme/com/acme/lib/1.0/{file}"),
                Auth::Basic("alice", &alice),
                Some(format!("bytes of {file}")),
            )
            .await;
        assert!(response.status().is_success(), "{}", response.status());
    }
    let web = WebClient::new(&server.url);
    let session = web.sign_in("alice", &alice).await;
    for (kind, name, shows) in [
        (
            "container",
            "api/server",
            "platforms: linux/amd64, linux/arm64",
        ),
        ("npm", "left-pad", "1.1.0"),
        ("maven", "com.acme:lib", "lib-1.0.jar"),
    ] {
        // Warm: the credential cache and the package's repository hint, as on a busy server.
        let api = format!(
            "/api/workspaces/acme/packages/{kind}/{}",
            name.replace('/', "%2F")
        );
        let page = format!("/workspaces/acme/packages/{kind}/{name}");
        server.call("GET", &api, Auth::Bearer(&alice), None).await;
        web.get(&page, Some(&session.cookie)).await;

        server.metadata_calls.reset();
        let (status, _) = server.call("GET", &api, Auth::Bearer(&alice), None).await;
        assert_eq!(status, StatusCode::OK);
        let api_calls = server.metadata_calls.total();
        server.metadata_calls.reset();
        server.blob_calls.reset();
        let shown = web.get(&page, Some(&session.cookie)).await;
        assert_eq!(shown.status, StatusCode::OK);
        assert!(
            shown.body.contains(shows),
            "{kind}: {shows} in {}",
            shown.body
        );
        let page_calls = server.metadata_calls.total();
        assert!(
            page_calls <= api_calls,
            "{kind}: the page made {page_calls} metadata calls, the API {api_calls}"
        );
        assert_eq!(
            server.blob_calls.total(),
            0,
            "{kind}: no blob read for a page"
        );
    }

    // A workspace's page: the repositories' listing and one query of its packages.
    let listing = "/api/workspaces/acme/repositories";
    server.metadata_calls.reset();
    let (status, _) = server
        .call("GET", listing, Auth::Bearer(&alice), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let api_calls = server.metadata_calls.total();
    server.metadata_calls.reset();
    let page = web.get("/workspaces/acme", Some(&session.cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    let page_calls = server.metadata_calls.total();
    assert!(
        page_calls <= api_calls + 1,
        "the workspace page made {page_calls} metadata calls, its repositories' listing {api_calls}"
    );
}

/// A workspace admin's read-only token reads everything and is offered nothing to change:
/// its role on each repository is read, as for any other member's read-only token, and it
/// lists nothing to restore (it could restore nothing), in the API and in the page.
#[tokio::test]
async fn a_read_only_token_of_an_admin_reads_and_changes_nothing() {
    let (server, alice) = server_with_alice().await;
    server
        .package(&alice, "acme", "api", "npm", "@acme/gone")
        .await;
    let (status, _) = server
        .call(
            "DELETE",
            "/api/workspaces/acme/packages/npm/@acme%2Fgone",
            Auth::Bearer(&alice),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let reader = server.token_for("alice", &["read:package"]).await;

    let (_, repositories) = server
        .call(
            "GET",
            "/api/workspaces/acme/repositories",
            Auth::Bearer(&reader),
            None,
        )
        .await;
    assert_eq!(repositories["values"][0]["role"], "read", "{repositories}");
    let (_, deleted) = server
        .call(
            "GET",
            "/api/workspaces/acme/deleted",
            Auth::Bearer(&reader),
            None,
        )
        .await;
    assert_eq!(deleted, json!({"repositories": [], "packages": []}));
    let (_, deleted) = server
        .call(
            "GET",
            "/api/workspaces/acme/deleted",
            Auth::Bearer(&alice),
            None,
        )
        .await;
    assert_eq!(deleted["packages"][0]["name"], "@acme/gone", "{deleted}");

    let web = WebClient::new(&server.url);
    let admin = web.sign_in("alice", &alice).await;
    let page = web.get("/workspaces/acme", Some(&admin.cookie)).await;
    assert!(page.body.contains("Restore npm package @acme/gone"));
    assert!(page.body.contains("Create a package"));
    let read_only = web.sign_in("alice", &reader).await;
    let page = web.get("/workspaces/acme", Some(&read_only.cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("@acme/left-pad"));
    assert!(!page.body.contains("Restore"), "{}", page.body);
    assert!(!page.body.contains("Create a package"));
}

#[tokio::test]
async fn the_web_function_serves_its_pages_as_a_lambda_over_https() {
    let stores = Stores::new(Backend::Embedded).await.expect("stores");
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let registry = registry_with_packages(&stores, clock, ADMIN_TOKEN, "api", &[]).await;
    let state = AppState {
        registry,
        public_url: None,
        limits: Limits::LAMBDA,
    };
    let function = LambdaFunction::new(stowage_web::router(state), "GET /{proxy+}");
    let form = function.call("GET", "/sign-in", &[], b"").await;
    assert_eq!(form.status, 200);
    let cookie = form.cookies.first().expect("the form's cookie");
    assert!(cookie.contains("Secure"), "over HTTPS: {cookie}");
    let home = function.call("GET", "/", &[], b"").await;
    assert_eq!(home.status, 303);
    assert_eq!(home.header("location"), Some("/sign-in?next=/"));
    let css = function.call("GET", "/static/app.css", &[], b"").await;
    assert_eq!(css.status, 200);
}
