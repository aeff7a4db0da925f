//! Reading and deploying files, checksums and metadata.

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, ETAG, LAST_MODIFIED};
use http::{HeaderMap, Method, StatusCode};
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest as _, Sha256, Sha512};
use stowage_domain::{PackageType, Principal, Role};
use stowage_http::{AppState, Finish, body_stream, read_limited, redirect};
use stowage_service::records::{BlobLink, VersionRecord, decode, encode, keys};
use stowage_service::{Error, OpenPackage, Registry};
use stowage_storage::{Condition, Key, Put, Query, Write};

use crate::cache::{DocumentId, MetadataCache};
use crate::error::{MavenError, MavenResult};
use crate::metadata::{self, UPLOADED_METADATA_MAX};
use crate::records::{self, MavenFile, Retired, Revision};
use crate::route::{ChecksumKind, MavenPath, Target};
use crate::version::is_snapshot;

const CHECKSUM_BODY_MAX: usize = 1024;
const PAGE: usize = 1000;

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
    extra: &[Key],
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

fn partition(path: &MavenPath) -> String {
    keys::package_partition(&path.workspace, PackageType::Maven, &path.package)
}

/// Every item of a partition under a sort-key prefix, a page at a time.
async fn query_all<T: serde::de::DeserializeOwned>(
    registry: &Registry,
    partition: &str,
    prefix: &str,
) -> MavenResult<Vec<T>> {
    let mut all = Vec::new();
    let mut query = Query::prefix(partition, prefix, PAGE);
    loop {
        let page = registry.metadata().query(&query).await?;
        for item in &page.items {
            all.push(decode(item)?);
        }
        match page.next {
            Some(cursor) => query = query.after(Some(cursor)),
            None => return Ok(all),
        }
    }
}

/// The generated metadata a path names, or `None` when there is nothing to describe.
async fn generate_metadata(
    registry: &Registry,
    path: &MavenPath,
    partition: &str,
) -> MavenResult<Option<Vec<u8>>> {
    Ok(match &path.target {
        Target::ArtifactMetadata => {
            let versions: Vec<VersionRecord> =
                query_all(registry, partition, keys::VERSION_PREFIX).await?;
            metadata::artifact(&path.group, &path.artifact, &versions)
        }
        Target::VersionMetadata { version } => {
            let files: Vec<MavenFile> =
                query_all(registry, partition, &records::files_of_version(version)).await?;
            metadata::snapshot(&path.group, &path.artifact, version, &files)
        }
        Target::File { .. } | Target::VersionFolder { .. } => None,
    })
}

/// The metadata a path names: from the cache when generated at the package's current
/// revision (no further read), else generated and kept.
async fn metadata_document(
    registry: &Registry,
    documents: &MetadataCache,
    caller: &Principal,
    path: &MavenPath,
    partition: String,
) -> MavenResult<Bytes> {
    let open = open(
        registry,
        caller,
        path,
        Role::Read,
        &[Revision::key(&partition)],
    )
    .await?;
    let revision: Option<Revision> = open.extra[0].as_ref().map(decode).transpose()?;
    let id = DocumentId {
        version: match &path.target {
            Target::VersionMetadata { version } => Some(version.clone()),
            _ => None,
        },
        partition,
    };
    if let Some(xml) = revision
        .as_ref()
        .and_then(|revision| documents.get(&id, revision))
    {
        return Ok(xml);
    }
    let xml = Bytes::from(
        generate_metadata(registry, path, &id.partition)
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
    method: &Method,
) -> MavenResult<Response> {
    let registry = &state.registry;
    let partition = partition(path);
    if let Target::VersionFolder { .. } = &path.target {
        open(registry, caller, path, Role::Read, &[]).await?;
        return Err(MavenError::new(
            StatusCode::NOT_FOUND,
            "folders are not listed: ask for maven-metadata.xml or a file",
        ));
    }
    let Target::File { version, file } = &path.target else {
        let xml = metadata_document(registry, documents, caller, path, partition).await?;
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
    let open = open(
        registry,
        caller,
        path,
        Role::Read,
        &[records::file(&partition, version, file)],
    )
    .await?;
    let record: MavenFile = decode(open.extra[0].as_ref().ok_or_else(MavenError::not_found)?)?;
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
    let partition = partition(path);
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
    let file_key = records::file(&partition, version, file);
    if let Some(kind) = path.checksum {
        let open = open(registry, caller, path, Role::Write, &[file_key]).await?;
        let bytes = read_limited(body, CHECKSUM_BODY_MAX)
            .await
            .map_err(|_| MavenError::bad_request("a checksum file is a few bytes"))?;
        let sent = String::from_utf8_lossy(&bytes)
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let record: MavenFile = decode(open.extra[0].as_ref().ok_or_else(|| {
            MavenError::new(
                StatusCode::NOT_FOUND,
                format!("{file} has not been deployed; deploy it before its checksum"),
            )
        })?)?;
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
    let retired_key = Retired::key(&partition, version);
    let conflict = || {
        MavenError::new(
            StatusCode::CONFLICT,
            format!("{file} is a release file and is already deployed: releases never change"),
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
    if release && open.extra[0].is_some() {
        return Err(conflict());
    }
    let now = registry.now();
    let by = caller.display_name();
    let records = |written: &stowage_service::Written, link: &BlobLink| {
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
        let version_record = VersionRecord {
            version: version.clone(),
            published_at: now,
            published_by: by.clone(),
        };
        vec![
            Write::Put(Put::new(file_key.clone(), encode(&record)).when(condition)),
            Write::Check {
                key: retired_key.clone(),
                condition: Condition::Absent,
            },
            // Touched by every file of the version: the management API lists the version.
            Write::Put(Put::new(
                keys::version(&partition, version),
                encode(&version_record),
            )),
            Write::Put(Put::new(
                Revision::key(&partition),
                encode(&Revision::fresh()),
            )),
        ]
    };
    let stored = registry
        .store_file(
            &open.package,
            body_stream(body),
            state.limits.streamed_body_limit(),
            records,
        )
        .await;
    match stored {
        Ok(_) => Ok(created()),
        Err(Error::Conflict(_)) => {
            let deleted = registry.metadata().get(&retired_key).await?.is_some();
            Err(if deleted { retired() } else { conflict() })
        }
        Err(other) => Err(other.into()),
    }
}

/// `DELETE <artifact>/<version>/`: removes a version and its files (the write role). A
/// release's coordinates stay retired; a SNAPSHOT may be deployed again. The files' bytes are
/// collected by the purge once nothing uses them.
pub async fn delete_version(
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
    let registry = &state.registry;
    let partition = partition(path);
    let open = open(registry, caller, path, Role::Write, &[]).await?;
    let mut query = Query::prefix(&partition, records::files_of_version(version), PAGE);
    let mut files = Vec::new();
    loop {
        let page = registry.metadata().query(&query).await?;
        files.extend(page.items);
        match page.next {
            Some(cursor) => query = query.after(Some(cursor)),
            None => break,
        }
    }
    let listed = registry
        .metadata()
        .get(&keys::version(&partition, version))
        .await?;
    let (false, Some(listed)) = (files.is_empty(), listed) else {
        return Err(MavenError::not_found());
    };
    let mut writes: Vec<Write> = files
        .iter()
        .map(|item| Write::Delete {
            key: item.key.clone(),
            condition: Condition::Version(item.version),
        })
        .collect();
    // Every deploy rewrites the version's record: one that lands meanwhile fails this.
    writes.push(Write::Delete {
        key: listed.key,
        condition: Condition::Version(listed.version),
    });
    if !is_snapshot(version) {
        let retired = Retired {
            version: version.clone(),
            deleted_at: registry.now(),
            deleted_by: caller.display_name(),
        };
        writes.push(Write::Put(Put::new(
            Retired::key(&partition, version),
            encode(&retired),
        )));
    }
    writes.push(Write::Put(Put::new(
        Revision::key(&partition),
        encode(&Revision::fresh()),
    )));
    writes.push(stowage_service::mark_for_collection(
        &open.package.workspace,
    ));
    // The retirement and the revision go with the last batch: until then the version is
    // still listed, and a retry finishes it.
    let batches: Vec<Vec<Write>> = writes
        .rchunks(stowage_storage::MAX_TRANSACTION_WRITES)
        .rev()
        .map(<[Write]>::to_vec)
        .collect();
    for batch in batches {
        registry
            .transact(batch)
            .await
            .map_err(|error| match error {
                stowage_storage::MetadataError::ConditionFailed { .. } => MavenError::new(
                    StatusCode::CONFLICT,
                    "the version changed meanwhile; try again",
                ),
                other => other.into(),
            })?;
    }
    Ok(Response::builder()
        .status(StatusCode::NO_CONTENT)
        .finish(Body::empty()))
}
