//! Containers through upstreams, on both storage pairs: Debian's `docker-registry` (CNCF
//! Distribution) is the upstream, filled by the test; skopeo and podman pull through the proxy
//! by tag and digest, then again once the upstream is gone. Its access log counts the
//! requests the proxy makes, and a blob corrupted in its storage shows what a lying upstream
//! gets.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::Path as UrlPath;
use axum::routing::get;
use futures_util::StreamExt;
use futures_util::future::join_all;
use http::StatusCode;
use serde_json::{Value, json};
use stowage_http::Limits;
use stowage_service::Settings;
use stowage_tests::clients::{LocalServer, available, run};
use stowage_tests::oci::{Image, OCI_MANIFEST, RegistryClient, image, sha256, write_layout};
use stowage_tests::upstreams::{
    assert_refused_elsewhere, attach, handed_over_to, loopback_upstreams, member, workspace,
};
use stowage_tests::{
    ADMIN_TOKEN, Auth, Stores, TestServer, follow_redirect, on_both_backends, usage_of,
};

on_both_backends!(
    skopeo_and_podman_pull_through_the_proxy_and_again_once_the_upstream_is_gone,
    blobs_unlike_their_digest_are_refused_and_ten_first_pulls_make_one_fetch,
    an_upstream_that_wants_a_token_is_pulled_from_with_its_credentials,
    on_aws_a_layer_missed_by_a_lambda_streams_from_the_upload_service,
    a_long_fetch_keeps_its_marker_and_others_wait_for_it,
);

/// A `docker-registry` process on a free loopback port, its storage and log in a folder.
struct Upstream {
    url: String,
    dir: tempfile::TempDir,
    process: tokio::process::Child,
}

impl Upstream {
    async fn start() -> Option<Upstream> {
        if !available(&["docker-registry"]) {
            return None;
        }
        let dir = tempfile::tempdir().expect("folder");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("a free port")
            .local_addr()
            .expect("address")
            .port();
        let config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("storage").display()
        );
        let config_file = dir.path().join("config.yml");
        std::fs::write(&config_file, config).expect("config");
        let log = std::fs::File::create(dir.path().join("log")).expect("log");
        let process = tokio::process::Command::new("docker-registry")
            .arg("serve")
            .arg(&config_file)
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .expect("docker-registry starts");
        let url = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if reqwest::get(format!("{url}/v2/")).await.is_ok() {
                return Some(Upstream { url, dir, process });
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("docker-registry did not start");
    }

    /// Pushes `image` as `name:tag`, with skopeo.
    async fn push(&self, name: &str, tag: &str, image: &Image) {
        let layout = tempfile::tempdir().expect("folder");
        write_layout(layout.path(), image, tag);
        let host = self.url.trim_start_matches("http://");
        run(
            "skopeo",
            &[
                "copy",
                "--dest-tls-verify=false",
                &format!("oci:{}:{tag}", layout.path().display()),
                &format!("docker://{host}/{name}:{tag}"),
            ],
            &[],
        )
        .await
        .ok("skopeo copy to the upstream");
    }

    /// How many requests of `method path` its access log shows.
    fn requests(&self, method: &str, path: &str) -> usize {
        let log = std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default();
        let wanted = format!("\"{method} {path} ");
        log.lines().filter(|line| line.contains(&wanted)).count()
    }

    /// The file a blob is kept in.
    fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    async fn stop(&mut self) {
        self.process.kill().await.expect("stopped");
    }
}

/// A proxy: workspace `acme` with repository `hub` (bob reads it) whose container upstream is
/// `upstream`, and repository `own` (carol reads it). Tags are fetched again on every pull
/// (a TTL of 0), so a pull after the upstream is gone shows the stale copy being served.
async fn proxy(stores: Stores, upstream: &str) -> (TestServer, String, String) {
    proxy_with(stores, json!({"type": "container", "url": upstream})).await
}

fn settings() -> Settings {
    Settings {
        upstream_ttl: chrono::Duration::zero(),
        ..loopback_upstreams()
    }
}

/// [`proxy`] with the upstream `attached` (its URL and credentials).
async fn proxy_with(stores: Stores, attached: Value) -> (TestServer, String, String) {
    let server = TestServer::start_with(stores, settings(), Limits::local(64 * 1024 * 1024)).await;
    set_up(server, attached).await
}

/// Workspace `acme` on `server`, as [`proxy`] describes it.
async fn set_up(server: TestServer, attached: Value) -> (TestServer, String, String) {
    workspace(&server, &["hub", "own"]).await;
    attach(&server, "hub", attached).await;
    let bob = member(&server, "hub", "bob", "read").await;
    let carol = member(&server, "own", "carol", "read").await;
    (server, bob, carol)
}

/// `skopeo copy` of `reference` through the proxy into an OCI layout at `dir`; the digest of
/// the manifest it wrote.
async fn skopeo_pull(server: &TestServer, token: &str, reference: &str, dir: &Path) -> String {
    let host = server.url.trim_start_matches("http://");
    let source = format!("docker://{host}/acme/hub/{reference}");
    let target = format!("oci:{}:pulled", dir.display());
    run(
        "skopeo",
        &[
            "copy",
            "--src-tls-verify=false",
            "--src-creds",
            &format!("bob:{token}"),
            &source,
            &target,
        ],
        &[],
    )
    .await
    .ok(&format!("skopeo copy {source}"));
    let index = std::fs::read_to_string(dir.join("index.json")).expect("index.json");
    let index: Value = serde_json::from_str(&index).expect("index JSON");
    index["manifests"][0]["digest"]
        .as_str()
        .expect("digest")
        .to_owned()
}

/// `podman pull` of `reference` through the proxy into its own storage under `root`; the
/// image's id.
async fn podman_pull(server: &TestServer, token: &str, reference: &str, root: &Path) -> String {
    let host = server.url.trim_start_matches("http://");
    let source = format!("docker://{host}/acme/hub/{reference}");
    let storage = root.join("storage");
    let runroot = root.join("run");
    let pulled = run(
        "podman",
        &[
            "--root",
            storage.to_str().expect("path"),
            "--runroot",
            runroot.to_str().expect("path"),
            "--storage-driver",
            "vfs",
            "pull",
            "--quiet",
            "--tls-verify=false",
            "--creds",
            &format!("bob:{token}"),
            &source,
        ],
        &[],
    )
    .await
    .ok(&format!("podman pull {source}"));
    pulled.stdout.trim().to_owned()
}

async fn skopeo_and_podman_pull_through_the_proxy_and_again_once_the_upstream_is_gone(
    stores: Stores,
) {
    if !available(&["skopeo", "podman"]) {
        return;
    }
    let Some(mut upstream) = Upstream::start().await else {
        return;
    };
    let app = image(&[3000, 200_000], "amd64", OCI_MANIFEST);
    upstream.push("library/app", "1.0", &app).await;
    let (server, bob, carol) = proxy(stores, &upstream.url).await;
    let work = tempfile::tempdir().expect("folder");
    let digest = app.digest();

    let by_tag = skopeo_pull(&server, &bob, "library/app:1.0", &work.path().join("a")).await;
    assert_eq!(by_tag, digest, "the upstream's manifest, byte for byte");
    let by_digest = skopeo_pull(
        &server,
        &bob,
        &format!("library/app@{digest}"),
        &work.path().join("b"),
    )
    .await;
    assert_eq!(by_digest, digest);
    for blob in app.blobs() {
        let kept = work
            .path()
            .join("b/blobs/sha256")
            .join(&sha256(blob)["sha256:".len()..]);
        assert_eq!(&std::fs::read(kept).expect("blob"), blob);
    }
    let image_id = podman_pull(&server, &bob, "library/app:1.0", &work.path().join("p")).await;
    assert!(!image_id.is_empty(), "podman names the image it pulled");
    for blob in app.blobs() {
        let path = format!("/v2/library/app/blobs/{}", sha256(blob));
        assert_eq!(upstream.requests("GET", &path), 1, "{path} fetched once");
    }

    // The image is a package of `hub`: its readers see it, others do not.
    let (status, listed) = server
        .call(
            "GET",
            "/api/workspaces/acme/packages/container/hub%2Flibrary%2Fapp",
            Auth::Bearer(&bob),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["repository"], "hub");
    let carols = RegistryClient::new(&server.url, "carol", &carol);
    for path in [
        "/v2/acme/hub/library/app/manifests/1.0",
        &format!("/v2/acme/hub/library/app/manifests/{digest}"),
    ] {
        assert_eq!(
            carols.get(path).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }

    // The upstream goes away; the tag is stale (TTL 0) and its copy is served.
    upstream.stop().await;
    let again = skopeo_pull(&server, &bob, "library/app:1.0", &work.path().join("c")).await;
    assert_eq!(again, digest);
    let again = skopeo_pull(
        &server,
        &bob,
        &format!("library/app@{digest}"),
        &work.path().join("d"),
    )
    .await;
    assert_eq!(again, digest);
    let image_id_again =
        podman_pull(&server, &bob, "library/app:1.0", &work.path().join("q")).await;
    assert_eq!(image_id_again, image_id);

    // What the upstream never served is not there.
    let bobs = RegistryClient::new(&server.url, "bob", &bob);
    let missing = bobs.get("/v2/acme/hub/library/app/manifests/2.0").await;
    assert!(
        missing.status() == StatusCode::BAD_GATEWAY || missing.status() == StatusCode::NOT_FOUND,
        "{}",
        missing.status()
    );
}

/// GETs `path` through the proxy as bob, following a redirect: the digest of what came, or
/// why nothing did (an error status, a body that broke off).
async fn pull_blob(server: &TestServer, bob: &str, path: &str) -> Result<String, String> {
    let response = RegistryClient::new(&server.url, "bob", bob).get(path).await;
    let status = response.status();
    if status.is_redirection() {
        return Ok(sha256(&follow_redirect(response).await));
    }
    if !status.is_success() {
        return Err(format!(
            "{status}: {}",
            response.text().await.unwrap_or_default()
        ));
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|error| format!("the body broke off: {error}"))?;
    Ok(sha256(&bytes))
}

async fn blobs_unlike_their_digest_are_refused_and_ten_first_pulls_make_one_fetch(stores: Stores) {
    if !available(&["skopeo"]) {
        return;
    }
    let Some(upstream) = Upstream::start().await else {
        return;
    };
    let app = image(&[500_000], "amd64", OCI_MANIFEST);
    let lying = image(&[4000], "arm64", OCI_MANIFEST);
    upstream.push("library/app", "1.0", &app).await;
    upstream.push("library/lying", "1.0", &lying).await;
    let (server, bob, _) = proxy(stores, &upstream.url).await;
    let bobs = RegistryClient::new(&server.url, "bob", &bob);
    // Ten first pulls of a manifest by digest: one upstream request.
    let digest = app.digest();
    let path = format!("/v2/acme/hub/library/app/manifests/{digest}");
    let pulls = join_all((0..10).map(|_| bobs.get(&path))).await;
    for pulled in pulls {
        assert_eq!(pulled.status(), StatusCode::OK);
    }
    assert_eq!(
        upstream.requests("GET", &format!("/v2/library/app/manifests/{digest}")),
        1
    );
    // The image is cached now; ten first pulls of another of its manifests: one request too.
    let other = image(&[1000], "arm64", OCI_MANIFEST);
    upstream.push("library/app", "2.0", &other).await;
    let digest = other.digest();
    let path = format!("/v2/acme/hub/library/app/manifests/{digest}");
    let pulls = join_all((0..10).map(|_| bobs.get(&path))).await;
    for pulled in pulls {
        assert_eq!(pulled.status(), StatusCode::OK);
    }
    assert_eq!(
        upstream.requests("GET", &format!("/v2/library/app/manifests/{digest}")),
        1
    );
    let manifest = bobs.get("/v2/acme/hub/library/lying/manifests/1.0").await;
    assert_eq!(manifest.status(), StatusCode::OK);

    // Ten first pulls of one layer at once: one upstream request, ten good copies.
    let layer = sha256(&app.layers[0]);
    let path = format!("/v2/acme/hub/library/app/blobs/{layer}");
    let pulls = join_all((0..10).map(|_| pull_blob(&server, &bob, &path))).await;
    for pulled in pulls {
        assert_eq!(pulled, Ok(layer.clone()));
    }
    let upstream_path = format!("/v2/library/app/blobs/{layer}");
    assert_eq!(upstream.requests("GET", &upstream_path), 1);

    // The upstream's copy of a layer is corrupted: the pull fails, nothing is kept, and the
    // next pull asks the upstream again.
    let stored_before = usage_of(&server, "acme").await.stored_bytes;
    let bad_layer = sha256(&lying.layers[0]);
    let file = upstream.blob_file(&bad_layer);
    let mut bytes = std::fs::read(&file).expect("the upstream's blob");
    bytes[100] ^= 0xff;
    std::fs::write(&file, bytes).expect("corrupted");
    let path = format!("/v2/acme/hub/library/lying/blobs/{bad_layer}");
    for attempt in 1..=2 {
        let pulled = pull_blob(&server, &bob, &path).await;
        assert!(pulled.is_err(), "{attempt}: {pulled:?}");
        let upstream_path = format!("/v2/library/lying/blobs/{bad_layer}");
        assert_eq!(upstream.requests("GET", &upstream_path), attempt);
    }
    assert_eq!(usage_of(&server, "acme").await.stored_bytes, stored_before);
}

/// Another Stowage is the upstream: it answers with a Bearer challenge, and gives a token for
/// the upstream's username and password only.
async fn an_upstream_that_wants_a_token_is_pulled_from_with_its_credentials(stores: Stores) {
    let Some(upstream) = LocalServer::start(&[]).await else {
        return;
    };
    upstream
        .create_package("pub", "main", "container", "tools/app")
        .await;
    let app = image(&[20_000], "amd64", OCI_MANIFEST);
    RegistryClient::new(&upstream.url, "admin", &upstream.admin_token)
        .push_image("pub/tools/app", "2.1", &app)
        .await;
    let anonymous = reqwest::get(format!("{}/v2/pub/tools/app/manifests/2.1", upstream.url))
        .await
        .expect("GET");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    let (server, bob, _) = proxy_with(
        stores,
        json!({
            "type": "container",
            "url": upstream.url,
            "username": "admin",
            "password": upstream.admin_token,
        }),
    )
    .await;
    let bobs = RegistryClient::new(&server.url, "bob", &bob);
    let manifest = bobs.get("/v2/acme/hub/pub/tools/app/manifests/2.1").await;
    assert_eq!(manifest.status(), StatusCode::OK);
    assert_eq!(
        sha256(&manifest.bytes().await.expect("manifest")),
        app.digest()
    );
    for blob in app.blobs() {
        let path = format!("/v2/acme/hub/pub/tools/app/blobs/{}", sha256(blob));
        assert_eq!(pull_blob(&server, &bob, &path).await, Ok(sha256(blob)));
    }

    // The same upstream without credentials, through another repository: it refuses, and
    // the proxy answers 502, saying why.
    let (status, body) = server
        .call(
            "POST",
            "/api/workspaces/acme/repositories",
            Auth::Bearer(ADMIN_TOKEN),
            Some(json!({"slug": "bare"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    attach(
        &server,
        "bare",
        json!({"type": "container", "url": upstream.url}),
    )
    .await;
    let refused = RegistryClient::new(&server.url, "admin", ADMIN_TOKEN)
        .get("/v2/acme/bare/pub/tools/app/manifests/2.1")
        .await;
    assert_eq!(refused.status(), StatusCode::BAD_GATEWAY);
    let body = refused.text().await.expect("body");
    assert!(body.contains("401"), "{body}");
}

/// On AWS with the upload service (emulated: the front's rule, Lambda's limits of 6 MB and
/// 30 s), a layer larger than a Lambda may answer comes through the upload service, to which
/// the Lambda hands the miss.
async fn on_aws_a_layer_missed_by_a_lambda_streams_from_the_upload_service(stores: Stores) {
    if !available(&["skopeo"]) {
        return;
    }
    let Some(upstream) = Upstream::start().await else {
        return;
    };
    let app = image(&[10 * 1024 * 1024], "amd64", OCI_MANIFEST);
    assert!(
        app.layers[0].len() > 6_000_000,
        "more than a Lambda answers"
    );
    upstream.push("library/big", "1.0", &app).await;
    let server = TestServer::emulating_aws_with(stores, true, settings()).await;
    let (server, bob, _) = set_up(server, json!({"type": "container", "url": upstream.url})).await;
    let work = tempfile::tempdir().expect("folder");
    let pulled = skopeo_pull(&server, &bob, "library/big:1.0", &work.path().join("a")).await;
    assert_eq!(pulled, app.digest());
    let layer = sha256(&app.layers[0]);
    let kept = work
        .path()
        .join("a/blobs/sha256")
        .join(&layer["sha256:".len()..]);
    assert_eq!(std::fs::read(kept).expect("layer"), app.layers[0]);
    assert_eq!(
        upstream.requests("GET", &format!("/v2/library/big/blobs/{layer}")),
        1
    );

    // The Lambda's answer to the miss: a redirect to a fetch URL that is its own authority,
    // bound to its workspace.
    let second = image(&[2_000], "arm64", OCI_MANIFEST);
    upstream.push("library/big", "2.0", &second).await;
    let bobs = RegistryClient::new(&server.url, "bob", &bob);
    let manifest = bobs.get("/v2/acme/hub/library/big/manifests/2.0").await;
    assert_eq!(manifest.status(), StatusCode::OK);
    let config = sha256(&second.config);
    let handed_over = bobs
        .get(&format!("/v2/acme/hub/library/big/blobs/{config}"))
        .await;
    let location = handed_over_to(&handed_over, "/v2/acme");
    assert_refused_elsewhere(&server.url, &location, "/v2/acme/", "/v2/other/").await;
    let fetched = reqwest::get(format!("{}{location}", server.url))
        .await
        .expect("GET");
    assert_eq!(fetched.status(), StatusCode::OK);
    assert_eq!(
        &fetched.bytes().await.expect("config")[..],
        &second.config[..]
    );
}

/// A registry holding `lib/slow:1.0` (the image `slow`) whose layer comes slowly (ten chunks
/// over about three seconds), counting the layer's requests.
async fn slow_registry(slow: &Image) -> (String, Arc<AtomicUsize>) {
    let manifest = slow.manifest.clone();
    let config = slow.config.clone();
    let (config_digest, layer) = (sha256(&slow.config), slow.layers[0].clone());
    let layer_requests = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&layer_requests);
    let blob = move |UrlPath(digest): UrlPath<String>| {
        let (config, layer, counted) = (config.clone(), layer.clone(), Arc::clone(&counted));
        let config_digest = config_digest.clone();
        async move {
            if digest == config_digest {
                return Body::from(config);
            }
            counted.fetch_add(1, Ordering::SeqCst);
            let chunks: Vec<Vec<u8>> = layer
                .chunks(layer.len() / 10 + 1)
                .map(<[u8]>::to_vec)
                .collect();
            Body::from_stream(futures_util::stream::iter(chunks).then(|chunk| async move {
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                Ok::<_, std::io::Error>(chunk)
            }))
        }
    };
    let router = Router::new()
        .route(
            "/v2/lib/slow/manifests/1.0",
            get(move || async move { ([("content-type", OCI_MANIFEST)], manifest) }),
        )
        .route("/v2/lib/slow/blobs/{digest}", get(blob));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    (url, layer_requests)
}

/// A fetch that outlasts the time a marker holds (1 s here) renews it: a request that comes
/// meanwhile waits for it instead of fetching again.
async fn a_long_fetch_keeps_its_marker_and_others_wait_for_it(stores: Stores) {
    let slow = image(&[300_000], "amd64", OCI_MANIFEST);
    let (upstream, layer_requests) = slow_registry(&slow).await;
    let settings = Settings {
        upstream_fetch_hold: chrono::Duration::seconds(1),
        ..loopback_upstreams()
    };
    let server = TestServer::start_with(stores, settings, Limits::local(64 * 1024 * 1024)).await;
    let (server, bob, _) = set_up(server, json!({"type": "container", "url": upstream})).await;
    let server = Arc::new(server);
    let manifest = RegistryClient::new(&server.url, "bob", &bob)
        .get("/v2/acme/hub/lib/slow/manifests/1.0")
        .await;
    assert_eq!(manifest.status(), StatusCode::OK);
    let layer = sha256(&slow.layers[0]);
    let path = format!("/v2/acme/hub/lib/slow/blobs/{layer}");
    let first = tokio::spawn({
        let (server, bob, path) = (Arc::clone(&server), bob.clone(), path.clone());
        async move { pull_blob(&server, &bob, &path).await }
    });
    // The marker's first write is now more than its hold old; the fetch renews it.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    server.clock.advance(chrono::Duration::seconds(5));
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let second = pull_blob(&server, &bob, &path).await;
    assert_eq!(first.await.expect("first pull"), Ok(layer.clone()));
    assert_eq!(second, Ok(layer));
    assert_eq!(
        layer_requests.load(Ordering::SeqCst),
        1,
        "one upstream request"
    );
}
