//! The Maven repository on the Lambda path: a deploy over the request limit names it.

use std::sync::Arc;

use stowage_domain::ManualClock;
use stowage_http::{AppState, Limits};
use stowage_tests::lambda::{LambdaFunction, registry_with_packages};
use stowage_tests::oci::random_bytes;
use stowage_tests::{ADMIN_TOKEN, Stores, on_both_backends};

on_both_backends!(a_deploy_over_the_limit_names_it);

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
