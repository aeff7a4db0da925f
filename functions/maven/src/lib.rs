//! The Maven repository: each workspace is a repository in the standard layout at
//! `<base>/maven/<workspace>/`. Files are redirected to presigned URLs; checksums and
//! `maven-metadata.xml` are generated from the repository's own records. Packages the
//! workspace does not have come through the upstreams of its repositories ([`proxy`]).

pub mod browse;
mod cache;
mod error;
mod files;
mod listing;
mod metadata;
mod proxy;
mod records;
mod route;
mod version;

pub use error::MavenError;
pub use records::MavenContent;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use http::{HeaderMap, Method, StatusCode, Uri};
use stowage_domain::Principal;
use stowage_http::{AppState, credential_from_headers, handover};

use crate::cache::MetadataCache;
use crate::error::MavenResult;

#[derive(Clone)]
struct MavenState {
    app: AppState,
    documents: Arc<MetadataCache>,
}

pub fn router(state: AppState) -> Router {
    let state = MavenState {
        app: state,
        documents: Arc::default(),
    };
    let routes = Router::new()
        .route("/maven/{*rest}", any(dispatch))
        .with_state(state);
    stowage_http::edge(routes)
}

async fn dispatch(
    State(state): State<MavenState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(&state, &method, &uri, &headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn handle(
    state: &MavenState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> MavenResult<Response> {
    if matches!(*method, Method::GET | Method::HEAD)
        && let Some(folder) = route::parse_folder(uri.path())
    {
        let (workspace, folders) = folder?;
        stowage_http::describe_request(Some(workspace.as_str()), None, "maven.listing.get");
        let caller = authenticate(state, headers).await?;
        return listing::folder(&state.app.registry, &caller, &workspace, &folders).await;
    }
    if let Some(response) = handed_over(state, uri.path(), method).await? {
        return Ok(response);
    }
    let path = route::parse(uri.path())?;
    let operation = match (&path.target, path.checksum) {
        (_, Some(_)) => "checksum",
        (route::Target::File { .. }, None) => "file",
        (route::Target::VersionFolder { .. }, None) => "version",
        _ => "metadata",
    };
    stowage_http::describe_request(
        Some(path.workspace.as_str()),
        Some(path.package.as_str()),
        &format!("maven.{operation}.{}", method.as_str().to_lowercase()),
    );
    let caller = authenticate(state, headers).await?;
    match *method {
        Method::GET | Method::HEAD => {
            files::get(
                &state.app,
                &state.documents,
                &caller,
                &path,
                uri.path(),
                method,
            )
            .await
        }
        Method::PUT => files::put(&state.app, &caller, &path, headers, body).await,
        Method::DELETE => files::delete_version_folder(&state.app, &caller, &path).await,
        _ => Err(MavenError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed",
        )),
    }
}

/// A read a Lambda handed over ([`stowage_http::handover`]): a file of a package through an
/// upstream, answered for the caller its URL names.
async fn handed_over(
    state: &MavenState,
    path: &str,
    method: &Method,
) -> MavenResult<Option<Response>> {
    let root: String = path.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
    let Some(capability) = handover::presented(&root, path) else {
        return Ok(None);
    };
    let (caller, requested) = handover::redeem(&state.app.registry, &root, capability).await?;
    let path = route::parse(&requested)?;
    stowage_http::describe_request(
        Some(path.workspace.as_str()),
        Some(path.package.as_str()),
        &format!("maven.file.{}", method.as_str().to_lowercase()),
    );
    files::get(
        &state.app,
        &state.documents,
        &caller,
        &path,
        &requested,
        method,
    )
    .await
    .map(Some)
}

/// The caller, from the request's credentials (a 401 without: Maven sends them only then).
async fn authenticate(state: &MavenState, headers: &HeaderMap) -> MavenResult<Principal> {
    let credential =
        credential_from_headers(headers)?.ok_or(stowage_service::Error::Unauthenticated)?;
    Ok(state.app.registry.authenticate(&credential).await?)
}
