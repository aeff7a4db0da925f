//! The deployed front's routing rule, read from the CloudFront function itself
//! (`front/viewer-request.js`), so that the emulation and the deployment cannot disagree.

use std::sync::LazyLock;

use serde::Deserialize;

/// The CloudFront function, as deployed.
pub const VIEWER_REQUEST_FUNCTION: &str = include_str!("../../../../front/viewer-request.js");

/// Where the front sends a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The HTTP API, and through it a Lambda function.
    Lambda,
    /// The upload service.
    UploadService,
}

#[derive(Debug, Deserialize)]
struct Route {
    methods: Vec<String>,
    prefix: String,
    contains: Option<String>,
}

impl Route {
    fn matches(&self, method: &str, path: &str) -> bool {
        self.methods.iter().any(|m| m == method)
            && path.starts_with(&self.prefix)
            && self.contains.as_ref().is_none_or(|needle| {
                path[self.prefix.len().saturating_sub(1)..].contains(needle.as_str())
            })
    }
}

static UPLOAD_ROUTES: LazyLock<Vec<Route>> = LazyLock::new(|| {
    upload_routes(VIEWER_REQUEST_FUNCTION)
        .expect("front/viewer-request.js holds its route table between its markers")
});

/// The JSON table between `// routes:begin` and `// routes:end`.
fn upload_routes(function: &str) -> Option<Vec<Route>> {
    let (_, rest) = function.split_once("// routes:begin")?;
    let (table, _) = rest.split_once("// routes:end")?;
    let (_, json) = table.split_once('=')?;
    serde_json::from_str(json.trim().trim_end_matches(';')).ok()
}

/// The origin the deployed front picks for a request.
pub fn origin_of(method: &str, path: &str) -> Origin {
    if UPLOAD_ROUTES
        .iter()
        .any(|route| route.matches(method, path))
    {
        Origin::UploadService
    } else {
        Origin::Lambda
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Requests recorded from real clients, with the origin each must reach; the CloudFront
    /// function is held to the same file by `front/viewer-request.test.mjs`.
    const RECORDED: &str = include_str!("../../../../front/recorded-requests.json");

    #[derive(Deserialize)]
    struct Recorded {
        client: String,
        method: String,
        uri: String,
        origin: String,
    }

    #[test]
    fn the_table_is_read_from_the_function() {
        assert!(upload_routes(VIEWER_REQUEST_FUNCTION).is_some_and(|routes| routes.len() >= 3));
    }

    #[test]
    fn recorded_requests_reach_their_origin() {
        let recorded: Vec<Recorded> = serde_json::from_str(RECORDED).expect("recorded requests");
        assert!(recorded.len() > 20);
        for request in recorded {
            let expected = match request.origin.as_str() {
                "upload-service" => Origin::UploadService,
                "api" => Origin::Lambda,
                other => panic!("unknown origin {other}"),
            };
            assert_eq!(
                origin_of(&request.method, &request.uri),
                expected,
                "{} {} from {}",
                request.method,
                request.uri,
                request.client
            );
        }
    }
}
