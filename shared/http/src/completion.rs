//! Requests that change something run to their end even when the client goes away. Without
//! this, the server drops a handler at whatever await it had reached when the connection
//! closed: an upload chunk would keep its claim and the parts it had written. On Lambda every
//! invocation runs to its end anyway; the local server puts this layer around its routers.

use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{Method, StatusCode};

pub fn run_to_completion(router: Router) -> Router {
    router.layer(axum::middleware::from_fn(detach_writes))
}

async fn detach_writes(request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    // The spawned task lives on if this future is dropped; the body it reads then ends in an
    // error, and the handler cleans up as for any broken request.
    match tokio::spawn(next.run(request)).await {
        Ok(response) => response,
        Err(error) => {
            tracing::error!(%error, "a request handler stopped");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
