//! The npm registry: each workspace is a registry at `<base>/npm/<workspace>/`. Package
//! documents are built from one record per version and per tag; tarballs are redirected to
//! presigned URLs. Paths are taken apart in [`route`]. Names the workspace does not have come
//! through the upstreams of its repositories ([`proxy`]).

mod body;
pub mod browse;
mod document;
mod error;
mod misc;
mod proxy;
mod publish;
mod reads;
mod records;
mod route;
mod tags;

pub use error::NpmError;
pub use records::NpmContent;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::{Value, json};
use stowage_http::{AppState, base_url, credential_from_headers, handover, read_limited};

use crate::error::NpmResult;
use crate::route::Endpoint;

pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/npm/{*rest}", any(dispatch))
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
    handle(&state, &method, &uri, &headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// Bodies that are a few KiB at most: a login, a dist-tag's version.
const SMALL_BODY_MAX: usize = 64 * 1024;

/// A publish is created; an update answers like any change.
fn answer_put((published, value): (bool, Value)) -> Response {
    if published {
        created(value)
    } else {
        json(value)
    }
}

fn json(value: Value) -> Response {
    Json(value).into_response()
}

fn created(value: Value) -> Response {
    (StatusCode::CREATED, Json(value)).into_response()
}

/// The answer to a body over the configured (or, on Lambda, the platform's) limit.
fn too_large(state: &AppState) -> NpmError {
    let limit = state.limits.max_body;
    let why = if state.limits.platform_limited {
        format!(
            "AWS Lambda takes at most {limit} bytes per request; a publish carries its tarball in base64, \
             so tarballs of up to about {} bytes can be published here",
            limit / 4 * 3 - 64 * 1024
        )
    } else {
        format!(
            "this registry takes request bodies of at most {limit} bytes (stowage-local --max-body-bytes)"
        )
    };
    NpmError::new(StatusCode::PAYLOAD_TOO_LARGE, why)
}

/// A small body (a login, a dist-tag's version), refused beyond `limit` bytes.
async fn read_small(body: Body, limit: usize) -> NpmResult<bytes::Bytes> {
    read_limited(body, limit).await.map_err(|_| {
        NpmError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("this request's body is at most {limit} bytes"),
        )
    })
}

fn method_not_allowed() -> NpmError {
    NpmError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
}

/// A read a Lambda handed over ([`stowage_http::handover`]): a tarball of a cached package,
/// answered for the caller its URL names.
async fn handed_over(state: &AppState, path: &str) -> NpmResult<Option<Response>> {
    let root: String = path.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
    let Some(capability) = handover::presented(&root, path) else {
        return Ok(None);
    };
    let (caller, path) = handover::redeem(&state.registry, &root, capability).await?;
    let (workspace, endpoint) = route::parse(&path)?;
    let Endpoint::Tarball { name, file } = endpoint else {
        return Err(NpmError::not_found());
    };
    stowage_http::describe_request(
        Some(workspace.as_str()),
        Some(name.as_str()),
        "npm.tarball.get",
    );
    reads::tarball(state, &caller, &workspace, &name, &file)
        .await
        .map(Some)
}

async fn handle(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> NpmResult<Response> {
    if let Some(response) = handed_over(state, uri.path()).await? {
        return Ok(response);
    }
    let (workspace, endpoint) = route::parse(uri.path())?;
    let (operation, package) = endpoint.describe();
    stowage_http::describe_request(
        Some(workspace.as_str()),
        package.map(|name| name.as_str()),
        &format!("npm.{operation}.{}", method.as_str().to_lowercase()),
    );
    let registry = &state.registry;
    // What npm may ask before it has credentials.
    match (&endpoint, method) {
        (Endpoint::Ping, _) => return Ok(json(json!({}))),
        (Endpoint::Audit { quick }, &Method::POST) => return Ok(json(misc::audit(*quick))),
        (Endpoint::WebLogin, _) => {
            return Err(NpmError::not_found_with(
                "web login is not offered: use `npm login --auth-type=legacy` with an API token as the password, \
                 or set _authToken in .npmrc",
            ));
        }
        (Endpoint::Login { username }, &Method::PUT) => {
            let bytes = read_small(body, SMALL_BODY_MAX).await?;
            let basic = credential_from_headers(headers).ok().flatten();
            return Ok(created(
                misc::login(registry, username, &bytes, basic).await?,
            ));
        }
        _ => {}
    }
    let credential =
        credential_from_headers(headers)?.ok_or(stowage_service::Error::Unauthenticated)?;
    let caller = registry.authenticate(&credential).await?;
    let base = base_url(state, headers);
    match (endpoint, method.clone()) {
        (Endpoint::Package { name }, Method::GET | Method::HEAD) => {
            reads::package_document(state, &caller, &workspace, &name, headers, &base).await
        }
        (Endpoint::Package { name }, Method::PUT) => {
            let put = publish::put_document(state, &caller, &workspace, &name, None, body).await?;
            Ok(answer_put(put))
        }
        (Endpoint::PackageRevision { name, rev }, Method::PUT) => {
            let put =
                publish::put_document(state, &caller, &workspace, &name, Some(&rev), body).await?;
            Ok(answer_put(put))
        }
        (Endpoint::PackageRevision { name, rev }, Method::DELETE) => Ok(json(
            publish::unpublish_all(registry, &caller, &workspace, &name, &rev).await?,
        )),
        (Endpoint::Version { name, version }, Method::GET | Method::HEAD) => Ok(json(
            reads::version_document(state, &caller, &workspace, &name, &version, &base).await?,
        )),
        (Endpoint::Tarball { name, file }, Method::GET | Method::HEAD) => {
            reads::tarball(state, &caller, &workspace, &name, &file).await
        }
        (Endpoint::TarballRevision { name, file }, Method::DELETE) => Ok(json(
            publish::delete_tarball(registry, &caller, &workspace, &name, &file).await?,
        )),
        (Endpoint::DistTags { name, tag: None }, Method::GET) => Ok(json(
            reads::dist_tags(state, &caller, &workspace, &name).await?,
        )),
        (
            Endpoint::DistTags {
                name,
                tag: Some(tag),
            },
            Method::PUT | Method::POST,
        ) => Ok(created(
            tags::set(registry, &caller, &workspace, &name, &tag, body).await?,
        )),
        (
            Endpoint::DistTags {
                name,
                tag: Some(tag),
            },
            Method::DELETE,
        ) => Ok(json(
            tags::remove(registry, &caller, &workspace, &name, &tag).await?,
        )),
        (Endpoint::Search, Method::GET) => Ok(json(
            misc::search(registry, &caller, &workspace, uri.query()).await?,
        )),
        (Endpoint::Whoami, Method::GET) => Ok(json(misc::whoami(&caller))),
        (Endpoint::Login { username }, Method::GET) => Ok(json(
            json!({ "_id": format!("org.couchdb.user:{username}"), "name": caller.display_name() }),
        )),
        _ => Err(method_not_allowed()),
    }
}
