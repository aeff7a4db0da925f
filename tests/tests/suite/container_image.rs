//! The upload service's container image (Containerfile, built by tests/run with buildah for
//! x86_64 and arm64): its configuration read with skopeo, and the binary inside it, taken out
//! of the image's layers, started against moto, where it answers as the upload service.
//! (Containers themselves cannot run on these machines: `podman run` is refused setrlimit.)

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use stowage_tests::clients::{available, run};
use stowage_tests::oci::{RegistryClient, random_bytes, sha256};
use stowage_tests::{ADMIN_TOKEN, Stores};

/// The image tests/run saved for `arch`, or `None` (a skip) when it was not built, unless
/// images are required.
fn image_archive(arch: &str) -> Option<PathBuf> {
    let archive = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/image")
        .join(format!("stowage-{arch}.oci.tar"));
    if archive.exists() && available(&["skopeo"]) {
        return Some(archive);
    }
    assert!(
        std::env::var("STOWAGE_REQUIRE_IMAGE").as_deref() != Ok("1"),
        "{} is missing: tests/run builds it",
        archive.display()
    );
    eprintln!("note: {} is not built; skipping", archive.display());
    None
}

async fn skopeo_json(args: &[&str]) -> Value {
    let run = run("skopeo", args, &[]).await.ok("skopeo inspect");
    serde_json::from_str(&run.stdout).expect("skopeo's JSON")
}

#[tokio::test]
async fn the_image_runs_one_static_binary_as_nobody_on_port_8080() {
    for (arch, expected) in [("amd64", "amd64"), ("arm64", "arm64")] {
        let Some(archive) = image_archive(arch) else {
            return;
        };
        let reference = format!("oci-archive:{}", archive.display());
        let config = skopeo_json(&["inspect", "--config", &reference]).await;
        assert_eq!(config["architecture"], expected);
        assert_eq!(config["os"], "linux");
        let config = &config["config"];
        assert_eq!(config["Entrypoint"], json!(["/stowage-local"]));
        assert_eq!(config["User"], "65534:65534");
        assert!(config["ExposedPorts"].get("8080/tcp").is_some(), "{config}");
        let environment: Vec<&str> = config["Env"]
            .as_array()
            .expect("environment")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for variable in ["STOWAGE_BACKEND=aws", "STOWAGE_LISTEN=0.0.0.0:8080"] {
            assert!(environment.contains(&variable), "{environment:?}");
        }
        let layers = skopeo_json(&["inspect", &reference]).await;
        assert_eq!(layers["Layers"].as_array().map(Vec::len), Some(1));
    }
}

/// The files of the image's layers, unpacked into `into`.
async fn unpack(archive: &Path, into: &Path) {
    let copied = into.join("copied");
    run(
        "skopeo",
        &[
            "copy",
            &format!("oci-archive:{}", archive.display()),
            &format!("dir:{}", copied.display()),
        ],
        &[],
    )
    .await
    .ok("skopeo copy");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(copied.join("manifest.json")).expect("manifest"))
            .expect("manifest JSON");
    let root = into.join("root");
    for layer in manifest["layers"].as_array().expect("layers") {
        let digest = layer["digest"].as_str().expect("digest");
        let file =
            std::fs::File::open(copied.join(digest.trim_start_matches("sha256:"))).expect("layer");
        let reader: Box<dyn std::io::Read> = if layer["mediaType"]
            .as_str()
            .is_some_and(|t| t.ends_with("gzip"))
        {
            Box::new(flate2::read::GzDecoder::new(file))
        } else {
            Box::new(file)
        };
        tar::Archive::new(reader).unpack(&root).expect("unpack");
    }
}

/// Whether a 64-bit little-endian ELF file has a `PT_INTERP` program header, that is, needs a
/// dynamic loader (and so a libc) in the image.
fn has_interpreter(elf: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    assert_eq!(&elf[..5], b"\x7fELF\x02", "a 64-bit ELF file");
    let word = |at: usize, len: usize| {
        elf[at..at + len]
            .iter()
            .rev()
            .fold(0usize, |value, byte| value << 8 | usize::from(*byte))
    };
    let (offset, size, count) = (word(0x20, 8), word(0x36, 2), word(0x38, 2));
    (0..count).any(|index| word(offset + index * size, 4) == PT_INTERP as usize)
}

/// The files under `root`, relative to it, sorted.
fn files_under(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                folders.push(path);
            } else {
                let relative = path.strip_prefix(root).expect("under root");
                files.push(relative.display().to_string());
            }
        }
    }
    files.sort();
    files
}

#[tokio::test]
async fn the_binary_in_the_image_serves_uploads_against_moto() {
    let Some(archive) = image_archive("amd64") else {
        return;
    };
    let Some(stores) = Stores::aws().await else {
        return;
    };
    let work = tempfile::tempdir().expect("folder");
    unpack(&archive, work.path()).await;
    let binary = work.path().join("root/stowage-local");
    assert_eq!(
        files_under(&work.path().join("root")),
        ["etc/ssl/certs/ca-certificates.crt", "stowage-local"],
        "the binary and the CA certificates, nothing else"
    );
    assert!(
        !has_interpreter(&std::fs::read(&binary).expect("binary")),
        "the binary is static: it names no dynamic loader"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("address")
        .port();
    let name = &stores.aws.as_ref().expect("AWS stores").name;
    // As the task runs it (the image's own environment), on loopback.
    let mut server = tokio::process::Command::new(&binary)
        .env_clear()
        .envs(std::env::vars().filter(|(k, _)| k.starts_with("AWS_")))
        .env("STOWAGE_BACKEND", "aws")
        .env("STOWAGE_LISTEN", format!("127.0.0.1:{port}"))
        .env("STOWAGE_PURGE_INTERVAL_SECONDS", "0")
        .env("STOWAGE_TABLE", name)
        .env("STOWAGE_BUCKET", name)
        .env("STOWAGE_BOOTSTRAP_TOKEN", ADMIN_TOKEN)
        .env("STOWAGE_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .expect("start the image's binary");
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..200 {
        if let Ok(response) = http.get(format!("{url}/v2/")).send().await {
            assert_eq!(response.status(), 401, "the load balancer's health check");
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "the binary did not start");

    for (path, body) in [
        (
            "/api/workspaces",
            json!({"slug": "acme", "plan": "standard"}),
        ),
        ("/api/workspaces/acme/repositories", json!({"slug": "api"})),
        (
            "/api/workspaces/acme/packages",
            json!({"type": "container", "name": "api/server", "repository": "api"}),
        ),
    ] {
        let response = http
            .post(format!("{url}{path}"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .expect("admin call");
        assert_eq!(response.status(), 201, "{path}");
    }
    let client = RegistryClient::new(&url, "admin", ADMIN_TOKEN);
    let blob = random_bytes(9 * 1024 * 1024);
    let location = client.start_upload("acme/api/server").await;
    let pushed = http
        .put(format!("{url}{location}?digest={}", sha256(&blob)))
        .body(blob.clone())
        .send()
        .await
        .expect("PUT");
    assert_eq!(pushed.status(), 201);
    let head = client
        .request(
            "HEAD",
            &format!("/v2/acme/api/server/blobs/{}", sha256(&blob)),
        )
        .send()
        .await
        .expect("HEAD");
    assert_eq!(head.headers()["content-length"], blob.len().to_string());
    server.kill().await.expect("stop");
}
