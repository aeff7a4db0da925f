//! Writing to a package: `npm publish` (a document with one new version and its tarball
//! attached), document updates (`npm deprecate`, `npm dist-tag` through the document, the
//! first step of `npm unpublish pkg@v`), and unpublishing.
//!
//! A document is not trusted as a whole, as CouchDB-era registries did: it is read for what
//! the client may change. A publish adds one version with its tarball; an update may deprecate
//! versions, move dist-tags and remove versions (each recorded as unpublished, so the number is
//! never used again), and only if it carries the revision the client read. Nothing else in a
//! document is taken.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Body;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use stowage_domain::{PackageName, PackageType, Principal, Role, Slug};
use stowage_http::AppState;
use stowage_service::{
    BlobLink, BlobLinks, CommitError, Error, OpenPackage, PackageWrites, Registry, StagedBlob,
    Written,
};
use stowage_storage::{ByteStream, Condition};

use crate::body::{self, BodyError, Document};
use crate::document::PackageState;
use crate::error::{NpmError, NpmResult};
use crate::records::{
    DistTag, DistTags, NpmVersion, NpmVersions, Tarball, Unpublished, UnpublishedVersions,
};
use crate::route::{tarball_file, version_of_tarball};

/// Fields of a published manifest not kept with the version: large, and not needed to install.
const DROPPED_FIELDS: [&str; 2] = ["readme", "readmeFilename"];
/// The most a version's manifest may hold once its readme is dropped: it is one record, and
/// DynamoDB items stop at 400 KB.
const VERSION_RECORD_MAX: usize = 300 * 1024;

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

/// The longest version string taken (npm's own limit): it is part of a record's key.
const VERSION_MAX: usize = 256;
/// The most dist-tags a publish may set (npm sets one): each is a write of its transaction.
const PUBLISH_TAGS_MAX: usize = 20;

/// A version string npm would publish: strict semver, of a length a key can hold.
fn check_version(version: &str) -> NpmResult<()> {
    if version.len() > VERSION_MAX {
        return Err(NpmError::bad_request(format!(
            "a version is at most {VERSION_MAX} characters"
        )));
    }
    semver::Version::parse(version).map(drop).map_err(|error| {
        NpmError::bad_request(format!("version {version:?} is not valid semver: {error}"))
    })
}

fn check_claimed_name(name: &PackageName, claimed: Option<&str>) -> NpmResult<()> {
    match claimed {
        Some(claimed) if claimed != name.as_str() => Err(NpmError::bad_request(format!(
            "the document is for {claimed}, not {name}"
        ))),
        _ => Ok(()),
    }
}

fn used_before(version: &str) -> NpmError {
    NpmError::conflict(format!(
        "version {version} was published before and unpublished: npm never reuses a version \
         number (lockfiles pin what was published under it), so publish a new version"
    ))
}

fn published_already(version: &str) -> NpmError {
    NpmError::conflict(format!(
        "cannot publish over the previously published version {version}"
    ))
}

/// `PUT /<pkg>` or `PUT /<pkg>/-rev/<rev>`: a publish when the document carries a tarball,
/// else a document update. The caller's right to write is checked before the body is read;
/// the body is read as it arrives, its tarball stored on the way.
pub async fn put_document(
    state: &AppState,
    caller: &Principal,
    workspace: &Slug,
    name: &PackageName,
    url_rev: Option<&str>,
    body: Body,
) -> NpmResult<(bool, Value)> {
    let registry = &state.registry;
    let open = registry
        .open_package(caller, workspace, PackageType::Npm, name, Role::Write, &[])
        .await?;
    let package_state = PackageState::load(registry, &open.package).await?;
    let known = package_state.versions.keys().cloned().collect();
    let (document, staged) = receive(state, workspace, known, body).await?;
    match staged {
        Some(staged) => {
            let published = publish(caller, &open, &package_state, &document, &staged);
            match published {
                Ok(mut publication) => {
                    if let Some(user) = caller.user() {
                        publication.published_by_email = registry.email_of(user).await?;
                    }
                    commit(registry, &open, publication, staged)
                        .await
                        .map(|value| (true, value))
                }
                Err(error) => {
                    registry.discard_staged(staged).await;
                    Err(error)
                }
            }
        }
        None => update(registry, caller, &open, &package_state, document, url_rev)
            .await
            .map(|value| (false, value)),
    }
}

/// Reads the document from the body and stores its tarball, if it has one, while it streams
/// in. Memory stays within a few pieces of the tarball and the bounded rest of the document.
async fn receive(
    state: &AppState,
    workspace: &Slug,
    known: BTreeSet<String>,
    body: Body,
) -> NpmResult<(Document, Option<StagedBlob>)> {
    let registry = &state.registry;
    let over_limit = Arc::new(AtomicBool::new(false));
    let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(capped(
        body,
        state.limits.max_body as u64,
        Arc::clone(&over_limit),
    )));
    let (sender, pieces) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(4);
    let parser = tokio::task::spawn_blocking(move || {
        let read = body::read_document(reader, &known, &mut |piece| {
            sender
                .blocking_send(Ok(piece))
                .map_err(|_| io::Error::other("the tarball's store went away"))
        });
        if let Err(error) = &read {
            // The tarball's store sees the body fail, and frees what it wrote.
            drop(sender.blocking_send(Err(io::Error::other(error.to_string()))));
        }
        read
    });
    let mut pieces = pieces;
    let staged = match pieces.recv().await {
        Some(Ok(first)) => {
            let rest = futures_util::stream::unfold(pieces, |mut pieces| async move {
                pieces.recv().await.map(|piece| (piece, pieces))
            });
            let tarball: ByteStream =
                Box::pin(futures_util::stream::once(async { Ok(first) }).chain(rest));
            Some(registry.stage_blob(workspace, tarball, None, true).await)
        }
        _ => None,
    };
    let read = parser
        .await
        .map_err(|join| Error::Corrupt(format!("the document reader stopped: {join}")))?;
    let document = match read {
        Ok(document) => document,
        Err(BodyError::Refused) => {
            return Err(match staged {
                Some(Err(error)) => error.into(),
                _ => Error::Corrupt("the tarball was refused for no reason".into()).into(),
            });
        }
        Err(error) => {
            if let Some(Ok(staged)) = staged {
                registry.discard_staged(staged).await;
            }
            return Err(body_error(state, error, over_limit.load(Ordering::Relaxed)));
        }
    };
    Ok((document, staged.transpose()?))
}

/// A request body that ends in an error past `limit` bytes, noting that it did.
fn capped(body: Body, limit: u64, over: Arc<AtomicBool>) -> ByteStream {
    let mut seen = 0u64;
    Box::pin(stowage_http::body_stream(body).map(move |piece| {
        let piece = piece?;
        seen += piece.len() as u64;
        if seen > limit {
            over.store(true, Ordering::Relaxed);
            return Err(io::Error::other("over the body limit"));
        }
        Ok(piece)
    }))
}

fn body_error(state: &AppState, error: BodyError, over_limit: bool) -> NpmError {
    if over_limit {
        return crate::too_large(state);
    }
    match error {
        BodyError::TooLarge => {
            NpmError::new(http::StatusCode::PAYLOAD_TOO_LARGE, error.to_string())
        }
        other => NpmError::bad_request(other.to_string()),
    }
}

/// What a publish carries, checked against its tarball as stored.
struct Publication {
    version: String,
    manifest: Map<String, Value>,
    tarball: Tarball,
    tags: Vec<String>,
    published_by: String,
    /// The publisher's e-mail, for `maintainers` (a pipeline has none).
    published_by_email: Option<String>,
}

fn publish(
    caller: &Principal,
    open: &OpenPackage,
    state: &PackageState,
    document: &Document,
    staged: &StagedBlob,
) -> NpmResult<Publication> {
    let name = &open.package.name;
    check_claimed_name(name, document.name.as_deref())?;
    let attachment = document
        .attachment
        .as_ref()
        .ok_or_else(|| NpmError::bad_request("a publish carries a tarball"))?;
    let Some((version, raw)) = &document.added else {
        return Err(match document.listed.keys().next() {
            Some(version) => published_already(version),
            None => NpmError::bad_request("a publish carries exactly one version"),
        });
    };
    check_version(version)?;
    if state.unpublished.contains_key(version) {
        return Err(used_before(version));
    }
    let manifest = version_manifest(name, version, raw)?;
    let tarball = check_tarball(name, version, &manifest, attachment, &staged.written)?;
    let sent_tags = document.dist_tags.as_ref().map_or(0, BTreeMap::len);
    if sent_tags > PUBLISH_TAGS_MAX {
        return Err(NpmError::bad_request(format!(
            "a publish sets at most {PUBLISH_TAGS_MAX} dist-tags, not {sent_tags}; add more with npm dist-tag"
        )));
    }
    let mut tags = Vec::new();
    for (tag, target) in document.dist_tags.iter().flatten() {
        check_tag(tag)?;
        if target != version {
            return Err(NpmError::bad_request(format!(
                "dist-tag {tag} must point at the version published"
            )));
        }
        tags.push(tag.clone());
    }
    if tags.is_empty() {
        tags.push("latest".to_owned());
    }
    Ok(Publication {
        version: version.clone(),
        manifest,
        tarball,
        tags,
        published_by: caller.display_name(),
        published_by_email: None,
    })
}

/// The manifest of a new version as it is kept: without its readme, within a record's size,
/// naming this package and version.
fn version_manifest(
    name: &PackageName,
    version: &str,
    raw: &[u8],
) -> NpmResult<Map<String, Value>> {
    let invalid = |error: serde_json::Error| {
        NpmError::bad_request(format!("version {version} is not a JSON object: {error}"))
    };
    let mut fields: BTreeMap<String, Box<RawValue>> =
        serde_json::from_slice(raw).map_err(invalid)?;
    for field in DROPPED_FIELDS {
        fields.remove(field);
    }
    let size: usize = fields.iter().map(|(k, v)| k.len() + v.get().len()).sum();
    if size > VERSION_RECORD_MAX {
        return Err(NpmError::new(
            http::StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "a version's manifest, without its readme, may hold at most {VERSION_RECORD_MAX} bytes"
            ),
        ));
    }
    let mut manifest = Map::new();
    for (field, value) in fields {
        manifest.insert(field, serde_json::from_str(value.get()).map_err(invalid)?);
    }
    for (field, expected) in [("name", name.as_str()), ("version", version)] {
        if manifest.get(field).and_then(Value::as_str) != Some(expected) {
            return Err(NpmError::bad_request(format!(
                "the version's {field} must be {expected:?}"
            )));
        }
    }
    Ok(manifest)
}

/// Checks the stored tarball against what the document says of it.
fn check_tarball(
    name: &PackageName,
    version: &str,
    manifest: &Map<String, Value>,
    attachment: &body::Attachment,
    written: &Written,
) -> NpmResult<Tarball> {
    // npm names the attachment after the full name (`@scope/name-1.0.0.tgz`); the download
    // file name drops the scope.
    let expected = [format!("{name}-{version}.tgz"), tarball_file(name, version)];
    if !expected.contains(&attachment.file) {
        return Err(NpmError::bad_request(format!(
            "the tarball is named {}, not {}",
            attachment.file, expected[0]
        )));
    }
    if let Some(length) = attachment.length
        && length != written.size
    {
        return Err(NpmError::bad_request(format!(
            "the tarball is {} bytes, not the {length} announced",
            written.size
        )));
    }
    let dist = manifest
        .get("dist")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            NpmError::bad_request("the version has no dist (shasum and integrity of its tarball)")
        })?;
    let checksums = written
        .checksums
        .as_ref()
        .ok_or_else(|| Error::Corrupt("a tarball was stored without its checksums".into()))?;
    let sha512 = hex::decode(&checksums.sha512)
        .map_err(|_| Error::Corrupt("a tarball's sha512 is not hex".into()))?;
    let integrity = format!("sha512-{}", STANDARD.encode(sha512));
    let claimed_shasum = dist.get("shasum").and_then(Value::as_str);
    let claimed_integrity = dist.get("integrity").and_then(Value::as_str);
    if claimed_shasum.is_none() && claimed_integrity.is_none() {
        return Err(NpmError::bad_request(
            "the version's dist needs shasum or integrity",
        ));
    }
    if claimed_shasum.is_some_and(|claimed| claimed != checksums.sha1) {
        return Err(NpmError::bad_request(
            "the tarball does not match dist.shasum",
        ));
    }
    if claimed_integrity.is_some_and(|claimed| claimed != integrity) {
        return Err(NpmError::bad_request(
            "the tarball does not match dist.integrity (sha512)",
        ));
    }
    Ok(Tarball {
        digest: stowage_domain::Digest::from_hex(
            stowage_domain::DigestAlgorithm::Sha256,
            &written.sha256,
        ),
        size: written.size,
        shasum: checksums.sha1.clone(),
        integrity,
        object_key: String::new(),
    })
}

/// Records a checked publication: the version (claimed only if it was never used), its tags
/// and its tarball's link, in one transaction.
async fn commit(
    registry: &Registry,
    open: &OpenPackage,
    publication: Publication,
    staged: StagedBlob,
) -> NpmResult<Value> {
    let now = registry.now();
    let version = publication.version.as_str();
    let extra = |_: &Written, link: &BlobLink, writes: &mut PackageWrites<'_>| {
        let record = NpmVersion {
            version: publication.version.clone(),
            published_at: now,
            published_by: publication.published_by.clone(),
            published_by_email: publication.published_by_email.clone(),
            manifest: publication.manifest.clone(),
            tarball: Tarball {
                object_key: link.object_key.clone(),
                ..publication.tarball.clone()
            },
        };
        writes
            .put_when::<NpmVersions>(version, &record, Condition::Absent)
            .require::<UnpublishedVersions>(version, Condition::Absent);
        for tag in &publication.tags {
            let target = DistTag {
                version: publication.version.clone(),
                updated_at: now,
            };
            writes.put::<DistTags>(tag, &target);
        }
    };
    let by = publication.published_by.clone();
    match registry
        .commit_staged(&open.package, staged, None, &by, extra)
        .await
    {
        Ok(_) => Ok(json!({ "ok": true, "id": open.package.name.as_str() })),
        // Another publish of this version won, or an unpublish retired it, meanwhile.
        Err(Error::Conflict(_)) => {
            let retired = registry
                .package_items(&open.package)
                .get::<UnpublishedVersions>(version)
                .await?;
            Err(match retired {
                Some(_) => used_before(version),
                None => published_already(version),
            })
        }
        Err(other) => Err(other.into()),
    }
}

/// A document update: deprecations, dist-tags and removed versions, applied only if the
/// document was read at the package's current revision.
async fn update(
    registry: &Registry,
    caller: &Principal,
    open: &OpenPackage,
    state: &PackageState,
    document: Document,
    url_rev: Option<&str>,
) -> NpmResult<Value> {
    let package = &open.package;
    check_claimed_name(&package.name, document.name.as_deref())?;
    if let Some((version, _)) = &document.added {
        return Err(NpmError::bad_request(format!(
            "version {version} is not in the package: a new version is published with its \
             tarball (npm publish)"
        )));
    }
    check_revision(state, document.rev.as_deref().or(url_rev))?;
    let removed: Vec<&String> = state
        .versions
        .keys()
        .filter(|version| !document.listed.contains_key(*version))
        .collect();
    if !removed.is_empty() && removed.len() == state.versions.len() {
        require_admin(open, "removing every version unpublishes the package")?;
    }
    let by = caller.display_name();
    let items = registry.package_items(package);
    let mut changes = items.writes(&by);
    for (version, deprecated) in &document.listed {
        let (record, item_version) = &state.versions[version];
        let wanted = deprecated.as_deref().filter(|message| !message.is_empty());
        if wanted == record.manifest.get("deprecated").and_then(Value::as_str) {
            continue;
        }
        let mut changed = record.clone();
        match wanted {
            Some(message) => changed.manifest.insert("deprecated".into(), json!(message)),
            None => changed.manifest.remove("deprecated"),
        };
        changes.put_when::<NpmVersions>(version, &changed, Condition::Version(*item_version));
    }
    let remaining: BTreeSet<&String> = document.listed.keys().collect();
    let wanted_tags = wanted_tags(state, document.dist_tags.as_ref(), &remaining)?;
    retag(registry, state, &wanted_tags, &mut changes);
    for version in removed {
        retire(registry, state, version, &by, &mut changes);
    }
    apply(changes).await?;
    let revision = PackageState::load(registry, package).await?.revision();
    Ok(json!({ "ok": true, "id": package.name.as_str(), "rev": revision }))
}

fn check_revision(state: &PackageState, sent: Option<&str>) -> NpmResult<()> {
    let current = state.revision();
    match sent {
        Some(sent) if sent == current => Ok(()),
        Some(_) => Err(NpmError::conflict(
            "the package changed since this document was read (its _rev is not the current \
             one): read it again and retry",
        )),
        None => Err(NpmError::conflict(
            "a document update carries the _rev it was read at",
        )),
    }
}

fn require_admin(open: &OpenPackage, what: &str) -> NpmResult<()> {
    if open.access.allows(Role::Admin) {
        return Ok(());
    }
    let refusal = open.access.refusal(
        Role::Admin,
        &open.package.workspace,
        &open.package.repository,
    );
    Err(Error::forbidden(format!("{what}: {refusal}")).into())
}

/// The dist-tags the package is to have: those the document sends (all of them, when it
/// sends any), or those it has; never one on a removed version (such a tag goes with it); and
/// always a `latest` while a version remains, so that an install of the bare name works.
fn wanted_tags(
    state: &PackageState,
    sent: Option<&BTreeMap<String, String>>,
    remaining: &BTreeSet<&String>,
) -> NpmResult<BTreeMap<String, String>> {
    let mut wanted = BTreeMap::new();
    match sent {
        Some(sent) => {
            for (tag, version) in sent {
                check_tag(tag)?;
                if remaining.contains(version) {
                    wanted.insert(tag.clone(), version.clone());
                } else if !state.versions.contains_key(version) {
                    return Err(NpmError::bad_request(format!(
                        "dist-tag {tag} points at {version}, which the package does not have"
                    )));
                }
            }
        }
        None => {
            for (tag, target) in &state.tags {
                if remaining.contains(&target.version) {
                    wanted.insert(tag.clone(), target.version.clone());
                }
            }
        }
    }
    if !wanted.contains_key("latest")
        && let Some(highest) = remaining
            .iter()
            .filter_map(|v| semver::Version::parse(v).ok())
            .max()
    {
        wanted.insert("latest".into(), highest.to_string());
    }
    Ok(wanted)
}

/// The writes that give the package `wanted` tags. A tag put on a version touches it, so an
/// unpublish of that version racing the tag fails rather than leave the tag dangling.
fn retag(
    registry: &Registry,
    state: &PackageState,
    wanted: &BTreeMap<String, String>,
    changes: &mut PackageWrites<'_>,
) {
    for tag in state.tags.keys().filter(|tag| !wanted.contains_key(*tag)) {
        changes.delete::<DistTags>(tag, Condition::None);
    }
    for (tag, version) in wanted {
        if state.tags.get(tag).is_some_and(|t| &t.version == version) {
            continue;
        }
        let target = DistTag {
            version: version.clone(),
            updated_at: registry.now(),
        };
        changes
            .put::<DistTags>(tag, &target)
            .touch::<NpmVersions>(version);
    }
}

/// The writes that unpublish one version: its record goes, on the condition that it is as
/// read, and its number is retired for good.
fn retire(
    registry: &Registry,
    state: &PackageState,
    version: &str,
    by: &str,
    changes: &mut PackageWrites<'_>,
) {
    let (record, item_version) = &state.versions[version];
    let retired = Unpublished {
        version: version.to_owned(),
        integrity: record.tarball.integrity.clone(),
        unpublished_at: registry.now(),
        unpublished_by: by.to_owned(),
    };
    changes
        .delete::<NpmVersions>(version, Condition::Version(*item_version))
        .put::<UnpublishedVersions>(version, &retired)
        .mark_for_collection();
}

/// Applies a change in transactions of the store's size (one, for any change npm makes; the
/// writes are one per record, a change taking the place of a mere touch); a lost race is a
/// conflict.
async fn apply(changes: PackageWrites<'_>) -> NpmResult<()> {
    changes
        .commit_in_batches()
        .await
        .map_err(|error| match error {
            CommitError::Lost => {
                NpmError::conflict("the package changed meanwhile; fetch it and try again")
            }
            CommitError::Failed(other) => other.into(),
        })
}

/// `DELETE /<pkg>/-rev/<rev>` (`npm unpublish pkg --force`): removes every version and tag
/// (admins only); the version numbers stay retired.
pub async fn unpublish_all(
    registry: &Registry,
    caller: &Principal,
    workspace: &Slug,
    name: &PackageName,
    rev: &str,
) -> NpmResult<Value> {
    let open = registry
        .open_package(caller, workspace, PackageType::Npm, name, Role::Write, &[])
        .await?;
    require_admin(&open, "unpublishing a whole package")?;
    let state = PackageState::load(registry, &open.package).await?;
    check_revision(&state, Some(rev))?;
    let by = caller.display_name();
    let items = registry.package_items(&open.package);
    let mut changes = items.writes(&by);
    for tag in state.tags.keys() {
        changes.delete::<DistTags>(tag, Condition::None);
    }
    for (version, (record, _)) in &state.versions {
        retire(registry, &state, version, &by, &mut changes);
        changes.delete::<BlobLinks>(record.tarball.digest.as_str(), Condition::None);
    }
    apply(changes).await?;
    Ok(json!({ "ok": true }))
}

/// `DELETE /<pkg>/-/<file>/-rev/<rev>`: the last step of `npm unpublish pkg@version`. The
/// version is gone already (the document update removed it); this drops its tarball, unless
/// another version has the same bytes. A client that skipped the update has the version
/// unpublished here.
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
    let state = PackageState::load(registry, &open.package).await?;
    let Some((record, _)) = state.versions.get(&version) else {
        return Ok(json!({ "ok": true }));
    };
    if state.versions.len() == 1 {
        require_admin(&open, "removing the last version unpublishes the package")?;
    }
    let by = caller.display_name();
    let items = registry.package_items(&open.package);
    let mut changes = items.writes(&by);
    let remaining: BTreeSet<&String> = state.versions.keys().filter(|v| **v != version).collect();
    let tags = wanted_tags(&state, None, &remaining)?;
    retag(registry, &state, &tags, &mut changes);
    retire(registry, &state, &version, &by, &mut changes);
    let shared = state
        .versions
        .iter()
        .any(|(v, (r, _))| *v != version && r.tarball.digest == record.tarball.digest);
    if !shared {
        changes.delete::<BlobLinks>(record.tarball.digest.as_str(), Condition::None);
    }
    apply(changes).await?;
    Ok(json!({ "ok": true }))
}
