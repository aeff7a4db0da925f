use std::sync::Arc;

use http::HeaderMap;
use http::header::{CONTENT_LENGTH, HOST};
use stowage_service::Registry;
use url::Url;

/// The most a Lambda invocation takes: 6 MB of event, in which a binary body is base64
/// (4 bytes for every 3), less room for the event's own JSON.
pub const LAMBDA_MAX_BODY: usize = 4_400_000;

/// How big a request body may be, which differs between a Lambda and the local server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest body taken in one request.
    pub max_body: usize,
    /// True on the Lambda path, where the limit comes from the platform (error messages say
    /// how to stay within it).
    pub platform_limited: bool,
    /// True when an upload service beside the Lambdas takes the requests that carry large
    /// bodies (the front routes them there), so clients need not be told to send small ones.
    pub upload_service: bool,
}

impl Limits {
    pub const LAMBDA: Limits = Limits {
        max_body: LAMBDA_MAX_BODY,
        platform_limited: true,
        upload_service: false,
    };

    pub fn local(max_body: usize) -> Self {
        Self {
            max_body,
            platform_limited: false,
            upload_service: false,
        }
    }

    /// These limits, with an upload service taking the large bodies.
    pub fn with_upload_service(self) -> Self {
        Self {
            upload_service: true,
            ..self
        }
    }

    /// The most a streamed request body may hold: the platform's limit on Lambda; none
    /// locally, where bodies stream to storage.
    pub fn streamed_body_limit(&self) -> Option<u64> {
        self.platform_limited.then_some(self.max_body as u64)
    }

    /// The platform's limit, when the request declares a body longer than it: such a body is
    /// refused before it is read, with a message saying how to stay within it.
    pub fn declared_over_platform_limit(&self, headers: &HeaderMap) -> Option<u64> {
        let limit = self.streamed_body_limit()?;
        let declared = headers
            .get(CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok())?;
        (declared > limit).then_some(limit)
    }
}

/// What every handler is given.
#[derive(Clone)]
pub struct AppState {
    pub registry: Arc<Registry>,
    /// The URL clients reach the service at; when unset, it is taken from each request.
    pub public_url: Option<Url>,
    pub limits: Limits,
}

/// The base URL clients used for this request, without a trailing `/`: the configured public
/// URL, else the request's `X-Forwarded-Host` (which the deployment's CloudFront front sets:
/// the origins behind it see their own host name) or `Host`, and `X-Forwarded-Proto` (which
/// API Gateway sets).
pub fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.public_url {
        return url.as_str().trim_end_matches('/').to_owned();
    }
    let host = headers
        .get("x-forwarded-host")
        .or_else(|| headers.get(HOST))
        .and_then(|value| value.to_str().ok())
        .filter(|host| !host.is_empty())
        .unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .filter(|proto| matches!(*proto, "http" | "https"))
        .unwrap_or("http");
    format!("{scheme}://{host}")
}
