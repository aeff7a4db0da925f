//! `npm dist-tag add` and `npm dist-tag rm`.

use serde_json::{Value, json};
use stowage_domain::{PackageName, PackageType, Principal, Role, Slug};
use stowage_service::Registry;
use stowage_service::records::{encode, keys};
use stowage_storage::{Condition, Put, Write};

use crate::error::{NpmError, NpmResult};
use crate::publish::check_tag;
use crate::records::{self, DistTag};

/// `PUT /-/package/<pkg>/dist-tags/<tag>` with the version as a JSON string.
pub async fn set(
    registry: &Registry,
    caller: &Principal,
    workspace: &Slug,
    name: &PackageName,
    tag: &str,
    body: &[u8],
) -> NpmResult<Value> {
    check_tag(tag)?;
    let version: String = serde_json::from_slice(body)
        .map_err(|_| NpmError::bad_request("the body must be the version, as a JSON string"))?;
    let partition = keys::package_partition(workspace, PackageType::Npm, name);
    let extra = [records::version(&partition, &version)];
    let open = registry
        .open_package(
            caller,
            workspace,
            PackageType::Npm,
            name,
            Role::Write,
            &extra,
        )
        .await?;
    let Some(item) = &open.extra[0] else {
        return Err(NpmError::not_found());
    };
    let target = DistTag {
        version,
        updated_at: registry.now(),
    };
    // The version must still exist when the tag lands on it.
    registry
        .transact(vec![
            Write::Check {
                key: item.key.clone(),
                condition: Condition::Version(item.version),
            },
            Write::Put(Put::new(
                records::dist_tag(&partition, tag),
                encode(&target),
            )),
        ])
        .await
        .map_err(|_| NpmError::conflict("the version changed meanwhile; try again"))?;
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
