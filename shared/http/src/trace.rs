use axum::Router;
use http::Request;
use tower_http::trace::TraceLayer;

/// Logs each request's method, path and outcome with its latency. Never the query string or
/// headers: those can carry credentials and signatures.
pub fn request_logging<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router.layer(
        TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            tracing::info_span!(
                "request",
                method = %request.method(),
                path = %request.uri().path(),
            )
        }),
    )
}
