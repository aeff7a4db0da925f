use axum::body::Body;
use futures_util::TryStreamExt;
use stowage_storage::ByteStream;

/// A request body as a stream of bytes for the blob store, read as it arrives.
pub fn body_stream(body: Body) -> ByteStream {
    Box::pin(body.into_data_stream().map_err(std::io::Error::other))
}

/// Reads a whole body of at most `limit` bytes; a larger one is refused (`Err` with the bytes
/// seen). What the client is still sending is drained by [`crate::drain_unread_bodies`].
pub async fn read_limited(body: Body, limit: usize) -> Result<bytes::Bytes, usize> {
    let mut stream = body.into_data_stream();
    let mut collected = bytes::BytesMut::new();
    while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
        let Ok(chunk) = chunk else {
            return Err(collected.len());
        };
        if collected.len() + chunk.len() > limit {
            return Err(collected.len() + chunk.len());
        }
        collected.extend_from_slice(&chunk);
    }
    Ok(collected.freeze())
}
