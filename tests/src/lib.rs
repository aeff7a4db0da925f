//! Test harness: fresh storage for each test, on each backend.
//!
//! The AWS backend runs against moto's server mode. `tests/run` starts it and exports
//! `AWS_ENDPOINT_URL`; without that variable the AWS variants of the tests are skipped with a
//! note, unless `STOWAGE_REQUIRE_AWS=1` (which `tests/run` sets) makes that a failure.

pub mod aws_calls;
pub mod browser;
pub mod clients;
pub mod faults;
pub mod lambda;
pub mod npm;
pub mod oci;
pub mod race;
mod server;
pub mod upstreams;
pub mod web;

use std::sync::Arc;

pub use server::{ADMIN_TOKEN, Auth, TestServer, finish_request, send_partly};

use futures_util::StreamExt;
use stowage_storage::{BlobStore, ByteStream, MetadataStore, SecretSealer};
use stowage_storage_aws::{AwsClients, DynamoMetadataStore, KmsSealer, S3BlobStore};
use stowage_storage_embedded::{FileBlobStore, KeyFileSealer, SqliteMetadataStore, UrlSigner};

/// Which adapter pair a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Aws,
}

/// A fresh, empty pair of stores. Keeps its temporary folder alive.
pub struct Stores {
    pub backend: Backend,
    pub metadata: Arc<dyn MetadataStore>,
    pub blobs: Arc<dyn BlobStore>,
    /// Seals upstream credentials: a key file, or a KMS key on moto.
    pub sealer: Arc<dyn SecretSealer>,
    /// For the embedded pair: the signer of its URLs, and its folder.
    pub signer: Option<UrlSigner>,
    pub dir: tempfile::TempDir,
    /// For the AWS pair: the table and bucket, and the clients to look into them.
    pub aws: Option<AwsResources>,
}

/// The key the embedded stores of tests sign with.
pub const TEST_SIGNING_KEY: [u8; 32] = [42; 32];

impl Stores {
    pub async fn new(backend: Backend) -> Option<Self> {
        match backend {
            Backend::Embedded => Some(Self::embedded(
                url::Url::parse("http://127.0.0.1:1/").expect("url"),
            )),
            Backend::Aws => Self::aws().await,
        }
    }

    /// Embedded stores in a new temporary folder, signing URLs under `public_url`.
    pub fn embedded(public_url: url::Url) -> Self {
        let dir = tempfile::tempdir().expect("temporary folder");
        let signer = UrlSigner::new(public_url, TEST_SIGNING_KEY.to_vec());
        let metadata =
            SqliteMetadataStore::open(&dir.path().join("stowage.db")).expect("open sqlite");
        let blobs =
            FileBlobStore::open(&dir.path().join("blobs"), signer.clone()).expect("open files");
        let sealer = KeyFileSealer::open(&dir.path().join("upstream-secrets.key")).expect("key");
        Self {
            backend: Backend::Embedded,
            metadata: Arc::new(metadata),
            blobs: Arc::new(blobs),
            sealer: Arc::new(sealer),
            signer: Some(signer),
            dir,
            aws: None,
        }
    }

    /// A new table and bucket on moto, or `None` when moto is not configured.
    pub async fn aws() -> Option<Self> {
        if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
            assert!(
                std::env::var("STOWAGE_REQUIRE_AWS").as_deref() != Ok("1"),
                "STOWAGE_REQUIRE_AWS=1 but AWS_ENDPOINT_URL is not set: start moto (tests/run does)"
            );
            eprintln!(
                "note: AWS_ENDPOINT_URL is not set; skipping the AWS variant (run tests/run)"
            );
            return None;
        }
        Self::aws_with(AwsClients::from_env().await).await
    }

    /// Like [`Stores::aws`], with every SDK call recorded by `recorder`.
    pub async fn aws_recorded(recorder: &aws_calls::CallRecorder) -> Option<Self> {
        if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
            return Self::aws().await;
        }
        let clients = AwsClients::from_env().await;
        let dynamodb = clients
            .dynamodb
            .config()
            .to_builder()
            .interceptor(recorder.clone())
            .build();
        let s3 = clients
            .s3
            .config()
            .to_builder()
            .interceptor(recorder.clone())
            .build();
        let kms = clients
            .kms
            .config()
            .to_builder()
            .interceptor(recorder.clone())
            .build();
        Self::aws_with(AwsClients {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(dynamodb),
            s3: aws_sdk_s3::Client::from_conf(s3),
            kms: aws_sdk_kms::Client::from_conf(kms),
        })
        .await
    }

    async fn aws_with(clients: AwsClients) -> Option<Self> {
        let name = format!("stowage-test-{}", uuid::Uuid::new_v4().simple());
        stowage_storage_aws::create_table(&clients.dynamodb, &name)
            .await
            .expect("create table on moto");
        stowage_storage_aws::create_bucket(&clients.s3, &name)
            .await
            .expect("create bucket on moto");
        let key = stowage_storage_aws::create_key(&clients.kms)
            .await
            .expect("create key on moto");
        Some(Self {
            backend: Backend::Aws,
            aws: Some(AwsResources {
                name: name.clone(),
                dynamodb: clients.dynamodb.clone(),
                s3: clients.s3.clone(),
            }),
            metadata: Arc::new(DynamoMetadataStore::new(clients.dynamodb, &name)),
            blobs: Arc::new(S3BlobStore::new(clients.s3, &name)),
            sealer: Arc::new(KmsSealer::new(clients.kms, key)),
            signer: None,
            dir: tempfile::tempdir().expect("temporary folder"),
        })
    }
}

/// The table and bucket (same name) of an AWS test store, and clients to inspect them.
pub struct AwsResources {
    pub name: String,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub s3: aws_sdk_s3::Client,
}

impl Stores {
    /// How many objects (and unfinished multipart uploads) the blob store holds.
    pub async fn object_count(&self) -> usize {
        match &self.aws {
            None => count_files(&self.dir.path().join("blobs")),
            Some(aws) => {
                let objects = aws
                    .s3
                    .list_objects_v2()
                    .bucket(&aws.name)
                    .send()
                    .await
                    .expect("list objects");
                let uploads = aws
                    .s3
                    .list_multipart_uploads()
                    .bucket(&aws.name)
                    .send()
                    .await
                    .expect("list uploads");
                objects.contents().len() + uploads.uploads().len()
            }
        }
    }
}

fn count_files(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .map(|entry| entry.expect("entry").path())
        .map(|path| if path.is_dir() { count_files(&path) } else { 1 })
        .sum()
}

/// Runs an async test body once per backend, each on fresh stores.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn embedded() {
                    if let Some(stores) = $crate::Stores::new($crate::Backend::Embedded).await {
                        super::$name(stores).await;
                    }
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn aws() {
                    if let Some(stores) = $crate::Stores::new($crate::Backend::Aws).await {
                        super::$name(stores).await;
                    }
                }
            }
        )*
    };
}

/// Follows a download's redirect, which it must be, and returns the bytes.
pub async fn follow_redirect(response: reqwest::Response) -> Vec<u8> {
    assert_eq!(response.status(), 307, "{}", response.url());
    let location = response.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    reqwest::get(&location)
        .await
        .expect("download")
        .bytes()
        .await
        .expect("bytes")
        .to_vec()
}

/// An `Authorization` header's value for HTTP Basic.
pub fn basic_authorization(user: &str, password: &str) -> String {
    use base64::Engine as _;
    let pair = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// Reads a whole stream into memory.
pub async fn collect(mut body: ByteStream) -> Vec<u8> {
    let mut all = Vec::new();
    while let Some(chunk) = body.next().await {
        all.extend_from_slice(&chunk.expect("read blob stream"));
    }
    all
}

/// A workspace's usage as the registry counts it (also for deleted workspaces, which the
/// management API no longer shows).
pub async fn usage_of(server: &TestServer, workspace: &str) -> stowage_service::Usage {
    let slug = stowage_domain::Slug::parse("workspace", workspace).expect("slug");
    server.registry.count_usage(&slug).await.expect("usage")
}
