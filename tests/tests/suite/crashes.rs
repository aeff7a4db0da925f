//! A real `stowage-local` in trouble: killed mid-upload (SIGKILL, as a crash or an OOM kill),
//! nothing it was writing stays on disk after the purge, and nothing it held stays held after
//! a restart; out of disk, it says so (507) and keeps nothing of what did not fit.

use std::time::Duration;

use stowage_tests::clients::LocalServer;
use stowage_tests::oci::{RegistryClient, random_bytes, sha256};
use tokio::io::AsyncWriteExt;

const MIB: usize = 1024 * 1024;

/// Starts a request on a plain socket, announcing `declared` bytes and sending `sent` of them;
/// the socket stays open, as a client still sending would keep it.
async fn start_request(
    server: &LocalServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    declared: usize,
    sent: &[u8],
) -> tokio::net::TcpStream {
    let address = server.url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: {declared}\r\n\
         Authorization: Bearer {}\r\n",
        server.admin_token
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.write_all(sent).await.expect("body");
    stream.flush().await.expect("flush");
    stream
}

fn files_in(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|entry| {
                    entry
                        .expect("entry")
                        .file_name()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_upload_leaves_nothing_behind_and_holds_nothing() {
    let Some(mut server) = LocalServer::start(&["--purge-interval-seconds", "0"]).await else {
        return;
    };
    server
        .create_package("acme", "api", "container", "api/server")
        .await;
    let client = RegistryClient::new(&server.url, "admin", &server.admin_token);
    let location = client.start_upload("acme/api/server").await;
    let first = random_bytes(9 * MIB);
    let second = random_bytes(20 * MIB);
    let patched = client
        .request("PATCH", &location)
        .header("content-range", format!("0-{}", first.len() - 1))
        .body(first.clone())
        .send()
        .await
        .expect("first chunk");
    assert_eq!(patched.status(), 202);
    // The second chunk and a monolithic push are cut off by the crash, half-way.
    let range = format!("{}-{}", first.len(), first.len() + second.len() - 1);
    let _chunk = start_request(
        &server,
        "PATCH",
        &location,
        &[("Content-Range", &range)],
        second.len(),
        &second[..12 * MIB],
    )
    .await;
    let whole = random_bytes(30 * MIB);
    let _monolithic = start_request(
        &server,
        "POST",
        &format!(
            "/v2/acme/api/server/blobs/uploads/?digest={}",
            sha256(&whole)
        ),
        &[],
        whole.len(),
        &whole[..20 * MIB],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.kill().await;
    let multipart = server.data.path().join("blobs/.multipart");
    assert!(
        !files_in(&multipart).is_empty(),
        "the crash left unfinished uploads"
    );

    // Restarted, the upload takes its next chunk at once, where it stands.
    server.restart().await;
    let status = client.get(&location).await;
    assert_eq!(status.status(), 204);
    assert_eq!(
        status.headers()["range"],
        format!("0-{}", first.len() - 1).as_str()
    );
    let patched = client
        .request("PATCH", &location)
        .header("content-range", &range)
        .body(second.clone())
        .send()
        .await
        .expect("second chunk");
    assert_eq!(
        patched.status(),
        202,
        "{:?}",
        patched.text().await.expect("body")
    );
    let blob = [first, second].concat();
    let finished = client
        .request("PUT", &format!("{location}?digest={}", sha256(&blob)))
        .send()
        .await
        .expect("PUT");
    assert_eq!(finished.status(), 201);
    let pushed = client
        .request(
            "HEAD",
            &format!("/v2/acme/api/server/blobs/{}", sha256(&blob)),
        )
        .send()
        .await
        .expect("HEAD");
    assert_eq!(pushed.status(), 200);

    // What the dead writers left, the purge takes once it is past the grace period.
    let report = server.purge_at(chrono::Utc::now()).await;
    assert_eq!(report["unfinished_aborted"], 0, "{report}");
    let report = server
        .purge_at(chrono::Utc::now() + chrono::Duration::hours(2))
        .await;
    assert!(report["unfinished_aborted"].as_u64() >= Some(1), "{report}");
    assert_eq!(files_in(&multipart), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_answered_507_and_keeps_nothing() {
    let Some(server) = LocalServer::start_on_small_disk(32).await else {
        return;
    };
    server
        .create_package("acme", "api", "container", "api/server")
        .await;
    server.create_package("acme", "web", "npm", "big").await;
    let client = RegistryClient::new(&server.url, "admin", &server.admin_token);
    let too_big = random_bytes(48 * MIB);
    let refused = client.push_blob("acme/api/server", &too_big).await;
    assert_eq!(refused.status(), 507);
    let message = refused.text().await.expect("body");
    assert!(message.contains("storage is full"), "{message}");
    // What did not fit was freed: the next pushes fit.
    for _ in 0..3 {
        let small = random_bytes(6 * MIB);
        let pushed = client.push_blob("acme/api/server", &small).await;
        assert_eq!(pushed.status(), 201);
    }
    let npm = stowage_tests::npm::publish_document("big", "1.0.0", &random_bytes(24 * MIB));
    let refused = reqwest::Client::new()
        .put(format!("{}/npm/acme/big", server.url))
        .bearer_auth(&server.admin_token)
        .json(&npm)
        .send()
        .await
        .expect("publish");
    assert_eq!(refused.status(), 507);
    let small = stowage_tests::npm::publish_document("big", "1.0.0", &random_bytes(1024));
    let published = reqwest::Client::new()
        .put(format!("{}/npm/acme/big", server.url))
        .bearer_auth(&server.admin_token)
        .json(&small)
        .send()
        .await
        .expect("publish");
    assert_eq!(published.status(), 201);
}
