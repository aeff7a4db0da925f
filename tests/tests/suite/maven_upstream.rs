//! Maven through an upstream, on both storage pairs: a static folder, filled by `mvn deploy`
//! and served over HTTP as Maven Central serves its files, is the upstream of repository
//! `hub`; real `mvn` resolves a jar and its parent POM through Stowage, then again with the
//! upstream down. A file whose bytes do not match the upstream's `.sha1` is refused.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::response::IntoResponse;
use axum::routing::get;
use http::StatusCode;
use serde_json::json;
use stowage_tests::clients::{available, run};
use stowage_tests::race::race;
use stowage_tests::upstreams::{
    attach, handed_over_to, loopback_upstreams, member, proxy_server, workspace,
};
use stowage_tests::{ADMIN_TOKEN, Auth, Stores, TestServer, on_both_backends};
use tokio::sync::OnceCell;

use crate::maven_clients::{debian_repository, mvn, settings};

on_both_backends!(
    mvn_resolves_a_jar_and_its_parent_through_the_upstream_and_again_once_it_is_down,
    ten_first_requests_of_an_artifact_the_workspace_lacks_make_one_fetch,
    on_aws_a_file_miss_is_fetched_by_the_upload_service,
);

/// The plugins Debian ships (see maven_clients.rs).
const PLUGINS: &str = r#"<plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-surefire-plugin</artifactId><version>2.22.3</version></plugin>
    <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-compiler-plugin</artifactId><version>3.10.1</version></plugin>
    <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-resources-plugin</artifactId><version>3.3.0</version></plugin>
    <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-jar-plugin</artifactId><version>3.3.0</version></plugin>
    <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-install-plugin</artifactId><version>3.1.0</version></plugin>
    <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-deploy-plugin</artifactId><version>3.0.0</version></plugin>"#;

const PROPERTIES: &str = "<properties><maven.compiler.release>17</maven.compiler.release><project.build.sourceEncoding>UTF-8</project.build.sourceEncoding></properties>";

/// The upstream's folder: `com.up:parent:1.0` (a POM), `com.up:lib:1.0` (a jar whose POM
/// names that parent), and `com.up:bad:1.0`, a jar with a `.sha1` that is not its own. Made
/// once, by `mvn deploy` to a file URL, for both storage pairs.
async fn upstream_folder() -> &'static Path {
    static FOLDER: OnceCell<PathBuf> = OnceCell::const_new();
    FOLDER
        .get_or_init(|| async {
            let work = Box::leak(Box::new(tempfile::tempdir().expect("work")));
            let folder = work.path().join("upstream");
            let deploy = format!("deploy -DaltDeploymentRepository=up::file://{}", folder.display());
            let settings = settings(work.path(), &work.path().join("m2-up"), "unused");

            let parent = work.path().join("parent");
            std::fs::create_dir_all(&parent).expect("parent");
            std::fs::write(
                parent.join("pom.xml"),
                format!(
                    r#"<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
  <groupId>com.up</groupId><artifactId>parent</artifactId><version>1.0</version><packaging>pom</packaging>
  {PROPERTIES}<build><plugins>{PLUGINS}</plugins></build></project>"#
                ),
            )
            .expect("parent pom");
            mvn(&parent, &settings, &deploy).await.ok("mvn deploy (parent)");

            let lib = work.path().join("lib");
            let source = lib.join("src/main/java/com/up");
            std::fs::create_dir_all(&source).expect("sources");
            std::fs::write(
                source.join("Lib.java"),
                "package com.up; public class Lib { public static String hello() { return \"up lib\"; } }\n",
            )
            .expect("Lib.java");
            std::fs::write(
                lib.join("pom.xml"),
                r#"<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
  <parent><groupId>com.up</groupId><artifactId>parent</artifactId><version>1.0</version><relativePath/></parent>
  <artifactId>lib</artifactId></project>"#,
            )
            .expect("lib pom");
            mvn(&lib, &settings, &deploy).await.ok("mvn deploy (lib)");

            let bad = folder.join("com/up/bad/1.0");
            std::fs::create_dir_all(&bad).expect("bad");
            std::fs::copy(folder.join("com/up/lib/1.0/lib-1.0.jar"), bad.join("bad-1.0.jar"))
                .expect("bad jar");
            std::fs::write(bad.join("bad-1.0.jar.sha1"), "0".repeat(40)).expect("bad sha1");
            folder
        })
        .await
}

/// Serves `folder` over HTTP as a Maven repository does, counting requests; `down` makes it
/// answer 503 to everything.
struct StaticUpstream {
    url: String,
    down: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
    paths: Arc<Mutex<Vec<String>>>,
}

impl StaticUpstream {
    /// How many requests asked for `path` (below the repository's root).
    fn requests_of(&self, path: &str) -> usize {
        let paths = self.paths.lock().expect("paths");
        paths.iter().filter(|asked| *asked == path).count()
    }
}

#[derive(Clone)]
struct Served {
    folder: PathBuf,
    down: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
    paths: Arc<Mutex<Vec<String>>>,
}

async fn serve_file(
    State(served): State<Served>,
    UrlPath(path): UrlPath<String>,
) -> impl IntoResponse {
    served.requests.fetch_add(1, Ordering::SeqCst);
    served.paths.lock().expect("paths").push(path.clone());
    if served.down.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, Vec::new());
    }
    if path.split('/').any(|segment| segment == "..") {
        return (StatusCode::BAD_REQUEST, Vec::new());
    }
    match std::fs::read(served.folder.join(&path)) {
        Ok(bytes) => (StatusCode::OK, bytes),
        Err(_) => (StatusCode::NOT_FOUND, Vec::new()),
    }
}

async fn static_upstream(folder: &Path) -> StaticUpstream {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/maven2/", listener.local_addr().expect("address"));
    let served = Served {
        folder: folder.to_owned(),
        down: Arc::default(),
        requests: Arc::default(),
        paths: Arc::default(),
    };
    let upstream = StaticUpstream {
        url,
        down: Arc::clone(&served.down),
        requests: Arc::clone(&served.requests),
        paths: Arc::clone(&served.paths),
    };
    let router = Router::new()
        .route("/maven2/{*path}", get(serve_file))
        .with_state(served);
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    upstream
}

fn application(dir: &Path, registry: &str) {
    let source = dir.join("src/main/java/com/acme/app");
    std::fs::create_dir_all(&source).expect("sources");
    std::fs::write(
        source.join("App.java"),
        "package com.acme.app; public class App { public static void main(String[] a) { System.out.println(com.up.Lib.hello()); } }\n",
    )
    .expect("App.java");
    std::fs::write(
        dir.join("pom.xml"),
        format!(
            r#"<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
  <groupId>com.acme</groupId><artifactId>app</artifactId><version>1.0</version>
  {PROPERTIES}
  <repositories><repository><id>stowage</id><url>{registry}</url></repository></repositories>
  <dependencies><dependency><groupId>com.up</groupId><artifactId>lib</artifactId><version>1.0</version></dependency></dependencies>
  <build><plugins>{PLUGINS}</plugins></build></project>"#
        ),
    )
    .expect("pom.xml");
}

/// Builds the application from a fresh local repository (so every artifact is asked of
/// Stowage), runs it, and answers what it printed.
async fn build_and_run(work: &Path, registry: &str, token: &str, name: &str) -> String {
    let app = work.join(name);
    application(&app, registry);
    let local = work.join(format!("m2-{name}"));
    let resolving = settings(work, &local, token);
    mvn(&app, &resolving, "package").await.ok("mvn package");
    let jar = local.join("com/up/lib/1.0/lib-1.0.jar");
    assert!(
        local.join("com/up/parent/1.0/parent-1.0.pom").exists(),
        "the parent POM resolved"
    );
    let classpath = format!(
        "{}:{}",
        app.join("target/app-1.0.jar").display(),
        jar.display()
    );
    run("java", &["-cp", &classpath, "com.acme.app.App"], &[])
        .await
        .ok("java")
        .stdout
        .trim()
        .to_owned()
}

async fn mvn_resolves_a_jar_and_its_parent_through_the_upstream_and_again_once_it_is_down(
    stores: Stores,
) {
    if !available(&["mvn", "java"]) || !debian_repository().exists() {
        return;
    }
    let upstream = static_upstream(upstream_folder().await).await;
    let server = proxy_server(stores, loopback_upstreams(), &["hub"]).await;
    attach(
        &server,
        "hub",
        json!({"type": "maven", "url": upstream.url}),
    )
    .await;
    let alice = member(&server, "hub", "alice", "read").await;
    let registry = format!("{}/maven/acme/", server.url);
    let work = tempfile::tempdir().expect("work");

    assert_eq!(
        build_and_run(work.path(), &registry, &alice, "first").await,
        "up lib"
    );
    let (status, lib) = server
        .call(
            "GET",
            "/api/workspaces/acme/packages/maven/com.up:lib",
            Auth::Bearer(&alice),
            None,
        )
        .await;
    assert_eq!(
        (status, &lib["repository"]),
        (StatusCode::OK, &json!("hub")),
        "{lib}"
    );
    let checksum = server
        .request(
            "GET",
            "/maven/acme/com/up/lib/1.0/lib-1.0.jar.sha1",
            Auth::Basic("alice", &alice),
            None,
        )
        .await
        .text()
        .await
        .expect("sha1");
    let upstream_sha1 = std::fs::read_to_string(
        upstream_folder()
            .await
            .join("com/up/lib/1.0/lib-1.0.jar.sha1"),
    )
    .expect("upstream sha1");
    assert_eq!(checksum.trim(), upstream_sha1.trim());

    // The upstream goes down: releases are served from what was fetched.
    upstream.down.store(true, Ordering::SeqCst);
    let asked = upstream.requests.load(Ordering::SeqCst);
    assert_eq!(
        build_and_run(work.path(), &registry, &alice, "second").await,
        "up lib"
    );
    assert_eq!(
        upstream.requests.load(Ordering::SeqCst),
        asked,
        "nothing already fetched is asked again"
    );
    upstream.down.store(false, Ordering::SeqCst);

    // Bytes unlike their checksum: refused, nothing kept.
    let objects = server.stores.object_count().await;
    let response = server
        .request(
            "GET",
            "/maven/acme/com/up/bad/1.0/bad-1.0.jar",
            Auth::Basic("alice", &alice),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let text = response.text().await.unwrap_or_default();
    assert!(text.contains("sha1"), "{text}");
    assert_eq!(
        server.stores.object_count().await,
        objects,
        "nothing of it was kept"
    );
    let (status, _) = server
        .call(
            "GET",
            "/api/workspaces/acme/packages/maven/com.up:bad",
            Auth::Bearer(&alice),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no package was made of it");

    // Nobody deploys into a proxied name; a path no upstream has is not found.
    let response = server
        .request(
            "PUT",
            "/maven/acme/com/up/lib/2.0/lib-2.0.jar",
            Auth::Basic("alice", &alice),
            Some("x".into()),
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = server
        .request(
            "GET",
            "/maven/acme/com/up/none/1.0/none-1.0.jar",
            Auth::Basic("alice", &alice),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

/// Concurrent first requests of a file of an artifact the workspace does not have yet (no
/// package to hold a marker): one upstream request, the others wait for what it stored.
async fn ten_first_requests_of_an_artifact_the_workspace_lacks_make_one_fetch(stores: Stores) {
    let folder = tempfile::tempdir().expect("folder");
    let jar = stowage_tests::oci::random_bytes(200_000);
    let dir = folder.path().join("com/up/extra/1.0");
    std::fs::create_dir_all(&dir).expect("folder");
    std::fs::write(dir.join("extra-1.0.jar"), &jar).expect("jar");
    let sha1 = hex::encode(<sha1::Sha1 as sha2::Digest>::digest(&jar));
    std::fs::write(dir.join("extra-1.0.jar.sha1"), sha1).expect("sha1");
    let upstream = static_upstream(folder.path()).await;
    let server = Arc::new(proxy_server(stores, loopback_upstreams(), &["hub"]).await);
    attach(
        &server,
        "hub",
        json!({"type": "maven", "url": upstream.url}),
    )
    .await;
    let outcomes = race(10, |_| {
        let server = Arc::clone(&server);
        async move {
            let response = server
                .request(
                    "GET",
                    "/maven/acme/com/up/extra/1.0/extra-1.0.jar",
                    Auth::Basic("admin", ADMIN_TOKEN),
                    None,
                )
                .await;
            stowage_tests::follow_redirect(response).await
        }
    })
    .await;
    for pulled in outcomes {
        assert_eq!(pulled, jar);
    }
    assert_eq!(upstream.requests_of("com/up/extra/1.0/extra-1.0.jar"), 1);
}

/// On AWS with the upload service (emulated), the Lambda hands a file miss over to the upload
/// service, which fetches it; its checksum is then answered from what was stored.
async fn on_aws_a_file_miss_is_fetched_by_the_upload_service(stores: Stores) {
    let folder = tempfile::tempdir().expect("folder");
    let jar = stowage_tests::oci::random_bytes(300_000);
    let dir = folder.path().join("com/up/big/2.0");
    std::fs::create_dir_all(&dir).expect("folder");
    std::fs::write(dir.join("big-2.0.jar"), &jar).expect("jar");
    let sha1 = hex::encode(<sha1::Sha1 as sha2::Digest>::digest(&jar));
    std::fs::write(dir.join("big-2.0.jar.sha1"), &sha1).expect("sha1");
    let upstream = static_upstream(folder.path()).await;
    let server = TestServer::emulating_aws_with(stores, true, loopback_upstreams()).await;
    workspace(&server, &["hub"]).await;
    attach(
        &server,
        "hub",
        json!({"type": "maven", "url": upstream.url}),
    )
    .await;

    let jar_path = "/maven/acme/com/up/big/2.0/big-2.0.jar";
    let handed_over = server
        .request("GET", jar_path, Auth::Basic("admin", ADMIN_TOKEN), None)
        .await;
    let location = handed_over_to(&handed_over, "/maven/acme");
    assert_eq!(upstream.requests_of("com/up/big/2.0/big-2.0.jar"), 0);
    let fetched = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(format!("{}{location}", server.url))
        .send()
        .await
        .expect("GET");
    assert_eq!(stowage_tests::follow_redirect(fetched).await, jar);
    assert_eq!(upstream.requests_of("com/up/big/2.0/big-2.0.jar"), 1);
    let checksum = server
        .request(
            "GET",
            &format!("{jar_path}.sha1"),
            Auth::Basic("admin", ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(checksum.status(), StatusCode::OK);
    assert_eq!(checksum.text().await.expect("text").trim(), sha1);
}
