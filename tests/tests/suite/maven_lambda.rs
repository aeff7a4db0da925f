//! The Maven repository on the Lambda path: a deploy over the request limit names it, and
//! instances never serve each other stale metadata.

use std::sync::Arc;

use stowage_domain::ManualClock;
use stowage_http::{AppState, Limits};
use stowage_tests::lambda::{LambdaFunction, registry_with_packages};
use stowage_tests::oci::random_bytes;
use stowage_tests::{ADMIN_TOKEN, Stores, on_both_backends};

on_both_backends!(
    a_deploy_over_the_limit_names_it,
    metadata_is_never_stale_across_instances
);

async fn a_deploy_over_the_limit_names_it(stores: Stores) {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let registry = registry_with_packages(
        &stores,
        clock,
        ADMIN_TOKEN,
        "libs",
        &[("maven", "com.acme:lib")],
    )
    .await;
    let state = AppState {
        registry,
        public_url: None,
        limits: Limits::LAMBDA,
    };
    let function = LambdaFunction::new(stowage_maven::router(state), "ANY /maven/{proxy+}");
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let path = "/maven/acme/com/acme/lib/1.0/lib-1.0.jar";

    let refused = function
        .call(
            "PUT",
            path,
            &[("authorization", &auth)],
            &random_bytes(4_500_000),
        )
        .await;
    assert_eq!(refused.status, 413);
    let message = String::from_utf8_lossy(&refused.body).into_owned();
    assert!(
        message.contains("4400000") && message.contains("Lambda"),
        "{message}"
    );
    assert_eq!(
        function
            .call(
                "GET",
                &format!("{path}.sha1"),
                &[("authorization", &auth)],
                b""
            )
            .await
            .status,
        404,
        "nothing was stored"
    );
    let jar = random_bytes(1_000_000);
    assert_eq!(
        function
            .call("PUT", path, &[("authorization", &auth)], &jar)
            .await
            .status,
        201
    );
    assert_eq!(
        function
            .call("HEAD", path, &[("authorization", &auth)], b"")
            .await
            .status,
        200
    );
    assert_eq!(
        function
            .call("GET", path, &[("authorization", &auth)], b"")
            .await
            .status,
        307
    );
}

/// Two warm instances of the function over the same stores: each keeps the metadata it
/// generated, and each must see at once what the other deployed.
async fn metadata_is_never_stale_across_instances(stores: Stores) {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let registry = registry_with_packages(
        &stores,
        clock,
        ADMIN_TOKEN,
        "libs",
        &[("maven", "com.acme:lib")],
    )
    .await;
    let instance = || {
        let state = AppState {
            registry: Arc::clone(&registry),
            public_url: None,
            limits: Limits::LAMBDA,
        };
        LambdaFunction::new(stowage_maven::router(state), "ANY /maven/{proxy+}")
    };
    let (first, second) = (instance(), instance());
    let base = "/maven/acme/com/acme/lib";
    let artifact_metadata = format!("{base}/maven-metadata.xml");
    let snapshot_metadata = format!("{base}/2.0-SNAPSHOT/maven-metadata.xml");

    deploy(&first, &format!("{base}/1.0/lib-1.0.jar")).await;
    for _ in 0..2 {
        let xml = read(&first, &artifact_metadata).await;
        assert!(xml.contains("<latest>1.0</latest>"), "{xml}");
    }
    let sha1 = read(&first, &format!("{artifact_metadata}.sha1")).await;

    deploy(&second, &format!("{base}/1.1/lib-1.1.jar")).await;
    let xml = read(&first, &artifact_metadata).await;
    assert!(xml.contains("<version>1.0</version>"), "{xml}");
    assert!(xml.contains("<latest>1.1</latest>"), "{xml}");
    assert_ne!(
        read(&first, &format!("{artifact_metadata}.sha1")).await,
        sha1,
        "the checksum follows the document"
    );

    deploy(
        &first,
        &format!("{base}/2.0-SNAPSHOT/lib-2.0-20261127.010000-1.jar"),
    )
    .await;
    let xml = read(&second, &snapshot_metadata).await;
    assert!(xml.contains("<buildNumber>1</buildNumber>"), "{xml}");
    deploy(
        &first,
        &format!("{base}/2.0-SNAPSHOT/lib-2.0-20261127.020000-2.jar"),
    )
    .await;
    let xml = read(&second, &snapshot_metadata).await;
    assert!(xml.contains("<buildNumber>2</buildNumber>"), "{xml}");
    let xml = read(&second, &artifact_metadata).await;
    assert!(xml.contains("<latest>2.0-SNAPSHOT</latest>"), "{xml}");
    assert!(xml.contains("<release>1.1</release>"), "{xml}");
}

async fn read(function: &LambdaFunction, path: &str) -> String {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let reply = function
        .call("GET", path, &[("authorization", &auth)], b"")
        .await;
    assert_eq!(reply.status, 200, "{path}");
    String::from_utf8(reply.body).expect("UTF-8")
}

async fn deploy(function: &LambdaFunction, path: &str) {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let reply = function
        .call("PUT", path, &[("authorization", &auth)], b"bytes")
        .await;
    assert_eq!(reply.status, 201, "{path}");
}
