//! Every sample event in `events/` goes through the Lambda entry path: lambda_http's own
//! conversion of an API Gateway event into a request, then the function's router, then back
//! into the Lambda response, as `lambda_http::run` does it; the schedule's event through the
//! purge function's handler.

use std::path::PathBuf;
use std::sync::Arc;

use lambda_http::request::LambdaRequest;
use lambda_http::tower::Service as _;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;
use stowage_domain::{ManualClock, TokenSecret};
use stowage_http::{AppState, Limits};
use stowage_tests::Stores;
use stowage_tests::lambda::registry_with_packages;

/// The token the sample events carry (a fixture, never a real secret).
const EVENTS_TOKEN: &str = "stw_exampleTokenForSampleEventsOnly00000000";

/// The purge function's scheduled event.
const SCHEDULED: &str = "purge-schedule.json";

/// Each event's expected status. A new event must be listed here, or the test fails.
const EXPECTED: &[(&str, u16)] = &[
    ("admin-current-user.json", 200),
    ("admin-create-workspace.json", 201),
    ("admin-create-package-base64-body.json", 201),
    ("admin-get-package.json", 200),
    ("admin-unauthenticated.json", 401),
    ("admin-invalid-slug.json", 400),
    ("oci-ping-unauthenticated.json", 401),
    ("oci-ping.json", 200),
    ("oci-ping-without-slash.json", 200),
    ("oci-token.json", 200),
    ("oci-tags-list.json", 200),
    ("oci-manifest-unknown.json", 404),
    ("oci-start-upload.json", 202),
    ("oci-monolithic-upload.json", 201),
    ("oci-invalid-name.json", 400),
    ("npm-publish.json", 201),
    ("npm-document-not-published.json", 404),
    ("npm-whoami.json", 200),
    ("npm-ping.json", 200),
    ("npm-search.json", 200),
    ("npm-invalid-name.json", 400),
    ("maven-deploy-jar.json", 201),
    ("maven-metadata-unknown.json", 404),
    ("maven-get-unauthenticated.json", 401),
    ("maven-wrong-artifact.json", 400),
    ("web-home-signed-out.json", 303),
    ("web-sign-in-form.json", 200),
    ("web-missing-asset.json", 404),
];

/// A fresh registry holding workspace `acme`, repository `api` and packages `api/server`
/// (container) and `left-pad` (npm),
/// administered by the site admin whose token the events carry.
async fn fixture() -> (AppState, Stores, Arc<ManualClock>) {
    let stores = Stores::embedded(url::Url::parse("http://127.0.0.1:1/").expect("url"));
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    // `@acme/ui` is left for the event that creates it.
    let registry = registry_with_packages(
        &stores,
        Arc::clone(&clock),
        EVENTS_TOKEN,
        "api",
        &[
            ("container", "api/server"),
            ("npm", "left-pad"),
            ("maven", "com.acme:lib"),
        ],
    )
    .await;
    let state = AppState {
        registry,
        public_url: None,
        limits: Limits::LAMBDA,
    };
    (state, stores, clock)
}

fn router_for(event: &str, state: AppState) -> axum::Router {
    match event.split('-').next() {
        Some("admin") => stowage_admin::router(state),
        Some("oci") => stowage_oci::router(state),
        Some("npm") => stowage_npm::router(state),
        Some("maven") => stowage_maven::router(state),
        Some("web") => stowage_web::router(state),
        other => panic!("no function serves events named {other:?}"),
    }
}

async fn run_event(name: &str, text: &str) -> Value {
    let (state, _stores, _clock) = fixture().await;
    let payload: LambdaRequest = serde_json::from_str(text).expect("an API Gateway event");
    let mut entry = lambda_http::Adapter::from(router_for(name, state));
    let response = entry
        .call(LambdaEvent::new(payload, Context::default()))
        .await
        .expect("the function answers");
    serde_json::to_value(&response).expect("a Lambda response")
}

#[tokio::test]
async fn every_event_runs_through_the_lambda_entry_path() {
    let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events");
    let mut names: Vec<String> = std::fs::read_dir(&folder)
        .expect("events folder")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".json"))
        .collect();
    names.sort();
    assert!(!names.is_empty());
    assert!(names.iter().any(|name| name == SCHEDULED));
    for name in names {
        if name == SCHEDULED {
            continue;
        }
        let expected = EXPECTED
            .iter()
            .find(|(event, _)| *event == name)
            .unwrap_or_else(|| panic!("{name} has no expected status in events.rs"))
            .1;
        let text = std::fs::read_to_string(folder.join(&name)).expect("read event");
        let response = run_event(&name, &text).await;
        assert_eq!(response["statusCode"], expected, "{name}: {response}");
        let body = response["body"].as_str().unwrap_or_default();
        if expected >= 400 {
            // Each protocol's own error shape: Maven's is plain text, the web interface's a
            // page.
            if name.starts_with("web") {
                assert!(body.starts_with("<!doctype html>"), "{name}: {body}");
            } else if !name.starts_with("maven") {
                let error: Value = serde_json::from_str(body).expect("errors are JSON");
                let code = match name.split('-').next() {
                    Some("oci") => &error["errors"][0]["code"],
                    Some("npm") => &error["error"],
                    _ => &error["error"]["code"],
                };
                assert!(code.is_string(), "{name}: {body}");
            } else {
                assert!(!body.is_empty(), "{name}: a reason");
            }
        }
    }
}

/// The schedule's event runs a purge that ends before the invocation's deadline.
#[tokio::test]
async fn the_scheduled_event_runs_the_purge_through_its_handler() {
    let (state, _stores, clock) = fixture().await;
    let registry = &state.registry;
    let admin = registry
        .authenticate(&stowage_service::Credential::Bearer(
            TokenSecret::from_presented(EVENTS_TOKEN.to_owned()),
        ))
        .await
        .expect("admin");
    registry
        .delete_package(&admin, "acme", "npm", "left-pad")
        .await
        .expect("delete");
    clock.advance(chrono::Duration::days(31));

    let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events");
    let text = std::fs::read_to_string(folder.join(SCHEDULED)).expect("read event");
    let payload: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(payload["detail-type"], "Scheduled Event");
    let mut context = Context::default();
    let deadline = std::time::SystemTime::now() + std::time::Duration::from_secs(300);
    context.deadline = deadline
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64;
    let report = stowage_purge::handle(registry, LambdaEvent::new(payload.clone(), context))
        .await
        .expect("the purge runs");
    assert_eq!(report["finished"], true, "{report}");
    let purged = report["purged"].as_array().expect("purged");
    assert!(
        purged
            .iter()
            .any(|target| target.as_str().is_some_and(|t| t.contains("left-pad"))),
        "{report}"
    );

    // An invocation with less time left than the safety margin stops at once, unfinished.
    let mut late = Context::default();
    late.deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64
        + 1_000;
    registry
        .delete_package(&admin, "acme", "maven", "com.acme:lib")
        .await
        .expect("delete");
    clock.advance(chrono::Duration::days(31));
    let report = stowage_purge::handle(registry, LambdaEvent::new(payload, late))
        .await
        .expect("the purge runs");
    assert_eq!(report["finished"], false, "{report}");
}
