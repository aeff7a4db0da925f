//! Writing to a package: `npm publish` (a document with one version and its tarball
//! attached), document updates (`npm deprecate`, the first step of `npm unpublish pkg@v`), and
//! unpublishing.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde_json::{Map, Value, json};
use sha1::Sha1;
use sha2::{Digest as _, Sha256, Sha512};
use stowage_domain::{Digest, DigestAlgorithm, PackageName, PackageType, Principal, Role, Slug};
use stowage_service::records::{BlobLink, encode, keys};
use stowage_service::{Error, Registry};
use stowage_storage::{ByteStream, Condition, Key, MAX_TRANSACTION_WRITES, Put, Write};

use crate::document::PackageState;
use crate::error::{NpmError, NpmResult};
use crate::records::{self, DistTag, NpmVersion, Tarball};
use crate::route::{tarball_file, version_of_tarball};

/// Fields of a published manifest not kept with the version: large, and not needed to install.
const DROPPED_FIELDS: [&str; 2] = ["readme", "readmeFilename"];

fn object<'a>(value: &'a Value, field: &str) -> NpmResult<&'a Map<String, Value>> {
    value
        .get(field)
        .and_then(Value::as_object)
        .ok_or_else(|| NpmError::bad_request(format!("the document needs a \"{field}\" object")))
}

/// A dist-tag name: not empty, URL-safe, and not itself a version (npm refuses those too).
pub fn check_tag(tag: &str) -> NpmResult<()> {
    let safe = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if !safe || semver::Version::parse(tag.trim_start_matches('v')).is_ok() {
        return Err(NpmError::bad_request(format!(
            "{tag:?} is not a valid dist-tag"
        )));
    }
    Ok(())
}

/// A version string npm would publish: strict semver.
fn check_version(version: &str) -> NpmResult<()> {
    semver::Version::parse(version).map(drop).map_err(|error| {
        NpmError::bad_request(format!("version {version:?} is not valid semver: {error}"))
    })
}

/// What a publish carries, checked: the version, its manifest, its tarball and its tags.
struct Publication {
    version: String,
    manifest: Map<String, Value>,
    tarball: Bytes,
    shasum: String,
    integrity: String,
    tags: Vec<String>,
}

fn check_publication(name: &PackageName, document: &Value) -> NpmResult<Publication> {
    if let Some(claimed) = document.get("name").and_then(Value::as_str)
        && claimed != name.as_str()
    {
        return Err(NpmError::bad_request(format!(
            "the document is for {claimed}, not {name}"
        )));
    }
    let versions = object(document, "versions")?;
    let [(version, manifest)] = versions.iter().collect::<Vec<_>>()[..] else {
        return Err(NpmError::bad_request(
            "a publish carries exactly one version",
        ));
    };
    check_version(version)?;
    let mut manifest = manifest
        .as_object()
        .cloned()
        .ok_or_else(|| NpmError::bad_request("a version is an object"))?;
    for (field, expected) in [("name", name.as_str()), ("version", version.as_str())] {
        if manifest.get(field).and_then(Value::as_str) != Some(expected) {
            return Err(NpmError::bad_request(format!(
                "the version's {field} must be {expected:?}"
            )));
        }
    }
    let dist = manifest
        .get("dist")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            NpmError::bad_request("the version has no dist (shasum and integrity of its tarball)")
        })?;
    let claimed_shasum = dist
        .get("shasum")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let claimed_integrity = dist
        .get("integrity")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if claimed_shasum.is_none() && claimed_integrity.is_none() {
        return Err(NpmError::bad_request(
            "the version's dist needs shasum or integrity",
        ));
    }

    let attachments = object(document, "_attachments")?;
    let [(file, attachment)] = attachments.iter().collect::<Vec<_>>()[..] else {
        return Err(NpmError::bad_request(
            "a publish carries exactly one tarball",
        ));
    };
    // npm names the attachment after the full name (`@scope/name-1.0.0.tgz`); the download
    // file name drops the scope.
    let expected = [format!("{name}-{version}.tgz"), tarball_file(name, version)];
    if !expected.contains(file) {
        return Err(NpmError::bad_request(format!(
            "the tarball is named {file}, not {}",
            expected[0]
        )));
    }
    let data = attachment
        .get("data")
        .and_then(Value::as_str)
        .ok_or_else(|| NpmError::bad_request("the tarball has no data"))?;
    let tarball = STANDARD
        .decode(data)
        .map_err(|_| NpmError::bad_request("the tarball's data is not base64"))?;
    if let Some(length) = attachment.get("length").and_then(Value::as_u64)
        && length != tarball.len() as u64
    {
        return Err(NpmError::bad_request(format!(
            "the tarball is {} bytes, not the {length} announced",
            tarball.len()
        )));
    }
    let shasum = hex::encode(Sha1::digest(&tarball));
    let integrity = format!("sha512-{}", STANDARD.encode(Sha512::digest(&tarball)));
    if claimed_shasum.is_some_and(|claimed| claimed != shasum) {
        return Err(NpmError::bad_request(
            "the tarball does not match dist.shasum",
        ));
    }
    if claimed_integrity.is_some_and(|claimed| claimed != integrity) {
        return Err(NpmError::bad_request(
            "the tarball does not match dist.integrity (sha512)",
        ));
    }

    let mut tags = Vec::new();
    if let Some(dist_tags) = document.get("dist-tags").and_then(Value::as_object) {
        for (tag, target) in dist_tags {
            check_tag(tag)?;
            if target.as_str() != Some(version) {
                return Err(NpmError::bad_request(format!(
                    "dist-tag {tag} must point at the version published"
                )));
            }
            tags.push(tag.clone());
        }
    }
    if tags.is_empty() {
        tags.push("latest".to_owned());
    }
    for field in DROPPED_FIELDS {
        manifest.remove(field);
    }
    Ok(Publication {
        version: version.clone(),
        manifest,
        tarball: Bytes::from(tarball),
        shasum,
        integrity,
        tags,
    })
}

/// `PUT /<pkg>` with an attachment: publishes one version. The tarball, the version and its
/// tags are written together, and a version that exists is never overwritten (409, which npm
/// reports as EPUBLISHCONFLICT).
pub async fn publish(
    registry: &Registry,
    caller: &Principal,
    workspace: &Slug,
    name: &PackageName,
    document: &Value,
) -> NpmResult<Value> {
    let publication = check_publication(name, document)?;
    let partition = keys::package_partition(workspace, PackageType::Npm, name);
    let version_key = records::version(&partition, &publication.version);
    let open = registry
        .open_package(
            caller,
            workspace,
            PackageType::Npm,
            name,
            Role::Write,
            std::slice::from_ref(&version_key),
        )
        .await?;
    let conflict = || {
        NpmError::conflict(format!(
            "cannot publish over the previously published version {}",
            publication.version
        ))
    };
    if open.extra[0].is_some() {
        return Err(conflict());
    }
    let now = registry.now();
    let digest = Digest::from_hex(
        DigestAlgorithm::Sha256,
        &hex::encode(Sha256::digest(&publication.tarball)),
    );
    let published_by = caller.display_name();
    let size = publication.tarball.len() as u64;
    // The version is claimed in the same transaction that links the tarball: concurrent
    // publishes of one version cannot both win, and a refused one leaves nothing.
    let extra = |link: &BlobLink| {
        let record = NpmVersion {
            version: publication.version.clone(),
            published_at: now,
            published_by: published_by.clone(),
            manifest: publication.manifest.clone(),
            tarball: Tarball {
                digest: digest.clone(),
                size,
                shasum: publication.shasum.clone(),
                integrity: publication.integrity.clone(),
                object_key: link.object_key.clone(),
            },
        };
        let mut writes = vec![Write::Put(
            Put::new(version_key.clone(), encode(&record)).when(Condition::Absent),
        )];
        for tag in &publication.tags {
            let target = DistTag {
                version: publication.version.clone(),
                updated_at: now,
            };
            writes.push(Write::Put(Put::new(
                records::dist_tag(&partition, tag),
                encode(&target),
            )));
        }
        writes
    };
    let tarball = publication.tarball;
    let body: ByteStream = Box::pin(futures_util::stream::once(async move { Ok(tarball) }));
    registry
        .store_blob(&open.package, body, Some(&digest), None, extra)
        .await
        .map_err(|error| match error {
            Error::Conflict(_) => conflict(),
            other => other.into(),
        })?;
    Ok(json!({ "ok": true, "id": name.as_str() }))
}

/// `PUT /<pkg>` without attachments, or `PUT /<pkg>/-rev/<rev>`: the client sends the whole
/// document back changed. Changes to `deprecated` are applied; versions it no longer lists are
/// unpublished; its dist-tags replace the package's.
pub async fn update(
    registry: &Registry,
    caller: &Principal,
    workspace: &Slug,
    name: &PackageName,
    document: &Value,
) -> NpmResult<Value> {
    let open = registry
        .open_package(caller, workspace, PackageType::Npm, name, Role::Write, &[])
        .await?;
    let partition = open.package.partition();
    let wanted = object(document, "versions")?;
    let state = PackageState::load(registry, &partition).await?;
    let mut writes = Vec::new();
    for (version, (record, item_version)) in &state.versions {
        let key = records::version(&partition, version);
        match wanted.get(version) {
            None => writes.push(Write::Delete {
                key,
                condition: Condition::Version(*item_version),
            }),
            Some(sent) => {
                let deprecated = sent
                    .get("deprecated")
                    .and_then(Value::as_str)
                    .filter(|m| !m.is_empty());
                if deprecated != record.manifest.get("deprecated").and_then(Value::as_str) {
                    let mut changed = record.clone();
                    match deprecated {
                        Some(message) => {
                            changed.manifest.insert("deprecated".into(), json!(message))
                        }
                        None => changed.manifest.remove("deprecated"),
                    };
                    writes.push(Write::Put(
                        Put::new(key, encode(&changed)).when(Condition::Version(*item_version)),
                    ));
                }
            }
        }
    }
    let now = registry.now();
    let sent_tags = document
        .get("dist-tags")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (tag, target) in &state.tags {
        let kept = sent_tags.get(tag).and_then(Value::as_str);
        match kept {
            Some(version) if version == target.version && wanted.contains_key(version) => {}
            Some(version)
                if wanted.contains_key(version) && state.versions.contains_key(version) =>
            {
                let target = DistTag {
                    version: version.to_owned(),
                    updated_at: now,
                };
                writes.push(Write::Put(Put::new(
                    records::dist_tag(&partition, tag),
                    encode(&target),
                )));
            }
            _ => writes.push(Write::Delete {
                key: records::dist_tag(&partition, tag),
                condition: Condition::None,
            }),
        }
    }
    for (tag, version) in &sent_tags {
        let Some(version) = version.as_str() else {
            continue;
        };
        if !state.tags.contains_key(tag)
            && wanted.contains_key(version)
            && state.versions.contains_key(version)
        {
            check_tag(tag)?;
            let target = DistTag {
                version: version.to_owned(),
                updated_at: now,
            };
            writes.push(Write::Put(Put::new(
                records::dist_tag(&partition, tag),
                encode(&target),
            )));
        }
    }
    apply(registry, writes).await?;
    Ok(
        json!({ "ok": true, "id": name.as_str(), "rev": PackageState::load(registry, &partition).await?.revision() }),
    )
}

/// Applies writes in transactions of the store's size; a lost race is a conflict.
async fn apply(registry: &Registry, writes: Vec<Write>) -> NpmResult<()> {
    for batch in writes.chunks(MAX_TRANSACTION_WRITES) {
        registry
            .transact(batch.to_vec())
            .await
            .map_err(|error| match error {
                stowage_storage::MetadataError::ConditionFailed { .. } => {
                    NpmError::conflict("the package changed meanwhile; fetch it and try again")
                }
                other => other.into(),
            })?;
    }
    Ok(())
}

/// `DELETE /<pkg>/-rev/<rev>` (`npm unpublish pkg --force`): removes every version and tag
/// (admins only).
pub async fn unpublish_all(
    registry: &Registry,
    caller: &Principal,
    workspace: &Slug,
    name: &PackageName,
) -> NpmResult<Value> {
    let open = registry
        .open_package(caller, workspace, PackageType::Npm, name, Role::Admin, &[])
        .await?;
    let partition = open.package.partition();
    let state = PackageState::load(registry, &partition).await?;
    let mut writes: Vec<Write> = Vec::new();
    for (version, (record, _)) in &state.versions {
        writes.push(Write::Delete {
            key: records::version(&partition, version),
            condition: Condition::None,
        });
        writes.push(Write::Delete {
            key: keys::blob_link(&partition, &record.tarball.digest),
            condition: Condition::None,
        });
    }
    for tag in state.tags.keys() {
        writes.push(Write::Delete {
            key: records::dist_tag(&partition, tag),
            condition: Condition::None,
        });
    }
    writes.push(stowage_service::mark_for_collection(workspace));
    dedup_keys(&mut writes);
    apply(registry, writes).await?;
    Ok(json!({ "ok": true }))
}

/// `DELETE /<pkg>/-/<file>/-rev/<rev>`: the last step of `npm unpublish pkg@version`. The
/// version is gone already (the document update removed it); this drops its tarball, unless
/// another version has the same bytes.
pub async fn delete_tarball(
    registry: &Registry,
    caller: &Principal,
    workspace: &Slug,
    name: &PackageName,
    file: &str,
) -> NpmResult<Value> {
    let version = version_of_tarball(name, file).ok_or_else(NpmError::not_found)?;
    let open = registry
        .open_package(caller, workspace, PackageType::Npm, name, Role::Write, &[])
        .await?;
    let partition = open.package.partition();
    let state = PackageState::load(registry, &partition).await?;
    let mut writes = Vec::new();
    if let Some((record, item_version)) = state.versions.get(&version) {
        writes.push(Write::Delete {
            key: records::version(&partition, &version),
            condition: Condition::Version(*item_version),
        });
        let shared = state
            .versions
            .iter()
            .any(|(v, (r, _))| v != &version && r.tarball.digest == record.tarball.digest);
        if !shared {
            writes.push(Write::Delete {
                key: keys::blob_link(&partition, &record.tarball.digest),
                condition: Condition::None,
            });
            writes.push(stowage_service::mark_for_collection(workspace));
        }
        for (tag, target) in &state.tags {
            if target.version == version {
                writes.push(Write::Delete {
                    key: records::dist_tag(&partition, tag),
                    condition: Condition::None,
                });
            }
        }
    }
    apply(registry, writes).await?;
    Ok(json!({ "ok": true }))
}

/// Two versions with the same tarball would delete one link twice in a transaction.
fn dedup_keys(writes: &mut Vec<Write>) {
    let mut seen = std::collections::HashSet::<Key>::new();
    writes.retain(|write| seen.insert(write.key().clone()));
}
