//! A request refused before its body was read (401, 404, 416, a quota) is still answered to a
//! client that is sending that body. If the server closed the connection with the body unread,
//! the kernel would reset it, and the client, still writing, would see a broken pipe instead of
//! the refusal (Go's client, the OCI conformance suite, Docker). So what the handler left
//! unread is read and thrown away, up to a bound, before the answer goes; beyond the bound the
//! answer says `Connection: close`, and the rest is still read and thrown away for a while
//! after it (nginx's "lingering close"), so that the client reads the answer before the
//! connection goes.

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
/// How long a body beyond [`DRAIN_MAX`] is still read after the answer, at most (nginx's
/// `lingering_time`).
const LINGER_TIME: Duration = Duration::from_secs(30);

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
    let drained = if asked_for_body {
        drain(body).await
    } else {
        Drained::No
    };
    match drained {
        Drained::Yes => {}
        Drained::No => {
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        Drained::TooLong(mut rest) => {
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
            tokio::spawn(async move {
                let discard = async { while let Some(Ok(_)) = rest.frame().await {} };
                let _ = tokio::time::timeout(LINGER_TIME, discard).await;
            });
        }
    }
    response
}

enum Drained {
    Yes,
    /// Broken, or too slow: nothing more is read.
    No,
    /// Longer than [`DRAIN_MAX`]: the rest, to read after the answer.
    TooLong(Body),
}

/// Reads a body to its end and throws it away, up to [`DRAIN_MAX`] within [`DRAIN_TIME`].
async fn drain(mut body: Body) -> Drained {
    let reading = async {
        let mut seen = 0u64;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else {
                return Some(false);
            };
            if let Some(data) = frame.data_ref() {
                seen += data.len() as u64;
                if seen > DRAIN_MAX {
                    return None;
                }
            }
        }
        Some(true)
    };
    match tokio::time::timeout(DRAIN_TIME, reading).await {
        Ok(Some(true)) => Drained::Yes,
        Ok(None) => Drained::TooLong(body),
        Ok(Some(false)) | Err(_) => Drained::No,
    }
}
