//! `npm dist-tag add` and `npm dist-tag rm`.

use axum::body::Body;
use serde_json::{Value, json};
use stowage_domain::{PackageName, PackageType, Principal, Role, Slug};
use stowage_http::read_limited;
use stowage_service::Registry;
use stowage_service::records::encode;
use stowage_storage::{Condition, MetadataError, Put, Write};

use crate::error::{NpmError, NpmResult};
use crate::publish::check_tag;
use crate::records::{self, DistTag};

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
    let partition = open.package.partition();
    let target = DistTag {
        version: version.clone(),
        updated_at: registry.now(),
    };
    registry
        .transact(vec![
            Write::Touch {
                key: records::version(&partition, &version),
            },
            Write::Put(Put::new(
                records::dist_tag(&partition, tag),
                encode(&target),
            )),
        ])
        .await
        .map_err(|error| match error {
            MetadataError::ConditionFailed { .. } => {
                NpmError::not_found_with(format!("{name} has no version {version}"))
            }
            other => other.into(),
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
    registry
        .metadata()
        .write(Write::Delete {
            key: records::dist_tag(&open.package.partition(), tag),
            condition: Condition::Exists,
        })
        .await
        .map_err(|_| NpmError::not_found())?;
    Ok(json!({ "ok": true }))
}
