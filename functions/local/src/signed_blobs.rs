//! Serves the embedded store's signed blob URLs: the local stand-in for S3 presigned GETs.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::header::{
    ACCEPT_RANGES, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE,
};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use stowage_http::{RangeRequest, range_request};
use stowage_storage::{BlobError, ByteRange};
use stowage_storage_embedded::SignedUrlError;

use crate::SignedBlobs;

pub fn signed_blob_router(signed: SignedBlobs) -> Router {
    stowage_http::protect_responses(
        Router::new()
            .route("/_blob/{*key}", get(serve_signed_blob))
            .with_state(signed),
    )
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

fn plain(status: StatusCode, message: &'static str) -> Response {
    (status, [(CONTENT_TYPE, "text/plain")], message).into_response()
}

async fn serve_signed_blob(
    State(signed): State<SignedBlobs>,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let read = match signed
        .signer
        .verify(&key, query.as_deref().unwrap_or(""), now_unix())
    {
        Ok(read) => read,
        Err(SignedUrlError::Expired) => {
            return plain(StatusCode::FORBIDDEN, "this link has expired");
        }
        Err(SignedUrlError::BadSignature) => {
            return plain(StatusCode::FORBIDDEN, "invalid signature");
        }
    };
    let size = match signed.blobs.size(&read.key).await {
        Ok(Some(size)) => size,
        Ok(None) => return plain(StatusCode::NOT_FOUND, "no such blob"),
        Err(error) => {
            tracing::error!(?error, "reading a signed blob failed");
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "storage failed");
        }
    };
    let (status, range) = match range_request(&headers, size) {
        RangeRequest::Whole => (StatusCode::OK, None),
        RangeRequest::Partial { start, end } => (
            StatusCode::PARTIAL_CONTENT,
            Some(ByteRange {
                start,
                end: Some(end),
            }),
        ),
        RangeRequest::Unsatisfiable => {
            return (
                StatusCode::RANGE_NOT_SATISFIABLE,
                [(CONTENT_RANGE, format!("bytes */{size}"))],
            )
                .into_response();
        }
    };
    let blob = match signed.blobs.get(&read.key, range).await {
        Ok(blob) => blob,
        Err(BlobError::NotFound) => return plain(StatusCode::NOT_FOUND, "no such blob"),
        Err(error) => {
            tracing::error!(?error, "reading a signed blob failed");
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "storage failed");
        }
    };
    let content_type = read
        .content_type
        .as_deref()
        .unwrap_or("application/octet-stream");
    let mut response = Response::builder()
        .status(status)
        .header(CONTENT_TYPE, content_type)
        .header(CONTENT_LENGTH, blob.len())
        .header(ACCEPT_RANGES, "bytes");
    if status == StatusCode::PARTIAL_CONTENT {
        response = response.header(
            CONTENT_RANGE,
            format!("bytes {}-{}/{}", blob.start, blob.end, size),
        );
    }
    // A download, never a page: the bytes are anyone's, served from the registry's origin.
    let disposition = read
        .content_disposition
        .as_deref()
        .and_then(|d| HeaderValue::from_str(d).ok())
        .unwrap_or(HeaderValue::from_static("attachment"));
    response = response.header(CONTENT_DISPOSITION, disposition);
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from_stream(blob.body)
    };
    response
        .body(body)
        .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "bad response"))
}
