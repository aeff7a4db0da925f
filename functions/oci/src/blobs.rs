//! Blobs: HEAD answered directly (never redirected), GET redirected to a presigned URL, DELETE
//! unlinking the blob from the repository. Each costs one batch read.

use axum::body::Body;
use axum::response::Response;
use http::header::{ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_TYPE};
use http::{Method, StatusCode};
use stowage_domain::{Digest, Role};
use stowage_http::{AppState, Finish, redirect};
use stowage_service::{BlobLink, BlobLinks, Registry};

use crate::auth::{Caller, Source};
use crate::error::{OciError, OciResult};
use crate::proxy;
use crate::route::ImageName;

const BINARY: &str = "application/octet-stream";

/// The package's link to a blob, read with the package in one batch.
pub async fn linked_blob(
    registry: &Registry,
    caller: &Caller,
    name: &ImageName,
    digest: &Digest,
    needed: Role,
) -> OciResult<BlobLink> {
    let link = name.item::<BlobLinks>(digest.as_str());
    let open = caller
        .open(registry, name, needed, std::slice::from_ref(&link))
        .await?;
    open.record::<BlobLinks>(&link)?
        .ok_or_else(|| OciError::blob_unknown(digest.as_str()))
}

/// GET or HEAD a blob; a cached image's blob it has no link to yet comes from its upstream
/// ([`proxy::missing_blob`]).
pub async fn get(
    state: &AppState,
    caller: &Caller,
    name: &ImageName,
    digest: &Digest,
    method: &Method,
) -> OciResult<Response> {
    let registry = &state.registry;
    let link = name.item::<BlobLinks>(digest.as_str());
    let open = match caller
        .open_or_upstreams(registry, name, std::slice::from_ref(&link))
        .await?
    {
        Source::Package(open) => open,
        // Its manifest, pulled first, makes the package.
        Source::Upstreams(_) => return Err(OciError::blob_unknown(digest.as_str())),
    };
    match open.record::<BlobLinks>(&link)? {
        Some(blob) => answer(registry, digest, &blob, method).await,
        None if open.package.upstream.is_some() => {
            proxy::missing_blob(state, caller, &open.package, name, digest, method).await
        }
        None => Err(OciError::blob_unknown(digest.as_str())),
    }
}

/// A stored blob: HEAD answered directly, GET redirected to a presigned URL.
pub async fn answer(
    registry: &Registry,
    digest: &Digest,
    blob: &BlobLink,
    method: &Method,
) -> OciResult<Response> {
    let response = if method == Method::HEAD {
        Response::builder()
            .status(StatusCode::OK)
            .header(CONTENT_LENGTH, blob.size)
            .header(ACCEPT_RANGES, "bytes")
    } else {
        redirect(
            &registry
                .download_url(&blob.object_key, BINARY, None)
                .await?,
        )
    };
    Ok(response
        .header("Docker-Content-Digest", digest.as_str())
        .header(CONTENT_TYPE, BINARY)
        .finish(Body::empty()))
}

pub async fn delete(
    registry: &Registry,
    caller: &Caller,
    name: &ImageName,
    digest: &Digest,
) -> OciResult<Response> {
    let open = caller.open(registry, name, Role::Write, &[]).await?;
    registry
        .unlink_blob(&open.package, digest)
        .await
        .map_err(|error| match error {
            stowage_service::Error::NotFound(_) => OciError::blob_unknown(digest.as_str()),
            other => other.into(),
        })?;
    Ok(Response::builder()
        .status(StatusCode::ACCEPTED)
        .finish(Body::empty()))
}
