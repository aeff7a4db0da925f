//! npm through upstreams: a name no package of the workspace has is looked up in the
//! upstreams of the repositories the caller may read, in their order. The first that has it
//! makes it a package of its repository (so its readers, and only they, see it), whose
//! document is the upstream's, kept as a blob and fetched again once older than the TTL
//! (a stale copy is served while the upstream fails). Its tarball URLs are rewritten to ours;
//! each tarball is fetched on its first request, checked against the document's
//! `dist.integrity`/`dist.shasum`, and from then on is a version like a published one.
//!
//! Concurrent first requests for one tarball make one upstream request
//! ([`stowage_service::Registry::fetch_once`]).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use futures_util::FutureExt;
use serde_json::{Map, Value};
use stowage_domain::{Digest, DigestAlgorithm, PackageName, PackageType, Slug};
use stowage_http::AppState;
use stowage_service::{
    BlobLink, Error, ItemKey, PackageRecord, PackageWrites, ReachableUpstream, UPSTREAM_COPY_MAX,
    UpstreamCopies, UpstreamCopy, Written,
};
use stowage_storage::Condition;
use stowage_upstream::{FetchError, UpstreamClient, credentials_for, first_copy, refreshed_copy};
use url::Url;

use crate::document::tarball_url;
use crate::error::{NpmError, NpmResult};
use crate::records::{NpmVersion, NpmVersions, Tarball};

/// The largest tarball taken from an upstream.
const TARBALL_MAX: u64 = 1024 * 1024 * 1024;
/// The id of a package's copy of its upstream document.
pub const DOCUMENT: &str = "document";
const JSON: &str = "application/json";

/// The document URL of `name` below an upstream's URL (a scoped name's `/` encoded, as npm
/// does).
fn document_url(upstream: &ReachableUpstream, name: &PackageName) -> NpmResult<Url> {
    let path = name.as_str().replacen('/', "%2f", 1);
    upstream
        .upstream
        .url
        .as_url()
        .join(&path)
        .map_err(|_| NpmError::not_found())
}

/// Fetches `name`'s document from `upstream`, checked to be one.
async fn fetch_document(
    state: &AppState,
    upstream: &ReachableUpstream,
    name: &PackageName,
) -> Result<Bytes, FetchError> {
    let url = document_url(upstream, name).map_err(|_| FetchError::NotFound)?;
    let bytes = UpstreamClient::of(&state.registry)
        .get_bytes(
            &url,
            credentials_for(upstream, &url),
            JSON,
            UPSTREAM_COPY_MAX,
        )
        .await?;
    let document: Value = serde_json::from_slice(&bytes)
        .map_err(|_| FetchError::Refused("the upstream's document is not JSON".into()))?;
    if document.get("name").and_then(Value::as_str) != Some(name.as_str())
        || !document.get("versions").is_some_and(Value::is_object)
    {
        return Err(FetchError::Refused(format!(
            "the upstream's answer is not the package document of {name}"
        )));
    }
    Ok(bytes)
}

/// The first request for a name the workspace does not have: the first upstream that has
/// it makes it a package. Answers the document's bytes, or `None` when another request made
/// the package meanwhile (the caller opens it again).
pub async fn first_document(
    state: &AppState,
    workspace: &Slug,
    name: &PackageName,
    upstreams: &[ReachableUpstream],
) -> NpmResult<Option<Bytes>> {
    let fetch = |upstream| fetch_document(state, upstream, name).boxed();
    Ok(first_copy(&state.registry, workspace, name, upstreams, DOCUMENT, fetch).await?)
}

/// The key of a cached package's document record, to read with the package.
pub fn document_key(workspace: &Slug, name: &PackageName) -> ItemKey {
    ItemKey::in_package::<UpstreamCopies>(workspace, PackageType::Npm, name, DOCUMENT)
}

/// A cached package's document: the copy, or a new one once the copy is older than the TTL.
/// While the upstream fails (or after it was removed), the copy is served as it stands.
pub async fn cached_document(
    state: &AppState,
    package: &PackageRecord,
    copy: Option<UpstreamCopy>,
) -> NpmResult<Bytes> {
    let name = &package.name;
    let fetch = |upstream: ReachableUpstream| {
        async move { fetch_document(state, &upstream, name).await }.boxed()
    };
    Ok(refreshed_copy(&state.registry, package, DOCUMENT, copy, fetch).await?)
}

/// The document as served: the upstream's, with its tarballs at our URLs.
pub fn rewritten(
    bytes: &[u8],
    base: &str,
    workspace: &Slug,
    name: &PackageName,
) -> NpmResult<Value> {
    let mut document: Value = serde_json::from_slice(bytes)
        .map_err(|_| Error::Corrupt(format!("the cached document of {name}")))?;
    if let Some(versions) = document.get_mut("versions").and_then(Value::as_object_mut) {
        for (version, manifest) in versions.iter_mut() {
            if let Some(dist) = manifest.get_mut("dist").and_then(Value::as_object_mut) {
                dist.insert(
                    "tarball".into(),
                    Value::String(tarball_url(base, workspace.as_str(), name, version)),
                );
            }
        }
    }
    Ok(document)
}

/// A version of a cached package that has no tarball yet: fetched from the URL its document
/// names (by one request, whoever else asks meanwhile), checked, stored, and recorded as a
/// version like a published one.
pub async fn fetch_tarball(
    state: &AppState,
    package: &PackageRecord,
    version: &str,
) -> NpmResult<NpmVersion> {
    let registry = &state.registry;
    let items = registry.package_items(package);
    let stored = || async {
        Ok::<_, NpmError>(
            items
                .get::<NpmVersions>(version)
                .await?
                .map(|found| found.payload),
        )
    };
    registry
        .fetch_once(package, version, stored, || {
            fetch_and_store(state, package, version)
        })
        .await
}

/// What the upstream document says of one version: its manifest and where its tarball is.
struct Advertised {
    manifest: Map<String, Value>,
    url: Url,
    integrity: Option<String>,
    shasum: Option<String>,
}

async fn advertised(
    state: &AppState,
    package: &PackageRecord,
    version: &str,
) -> NpmResult<Advertised> {
    let registry = &state.registry;
    let copy = registry
        .package_items(package)
        .get::<UpstreamCopies>(DOCUMENT)
        .await?
        .ok_or_else(NpmError::not_found)?
        .payload;
    let bytes = registry.read_upstream_copy(&copy).await?;
    let mut document: Value = serde_json::from_slice(&bytes)
        .map_err(|_| Error::Corrupt(format!("the cached document of {}", package.name)))?;
    let mut manifest = match document
        .get_mut("versions")
        .and_then(|versions| versions.get_mut(version))
        .map(Value::take)
    {
        Some(Value::Object(manifest)) => manifest,
        _ => return Err(NpmError::not_found()),
    };
    let dist = manifest
        .remove("dist")
        .and_then(|dist| match dist {
            Value::Object(dist) => Some(dist),
            _ => None,
        })
        .unwrap_or_default();
    let text = |field: &str| dist.get(field).and_then(Value::as_str).map(str::to_owned);
    let url = text("tarball")
        .and_then(|url| Url::parse(&url).ok())
        .ok_or_else(|| {
            NpmError::from(Error::from(FetchError::Refused(
                "the version names no tarball".into(),
            )))
        })?;
    manifest.remove("_attachments");
    Ok(Advertised {
        manifest,
        url,
        integrity: text("integrity"),
        shasum: text("shasum"),
    })
}

/// Whether the bytes written are those advertised: every hash of `integrity` we compute
/// (sha512, sha1) and `shasum` must match, and at least one must be there to check.
fn matches_advertised(written: &Written, advertised: &Advertised) -> Result<String, String> {
    let checksums = written
        .checksums
        .as_ref()
        .ok_or("the tarball was stored without its checksums")?;
    let sha512 = hex::decode(&checksums.sha512).map_err(|_| "sha512 is not hex")?;
    let sha1 = hex::decode(&checksums.sha1).map_err(|_| "sha1 is not hex")?;
    let ours = [
        ("sha512", format!("sha512-{}", STANDARD.encode(&sha512))),
        ("sha1", format!("sha1-{}", STANDARD.encode(&sha1))),
    ];
    let mut checked = 0;
    for entry in advertised
        .integrity
        .iter()
        .flat_map(|i| i.split_whitespace())
    {
        let Some((algorithm, _)) = entry.split_once('-') else {
            continue;
        };
        if let Some((_, computed)) = ours.iter().find(|(name, _)| *name == algorithm) {
            if computed != entry {
                return Err(format!(
                    "the tarball does not match its dist.integrity ({algorithm})"
                ));
            }
            checked += 1;
        }
    }
    if let Some(shasum) = &advertised.shasum {
        if !shasum.eq_ignore_ascii_case(&checksums.sha1) {
            return Err("the tarball does not match its dist.shasum".into());
        }
        checked += 1;
    }
    if checked == 0 {
        return Err("the upstream gives no checksum of the tarball to check it against".into());
    }
    Ok(ours[0].1.clone())
}

async fn fetch_and_store(
    state: &AppState,
    package: &PackageRecord,
    version: &str,
) -> NpmResult<NpmVersion> {
    let registry = &state.registry;
    let advertised = advertised(state, package, version).await?;
    let upstream = registry
        .upstream_of(package)
        .await?
        .ok_or_else(|| NpmError::not_found_with("this package's upstream was removed"))?;
    let fetched = UpstreamClient::of(&state.registry)
        .get(
            &advertised.url,
            credentials_for(&upstream, &advertised.url),
            "application/octet-stream",
        )
        .await
        .map_err(Error::from)?;
    if fetched
        .content_length
        .is_some_and(|length| length > TARBALL_MAX)
    {
        return Err(Error::from(FetchError::TooLarge(TARBALL_MAX)).into());
    }
    let staged = registry
        .stage_blob(&package.workspace, fetched.body, Some(TARBALL_MAX), true)
        .await?;
    let integrity = match matches_advertised(&staged.written, &advertised) {
        Ok(integrity) => integrity,
        Err(why) => {
            registry.discard_staged(staged).await;
            return Err(Error::Upstream(format!("refused from the upstream: {why}")).into());
        }
    };
    let now = registry.now();
    let record = |written: &Written, link: &BlobLink| NpmVersion {
        version: version.to_owned(),
        published_at: now,
        published_by: format!("upstream {}", upstream.upstream.url),
        published_by_email: None,
        manifest: advertised.manifest.clone(),
        tarball: Tarball {
            digest: Digest::from_hex(DigestAlgorithm::Sha256, &written.sha256),
            size: written.size,
            shasum: written
                .checksums
                .as_ref()
                .map(|checksums| checksums.sha1.clone())
                .unwrap_or_default(),
            integrity: integrity.clone(),
            object_key: link.object_key.clone(),
        },
    };
    let extra = |written: &Written, link: &BlobLink, writes: &mut PackageWrites<'_>| {
        writes.put_when::<NpmVersions>(version, &record(written, link), Condition::Absent);
    };
    let by = format!("upstream {}", upstream.upstream.url);
    match registry
        .commit_staged(package, staged, None, &by, extra)
        .await
    {
        Ok(_) => {}
        // Stored meanwhile by a request that took over a marker it thought abandoned.
        Err(Error::Conflict(_)) => {}
        Err(other) => return Err(other.into()),
    }
    registry
        .package_items(package)
        .get::<NpmVersions>(version)
        .await?
        .map(|found| found.payload)
        .ok_or_else(NpmError::not_found)
}
