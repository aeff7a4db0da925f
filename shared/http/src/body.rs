use axum::body::Body;
use futures_util::TryStreamExt;
use stowage_storage::ByteStream;

/// A request body as a stream of bytes for the blob store, read as it arrives.
pub fn body_stream(body: Body) -> ByteStream {
    Box::pin(body.into_data_stream().map_err(std::io::Error::other))
}
