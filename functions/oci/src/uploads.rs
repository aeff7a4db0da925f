//! Blob uploads: monolithic (`POST ?digest=`), POST then PUT, and chunked (POST, PATCH…, PUT),
//! plus cross-repository mounts. State lives in storage between requests (see the service's
//! `uploads`), so each chunk may land on a different Lambda.

use axum::body::Body;
use axum::response::Response;
use http::header::{CONTENT_LENGTH, LOCATION, RANGE};
use http::{HeaderMap, StatusCode};
use stowage_domain::{Digest, Role};
use stowage_http::{AppState, Finish, body_stream, query_param};
use stowage_service::{PackageRecord, Registry, UploadRecord};

use crate::auth::Caller;
use crate::blobs::linked_blob;
use crate::capability::upload_location;
use crate::error::{OciError, OciResult};
use crate::route::{ImageName, parse_digest};

/// Chunks smaller than this are taken, but cost a round trip for each carried remainder.
const CHUNK_MIN: u64 = 1024 * 1024;
/// The largest chunk a Lambda invocation takes, with room to spare under its body limit.
const LAMBDA_CHUNK_MAX: u64 = 4 * 1024 * 1024;

/// Refuses, before reading it, a body the platform could not take, saying how to push instead.
fn check_declared_length(state: &AppState, headers: &HeaderMap, name: &ImageName) -> OciResult<()> {
    match state.limits.declared_over_platform_limit(headers) {
        Some(limit) => Err(OciError::too_large(format!(
            "this registry runs on AWS Lambda, which takes at most {limit} bytes per request: push the blob \
             in chunks of at most {LAMBDA_CHUNK_MAX} bytes (POST /v2/{}/blobs/uploads/, then PATCH each chunk \
             with Content-Range, then PUT ?digest=)",
            name.full()
        ))),
        None => Ok(()),
    }
}

/// Where an upload stands, with its URL (carrying a fresh capability) for the next request.
async fn progress(
    registry: &Registry,
    caller: &Caller,
    name: &ImageName,
    package: &PackageRecord,
    upload: &UploadRecord,
    status: StatusCode,
) -> OciResult<Response> {
    let location = upload_location(registry, caller, name, &package.repository, &upload.id).await?;
    Ok(Response::builder()
        .status(status)
        .header(LOCATION, location)
        .header(RANGE, format!("0-{}", upload.offset.saturating_sub(1)))
        .header("Docker-Upload-UUID", &upload.id)
        .header(CONTENT_LENGTH, 0)
        .finish(Body::empty()))
}

fn created(name: &ImageName, digest: &Digest) -> Response {
    Response::builder()
        .status(StatusCode::CREATED)
        .header(LOCATION, format!("/v2/{}/blobs/{digest}", name.full()))
        .header("Docker-Content-Digest", digest.as_str())
        .header(CONTENT_LENGTH, 0)
        .finish(Body::empty())
}

/// `Content-Range: <start>-<end>` (as the spec writes it; `bytes=` and `bytes ` prefixes are
/// accepted too): the first byte of the chunk, checked against its length.
fn chunk_start(headers: &HeaderMap) -> OciResult<Option<u64>> {
    let Some(value) = headers.get(http::header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let bad = || {
        OciError::upload_invalid("Content-Range must be <start>-<end>")
            .with_status(StatusCode::RANGE_NOT_SATISFIABLE)
    };
    let text = value.to_str().map_err(|_| bad())?.trim();
    let text = text
        .strip_prefix("bytes=")
        .or_else(|| text.strip_prefix("bytes "))
        .unwrap_or(text);
    let text = text.split('/').next().unwrap_or(text);
    let (start, end) = text.split_once('-').ok_or_else(bad)?;
    let (start, end) = (
        start.trim().parse::<u64>().map_err(|_| bad())?,
        end.trim().parse::<u64>().map_err(|_| bad())?,
    );
    if end < start {
        return Err(bad());
    }
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length != end - start + 1) {
        return Err(OciError::new(
            crate::error::Code::SizeInvalid,
            "Content-Length does not match Content-Range",
        ));
    }
    Ok(Some(start))
}

/// `POST /v2/<name>/blobs/uploads/`: mount, monolithic upload, or a new session.
pub async fn start(
    state: &AppState,
    caller: &Caller,
    name: &ImageName,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> OciResult<Response> {
    let registry = &state.registry;
    let open = caller.open(registry, name, Role::Write, &[]).await?;
    if let (Some(mount), Some(from)) = (query_param(query, "mount"), query_param(query, "from")) {
        if let Some(response) = try_mount(state, caller, name, &open.package, &mount, &from).await?
        {
            return Ok(response);
        }
    } else if let Some(digest) = query_param(query, "digest") {
        let digest = parse_digest(&digest)?;
        check_declared_length(state, headers, name)?;
        registry
            .store_blob(
                &open.package,
                body_stream(body),
                Some(&digest),
                state.limits.streamed_body_limit(),
            )
            .await?;
        return Ok(created(name, &digest));
    }
    let upload = registry.start_upload(&open.package).await?;
    let mut response = progress(
        registry,
        caller,
        name,
        &open.package,
        &upload,
        StatusCode::ACCEPTED,
    )
    .await?;
    let headers = response.headers_mut();
    headers.insert("OCI-Chunk-Min-Length", CHUNK_MIN.into());
    if state.limits.platform_limited && !state.limits.upload_service {
        headers.insert("OCI-Chunk-Max-Length", LAMBDA_CHUNK_MAX.into());
    }
    Ok(response)
}

/// A cross-repository mount, only from a repository the caller can read: anything else is
/// answered as if no mount had been asked (a new upload), so nothing leaks.
async fn try_mount(
    state: &AppState,
    caller: &Caller,
    name: &ImageName,
    target: &PackageRecord,
    mount: &str,
    from: &str,
) -> OciResult<Option<Response>> {
    let (Ok(digest), Ok(source)) = (parse_digest(mount), ImageName::parse(from)) else {
        return Ok(None);
    };
    if source.workspace != name.workspace {
        return Ok(None);
    }
    if linked_blob(&state.registry, caller, &source, &digest, Role::Read)
        .await
        .is_err()
    {
        return Ok(None);
    }
    match state.registry.link_blob(target, &digest).await {
        Ok(_) => Ok(Some(created(name, &digest))),
        Err(stowage_service::Error::NotFound(_)) => Ok(None),
        Err(other) => Err(other.into()),
    }
}

pub async fn patch(
    state: &AppState,
    caller: &Caller,
    name: &ImageName,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> OciResult<Response> {
    check_declared_length(state, headers, name)?;
    let start = chunk_start(headers)?;
    let open = caller.open(&state.registry, name, Role::Write, &[]).await?;
    let upload = state
        .registry
        .append_upload(
            &open.package,
            id,
            start,
            body_stream(body),
            state.limits.streamed_body_limit(),
        )
        .await?;
    progress(
        &state.registry,
        caller,
        name,
        &open.package,
        &upload,
        StatusCode::ACCEPTED,
    )
    .await
}

pub async fn finish(
    state: &AppState,
    caller: &Caller,
    name: &ImageName,
    id: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> OciResult<Response> {
    check_declared_length(state, headers, name)?;
    let digest = query_param(query, "digest")
        .ok_or_else(|| OciError::digest_invalid("PUT needs ?digest="))?;
    let digest = parse_digest(&digest)?;
    let start = chunk_start(headers)?;
    let open = caller.open(&state.registry, name, Role::Write, &[]).await?;
    state
        .registry
        .finish_upload(
            &open.package,
            id,
            start,
            body_stream(body),
            &digest,
            state.limits.streamed_body_limit(),
        )
        .await?;
    Ok(created(name, &digest))
}

pub async fn status(
    state: &AppState,
    caller: &Caller,
    name: &ImageName,
    id: &str,
) -> OciResult<Response> {
    let open = caller.open(&state.registry, name, Role::Write, &[]).await?;
    let upload = state.registry.upload_status(&open.package, id).await?;
    progress(
        &state.registry,
        caller,
        name,
        &open.package,
        &upload,
        StatusCode::NO_CONTENT,
    )
    .await
}

pub async fn cancel(
    state: &AppState,
    caller: &Caller,
    name: &ImageName,
    id: &str,
) -> OciResult<Response> {
    let open = caller.open(&state.registry, name, Role::Write, &[]).await?;
    state.registry.cancel_upload(&open.package, id).await?;
    Ok(Response::builder()
        .status(StatusCode::NO_CONTENT)
        .finish(Body::empty()))
}
