//! Blobs: HEAD answered directly (never redirected), GET redirected to a presigned URL, DELETE
//! unlinking the blob from the repository. Each costs one batch read.

use axum::body::Body;
use axum::response::Response;
use http::header::{ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use http::{Method, StatusCode};
use stowage_domain::{Digest, PackageType, Role};
use stowage_service::Registry;
use stowage_service::records::{BlobLink, decode, keys};
use stowage_storage::PresignOptions;

use crate::auth::Caller;
use crate::error::{OciError, OciResult};
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
    let partition = keys::package_partition(&name.workspace, PackageType::Container, &name.path);
    let open = caller
        .open(
            registry,
            name,
            needed,
            &[keys::blob_link(&partition, digest)],
        )
        .await?;
    match &open.extra[0] {
        Some(item) => Ok(decode(item)?),
        None => Err(OciError::blob_unknown(digest.as_str())),
    }
}

pub async fn get(
    registry: &Registry,
    caller: &Caller,
    name: &ImageName,
    digest: &Digest,
    method: &Method,
) -> OciResult<Response> {
    let blob = linked_blob(registry, caller, name, digest, Role::Read).await?;
    let response = Response::builder()
        .header("Docker-Content-Digest", digest.as_str())
        .header(CONTENT_TYPE, BINARY);
    if method == Method::HEAD {
        return Ok(response
            .status(StatusCode::OK)
            .header(CONTENT_LENGTH, blob.size)
            .header(ACCEPT_RANGES, "bytes")
            .body(Body::empty())
            .unwrap_or_default());
    }
    let options = PresignOptions {
        expires_in: registry.settings().presign_ttl,
        content_type: Some(BINARY.to_owned()),
        content_disposition: None,
    };
    let url = registry
        .blobs()
        .presign_get(&blob.object_key, &options)
        .await
        .map_err(stowage_service::Error::from)?;
    Ok(response
        .status(StatusCode::TEMPORARY_REDIRECT)
        .header(LOCATION, url)
        .body(Body::empty())
        .unwrap_or_default())
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
        .body(Body::empty())
        .unwrap_or_default())
}
