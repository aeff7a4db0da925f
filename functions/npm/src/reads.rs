//! Reading packages: documents, single versions, tarballs and dist-tags; for a name the
//! workspace does not have, through its upstreams ([`crate::proxy`]).

use axum::body::Body;
use axum::response::Response;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use stowage_domain::{PackageName, PackageType, Principal, Role, Slug};
use stowage_http::{AppState, Finish, handover, redirect};
use stowage_service::{ItemKey, Opened, UpstreamCopies};

use crate::document::{self, PackageState, tarball_url};
use crate::error::{NpmError, NpmResult};
use crate::proxy;
use crate::records::{DistTags, NpmVersions};
use crate::route::version_of_tarball;

const ABBREVIATED: &str = "application/vnd.npm.install-v1+json";
/// Documents larger than this are not returned by a Lambda (6 MB responses at most) but
/// handed over through the blob store.
const LAMBDA_DOCUMENT_MAX: usize = 5 * 1024 * 1024;

fn wants_abbreviated(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.contains(ABBREVIATED))
}

/// `GET /<pkg>`: the full document, or the abbreviated one when the client asks for it.
/// One query (paged) after the access check. A package copied from an upstream answers the
/// upstream's document instead; a name the workspace does not have is looked up upstream.
pub async fn package_document(
    state: &AppState,
    caller: &Principal,
    workspace: &Slug,
    name: &PackageName,
    headers: &HeaderMap,
    base: &str,
) -> NpmResult<Response> {
    let registry = &state.registry;
    let copy_key = proxy::document_key(workspace, name);
    let copy_keys = std::slice::from_ref(&copy_key);
    let open = match registry
        .open_or_upstreams(caller, workspace, PackageType::Npm, name, copy_keys)
        .await?
    {
        Opened::Package(open) => open,
        Opened::Upstreams(upstreams) => {
            match proxy::first_document(state, workspace, name, &upstreams).await? {
                Some(bytes) => return proxied(state, workspace, name, &bytes, base).await,
                // Made a package meanwhile: read it as it now is.
                None => {
                    registry
                        .open_package(
                            caller,
                            workspace,
                            PackageType::Npm,
                            name,
                            Role::Read,
                            copy_keys,
                        )
                        .await?
                }
            }
        }
    };
    if open.package.upstream.is_some() {
        let copy = open.record::<UpstreamCopies>(&copy_key)?;
        let bytes = proxy::cached_document(state, &open.package, copy).await?;
        return proxied(state, workspace, name, &bytes, base).await;
    }
    let package_state = PackageState::load(registry, &open.package).await?;
    if package_state.versions.is_empty() {
        return Err(NpmError::not_found());
    }
    let url = |version: &str| tarball_url(base, workspace.as_str(), name, version);
    let (content_type, body) = if wants_abbreviated(headers) {
        (
            ABBREVIATED,
            document::abbreviated(name, &package_state, url),
        )
    } else {
        (
            "application/json",
            document::full(&open.package, &package_state, url),
        )
    };
    respond(state, workspace, content_type, body.to_string()).await
}

/// A copied document, its tarballs at our URLs (npm takes the full document where it asked
/// for the abbreviated one).
async fn proxied(
    state: &AppState,
    workspace: &Slug,
    name: &PackageName,
    bytes: &[u8],
    base: &str,
) -> NpmResult<Response> {
    let document = proxy::rewritten(bytes, base, workspace, name)?;
    respond(state, workspace, "application/json", document.to_string()).await
}

async fn respond(
    state: &AppState,
    workspace: &Slug,
    content_type: &str,
    body: String,
) -> NpmResult<Response> {
    if state.limits.platform_limited && body.len() > LAMBDA_DOCUMENT_MAX {
        return hand_over(state, workspace, content_type, body).await;
    }
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(CONTENT_TYPE, content_type)
        .finish(Body::from(body)))
}

/// A document too large for a Lambda response: written to the blob store (named by its
/// content, so repeated reads reuse it) and redirected to.
async fn hand_over(
    state: &AppState,
    workspace: &Slug,
    content_type: &str,
    body: String,
) -> NpmResult<Response> {
    let url = state
        .registry
        .hand_over(workspace, body.into(), content_type)
        .await?;
    Ok(redirect(&url).finish(Body::empty()))
}

/// `GET /<pkg>/<version or dist-tag>`: one version's manifest.
pub async fn version_document(
    state: &AppState,
    caller: &Principal,
    workspace: &Slug,
    name: &PackageName,
    reference: &str,
    base: &str,
) -> NpmResult<Value> {
    let registry = &state.registry;
    let tag = ItemKey::in_package::<DistTags>(workspace, PackageType::Npm, name, reference);
    let version = ItemKey::in_package::<NpmVersions>(workspace, PackageType::Npm, name, reference);
    let open = registry
        .open_package(
            caller,
            workspace,
            PackageType::Npm,
            name,
            Role::Read,
            &[tag.clone(), version.clone()],
        )
        .await?;
    let record = match open.record::<NpmVersions>(&version)? {
        Some(record) => record,
        None if open.package.upstream.is_some() => {
            let bytes = copied_document(state, &open.package).await?;
            let document = proxy::rewritten(&bytes, base, workspace, name)?;
            let tagged = document["dist-tags"][reference]
                .as_str()
                .unwrap_or(reference);
            return match &document["versions"][tagged] {
                Value::Object(manifest) => Ok(Value::Object(manifest.clone())),
                _ => Err(NpmError::not_found()),
            };
        }
        None => {
            let tag = open
                .record::<DistTags>(&tag)?
                .ok_or_else(NpmError::not_found)?;
            registry
                .package_items(&open.package)
                .get::<NpmVersions>(&tag.version)
                .await?
                .ok_or_else(NpmError::not_found)?
                .payload
        }
    };
    let url = tarball_url(base, workspace.as_str(), name, &record.version);
    Ok(Value::Object(document::version_manifest(
        name, &record, url,
    )))
}

/// `GET /<pkg>/-/<file>.tgz`: a redirect to the tarball. A cached package's tarball not
/// fetched yet is fetched from its upstream first, or, on a Lambda, handed over to the upload
/// service ([`stowage_http::handover`]).
pub async fn tarball(
    state: &AppState,
    caller: &Principal,
    workspace: &Slug,
    name: &PackageName,
    file: &str,
) -> NpmResult<Response> {
    let registry = &state.registry;
    let version = version_of_tarball(name, file).ok_or_else(NpmError::not_found)?;
    let wanted = ItemKey::in_package::<NpmVersions>(workspace, PackageType::Npm, name, &version);
    let open = registry
        .open_package(
            caller,
            workspace,
            PackageType::Npm,
            name,
            Role::Read,
            std::slice::from_ref(&wanted),
        )
        .await?;
    let record = match open.record::<NpmVersions>(&wanted)? {
        Some(record) => record,
        None if open.package.upstream.is_some() => {
            if handover::hands_over(&state.limits) {
                let root = format!("/npm/{workspace}");
                let path = format!("{root}/{name}/-/{file}");
                let location = handover::location(registry, &root, caller, &path).await?;
                return Ok(redirect(&location).finish(Body::empty()));
            }
            proxy::fetch_tarball(state, &open.package, &version).await?
        }
        None => return Err(NpmError::not_found()),
    };
    let url = state
        .registry
        .download_url(
            &record.tarball.object_key,
            "application/octet-stream",
            Some(file),
        )
        .await?;
    Ok(redirect(&url).finish(Body::empty()))
}

/// A cached package's copy of its upstream document (fetched again once stale).
async fn copied_document(
    state: &AppState,
    package: &stowage_service::PackageRecord,
) -> NpmResult<bytes::Bytes> {
    let copy = state
        .registry
        .package_items(package)
        .get::<UpstreamCopies>(proxy::DOCUMENT)
        .await?
        .map(|record| record.payload);
    proxy::cached_document(state, package, copy).await
}

/// `GET /-/package/<pkg>/dist-tags` (a cached package's are its upstream's).
pub async fn dist_tags(
    state: &AppState,
    caller: &Principal,
    workspace: &Slug,
    name: &PackageName,
) -> NpmResult<Value> {
    let registry = &state.registry;
    let open = registry
        .open_package(caller, workspace, PackageType::Npm, name, Role::Read, &[])
        .await?;
    if open.package.upstream.is_some() {
        let bytes = copied_document(state, &open.package).await?;
        let document: Value = serde_json::from_slice(&bytes).map_err(|_| {
            stowage_service::Error::Corrupt(format!("the cached document of {name}"))
        })?;
        return Ok(document
            .get("dist-tags")
            .cloned()
            .unwrap_or_else(|| json!({})));
    }
    let package_state = PackageState::load(registry, &open.package).await?;
    Ok(json!(
        package_state
            .tags
            .iter()
            .map(|(tag, target)| (tag.clone(), json!(target.version)))
            .collect::<serde_json::Map<_, _>>()
    ))
}
