//! `template.yaml` held against the code: every route reaches the function that serves it,
//! every environment variable a function reads is set, and every function's IAM policy covers
//! the AWS calls its requests really make (recorded on moto).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::response::IntoResponse;
use http::StatusCode;
use serde_json::json;
use stowage_domain::{ManualClock, TokenSecret, UpstreamReach};
use stowage_http::{AppState, Limits};
use stowage_service::{BootstrapToken, Registry, Settings};
use stowage_tests::aws_calls::{AwsCall, CallRecorder};
use stowage_tests::npm::{integrity, publish_document, shasum, tarball};
use stowage_tests::oci::{Image, OCI_MANIFEST, RegistryClient, image, random_bytes, sha256};
use stowage_tests::web::WebClient;
use stowage_tests::{ADMIN_TOKEN, Stores, basic_authorization};
use tower::ServiceExt as _;
use yaml_rust2::{Yaml, YamlLoader};

/// A Lambda function of the template, as far as these tests look.
#[derive(Debug)]
pub(crate) struct Function {
    pub(crate) binary: String,
    /// HTTP API routes: (method, path).
    pub(crate) routes: Vec<(String, String)>,
    pub(crate) environment: BTreeSet<String>,
    /// (actions, resources) of each policy statement that allows.
    pub(crate) statements: Vec<(Vec<String>, Vec<String>)>,
    pub(crate) scheduled: bool,
}

pub(crate) fn repository_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub(crate) fn strings(node: &Yaml) -> Vec<String> {
    match node {
        Yaml::String(one) => vec![one.clone()],
        Yaml::Array(many) => many.iter().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

pub(crate) fn keys(node: &Yaml) -> BTreeSet<String> {
    node.as_hash()
        .map(|hash| {
            hash.keys()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The template's functions by logical id. CloudFormation's short tags (`!Ref`, `!Sub`) are
/// read as their plain values, which is all these checks need.
fn template_functions() -> BTreeMap<String, Function> {
    let text = std::fs::read_to_string(repository_root().join("template.yaml")).expect("template");
    let documents = YamlLoader::load_from_str(&text).expect("template.yaml is YAML");
    let template = &documents[0];
    let global_environment = keys(&template["Globals"]["Function"]["Environment"]["Variables"]);
    let mut functions = BTreeMap::new();
    for (id, resource) in template["Resources"].as_hash().expect("Resources") {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let properties = &resource["Properties"];
        let mut routes = Vec::new();
        let mut scheduled = false;
        for (_, event) in properties["Events"].as_hash().into_iter().flatten() {
            match event["Type"].as_str() {
                Some("HttpApi") => routes.push((
                    event["Properties"]["Method"]
                        .as_str()
                        .expect("Method")
                        .to_owned(),
                    event["Properties"]["Path"]
                        .as_str()
                        .expect("Path")
                        .to_owned(),
                )),
                Some("Schedule" | "ScheduleV2") => scheduled = true,
                other => panic!("unexpected event type {other:?}"),
            }
        }
        let mut environment = global_environment.clone();
        environment.extend(keys(&properties["Environment"]["Variables"]));
        let mut statements = Vec::new();
        for policy in properties["Policies"].as_vec().into_iter().flatten() {
            for statement in policy["Statement"].as_vec().into_iter().flatten() {
                assert_eq!(statement["Effect"].as_str(), Some("Allow"));
                statements.push((
                    strings(&statement["Action"]),
                    strings(&statement["Resource"]),
                ));
            }
        }
        functions.insert(
            id.as_str().expect("logical id").to_owned(),
            Function {
                binary: resource["Metadata"]["BuildProperties"]["Binary"]
                    .as_str()
                    .expect("each function names its binary")
                    .to_owned(),
                routes,
                environment,
                statements,
                scheduled,
            },
        );
    }
    functions
}

fn function<'a>(functions: &'a BTreeMap<String, Function>, binary: &str) -> &'a Function {
    functions
        .values()
        .find(|f| f.binary == binary)
        .unwrap_or_else(|| panic!("template.yaml has no function for {binary}"))
}

/// API Gateway's matching: a literal path, or a prefix and a greedy `{proxy+}`.
fn route_matches(route: &str, path: &str) -> bool {
    match route.strip_suffix("{proxy+}") {
        Some(prefix) => path
            .strip_prefix(prefix)
            .is_some_and(|rest| !rest.is_empty()),
        None => route == path,
    }
}

/// How specific a route is, as API Gateway ranks the routes a path matches: a literal path
/// first, then the greedy route with the longest prefix.
fn specificity(route: &str) -> usize {
    match route.strip_suffix("{proxy+}") {
        Some(prefix) => prefix.len(),
        None => usize::MAX,
    }
}

/// The functions whose most specific matching route is the best there is for `path`.
fn reached<'a>(functions: &'a BTreeMap<String, Function>, path: &str) -> Vec<&'a Function> {
    let best = |f: &Function| {
        f.routes
            .iter()
            .filter(|(_, route)| route_matches(route, path))
            .map(|(_, route)| specificity(route))
            .max()
    };
    let top = functions.values().filter_map(&best).max();
    functions
        .values()
        .filter(|f| top.is_some() && best(f) == top)
        .collect()
}

/// Paths each function serves, one or more per route of the template.
const SERVED: &[(&str, &str)] = &[
    ("stowage-admin", "/api/user"),
    (
        "stowage-admin",
        "/api/workspaces/acme/packages/npm/left-pad",
    ),
    ("stowage-oci", "/v2"),
    ("stowage-oci", "/v2/token"),
    ("stowage-oci", "/v2/acme/api/server/manifests/1.0"),
    ("stowage-npm", "/npm/acme/left-pad"),
    ("stowage-npm", "/npm/acme/-/v1/search"),
    ("stowage-maven", "/maven/acme/com/acme/lib/1.0/lib-1.0.jar"),
    ("stowage-web", "/"),
    ("stowage-web", "/workspaces/acme/packages/npm/left-pad"),
];

fn routers(state: &AppState) -> Vec<(&'static str, Router)> {
    vec![
        ("stowage-admin", stowage_admin::router(state.clone())),
        ("stowage-oci", stowage_oci::router(state.clone())),
        ("stowage-npm", stowage_npm::router(state.clone())),
        ("stowage-maven", stowage_maven::router(state.clone())),
        ("stowage-web", stowage_web::router(state.clone())),
    ]
}

fn registry_over(stores: &Stores, clock: Arc<ManualClock>) -> Arc<Registry> {
    Arc::new(
        Registry::new(
            Arc::clone(&stores.metadata),
            Arc::clone(&stores.blobs),
            clock,
            Settings {
                upstream_reach: UpstreamReach::AnyAddress,
                ..Settings::default()
            },
        )
        .with_sealer(Arc::clone(&stores.sealer)),
    )
}

#[tokio::test]
async fn every_route_reaches_the_function_that_serves_it() {
    let functions = template_functions();
    let stores = Stores::embedded(url::Url::parse("http://127.0.0.1:1/").expect("url"));
    let state = AppState {
        registry: registry_over(&stores, Arc::new(ManualClock::new(chrono::Utc::now()))),
        public_url: None,
        limits: Limits::LAMBDA,
    };
    for (binary, path) in SERVED {
        let reached = reached(&functions, path);
        assert_eq!(reached.len(), 1, "{path} reaches one function");
        assert_eq!(reached[0].binary, *binary, "{path}");
        // Its router answers it (here: asks for credentials, or the web interface sends the
        // visitor to sign in); every other router does not know it.
        for (router_binary, router) in routers(&state) {
            let request = http::Request::get(*path)
                .body(axum::body::Body::empty())
                .expect("request");
            let status = router.oneshot(request).await.expect("response").status();
            if router_binary == *binary {
                let asks = if *binary == "stowage-web" {
                    StatusCode::SEE_OTHER
                } else {
                    StatusCode::UNAUTHORIZED
                };
                assert_eq!(status, asks, "{binary} serves {path}");
            } else {
                assert_eq!(
                    status,
                    StatusCode::NOT_FOUND,
                    "{router_binary} does not serve {path}"
                );
            }
        }
    }
    // Each route of the template is one the code serves; methods are left to the functions.
    for f in functions.values() {
        for (method, route) in &f.routes {
            assert_eq!(method, "ANY", "{route}");
            assert!(
                SERVED
                    .iter()
                    .any(|(binary, path)| *binary == f.binary && route_matches(route, path)),
                "{route} of {} is not among the paths its router serves",
                f.binary
            );
        }
    }
    let purge = function(&functions, "stowage-purge");
    assert!(
        purge.scheduled && purge.routes.is_empty(),
        "the purge runs on a schedule only"
    );
}

/// The `STOWAGE_…` names a source file reads.
pub(crate) fn variables_in(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (start, _) in text.match_indices("\"STOWAGE_") {
        let name: String = text[start + 1..]
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        found.insert(name);
    }
    found
}

/// Every file under `dir`, in its subfolders too.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("folder") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

pub(crate) fn source(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|_| panic!("read {}", path.display()))
}

#[test]
fn every_environment_variable_a_function_reads_is_set() {
    let root = repository_root();
    let functions = template_functions();
    let runtime = source(&root.join("shared/runtime/src/lib.rs"));
    // The site admin's first token is read by the functions that create it, and only its hash
    // is deployed: the token itself must never be in the template.
    let bootstrap_start = runtime
        .find("pub async fn bootstrap_site_admin")
        .expect("bootstrap");
    // Through the function that reads the configured token.
    let configured = bootstrap_start
        + runtime[bootstrap_start..]
            .find("fn configured_bootstrap")
            .expect("configured_bootstrap after bootstrap_site_admin");
    let bootstrap_end = runtime[configured..]
        .find("\n}\n")
        .map_or(runtime.len(), |end| configured + end);
    let bootstrap = variables_in(&runtime[bootstrap_start..bootstrap_end]);
    let everywhere: BTreeSet<String> = variables_in(&runtime[..bootstrap_start])
        .union(&variables_in(&runtime[bootstrap_end..]))
        .cloned()
        .collect();
    assert!(
        everywhere.contains("STOWAGE_TABLE")
            && bootstrap.contains("STOWAGE_BOOTSTRAP_TOKEN_SHA256")
    );
    for f in functions.values() {
        let crate_folder = root
            .join("functions")
            .join(f.binary.trim_start_matches("stowage-"));
        let main = source(&crate_folder.join("src/main.rs"));
        let mut read = everywhere.clone();
        for file in files_under(&crate_folder.join("src")) {
            read.extend(variables_in(&source(&file)));
        }
        if main.contains("bootstrap_site_admin") {
            read.insert("STOWAGE_BOOTSTRAP_TOKEN_SHA256".to_owned());
        }
        for name in &read {
            assert!(
                f.environment.contains(name),
                "{} reads {name}, which template.yaml does not set",
                f.binary
            );
        }
        assert!(
            !f.environment.contains("STOWAGE_BOOTSTRAP_TOKEN"),
            "a token in clear is deployed"
        );
    }
}

/// The IAM actions an SDK operation needs.
fn actions_for(call: &AwsCall) -> Vec<String> {
    let action = |service: &str, name: &str| format!("{service}:{name}");
    match (call.service.as_str(), call.operation.as_str()) {
        // Our transactions hold updates, deletes and condition checks.
        ("DynamoDB", "TransactWriteItems") => ["UpdateItem", "DeleteItem", "ConditionCheckItem"]
            .iter()
            .map(|name| action("dynamodb", name))
            .collect(),
        ("DynamoDB", operation) => vec![action("dynamodb", operation)],
        ("S3", "HeadObject" | "GetObject") => vec![action("s3", "GetObject")],
        (
            "S3",
            "CreateMultipartUpload" | "UploadPart" | "CompleteMultipartUpload" | "PutObject",
        ) => {
            vec![action("s3", "PutObject")]
        }
        ("S3", "ListParts") => vec![action("s3", "ListMultipartUploadParts")],
        ("S3", "ListMultipartUploads") => vec![action("s3", "ListBucketMultipartUploads")],
        ("S3", "ListObjectsV2") => vec![action("s3", "ListBucket")],
        ("S3", "DeleteObjects") => vec![action("s3", "DeleteObject")],
        ("S3", operation) => vec![action("s3", operation)],
        ("KMS", operation @ ("Encrypt" | "Decrypt")) => vec![action("kms", operation)],
        (service, operation) => panic!("no IAM mapping for {service} {operation}"),
    }
}

/// Whether `function`'s statements allow `action` on what `call` touched.
fn allows(function: &Function, action: &str, call: &AwsCall) -> bool {
    function.statements.iter().any(|(actions, resources)| {
        actions.iter().any(|a| a == action)
            && resources.iter().any(|resource| {
                match (call.service.as_str(), call.key_prefix.as_deref()) {
                    ("KMS", _) => resource == "UpstreamKey.Arn",
                    // A request on the bucket itself, not on an object.
                    (_, Some("")) => resource == "Bucket.Arn",
                    (_, Some(prefix)) => resource == &format!("${{Bucket.Arn}}/{prefix}/*"),
                    (_, None) => resource == "Table.Arn",
                }
            })
    })
}

/// Every call (presigned URLs included: IAM checks them when used) is allowed, and nothing is
/// granted that no call needs (least privilege).
pub(crate) fn assert_covered(f: &Function, calls: &BTreeSet<AwsCall>) {
    let binary = &f.binary;
    assert!(!calls.is_empty(), "{binary}: the scenario made AWS calls");
    let mut needed: BTreeSet<String> = BTreeSet::new();
    for call in calls {
        for action in actions_for(call) {
            assert!(
                allows(f, &action, call),
                "{binary} calls {call:?} but its policy lacks {action}"
            );
            needed.insert(action);
        }
    }
    for (actions, _) in &f.statements {
        for action in actions {
            assert!(
                needed.contains(action),
                "{binary} is granted {action}, which none of its calls needs: {calls:?}"
            );
        }
    }
}

/// An npm registry holding `is-odd` 1.0.0, as an upstream.
async fn npm_upstream() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let bytes = tarball("is-odd", "1.0.0");
    let document = json!({
        "name": "is-odd",
        "dist-tags": {"latest": "1.0.0"},
        "versions": {"1.0.0": {"name": "is-odd", "version": "1.0.0", "dist": {
            "tarball": format!("{base}/is-odd/-/is-odd-1.0.0.tgz"),
            "integrity": integrity(&bytes),
            "shasum": shasum(&bytes),
        }}},
    });
    let router = Router::new()
        .route(
            "/is-odd",
            axum::routing::get(move || async move { axum::Json(document) }),
        )
        .route(
            "/is-odd/-/is-odd-1.0.0.tgz",
            axum::routing::get(move || async move { bytes }),
        );
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    format!("{base}/")
}

/// A container registry holding `lib/tool:1.0` (the image `tool`), readable with the
/// Basic credentials `u:p` only, as an upstream.
pub(crate) async fn container_upstream(tool: &Image) -> String {
    let manifest = tool.manifest.clone();
    let mut blobs: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for blob in tool.blobs() {
        blobs.insert(sha256(blob), blob.clone());
    }
    let authorised = |headers: &http::HeaderMap| {
        headers.get("authorization").and_then(|v| v.to_str().ok())
            == Some(&basic_authorization("u", "p")[..])
    };
    let challenge = || {
        (
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", "Basic realm=\"upstream\"")],
        )
            .into_response()
    };
    let router = Router::new()
        .route(
            "/v2/lib/tool/manifests/1.0",
            axum::routing::get(move |headers: http::HeaderMap| async move {
                if !authorised(&headers) {
                    return challenge();
                }
                ([("content-type", OCI_MANIFEST)], manifest).into_response()
            }),
        )
        .route(
            "/v2/lib/tool/blobs/{digest}",
            axum::routing::get(
                move |headers: http::HeaderMap,
                      axum::extract::Path(digest): axum::extract::Path<String>| async move {
                    if !authorised(&headers) {
                        return challenge();
                    }
                    match blobs.get(&digest) {
                        Some(blob) => blob.clone().into_response(),
                        None => StatusCode::NOT_FOUND.into_response(),
                    }
                },
            ),
        );
    serve(router).await
}

/// A Maven repository holding `com.up:dep:1.0`'s jar and its checksum, as an upstream.
async fn maven_upstream(jar: Vec<u8>) -> String {
    let sha1 = hex::encode(<sha1::Sha1 as sha2::Digest>::digest(&jar));
    let router = Router::new()
        .route(
            "/com/up/dep/1.0/dep-1.0.jar",
            axum::routing::get(move || async move { jar }),
        )
        .route(
            "/com/up/dep/1.0/dep-1.0.jar.sha1",
            axum::routing::get(move || async move { sha1 }),
        );
    format!("{}/", serve(router).await)
}

/// Serves `router` on a free loopback port, returning its URL.
pub(crate) async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    url
}

#[tokio::test]
async fn every_policy_covers_the_aws_calls_its_function_makes() {
    let recorder = CallRecorder::default();
    let Some(stores) = Stores::aws_recorded(&recorder).await else {
        return;
    };
    let functions = template_functions();
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let registry = registry_over(&stores, Arc::clone(&clock));
    registry
        .bootstrap_site_admin(BootstrapToken::Secret(TokenSecret::from_presented(
            ADMIN_TOKEN.to_owned(),
        )))
        .await
        .expect("bootstrap");
    let state = AppState {
        registry: Arc::clone(&registry),
        public_url: None,
        limits: Limits::LAMBDA,
    };
    let mut urls = BTreeMap::new();
    for (binary, router) in routers(&state) {
        urls.insert(binary, serve(router).await);
    }
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let upstream = npm_upstream().await;
    let tool = image(&[1_500], "amd64", OCI_MANIFEST);
    let tool_upstream = container_upstream(&tool).await;
    let dep = random_bytes(2_000);
    let dep_upstream = maven_upstream(dep.clone()).await;
    recorder.take();

    // The management API: the whole life of accounts, workspaces, repositories and packages.
    let api = |path: &str| format!("{}/api{path}", urls["stowage-admin"]);
    let admin_calls: [(&str, String, serde_json::Value, u16); 15] = [
        (
            "POST",
            api("/users"),
            json!({"username": "alice", "email": "alice@example.com"}),
            201,
        ),
        (
            "POST",
            api("/workspaces"),
            json!({"slug": "acme", "plan": "standard"}),
            201,
        ),
        (
            "POST",
            api("/workspaces/acme/repositories"),
            json!({"slug": "api"}),
            201,
        ),
        (
            "PUT",
            api("/workspaces/acme/repositories/api/permissions/alice"),
            json!({"role": "write"}),
            201,
        ),
        (
            "POST",
            api("/workspaces/acme/repositories/api/pipeline-tokens"),
            json!({}),
            201,
        ),
        (
            "POST",
            api("/workspaces/acme/repositories/api/upstreams"),
            json!({"type": "npm", "url": upstream, "username": "u", "password": "p"}),
            201,
        ),
        (
            "POST",
            api("/workspaces/acme/repositories/api/upstreams"),
            json!({"type": "container", "url": tool_upstream, "username": "u", "password": "p"}),
            201,
        ),
        (
            "POST",
            api("/workspaces/acme/repositories/api/upstreams"),
            json!({"type": "maven", "url": dep_upstream, "username": "u", "password": "p"}),
            201,
        ),
        (
            "POST",
            api("/workspaces/acme/packages"),
            json!({"type": "container", "name": "api/server", "repository": "api"}),
            201,
        ),
        (
            "POST",
            api("/workspaces/acme/packages"),
            json!({"type": "npm", "name": "left-pad", "repository": "api"}),
            201,
        ),
        (
            "POST",
            api("/workspaces/acme/packages"),
            json!({"type": "maven", "name": "com.acme:lib", "repository": "api"}),
            201,
        ),
        (
            "POST",
            api("/workspaces/acme/packages"),
            json!({"type": "npm", "name": "gone", "repository": "api"}),
            201,
        ),
        (
            "DELETE",
            api("/workspaces/acme/packages/npm/gone"),
            json!(null),
            202,
        ),
        (
            "POST",
            api("/workspaces/acme/repositories"),
            json!({"slug": "old"}),
            201,
        ),
        (
            "DELETE",
            api("/workspaces/acme/repositories/old"),
            json!(null),
            202,
        ),
    ];
    for (method, url, body, expected) in admin_calls {
        let mut request = http
            .request(method.parse().expect("method"), &url)
            .bearer_auth(ADMIN_TOKEN);
        if !body.is_null() {
            request = request.json(&body);
        }
        let response = request.send().await.expect("admin call");
        assert_eq!(
            response.status().as_u16(),
            expected,
            "{method} {url}: {:?}",
            response.text().await
        );
    }
    for path in ["/workspaces/acme/repositories/old/restore"] {
        let response = http
            .post(api(path))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("restore");
        assert!(response.status().is_success(), "{path}");
    }
    for path in [
        "/workspaces/acme/usage",
        "/workspaces/acme/packages",
        "/tokens",
        "/workspaces/acme/packages/npm/left-pad",
    ] {
        let response = http
            .get(api(path))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("read");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    assert_covered(function(&functions, "stowage-admin"), &recorder.take());

    // The container registry: monolithic and chunked pushes (multipart), pulls, a cancelled
    // upload, deletions, and an upload left behind for the purge.
    let oci = RegistryClient::new(&urls["stowage-oci"], "admin", ADMIN_TOKEN);
    let name = "acme/api/server";
    let app = image(&[2_000], "arm64", OCI_MANIFEST);
    oci.push_image(name, "1.0", &app).await;
    let big = random_bytes(9 * 1024 * 1024);
    let location = oci.start_upload(name).await;
    let location = patch_chunks(&oci, &location, &big, 0).await;
    let done = oci
        .request(
            "PUT",
            &format!(
                "{location}{}digest={}",
                if location.contains('?') { "&" } else { "?" },
                sha256(&big)
            ),
        )
        .send()
        .await
        .expect("PUT");
    assert_eq!(done.status(), StatusCode::CREATED);
    for path in [
        format!("/v2/{name}/manifests/1.0"),
        format!("/v2/{name}/blobs/{}", sha256(&big)),
        format!("/v2/{name}/tags/list"),
    ] {
        let response = oci.get(&path).await;
        assert!(
            response.status().is_success() || response.status().is_redirection(),
            "{path}"
        );
    }
    let head = oci
        .request("HEAD", &format!("/v2/{name}/blobs/{}", sha256(&big)))
        .send()
        .await
        .expect("HEAD");
    assert_eq!(head.status(), StatusCode::OK);
    let cancelled = oci.start_upload(name).await;
    patch_chunks(&oci, &cancelled, &random_bytes(6 * 1024 * 1024), 0).await;
    assert_eq!(
        oci.request("DELETE", &cancelled)
            .send()
            .await
            .expect("DELETE")
            .status(),
        StatusCode::NO_CONTENT
    );
    let abandoned = oci.start_upload(name).await;
    patch_chunks(&oci, &abandoned, &random_bytes(6 * 1024 * 1024), 0).await;
    let deleted = oci
        .request("DELETE", &format!("/v2/{name}/manifests/{}", app.digest()))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(deleted.status(), StatusCode::ACCEPTED);
    let deleted = oci
        .request("DELETE", &format!("/v2/{name}/blobs/{}", sha256(&big)))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(deleted.status(), StatusCode::ACCEPTED);
    // Through the upstream: its credentials opened, the manifest kept, a blob fetched and
    // stored before it is served (a Lambda answers only whole bodies).
    let manifest = oci.get("/v2/acme/api/lib/tool/manifests/1.0").await;
    assert_eq!(manifest.status(), StatusCode::OK);
    let layer = sha256(&tool.layers[0]);
    let pulled = oci
        .get(&format!("/v2/acme/api/lib/tool/blobs/{layer}"))
        .await;
    assert_eq!(pulled.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_covered(function(&functions, "stowage-oci"), &recorder.take());

    // npm: publish, read (a version by its tag too), tags.
    let npm = |path: &str| format!("{}/npm/acme{path}", urls["stowage-npm"]);
    for version in ["1.0.0", "1.1.0"] {
        let response = http
            .put(npm("/left-pad"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&publish_document(
                "left-pad",
                version,
                &tarball("left-pad", version),
            ))
            .send()
            .await
            .expect("publish");
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    // Bytes the workspace holds already: the new copy is dropped for the existing one.
    let same_bytes = http
        .put(npm("/left-pad"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&publish_document(
            "left-pad",
            "1.2.0",
            &tarball("left-pad", "1.0.0"),
        ))
        .send()
        .await
        .expect("publish");
    assert_eq!(same_bytes.status(), StatusCode::CREATED);
    for path in [
        "/left-pad",
        "/left-pad/latest",
        "/left-pad/-/left-pad-1.0.0.tgz",
        "/-/v1/search?text=left",
        "/-/package/left-pad/dist-tags",
        // Through the upstream: its credentials opened, its document and tarball kept.
        "/is-odd",
        "/is-odd/-/is-odd-1.0.0.tgz",
    ] {
        let response = http
            .get(npm(path))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("GET");
        assert!(
            response.status().is_success() || response.status().is_redirection(),
            "{path}"
        );
    }
    let tagged = http
        .put(npm("/-/package/left-pad/dist-tags/beta"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&"1.1.0")
        .send()
        .await
        .expect("tag");
    assert!(tagged.status().is_success());
    let unpublished = http
        .delete(npm("/-/package/left-pad/dist-tags/beta"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("untag");
    assert!(unpublished.status().is_success());
    assert_covered(function(&functions, "stowage-npm"), &recorder.take());

    // Maven: deploy a jar with its checksum, resolve it, read the generated metadata.
    let maven = |path: &str| format!("{}/maven/acme/com/acme/lib{path}", urls["stowage-maven"]);
    // Through the upstream: its credentials opened, the jar checked and kept.
    let through = http
        .get(format!(
            "{}/maven/acme/com/up/dep/1.0/dep-1.0.jar",
            urls["stowage-maven"]
        ))
        .basic_auth("admin", Some(ADMIN_TOKEN))
        .send()
        .await
        .expect("GET");
    assert!(
        through.status().is_success() || through.status().is_redirection(),
        "{}",
        through.status()
    );
    let jar = random_bytes(3_000);
    let put = http
        .put(maven("/1.0/lib-1.0.jar"))
        .basic_auth("admin", Some(ADMIN_TOKEN))
        .body(jar.clone())
        .send()
        .await
        .expect("PUT");
    assert_eq!(put.status(), StatusCode::CREATED);
    let sha1 = hex::encode(<sha1::Sha1 as sha2::Digest>::digest(&jar));
    let put = http
        .put(maven("/1.0/lib-1.0.jar.sha1"))
        .basic_auth("admin", Some(ADMIN_TOKEN))
        .body(sha1)
        .send()
        .await
        .expect("PUT");
    assert!(put.status().is_success());
    for path in [
        "/1.0/lib-1.0.jar",
        "/maven-metadata.xml",
        "/1.0/lib-1.0.jar.sha256",
    ] {
        let response = http
            .get(maven(path))
            .basic_auth("admin", Some(ADMIN_TOKEN))
            .send()
            .await
            .expect("GET");
        assert!(
            response.status().is_success() || response.status().is_redirection(),
            "{path}"
        );
    }
    // The same bytes under another version: stored once.
    let put = http
        .put(maven("/1.1/lib-1.1.jar"))
        .basic_auth("admin", Some(ADMIN_TOKEN))
        .body(jar.clone())
        .send()
        .await
        .expect("PUT");
    assert_eq!(put.status(), StatusCode::CREATED);
    let head = http
        .head(maven("/1.0/lib-1.0.jar"))
        .basic_auth("admin", Some(ADMIN_TOKEN))
        .send()
        .await
        .expect("HEAD");
    assert_eq!(head.status(), StatusCode::OK);
    // A version deleted, and its release's coordinates refused after.
    let deleted = http
        .delete(maven("/1.1/"))
        .basic_auth("admin", Some(ADMIN_TOKEN))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let refused = http
        .put(maven("/1.1/lib-1.1.jar"))
        .basic_auth("admin", Some(ADMIN_TOKEN))
        .body(jar.clone())
        .send()
        .await
        .expect("PUT");
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    assert_covered(function(&functions, "stowage-maven"), &recorder.take());

    // The web interface: signing in, every page, and every change its forms make.
    let web = WebClient::new(&urls["stowage-web"]);
    let session = web.sign_in("admin", ADMIN_TOKEN).await;
    let cookie = Some(session.cookie.as_str());
    let csrf = session.csrf.as_str();
    for path in [
        "/",
        "/tokens",
        "/users",
        "/workspaces/acme",
        "/workspaces/acme/usage",
        "/workspaces/acme/repositories/api",
        "/workspaces/acme/packages/container/api/server",
        "/workspaces/acme/packages/npm/left-pad",
        "/workspaces/acme/packages/maven/com.acme:lib",
    ] {
        let page = web.get(path, cookie).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
    }
    let forms: [(&str, Vec<(&str, &str)>); 9] = [
        ("/tokens", vec![("name", "web"), ("expires_in_days", "3")]),
        (
            "/users",
            vec![("username", "bob"), ("email", "bob@example.com")],
        ),
        (
            "/workspaces/acme/repositories/api/members",
            vec![("username", "bob"), ("role", "read")],
        ),
        (
            "/workspaces/acme/repositories/api/members/bob/revoke",
            vec![],
        ),
        ("/workspaces/acme/repositories/api/pipeline-tokens", vec![]),
        (
            "/workspaces/acme/packages",
            vec![("kind", "npm"), ("name", "web-made"), ("repository", "api")],
        ),
        ("/workspaces/acme/delete-package/npm/web-made", vec![]),
        (
            "/workspaces/acme/restore",
            vec![("target", "package"), ("kind", "npm"), ("name", "web-made")],
        ),
        (
            "/workspaces/acme/delete-version/npm/left-pad",
            vec![("version", "1.2.0")],
        ),
    ];
    for (path, mut fields) in forms {
        fields.push(("csrf", csrf));
        let answer = web.post(path, cookie, &fields).await;
        assert!(
            answer.status.is_success() || answer.status.is_redirection(),
            "{path}: {} {}",
            answer.status,
            answer.body
        );
    }
    assert_covered(function(&functions, "stowage-web"), &recorder.take());

    // The purge: the deleted package and repository past retention, the abandoned upload,
    // the garbage blobs past the grace period.
    clock.advance(chrono::Duration::days(31));
    let report = stowage_purge::run(&registry, Duration::from_secs(120))
        .await
        .expect("purge");
    clock.advance(chrono::Duration::days(1));
    let second = stowage_purge::run(&registry, Duration::from_secs(120))
        .await
        .expect("purge");
    assert!(report.finished && second.finished);
    assert!(
        report.uploads_expired >= 1 && report.blobs_collected + second.blobs_collected >= 1,
        "{report:?} {second:?}"
    );
    assert_covered(function(&functions, "stowage-purge"), &recorder.take());
}

/// Sends `bytes` from `offset` in chunks of 3 MiB (within Lambda's limit); returns the next
/// location.
async fn patch_chunks(
    client: &RegistryClient,
    location: &str,
    bytes: &[u8],
    offset: usize,
) -> String {
    let mut location = location.to_owned();
    let mut offset = offset;
    for chunk in bytes.chunks(3 * 1024 * 1024) {
        let response = client
            .request("PATCH", &location)
            .header("content-type", "application/octet-stream")
            .header(
                "content-range",
                format!("{}-{}", offset, offset + chunk.len() - 1),
            )
            .body(chunk.to_vec())
            .send()
            .await
            .expect("PATCH");
        assert_eq!(
            response.status(),
            StatusCode::ACCEPTED,
            "{:?}",
            response.text().await
        );
        location = response.headers()["location"]
            .to_str()
            .expect("location")
            .to_owned();
        offset += chunk.len();
    }
    location
}

/// Every function keeps its logs for `LogRetentionDays` (a log group Lambda made itself would
/// keep them forever), and a deploy without the site admin's first token is refused.
#[test]
fn every_function_has_a_log_retention_and_the_stack_an_administrator() {
    let text = std::fs::read_to_string(repository_root().join("template.yaml")).expect("template");
    let template = &YamlLoader::load_from_str(&text).expect("YAML")[0];
    let resources = template["Resources"].as_hash().expect("Resources");
    let log_groups: BTreeSet<String> = resources
        .values()
        .filter(|resource| resource["Type"].as_str() == Some("AWS::Logs::LogGroup"))
        .filter(|group| group["Properties"]["RetentionInDays"].as_str() == Some("LogRetentionDays"))
        .filter_map(|group| {
            group["Properties"]["LogGroupName"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    for id in template_functions().keys() {
        assert!(
            log_groups.contains(&format!("/aws/lambda/${{{id}}}")),
            "{id} has no log group with LogRetentionDays: {log_groups:?}"
        );
    }
    let rule = &template["Rules"]["BootstrapTokenIsRequired"];
    assert!(
        rule["RuleCondition"].is_badvalue(),
        "the rule holds for every deploy"
    );
    let assertion = format!("{:?}", rule["Assertions"][0]["Assert"]);
    assert!(assertion.contains("BootstrapTokenSha256"), "{assertion}");
}

/// The alarms and the dashboard read the metrics the functions emit: every `Stowage` metric
/// and dimension the template names is one `shared/http/src/metrics.rs` writes.
#[test]
fn the_alarms_watch_metrics_the_functions_emit() {
    let root = repository_root();
    let text = std::fs::read_to_string(root.join("template.yaml")).expect("template");
    let template = &YamlLoader::load_from_str(&text).expect("YAML")[0];
    let emitter = source(&root.join("shared/http/src/metrics.rs"));
    assert!(emitter.contains("\"Namespace\": \"Stowage\""));
    for alarm in [
        "ServerErrorRateAlarm",
        "ThrottlesAlarm",
        "PurgeFailureAlarm",
    ] {
        assert_eq!(
            template["Resources"][alarm]["Type"].as_str(),
            Some("AWS::CloudWatch::Alarm"),
            "{alarm}"
        );
    }
    let queries = template["Resources"]["ServerErrorRateAlarm"]["Properties"]["Metrics"]
        .as_vec()
        .expect("metric queries");
    let mut stowage_metrics = 0;
    for query in queries {
        let metric = &query["MetricStat"]["Metric"];
        if metric["Namespace"].as_str() != Some("Stowage") {
            continue;
        }
        stowage_metrics += 1;
        let name = metric["MetricName"].as_str().expect("metric name");
        assert!(
            emitter.contains(&format!("{{\"Name\": \"{name}\"")),
            "{name}"
        );
        for dimension in metric["Dimensions"].as_vec().expect("dimensions") {
            let dimension = dimension["Name"].as_str().expect("dimension");
            assert!(emitter.contains(&format!("\"{dimension}\"")), "{dimension}");
        }
    }
    assert_eq!(
        stowage_metrics, 10,
        "5xx and all requests, for each of the four protocols and the web interface"
    );
    let dashboard = format!(
        "{:?}",
        template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]
    );
    assert!(
        dashboard.contains("\\\"Stowage\\\", \\\"Requests\\\""),
        "{dashboard}"
    );
}
