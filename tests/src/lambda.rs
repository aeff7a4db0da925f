//! Requests through the Lambda entry path: each request becomes an API Gateway HTTP API
//! (payload 2.0) event, as API Gateway would send it, and goes through lambda_http's own
//! conversion into the function's router, as `lambda_http::run` does in a deployed function.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use lambda_http::request::LambdaRequest;
use lambda_http::tower::Service as _;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use stowage_domain::{
    ManualClock, PackageName, PackageType, Plan, Slug, TokenSecret, UpstreamReach,
};
use stowage_service::{BootstrapToken, Credential, NewPackage, Registry, Settings};

use crate::Stores;

/// A registry over `stores`, as a deployed function finds it: the site admin, whose token is
/// `admin_token`, and, created by it, workspace `acme` with repository `repository` holding
/// `packages` (type and name). Upstreams may be on loopback, and take credentials.
pub async fn registry_with_packages(
    stores: &Stores,
    clock: Arc<ManualClock>,
    admin_token: &str,
    repository: &str,
    packages: &[(&str, &str)],
) -> Arc<Registry> {
    let settings = Settings {
        upstream_reach: UpstreamReach::AnyAddress,
        ..Settings::default()
    };
    let registry = Arc::new(
        Registry::new(
            Arc::clone(&stores.metadata),
            Arc::clone(&stores.blobs),
            clock,
            settings,
        )
        .with_sealer(Arc::clone(&stores.sealer)),
    );
    let secret = TokenSecret::from_presented(admin_token.to_owned());
    registry
        .bootstrap_site_admin(BootstrapToken::Secret(secret.clone()))
        .await
        .expect("bootstrap");
    let admin = registry
        .authenticate(&Credential::Bearer(secret))
        .await
        .expect("admin");
    registry
        .create_workspace(&admin, slug("acme"), Plan::Standard)
        .await
        .expect("workspace");
    registry
        .create_repository(&admin, "acme", slug(repository))
        .await
        .expect("repository");
    for (kind, name) in packages {
        let kind = PackageType::parse("type", kind).expect("package type");
        let package = NewPackage {
            kind,
            name: PackageName::parse(kind, "name", name).expect("package name"),
            repository: slug(repository),
        };
        registry
            .create_package(&admin, "acme", package)
            .await
            .expect("package");
    }
    registry
}

fn slug(value: &str) -> Slug {
    Slug::parse("slug", value).expect("slug")
}

/// Lambda's limit on an invocation's payload: larger events never reach the function.
pub const LAMBDA_EVENT_MAX: usize = 6 * 1024 * 1024;

pub struct LambdaReply {
    pub status: u16,
    pub headers: HashMap<String, String>,
    /// `Set-Cookie` values: payload 2.0 answers them apart from the headers.
    pub cookies: Vec<String>,
    pub body: Vec<u8>,
}

impl LambdaReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// One function, as deployed: its router behind the Lambda adapter.
pub struct LambdaFunction {
    router: axum::Router,
    route_key: &'static str,
}

impl LambdaFunction {
    pub fn new(router: axum::Router, route_key: &'static str) -> Self {
        Self { router, route_key }
    }

    pub async fn call(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> LambdaReply {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let mut header_map: serde_json::Map<String, Value> = headers
            .iter()
            .map(|(name, value)| {
                (
                    name.to_ascii_lowercase(),
                    Value::String((*value).to_owned()),
                )
            })
            .collect();
        header_map.insert(
            "host".into(),
            json!("abcdef1234.execute-api.eu-west-1.amazonaws.com"),
        );
        header_map.insert("x-forwarded-proto".into(), json!("https"));
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
                "domainName": "abcdef1234.execute-api.eu-west-1.amazonaws.com",
                "domainPrefix": "abcdef1234",
                "http": { "method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "test" },
                "requestId": "test-request",
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
        let text = event.to_string();
        if text.len() > LAMBDA_EVENT_MAX {
            // What API Gateway answers when the function cannot take the request.
            return LambdaReply {
                status: 413,
                headers: HashMap::new(),
                cookies: Vec::new(),
                body: b"Request Entity Too Large".to_vec(),
            };
        }
        let payload: LambdaRequest = serde_json::from_str(&text).expect("an API Gateway event");
        let mut entry = lambda_http::Adapter::from(self.router.clone());
        let response = entry
            .call(LambdaEvent::new(payload, Context::default()))
            .await
            .expect("the function answers");
        let response = serde_json::to_value(&response).expect("a Lambda response");
        let headers = response["headers"]
            .as_object()
            .map(|h| {
                h.iter()
                    .map(|(k, v)| {
                        (
                            k.to_ascii_lowercase(),
                            v.as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let raw = response["body"].as_str().unwrap_or_default();
        let body = if response["isBase64Encoded"].as_bool() == Some(true) {
            STANDARD.decode(raw).expect("base64 body")
        } else {
            raw.as_bytes().to_vec()
        };
        let cookies = response["cookies"]
            .as_array()
            .map(|cookies| {
                cookies
                    .iter()
                    .filter_map(|c| c.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        LambdaReply {
            status: response["statusCode"].as_u64().unwrap_or(0) as u16,
            headers,
            cookies,
            body,
        }
    }
}
