//! Reading and deploying files, checksums and metadata.

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, ETAG, LAST_MODIFIED};
use http::{HeaderMap, Method, StatusCode};
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest as _, Sha256, Sha512};
use stowage_domain::{PackageName, PackageType, Principal, Role, Slug};
use stowage_http::{AppState, Finish, body_stream, handover, read_limited, redirect};
use stowage_service::{
    BlobLink, CommitError, Error, ItemKey, OpenPackage, Opened, PackageWrites, RecordKind,
    Registry, VersionRecord, Versions,
};
use stowage_storage::{Condition, MAX_TRANSACTION_WRITES};

use crate::cache::{DocumentId, MetadataCache};
use crate::error::{MavenError, MavenResult};
use crate::metadata::{self, UPLOADED_METADATA_MAX};
use crate::proxy;
use crate::records::{
    Files, MavenFile, Retired, RetiredVersions, Revision, Revisions, file_id, files_of_version,
};
use crate::route::{ChecksumKind, MavenPath, Target};
use crate::version::is_snapshot;

const CHECKSUM_BODY_MAX: usize = 1024;

fn content_type(file: &str) -> &'static str {
    match file.rsplit('.').next() {
        Some("jar" | "war" | "ear" | "aar") => "application/java-archive",
        Some("pom" | "xml") => "text/xml",
        Some("module" | "json") => "application/json",
        Some("asc" | "md5" | "sha1" | "sha256" | "sha512") => "text/plain",
        _ => "application/octet-stream",
    }
}

fn checksum_of(bytes: &[u8], kind: ChecksumKind) -> String {
    match kind {
        ChecksumKind::Md5 => hex::encode(Md5::digest(bytes)),
        ChecksumKind::Sha1 => hex::encode(Sha1::digest(bytes)),
        ChecksumKind::Sha256 => hex::encode(Sha256::digest(bytes)),
        ChecksumKind::Sha512 => hex::encode(Sha512::digest(bytes)),
    }
}

fn stored_checksum(file: &MavenFile, kind: ChecksumKind) -> &str {
    match kind {
        ChecksumKind::Md5 => &file.checksums.md5,
        ChecksumKind::Sha1 => &file.checksums.sha1,
        ChecksumKind::Sha256 => file.digest.hex(),
        ChecksumKind::Sha512 => &file.checksums.sha512,
    }
}

fn respond(status: StatusCode, content_type: &str, body: Bytes, method: &Method) -> Response {
    let length = body.len();
    let body = if *method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(body)
    };
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, content_type)
        .header(CONTENT_LENGTH, length)
        .finish(body)
}

fn created() -> Response {
    Response::builder()
        .status(StatusCode::CREATED)
        .finish(Body::empty())
}

async fn open(
    registry: &Registry,
    caller: &Principal,
    path: &MavenPath,
    needed: Role,
    extra: &[ItemKey],
) -> MavenResult<OpenPackage> {
    Ok(registry
        .open_package(
            caller,
            &path.workspace,
            PackageType::Maven,
            &path.package,
            needed,
            extra,
        )
        .await?)
}

/// Commits part of a version's deletion; a lost race is a conflict.
async fn commit_deletion(writes: PackageWrites<'_>) -> MavenResult<()> {
    writes.commit().await.map_err(|error| match error {
        CommitError::Lost => MavenError::new(
            StatusCode::CONFLICT,
            "the version changed meanwhile; try again",
        ),
        CommitError::Failed(other) => other.into(),
    })
}

/// The record `id` of kind `K` of the package a path names, to read with the package.
fn item<K: RecordKind>(path: &MavenPath, id: &str) -> ItemKey {
    ItemKey::in_package::<K>(&path.workspace, PackageType::Maven, &path.package, id)
}

/// The generated metadata a path names, or `None` when there is nothing to describe.
async fn generate_metadata(
    registry: &Registry,
    open: &OpenPackage,
    path: &MavenPath,
) -> MavenResult<Option<Vec<u8>>> {
    let items = registry.package_items(&open.package);
    Ok(match &path.target {
        Target::ArtifactMetadata => {
            let versions = items.all::<Versions<VersionRecord>>("").await?;
            let versions: Vec<VersionRecord> = versions.into_iter().map(|v| v.payload).collect();
            metadata::artifact(&path.group, &path.artifact, &versions)
        }
        Target::VersionMetadata { version } => {
            let files = items.all::<Files>(&files_of_version(version)).await?;
            let files: Vec<MavenFile> = files.into_iter().map(|f| f.payload).collect();
            metadata::snapshot(&path.group, &path.artifact, version, &files)
        }
        Target::File { .. } | Target::VersionFolder { .. } => None,
    })
}

/// The metadata a path names: the upstream's, for a package the workspace does not have or
/// has as a cached copy; else its own ([`own_metadata`]).
async fn metadata_document(
    state: &AppState,
    documents: &MetadataCache,
    caller: &Principal,
    path: &MavenPath,
) -> MavenResult<Bytes> {
    let registry = &state.registry;
    let revision_key = item::<Revisions>(path, "");
    let keys = std::slice::from_ref(&revision_key);
    let open = match registry
        .open_or_upstreams(
            caller,
            &path.workspace,
            PackageType::Maven,
            &path.package,
            keys,
        )
        .await?
    {
        Opened::Package(open) => open,
        Opened::Upstreams(upstreams) => match proxy::first_metadata(state, path, &upstreams).await?
        {
            Some(xml) => return Ok(xml),
            None => open(registry, caller, path, Role::Read, keys).await?,
        },
    };
    if proxy::is_proxied(&open.package) {
        return proxy::cached_metadata(state, &open.package, path).await;
    }
    own_metadata(registry, documents, &open, &revision_key, path).await
}

/// A package's own metadata: from the cache when generated at the package's current revision
/// (no further read), else generated and kept.
async fn own_metadata(
    registry: &Registry,
    documents: &MetadataCache,
    open: &OpenPackage,
    revision_key: &ItemKey,
    path: &MavenPath,
) -> MavenResult<Bytes> {
    let revision = open.record::<Revisions>(revision_key)?;
    let id = DocumentId {
        version: match &path.target {
            Target::VersionMetadata { version } => Some(version.clone()),
            _ => None,
        },
        package: format!("{}/{}", path.workspace, path.package),
    };
    if let Some(xml) = revision
        .as_ref()
        .and_then(|revision| documents.get(&id, revision))
    {
        return Ok(xml);
    }
    let xml = Bytes::from(
        generate_metadata(registry, open, path)
            .await?
            .ok_or_else(MavenError::not_found)?,
    );
    if let Some(revision) = &revision {
        documents.insert(id, revision, xml.clone());
    }
    Ok(xml)
}

/// GET or HEAD: metadata and checksums answered directly, files through a redirect.
pub async fn get(
    state: &AppState,
    documents: &MetadataCache,
    caller: &Principal,
    path: &MavenPath,
    requested: &str,
    method: &Method,
) -> MavenResult<Response> {
    let registry = &state.registry;
    if let Target::VersionFolder { .. } = &path.target {
        open(registry, caller, path, Role::Read, &[]).await?;
        return Err(MavenError::new(
            StatusCode::NOT_FOUND,
            "folders are not listed: ask for maven-metadata.xml or a file",
        ));
    }
    let Target::File { version, file } = &path.target else {
        let xml = metadata_document(state, documents, caller, path).await?;
        return Ok(match path.checksum {
            Some(kind) => respond(
                StatusCode::OK,
                "text/plain",
                checksum_of(&xml, kind).into(),
                method,
            ),
            None => respond(StatusCode::OK, "text/xml", xml, method),
        });
    };
    let file_key = item::<Files>(path, &file_id(version, file));
    let keys = std::slice::from_ref(&file_key);
    let opened = registry
        .open_or_upstreams(
            caller,
            &path.workspace,
            PackageType::Maven,
            &path.package,
            keys,
        )
        .await?;
    let missed = match &opened {
        Opened::Package(open) => {
            proxy::is_proxied(&open.package) && open.record::<Files>(&file_key)?.is_none()
        }
        Opened::Upstreams(_) => true,
    };
    if missed && handover::hands_over(&state.limits) {
        let root = format!("/maven/{}", path.workspace);
        let location = handover::location(registry, &root, caller, requested).await?;
        return Ok(redirect(&location).finish(Body::empty()));
    }
    let record = match opened {
        Opened::Package(open) => file_of(state, &open, &file_key, path).await?,
        Opened::Upstreams(upstreams) => match proxy::first_file(state, path, &upstreams).await? {
            Some(record) => record,
            None => {
                let open = open(registry, caller, path, Role::Read, keys).await?;
                file_of(state, &open, &file_key, path).await?
            }
        },
    };
    if let Some(kind) = path.checksum {
        return Ok(respond(
            StatusCode::OK,
            "text/plain",
            Bytes::copy_from_slice(stored_checksum(&record, kind).as_bytes()),
            method,
        ));
    }
    if *method == Method::HEAD {
        // Answered directly, never redirected: length and checksums, as Gradle asks for them.
        return Ok(Response::builder()
            .status(StatusCode::OK)
            .header(CONTENT_TYPE, content_type(file))
            .header(CONTENT_LENGTH, record.size)
            .header(ETAG, format!("\"{}\"", record.checksums.sha1))
            .header(
                LAST_MODIFIED,
                record
                    .uploaded_at
                    .format("%a, %d %b %Y %H:%M:%S GMT")
                    .to_string(),
            )
            .header("X-Checksum-Md5", &record.checksums.md5)
            .header("X-Checksum-Sha1", &record.checksums.sha1)
            .header("X-Checksum-Sha256", record.digest.hex())
            .finish(Body::empty()));
    }
    let url = registry
        .download_url(&record.object_key, content_type(file), Some(file))
        .await?;
    Ok(redirect(&url).finish(Body::empty()))
}

/// The record of the file a path names: stored, or for a cached package fetched from its
/// upstream.
async fn file_of(
    state: &AppState,
    open: &OpenPackage,
    file_key: &ItemKey,
    path: &MavenPath,
) -> MavenResult<MavenFile> {
    match open.record::<Files>(file_key)? {
        Some(record) => Ok(record),
        None if proxy::is_proxied(&open.package) => {
            proxy::cached_file(state, &open.package, path).await
        }
        None => Err(MavenError::not_found()),
    }
}

fn check_declared_length(state: &AppState, headers: &HeaderMap) -> MavenResult<()> {
    match state.limits.declared_over_platform_limit(headers) {
        Some(limit) => Err(MavenError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "this repository runs on AWS Lambda, which takes at most {limit} bytes per request: deploy files under that size here"
            ),
        )),
        None => Ok(()),
    }
}

/// PUT: a file (releases never change; snapshots may), a checksum (checked against the
/// file), or metadata (checked, then ignored for the records').
pub async fn put(
    state: &AppState,
    caller: &Principal,
    path: &MavenPath,
    headers: &HeaderMap,
    body: Body,
) -> MavenResult<Response> {
    let registry = &state.registry;
    if let Target::VersionFolder { .. } = &path.target {
        return Err(MavenError::bad_request(
            "a file goes in <group>/<artifactId>/<version>/<file>",
        ));
    }
    let Target::File { version, file } = &path.target else {
        let limit = if path.checksum.is_some() {
            CHECKSUM_BODY_MAX
        } else {
            UPLOADED_METADATA_MAX
        };
        open(registry, caller, path, Role::Write, &[]).await?;
        let bytes = read_limited(body, limit)
            .await
            .map_err(|_| MavenError::bad_request(format!("the body is over {limit} bytes")))?;
        if path.checksum.is_none() {
            metadata::check_uploaded(&bytes)?;
        }
        return Ok(created());
    };
    let file_key = item::<Files>(path, &file_id(version, file));
    if let Some(kind) = path.checksum {
        let open = open(
            registry,
            caller,
            path,
            Role::Write,
            std::slice::from_ref(&file_key),
        )
        .await?;
        let bytes = read_limited(body, CHECKSUM_BODY_MAX)
            .await
            .map_err(|_| MavenError::bad_request("a checksum file is a few bytes"))?;
        let sent = String::from_utf8_lossy(&bytes)
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let record = open.record::<Files>(&file_key)?.ok_or_else(|| {
            MavenError::new(
                StatusCode::NOT_FOUND,
                format!("{file} has not been deployed; deploy it before its checksum"),
            )
        })?;
        if sent != stored_checksum(&record, kind) {
            return Err(MavenError::bad_request(format!(
                "the checksum does not match {file}, which is left as it was"
            )));
        }
        return Ok(created());
    }
    check_declared_length(state, headers)?;
    let release = !is_snapshot(version);
    let open = open(
        registry,
        caller,
        path,
        Role::Write,
        std::slice::from_ref(&file_key),
    )
    .await?;
    let conflict = || {
        MavenError::new(
            StatusCode::CONFLICT,
            format!(
                "release {version} of {} is already deployed ({file}): releases never change; \
                 deploy a new version",
                open.package.name
            ),
        )
    };
    let retired = || {
        MavenError::new(
            StatusCode::CONFLICT,
            format!(
                "{version} is a deleted release: its coordinates are never deployed again \
                 (builds that resolved them would get other bytes); deploy a new version"
            ),
        )
    };
    if release && open.record::<Files>(&file_key)?.is_some() {
        return Err(conflict());
    }
    let now = registry.now();
    let by = caller.display_name();
    let id = file_id(version, file);
    let records =
        |written: &stowage_service::Written, link: &BlobLink, writes: &mut PackageWrites<'_>| {
            let record = MavenFile {
                file: file.clone(),
                version: version.clone(),
                size: written.size,
                digest: stowage_domain::Digest::from_hex(
                    stowage_domain::DigestAlgorithm::Sha256,
                    &written.sha256,
                ),
                checksums: written.checksums.clone().expect("asked for"),
                object_key: link.object_key.clone(),
                uploaded_at: now,
                uploaded_by: by.clone(),
            };
            let condition = if release {
                Condition::Absent
            } else {
                Condition::None
            };
            writes
                .put_when::<Files>(&id, &record, condition)
                .require::<RetiredVersions>(version, Condition::Absent)
                // Rewritten by every file of the version: a delete of the version that read it
                // before fails.
                .publish_version(version)
                .put::<Revisions>("", &Revision::fresh());
        };
    let stored = registry
        .store_file(
            &open.package,
            body_stream(body),
            state.limits.streamed_body_limit(),
            &by,
            records,
        )
        .await;
    match stored {
        Ok(_) => Ok(created()),
        Err(Error::Conflict(_)) => {
            let deleted = registry
                .package_items(&open.package)
                .get::<RetiredVersions>(version)
                .await?
                .is_some();
            Err(if deleted { retired() } else { conflict() })
        }
        Err(other) => Err(other.into()),
    }
}

/// `DELETE <artifact>/<version>/`: removes a version and its files (the write role).
pub async fn delete_version_folder(
    state: &AppState,
    caller: &Principal,
    path: &MavenPath,
) -> MavenResult<Response> {
    let Target::VersionFolder { version } = &path.target else {
        return Err(MavenError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "a DELETE takes a version's folder: <group>/<artifactId>/<version>/",
        ));
    };
    delete_version(
        &state.registry,
        caller,
        &path.workspace,
        &path.package,
        version,
    )
    .await?;
    Ok(Response::builder()
        .status(StatusCode::NO_CONTENT)
        .finish(Body::empty()))
}

/// Removes a version and its files (the write role). A release's coordinates stay retired; a
/// SNAPSHOT may be deployed again. The files' bytes are collected by the purge once nothing
/// uses them.
pub async fn delete_version(
    registry: &Registry,
    caller: &Principal,
    workspace: &Slug,
    package: &PackageName,
    version: &str,
) -> MavenResult<()> {
    let open = registry
        .open_package(
            caller,
            workspace,
            PackageType::Maven,
            package,
            Role::Write,
            &[],
        )
        .await?;
    let items = registry.package_items(&open.package);
    let files = items.all::<Files>(&files_of_version(version)).await?;
    let listed = items.get::<Versions<VersionRecord>>(version).await?;
    let (false, Some(listed)) = (files.is_empty(), listed) else {
        return Err(MavenError::not_found());
    };
    let by = caller.display_name();
    // The version goes in the last transaction, with as many of its files as fit there; the
    // files that do not fit go first: until the last commits the version is still listed,
    // and a retry finishes the delete.
    let last_share = MAX_TRANSACTION_WRITES - 4;
    let (early, last) = files.split_at(files.len().saturating_sub(last_share));
    for batch in early.chunks(MAX_TRANSACTION_WRITES) {
        let mut writes = items.writes(&by);
        for file in batch {
            writes.delete::<Files>(&file.id, Condition::Version(file.version));
        }
        commit_deletion(writes).await?;
    }
    let mut writes = items.writes(&by);
    for file in last {
        writes.delete::<Files>(&file.id, Condition::Version(file.version));
    }
    // Every deploy rewrites the version's record: one that lands meanwhile fails this.
    writes.delete::<Versions<VersionRecord>>(version, Condition::Version(listed.version));
    if !is_snapshot(version) {
        let retired = Retired {
            version: version.to_owned(),
            deleted_at: registry.now(),
            deleted_by: by.clone(),
        };
        writes.put::<RetiredVersions>(version, &retired);
    }
    writes
        .put::<Revisions>("", &Revision::fresh())
        .mark_for_collection();
    commit_deletion(writes).await
}
