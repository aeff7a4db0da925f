//! npm through upstreams, on both storage pairs: a second Stowage (a `stowage-local` process
//! of its own) is the upstream, with real npm, pnpm and yarn installing a tree only it has, then
//! again once it is gone; a hand-made upstream for what a real one rarely does (bytes that do
//! not match their integrity) and for counting its requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use http::StatusCode;
use serde_json::{Value, json};
use stowage_tests::clients::{LocalServer, available, run};
use stowage_tests::npm::{encoded, integrity, publish_document, shasum, tarball_with};
use stowage_tests::race::race;
use stowage_tests::upstreams::{
    self, assert_refused_elsewhere, handed_over_to, loopback_upstreams, member, proxy_server,
    workspace,
};
use stowage_tests::{ADMIN_TOKEN, Auth, Stores, TestServer, on_both_backends};

use crate::npm_clients::{NpmUser, app_dir, run_in};

on_both_backends!(
    clients_install_a_tree_only_the_upstream_has_and_again_once_it_is_gone,
    a_local_name_always_wins_and_only_readers_of_the_repository_see_a_proxied_one,
    bytes_unlike_their_integrity_are_refused_and_ten_first_pulls_make_one_fetch,
    unused_cached_packages_are_evicted_but_bytes_a_local_package_uses_stay,
    names_in_a_namespace_the_workspace_declares_private_never_come_from_upstreams,
    on_aws_a_tarball_miss_is_fetched_by_the_upload_service,
);

/// A proxy: workspace `acme` with repositories `hub` and `own`, upstreams allowed on
/// loopback.
async fn proxy(stores: Stores) -> TestServer {
    proxy_server(stores, loopback_upstreams(), &["hub", "own"]).await
}

async fn grant(server: &TestServer, repository: &str, user: &str, role: &str) -> String {
    member(server, repository, user, role).await
}

/// Attaches the npm registry at `url` to `hub`, with a token when given.
async fn attach(server: &TestServer, url: &str, password: Option<&str>) {
    let mut body = json!({"type": "npm", "url": url});
    if let Some(password) = password {
        body["password"] = json!(password);
    }
    upstreams::attach(server, "hub", body).await;
}

/// Publishes `name@version` with `dependencies` to workspace `pub` of `upstream`.
async fn publish(upstream: &LocalServer, name: &str, version: &str, dependencies: Value) {
    let tarball = tarball_with(name, version, dependencies.clone());
    let mut document = publish_document(name, version, &tarball);
    document["versions"][version]["dependencies"] = dependencies;
    let response = reqwest::Client::new()
        .put(format!("{}/npm/pub/{}", upstream.url, encoded(name)))
        .bearer_auth(&upstream.admin_token)
        .json(&document)
        .send()
        .await
        .expect("publish");
    assert!(
        response.status().is_success(),
        "publish {name}@{version}: {}",
        response.text().await.unwrap_or_default()
    );
}

/// Another Stowage holding `@up/top` → `left` → `right` (two versions), and `secret`,
/// readable with its admin's token only. `None` (a skip) if the binary is not built.
async fn upstream_registry() -> Option<LocalServer> {
    let upstream = LocalServer::start(&[]).await?;
    for name in ["@up/top", "left", "right", "secret"] {
        upstream.create_package("pub", "main", "npm", name).await;
    }
    publish(&upstream, "right", "2.0.0", json!({})).await;
    publish(&upstream, "right", "2.1.0", json!({})).await;
    publish(&upstream, "left", "1.0.0", json!({"right": "^2.0.0"})).await;
    publish(&upstream, "@up/top", "1.0.0", json!({"left": "^1.0.0"})).await;
    publish(&upstream, "secret", "6.6.6", json!({})).await;
    Some(upstream)
}

/// Creates package `name` in repository `repository` of `acme`, as `token`'s owner.
async fn create_package(server: &TestServer, token: &str, repository: &str, name: &str) {
    let (status, body) = server
        .call(
            "POST",
            "/api/workspaces/acme/packages",
            Auth::Bearer(token),
            Some(json!({"type": "npm", "name": name, "repository": repository})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

fn installed_version(app: &std::path::Path, name: &str) -> String {
    let manifest =
        std::fs::read_to_string(app.join("node_modules").join(name).join("package.json"))
            .unwrap_or_else(|_| panic!("{name} is installed"));
    let manifest: Value = serde_json::from_str(&manifest).expect("package.json");
    manifest["version"].as_str().expect("version").to_owned()
}

async fn clients_install_a_tree_only_the_upstream_has_and_again_once_it_is_gone(stores: Stores) {
    if !available(&["npm", "pnpm", "yarn"]) {
        return;
    }
    let Some(mut upstream) = upstream_registry().await else {
        return;
    };
    let server = proxy(stores).await;
    attach(
        &server,
        &format!("{}/npm/pub/", upstream.url),
        Some(ADMIN_TOKEN),
    )
    .await;
    let bob = grant(&server, "hub", "bob", "read").await;
    let work = tempfile::tempdir().expect("work");

    let user = NpmUser::new(&server, &bob);
    let app = app_dir(work.path(), json!({ "@up/top": "^1.0.0" }));
    run_in(&user, &app, &["install"]).await.ok("npm install");
    assert_eq!(installed_version(&app, "@up/top"), "1.0.0");
    assert_eq!(installed_version(&app, "left"), "1.0.0");
    assert_eq!(installed_version(&app, "right"), "2.1.0");
    let lock = std::fs::read_to_string(app.join("package-lock.json")).expect("lockfile");
    let lock: Value = serde_json::from_str(&lock).expect("lockfile JSON");
    let resolved = lock["packages"]["node_modules/right"]["resolved"]
        .as_str()
        .expect("resolved");
    assert!(
        resolved.starts_with(&format!("{}/npm/acme/right/-/", server.url)),
        "tarballs come from the proxy: {resolved}"
    );

    // The proxied packages are packages of `hub`, listed with the versions fetched.
    let (status, listed) = server
        .call(
            "GET",
            "/api/workspaces/acme/packages/npm/right",
            Auth::Bearer(&bob),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["repository"], "hub");
    let versions: Vec<&str> = listed["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .filter_map(|v| v["version"].as_str())
        .collect();
    assert_eq!(
        versions,
        vec!["2.1.0"],
        "only what was installed is fetched"
    );

    // The upstream goes away, and the documents' copies go stale: everything installed
    // before installs again, from the copies.
    upstream.kill().await;
    server.clock.advance(chrono::Duration::minutes(10));
    let user = NpmUser::new(&server, &bob);
    let app = app_dir(work.path(), json!({ "@up/top": "^1.0.0" }));
    run_in(&user, &app, &["install"])
        .await
        .ok("npm install with the upstream down");
    assert_eq!(installed_version(&app, "right"), "2.1.0");

    // pnpm and yarn, from the same copies.
    let app = app_dir(work.path(), json!({ "@up/top": "^1.0.0" }));
    std::fs::copy(user_npmrc(&user), app.join(".npmrc")).expect("npmrc");
    let script = format!(
        "cd '{}' && pnpm install --no-frozen-lockfile --store-dir '{}'",
        app.display(),
        work.path().join("pnpm-store").display()
    );
    let mut env = user.env();
    env.push(("PNPM_CONFIG_MINIMUM_RELEASE_AGE".into(), "0".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    run("sh", &["-c", &script], &env).await.ok("pnpm install");
    assert_eq!(installed_version(&app, "@up/top"), "1.0.0");

    let app = app_dir(work.path(), json!({ "@up/top": "^1.0.0" }));
    let yarnrc = format!(
        "npmRegistryServer: \"{}/npm/acme/\"\nunsafeHttpWhitelist: [\"127.0.0.1\"]\nnpmAlwaysAuth: true\nnpmAuthToken: \"{bob}\"\n\
         npmMinimalAgeGate: 0\nenableImmutableInstalls: false\nnodeLinker: node-modules\nenableTelemetry: false\nenableGlobalCache: false\n",
        server.url
    );
    std::fs::write(app.join(".yarnrc.yml"), yarnrc).expect("yarnrc");
    let script = format!(
        "cd '{}' && YARN_CACHE_FOLDER='{}' yarn install",
        app.display(),
        work.path().join("yarn-cache").display()
    );
    let home = work.path().display().to_string();
    run("sh", &["-c", &script], &[("HOME", &home)])
        .await
        .ok("yarn install");
    assert_eq!(installed_version(&app, "left"), "1.0.0");

    // A version never fetched cannot come from an upstream that is gone.
    let (status, body) = server
        .call(
            "GET",
            "/npm/acme/right/-/right-2.0.0.tgz",
            Auth::Bearer(&bob),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
}

fn user_npmrc(user: &NpmUser) -> std::path::PathBuf {
    let env = user.env();
    let (_, path) = env
        .iter()
        .find(|(name, _)| name == "npm_config_userconfig")
        .expect("userconfig");
    std::path::PathBuf::from(path)
}

async fn a_local_name_always_wins_and_only_readers_of_the_repository_see_a_proxied_one(
    stores: Stores,
) {
    let Some(upstream) = upstream_registry().await else {
        return;
    };
    let server = proxy(stores).await;
    attach(
        &server,
        &format!("{}/npm/pub/", upstream.url),
        Some(ADMIN_TOKEN),
    )
    .await;
    let bob = grant(&server, "hub", "bob", "admin").await;
    let alice = grant(&server, "own", "alice", "admin").await;
    let carol = server
        .user_with_token("carol", &["read:package", "write:package"])
        .await;

    // Alice's own `left` shadows the upstream's, for everyone who can read it.
    create_package(&server, &alice, "own", "left").await;
    let tarball = tarball_with("left", "9.9.9", json!({}));
    let (status, body) = server
        .call(
            "PUT",
            "/npm/acme/left",
            Auth::Bearer(&alice),
            Some(publish_document("left", "9.9.9", &tarball)),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let (status, document) = server
        .call("GET", "/npm/acme/left", Auth::Bearer(&alice), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{document}");
    let versions: Vec<&String> = document["versions"]
        .as_object()
        .expect("versions")
        .keys()
        .collect();
    assert_eq!(versions, vec!["9.9.9"]);
    // Bob cannot read `own`: the name exists here, so it never comes from upstream for him.
    create_package(&server, &alice, "own", "secret").await;
    for name in ["left", "secret"] {
        let (status, body) = server
            .call(
                "GET",
                &format!("/npm/acme/{name}"),
                Auth::Bearer(&bob),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{name}: {body}");
    }

    // `right` is only upstream: Bob (reader of hub) gets it; Carol and Alice, who cannot read
    // hub, get nothing, before and after it is cached.
    for token in [&carol, &alice] {
        let (status, _) = server
            .call("GET", "/npm/acme/right", Auth::Bearer(token), None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (status, document) = server
        .call("GET", "/npm/acme/right", Auth::Bearer(&bob), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{document}");
    let tarball = document["versions"]["2.1.0"]["dist"]["tarball"]
        .as_str()
        .expect("tarball");
    assert_eq!(
        tarball,
        format!("{}/npm/acme/right/-/right-2.1.0.tgz", server.url)
    );
    assert_eq!(document["dist-tags"]["latest"], "2.1.0");
    // What is cached counts as storage, on a line of its own.
    let (status, usage) = server
        .call(
            "GET",
            "/api/workspaces/acme/usage",
            Auth::Bearer(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{usage}");
    let cached = usage["cached_bytes"].as_u64().expect("cached_bytes");
    assert!(cached > 0, "{usage}");
    assert_eq!(
        usage["by_repository"]["hub"].as_u64(),
        Some(cached),
        "{usage}"
    );
    assert!(
        usage["total_bytes"].as_u64().expect("total") > cached,
        "{usage}"
    );
    let (status, manifest) = server
        .call("GET", "/npm/acme/right/2.0.0", Auth::Bearer(&bob), None)
        .await;
    assert_eq!(
        (status, manifest["version"].as_str()),
        (StatusCode::OK, Some("2.0.0"))
    );
    let (status, tags) = server
        .call(
            "GET",
            "/npm/acme/-/package/right/dist-tags",
            Auth::Bearer(&bob),
            None,
        )
        .await;
    assert_eq!((status, tags), (StatusCode::OK, json!({"latest": "2.1.0"})));
    for token in [&carol, &alice] {
        for path in ["/npm/acme/right", "/npm/acme/right/-/right-2.1.0.tgz"] {
            let (status, _) = server.call("GET", path, Auth::Bearer(token), None).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        }
    }
    let (status, _) = server
        .call("GET", "/npm/acme/right", Auth::None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Nobody publishes into a proxied name, not even hub's admin.
    let tarball = tarball_with("right", "3.0.0", json!({}));
    let (status, body) = server
        .call(
            "PUT",
            "/npm/acme/right",
            Auth::Bearer(&bob),
            Some(publish_document("right", "3.0.0", &tarball)),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.to_string().contains("proxied"), "{body}");

    // A name no upstream has is simply not found.
    let (status, _) = server
        .call("GET", "/npm/acme/nowhere", Auth::Bearer(&bob), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// A hand-made upstream: `good` and `bad` (whose tarball is not the bytes its integrity
/// names), counting tarball and document requests (apart) and answering them slowly, so
/// first pulls overlap.
async fn counting_upstream() -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let good = tarball_with("good", "1.0.0", json!({}));
    let bad = tarball_with("bad", "1.0.0", json!({}));
    let served = tarball_with("bad", "1.0.0", json!({"evil": "1.0.0"}));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let document = |name: &str, bytes: &[u8]| {
        json!({
            "name": name,
            "dist-tags": {"latest": "1.0.0"},
            "versions": {"1.0.0": {
                "name": name, "version": "1.0.0",
                "dist": {
                    "tarball": format!("{base}/{name}/-/{name}-1.0.0.tgz"),
                    "integrity": integrity(bytes),
                    "shasum": shasum(bytes),
                },
            }},
        })
    };
    let (good_document, bad_document) = (document("good", &good), document("bad", &bad));
    let hits = Arc::new(AtomicUsize::new(0));
    let slowly = |bytes: Vec<u8>| {
        move |State(hits): State<Arc<AtomicUsize>>| {
            let bytes = bytes.clone();
            async move {
                hits.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                bytes
            }
        }
    };
    let documents = Arc::new(AtomicUsize::new(0));
    let slow_document = |document: Value, counter: Arc<AtomicUsize>| {
        move || {
            let (document, counter) = (document.clone(), Arc::clone(&counter));
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                axum::Json(document)
            }
        }
    };
    let router = Router::new()
        .route(
            "/good",
            get(slow_document(good_document, Arc::clone(&documents))),
        )
        .route(
            "/bad",
            get(slow_document(bad_document, Arc::clone(&documents))),
        )
        .route("/good/-/good-1.0.0.tgz", get(slowly(good)))
        .route("/bad/-/bad-1.0.0.tgz", get(slowly(served)))
        .with_state(Arc::clone(&hits));
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    (base, hits, documents)
}

async fn bytes_unlike_their_integrity_are_refused_and_ten_first_pulls_make_one_fetch(
    stores: Stores,
) {
    let (base, hits, documents) = counting_upstream().await;
    let server = Arc::new(proxy(stores).await);
    attach(&server, &format!("{base}/"), None).await;
    let bob = grant(&server, "hub", "bob", "read").await;
    // Ten first requests of a name the workspace does not have: one upstream request.
    let outcomes = race(10, |_| {
        let server = Arc::clone(&server);
        let bob = bob.clone();
        async move {
            server
                .request("GET", "/npm/acme/good", Auth::Bearer(&bob), None)
                .await
                .status()
        }
    })
    .await;
    assert!(
        outcomes.iter().all(|status| *status == StatusCode::OK),
        "{outcomes:?}"
    );
    assert_eq!(documents.load(Ordering::SeqCst), 1, "one document fetch");
    let (status, body) = server
        .call("GET", "/npm/acme/bad", Auth::Bearer(&bob), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let objects_before = server.stores.object_count().await;
    let (status, body) = server
        .call(
            "GET",
            "/npm/acme/bad/-/bad-1.0.0.tgz",
            Auth::Bearer(&bob),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(
        body["error"].as_str().unwrap_or("").contains("integrity"),
        "{body}"
    );
    assert_eq!(
        server.stores.object_count().await,
        objects_before,
        "nothing of the refused tarball is kept"
    );
    let (_, listed) = server
        .call(
            "GET",
            "/api/workspaces/acme/packages/npm/bad",
            Auth::Bearer(&bob),
            None,
        )
        .await;
    assert_eq!(listed["versions"], json!([]), "{listed}");

    hits.store(0, Ordering::SeqCst);
    let outcomes = race(10, |_| {
        let server = Arc::clone(&server);
        let bob = bob.clone();
        async move {
            server
                .request(
                    "GET",
                    "/npm/acme/good/-/good-1.0.0.tgz",
                    Auth::Bearer(&bob),
                    None,
                )
                .await
                .status()
        }
    })
    .await;
    assert!(
        outcomes
            .iter()
            .all(|status| *status == StatusCode::TEMPORARY_REDIRECT),
        "{outcomes:?}"
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "one upstream request for ten first pulls"
    );
    let (_, listed) = server
        .call(
            "GET",
            "/api/workspaces/acme/packages/npm/good",
            Auth::Bearer(&bob),
            None,
        )
        .await;
    assert_eq!(
        listed["versions"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
}

async fn purge(server: &TestServer) -> Vec<String> {
    server
        .registry
        .purge(&stowage_purge::Content, std::time::Duration::from_secs(120))
        .await
        .expect("purge")
        .purged
}

async fn unused_cached_packages_are_evicted_but_bytes_a_local_package_uses_stay(stores: Stores) {
    let (base, _, _) = counting_upstream().await;
    let server = proxy(stores).await;
    attach(&server, &format!("{base}/"), None).await;
    let bob = grant(&server, "hub", "bob", "read").await;
    let alice = grant(&server, "own", "alice", "admin").await;
    for name in ["good", "bad"] {
        let (status, _) = server
            .call(
                "GET",
                &format!("/npm/acme/{name}"),
                Auth::Bearer(&bob),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, _) = server
        .call(
            "GET",
            "/npm/acme/good/-/good-1.0.0.tgz",
            Auth::Bearer(&bob),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::TEMPORARY_REDIRECT);
    // Alice publishes the very same bytes as a package of her own.
    create_package(&server, &alice, "own", "mine").await;
    let same = tarball_with("good", "1.0.0", json!({}));
    let (status, body) = server
        .call(
            "PUT",
            "/npm/acme/mine",
            Auth::Bearer(&alice),
            Some(publish_document("mine", "1.0.0", &same)),
        )
        .await;
    assert!(status.is_success(), "{body}");

    // `good` is read again after 20 days; `bad` never.
    server.clock.advance(chrono::Duration::days(20));
    let (status, _) = server
        .call("GET", "/npm/acme/good", Auth::Bearer(&bob), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    server.clock.advance(chrono::Duration::days(11));
    let evicted = purge(&server).await;
    assert_eq!(
        evicted,
        vec!["cache/acme/npm/bad".to_owned()],
        "{evicted:?}"
    );
    let package = |name: &'static str| {
        let server = &server;
        async move {
            server
                .call(
                    "GET",
                    &format!("/api/workspaces/acme/packages/npm/{name}"),
                    Auth::Bearer(ADMIN_TOKEN),
                    None,
                )
                .await
                .0
        }
    };
    assert_eq!(package("bad").await, StatusCode::NOT_FOUND);
    assert_eq!(package("good").await, StatusCode::OK);

    // Thirty days after its last read, `good` goes too; the bytes Alice's package uses stay.
    server.clock.advance(chrono::Duration::days(20));
    let evicted = purge(&server).await;
    assert_eq!(
        evicted,
        vec!["cache/acme/npm/good".to_owned()],
        "{evicted:?}"
    );
    assert_eq!(package("good").await, StatusCode::NOT_FOUND);
    server.clock.advance(chrono::Duration::days(1));
    purge(&server).await;
    let response = server
        .request(
            "GET",
            "/npm/acme/mine/-/mine-1.0.0.tgz",
            Auth::Bearer(&alice),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT);
    let location = response.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let bytes = server
        .client
        .get(&location)
        .send()
        .await
        .expect("download")
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(&bytes[..], &same[..]);
    // And an evicted package is fetched again when asked for.
    let (status, _) = server
        .call("GET", "/npm/acme/good", Auth::Bearer(&bob), None)
        .await;
    assert_eq!(status, StatusCode::OK);
}

/// An upstream that has every name asked for (an npm document naming it, or any file),
/// counting the requests.
async fn upstream_of_everything() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let answer = |State(hits): State<Arc<AtomicUsize>>, uri: http::Uri| async move {
        hits.fetch_add(1, Ordering::SeqCst);
        let name = uri.path().trim_start_matches('/').replace("%2f", "/");
        axum::Json(json!({"name": name, "dist-tags": {}, "versions": {}}))
    };
    let router = Router::new().fallback(answer).with_state(Arc::clone(&hits));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}/", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    (base, hits)
}

async fn names_in_a_namespace_the_workspace_declares_private_never_come_from_upstreams(
    stores: Stores,
) {
    let (base, hits) = upstream_of_everything().await;
    let server = proxy(stores).await;
    attach(&server, &base, None).await;
    upstreams::attach(&server, "hub", json!({"type": "maven", "url": base})).await;
    let bob = grant(&server, "hub", "bob", "read").await;

    // Only a workspace admin declares them, and only well-formed ones.
    let declare = |token: String, body: Value| {
        let server = &server;
        async move {
            server
                .call(
                    "PATCH",
                    "/api/workspaces/acme",
                    Auth::Bearer(&token),
                    Some(body),
                )
                .await
        }
    };
    let (status, _) = declare(bob.clone(), json!({"private_namespaces": ["@acme"]})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for bad in [
        json!({"private_namespaces": ["@Acme"]}),
        json!({"private_namespaces": ["com..acme"]}),
        json!({"private_namespaces": "@acme"}),
        json!({"private_namespace": ["@acme"]}),
    ] {
        let (status, body) = declare(ADMIN_TOKEN.to_owned(), bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body.to_string().contains("private_namespace"), "{body}");
    }
    let (_, workspace) = server
        .call(
            "GET",
            "/api/workspaces/acme",
            Auth::Bearer(ADMIN_TOKEN),
            None,
        )
        .await;
    assert!(workspace.get("private_namespaces").is_none(), "{workspace}");
    assert_eq!(hits.load(Ordering::SeqCst), 0);

    let (status, workspace) = declare(
        ADMIN_TOKEN.to_owned(),
        json!({"private_namespaces": ["com.acme", "@acme", "@acme"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{workspace}");
    assert_eq!(
        workspace["private_namespaces"],
        json!(["@acme", "com.acme"])
    );

    // Their names are never asked of an upstream; other names are.
    for path in [
        "/npm/acme/@acme%2finternal",
        "/maven/acme/com/acme/lib/1.0/lib-1.0.pom",
        "/maven/acme/com/acme/tools/cli/1.0/cli-1.0.pom",
    ] {
        let (status, body) = server.call("GET", path, Auth::Bearer(&bob), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0, "no upstream was asked");
    let (status, body) = server
        .call("GET", "/npm/acme/@acmecorp%2flib", Auth::Bearer(&bob), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    let (_, audit) = server
        .call(
            "GET",
            "/api/workspaces/acme/audit",
            Auth::Bearer(ADMIN_TOKEN),
            None,
        )
        .await;
    assert!(
        audit
            .to_string()
            .contains("private namespaces [@acme, com.acme]"),
        "{audit}"
    );
}

/// On AWS with the upload service (emulated: the front's rule, Lambda's limits), the Lambda
/// hands a tarball miss over to the upload service: npm installs through the redirect, and the
/// URL it follows is bound to the workspace it was made for.
async fn on_aws_a_tarball_miss_is_fetched_by_the_upload_service(stores: Stores) {
    if !available(&["npm"]) {
        return;
    }
    let (base, hits, _) = counting_upstream().await;
    let server = TestServer::emulating_aws_with(stores, true, loopback_upstreams()).await;
    workspace(&server, &["hub"]).await;
    attach(&server, &format!("{base}/"), None).await;
    let bob = grant(&server, "hub", "bob", "read").await;

    let (status, _) = server
        .call("GET", "/npm/acme/good", Auth::Bearer(&bob), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let handed_over = server
        .request(
            "GET",
            "/npm/acme/good/-/good-1.0.0.tgz",
            Auth::Bearer(&bob),
            None,
        )
        .await;
    let location = handed_over_to(&handed_over, "/npm/acme");
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the Lambda fetched nothing");
    assert_refused_elsewhere(&server.url, &location, "/npm/acme/", "/npm/other/").await;

    let user = NpmUser::new(&server, &bob);
    let work = tempfile::tempdir().expect("work");
    let app = app_dir(work.path(), json!({ "good": "1.0.0" }));
    run_in(&user, &app, &["install"]).await.ok("npm install");
    assert_eq!(installed_version(&app, "good"), "1.0.0");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "fetched once, by the upload service"
    );
}
