//! Helpers for registry tests: images built in memory, an OCI image layout on disk for
//! skopeo, and a small registry client.

use std::path::Path;

use rand::RngCore;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// A gzipped tar holding one file of random bytes: a real layer.
pub fn layer(file_size: usize) -> (Vec<u8>, String) {
    let content = random_bytes(file_size);
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "data.bin", &content[..])
        .expect("tar");
    let tar = tar.into_inner().expect("tar");
    let diff_id = sha256(&tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).expect("gzip");
    (gz.finish().expect("gzip"), diff_id)
}

/// An image: its blobs, and its manifest in a given media type.
#[derive(Debug, Clone)]
pub struct Image {
    pub config: Vec<u8>,
    pub layers: Vec<Vec<u8>>,
    pub manifest: Vec<u8>,
    pub media_type: &'static str,
}

impl Image {
    pub fn digest(&self) -> String {
        sha256(&self.manifest)
    }

    pub fn blobs(&self) -> Vec<&Vec<u8>> {
        std::iter::once(&self.config).chain(&self.layers).collect()
    }
}

/// An image of `arch` with layers holding files of these sizes.
pub fn image(layer_files: &[usize], arch: &str, media_type: &'static str) -> Image {
    let (layers, diff_ids): (Vec<_>, Vec<_>) = layer_files.iter().map(|size| layer(*size)).unzip();
    let config = json!({
        "architecture": arch,
        "os": "linux",
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
        "config": {},
    })
    .to_string()
    .into_bytes();
    let (config_type, layer_type) = if media_type == DOCKER_MANIFEST {
        (
            "application/vnd.docker.container.image.v1+json",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
        )
    } else {
        (
            "application/vnd.oci.image.config.v1+json",
            "application/vnd.oci.image.layer.v1.tar+gzip",
        )
    };
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": { "mediaType": config_type, "digest": sha256(&config), "size": config.len() },
        "layers": layers.iter().map(|l| json!({ "mediaType": layer_type, "digest": sha256(l), "size": l.len() })).collect::<Vec<_>>(),
    })
    .to_string()
    .into_bytes();
    Image {
        config,
        layers,
        manifest,
        media_type,
    }
}

/// An index (or Docker manifest list) of images, by platform.
pub fn index(children: &[(&Image, &str)], media_type: &str) -> Vec<u8> {
    json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": children.iter().map(|(image, arch)| json!({
            "mediaType": image.media_type,
            "digest": image.digest(),
            "size": image.manifest.len(),
            "platform": { "architecture": arch, "os": "linux" },
        })).collect::<Vec<_>>(),
    })
    .to_string()
    .into_bytes()
}

/// Writes an OCI image layout holding `image` under `tag`, for `skopeo copy oci:DIR:TAG`.
pub fn write_layout(dir: &Path, image: &Image, tag: &str) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("layout folder");
    for blob in image.blobs().into_iter().chain([&image.manifest]) {
        let digest = sha256(blob);
        std::fs::write(blobs.join(&digest["sha256:".len()..]), blob).expect("blob");
    }
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("oci-layout");
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": image.media_type,
            "digest": image.digest(),
            "size": image.manifest.len(),
            "annotations": { "org.opencontainers.image.ref.name": tag },
        }],
    });
    std::fs::write(dir.join("index.json"), index.to_string()).expect("index.json");
}

/// A registry client speaking plain HTTP, with Basic credentials sent up front.
#[derive(Clone)]
pub struct RegistryClient {
    pub base: String,
    pub user: String,
    pub token: String,
    pub http: reqwest::Client,
}

impl RegistryClient {
    pub fn new(base: &str, user: &str, token: &str) -> Self {
        Self {
            base: base.to_owned(),
            user: user.to_owned(),
            token: token.to_owned(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
        }
    }

    pub fn request(&self, method: &str, path: &str) -> reqwest::RequestBuilder {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        self.http
            .request(method, url)
            .basic_auth(&self.user, Some(&self.token))
    }

    /// Starts an upload session (`POST …/blobs/uploads/`); its location.
    pub async fn start_upload(&self, name: &str) -> String {
        let started = self
            .request("POST", &format!("/v2/{name}/blobs/uploads/"))
            .send()
            .await
            .expect("POST");
        assert_eq!(started.status(), 202);
        started.headers()["location"]
            .to_str()
            .expect("location")
            .to_owned()
    }

    /// Pushes a blob in one request (`POST ?digest=`).
    pub async fn push_blob(&self, name: &str, blob: &[u8]) -> reqwest::Response {
        self.request(
            "POST",
            &format!("/v2/{name}/blobs/uploads/?digest={}", sha256(blob)),
        )
        .header("content-type", "application/octet-stream")
        .body(blob.to_vec())
        .send()
        .await
        .expect("push blob")
    }

    pub async fn push_manifest(
        &self,
        name: &str,
        reference: &str,
        media_type: &str,
        manifest: &[u8],
    ) -> reqwest::Response {
        self.request("PUT", &format!("/v2/{name}/manifests/{reference}"))
            .header("content-type", media_type)
            .body(manifest.to_vec())
            .send()
            .await
            .expect("push manifest")
    }

    /// Pushes an image's blobs and its manifest under `reference`.
    pub async fn push_image(&self, name: &str, reference: &str, image: &Image) {
        for blob in image.blobs() {
            let response = self.push_blob(name, blob).await;
            assert_eq!(
                response.status(),
                201,
                "push blob: {:?}",
                response.text().await
            );
        }
        let response = self
            .push_manifest(name, reference, image.media_type, &image.manifest)
            .await;
        assert_eq!(
            response.status(),
            201,
            "push manifest: {:?}",
            response.text().await
        );
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.request("GET", path).send().await.expect("GET")
    }
}

/// The first OCI error code of a response body.
pub async fn error_code(response: reqwest::Response) -> String {
    let body: Value = response.json().await.unwrap_or(Value::Null);
    body["errors"][0]["code"]
        .as_str()
        .unwrap_or("(none)")
        .to_owned()
}

/// An upload URL with its capability replaced by the bare session id: a URL that needs
/// credentials like any other.
pub fn without_capability(location: &str) -> String {
    let (path, _) = location.rsplit_once('/').expect("segments");
    format!("{path}/{}", upload_session(location))
}

/// The upload session an upload URL is for, read from the capability it ends in.
pub fn upload_session(location: &str) -> String {
    use base64::Engine as _;
    let last = location.rsplit('/').next().expect("a last segment");
    let token = last
        .strip_prefix(stowage_http::UPLOAD_CAPABILITY_PREFIX)
        .expect("an upload capability");
    let payload = token.split('.').next().expect("a payload");
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    let claims: serde_json::Value = serde_json::from_slice(&json).expect("JSON claims");
    claims["session"].as_str().expect("a session").to_owned()
}
