//! Reading packages: documents, single versions, tarballs and dist-tags.

use axum::body::Body;
use axum::response::Response;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use stowage_domain::{PackageName, PackageType, Principal, Role, Slug};
use stowage_http::{AppState, Finish, redirect};
use stowage_service::records::{decode, keys};

use crate::document::{self, PackageState, tarball_url};
use crate::error::{NpmError, NpmResult};
use crate::records::{self, DistTag, NpmVersion};
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
/// One query (paged) after the access check.
pub async fn package_document(
    state: &AppState,
    caller: &Principal,
    workspace: &Slug,
    name: &PackageName,
    headers: &HeaderMap,
    base: &str,
) -> NpmResult<Response> {
    let registry = &state.registry;
    let open = registry
        .open_package(caller, workspace, PackageType::Npm, name, Role::Read, &[])
        .await?;
    let package_state = PackageState::load(registry, &open.package.partition()).await?;
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
            document::full(name, &package_state, url),
        )
    };
    let body = body.to_string();
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
    let registry = &state.registry;
    // Outside `ws/`: a lifecycle rule expires these copies after a day.
    let key = format!(
        "npm-documents/{workspace}/{}",
        hex::encode(Sha256::digest(body.as_bytes()))
    );
    if registry.blobs().size(&key).await?.is_none() {
        registry.blobs().put(&key, body.into()).await?;
    }
    let url = registry.download_url(&key, content_type, None).await?;
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
    let partition = keys::package_partition(workspace, PackageType::Npm, name);
    let extra = [
        records::dist_tag(&partition, reference),
        records::version(&partition, reference),
    ];
    let open = registry
        .open_package(
            caller,
            workspace,
            PackageType::Npm,
            name,
            Role::Read,
            &extra,
        )
        .await?;
    let record: NpmVersion = match (&open.extra[0], &open.extra[1]) {
        (_, Some(item)) => decode(item)?,
        (Some(tag), None) => {
            let tag: DistTag = decode(tag)?;
            let item = registry
                .metadata()
                .get(&records::version(&partition, &tag.version))
                .await?;
            decode(&item.ok_or_else(NpmError::not_found)?)?
        }
        (None, None) => return Err(NpmError::not_found()),
    };
    let url = tarball_url(base, workspace.as_str(), name, &record.version);
    Ok(Value::Object(document::version_manifest(
        name, &record, url,
    )))
}

/// `GET /<pkg>/-/<file>.tgz`: a redirect to the tarball.
pub async fn tarball(
    state: &AppState,
    caller: &Principal,
    workspace: &Slug,
    name: &PackageName,
    file: &str,
) -> NpmResult<Response> {
    let registry = &state.registry;
    let version = version_of_tarball(name, file).ok_or_else(NpmError::not_found)?;
    let partition = keys::package_partition(workspace, PackageType::Npm, name);
    let extra = [records::version(&partition, &version)];
    let open = registry
        .open_package(
            caller,
            workspace,
            PackageType::Npm,
            name,
            Role::Read,
            &extra,
        )
        .await?;
    let record: NpmVersion = decode(open.extra[0].as_ref().ok_or_else(NpmError::not_found)?)?;
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

/// `GET /-/package/<pkg>/dist-tags`.
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
    let package_state = PackageState::load(registry, &open.package.partition()).await?;
    Ok(json!(
        package_state
            .tags
            .iter()
            .map(|(tag, target)| (tag.clone(), json!(target.version)))
            .collect::<serde_json::Map<_, _>>()
    ))
}
