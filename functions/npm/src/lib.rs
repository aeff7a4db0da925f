//! The npm registry: each workspace is a registry at `<base>/npm/<workspace>/`. Package
//! documents are built from one record per version and per tag; tarballs are redirected to
//! presigned URLs. Paths are taken apart in [`route`].

mod document;
mod error;
mod misc;
mod publish;
mod reads;
mod records;
mod route;
mod tags;

pub use records::NpmContent;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::{Value, json};
use stowage_http::{AppState, base_url, credential_from_headers, read_limited};

use crate::error::{NpmError, NpmResult};
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

fn json(value: Value) -> Response {
    Json(value).into_response()
}

fn created(value: Value) -> Response {
    (StatusCode::CREATED, Json(value)).into_response()
}

/// A request body, refused beyond the configured (or, on Lambda, the platform's) limit.
async fn read_body(state: &AppState, body: Body) -> NpmResult<bytes::Bytes> {
    let limit = state.limits.max_body;
    read_limited(body, limit).await.map_err(|_| {
        let why = if state.limits.platform_limited {
            format!(
                "AWS Lambda takes at most {limit} bytes per request; a publish carries its tarball in base64, \
                 so tarballs of up to about {} bytes can be published here",
                limit / 4 * 3 - 64 * 1024
            )
        } else {
            format!("this registry takes request bodies of at most {limit} bytes (stowage-local --max-body-bytes)")
        };
        NpmError::new(StatusCode::PAYLOAD_TOO_LARGE, why)
    })
}

fn parse_document(bytes: &[u8]) -> NpmResult<Value> {
    let document: Value = serde_json::from_slice(bytes).map_err(|error| {
        NpmError::bad_request(format!("the document is not valid JSON: {error}"))
    })?;
    if !document.is_object() {
        return Err(NpmError::bad_request("the document must be a JSON object"));
    }
    Ok(document)
}

fn method_not_allowed() -> NpmError {
    NpmError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
}

async fn handle(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> NpmResult<Response> {
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
            let bytes = read_body(state, body).await?;
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
            let document = parse_document(&read_body(state, body).await?)?;
            let attached = document
                .get("_attachments")
                .and_then(Value::as_object)
                .is_some_and(|a| !a.is_empty());
            if attached {
                Ok(created(
                    publish::publish(registry, &caller, &workspace, &name, &document).await?,
                ))
            } else {
                Ok(json(
                    publish::update(registry, &caller, &workspace, &name, &document).await?,
                ))
            }
        }
        (Endpoint::PackageRevision { name }, Method::PUT) => {
            let document = parse_document(&read_body(state, body).await?)?;
            Ok(json(
                publish::update(registry, &caller, &workspace, &name, &document).await?,
            ))
        }
        (Endpoint::PackageRevision { name }, Method::DELETE) => Ok(json(
            publish::unpublish_all(registry, &caller, &workspace, &name).await?,
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
        ) => {
            let bytes = read_body(state, body).await?;
            Ok(created(
                tags::set(registry, &caller, &workspace, &name, &tag, &bytes).await?,
            ))
        }
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
