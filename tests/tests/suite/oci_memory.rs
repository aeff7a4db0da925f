//! The local server streams blobs to storage: its peak memory stays flat as pushed layers grow.
//! Measured on a real `stowage-local` process (built by tests/run), from /proc.

use std::time::Duration;

use futures_util::StreamExt;
use sha2::{Digest as _, Sha256};
use stowage_tests::clients::LocalServer;

const MIB: usize = 1024 * 1024;

/// The peak resident memory of a process since it was last reset, in bytes.
fn peak_memory(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("process status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM");
    line.split_whitespace()
        .nth(1)
        .and_then(|kb| kb.parse::<u64>().ok())
        .expect("kB")
        * 1024
}

fn reset_peak_memory(pid: u32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
        .expect("reset the peak (needs Linux 4.0+)");
}

/// A deterministic stream of `size` bytes, made as it is sent, and its digest.
fn generated(size: usize) -> (reqwest::Body, String) {
    let chunk: Vec<u8> = (0..MIB).map(|i| (i * 7 % 251) as u8).collect();
    let mut hasher = Sha256::new();
    for _ in 0..size / MIB {
        hasher.update(&chunk);
    }
    let digest = format!("sha256:{}", hex::encode(hasher.finalize()));
    let stream = futures_util::stream::iter(0..size / MIB)
        .map(move |_| Ok::<_, std::io::Error>(chunk.clone()));
    (reqwest::Body::wrap_stream(stream), digest)
}

async fn push(server: &LocalServer, size: usize) -> u64 {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .expect("client");
    let (body, digest) = generated(size);
    reset_peak_memory(server.pid());
    let started = client
        .post(format!("{}/v2/acme/api/big/blobs/uploads/", server.url))
        .basic_auth("admin", Some(&server.admin_token))
        .send()
        .await
        .expect("POST");
    assert_eq!(started.status(), 202);
    let location = started.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let patched = client
        .patch(format!("{}{location}", server.url))
        .basic_auth("admin", Some(&server.admin_token))
        .body(body)
        .send()
        .await
        .expect("PATCH");
    assert_eq!(patched.status(), 202);
    let finished = client
        .put(format!("{}{location}?digest={digest}", server.url))
        .basic_auth("admin", Some(&server.admin_token))
        .send()
        .await
        .expect("PUT");
    assert_eq!(finished.status(), 201, "{:?}", finished.text().await);
    peak_memory(server.pid())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peak_memory_stays_flat_as_layers_grow() {
    let Some(server) = LocalServer::start(&[]).await else {
        return;
    };
    server
        .create_package("acme", "api", "container", "api/big")
        .await;
    let small = push(&server, 64 * MIB).await;
    let large = push(&server, 512 * MIB).await;
    eprintln!(
        "peak memory: {} MiB for 64 MiB, {} MiB for 512 MiB",
        small / MIB as u64,
        large / MIB as u64
    );
    assert!(
        large < 160 * MIB as u64,
        "a 512 MiB push peaked at {} MiB",
        large / MIB as u64
    );
    assert!(
        large < small + 32 * MIB as u64,
        "memory grew with the layer: {small} then {large}"
    );
}
