//! `template.yaml`'s upload service held against the code: the CloudFront function deployed is
//! the file the emulation routes by, the task's environment sets what the binary reads, and
//! the task role allows exactly the AWS calls that the requests routed to it make (recorded on
//! moto).

use std::collections::BTreeSet;
use std::sync::Arc;

use http::StatusCode;
use secrecy::SecretString;
use stowage_domain::{ManualClock, PackageType, TokenSecret};
use stowage_http::{AppState, Limits};
use stowage_service::{Credential, NewUpstream, UpstreamCredentials};
use stowage_tests::aws_calls::CallRecorder;
use stowage_tests::lambda::registry_with_packages;
use stowage_tests::npm::{publish_document, tarball};
use stowage_tests::oci::{OCI_MANIFEST, RegistryClient, image, random_bytes, sha256};
use stowage_tests::upstreams::handed_over_to;
use stowage_tests::{ADMIN_TOKEN, Stores};
use yaml_rust2::{Yaml, YamlLoader};

use crate::deployment::{
    Function, assert_covered, container_upstream, keys, repository_root, serve, source, strings,
    variables_in,
};

fn template() -> Yaml {
    let text = std::fs::read_to_string(repository_root().join("template.yaml")).expect("template");
    YamlLoader::load_from_str(&text)
        .expect("template.yaml is YAML")
        .remove(0)
}

/// The upload service's task, as these checks see a function: its role's statements and its
/// container's environment.
fn upload_service_task(template: &Yaml) -> Function {
    let resources = &template["Resources"];
    let mut statements = Vec::new();
    for policy in resources["TaskRole"]["Properties"]["Policies"]
        .as_vec()
        .expect("the task role's policies")
    {
        for statement in policy["PolicyDocument"]["Statement"]
            .as_vec()
            .expect("statements")
        {
            assert_eq!(statement["Effect"].as_str(), Some("Allow"));
            statements.push((
                strings(&statement["Action"]),
                strings(&statement["Resource"]),
            ));
        }
    }
    let containers = resources["TaskDefinition"]["Properties"]["ContainerDefinitions"]
        .as_vec()
        .expect("containers");
    assert_eq!(containers.len(), 1);
    let environment = containers[0]["Environment"]
        .as_vec()
        .expect("environment")
        .iter()
        .filter_map(|variable| variable["Name"].as_str().map(str::to_owned))
        .collect();
    Function {
        binary: "the upload service".into(),
        routes: Vec::new(),
        environment,
        statements,
        scheduled: false,
    }
}

#[test]
fn the_front_function_deployed_is_the_one_the_emulation_routes_by() {
    let template = template();
    let deployed = template["Resources"]["FrontFunction"]["Properties"]["FunctionCode"]
        .as_str()
        .expect("the function's code, inline");
    assert_eq!(
        deployed.trim_end(),
        stowage_local::emulate::front::VIEWER_REQUEST_FUNCTION.trim_end(),
        "template.yaml's FrontFunction differs from front/viewer-request.js"
    );
}

#[test]
fn the_task_sets_every_variable_the_upload_service_reads() {
    let template = template();
    let task = upload_service_task(&template);
    let runtime = source(&repository_root().join("shared/runtime/src/lib.rs"));
    let body_of = |function: &str| {
        let start = runtime.find(function).expect("function");
        let end = runtime[start..]
            .find("\n}\n")
            .map_or(runtime.len(), |end| start + end);
        variables_in(&runtime[start..end])
    };
    let mut needed: BTreeSet<String> = BTreeSet::new();
    for function in [
        "pub fn settings_from_env",
        "pub async fn aws_stores",
        "pub fn init_tracing",
    ] {
        needed.extend(body_of(function));
    }
    needed.extend(
        [
            "STOWAGE_BACKEND",
            "STOWAGE_LISTEN",
            "STOWAGE_PURGE_INTERVAL_SECONDS",
        ]
        .map(str::to_owned),
    );
    assert!(needed.contains("STOWAGE_TABLE") && needed.contains("STOWAGE_PLAN_STANDARD_BYTES"));
    for name in &needed {
        assert!(
            task.environment.contains(name),
            "the upload service reads {name}, which its task does not set"
        );
    }
    let main = source(&repository_root().join("functions/local/src/main.rs"));
    for name in &task.environment {
        assert!(
            needed.contains(name)
                || variables_in(&main).contains(name)
                || variables_in(&runtime).contains(name)
                || name == "AWS_REGION",
            "the task sets {name}, which nothing reads"
        );
    }
    let parameters = keys(&template["Parameters"]);
    for parameter in [
        "UploadService",
        "UploadServiceImage",
        "UploadServiceTaskCount",
        "DomainName",
        "CertificateArn",
    ] {
        assert!(parameters.contains(parameter), "{parameter}");
    }
}

#[tokio::test]
async fn the_task_role_covers_the_aws_calls_the_upload_service_makes() {
    let recorder = CallRecorder::default();
    let Some(stores) = Stores::aws_recorded(&recorder).await else {
        return;
    };
    let task = upload_service_task(&template());
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let registry = registry_with_packages(
        &stores,
        clock,
        ADMIN_TOKEN,
        "api",
        &[
            ("container", "api/server"),
            ("npm", "left-pad"),
            ("maven", "com.acme:lib"),
        ],
    )
    .await;
    let lambda = AppState {
        registry: Arc::clone(&registry),
        public_url: None,
        limits: Limits::LAMBDA.with_upload_service(),
    };
    let oci_function = serve(stowage_oci::router(lambda)).await;
    let upload_service = serve(stowage_local::app(
        AppState {
            registry: Arc::clone(&registry),
            public_url: None,
            limits: Limits::local(1024 * 1024 * 1024),
        },
        None,
    ))
    .await;
    let http = reqwest::Client::new();
    let name = "acme/api/server";
    let start = || async {
        RegistryClient::new(&oci_function, "admin", ADMIN_TOKEN)
            .start_upload(name)
            .await
    };

    // Sessions started on the function; what follows, on the upload service alone.
    let (whole, chunked, mismatched) = (start().await, start().await, start().await);
    recorder.take();
    let layer = random_bytes(7 * 1024 * 1024);
    let put = http
        .put(format!("{upload_service}{whole}?digest={}", sha256(&layer)))
        .body(layer.clone())
        .send()
        .await
        .expect("PUT");
    assert_eq!(put.status(), StatusCode::CREATED);
    let other = random_bytes(6 * 1024 * 1024);
    let patched = http
        .patch(format!("{upload_service}{chunked}"))
        .body(other.clone())
        .send()
        .await
        .expect("PATCH");
    assert_eq!(patched.status(), StatusCode::ACCEPTED);
    let next = patched.headers()["location"].to_str().expect("location");
    let put = http
        .put(format!("{upload_service}{next}?digest={}", sha256(&other)))
        .send()
        .await
        .expect("PUT");
    assert_eq!(put.status(), StatusCode::CREATED);
    let refused = http
        .put(format!(
            "{upload_service}{mismatched}?digest={}",
            sha256(b"other bytes")
        ))
        .body(random_bytes(6 * 1024 * 1024))
        .send()
        .await
        .expect("PUT");
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    // A client that hangs up in the middle of a layer: its multipart upload is aborted.
    let broken = start().await;
    recorder.take_all();
    let hung_up = stowage_tests::send_partly(
        &upload_service,
        "PATCH",
        &broken,
        &[],
        32 * 1024 * 1024,
        &random_bytes(20 * 1024 * 1024),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    drop(hung_up);
    let mut during = Vec::new();
    for _ in 0..100 {
        during.extend(recorder.take_all());
        if during
            .iter()
            .any(|call| call.operation == "AbortMultipartUpload")
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        during
            .iter()
            .any(|call| call.operation == "AbortMultipartUpload"),
        "the broken upload was aborted: {during:?}"
    );

    // npm publishes (the same bytes twice: the second copy is dropped) and a tag.
    let npm = |path: &str| format!("{upload_service}/npm/acme{path}");
    for (version, bytes_of) in [("1.0.0", "1.0.0"), ("1.1.0", "1.1.0"), ("1.2.0", "1.0.0")] {
        let published = http
            .put(npm("/left-pad"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&publish_document(
                "left-pad",
                version,
                &tarball("left-pad", bytes_of),
            ))
            .send()
            .await
            .expect("publish");
        assert_eq!(published.status(), StatusCode::CREATED);
    }
    let tagged = http
        .put(npm("/-/package/left-pad/dist-tags/beta"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&"1.1.0")
        .send()
        .await
        .expect("tag");
    assert!(tagged.status().is_success());

    // Maven: a release file and its checksum, a SNAPSHOT file deployed twice.
    let maven = |path: &str| format!("{upload_service}/maven/acme/com/acme/lib{path}");
    let jar = random_bytes(6 * 1024 * 1024);
    let sha1 = hex::encode(<sha1::Sha1 as sha2::Digest>::digest(&jar));
    for (path, body) in [
        ("/1.0/lib-1.0.jar", jar.clone()),
        ("/1.0/lib-1.0.jar.sha1", sha1.into_bytes()),
        ("/1.1-SNAPSHOT/lib-1.1-SNAPSHOT.jar", random_bytes(2_000)),
        ("/1.1-SNAPSHOT/lib-1.1-SNAPSHOT.jar", random_bytes(2_000)),
    ] {
        let put = http
            .put(maven(path))
            .basic_auth("admin", Some(ADMIN_TOKEN))
            .body(body)
            .send()
            .await
            .expect("PUT");
        assert!(put.status().is_success(), "{path}: {}", put.status());
    }
    let mut calls = recorder.take();
    calls.extend(during);

    // A layer through an upstream that wants credentials: the function hands the miss over,
    // the upload service fetches it (streaming it to its client and to S3), and answers a
    // second request for it from storage.
    let tool = image(&[3_000], "amd64", OCI_MANIFEST);
    let upstream = container_upstream(&tool).await;
    let admin = registry
        .authenticate(&Credential::Bearer(TokenSecret::from_presented(
            ADMIN_TOKEN.to_owned(),
        )))
        .await
        .expect("admin");
    registry
        .attach_upstream(
            &admin,
            "acme",
            "api",
            NewUpstream {
                kind: PackageType::Container,
                url: upstream,
                credentials: Some(UpstreamCredentials {
                    username: Some("u".into()),
                    password: SecretString::from("p".to_owned()),
                }),
                priority: None,
            },
        )
        .await
        .expect("attach");
    let function = RegistryClient::new(&oci_function, "admin", ADMIN_TOKEN);
    let manifest = function.get("/v2/acme/api/lib/tool/manifests/1.0").await;
    assert_eq!(manifest.status(), StatusCode::OK);
    let layer = sha256(&tool.layers[0]);
    let handed_over = function
        .get(&format!("/v2/acme/api/lib/tool/blobs/{layer}"))
        .await;
    let location = handed_over_to(&handed_over, "/v2/acme");
    recorder.take();
    for attempt in ["fetched", "stored"] {
        let pulled = http
            .get(format!("{upload_service}{location}"))
            .send()
            .await
            .expect("GET");
        assert!(
            pulled.status().is_success(),
            "{attempt}: {}",
            pulled.status()
        );
        assert_eq!(
            pulled.bytes().await.expect("layer")[..],
            tool.layers[0][..],
            "{attempt}"
        );
    }
    calls.extend(recorder.take());
    assert_covered(&task, &calls);
}
