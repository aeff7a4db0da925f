//! `npm dist-tag add` and `npm dist-tag rm`.

use axum::body::Body;
use serde_json::{Value, json};
use stowage_domain::{PackageName, PackageType, Principal, Role, Slug};
use stowage_http::read_limited;
use stowage_service::{CommitError, Registry};
use stowage_storage::Condition;

use crate::error::{NpmError, NpmResult};
use crate::publish::check_tag;
use crate::records::{DistTag, DistTags, NpmVersions};

/// A version, as a JSON string: a few bytes.
const VERSION_BODY_MAX: usize = 1024;

/// `PUT /-/package/<pkg>/dist-tags/<tag>` with the version as a JSON string. The tag is
/// written in one transaction with a touch of its version, which fails if the version is gone
/// and makes an unpublish of it that raced this write fail in turn: no tag ever points at a
/// version that does not exist.
pub async fn set(
    registry: &Registry,
    caller: &Principal,
    workspace: &Slug,
    name: &PackageName,
    tag: &str,
    body: Body,
) -> NpmResult<Value> {
    check_tag(tag)?;
    let open = registry
        .open_package(caller, workspace, PackageType::Npm, name, Role::Write, &[])
        .await?;
    let body = read_limited(body, VERSION_BODY_MAX)
        .await
        .map_err(|_| NpmError::bad_request("the body must be the version, as a JSON string"))?;
    let version: String = serde_json::from_slice(&body)
        .map_err(|_| NpmError::bad_request("the body must be the version, as a JSON string"))?;
    let target = DistTag {
        version: version.clone(),
        updated_at: registry.now(),
    };
    let items = registry.package_items(&open.package);
    let mut writes = items.writes(caller.display_name());
    writes
        .touch::<NpmVersions>(&version)
        .put::<DistTags>(tag, &target);
    writes.commit().await.map_err(|error| match error {
        CommitError::Lost => NpmError::not_found_with(format!("{name} has no version {version}")),
        CommitError::Failed(other) => other.into(),
    })?;
    Ok(json!({ "ok": true }))
}

/// `DELETE /-/package/<pkg>/dist-tags/<tag>`. `latest` stays: every package needs one.
pub async fn remove(
    registry: &Registry,
    caller: &Principal,
    workspace: &Slug,
    name: &PackageName,
    tag: &str,
) -> NpmResult<Value> {
    if tag == "latest" {
        return Err(NpmError::bad_request(
            "the latest dist-tag cannot be removed; point it at another version",
        ));
    }
    let open = registry
        .open_package(caller, workspace, PackageType::Npm, name, Role::Write, &[])
        .await?;
    let items = registry.package_items(&open.package);
    let mut writes = items.writes(caller.display_name());
    writes.delete::<DistTags>(tag, Condition::Exists);
    writes.commit().await.map_err(|_| NpmError::not_found())?;
    Ok(json!({ "ok": true }))
}
