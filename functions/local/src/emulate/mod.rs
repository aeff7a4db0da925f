//! `stowage-local --emulate-aws`: the deployment's shape on one machine. One listener plays
//! the CloudFront front: it routes each request by the deployed function's own rule
//! ([`front`]) either to the upload service (the local server's routers, no request limit) or
//! through API Gateway to the Lambda function that serves its path ([`lambda`]), with the
//! platform's limits on size and time. Without the upload service every request takes the
//! Lambda path, which shows the limit a deployment without it has.

pub mod front;
pub mod lambda;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::HeaderValue;
use http::header::HOST;
use http_body_util::BodyExt as _;
use stowage_http::AppState;
use tower::ServiceExt as _;

pub use front::{Origin, origin_of};
pub use lambda::LambdaFunction;

/// The Lambda functions of the deployment, each with the HTTP API routes it serves.
#[derive(Clone)]
pub struct Functions {
    admin: LambdaFunction,
    oci: LambdaFunction,
    npm: LambdaFunction,
    maven: LambdaFunction,
    web: LambdaFunction,
}

impl Functions {
    /// Every function, each over its own `state` (on AWS each runs in its own process).
    pub fn new(state: impl Fn() -> AppState) -> Self {
        Self {
            admin: LambdaFunction::new(stowage_admin::router(state()), "ANY /api/{proxy+}"),
            oci: LambdaFunction::new(stowage_oci::router(state()), "ANY /v2/{proxy+}"),
            npm: LambdaFunction::new(stowage_npm::router(state()), "ANY /npm/{proxy+}"),
            maven: LambdaFunction::new(stowage_maven::router(state()), "ANY /maven/{proxy+}"),
            web: LambdaFunction::new(stowage_web::router(state()), "ANY /{proxy+}"),
        }
    }

    /// The function whose HTTP API route takes `path`, as template.yaml routes them: the web
    /// interface takes every path the others do not.
    fn for_path(&self, path: &str) -> &LambdaFunction {
        let under = |prefix: &str| path == prefix || path.starts_with(&format!("{prefix}/"));
        if under("/v2") {
            &self.oci
        } else if under("/npm") {
            &self.npm
        } else if under("/maven") {
            &self.maven
        } else if under("/api") {
            &self.admin
        } else {
            &self.web
        }
    }
}

#[derive(Clone)]
struct Front {
    functions: Functions,
    /// The upload service's routers; `None` emulates a deployment without it.
    upload_service: Option<Router>,
    /// What S3 serves on AWS: the embedded store's signed blob URLs.
    blob_urls: Option<Router>,
}

/// The front: `functions` behind API Gateway, and `upload_service` when there is one.
pub fn front(
    functions: Functions,
    upload_service: Option<Router>,
    blob_urls: Option<Router>,
) -> Router {
    let front = Router::new().fallback(route).with_state(Front {
        functions,
        upload_service,
        blob_urls,
    });
    // A refused body is read before the refusal goes, so that the client sees it.
    stowage_http::drain_unread_bodies(front)
}

async fn route(State(front): State<Front>, mut request: Request) -> Response {
    let path = request.uri().path().to_owned();
    if let Some(blob_urls) = &front.blob_urls
        && path.starts_with("/_blob/")
    {
        return serve(blob_urls.clone(), request).await;
    }
    // As the CloudFront function does: the origins see their own host name and scheme.
    let viewer_host = request
        .headers()
        .get(HOST)
        .and_then(|host| host.to_str().ok())
        .unwrap_or_default();
    if let Ok(forwarded) = HeaderValue::from_str(&format!("host={viewer_host};proto=http")) {
        request
            .headers_mut()
            .insert(http::header::FORWARDED, forwarded);
    }
    if let Some(upload_service) = &front.upload_service
        && origin_of(request.method().as_str(), &path) == Origin::UploadService
    {
        return serve(upload_service.clone(), request).await;
    }
    through_api_gateway(front.functions.for_path(&path), request).await
}

async fn serve(router: Router, request: Request) -> Response {
    match router.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// The request as API Gateway passes it to a function: read whole, at most what an HTTP API
/// takes (a larger body is refused as soon as it is seen to be larger).
async fn through_api_gateway(function: &LambdaFunction, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared.is_some_and(|length| length > lambda::HTTP_API_BODY_MAX) {
        return lambda::too_large().map(Body::from);
    }
    let limited = http_body_util::Limited::new(body, lambda::HTTP_API_BODY_MAX);
    let body = match limited.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
            return lambda::too_large().map(Body::from);
        }
        Err(_) => {
            return (http::StatusCode::BAD_REQUEST, "the request body broke off").into_response();
        }
    };
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned());
    function
        .invoke(&parts.method, &path_and_query, &parts.headers, &body)
        .await
        .map(Body::from)
}

/// An [`AppState`] factory for the Lambda side: each call a registry of its own over the
/// same stores, as separate processes have.
pub fn lambda_state_factory(
    make_registry: impl Fn() -> Arc<stowage_service::Registry>,
    upload_service: bool,
) -> impl Fn() -> AppState {
    move || {
        let limits = stowage_http::Limits::LAMBDA;
        AppState {
            registry: make_registry(),
            public_url: None,
            limits: if upload_service {
                limits.with_upload_service()
            } else {
                limits
            },
        }
    }
}
