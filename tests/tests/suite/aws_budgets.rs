//! What each benchmarked read costs on AWS: the DynamoDB and S3 calls it makes, counted at the
//! SDK on moto, beside the design's budgets. The table is printed (`tests/bench/run` shows it;
//! `cargo test -p stowage-tests -- aws_budgets --nocapture`), and the budgets are asserted.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{Value, json};
use stowage_tests::aws_calls::{AwsCall, CallRecorder};
use stowage_tests::npm::{publish_document, tarball};
use stowage_tests::oci::{OCI_MANIFEST, RegistryClient, image, random_bytes, sha256};
use stowage_tests::{Auth, Stores, TestServer};

/// An operation's requests to DynamoDB and to S3 (presigning sends none), and a description.
fn describe(calls: &[AwsCall]) -> (usize, usize, String) {
    let mut by_operation: BTreeMap<String, usize> = BTreeMap::new();
    for call in calls {
        let presigned = if call.presigned {
            " (presigned URL)"
        } else {
            ""
        };
        *by_operation
            .entry(format!("{} {}{presigned}", call.service, call.operation))
            .or_default() += 1;
    }
    let dynamodb = calls.iter().filter(|c| c.service == "DynamoDB").count();
    let s3 = calls
        .iter()
        .filter(|c| c.service == "S3" && !c.presigned)
        .count();
    let text = by_operation
        .iter()
        .map(|(operation, n)| format!("{operation} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ");
    (dynamodb, s3, text)
}

#[tokio::test]
async fn each_benchmarked_read_stays_within_its_aws_call_budget() {
    let recorder = CallRecorder::default();
    let Some(stores) = Stores::aws_recorded(&recorder).await else {
        return;
    };
    let server = TestServer::start(stores).await;
    let alice = server
        .user_with_token("alice", &["read:package", "write:package"])
        .await;
    for (kind, name) in [
        ("container", "api/server"),
        ("npm", "left-pad"),
        ("maven", "com.acme:lib"),
    ] {
        server.package(&alice, "acme", "api", kind, name).await;
    }
    let oci = RegistryClient::new(&server.url, "alice", &alice);
    let img = image(&[4_000], "amd64", OCI_MANIFEST);
    oci.push_image("acme/api/server", "1.0", &img).await;
    for minor in 0..100 {
        let version = format!("1.{minor}.0");
        let (status, _) = server
            .call(
                "PUT",
                "/npm/acme/left-pad",
                Auth::Bearer(&alice),
                Some(publish_document(
                    "left-pad",
                    &version,
                    &tarball("left-pad", &version),
                )),
            )
            .await;
        assert_eq!(status, 201);
    }
    let jar = random_bytes(5_000);
    for (file, body) in [
        ("lib-1.0.jar", jar.clone()),
        ("lib-1.0.pom", b"<project/>".to_vec()),
    ] {
        let put = oci
            .http
            .put(format!("{}/maven/acme/com/acme/lib/1.0/{file}", server.url))
            .basic_auth("alice", Some(&alice))
            .body(body)
            .send()
            .await
            .expect("PUT");
        assert_eq!(put.status(), 201);
    }
    // Container reads use the Docker token flow, as docker and skopeo do.
    let token: Value = oci
        .http
        .get(format!(
            "{}/v2/token?scope=repository:acme/api/server:pull",
            server.url
        ))
        .basic_auth("alice", Some(&alice))
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let bearer = token["token"].as_str().expect("token").to_owned();
    let blob = sha256(&img.layers[0]);
    let abbreviated = "application/vnd.npm.install-v1+json";
    // (name, method, path, bearer, accept, budget: at most this many DynamoDB calls, no S3).
    // A package is opened with one batch read (its workspace, repository, record and the
    // caller's roles); a document adds one paged Query, a file or tarball the link to its
    // object.
    let operations: Vec<(&str, Method, String, &str, &str, usize)> = vec![
        (
            "manifest GET by tag",
            Method::GET,
            "/v2/acme/api/server/manifests/1.0".into(),
            &bearer,
            OCI_MANIFEST,
            2,
        ),
        (
            "manifest HEAD by tag",
            Method::HEAD,
            "/v2/acme/api/server/manifests/1.0".into(),
            &bearer,
            OCI_MANIFEST,
            2,
        ),
        (
            "blob HEAD",
            Method::HEAD,
            format!("/v2/acme/api/server/blobs/{blob}"),
            &bearer,
            "*/*",
            1,
        ),
        (
            "blob GET (redirect)",
            Method::GET,
            format!("/v2/acme/api/server/blobs/{blob}"),
            &bearer,
            "*/*",
            1,
        ),
        (
            "tag list",
            Method::GET,
            "/v2/acme/api/server/tags/list".into(),
            &bearer,
            "*/*",
            2,
        ),
        (
            "npm abbreviated document, 100 versions",
            Method::GET,
            "/npm/acme/left-pad".into(),
            &alice,
            abbreviated,
            2,
        ),
        (
            "npm full document, 100 versions",
            Method::GET,
            "/npm/acme/left-pad".into(),
            &alice,
            "application/json",
            2,
        ),
        (
            "npm tarball GET (redirect)",
            Method::GET,
            "/npm/acme/left-pad/-/left-pad-1.7.0.tgz".into(),
            &alice,
            "*/*",
            1,
        ),
        (
            "maven pom GET (redirect)",
            Method::GET,
            "/maven/acme/com/acme/lib/1.0/lib-1.0.pom".into(),
            &alice,
            "*/*",
            1,
        ),
        (
            "maven jar HEAD",
            Method::HEAD,
            "/maven/acme/com/acme/lib/1.0/lib-1.0.jar".into(),
            &alice,
            "*/*",
            1,
        ),
        (
            "maven-metadata.xml GET",
            Method::GET,
            "/maven/acme/com/acme/lib/maven-metadata.xml".into(),
            &alice,
            "*/*",
            1,
        ),
    ];
    let mut rows = Vec::new();
    for (name, method, path, credential, accept, budget) in operations {
        let send = || {
            oci.http
                .request(method.clone(), format!("{}{path}", server.url))
                .bearer_auth(credential)
                .header("accept", accept)
                .send()
        };
        // Once to warm the credential cache, as any busy instance is; then counted.
        let warm = send().await.expect("request");
        assert!(
            warm.status().is_success() || warm.status().is_redirection(),
            "{name}: {}",
            warm.status()
        );
        recorder.take_all();
        let response = send().await.expect("request");
        let calls = recorder.take_all();
        assert!(
            response.status().is_success() || response.status().is_redirection(),
            "{name}"
        );
        let (dynamodb, s3, text) = describe(&calls);
        rows.push(json!({"operation": name, "dynamodb_calls": dynamodb, "s3_calls": s3, "budget_dynamodb": budget, "calls": text}));
        assert!(dynamodb <= budget, "{name}: {text} (budget {budget})");
        assert_eq!(s3, 0, "{name}: {text}");
        if name.starts_with("npm abbreviated") {
            let queries = calls.iter().filter(|c| c.operation == "Query").count();
            assert_eq!(queries, 1, "{name}: one paged Query, no scan: {text}");
        }
        assert!(
            calls.iter().all(|c| c.operation != "Scan"),
            "{name}: {text}"
        );
    }
    println!("\nAWS calls per request (moto), after a warm-up request:");
    println!(
        "{:<42} {:>8} {:>4} {:>7}  calls",
        "operation", "DynamoDB", "S3", "budget"
    );
    for row in &rows {
        println!(
            "{:<42} {:>8} {:>4} {:>7}  {}",
            row["operation"].as_str().unwrap_or_default(),
            row["dynamodb_calls"].as_u64().unwrap_or_default(),
            row["s3_calls"].as_u64().unwrap_or_default(),
            format!("≤{}", row["budget_dynamodb"]),
            row["calls"].as_str().unwrap_or_default()
        );
    }
    if let Some(path) = std::env::var_os("STOWAGE_BUDGETS_JSON") {
        std::fs::write(path, serde_json::to_vec_pretty(&rows).expect("JSON"))
            .expect("write budgets");
    }
}
