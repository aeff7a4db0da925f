//! A request refused before its body was read (401, 404, 416, a quota) is still answered to a
//! client that is sending that body. If the server closed the connection with the body unread,
//! the kernel would reset it, and the client, still writing, would see a broken pipe instead of
//! the refusal (Go's client, the OCI conformance suite, Docker). So what the handler left
//! unread is read and thrown away, up to a bound, before the answer goes; beyond the bound the
//! answer says `Connection: close`.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http::HeaderValue;
use http::header::{CONNECTION, EXPECT};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;

/// The most of an unread body thrown away to answer cleanly: a chunk or two of the uploads
/// that clients send in one request.
pub const DRAIN_MAX: u64 = 32 * 1024 * 1024;
/// How long a client may take to send what is thrown away.
const DRAIN_TIME: Duration = Duration::from_secs(10);

/// Wraps `router` so that a body its handlers leave unread is drained before the answer.
pub fn drain_unread_bodies(router: Router) -> Router {
    router.layer(axum::middleware::from_fn(drain_after))
}

/// The request body, shared between the handler (through [`Shared`]) and this layer, which
/// takes back what the handler dropped.
#[derive(Default)]
struct Slot {
    body: Option<Body>,
    polled: bool,
}

struct Shared(Arc<Mutex<Slot>>);

impl HttpBody for Shared {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        slot.polled = true;
        match slot.body.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        let slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        slot.body.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        let slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        slot.body
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), HttpBody::size_hint)
    }
}

async fn drain_after(request: Request, next: Next) -> Response {
    if request.body().is_end_stream() {
        return next.run(request).await;
    }
    let waits_to_continue = request
        .headers()
        .get(EXPECT)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let (parts, body) = request.into_parts();
    let slot = Arc::new(Mutex::new(Slot {
        body: Some(body),
        polled: false,
    }));
    let request = Request::from_parts(parts, Body::new(Shared(Arc::clone(&slot))));
    let mut response = next.run(request).await;
    let (body, polled) = {
        let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
        (slot.body.take(), slot.polled)
    };
    let Some(body) = body.filter(|body| !body.is_end_stream()) else {
        return response;
    };
    // A client that waits for `100 Continue` has sent nothing yet: it is told no without
    // being asked for the body.
    let asked_for_body = polled || !waits_to_continue;
    let drained = asked_for_body && drain(body).await;
    if !drained {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Reads a body to its end and throws it away; false if it is longer than [`DRAIN_MAX`],
/// slower than [`DRAIN_TIME`], or broken.
async fn drain(mut body: Body) -> bool {
    let reading = async {
        let mut seen = 0u64;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { return false };
            if let Some(data) = frame.data_ref() {
                seen += data.len() as u64;
                if seen > DRAIN_MAX {
                    return false;
                }
            }
        }
        true
    };
    tokio::time::timeout(DRAIN_TIME, reading)
        .await
        .unwrap_or(false)
}
