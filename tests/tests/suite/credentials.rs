//! Credentials: the cost of checking one, how fast a revocation spreads, and that secrets
//! never reach logs or storage in clear.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use http::StatusCode;
use serde_json::json;
use stowage_domain::{ManualClock, TokenSecret};
use stowage_http::Limits;
use stowage_service::{Credential, Error, Registry, Settings};
use stowage_tests::{ADMIN_TOKEN, Auth, Backend, Stores, TestServer, on_both_backends};

on_both_backends!(
    a_credential_costs_one_read_then_none,
    revocation_reaches_other_instances_within_the_cache_time,
    secrets_never_reach_logs_or_storage,
);

async fn a_credential_costs_one_read_then_none(stores: Stores) {
    let server = TestServer::start(stores).await;
    let alice = server.user_with_token("alice", &["read:package"]).await;
    server.metadata_calls.reset();
    let (status, _) = server
        .call("GET", "/api/user", Auth::Basic("alice", &alice), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        server.metadata_calls.snapshot(),
        (1, 0, 0),
        "the first request reads the token once"
    );
    for _ in 0..5 {
        server
            .call("GET", "/api/user", Auth::Bearer(&alice), None)
            .await;
    }
    assert_eq!(
        server.metadata_calls.snapshot(),
        (1, 0, 0),
        "later requests are served from the cache"
    );
}

async fn revocation_reaches_other_instances_within_the_cache_time(stores: Stores) {
    let settings = Settings {
        credential_cache_ttl: Duration::from_secs(1),
        ..Settings::default()
    };
    let server = TestServer::start_with(stores, settings.clone(), Limits::local(1 << 20)).await;
    let alice = server.user_with_token("alice", &["write:package"]).await;
    // A second instance over the same storage, as another Lambda would be.
    let clock = Arc::new(ManualClock::new(server.clock_now()));
    let other = Registry::new(
        Arc::clone(&server.stores.metadata),
        Arc::clone(&server.stores.blobs),
        clock,
        settings,
    );
    let credential = Credential::Bearer(TokenSecret::from_presented(alice.clone()));
    other
        .authenticate(&credential)
        .await
        .expect("valid before revocation");

    let (_, tokens) = server
        .call("GET", "/api/tokens", Auth::Bearer(&alice), None)
        .await;
    let id = tokens["values"][0]["id"].as_str().expect("id").to_owned();
    let (status, _) = server
        .call(
            "DELETE",
            &format!("/api/tokens/{id}"),
            Auth::Bearer(&alice),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // The instance that revoked it stops at once; the other within its cache time.
    assert_eq!(
        server.status("GET", "/api/user", &alice).await,
        StatusCode::UNAUTHORIZED
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(matches!(
        other.authenticate(&credential).await,
        Err(Error::Unauthenticated)
    ));
}

/// Every log line of the test process, at the most verbose level of our own crates.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&logs);
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("stowage=trace,stowage_service=trace,stowage_http=trace,stowage_admin=trace,tower_http=trace,axum=trace,info")
            .with_writer(move || SharedWriter(Arc::clone(&sink)))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
        logs
    })
    .clone()
}

struct SharedWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for SharedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every byte the store holds, as text: the SQLite files, or a scan of the DynamoDB table.
async fn stored_bytes(stores: &Stores) -> String {
    match stores.backend {
        Backend::Embedded => {
            let mut all = Vec::new();
            for file in ["stowage.db", "stowage.db-wal"] {
                if let Ok(bytes) = std::fs::read(stores.dir.path().join(file)) {
                    all.extend(bytes);
                }
            }
            String::from_utf8_lossy(&all).into_owned()
        }
        Backend::Aws => {
            let aws = stores.aws.as_ref().expect("aws table");
            let output = aws
                .dynamodb
                .scan()
                .table_name(&aws.name)
                .send()
                .await
                .expect("scan (test only)");
            let mut all = String::new();
            for item in output.items() {
                all.push_str(&format!("{item:?}"));
                if let Some(data) = item.get("d").and_then(|d| d.as_b().ok()) {
                    all.push_str(&String::from_utf8_lossy(data.as_ref()));
                }
            }
            all
        }
    }
}

async fn secrets_never_reach_logs_or_storage(stores: Stores) {
    let logs = captured_logs();
    let server = TestServer::start(stores).await;
    let alice = server.user_with_token("alice", &["write:package"]).await;
    server.package(&alice, "acme", "api", "npm", "lib").await;
    let (_, pipeline) = server
        .call(
            "POST",
            "/api/workspaces/acme/repositories/api/pipeline-tokens",
            Auth::Bearer(&alice),
            Some(json!({})),
        )
        .await;
    let pipeline = pipeline["token"].as_str().expect("token").to_owned();
    // Use each secret the ways clients do, including failing ones.
    server
        .call("GET", "/api/user", Auth::Basic("alice", &alice), None)
        .await;
    server
        .call("GET", "/api/user", Auth::Basic("mallory", &alice), None)
        .await;
    server
        .call(
            "GET",
            "/api/workspaces/acme/packages",
            Auth::Basic("pipeline@acme/api", &pipeline),
            None,
        )
        .await;
    server
        .call("GET", "/api/user", Auth::Bearer(&format!("{alice}x")), None)
        .await;

    let secrets = [alice.as_str(), pipeline.as_str(), ADMIN_TOKEN];
    let stored = stored_bytes(&server.stores).await;
    assert!(stored.contains("alice"), "the scan reads the records");
    let logged = String::from_utf8_lossy(&logs.lock().expect("logs")).into_owned();
    assert!(
        logged.contains("/api/workspaces/acme/packages"),
        "the capture sees this test's requests"
    );
    for secret in secrets {
        let random_part = &secret[4..];
        assert!(!stored.contains(random_part), "a secret is stored in clear");
        assert!(!logged.contains(random_part), "a secret was logged");
    }
}

/// On Lambda, each request leaves one JSON line with what operators search by.
#[tokio::test]
async fn each_request_is_logged_as_json_with_its_context_and_no_secret() {
    let Some(server) = stowage_tests::clients::LocalServer::start_with_json_logs().await else {
        return;
    };
    server
        .create_package("acme", "api", "npm", "left-pad")
        .await;
    let client = reqwest::Client::new();
    let document = client
        .get(format!("{}/npm/acme/left-pad", server.url))
        .bearer_auth(&server.admin_token)
        .header("X-Request-Id", "req-0001")
        .send()
        .await
        .expect("GET");
    assert_eq!(
        document.status(),
        StatusCode::NOT_FOUND,
        "nothing published yet"
    );
    let denied = client
        .get(format!("{}/v2/acme/api/manifests/1.0", server.url))
        .basic_auth("admin", Some("stw_not-a-real-token"))
        .send()
        .await
        .expect("GET");
    assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);

    let logged = std::fs::read_to_string(server.log_file()).expect("log");
    let requests: Vec<serde_json::Value> = logged
        .lines()
        .map(|line| serde_json::from_str(line).expect("every line is JSON"))
        .filter(|line: &serde_json::Value| line["fields"]["message"] == "request")
        .collect();
    let npm = requests
        .iter()
        .find(|line| line["span"]["request_id"] == "req-0001")
        .expect("the npm request, by the caller's request id");
    assert_eq!(npm["span"]["workspace"], "acme");
    assert_eq!(npm["span"]["package"], "left-pad");
    assert_eq!(npm["span"]["operation"], "npm.document.get");
    assert_eq!(npm["fields"]["status"], 404);
    assert_eq!(npm["fields"]["outcome"], "refused");
    assert!(
        npm["fields"]["latency_ms"]
            .as_f64()
            .is_some_and(|ms| ms >= 0.0)
    );
    let oci = requests
        .iter()
        .find(|line| line["span"]["operation"] == "oci.manifest.get")
        .expect("the manifest request");
    assert_eq!(oci["span"]["package"], "api");
    assert!(
        oci["span"]["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "an id is made up"
    );
    let admin = requests
        .iter()
        .find(|line| line["span"]["operation"] == "/api/workspaces/{workspace}/packages")
        .expect("the management request");
    assert_eq!(admin["span"]["workspace"], "acme");
    assert_eq!(admin["fields"]["status"], 201);
    assert!(
        !logged.contains(&server.admin_token[4..]),
        "a token was logged"
    );
    assert!(
        !logged.contains("not-a-real-token"),
        "a presented secret was logged"
    );
}
