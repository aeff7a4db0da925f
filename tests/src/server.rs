//! A Stowage server in the test process, on a free loopback port, over fresh stores: the
//! same `stowage-local` app, reached over real HTTP.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use http::StatusCode;
use serde_json::Value;
use stowage_domain::{ManualClock, TokenSecret};
use stowage_http::{AppState, Limits};
use stowage_local::{ConnectionLimits, SignedBlobs};
use stowage_service::{BootstrapToken, Registry, Settings};
use stowage_storage::{
    BlobStore, CallCounts, CountingBlobStore, CountingMetadataStore, MetadataStore,
};
use stowage_storage_embedded::{FileBlobStore, UrlSigner};

use crate::faults::{FaultyBlobStore, PausingMetadataStore};
use crate::{Backend, Stores, TEST_SIGNING_KEY};

/// The site admin's token in every test server.
pub const ADMIN_TOKEN: &str = "stw_testAdminTokenForTheSuiteOnly0000000000";

/// How a request authenticates.
#[derive(Debug, Clone, Copy)]
pub enum Auth<'a> {
    None,
    Bearer(&'a str),
    Basic(&'a str, &'a str),
}

pub struct TestServer {
    pub url: String,
    pub registry: Arc<Registry>,
    pub clock: Arc<ManualClock>,
    /// Round trips to the metadata store since the last reset.
    pub metadata_calls: Arc<CallCounts>,
    /// Round trips to the blob store since the last reset.
    pub blob_calls: Arc<CallCounts>,
    /// Failures to inject into the blob store.
    pub blob_faults: Arc<FaultyBlobStore>,
    /// Pauses to inject into the metadata store.
    pub metadata_pauses: Arc<PausingMetadataStore>,
    pub stores: Stores,
    pub client: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    pub async fn start(stores: Stores) -> Self {
        Self::start_with(stores, Settings::default(), Limits::local(64 * 1024 * 1024)).await
    }

    pub async fn start_with(stores: Stores, settings: Settings, limits: Limits) -> Self {
        Self::start_with_connections(stores, settings, limits, ConnectionLimits::default()).await
    }

    /// A server whose connections are bounded by `connections`.
    pub async fn start_with_connections(
        stores: Stores,
        settings: Settings,
        limits: Limits,
        connections: ConnectionLimits,
    ) -> Self {
        Self::start_shaped(stores, settings, limits, connections, None).await
    }

    /// The AWS deployment's shape, as `stowage-local --emulate-aws` serves it: the front, the
    /// Lambda functions behind API Gateway's limits, and the upload service when
    /// `upload_service`. [`Self::registry`] is the upload service's; each function has its
    /// own over the same stores and clock.
    pub async fn emulating_aws(stores: Stores, upload_service: bool) -> Self {
        Self::emulating_aws_with(stores, upload_service, Settings::default()).await
    }

    /// [`TestServer::emulating_aws`] with the service's `settings`.
    pub async fn emulating_aws_with(
        stores: Stores,
        upload_service: bool,
        settings: Settings,
    ) -> Self {
        Self::start_shaped(
            stores,
            settings,
            Limits::local(1024 * 1024 * 1024),
            ConnectionLimits::default(),
            Some(upload_service),
        )
        .await
    }

    async fn start_shaped(
        mut stores: Stores,
        settings: Settings,
        limits: Limits,
        connections: ConnectionLimits,
        emulated_upload_service: Option<bool>,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let public_url = url::Url::parse(&url).expect("url");
        let signed = if stores.backend == Backend::Embedded {
            // Sign blob URLs for the address just bound.
            let signer = UrlSigner::new(public_url.clone(), TEST_SIGNING_KEY.to_vec());
            let blobs: Arc<dyn BlobStore> = Arc::new(
                FileBlobStore::open(&stores.dir.path().join("blobs"), signer.clone())
                    .expect("open files"),
            );
            stores.blobs = Arc::clone(&blobs);
            stores.signer = Some(signer.clone());
            Some(SignedBlobs { signer, blobs })
        } else {
            None
        };
        let metadata_pauses = Arc::new(PausingMetadataStore::new(Arc::clone(&stores.metadata)));
        let counted_metadata = CountingMetadataStore::new(metadata_pauses.clone());
        let metadata_calls = Arc::clone(&counted_metadata.counts);
        let blob_faults = Arc::new(FaultyBlobStore::new(Arc::clone(&stores.blobs)));
        let counted_blobs = CountingBlobStore::new(blob_faults.clone());
        let blob_calls = Arc::clone(&counted_blobs.counts);
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let metadata: Arc<dyn MetadataStore> = Arc::new(counted_metadata);
        let blobs: Arc<dyn BlobStore> = Arc::new(counted_blobs);
        let make_registry = {
            let clock = Arc::clone(&clock);
            let sealer = Arc::clone(&stores.sealer);
            move || {
                Arc::new(
                    Registry::new(
                        Arc::clone(&metadata),
                        Arc::clone(&blobs),
                        clock.clone(),
                        settings.clone(),
                    )
                    .with_sealer(Arc::clone(&sealer)),
                )
            }
        };
        let registry = make_registry();
        registry
            .bootstrap_site_admin(BootstrapToken::Secret(TokenSecret::from_presented(
                ADMIN_TOKEN.to_owned(),
            )))
            .await
            .expect("bootstrap");
        let state = AppState {
            registry: Arc::clone(&registry),
            public_url: Some(public_url),
            limits,
        };
        let app = match emulated_upload_service {
            None => stowage_local::app(state, signed),
            Some(upload_service) => {
                use stowage_local::emulate;
                let functions = emulate::Functions::new(emulate::lambda_state_factory(
                    make_registry,
                    upload_service,
                ));
                let uploads = upload_service.then(|| stowage_local::app(state, None));
                emulate::front(
                    functions,
                    uploads,
                    signed.map(stowage_local::signed_blob_router),
                )
            }
        };
        let task = tokio::spawn(stowage_local::serve(
            listener,
            app,
            connections,
            std::future::pending(),
        ));
        Self {
            url,
            registry,
            clock,
            metadata_calls,
            blob_calls,
            blob_faults,
            metadata_pauses,
            stores,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(120))
                .build()
                .expect("client"),
            task,
        }
    }

    /// Sends a request and returns its status and JSON body (`Null` when empty or not JSON).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        auth: Auth<'_>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let response = self
            .request(method, path, auth, body.map(|b| b.to_string()))
            .await;
        let status = response.status();
        let bytes = response.bytes().await.expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// The status of a bodiless request with `token` as bearer.
    pub async fn status(&self, method: &str, path: &str, token: &str) -> StatusCode {
        self.call(method, path, Auth::Bearer(token), None).await.0
    }

    pub async fn request(
        &self,
        method: &str,
        path: &str,
        auth: Auth<'_>,
        body: Option<String>,
    ) -> reqwest::Response {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.client.request(method, format!("{}{path}", self.url));
        request = match auth {
            Auth::None => request,
            Auth::Bearer(token) => request.bearer_auth(token),
            Auth::Basic(user, token) => request.basic_auth(user, Some(token)),
        };
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        request.send().await.expect("request")
    }

    /// Creates a user (as the site admin) and a token for it, returning the token.
    pub async fn user_with_token(&self, username: &str, scopes: &[&str]) -> String {
        let (status, _) = self
            .call(
                "POST",
                "/api/users",
                Auth::Bearer(ADMIN_TOKEN),
                Some(serde_json::json!({ "username": username, "email": format!("{username}@example.com") })),
            )
            .await;
        assert!(
            status == StatusCode::CREATED || status == StatusCode::CONFLICT,
            "create user: {status}"
        );
        self.token_for(username, scopes).await
    }

    /// Mints another token for an existing user (as the site admin).
    pub async fn token_for(&self, username: &str, scopes: &[&str]) -> String {
        // Long enough for tests that travel through a retention period.
        let expires = (self.clock_now() + chrono::Duration::days(300)).to_rfc3339();
        let (status, body) = self
            .call(
                "POST",
                &format!("/api/users/{username}/tokens"),
                Auth::Bearer(ADMIN_TOKEN),
                Some(
                    serde_json::json!({ "name": "test", "scopes": scopes, "expires_at": expires }),
                ),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "create token: {body}");
        body["token"].as_str().expect("token").to_owned()
    }

    pub fn clock_now(&self) -> chrono::DateTime<Utc> {
        use stowage_domain::Clock;
        self.clock.now()
    }

    /// Creates a workspace, a repository and a package in it, as `token`'s owner.
    pub async fn package(
        &self,
        token: &str,
        workspace: &str,
        repository: &str,
        kind: &str,
        name: &str,
    ) {
        let (status, body) = self
            .call(
                "POST",
                "/api/workspaces",
                Auth::Bearer(token),
                Some(serde_json::json!({"slug": workspace, "plan": "standard"})),
            )
            .await;
        assert!(
            status == StatusCode::CREATED || status == StatusCode::CONFLICT,
            "{status} {body}"
        );
        let (status, body) = self
            .call(
                "POST",
                &format!("/api/workspaces/{workspace}/repositories"),
                Auth::Bearer(token),
                Some(serde_json::json!({"slug": repository})),
            )
            .await;
        assert!(
            status == StatusCode::CREATED || status == StatusCode::CONFLICT,
            "{status} {body}"
        );
        let (status, body) = self
            .call(
                "POST",
                &format!("/api/workspaces/{workspace}/packages"),
                Auth::Bearer(token),
                Some(serde_json::json!({"type": kind, "name": name, "repository": repository})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
}

impl TestServer {
    /// Sends a request exactly as written, over a plain socket: for paths an HTTP client would
    /// normalise (`..`, encoded slashes). Returns the status and the body.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, String) {
        let stream = self
            .send_partly(method, path, headers, body.len(), body)
            .await;
        finish_request(stream, b"").await
    }

    /// Announces a body of `declared` bytes, sends only `body`, and hangs up: a client that
    /// goes away mid-upload.
    pub async fn hang_up_midway(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        declared: usize,
        body: &[u8],
    ) {
        drop(
            self.send_partly(method, path, headers, declared, body)
                .await,
        );
    }

    /// Starts a request over a plain socket, announcing a body of `declared` bytes, and sends
    /// `body`, the first of them: a slow client. [`finish_request`] sends the rest.
    pub async fn send_partly(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        declared: usize,
        body: &[u8],
    ) -> tokio::net::TcpStream {
        send_partly(&self.url, method, path, headers, declared, body).await
    }

    /// Waits (up to 10 s) for the blob store to hold `expected` objects and unfinished
    /// multipart uploads, and returns how many it holds.
    pub async fn settled_object_count(&self, expected: usize) -> usize {
        let mut count = self.stores.object_count().await;
        for _ in 0..100 {
            if count == expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            count = self.stores.object_count().await;
        }
        count
    }
}

/// Starts a request to the server at `url` over a plain socket, announcing a body of
/// `declared` bytes, and sends `body`, the first of them.
pub async fn send_partly(
    url: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    declared: usize,
    body: &[u8],
) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let address = url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {declared}\r\n"
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.expect("write");
    stream.write_all(body).await.expect("write body");
    stream.flush().await.expect("flush");
    stream
}

/// Sends the rest of a request begun with [`TestServer::send_partly`]; its status and body.
pub async fn finish_request(mut stream: tokio::net::TcpStream, rest: &[u8]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(rest).await.expect("write body");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}
