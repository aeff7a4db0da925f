//! The interface's stylesheet and script, compiled into the binary: no file to deploy beside
//! the function, and nothing from a third party.

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, CONTENT_TYPE};

use crate::error::PageError;

const STYLESHEET: &str = include_str!("../assets/app.css");
const SCRIPT: &str = include_str!("../assets/app.js");

pub async fn serve(Path(file): Path<String>) -> Response {
    let (content_type, body) = match file.as_str() {
        "app.css" => ("text/css; charset=utf-8", STYLESHEET),
        "app.js" => ("text/javascript; charset=utf-8", SCRIPT),
        _ => return PageError::not_found().into_response(),
    };
    (
        [
            (CONTENT_TYPE, content_type),
            (CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}
