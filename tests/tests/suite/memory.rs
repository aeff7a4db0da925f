//! The local server's memory is bounded whatever a request body holds: blobs, tarballs and
//! files stream to storage (flat as they grow), and bodies that are refused, or that must be
//! small, are never held whole. Measured on a real `stowage-local` process (built by
//! tests/run), from /proc.

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

/// The most the server (about 40 MiB idle) may grow to while streaming a body: a part being
/// written, one being received, and the rest of the process.
const STREAMED_BOUND: u64 = 144 * MIB as u64;
/// ... and while refusing one, which it reads no further than a route's own limit (4 MiB at
/// most) and drains without keeping.
const REFUSED_BOUND: u64 = 80 * MIB as u64;
/// How much each body below carries.
const LARGE: usize = 96 * MIB;

/// A deterministic body of `size` bytes, made as it is sent.
fn body_of(size: usize) -> reqwest::Body {
    let chunk: Vec<u8> = (0..MIB).map(|i| (i * 13 % 253) as u8).collect();
    let stream = futures_util::stream::iter(0..size / MIB)
        .map(move |_| Ok::<_, std::io::Error>(chunk.clone()));
    reqwest::Body::wrap_stream(stream)
}

/// A JSON document holding one string of `size` bytes, as a huge document update would.
fn json_string(size: usize) -> reqwest::Body {
    let filler = vec![b'a'; MIB];
    let stream = futures_util::stream::once(async { b"{\"readme\":\"".to_vec() })
        .chain(futures_util::stream::iter(0..size / MIB).map(move |_| filler.clone()))
        .chain(futures_util::stream::once(async { b"\"}".to_vec() }))
        .map(Ok::<_, std::io::Error>);
    reqwest::Body::wrap_stream(stream)
}

/// An npm publish of a `size`-byte tarball, streamed: the document's head, the tarball in
/// base64 as it is made, the document's tail.
fn npm_publish(size: usize) -> reqwest::Body {
    use base64::Engine as _;
    use sha1::Sha1;
    use sha2::Sha512;
    // Pieces of a multiple of three bytes encode on their own, without padding.
    let piece: Vec<u8> = (0..3 * 256 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    let pieces = size / piece.len();
    let (mut sha1, mut sha512) = (Sha1::new(), Sha512::new());
    for _ in 0..pieces {
        sha1.update(&piece);
        sha512.update(&piece);
    }
    let length = pieces * piece.len();
    let integrity = format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(sha512.finalize())
    );
    let head = format!(
        r#"{{"name":"big","dist-tags":{{"latest":"1.0.0"}},"versions":{{"1.0.0":{{"name":"big","version":"1.0.0","dist":{{"shasum":"{}","integrity":"{integrity}"}}}}}},"_attachments":{{"big-1.0.0.tgz":{{"content_type":"application/octet-stream","length":{length},"data":""#,
        hex::encode(sha1.finalize())
    );
    let encoded = base64::engine::general_purpose::STANDARD.encode(&piece);
    let stream = futures_util::stream::once(async move { head.into_bytes() })
        .chain(futures_util::stream::iter(0..pieces).map(move |_| encoded.clone().into_bytes()))
        .chain(futures_util::stream::once(async { b"\"}}}".to_vec() }))
        .map(Ok::<_, std::io::Error>);
    reqwest::Body::wrap_stream(stream)
}

/// Sends one request with `body` and returns the server's peak memory while it ran, and the
/// status (`None` when the server closed the connection on a body it would not read whole).
async fn peak_during(
    server: &LocalServer,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: reqwest::Body,
) -> (u64, Option<u16>) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .expect("client");
    reset_peak_memory(server.pid());
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = client
        .request(method, format!("{}{path}", server.url))
        .header("content-type", "application/json")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let status = request.send().await.ok().map(|r| r.status().as_u16());
    (peak_memory(server.pid()), status)
}

/// A fresh server (its memory is what one request made of it: an allocator keeps what it
/// freed) with a container, an npm and a Maven package, and an upload session.
async fn fresh() -> Option<(LocalServer, String)> {
    let server = LocalServer::start(&[]).await?;
    server
        .create_package("acme", "api", "container", "api/big")
        .await;
    server.create_package("acme", "api", "npm", "big").await;
    server
        .create_package("acme", "api", "maven", "com.acme:big")
        .await;
    let started = reqwest::Client::new()
        .post(format!("{}/v2/acme/api/big/blobs/uploads/", server.url))
        .bearer_auth(&server.admin_token)
        .send()
        .await
        .expect("POST");
    let upload = started.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    Some((server, upload))
}

/// What a route is sent, and how it answers.
enum Case {
    /// A body streamed to storage (and checked once it is all there).
    Streamed(&'static str, &'static str, fn() -> reqwest::Body, u16),
    /// A body refused: without credentials, past the route's own limit, or for its content.
    Refused(&'static str, &'static str, bool, fn() -> reqwest::Body, u16),
}

const UPLOAD: &str = "<upload>";
/// The upload session's URL without its capability (so it needs credentials).
const BARE_UPLOAD: &str = "<upload without its capability>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_body_route_stays_within_its_memory_bound() {
    let wrong_digest = "/v2/acme/api/big/blobs/uploads/?digest=sha256:0000000000000000000000000000000000000000000000000000000000000000";
    let cases = [
        Case::Streamed("PATCH", UPLOAD, || body_of(LARGE), 202),
        Case::Streamed(
            "PUT",
            "/maven/acme/com/acme/big/1.0/big-1.0.jar",
            || body_of(LARGE),
            201,
        ),
        Case::Streamed("PUT", "/npm/acme/big", || npm_publish(LARGE), 201),
        Case::Streamed("POST", wrong_digest, || body_of(LARGE), 400),
        Case::Refused("PUT", "/npm/acme/big", false, || body_of(LARGE), 401),
        Case::Refused("PUT", "/npm/acme/big", true, || json_string(LARGE), 413),
        Case::Refused(
            "PUT",
            "/npm/acme/-/user/org.couchdb.user:x",
            false,
            || body_of(LARGE),
            413,
        ),
        Case::Refused(
            "PUT",
            "/npm/acme/-/package/big/dist-tags/next",
            true,
            || body_of(LARGE),
            400,
        ),
        Case::Refused(
            "PUT",
            "/v2/acme/api/big/manifests/v1",
            true,
            || body_of(LARGE),
            413,
        ),
        Case::Refused(
            "PUT",
            "/maven/acme/com/acme/big/maven-metadata.xml",
            true,
            || body_of(LARGE),
            400,
        ),
        Case::Refused("POST", "/api/workspaces", true, || body_of(LARGE), 413),
        Case::Refused("PATCH", BARE_UPLOAD, false, || body_of(LARGE), 401),
    ];
    let mut peaks = Vec::new();
    for case in cases {
        let Some((server, upload)) = fresh().await else {
            return;
        };
        let admin = server.admin_token.clone();
        let path = |path: &str| match path {
            UPLOAD => upload.clone(),
            BARE_UPLOAD => stowage_tests::oci::without_capability(&upload),
            _ => path.to_owned(),
        };
        let (what, peak, bound) = match case {
            Case::Streamed(method, route, body, expected) => {
                let (peak, status) =
                    peak_during(&server, method, &path(route), Some(&admin), body()).await;
                assert_eq!(status, Some(expected), "{method} {route}");
                (format!("{method} {route}"), peak, STREAMED_BOUND)
            }
            Case::Refused(method, route, authenticated, body, expected) => {
                let token = authenticated.then_some(admin.as_str());
                let (peak, status) =
                    peak_during(&server, method, &path(route), token, body()).await;
                // Past what is drained, the server may close before the client has sent all.
                assert!(
                    status.is_none() || status == Some(expected),
                    "{method} {route}: {status:?}"
                );
                (format!("{method} {route}, refused"), peak, REFUSED_BOUND)
            }
        };
        eprintln!("peak memory {} MiB: {what}", peak / MIB as u64);
        peaks.push((what, peak, bound));
    }
    for (what, peak, bound) in peaks {
        assert!(
            peak < bound,
            "{what}: {} MiB, over the bound of {} MiB",
            peak / MIB as u64,
            bound / MIB as u64
        );
    }
}
