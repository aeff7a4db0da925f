//! The AWS deployment's shape on one machine (`stowage-local --emulate-aws`): real clients
//! push and fetch what a Lambda cannot take in one request, through the front's routing rule,
//! to the upload service; without the upload service each fails with API Gateway's 413. And
//! the upload URLs' capabilities: bound to their session, image and time, never logged.

use std::path::Path;

use serde_json::json;
use stowage_tests::clients::{LocalServer, available, run};
use stowage_tests::oci::{OCI_MANIFEST, RegistryClient, image, random_bytes, sha256, write_layout};
use stowage_tests::{Stores, TestServer, on_both_backends};

use crate::maven_clients::{application, library, mvn, settings};
use crate::npm_clients::{NpmUser, app_dir, package_dir, run_in};

on_both_backends!(
    skopeo_pushes_and_pulls_a_200_mib_layer,
    an_upload_continues_on_another_task,
    npm_publishes_and_installs_a_20_mib_tarball,
    mvn_deploys_and_resolves_a_50_mib_jar,
    upload_capabilities_are_bound_to_their_session_image_and_time,
    a_blob_that_does_not_match_its_digest_is_refused_on_the_upload_host
);

const MIB: usize = 1024 * 1024;
/// What API Gateway answers when a request cannot reach the function.
const TOO_LARGE: &str = "413";

/// New, empty stores of the same kind as `stores`.
async fn fresh(stores: &Stores) -> Stores {
    Stores::new(stores.backend).await.expect("stores")
}

/// A deployment with or without the upload service, with alice and her package.
async fn deployment(
    stores: Stores,
    upload_service: bool,
    kind: &str,
    repository: &str,
    name: &str,
) -> (TestServer, String) {
    let server = TestServer::emulating_aws(stores, upload_service).await;
    let alice = server
        .user_with_token("alice", &["read:package", "write:package"])
        .await;
    server.package(&alice, "acme", repository, kind, name).await;
    (server, alice)
}

async fn skopeo_copy(authfile: &str, from: &str, to: &str) -> stowage_tests::clients::Run {
    run(
        "skopeo",
        &[
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--authfile",
            authfile,
            from,
            to,
        ],
        &[],
    )
    .await
}

async fn skopeo_login(authfile: &str, host: &str, token: &str) {
    run(
        "skopeo",
        &[
            "login",
            "--tls-verify=false",
            "--authfile",
            authfile,
            "-u",
            "alice",
            "-p",
            token,
            host,
        ],
        &[],
    )
    .await
    .ok("skopeo login");
}

async fn skopeo_pushes_and_pulls_a_200_mib_layer(stores: Stores) {
    if !available(&["skopeo"]) {
        return;
    }
    let work = tempfile::tempdir().expect("folder");
    let authfile = work.path().join("auth.json");
    let authfile = authfile.to_str().expect("path");
    let img = image(&[200 * MIB], "amd64", OCI_MANIFEST);
    write_layout(&work.path().join("layout"), &img, "1.0");
    let source = format!("oci:{}:1.0", work.path().join("layout").display());

    // Without the upload service the layer cannot go through a Lambda.
    let (server, alice) = deployment(
        fresh(&stores).await,
        false,
        "container",
        "api",
        "api/server",
    )
    .await;
    let host = server.url.trim_start_matches("http://").to_owned();
    skopeo_login(authfile, &host, &alice).await;
    let refused = skopeo_copy(
        authfile,
        &source,
        &format!("docker://{host}/acme/api/server:1.0"),
    )
    .await;
    assert!(!refused.success, "{}", refused.stdout);
    assert!(refused.stderr.contains(TOO_LARGE), "{}", refused.stderr);
    drop(server);

    let (server, alice) = deployment(stores, true, "container", "api", "api/server").await;
    let host = server.url.trim_start_matches("http://").to_owned();
    skopeo_login(authfile, &host, &alice).await;
    let dest = format!("docker://{host}/acme/api/server:1.0");
    skopeo_copy(authfile, &source, &dest)
        .await
        .ok("skopeo push through the upload service");
    let pulled = work.path().join("pulled");
    skopeo_copy(authfile, &dest, &format!("oci:{}:1.0", pulled.display()))
        .await
        .ok("skopeo pull");
    let layer = pulled
        .join("blobs/sha256")
        .join(sha256(&img.layers[0]).trim_start_matches("sha256:"));
    assert_eq!(
        std::fs::metadata(&layer).expect("the pulled layer").len(),
        img.layers[0].len() as u64
    );
}

/// buildah and podman (containers/image, like skopeo, so on the embedded pair alone: the other
/// adds nothing the skopeo test does not show) push images with a 200 MiB layer each through
/// the upload service, and podman pulls one back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn buildah_and_podman_push_200_mib_layers() {
    if !available(&["buildah", "podman", "skopeo"]) {
        return;
    }
    let stores = Stores::new(stowage_tests::Backend::Embedded)
        .await
        .expect("stores");
    let (server, alice) = deployment(stores, true, "container", "api", "api/server").await;
    let host = server.url.trim_start_matches("http://").to_owned();
    let work = tempfile::tempdir().expect("folder");
    let storage = |program: &str| {
        let mut args: Vec<String> = vec![program.into()];
        for (flag, folder) in [("--root", "root"), ("--runroot", "run")] {
            args.push(flag.into());
            args.push(work.path().join(folder).display().to_string());
        }
        args.extend(["--storage-driver".into(), "vfs".into()]);
        args
    };
    let tool = |program: &str, extra: &[&str]| {
        let mut args = storage(program);
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        async move {
            let refs: Vec<&str> = args[1..].iter().map(String::as_str).collect();
            run(&args[0], &refs, &[]).await
        }
    };
    let creds = format!("alice:{alice}");
    for (client, tag) in [("buildah", "buildah"), ("podman", "podman")] {
        let file = work.path().join(format!("{client}.bin"));
        std::fs::write(&file, random_bytes(200 * MIB)).expect("layer file");
        let container = tool("buildah", &["from", "scratch"])
            .await
            .ok("buildah from")
            .stdout
            .trim()
            .to_owned();
        let file = file.display().to_string();
        tool("buildah", &["copy", &container, &file, "/layer.bin"])
            .await
            .ok("buildah copy");
        let image = format!("localhost/big-{client}");
        tool(
            "buildah",
            &["commit", "--format", "oci", &container, &image],
        )
        .await
        .ok("buildah commit");
        std::fs::remove_file(&file).expect("remove the layer file");
        let destination = format!("docker://{host}/acme/api/server:{tag}");
        tool(
            client,
            &[
                "push",
                "--tls-verify=false",
                "--creds",
                &creds,
                &image,
                &destination,
            ],
        )
        .await
        .ok(&format!("{client} push through the upload service"));
    }
    tool(
        "podman",
        &[
            "pull",
            "--tls-verify=false",
            "--creds",
            &creds,
            &format!("docker://{host}/acme/api/server:buildah"),
        ],
    )
    .await
    .ok("podman pull");
    for tag in ["buildah", "podman"] {
        let inspected = run(
            "skopeo",
            &[
                "inspect",
                "--raw",
                "--tls-verify=false",
                "--creds",
                &creds,
                &format!("docker://{host}/acme/api/server:{tag}"),
            ],
            &[],
        )
        .await
        .ok("skopeo inspect");
        let inspected: serde_json::Value = serde_json::from_str(&inspected.stdout).expect("JSON");
        let size = inspected["layers"][0]["size"].as_u64().expect("size");
        assert!(size > 200 * MIB as u64, "{tag}: a layer of {size} bytes");
    }
}

/// An upload whose requests land on different upload service tasks: each task is a registry
/// of its own over the same stores, and the session's state (offset, hash, parts) is in them.
async fn an_upload_continues_on_another_task(stores: Stores) {
    let (server, alice) = deployment(stores, true, "container", "api", "api/server").await;
    let other_task = crate::deployment::serve(stowage_local::app(
        stowage_http::AppState {
            registry: std::sync::Arc::new(stowage_service::Registry::new(
                std::sync::Arc::clone(&server.stores.metadata),
                std::sync::Arc::clone(&server.stores.blobs),
                server.clock.clone(),
                stowage_service::Settings::default(),
            )),
            public_url: None,
            limits: stowage_http::Limits::local(1024 * 1024 * 1024),
        },
        None,
    ))
    .await;
    let client = RegistryClient::new(&server.url, "alice", &alice);
    let blob = random_bytes(14 * MIB + 5);
    let (first, second) = blob.split_at(6 * MIB);
    let location = client.start_upload("acme/api/server").await;
    let http = reqwest::Client::new();
    let patched = http
        .patch(format!("{}{location}", server.url))
        .header("content-range", format!("0-{}", first.len() - 1))
        .body(first.to_vec())
        .send()
        .await
        .expect("PATCH on the first task");
    assert_eq!(patched.status(), 202);
    let location = patched.headers()["location"].to_str().expect("location");
    let finished = http
        .put(format!("{other_task}{location}?digest={}", sha256(&blob)))
        .header(
            "content-range",
            format!("{}-{}", first.len(), blob.len() - 1),
        )
        .body(second.to_vec())
        .send()
        .await
        .expect("PUT on the other task");
    assert_eq!(finished.status(), 201);
    let head = client
        .request(
            "HEAD",
            &format!("/v2/acme/api/server/blobs/{}", sha256(&blob)),
        )
        .send()
        .await
        .expect("HEAD");
    assert_eq!(head.headers()["content-length"], blob.len().to_string());
}

/// A package folder whose tarball holds `size` bytes that do not compress.
fn large_package(root: &Path, version: &str, size: usize) -> std::path::PathBuf {
    let dir = package_dir(root, "@acme/big", version);
    std::fs::write(dir.join("blob.bin"), random_bytes(size)).expect("blob");
    dir
}

async fn npm_publishes_and_installs_a_20_mib_tarball(stores: Stores) {
    if !available(&["npm"]) {
        return;
    }
    let work = tempfile::tempdir().expect("work");

    let (server, alice) = deployment(fresh(&stores).await, false, "npm", "web", "@acme/big").await;
    let refused = run_in(
        &NpmUser::new(&server, &alice),
        &large_package(work.path(), "1.0.0", 20 * MIB),
        &["publish"],
    )
    .await;
    assert!(!refused.success);
    assert!(refused.stderr.contains(TOO_LARGE), "{}", refused.stderr);
    drop(server);

    let (server, alice) = deployment(stores, true, "npm", "web", "@acme/big").await;
    let user = NpmUser::new(&server, &alice);
    run_in(
        &user,
        &large_package(work.path(), "2.0.0", 20 * MIB),
        &["publish"],
    )
    .await
    .ok("npm publish through the upload service");
    let app = app_dir(work.path(), json!({ "@acme/big": "2.0.0" }));
    run_in(&user, &app, &["install"]).await.ok("npm install");
    let installed = app.join("node_modules/@acme/big/blob.bin");
    assert_eq!(
        std::fs::metadata(installed).expect("installed").len(),
        20 * MIB as u64
    );
}

/// The library with a resource of `size` random bytes, so its jar is about as large.
fn large_library(dir: &Path, registry: &str, version: &str, size: usize) {
    library(dir, registry, version);
    let resources = dir.join("src/main/resources");
    std::fs::create_dir_all(&resources).expect("resources");
    std::fs::write(resources.join("blob.bin"), random_bytes(size)).expect("blob");
}

async fn mvn_deploys_and_resolves_a_50_mib_jar(stores: Stores) {
    if !available(&["mvn", "java"]) {
        return;
    }
    let work = tempfile::tempdir().expect("work");

    let (server, alice) =
        deployment(fresh(&stores).await, false, "maven", "libs", "com.acme:lib").await;
    let registry = format!("{}/maven/acme/", server.url);
    let lib = work.path().join("refused");
    large_library(&lib, &registry, "1.0", 50 * MIB);
    let refused = mvn(
        &lib,
        &settings(work.path(), &work.path().join("m2-a"), &alice),
        "deploy",
    )
    .await;
    assert!(!refused.success);
    assert!(refused.stdout.contains(TOO_LARGE), "{}", refused.stdout);
    drop(server);

    let (server, alice) = deployment(stores, true, "maven", "libs", "com.acme:lib").await;
    let registry = format!("{}/maven/acme/", server.url);
    let lib = work.path().join("lib");
    large_library(&lib, &registry, "1.0", 50 * MIB);
    mvn(
        &lib,
        &settings(work.path(), &work.path().join("m2-b"), &alice),
        "deploy",
    )
    .await
    .ok("mvn deploy through the upload service");
    let app = work.path().join("app");
    application(&app, &registry, "1.0");
    let local = work.path().join("m2-fresh");
    mvn(&app, &settings(work.path(), &local, &alice), "package")
        .await
        .ok("mvn package (resolve)");
    let jar = local.join("com/acme/lib/1.0/lib-1.0.jar");
    assert!(
        std::fs::metadata(&jar).expect("the resolved jar").len() > 50 * MIB as u64,
        "the jar holds its 50 MiB resource"
    );
}

/// `location` with its capability's payload replaced by `edit` of it, signature kept.
fn forged(location: &str, edit: impl Fn(&mut serde_json::Value)) -> String {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (path, last) = location.rsplit_once('/').expect("segments");
    let token = last.strip_prefix("stwup_").expect("a capability");
    let (payload, signature) = token.split_once('.').expect("payload.signature");
    let mut claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64")).expect("json");
    edit(&mut claims);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{path}/stwup_{payload}.{signature}")
}

async fn upload_capabilities_are_bound_to_their_session_image_and_time(stores: Stores) {
    let (server, alice) = deployment(stores, true, "container", "api", "api/server").await;
    server
        .package(&alice, "acme", "web", "container", "web/site")
        .await;
    let client = RegistryClient::new(&server.url, "alice", &alice);
    let anonymous = reqwest::Client::new();
    let blob = random_bytes(1000);
    let digest = sha256(&blob);
    let put = |location: String, auth: Option<&'static str>| {
        let mut request = anonymous
            .put(format!("{}{location}?digest={digest}", server.url))
            .body(blob.clone());
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        request.send()
    };

    // Another session's id, another image, or an altered expiry: refused.
    let location = client.start_upload("acme/api/server").await;
    let other = client.start_upload("acme/api/server").await;
    let other_session = stowage_tests::oci::upload_session(&other);
    for (what, forgery) in [
        (
            "another session",
            forged(&location, |c| c["session"] = json!(other_session)),
        ),
        (
            "a later expiry",
            forged(&location, |c| c["expires"] = json!(i64::MAX / 2)),
        ),
        (
            "another image",
            location.replace("acme/api/server", "acme/web/site"),
        ),
    ] {
        let response = put(forgery, None).await.expect("PUT");
        assert_eq!(response.status(), 401, "{what}");
    }

    // The genuine URL needs nothing else, whatever Authorization says.
    let response = put(location, Some("Bearer not-a-token"))
        .await
        .expect("PUT");
    assert_eq!(response.status(), 201);
    assert_eq!(
        client
            .request("HEAD", &format!("/v2/acme/api/server/blobs/{digest}"))
            .send()
            .await
            .expect("HEAD")
            .status(),
        200
    );

    // Unused for longer than its lifetime, it has expired.
    let location = client.start_upload("acme/api/server").await;
    server.clock.advance(chrono::Duration::seconds(
        stowage_oci::UPLOAD_CAPABILITY_SECONDS + 1,
    ));
    let response = put(location, None).await.expect("PUT");
    assert_eq!(response.status(), 401);
    let body = response.text().await.expect("body");
    assert!(body.contains("expired"), "{body}");
}

async fn a_blob_that_does_not_match_its_digest_is_refused_on_the_upload_host(stores: Stores) {
    let (server, alice) = deployment(stores, true, "container", "api", "api/server").await;
    let client = RegistryClient::new(&server.url, "alice", &alice);
    let objects_before = server.stores.object_count().await;
    let blob = random_bytes(3 * MIB);
    let claimed = sha256(b"something else");
    let location = client.start_upload("acme/api/server").await;
    let response = reqwest::Client::new()
        .put(format!("{}{location}?digest={claimed}", server.url))
        .body(blob)
        .send()
        .await
        .expect("PUT");
    assert_eq!(response.status(), 400);
    assert!(
        response
            .text()
            .await
            .expect("body")
            .contains("DIGEST_INVALID")
    );
    assert_eq!(
        client
            .request("HEAD", &format!("/v2/acme/api/server/blobs/{claimed}"))
            .send()
            .await
            .expect("HEAD")
            .status(),
        404
    );
    assert_eq!(
        server.settled_object_count(objects_before).await,
        objects_before
    );
}

/// The real binary, emulating the deployment: a push through the upload service leaves no
/// capability in its log.
#[tokio::test]
async fn upload_capabilities_never_reach_the_log() {
    let Some(server) = LocalServer::start_with_json_logs_and(&["--emulate-aws"]).await else {
        return;
    };
    server
        .create_package("acme", "api", "container", "api/server")
        .await;
    let client = RegistryClient::new(&server.url, "admin", &server.admin_token);
    let blob = random_bytes(2 * MIB);
    let location = client.start_upload("acme/api/server").await;
    let token = location
        .rsplit_once("stwup_")
        .expect("a capability")
        .1
        .to_owned();
    let pushed = reqwest::Client::new()
        .put(format!("{}{location}?digest={}", server.url, sha256(&blob)))
        .body(blob)
        .send()
        .await
        .expect("PUT");
    assert_eq!(pushed.status(), 201);
    let log = std::fs::read_to_string(server.log_file()).expect("log");
    assert!(
        log.contains("blobs/uploads/stwup_"),
        "the upload was logged"
    );
    let signature = token.split('.').nth(1).expect("signature");
    assert!(!log.contains(signature), "a capability reached the log");
}
