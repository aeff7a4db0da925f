//! Maven through upstreams: a path whose package the workspace does not have is fetched from
//! the upstreams of the repositories the caller may read, in their order; the first that has
//! it makes the package one of its repository. Files are fetched once (whoever else asks
//! meanwhile), checked against the upstream's `.sha1` and `.sha256` where it has them, and
//! kept for good: releases never change, and SNAPSHOT files are named by their build.
//! `maven-metadata.xml` is the upstream's, copied and fetched again once older than the TTL
//! (a stale copy is served while the upstream fails).

use bytes::Bytes;
use futures_util::FutureExt;
use stowage_domain::{Digest, DigestAlgorithm, PackageType};
use stowage_http::AppState;
use stowage_service::{
    BlobLink, Error, ItemKey, PackageRecord, PackageWrites, ReachableUpstream, Registry,
    StagedBlob, UPSTREAM_COPY_MAX, UpstreamCopies, Written,
};
use stowage_storage::Condition;
use stowage_upstream::{FetchError, UpstreamClient, credentials_for, first_copy, refreshed_copy};
use url::Url;

use crate::error::{MavenError, MavenResult};
use crate::records::{Files, MavenFile, file_id};
use crate::route::{MavenPath, Target};

/// The largest file taken from an upstream.
const FILE_MAX: u64 = 4 * 1024 * 1024 * 1024;
/// The largest checksum file taken from an upstream.
const CHECKSUM_MAX: u64 = 1024;

/// Where `path`'s target is below an upstream's URL.
fn upstream_url(upstream: &ReachableUpstream, path: &MavenPath) -> MavenResult<Url> {
    let artifact = format!("{}/{}", path.group.replace('.', "/"), path.artifact);
    let relative = match &path.target {
        Target::File { version, file } => format!("{artifact}/{version}/{file}"),
        Target::ArtifactMetadata => format!("{artifact}/maven-metadata.xml"),
        Target::VersionMetadata { version } => format!("{artifact}/{version}/maven-metadata.xml"),
        Target::VersionFolder { .. } => return Err(MavenError::not_found()),
    };
    upstream
        .upstream
        .url
        .as_url()
        .join(&relative)
        .map_err(|_| MavenError::not_found())
}

/// The id of a cached package's copy of the metadata `path` names.
fn copy_id(path: &MavenPath) -> String {
    match &path.target {
        Target::VersionMetadata { version } => format!("metadata/{version}"),
        _ => "metadata".to_owned(),
    }
}

/// A checksum the upstream gives for the file at `url` (`None` when it has none).
async fn checksum(
    state: &AppState,
    upstream: &ReachableUpstream,
    url: &Url,
    extension: &str,
) -> Result<Option<String>, FetchError> {
    let url = Url::parse(&format!("{url}.{extension}"))
        .map_err(|_| FetchError::Refused("not a URL".into()))?;
    match UpstreamClient::of(&state.registry)
        .get_bytes(
            &url,
            credentials_for(upstream, &url),
            "text/plain",
            CHECKSUM_MAX,
        )
        .await
    {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes)
            .split_whitespace()
            .next()
            .map(str::to_ascii_lowercase)),
        Err(FetchError::NotFound) => Ok(None),
        Err(other) => Err(other),
    }
}

/// The file at `url`, streamed into the workspace's storage and checked against the
/// upstream's checksums; `None` when the upstream does not have it. Nothing is kept of a file
/// that does not match.
async fn fetch_file(
    state: &AppState,
    upstream: &ReachableUpstream,
    path: &MavenPath,
) -> MavenResult<Option<StagedBlob>> {
    let registry = &state.registry;
    let url = upstream_url(upstream, path)?;
    let sha1 = checksum(state, upstream, &url, "sha1")
        .await
        .map_err(Error::from)?;
    let sha256 = checksum(state, upstream, &url, "sha256")
        .await
        .map_err(Error::from)?;
    let fetched = match UpstreamClient::of(&state.registry)
        .get(&url, credentials_for(upstream, &url), "*/*")
        .await
    {
        Ok(fetched) => fetched,
        Err(FetchError::NotFound) => return Ok(None),
        Err(other) => return Err(Error::from(other).into()),
    };
    if fetched
        .content_length
        .is_some_and(|length| length > FILE_MAX)
    {
        return Err(Error::from(FetchError::TooLarge(FILE_MAX)).into());
    }
    let staged = registry
        .stage_blob(&path.workspace, fetched.body, Some(FILE_MAX), true)
        .await?;
    let computed_sha1 = staged
        .written
        .checksums
        .as_ref()
        .map(|checksums| checksums.sha1.clone());
    let mismatch = if sha1.is_some() && sha1 != computed_sha1 {
        Some("sha1")
    } else if sha256
        .as_ref()
        .is_some_and(|sha256| *sha256 != staged.written.sha256)
    {
        Some("sha256")
    } else {
        None
    };
    if let Some(kind) = mismatch {
        registry.discard_staged(staged).await;
        return Err(Error::Upstream(format!(
            "refused from the upstream: the file does not match its .{kind}"
        ))
        .into());
    }
    Ok(Some(staged))
}

/// Records a fetched file in a cached package, as a version's file like a deployed one.
async fn commit_file(
    registry: &Registry,
    package: &PackageRecord,
    staged: StagedBlob,
    version: &str,
    file: &str,
) -> MavenResult<MavenFile> {
    let now = registry.now();
    let by = format!("upstream of {}", package.repository);
    let id = file_id(version, file);
    let records = |written: &Written, link: &BlobLink, writes: &mut PackageWrites<'_>| {
        let record = MavenFile {
            file: file.to_owned(),
            version: version.to_owned(),
            size: written.size,
            digest: Digest::from_hex(DigestAlgorithm::Sha256, &written.sha256),
            checksums: written.checksums.clone().expect("asked for"),
            object_key: link.object_key.clone(),
            uploaded_at: now,
            uploaded_by: by.clone(),
        };
        writes
            .put_when::<Files>(&id, &record, Condition::Absent)
            .publish_version(version);
    };
    match registry
        .commit_staged(package, staged, None, &by, records)
        .await
    {
        // Another request stored it meanwhile (it took over a marker it thought abandoned).
        Ok(_) | Err(Error::Conflict(_)) => {}
        Err(other) => return Err(other.into()),
    }
    registry
        .package_items(package)
        .get::<Files>(&id)
        .await?
        .map(|record| record.payload)
        .ok_or_else(MavenError::not_found)
}

/// A file of a cached package that is not stored yet: fetched from its upstream by one
/// request, whoever else asks meanwhile.
pub async fn cached_file(
    state: &AppState,
    package: &PackageRecord,
    path: &MavenPath,
) -> MavenResult<MavenFile> {
    let Target::File { version, file } = &path.target else {
        return Err(MavenError::not_found());
    };
    let registry = &state.registry;
    let items = registry.package_items(package);
    let id = file_id(version, file);
    let stored = || async {
        Ok::<_, MavenError>(items.get::<Files>(&id).await?.map(|record| record.payload))
    };
    let fetch = || async {
        let upstream = registry
            .upstream_of(package)
            .await?
            .ok_or_else(MavenError::not_found)?;
        let staged = fetch_file(state, &upstream, path)
            .await?
            .ok_or_else(MavenError::not_found)?;
        commit_file(registry, package, staged, version, file).await
    };
    registry.fetch_once(package, &id, stored, fetch).await
}

/// The first request for a file of a package the workspace does not have: the first upstream
/// that has the file makes the package. `None` when another request made it meanwhile (the
/// caller opens it again). Concurrent first requests make one fetch: the others wait for it.
pub async fn first_file(
    state: &AppState,
    path: &MavenPath,
    upstreams: &[ReachableUpstream],
) -> MavenResult<Option<MavenFile>> {
    let Target::File { version, file } = &path.target else {
        return Err(MavenError::not_found());
    };
    let registry = &state.registry;
    let id = file_id(version, file);
    let evidence =
        ItemKey::in_package::<Files>(&path.workspace, PackageType::Maven, &path.package, &id);
    let made = || async {
        let made = registry
            .made_meanwhile(
                &path.workspace,
                PackageType::Maven,
                &path.package,
                &evidence,
            )
            .await?;
        Ok::<_, MavenError>(made.then_some(None))
    };
    let first = || async {
        for upstream in upstreams {
            let Some(staged) = fetch_file(state, upstream, path).await? else {
                continue;
            };
            let Some(package) = registry
                .create_proxied_package(&path.workspace, &upstream.upstream, &path.package)
                .await?
            else {
                registry.discard_staged(staged).await;
                return Ok(None);
            };
            return commit_file(registry, &package, staged, version, file)
                .await
                .map(Some);
        }
        Err(MavenError::not_found())
    };
    registry
        .fetch_first_once(
            &path.workspace,
            PackageType::Maven,
            &path.package,
            &id,
            made,
            first,
        )
        .await
}

/// The upstream's metadata a path names, for a cached package: the copy, or a new one once
/// the copy is older than the TTL (the copy while the upstream fails).
pub async fn cached_metadata(
    state: &AppState,
    package: &PackageRecord,
    path: &MavenPath,
) -> MavenResult<Bytes> {
    let registry = &state.registry;
    let id = copy_id(path);
    let copy = registry
        .package_items(package)
        .get::<UpstreamCopies>(&id)
        .await?
        .map(|record| record.payload);
    let fetch = |upstream: ReachableUpstream| {
        async move { fetch_metadata(state, &upstream, path).await }.boxed()
    };
    Ok(refreshed_copy(registry, package, &id, copy, fetch).await?)
}

/// The first request for metadata of a package the workspace does not have: the first
/// upstream that has it makes the package. `None` when another request made it meanwhile.
pub async fn first_metadata(
    state: &AppState,
    path: &MavenPath,
    upstreams: &[ReachableUpstream],
) -> MavenResult<Option<Bytes>> {
    let fetch = |upstream| fetch_metadata(state, upstream, path).boxed();
    let (workspace, name) = (&path.workspace, &path.package);
    Ok(first_copy(
        &state.registry,
        workspace,
        name,
        upstreams,
        &copy_id(path),
        fetch,
    )
    .await?)
}

async fn fetch_metadata(
    state: &AppState,
    upstream: &ReachableUpstream,
    path: &MavenPath,
) -> Result<Bytes, FetchError> {
    let url = upstream_url(upstream, path).map_err(|_| FetchError::NotFound)?;
    let bytes = UpstreamClient::of(&state.registry)
        .get_bytes(
            &url,
            credentials_for(upstream, &url),
            "text/xml",
            UPSTREAM_COPY_MAX,
        )
        .await?;
    crate::metadata::check_uploaded(&bytes)
        .map_err(|_| FetchError::Refused("the upstream's maven-metadata.xml is not XML".into()))?;
    Ok(bytes)
}

/// Whether a package is a cached copy of an upstream's.
pub fn is_proxied(package: &PackageRecord) -> bool {
    package.kind == PackageType::Maven && package.upstream.is_some()
}
