//! Content discovery: the tags of an image, and the referrers of a manifest.

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;
use http::header::{CONTENT_TYPE, LINK};
use serde_json::{Value, json};
use stowage_domain::{Digest, PackageType, PrincipalKind, Role};
use stowage_http::{Finish, query_param};
use stowage_service::Registry;

use crate::auth::Caller;
use crate::error::{OciError, OciResult};
use crate::manifests::OCI_INDEX;
use crate::records::{Referrers, Tags};
use crate::route::{ImageName, parse_tag};

/// The most tags (or catalog names) one response lists; a `Link` header leads to the rest.
const TAGS_PAGE_MAX: usize = 10_000;

fn json_response(content_type: &str, body: &Value) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header(CONTENT_TYPE, content_type)
        .finish(Body::from(body.to_string()))
}

/// `GET /v2/_catalog?n=&last=`: the images the caller can read, in lexical order, `n` at a
/// time after `last`: the container packages of the repositories it can read, in every
/// workspace it belongs to (a pipeline: its own repository's). Nothing else is named.
pub async fn catalog(
    registry: &Registry,
    caller: &Caller,
    query: Option<&str>,
) -> OciResult<Response> {
    let limit = page_size(query)?;
    let last = query_param(query, "last");
    let workspaces: Vec<String> = match &caller.principal.kind {
        PrincipalKind::Pipeline { workspace, .. } => vec![workspace.to_string()],
        PrincipalKind::User { .. } => registry
            .list_workspaces(&caller.principal)
            .await?
            .into_iter()
            .map(|view| view.workspace.slug.to_string())
            .collect(),
    };
    let mut names = Vec::new();
    for workspace in workspaces {
        for package in registry
            .list_packages(&caller.principal, &workspace)
            .await?
        {
            if package.kind == PackageType::Container {
                names.push(format!("{workspace}/{}", package.name));
            }
        }
    }
    names.sort();
    let names: Vec<String> = names
        .into_iter()
        .filter(|name| last.as_deref().is_none_or(|last| name.as_str() > last))
        .collect();
    let more = names.len() > limit;
    let page = &names[..names.len().min(limit)];
    let mut response = json_response("application/json", &json!({ "repositories": page }));
    if more && let Some(last) = page.last() {
        let link = format!("</v2/_catalog?n={limit}&last={last}>; rel=\"next\"");
        if let Ok(value) = link.parse() {
            response.headers_mut().insert(LINK, value);
        }
    }
    Ok(response)
}

/// The `n` of a listing's query, within the most one response holds.
fn page_size(query: Option<&str>) -> OciResult<usize> {
    let requested = match query_param(query, "n") {
        Some(n) => Some(n.parse::<usize>().map_err(|_| {
            OciError::unsupported("n must be a whole number").with_status(StatusCode::BAD_REQUEST)
        })?),
        None => None,
    };
    Ok(requested.unwrap_or(TAGS_PAGE_MAX).min(TAGS_PAGE_MAX))
}

/// `GET /v2/<name>/tags/list?n=&last=`: tags in lexical order, `n` at a time after `last`.
pub async fn tags(
    registry: &Registry,
    caller: &Caller,
    name: &ImageName,
    query: Option<&str>,
) -> OciResult<Response> {
    let open = caller.open(registry, name, Role::Read, &[]).await?;
    let limit = page_size(query)?;
    let last = query_param(query, "last")
        .map(|last| parse_tag(&last))
        .transpose()?;
    let page = registry
        .package_items(&open.package)
        .page_ids::<Tags>("", last.as_deref(), limit)
        .await?;
    let (tags, more) = (page.ids, page.more);
    let mut response = json_response(
        "application/json",
        &json!({ "name": name.full(), "tags": tags }),
    );
    if more && let Some(last) = tags.last() {
        let link = format!(
            "</v2/{}/tags/list?n={limit}&last={last}>; rel=\"next\"",
            name.full()
        );
        if let Ok(value) = link.parse() {
            response.headers_mut().insert(LINK, value);
        }
    }
    Ok(response)
}

/// `GET /v2/<name>/referrers/<digest>?artifactType=`: an image index of the manifests whose
/// subject is `digest`.
pub async fn referrers(
    registry: &Registry,
    caller: &Caller,
    name: &ImageName,
    subject: &Digest,
    query: Option<&str>,
) -> OciResult<Response> {
    let open = caller.open(registry, name, Role::Read, &[]).await?;
    let wanted = query_param(query, "artifactType");
    let referrers = registry
        .package_items(&open.package)
        .all::<Referrers>(&format!("{subject}#"))
        .await?;
    let manifests: Vec<Value> = referrers
        .into_iter()
        .map(|referrer| referrer.payload)
        .filter(|descriptor| {
            wanted
                .as_deref()
                .is_none_or(|w| descriptor["artifactType"].as_str() == Some(w))
        })
        .collect();
    let index = json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests });
    let mut response = json_response(OCI_INDEX, &index);
    if wanted.is_some() {
        response.headers_mut().insert(
            "OCI-Filters-Applied",
            http::HeaderValue::from_static("artifactType"),
        );
    }
    Ok(response)
}
