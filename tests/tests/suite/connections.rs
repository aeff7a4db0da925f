//! The local server's connections: refused requests are answered however much body is on its
//! way, and idle, slow or surplus connections cannot starve the others.

use std::time::{Duration, Instant};

use stowage_http::Limits;
use stowage_local::ConnectionLimits;
use stowage_service::Settings;
use stowage_tests::oci::{RegistryClient, error_code, without_capability};
use stowage_tests::{Stores, TestServer, on_both_backends};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

on_both_backends!(refused_uploads_are_answered_not_reset);

const MIB: usize = 1024 * 1024;
/// Requests of each kind, sent a few at a time.
const ROUNDS: usize = 50;

/// A PATCH of a few MiB refused before its body is read (no credentials: 401; an unknown
/// upload: 404; a chunk out of order: 416) gets its answer, every time, rather than a reset
/// connection: the OCI conformance suite and Go's client failed on this.
async fn refused_uploads_are_answered_not_reset(stores: Stores) {
    let server = TestServer::start(stores).await;
    let alice = server
        .user_with_token("alice", &["read:package", "write:package"])
        .await;
    server
        .package(&alice, "acme", "api", "container", "api/server")
        .await;
    let client = RegistryClient::new(&server.url, "alice", &alice);
    let chunk = vec![7u8; 2 * MIB];
    let anonymous = reqwest::Client::new();
    let location = client.start_upload("acme/api/server").await;
    let cases: [(&str, u16, &str); 3] = [
        ("anonymous", 401, "UNAUTHORIZED"),
        ("unknown upload", 404, "BLOB_UPLOAD_UNKNOWN"),
        ("out of order", 416, "BLOB_UPLOAD_INVALID"),
    ];
    for (what, status, code) in cases {
        let mut answered = 0;
        for _ in 0..ROUNDS / 5 {
            let mut requests = Vec::new();
            for _ in 0..5 {
                let request = match what {
                    // Without its capability, an upload URL needs credentials.
                    "anonymous" => anonymous
                        .patch(format!("{}{}", server.url, without_capability(&location)))
                        .body(chunk.clone()),
                    "unknown upload" => client
                        .request("PATCH", "/v2/acme/api/server/blobs/uploads/no-such-upload")
                        .body(chunk.clone()),
                    _ => client
                        .request("PATCH", &location)
                        .header("content-range", format!("100-{}", 100 + chunk.len() - 1))
                        .body(chunk.clone()),
                };
                requests.push(request.send());
            }
            for response in futures_util::future::join_all(requests).await {
                let response = response.unwrap_or_else(|error| {
                    panic!("{what}: the connection broke instead of answering: {error:?}")
                });
                assert_eq!(response.status().as_u16(), status, "{what}");
                if status != 416 {
                    assert_eq!(error_code(response).await, code, "{what}");
                }
                answered += 1;
            }
        }
        assert_eq!(answered, ROUNDS, "{what}");
    }
}

/// A server whose connections time out after a second, eight at most.
async fn strict_server() -> TestServer {
    let stores = Stores::new(stowage_tests::Backend::Embedded)
        .await
        .expect("embedded stores");
    TestServer::start_with_connections(
        stores,
        Settings::default(),
        Limits::local(64 * MIB),
        ConnectionLimits {
            header_timeout: Duration::from_secs(1),
            body_timeout: Duration::from_secs(1),
            max_connections: 8,
        },
    )
    .await
}

async fn connect(server: &TestServer) -> TcpStream {
    TcpStream::connect(server.url.trim_start_matches("http://"))
        .await
        .expect("connect")
}

/// Reads until the server closes the connection (or 10 s pass); what it sent, and when it
/// closed.
async fn read_until_closed(stream: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = started + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(read)) => received.extend_from_slice(&buffer[..read]),
            Err(_) => panic!(
                "still open after 10 s; received {:?}",
                String::from_utf8_lossy(&received)
            ),
        }
    }
    (
        String::from_utf8_lossy(&received).into_owned(),
        started.elapsed(),
    )
}

const PING: &[u8] = b"GET /v2/ HTTP/1.1\r\nHost: stowage\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_connections_are_closed() {
    let server = strict_server().await;
    // Says nothing at all.
    let mut silent = connect(&server).await;
    let (_, after) = read_until_closed(&mut silent).await;
    assert!(
        after < Duration::from_secs(4),
        "silent: closed after {after:?}"
    );
    // Drips its headers a byte at a time.
    let mut dripping = connect(&server).await;
    let drip = tokio::spawn(async move {
        for byte in b"GET /v2/ HTTP/1.1\r\nHost: stowage\r\nX-Slow: "
            .iter()
            .cycle()
        {
            if dripping.write_all(&[*byte]).await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    });
    let cut = tokio::time::timeout(Duration::from_secs(6), drip)
        .await
        .expect("dripping was never cut off")
        .expect("drip task");
    assert!(cut);
    // Idles after an answered request on a kept-alive connection.
    let mut idle = connect(&server).await;
    idle.write_all(PING).await.expect("request");
    let (answer, after) = read_until_closed(&mut idle).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(after < Duration::from_secs(4), "kept alive for {after:?}");
    // Stops sending its body half-way.
    let mut stalled = connect(&server).await;
    stalled
        .write_all(b"PUT /maven/acme/com/acme/lib/1.0/lib-1.0.jar HTTP/1.1\r\nHost: stowage\r\nAuthorization: Bearer stw_x\r\nContent-Length: 1000\r\n\r\n0123456789")
        .await
        .expect("request");
    let (_, after) = read_until_closed(&mut stalled).await;
    assert!(after < Duration::from_secs(5), "stalled body: {after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_over_the_limit_is_told_503_at_once() {
    let server = strict_server().await;
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(connect(&server).await);
    }
    // Accepted in order: give the server a moment to take the eight.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut surplus = connect(&server).await;
    surplus.write_all(PING).await.expect("request");
    let (answer, after) = read_until_closed(&mut surplus).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("connection limit"), "{answer}");
    assert!(after < Duration::from_secs(1), "told after {after:?}");
    // Once the idle ones time out, a new connection is served.
    for stream in &mut held {
        read_until_closed(stream).await;
    }
    let mut later = connect(&server).await;
    later.write_all(PING).await.expect("request");
    let (answer, _) = read_until_closed(&mut later).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
}
