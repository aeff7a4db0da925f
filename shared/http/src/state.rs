use std::sync::Arc;

use http::HeaderMap;
use http::header::{CONTENT_LENGTH, FORWARDED, HOST};
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
/// URL, else what the request says of itself: the `Forwarded` header (RFC 7239; the
/// deployment's CloudFront front sets it, since the origins behind it see their own host
/// name and scheme), else `Host` and `X-Forwarded-Proto` (which API Gateway sets).
pub fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.public_url {
        return url.as_str().trim_end_matches('/').to_owned();
    }
    let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let forwarded = text(FORWARDED.as_str())
        .map(first_forwarded)
        .unwrap_or_default();
    let host = forwarded
        .host
        .or_else(|| text(HOST.as_str()))
        .filter(|host| !host.is_empty() && !host.contains(['/', '@', ' ']))
        .unwrap_or("localhost");
    let scheme = forwarded
        .proto
        .or_else(|| text("x-forwarded-proto"))
        .filter(|proto| matches!(*proto, "http" | "https"))
        .unwrap_or("http");
    format!("{scheme}://{host}")
}

/// The host and scheme of the first (the client's own) element of a `Forwarded` header.
#[derive(Debug, Default, PartialEq, Eq)]
struct Forwarded<'a> {
    host: Option<&'a str>,
    proto: Option<&'a str>,
}

fn first_forwarded(value: &str) -> Forwarded<'_> {
    let first = value.split(',').next().unwrap_or_default();
    let mut forwarded = Forwarded::default();
    for pair in first.split(';') {
        let Some((name, value)) = pair.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"');
        match name.trim().to_ascii_lowercase().as_str() {
            "host" => forwarded.host = Some(value),
            "proto" => forwarded.proto = Some(value),
            _ => {}
        }
    }
    forwarded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forwarded_header_names_the_clients_host_and_scheme() {
        assert_eq!(
            first_forwarded("host=registry.example.com;proto=https"),
            Forwarded {
                host: Some("registry.example.com"),
                proto: Some("https")
            }
        );
        assert_eq!(
            first_forwarded(r#"for=192.0.2.60;Proto=http;HOST="a.example:8080", host=b"#),
            Forwarded {
                host: Some("a.example:8080"),
                proto: Some("http")
            }
        );
        assert_eq!(first_forwarded("for=192.0.2.60"), Forwarded::default());
    }
}
