use axum::body::Body;
use futures_util::TryStreamExt;
use stowage_storage::ByteStream;

/// A request body as a stream of bytes for the blob store, read as it arrives.
pub fn body_stream(body: Body) -> ByteStream {
    Box::pin(body.into_data_stream().map_err(std::io::Error::other))
}

/// A body refused as too large is read and thrown away up to this much, so that the client,
/// still sending, gets to read the refusal instead of a broken connection.
const DRAIN_MAX: usize = 64 * 1024 * 1024;

/// Reads a whole body of at most `limit` bytes. A larger one is refused (`Err` with the bytes
/// seen), after draining what the client is still sending, up to a bound.
pub async fn read_limited(body: Body, limit: usize) -> Result<bytes::Bytes, usize> {
    let mut stream = body.into_data_stream();
    let mut collected = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
        let Ok(chunk) = chunk else { return Err(seen) };
        seen += chunk.len();
        if seen > limit {
            if seen > DRAIN_MAX {
                return Err(seen);
            }
            continue;
        }
        collected.extend_from_slice(&chunk);
    }
    if seen > limit {
        Err(seen)
    } else {
        Ok(collected.freeze())
    }
}
