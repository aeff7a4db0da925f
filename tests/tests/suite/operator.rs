//! An operator's basics, with the real binary: a new admin token minted offline, a configured
//! admin token checked (and said to be ignored once the data has an admin), and a server
//! listening for other machines refused until it knows the URL they reach it at.

use stowage_tests::clients::{LocalServer, run};

/// `stowage-local admin-token` on a server's data, while it runs: a new site admin token,
/// printed once, that the server accepts.
#[tokio::test]
async fn a_new_admin_token_is_minted_offline() {
    let Some(mut server) = LocalServer::start_with_json_logs().await else {
        return;
    };
    let binary = LocalServer::binary();
    let data = server.data.path().display().to_string();
    let minted = run(
        binary.to_str().expect("path"),
        &["admin-token", "--data-dir", &data, "--name", "replacement"],
        &[("STOWAGE_LOG", "warn")],
    )
    .await
    .ok("stowage-local admin-token");
    assert!(
        minted
            .stdout
            .starts_with("A new token for the site admin 'admin', expiring "),
        "{}",
        minted.stdout
    );
    let token = minted
        .stdout
        .split_whitespace()
        .find(|word| word.starts_with("stw_"))
        .expect("the token")
        .to_owned();
    let client = reqwest::Client::new();
    let user: serde_json::Value = client
        .get(format!("{}/api/user", server.url))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("JSON");
    assert_eq!(user["username"], "admin");

    // Started again with STOWAGE_BOOTSTRAP_TOKEN set, on data that has an admin: it says the
    // variable is ignored.
    server.kill().await;
    server.restart().await;
    let log = std::fs::read_to_string(server.log_file()).expect("log");
    assert!(
        log.contains("STOWAGE_BOOTSTRAP_TOKEN (or _SHA256) is ignored"),
        "{log}"
    );

    // On data without an admin, the command says what to do first.
    let empty = tempfile::tempdir().expect("folder");
    let refused = run(
        binary.to_str().expect("path"),
        &[
            "admin-token",
            "--data-dir",
            &empty.path().display().to_string(),
        ],
        &[("STOWAGE_LOG", "warn")],
    )
    .await;
    assert!(!refused.success);
    assert!(
        refused.stderr.contains("start the server once"),
        "{}",
        refused.stderr
    );
}

/// What the server refuses to start with, and says why.
#[tokio::test]
async fn a_server_refuses_what_would_break_it() {
    let binary = LocalServer::binary();
    if !binary.exists() {
        return;
    }
    let binary = binary.to_str().expect("path");
    let data = tempfile::tempdir().expect("folder");
    let data = data.path().display().to_string();
    let why = "must be stw_, then at least 32 letters and digits";
    for token in ["secret", "stw_short"] {
        let started = run(
            "timeout",
            &["10", binary, "--data-dir", &data, "--listen", "127.0.0.1:0"],
            &[("STOWAGE_BOOTSTRAP_TOKEN", token)],
        )
        .await;
        assert!(!started.success);
        assert!(
            started
                .stderr
                .contains(&format!("STOWAGE_BOOTSTRAP_TOKEN: {why}")),
            "{}",
            started.stderr
        );
        assert!(!started.stderr.contains(token) || token == "secret");
    }
    let started = run(
        "timeout",
        &["10", binary, "--data-dir", &data, "--listen", "0.0.0.0:0"],
        &[],
    )
    .await;
    assert!(!started.success);
    assert!(
        started.stderr.contains("give it with --public-url"),
        "{}",
        started.stderr
    );
}

/// The request log: a refusal's line carries its reason (a code), the operation is named
/// once; and text logs into a file carry no colour codes.
#[tokio::test]
async fn logs_say_why_and_carry_no_colour_codes() {
    let Some(server) = LocalServer::start_with_json_logs().await else {
        return;
    };
    let client = reqwest::Client::new();
    let refused = client
        .get(format!("{}/api/user", server.url))
        .send()
        .await
        .expect("request");
    assert_eq!(refused.status(), 401);
    let unknown = client
        .get(format!("{}/v2/acme/api/server/tags/list", server.url))
        .basic_auth("admin", Some(&server.admin_token))
        .send()
        .await
        .expect("request");
    assert_eq!(unknown.status(), 404);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let log = std::fs::read_to_string(server.log_file()).expect("log");
    let line = |path: &str| {
        log.lines()
            .find(|line| {
                line.contains(&format!("\"path\":\"{path}\"")) && line.contains("\"status\"")
            })
            .unwrap_or_else(|| panic!("no request line for {path}:\n{log}"))
            .to_owned()
    };
    let health = client
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .expect("request");
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.expect("body"), "ok\n");
    let api = line("/api/user");
    assert!(api.contains("\"reason\":\"unauthenticated\""), "{api}");
    let oci = line("/v2/acme/api/server/tags/list");
    assert!(oci.contains("\"reason\":\"NAME_UNKNOWN\""), "{oci}");
    assert_eq!(oci.matches("\"operation\"").count(), 1, "{oci}");
    assert!(oci.contains("\"operation\":\"oci.tags.get\""), "{oci}");

    let binary = LocalServer::binary();
    let data = tempfile::tempdir().expect("folder");
    let text = run(
        "timeout",
        &[
            "3",
            binary.to_str().expect("path"),
            "--data-dir",
            &data.path().display().to_string(),
            "--listen",
            "127.0.0.1:0",
        ],
        &[("STOWAGE_LOG", "info")],
    )
    .await;
    assert!(
        text.stderr.contains("stowage-local is listening"),
        "{}",
        text.stderr
    );
    assert!(!text.stderr.contains('\u{1b}'), "{}", text.stderr);
}

/// `--metrics-listen`: the registry's numbers in Prometheus' text format, on an address of
/// their own (the registry's address does not serve them).
#[tokio::test]
async fn metrics_are_served_apart_from_the_registry() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("address")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let Some(server) = LocalServer::start(&["--metrics-listen", &listen]).await else {
        return;
    };
    server
        .create_package("acme", "api", "container", "api/server")
        .await;
    let client = reqwest::Client::new();
    let started = client
        .post(format!("{}/v2/acme/api/server/blobs/uploads/", server.url))
        .bearer_auth(&server.admin_token)
        .send()
        .await
        .expect("request");
    assert_eq!(started.status(), 202);
    let refused = client
        .get(format!("{}/api/user", server.url))
        .send()
        .await
        .expect("request");
    assert_eq!(refused.status(), 401);
    let metrics = client
        .get(format!("http://{listen}/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.expect("text");
    for expected in [
        "stowage_requests_total{protocol=\"oci\",operation=\"oci.upload.post\",status=\"202\"} 1",
        "stowage_requests_total{protocol=\"admin\",operation=\"/api/user\",status=\"401\"} 1",
        "stowage_upload_sessions_open 1",
        "stowage_request_duration_seconds_count{protocol=\"admin\"}",
        "# EOF",
    ] {
        assert!(text.contains(expected), "{expected} in:\n{text}");
    }
    let on_registry = client
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .expect("request");
    assert_eq!(on_registry.status(), 404);
}
