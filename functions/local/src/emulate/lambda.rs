//! A Lambda function behind an API Gateway HTTP API, on one machine: each request becomes a
//! payload-2.0 event as API Gateway sends it, within the platform's limits, and goes through
//! lambda_http's own conversion into the function's router, as `lambda_http::run` does in a
//! deployed function; the function's response comes back the same way.

use std::time::Duration;

use axum::Router;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{HeaderMap, Method, Response, StatusCode};
use lambda_http::request::LambdaRequest;
use lambda_http::tower::Service as _;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};

/// The most an invocation's event may hold (Lambda's synchronous payload limit).
pub const LAMBDA_EVENT_MAX: usize = 6 * 1024 * 1024;
/// The most an HTTP API takes in one request body.
pub const HTTP_API_BODY_MAX: usize = 10 * 1024 * 1024;
/// How long an HTTP API waits for its integration.
pub const HTTP_API_TIMEOUT: Duration = Duration::from_secs(30);

/// The host name API Gateway gives an HTTP API (what the function sees as `Host`).
const API_HOST: &str = "abcdef1234.execute-api.eu-west-1.amazonaws.com";

/// One function, as deployed: its router behind the Lambda adapter.
#[derive(Clone)]
pub struct LambdaFunction {
    router: Router,
    route_key: &'static str,
}

/// API Gateway's own answer, when the request never reaches the function.
fn gateway_refusal(status: StatusCode, message: &str) -> Response<Bytes> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Bytes::from(json!({ "message": message }).to_string()))
        .expect("a valid response")
}

/// What API Gateway answers to a request too large for a Lambda function.
pub fn too_large() -> Response<Bytes> {
    gateway_refusal(
        StatusCode::PAYLOAD_TOO_LARGE,
        "Request Entity Too Large: a request to a Lambda function carries at most 6 MB, \
         about 4.4 MB of binary body once base64-encoded (deploy the upload service, \
         UploadService=enabled, to take larger bodies)",
    )
}

impl LambdaFunction {
    /// The function serving `router` on the HTTP API route `route_key` (`ANY /v2/{proxy+}`).
    pub fn new(router: Router, route_key: &'static str) -> Self {
        Self { router, route_key }
    }

    /// What the HTTP API answers to a request with `body`: the function's answer, or the
    /// platform's refusal when the request is too large for it or the function too slow.
    pub async fn invoke(
        &self,
        method: &Method,
        path_and_query: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Response<Bytes> {
        if body.len() > HTTP_API_BODY_MAX {
            return too_large();
        }
        let event = self.event(method, path_and_query, headers, body);
        let text = event.to_string();
        if text.len() > LAMBDA_EVENT_MAX {
            return too_large();
        }
        let payload: LambdaRequest =
            serde_json::from_str(&text).expect("API Gateway events are what lambda_http reads");
        let call = {
            let mut entry = lambda_http::Adapter::from(self.router.clone());
            entry.call(LambdaEvent::new(payload, Context::default()))
        };
        match tokio::time::timeout(HTTP_API_TIMEOUT, call).await {
            Ok(Ok(response)) => {
                Self::response(serde_json::to_value(&response).expect("Lambda responses serialize"))
            }
            Ok(Err(error)) => {
                tracing::error!(%error, "the function failed");
                gateway_refusal(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
            Err(_) => gateway_refusal(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable"),
        }
    }

    fn event(
        &self,
        method: &Method,
        path_and_query: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Value {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let mut header_map = serde_json::Map::new();
        for (name, value) in headers {
            let Ok(value) = value.to_str() else { continue };
            header_map
                .entry(name.as_str().to_owned())
                .and_modify(|joined| {
                    // API Gateway joins repeated headers with commas.
                    if let Value::String(text) = joined {
                        text.push(',');
                        text.push_str(value);
                    }
                })
                .or_insert_with(|| Value::String(value.to_owned()));
        }
        header_map.insert("host".into(), json!(API_HOST));
        header_map
            .entry("x-forwarded-proto")
            .or_insert_with(|| json!("https"));
        header_map.insert("content-length".into(), json!(body.len().to_string()));
        let mut event = json!({
            "version": "2.0",
            "routeKey": self.route_key,
            "rawPath": path,
            "rawQueryString": query,
            "headers": header_map,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "abcdef1234",
                "domainName": API_HOST,
                "domainPrefix": "abcdef1234",
                "http": { "method": method.as_str(), "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "emulated" },
                "requestId": uuid_like(),
                "routeKey": self.route_key,
                "stage": "$default",
                "time": "27/Nov/2026:01:00:00 +0000",
                "timeEpoch": 1795741200000u64,
            },
            "isBase64Encoded": !body.is_empty(),
        });
        if !body.is_empty() {
            event["body"] = json!(STANDARD.encode(body));
        }
        event
    }

    fn response(response: Value) -> Response<Bytes> {
        let raw = response["body"].as_str().unwrap_or_default();
        let body = if response["isBase64Encoded"].as_bool() == Some(true) {
            STANDARD.decode(raw).unwrap_or_default()
        } else {
            raw.as_bytes().to_vec()
        };
        let status = response["statusCode"].as_u64().unwrap_or(500) as u16;
        let mut builder = Response::builder().status(status);
        for (name, value) in response["headers"].as_object().into_iter().flatten() {
            if let Some(value) = value.as_str() {
                builder = builder.header(name.as_str(), value);
            }
        }
        for cookie in response["cookies"].as_array().into_iter().flatten() {
            if let Some(cookie) = cookie.as_str() {
                builder = builder.header(http::header::SET_COOKIE, cookie);
            }
        }
        builder
            .body(Bytes::from(body))
            .unwrap_or_else(|_| gateway_refusal(StatusCode::BAD_GATEWAY, "Bad Gateway"))
    }
}

/// A request id in the shape API Gateway's have.
fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("emulated-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::{get, put};

    fn function() -> LambdaFunction {
        let router = Router::new()
            .route(
                "/v2/echo",
                put(|body: Bytes| async move { ([("x-length", body.len().to_string())], body) }),
            )
            .route(
                "/v2/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    "late"
                }),
            )
            .layer(axum::extract::DefaultBodyLimit::disable());
        LambdaFunction::new(router, "ANY /v2/{proxy+}")
    }

    #[tokio::test]
    async fn a_binary_body_goes_through_the_event_and_back() {
        let body: Vec<u8> = (0..=255).cycle().take(100_000).collect();
        let answer = function()
            .invoke(&Method::PUT, "/v2/echo?x=1", &HeaderMap::new(), &body)
            .await;
        assert_eq!(answer.status(), StatusCode::OK);
        assert_eq!(answer.headers()["x-length"], "100000");
        assert_eq!(answer.body().as_ref(), body.as_slice());
    }

    #[tokio::test]
    async fn a_body_over_the_event_limit_never_reaches_the_function() {
        // 4.8 MB of bytes is 6.4 MB once base64-encoded: within the HTTP API, over Lambda.
        let answer = function()
            .invoke(
                &Method::PUT,
                "/v2/echo",
                &HeaderMap::new(),
                &vec![7; 4_800_000],
            )
            .await;
        assert_eq!(answer.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let message = String::from_utf8_lossy(answer.body());
        assert!(message.contains("6 MB"), "{message}");
        let answer = function()
            .invoke(
                &Method::PUT,
                "/v2/echo",
                &HeaderMap::new(),
                &vec![7; 4_000_000],
            )
            .await;
        assert_eq!(answer.status(), StatusCode::OK);
    }

    #[tokio::test(start_paused = true)]
    async fn a_function_slower_than_the_gateway_is_answered_503() {
        let answer = function()
            .invoke(&Method::GET, "/v2/slow", &HeaderMap::new(), b"")
            .await;
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
