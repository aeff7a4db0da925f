//! The client Stowage fetches from upstream registries with. An upstream is named by a
//! repository admin, and what it answers can name further URLs (an npm document's tarballs),
//! so every request is held to the operator's rules whatever a response says:
//!
//! - only `https` (or `http` where the operator allows private upstreams), redirects included,
//!   at most [`MAX_REDIRECTS`] of them;
//! - only public addresses unless the operator allows private ones: literal addresses are
//!   checked before the request, names after resolution (a public name can resolve to a
//!   private address), redirect targets before they are followed;
//! - credentials go only to the URL they were given for (the client drops them on a redirect
//!   to another host);
//! - a connection within [`CONNECT_TIMEOUT`], a read within [`READ_TIMEOUT`], and bodies read
//!   into memory within a size limit.

mod copies;
mod registry;

pub use copies::{first_copy, refreshed_copy};

use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{StreamExt, TryStreamExt};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use secrecy::ExposeSecret;
use stowage_domain::UpstreamReach;
use stowage_service::{Entity, Error, ReachableUpstream, Registry, UpstreamCredentials};
use stowage_storage::ByteStream;
use url::{Host, Url};

pub const MAX_REDIRECTS: usize = 5;
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a fetch gave nothing.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The upstream answered 404 or 410.
    #[error("the upstream does not have it")]
    NotFound,
    /// The operator's rules refuse the URL (or a redirect's).
    #[error("{0}")]
    Refused(String),
    /// Any other answer than success or absence.
    #[error("the upstream answered {0}")]
    Status(u16),
    #[error("the upstream could not be reached: {0}")]
    Unreachable(String),
    #[error("the upstream's answer is larger than {0} bytes")]
    TooLarge(u64),
}

/// What a protocol answers for a fetch that gave nothing: the name is not found, or the
/// upstream failed (502).
impl From<FetchError> for Error {
    fn from(error: FetchError) -> Self {
        match error {
            FetchError::NotFound => Error::NotFound(Entity::Package),
            other => Error::Upstream(format!("the upstream failed: {other}")),
        }
    }
}

/// How a request authenticates to an upstream.
pub enum Credentials<'a> {
    Basic {
        username: &'a str,
        password: &'a str,
    },
    Bearer(&'a str),
}

/// How a request to `url` authenticates through `upstream`: with its credentials, but only on
/// the upstream's own origin (what an upstream answers may name URLs anywhere).
pub fn credentials_for<'a>(upstream: &'a ReachableUpstream, url: &Url) -> Option<Credentials<'a>> {
    let credentials: &'a UpstreamCredentials = upstream.credentials.as_ref()?;
    if url.origin() != upstream.upstream.url.as_url().origin() {
        return None;
    }
    let password = credentials.password.expose_secret();
    Some(match &credentials.username {
        Some(username) => Credentials::Basic { username, password },
        None => Credentials::Bearer(password),
    })
}

/// A successful answer, its body still to be read.
pub struct Fetched {
    pub content_type: Option<String>,
    pub content_length: Option<u64>,
    pub body: ByteStream,
}

pub struct UpstreamClient {
    http: reqwest::Client,
    reach: UpstreamReach,
    /// Container registries' tokens, by upstream and image ([`registry`]).
    tokens: registry::TokenCache,
}

impl UpstreamClient {
    /// The process's client for `reach` (connections are pooled across requests).
    pub fn shared(reach: UpstreamReach) -> &'static UpstreamClient {
        static PUBLIC: OnceLock<UpstreamClient> = OnceLock::new();
        static ANY: OnceLock<UpstreamClient> = OnceLock::new();
        let cell = match reach {
            UpstreamReach::PublicOnly => &PUBLIC,
            UpstreamReach::AnyAddress => &ANY,
        };
        cell.get_or_init(|| UpstreamClient::new(reach))
    }

    /// The process's client for the upstreams `registry` allows.
    pub fn of(registry: &Registry) -> &'static UpstreamClient {
        Self::shared(registry.settings().upstream_reach)
    }

    pub fn new(reach: UpstreamReach) -> Self {
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
            } else if let Err(why) = check_url(attempt.url(), reach) {
                attempt.error(why)
            } else {
                attempt.follow()
            }
        });
        let http = reqwest::Client::builder()
            .redirect(policy)
            .dns_resolver(std::sync::Arc::new(GuardedResolver { reach }))
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .user_agent(concat!("stowage/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the upstream client's settings are valid");
        Self {
            http,
            reach,
            tokens: registry::TokenCache::default(),
        }
    }

    /// GETs `url`, answering its body as a stream.
    pub async fn get(
        &self,
        url: &Url,
        credentials: Option<Credentials<'_>>,
        accept: &str,
    ) -> Result<Fetched, FetchError> {
        let response = self
            .send(url, credentials.as_ref().map(authorization), accept)
            .await?;
        fetched(response)
    }

    /// Sends a GET of `url` with an `Authorization` header, if any, whatever it answers.
    async fn send(
        &self,
        url: &Url,
        authorization: Option<HeaderValue>,
        accept: &str,
    ) -> Result<reqwest::Response, FetchError> {
        check_url(url, self.reach).map_err(FetchError::Refused)?;
        let mut request = self.http.get(url.clone()).header(ACCEPT, accept);
        if let Some(authorization) = authorization {
            request = request.header(AUTHORIZATION, authorization);
        }
        request.send().await.map_err(unreachable)
    }

    /// GETs `url` and reads its whole body, of at most `limit` bytes.
    pub async fn get_bytes(
        &self,
        url: &Url,
        credentials: Option<Credentials<'_>>,
        accept: &str,
        limit: u64,
    ) -> Result<Bytes, FetchError> {
        self.get(url, credentials, accept).await?.bytes(limit).await
    }
}

impl Fetched {
    /// Reads the whole body, of at most `limit` bytes.
    pub async fn bytes(self, limit: u64) -> Result<Bytes, FetchError> {
        if self.content_length.is_some_and(|length| length > limit) {
            return Err(FetchError::TooLarge(limit));
        }
        let mut body = self.body;
        let mut all = BytesMut::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|error| FetchError::Unreachable(error.to_string()))?;
            if (all.len() + chunk.len()) as u64 > limit {
                return Err(FetchError::TooLarge(limit));
            }
            all.extend_from_slice(&chunk);
        }
        Ok(all.freeze())
    }
}

/// A success as a body to read; an absence or any other answer as an error.
fn fetched(response: reqwest::Response) -> Result<Fetched, FetchError> {
    let status = response.status();
    if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::GONE {
        return Err(FetchError::NotFound);
    }
    if !status.is_success() {
        return Err(FetchError::Status(status.as_u16()));
    }
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let content_length = response.content_length();
    let body = response
        .bytes_stream()
        .map_err(|error| std::io::Error::other(unreachable(error)))
        .boxed();
    Ok(Fetched {
        content_type,
        content_length,
        body,
    })
}

fn authorization(credentials: &Credentials<'_>) -> HeaderValue {
    use base64::Engine;
    let text = match credentials {
        Credentials::Basic { username, password } => format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
        ),
        Credentials::Bearer(token) => format!("Bearer {token}"),
    };
    let mut value =
        HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("invalid"));
    value.set_sensitive(true);
    value
}

/// The scheme and, for a literal address, the address a URL may have under `reach`.
fn check_url(url: &Url, reach: UpstreamReach) -> Result<(), String> {
    match (url.scheme(), reach) {
        ("https", _) | ("http", UpstreamReach::AnyAddress) => {}
        (scheme, _) => return Err(format!("{scheme} URLs are not fetched from upstreams")),
    }
    let address = match url.host() {
        Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
        Some(Host::Domain(_)) => return Ok(()),
        None => return Err("an upstream URL names a host".into()),
    };
    if reach.allows(address) {
        Ok(())
    } else {
        Err(format!("{address} is not a public address"))
    }
}

fn unreachable(error: reqwest::Error) -> FetchError {
    // The chain says why (a refused address, a timeout); never a credential, which is only
    // ever in a header.
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    FetchError::Unreachable(message)
}

/// Resolves names with the system's resolver, keeping only the addresses `reach` allows.
struct GuardedResolver {
    reach: UpstreamReach,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let reach = self.reach;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|address| reach.allows(address.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::response::Redirect;
    use axum::routing::get;

    use super::*;

    async fn serve(router: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
        url
    }

    fn url(base: &str, path: &str) -> Url {
        Url::parse(&format!("{base}{path}")).expect("url")
    }

    #[tokio::test]
    async fn private_addresses_and_plain_http_are_refused_unless_allowed() {
        let base = serve(Router::new().route("/doc", get(|| async { "hello" }))).await;
        let public = UpstreamClient::new(UpstreamReach::PublicOnly);
        let error = public
            .get_bytes(&url(&base, "/doc"), None, "*/*", 100)
            .await
            .expect_err("loopback over http");
        assert!(matches!(error, FetchError::Refused(_)), "{error:?}");
        let https_loopback = Url::parse("https://127.0.0.1:1/doc").expect("url");
        assert!(matches!(
            public.get_bytes(&https_loopback, None, "*/*", 100).await,
            Err(FetchError::Refused(_))
        ));
        // A name that resolves to loopback is refused after resolution.
        let by_name = Url::parse("https://localhost:1/doc").expect("url");
        let error = public
            .get_bytes(&by_name, None, "*/*", 100)
            .await
            .expect_err("localhost");
        assert!(error.to_string().contains("no public address"), "{error}");

        let any = UpstreamClient::new(UpstreamReach::AnyAddress);
        let body = any
            .get_bytes(&url(&base, "/doc"), None, "*/*", 100)
            .await
            .expect("allowed");
        assert_eq!(&body[..], b"hello");
    }

    #[tokio::test]
    async fn answers_over_the_limit_and_absences_are_told_apart() {
        let base = serve(
            Router::new()
                .route("/big", get(|| async { "x".repeat(1000) }))
                .route("/gone", get(|| async { axum::http::StatusCode::GONE }))
                .route(
                    "/broken",
                    get(|| async { axum::http::StatusCode::BAD_GATEWAY }),
                ),
        )
        .await;
        let client = UpstreamClient::new(UpstreamReach::AnyAddress);
        assert!(matches!(
            client
                .get_bytes(&url(&base, "/big"), None, "*/*", 999)
                .await,
            Err(FetchError::TooLarge(999))
        ));
        assert_eq!(
            client
                .get_bytes(&url(&base, "/big"), None, "*/*", 1000)
                .await
                .expect("at the limit")
                .len(),
            1000
        );
        assert!(matches!(
            client
                .get_bytes(&url(&base, "/missing"), None, "*/*", 10)
                .await,
            Err(FetchError::NotFound)
        ));
        assert!(matches!(
            client
                .get_bytes(&url(&base, "/gone"), None, "*/*", 10)
                .await,
            Err(FetchError::NotFound)
        ));
        assert!(matches!(
            client
                .get_bytes(&url(&base, "/broken"), None, "*/*", 10)
                .await,
            Err(FetchError::Status(502))
        ));
    }

    #[tokio::test]
    async fn redirects_are_followed_only_where_a_request_may_go() {
        let base = serve(
            Router::new()
                .route("/doc", get(|| async { "moved here" }))
                .route("/hop", get(|| async { Redirect::temporary("/doc") }))
                .route("/loop", get(|| async { Redirect::temporary("/loop") })),
        )
        .await;
        let any = UpstreamClient::new(UpstreamReach::AnyAddress);
        let body = any
            .get_bytes(&url(&base, "/hop"), None, "*/*", 100)
            .await
            .expect("a redirect on the same host");
        assert_eq!(&body[..], b"moved here");
        let error = any
            .get_bytes(&url(&base, "/loop"), None, "*/*", 100)
            .await
            .expect_err("a loop");
        assert!(error.to_string().contains("redirects"), "{error}");
        // The rule every redirect target is held to before it is followed.
        for (target, reach, allowed) in [
            (
                "http://169.254.169.254/latest",
                UpstreamReach::PublicOnly,
                false,
            ),
            (
                "https://169.254.169.254/latest",
                UpstreamReach::PublicOnly,
                false,
            ),
            ("https://[::1]/", UpstreamReach::PublicOnly, false),
            (
                "http://registry.example.com/",
                UpstreamReach::PublicOnly,
                false,
            ),
            ("ftp://example.com/", UpstreamReach::AnyAddress, false),
            ("https://example.com/", UpstreamReach::PublicOnly, true),
            ("http://10.0.0.1/", UpstreamReach::AnyAddress, true),
        ] {
            let url = Url::parse(target).expect("url");
            assert_eq!(check_url(&url, reach).is_ok(), allowed, "{target}");
        }
    }
}
