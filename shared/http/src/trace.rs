//! One log line per request: request id, method, path, workspace, package, operation, status,
//! outcome, the reason of a refusal (a code) and latency. Never the query string or headers: those carry credentials and
//! signatures; nor an upload capability, which is a credential carried in the path.

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, OriginalUri, Request};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;
use tracing::field::Empty;

/// How the last segment of an upload URL that carries its own authority begins; the request
/// log shows the prefix alone.
pub const UPLOAD_CAPABILITY_PREFIX: &str = "stwup_";

/// `path` as logged: every capability cut down to its prefix.
pub fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    if !path.contains(UPLOAD_CAPABILITY_PREFIX) {
        return path.into();
    }
    path.split('/')
        .map(|segment| {
            if segment.starts_with(UPLOAD_CAPABILITY_PREFIX) {
                UPLOAD_CAPABILITY_PREFIX
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
        .into()
}

/// Wraps every route of `router` (apply it to the routes, before nesting) in the request log.
pub(crate) fn request_logging<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router.layer(axum::middleware::from_fn(log_request))
}

tokio::task_local! {
    /// The operation of the request being answered, for its metrics.
    static OPERATION: std::cell::RefCell<Option<String>>;
}

/// Names what the current request is about, for its log line and its metrics. Protocol
/// dispatchers call it once they have taken the path apart; the management API's route
/// templates name it alone.
pub fn describe_request(workspace: Option<&str>, package: Option<&str>, operation: &str) {
    // Outside a logged request (a unit test) there is no slot.
    let _ = OPERATION.try_with(|slot| *slot.borrow_mut() = Some(operation.to_owned()));
    let span = tracing::Span::current();
    if let Some(workspace) = workspace {
        span.record("workspace", workspace);
    }
    if let Some(package) = package {
        span.record("package", package);
    }
    span.record("operation", operation);
}

async fn log_request(request: Request, next: Next) -> Response {
    OPERATION
        .scope(
            std::cell::RefCell::new(None),
            log_and_measure(request, next),
        )
        .await
}

async fn log_and_measure(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let on_lambda = request.extensions().get::<lambda_http::Context>().is_some();
    let bytes_in = content_length(request.headers());
    // The whole path, also inside a nested router.
    let path = request.extensions().get::<OriginalUri>().map_or_else(
        || request.uri().path().to_owned(),
        |uri| uri.path().to_owned(),
    );
    let span = tracing::info_span!(
        "request",
        request_id = %request_id(&request),
        method = %request.method(),
        path = %loggable_path(&path),
        workspace = Empty,
        package = Empty,
        operation = Empty,
    );
    // A catch-all route's dispatcher names the operation itself, once it has read the path.
    if let Some(matched) = request
        .extensions()
        .get::<MatchedPath>()
        .filter(|matched| !matched.as_str().contains("{*"))
    {
        let _entered = span.enter();
        let workspace = template_segment(matched.as_str(), &path, "{workspace}");
        let package = template_segment(matched.as_str(), &path, "{name}");
        describe_request(workspace, package, matched.as_str());
    }
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    let outcome = if status.is_server_error() {
        "error"
    } else if status.is_client_error() {
        "refused"
    } else {
        "ok"
    };
    let latency = started.elapsed();
    let latency_ms = latency.as_secs_f64() * 1000.0;
    let operation = OPERATION
        .with(|slot| slot.borrow().clone())
        .unwrap_or_else(|| "unknown".to_owned());
    let answered = crate::metrics::Answered {
        protocol: crate::metrics::protocol_of(&path),
        operation: &operation,
        status: status.as_u16(),
        latency,
        bytes_in,
        bytes_out: http_body::Body::size_hint(response.body()).exact(),
    };
    crate::metrics::record(&answered);
    if on_lambda {
        // Lambda's standard output is the function's CloudWatch log.
        println!(
            "{}",
            crate::metrics::embedded_metric_line(&answered, epoch_millis())
        );
    }
    let reason = response
        .extensions()
        .get::<crate::Refusal>()
        .map(|refusal| refusal.0)
        .or_else(|| (outcome != "ok").then(|| crate::code_of_status(status)));
    span.in_scope(|| match reason {
        Some(reason) => {
            tracing::info!(
                status = status.as_u16(),
                outcome,
                reason,
                latency_ms,
                "request"
            );
        }
        None => tracing::info!(status = status.as_u16(), outcome, latency_ms, "request"),
    });
    response
}

fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Milliseconds since the Unix epoch, as embedded metrics want.
fn epoch_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

/// The invocation's id on Lambda; elsewhere the caller's `X-Request-Id`, or a new one.
fn request_id(request: &Request) -> String {
    if let Some(context) = request.extensions().get::<lambda_http::Context>() {
        return context.request_id.clone();
    }
    request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .filter(|value| value.len() <= 128)
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned)
}

/// The segment of `path` where `template` holds `placeholder`.
fn template_segment<'a>(template: &str, path: &'a str, placeholder: &str) -> Option<&'a str> {
    template
        .split('/')
        .zip(path.split('/'))
        .find_map(|(pattern, segment)| (pattern == placeholder).then_some(segment))
}

#[cfg(test)]
mod tests {
    use super::{loggable_path, template_segment};

    #[test]
    fn capabilities_are_cut_from_logged_paths() {
        assert_eq!(
            loggable_path("/v2/acme/api/server/blobs/uploads/stwup_eyJzZXNz.c2lnbmF0dXJl"),
            "/v2/acme/api/server/blobs/uploads/stwup_"
        );
        assert_eq!(
            loggable_path("/v2/acme/api/tags/list"),
            "/v2/acme/api/tags/list"
        );
    }

    #[test]
    fn segments_are_found_by_placeholder() {
        let template = "/api/workspaces/{workspace}/packages/{kind}/{name}";
        let path = "/api/workspaces/acme/packages/npm/left-pad";
        assert_eq!(
            template_segment(template, path, "{workspace}"),
            Some("acme")
        );
        assert_eq!(template_segment(template, path, "{name}"), Some("left-pad"));
        assert_eq!(
            template_segment("/api/user", "/api/user", "{workspace}"),
            None
        );
    }
}
