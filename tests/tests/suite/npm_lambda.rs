//! The npm registry on the Lambda path: request and response size limits.

use std::sync::Arc;

use serde_json::json;
use stowage_domain::ManualClock;
use stowage_http::{AppState, Limits};
use stowage_service::Registry;
use stowage_tests::lambda::{LambdaFunction, registry_with_packages};
use stowage_tests::npm::{publish_document, tarball};
use stowage_tests::oci::random_bytes;
use stowage_tests::{ADMIN_TOKEN, Stores, collect, on_both_backends};

on_both_backends!(
    a_publish_over_the_limit_names_it,
    a_document_over_the_response_limit_is_redirected
);

async fn deployed(stores: &Stores) -> (Arc<Registry>, LambdaFunction, String) {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let registry =
        registry_with_packages(stores, clock, ADMIN_TOKEN, "web", &[("npm", "big-docs")]).await;
    let state = AppState {
        registry: Arc::clone(&registry),
        public_url: None,
        limits: Limits::LAMBDA,
    };
    let function = LambdaFunction::new(stowage_npm::router(state), "ANY /npm/{proxy+}");
    (registry, function, format!("Bearer {ADMIN_TOKEN}"))
}

async fn a_publish_over_the_limit_names_it(stores: Stores) {
    let (_registry, function, auth) = deployed(&stores).await;
    // A tarball of 3.5 MB is 4.7 MB in base64: the event fits in 6 MB, the function's share does not.
    let big = random_bytes(3_500_000);
    let document = publish_document("big-docs", "1.0.0", &big);
    let body = document.to_string();
    let refused = function
        .call(
            "PUT",
            "/npm/acme/big-docs",
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            body.as_bytes(),
        )
        .await;
    assert_eq!(refused.status, 413);
    let message = refused.json()["error"]
        .as_str()
        .expect("npm's error shape")
        .to_owned();
    assert!(
        message.contains("4400000") && message.contains("Lambda"),
        "{message}"
    );
    let fits = publish_document("big-docs", "1.0.0", &tarball("big-docs", "1.0.0")).to_string();
    let published = function
        .call(
            "PUT",
            "/npm/acme/big-docs",
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            fits.as_bytes(),
        )
        .await;
    assert_eq!(published.status, 201);
}

async fn a_document_over_the_response_limit_is_redirected(stores: Stores) {
    let (registry, function, auth) = deployed(&stores).await;
    // 40 versions with a 150 KB description each: a full document of about 6 MB.
    let description = "d".repeat(150_000);
    for i in 0..40 {
        let version = format!("1.0.{i}");
        let mut document = publish_document("big-docs", &version, &tarball("big-docs", &version));
        document["versions"][&version]["description"] = json!(description);
        let body = document.to_string();
        let published = function
            .call(
                "PUT",
                "/npm/acme/big-docs",
                &[("authorization", &auth)],
                body.as_bytes(),
            )
            .await;
        assert_eq!(published.status, 201);
    }
    let response = function
        .call(
            "GET",
            "/npm/acme/big-docs",
            &[("authorization", &auth), ("accept", "application/json")],
            b"",
        )
        .await;
    assert_eq!(
        response.status, 307,
        "a document over the Lambda response limit is redirected"
    );
    let location = response.header("location").expect("location");
    // The redirect leads to the whole document, as the blob store holds it.
    let url = url::Url::parse(location).expect("url");
    let key = url.path().trim_start_matches('/');
    let key = key.strip_prefix("_blob/").unwrap_or(key);
    let key = key
        .strip_prefix(&format!(
            "{}/",
            stores.aws.as_ref().map(|a| a.name.as_str()).unwrap_or("")
        ))
        .unwrap_or(key);
    let stored = collect(
        registry
            .inspect_blobs()
            .get(key, None)
            .await
            .expect("the handed-over document")
            .body,
    )
    .await;
    let document: serde_json::Value = serde_json::from_slice(&stored).expect("JSON");
    assert_eq!(document["versions"].as_object().map(|v| v.len()), Some(40));
    assert!(stored.len() > 5 * 1024 * 1024);
    // The abbreviated document leaves descriptions out, and fits.
    let response = function
        .call(
            "GET",
            "/npm/acme/big-docs",
            &[
                ("authorization", &auth),
                ("accept", "application/vnd.npm.install-v1+json"),
            ],
            b"",
        )
        .await;
    assert_eq!(response.status, 200);
}
