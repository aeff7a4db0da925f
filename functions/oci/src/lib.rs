//! The container registry: the OCI Distribution Spec v1.1 under `/v2`, with the Docker token
//! flow. Paths are taken apart in [`route`]; each endpoint's handler is in its own module.

mod auth;
mod blobs;
pub mod browse;
mod capability;
mod error;
mod listings;
mod manifests;
mod proxy;
mod records;
mod route;
mod uploads;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use stowage_domain::Slug;
use stowage_http::{AppState, UPLOAD_CAPABILITY_PREFIX, base_url, handover};

use crate::error::{Code, OciResult};
use crate::route::Endpoint;

pub use auth::REGISTRY_TOKEN_SECONDS;
pub use capability::UPLOAD_CAPABILITY_SECONDS;
pub use error::OciError;
pub use manifests::MANIFEST_MAX;
pub use records::OciContent;

pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/v2", any(dispatch))
        .route("/v2/", any(dispatch))
        .route("/v2/{*tail}", any(dispatch))
        .with_state(state);
    stowage_http::edge(routes)
}

async fn dispatch(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let tail = uri
        .path()
        .strip_prefix("/v2")
        .unwrap_or("")
        .trim_start_matches('/');
    let endpoint = Endpoint::parse(tail);
    let push = !matches!(method, Method::GET | Method::HEAD);
    let name = endpoint.as_ref().ok().and_then(Endpoint::name).cloned();
    if let Ok(endpoint) = &endpoint {
        stowage_http::describe_request(
            name.as_ref().map(|n| n.workspace.as_str()),
            name.as_ref().map(|n| n.path.as_str()),
            &format!(
                "oci.{}.{}",
                endpoint.operation(),
                method.as_str().to_lowercase()
            ),
        );
    }
    let mut response = match endpoint {
        Ok(endpoint) => handle(&state, &method, endpoint, uri.query(), &headers, body).await,
        // A HEAD's answer has no body to say what is wrong with a name, and clients report a
        // bare 400; "not found" makes them go on to a request whose answer they print.
        Err(error) if method == Method::HEAD && error.code == Code::NameInvalid => {
            Err(error.with_status(StatusCode::NOT_FOUND))
        }
        Err(error) => Err(error),
    }
    .unwrap_or_else(|mut error| {
        if error.code == Code::Unauthorized && error.challenge.is_none() {
            error.challenge = Some(auth::challenge(
                &base_url(&state, &headers),
                name.as_ref(),
                push,
            ));
        }
        error.into_response()
    });
    response.headers_mut().insert(
        "Docker-Distribution-API-Version",
        HeaderValue::from_static("registry/2.0"),
    );
    response
}

/// The caller of a request: an upload URL's capability, else the request's credential.
async fn authorise(
    state: &AppState,
    headers: &HeaderMap,
    endpoint: Endpoint,
) -> OciResult<(auth::Caller, Endpoint)> {
    if let Endpoint::Upload { name, id } = &endpoint
        && let Some(token) = capability::presented(id)
    {
        let (caller, session) = capability::redeem(&state.registry, token, name).await?;
        let name = name.clone();
        return Ok((caller, Endpoint::Upload { name, id: session }));
    }
    if let Endpoint::HandedOver {
        workspace,
        capability,
    } = &endpoint
    {
        return handed_over(state, workspace, capability).await;
    }
    let caller = auth::caller(state, headers)
        .await?
        .ok_or_else(OciError::unauthorized)?;
    Ok((caller, endpoint))
}

/// The caller and the read of a URL a Lambda handed over ([`stowage_http::handover`]): only a
/// blob's.
async fn handed_over(
    state: &AppState,
    workspace: &Slug,
    capability: &str,
) -> OciResult<(auth::Caller, Endpoint)> {
    let root = format!("/v2/{workspace}");
    let token = capability
        .strip_prefix(UPLOAD_CAPABILITY_PREFIX)
        .ok_or_else(|| OciError::unauthorized_because("this fetch URL is not valid"))?;
    let (principal, asked) = handover::redeem(&state.registry, &root, token).await?;
    let endpoint = Endpoint::parse(asked.trim_start_matches("/v2/"))?;
    let Endpoint::Blob { name, digest } = endpoint else {
        return Err(OciError::unauthorized_because(
            "this fetch URL is not valid",
        ));
    };
    stowage_http::describe_request(
        Some(name.workspace.as_str()),
        Some(name.path.as_str()),
        "oci.blob.get",
    );
    let caller = auth::Caller {
        principal,
        grants: Vec::new(),
    };
    Ok((caller, Endpoint::Blob { name, digest }))
}

fn method_not_allowed() -> OciError {
    OciError::unsupported("method not allowed on this endpoint")
}

async fn handle(
    state: &AppState,
    method: &Method,
    endpoint: Endpoint,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> OciResult<Response> {
    if endpoint == Endpoint::Token {
        return if *method == Method::GET {
            let token =
                auth::token_endpoint(state, headers, query)
                    .await
                    .map_err(|mut error| {
                        if error.code == Code::Unauthorized {
                            error.challenge =
                                Some(HeaderValue::from_static("Basic realm=\"Stowage registry\""));
                        }
                        error
                    })?;
            Ok(([(CONTENT_TYPE, "application/json")], token.to_string()).into_response())
        } else {
            Err(method_not_allowed())
        };
    }
    let (caller, endpoint) = authorise(state, headers, endpoint).await?;
    let registry = &state.registry;
    match (endpoint, method.clone()) {
        (Endpoint::Ping, Method::GET | Method::HEAD) => {
            Ok(([(CONTENT_TYPE, "application/json")], "{}").into_response())
        }
        (Endpoint::Catalog, Method::GET) => listings::catalog(registry, &caller, query).await,
        (Endpoint::Manifest { name, reference }, Method::GET | Method::HEAD) => {
            manifests::get(registry, &caller, &name, &reference, method).await
        }
        (Endpoint::Manifest { name, reference }, Method::PUT) => {
            manifests::put(registry, &caller, &name, &reference, headers, body).await
        }
        (Endpoint::Manifest { name, reference }, Method::DELETE) => {
            manifests::delete(registry, &caller, &name, &reference).await
        }
        (Endpoint::Blob { name, digest }, Method::GET | Method::HEAD) => {
            blobs::get(state, &caller, &name, &digest, method).await
        }
        (Endpoint::Blob { name, digest }, Method::DELETE) => {
            blobs::delete(registry, &caller, &name, &digest).await
        }
        (Endpoint::Uploads { name }, Method::POST) => {
            uploads::start(state, &caller, &name, query, headers, body).await
        }
        (Endpoint::Upload { name, id }, Method::PATCH) => {
            uploads::patch(state, &caller, &name, &id, headers, body).await
        }
        (Endpoint::Upload { name, id }, Method::PUT) => {
            uploads::finish(state, &caller, &name, &id, query, headers, body).await
        }
        (Endpoint::Upload { name, id }, Method::GET) => {
            uploads::status(state, &caller, &name, &id).await
        }
        (Endpoint::Upload { name, id }, Method::DELETE) => {
            uploads::cancel(state, &caller, &name, &id).await
        }
        (Endpoint::Tags { name }, Method::GET) => {
            listings::tags(registry, &caller, &name, query).await
        }
        (Endpoint::Referrers { name, digest }, Method::GET) => {
            listings::referrers(registry, &caller, &name, &digest, query).await
        }
        _ => Err(method_not_allowed()),
    }
}
