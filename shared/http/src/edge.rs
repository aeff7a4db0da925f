//! What every route passes through on its way out: the request log, and headers that stop a
//! browser from running what the registry serves. Stored files (a pom, a tarball, a manifest)
//! are anyone's bytes; served from the registry's own origin they must never be sniffed into
//! HTML or run as script.

use axum::Router;
use http::HeaderValue;
use http::header::{CONTENT_SECURITY_POLICY, X_CONTENT_TYPE_OPTIONS};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::trace::request_logging;

/// No scripts, no plugins, no frames, no requests from whatever a browser might render. A
/// router that serves pages of its own (a web interface) sets its own policy, which is kept.
const NO_ACTIVE_CONTENT: &str = "default-src 'none'; frame-ancestors 'none'; sandbox";

/// Wraps every route of `router` (apply it to the routes, before nesting) in the request log
/// and the protective response headers.
pub fn edge<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    protect_responses(request_logging(router))
}

/// Adds `X-Content-Type-Options: nosniff` and a content security policy that forbids active
/// content to every response that has none.
pub fn protect_responses<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router
        .layer(SetResponseHeaderLayer::if_not_present(
            X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(NO_ACTIVE_CONTENT),
        ))
}
