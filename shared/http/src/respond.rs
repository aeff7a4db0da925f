//! Building responses, shared by every protocol: a response whose builder fails (a header
//! value that cannot be sent) is a logged 500, never an empty 200; downloads are redirects to
//! the blob store's signed URLs; query parameters are read one way.

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;
use http::header::LOCATION;

/// Finishing a response builder with a body.
pub trait Finish {
    /// The response, or a 500 (logged) if the builder holds an error.
    fn finish(self, body: impl Into<Body>) -> Response;
}

impl Finish for http::response::Builder {
    fn finish(self, body: impl Into<Body>) -> Response {
        self.body(body.into()).unwrap_or_else(|error| {
            tracing::error!(%error, "a response could not be built");
            let mut failed = Response::new(Body::empty());
            *failed.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            failed
        })
    }
}

/// A 307 to `url` (headers may be added): a stored file is fetched from the blob store, not
/// through the registry.
pub fn redirect(url: &str) -> http::response::Builder {
    Response::builder()
        .status(StatusCode::TEMPORARY_REDIRECT)
        .header(LOCATION, url)
}

/// The first value of a query parameter, decoded.
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_builder_error_is_a_500_not_an_empty_200() {
        let response = Response::builder()
            .header(LOCATION, "line\nbreak")
            .finish(Body::empty());
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let fine = Response::builder()
            .status(StatusCode::CREATED)
            .finish("made");
        assert_eq!(fine.status(), StatusCode::CREATED);
    }

    #[test]
    fn query_parameters_are_decoded_and_the_first_wins() {
        let query = Some("n=2&last=a%2Fb&n=3");
        assert_eq!(query_param(query, "n").as_deref(), Some("2"));
        assert_eq!(query_param(query, "last").as_deref(), Some("a/b"));
        assert_eq!(query_param(query, "missing"), None);
        assert_eq!(query_param(None, "n"), None);
    }

    #[test]
    fn a_redirect_says_where() {
        let response = redirect("https://bucket.example/object?sig=1").finish(Body::empty());
        assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT);
        assert_eq!(
            response.headers()[LOCATION],
            "https://bucket.example/object?sig=1"
        );
    }
}
