//! Images through upstreams. A name the workspace has no image of, `<repo>/<path>`, is looked
//! up as `<path>` in the container upstreams of repository `<repo>` that the caller may read
//! ([`crate::auth::Caller::open_or_upstreams`]); the first that has its manifest makes it a
//! package of `<repo>`, so its readers, and only they, see it.
//!
//! - Manifests by tag are fetched again once older than the TTL (the stale one is served
//!   while the upstream fails); by digest they are kept for good. Either is checked like a
//!   pushed one, and by digest against its digest.
//! - Blobs are fetched on their first pull (one upstream request however many pulls miss it
//!   at once: [`stowage_service::Registry::fetch_once_held`]), checked against their digest as
//!   they pass, and streamed to the client while they are stored. A Lambda answers only once
//!   it has a whole body, of 6 MB at most, and has 29 s: with an upload service, the Lambda
//!   hands the miss over to it ([`stowage_http::handover`]), which streams it; without one, the Lambda stores the blob first and then serves it from
//!   storage. A blob the workspace already holds (a base layer shared with another image) is
//!   linked without a fetch.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use futures_util::{StreamExt, stream};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{Method, StatusCode};
use sha2::{Digest as _, Sha256, Sha512};
use stowage_domain::{Digest, DigestAlgorithm, PackageType};
use stowage_http::{AppState, Finish, handover, redirect};
use stowage_service::{
    BlobLink, BlobLinks, Error, FetchMarker, PackageRecord, ReachableUpstream, Registry,
};
use stowage_storage::ByteStream;
use stowage_upstream::{FetchError, UpstreamClient};
use url::Url;

use crate::auth::Caller;
use crate::blobs;
use crate::error::{OciError, OciResult};
use crate::manifests::{self, MANIFEST_MAX, NewManifest, digest_of};
use crate::records::{ManifestRecord, Manifests, Tags};
use crate::route::{ImageName, Reference};

/// What the proxy asks an upstream for a manifest: any kind it can keep.
const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.docker.distribution.manifest.v2+json";
/// The largest blob taken from an upstream.
const BLOB_MAX: u64 = 16 * 1024 * 1024 * 1024;
const BINARY: &str = "application/octet-stream";

/// `url` of an upstream registry below its API root: `https://host` and `https://host/v2/`
/// both name the registry at `https://host`.
fn registry_url(upstream: &ReachableUpstream, path: &str) -> Result<Url, FetchError> {
    let base = upstream.upstream.url.as_str().trim_end_matches('/');
    let base = base.strip_suffix("/v2").unwrap_or(base);
    Url::parse(&format!("{base}/v2/{path}"))
        .map_err(|_| FetchError::Refused(format!("{path} makes no URL of the upstream")))
}

/// The image's name at its upstream.
fn upstream_name(name: &ImageName) -> OciResult<&str> {
    name.upstream_image()
        .map(|(_, path)| path)
        .ok_or_else(OciError::name_unknown)
}

/// A manifest as fetched from an upstream.
struct Fetched {
    bytes: Bytes,
    content_type: Option<String>,
    digest: Digest,
}

/// Fetches manifest `reference` of `image` from `upstream`; by digest, it must have it.
async fn fetch_manifest(
    registry: &Registry,
    upstream: &ReachableUpstream,
    image: &str,
    reference: &Reference,
) -> Result<Fetched, FetchError> {
    let url = registry_url(upstream, &format!("{image}/manifests/{reference}"))?;
    let fetched = UpstreamClient::of(registry)
        .get_from_registry(upstream, image, &url, MANIFEST_TYPES)
        .await?;
    let content_type = fetched.content_type.clone();
    let bytes = fetched.bytes(MANIFEST_MAX as u64).await?;
    let digest = match reference {
        Reference::Digest(expected) => {
            let actual = digest_of(&bytes, expected.algorithm());
            if &actual != expected {
                return Err(FetchError::Refused(format!(
                    "the upstream's manifest {expected} has the digest {actual}"
                )));
            }
            actual
        }
        _ => digest_of(&bytes, DigestAlgorithm::Sha256),
    };
    Ok(Fetched {
        bytes,
        content_type,
        digest,
    })
}

/// Keeps a fetched manifest in a cached package, tagged when fetched by tag.
async fn keep_manifest(
    registry: &Registry,
    package: &PackageRecord,
    upstream: &ReachableUpstream,
    reference: &Reference,
    fetched: Fetched,
) -> OciResult<(ManifestRecord, Bytes)> {
    let tag = match reference {
        Reference::Tag(tag) => Some(tag.as_str()),
        _ => None,
    };
    let bytes = fetched.bytes.clone();
    let manifest = NewManifest::parse(
        &fetched.digest,
        fetched.bytes,
        fetched.content_type.as_deref(),
        tag,
    )
    .map_err(|invalid| {
        Error::Upstream(format!("refused from the upstream: {}", invalid.message))
    })?;
    let by = format!("upstream {}", upstream.upstream.url);
    let record = manifests::record_manifest(
        registry,
        package,
        &by,
        manifest,
        manifests::Blobs::FetchedLater,
    )
    .await?;
    Ok((record, bytes))
}

/// The first pull of an image the workspace does not have: the first upstream that has the
/// manifest makes the image a package of its repository. `None` when another request made
/// the package meanwhile (the caller opens it again). Concurrent first pulls make one fetch:
/// the others wait for it.
pub async fn first_manifest(
    registry: &Registry,
    name: &ImageName,
    reference: &Reference,
    upstreams: &[ReachableUpstream],
) -> OciResult<Option<(ManifestRecord, Bytes)>> {
    let image = upstream_name(name)?;
    let evidence = match reference {
        Reference::Digest(digest) => name.item::<Manifests>(digest.as_str()),
        _ => name.item::<Tags>(&reference.to_string()),
    };
    let made = || async {
        let made = registry
            .made_meanwhile(
                &name.workspace,
                PackageType::Container,
                &name.path,
                &evidence,
            )
            .await?;
        Ok::<_, OciError>(made.then_some(None))
    };
    let first = || async {
        let mut failure = FetchError::NotFound;
        for upstream in upstreams {
            let fetched = match fetch_manifest(registry, upstream, image, reference).await {
                Ok(fetched) => fetched,
                Err(FetchError::NotFound) => continue,
                Err(other) => {
                    tracing::warn!(upstream = %upstream.upstream.url, error = %other, "upstream failed");
                    failure = other;
                    continue;
                }
            };
            let Some(package) = registry
                .create_proxied_package(&name.workspace, &upstream.upstream, &name.path)
                .await?
            else {
                return Ok(None);
            };
            return keep_manifest(registry, &package, upstream, reference, fetched)
                .await
                .map(Some);
        }
        Err(manifest_error(failure, reference))
    };
    let object = format!("manifest:{reference}");
    registry
        .fetch_first_once(
            &name.workspace,
            PackageType::Container,
            &name.path,
            &object,
            made,
            first,
        )
        .await
}

/// A cached image's manifest that is missing, or whose tag is older than the TTL (`stale`: the
/// caller has one to serve): fetched from its upstream. `None` when the upstream cannot give
/// it (failing, removed, or no longer having it) or, for a stale one, while another request
/// refreshes it: the caller serves what it has. A missing one is fetched by one request
/// however many miss it at once; the others wait for it.
pub async fn refreshed_manifest(
    registry: &Registry,
    package: &PackageRecord,
    name: &ImageName,
    reference: &Reference,
    stale: bool,
) -> OciResult<Option<(ManifestRecord, Bytes)>> {
    let object = format!("manifest:{reference}");
    let fetch = || async {
        let Some(upstream) = registry.upstream_of(package).await? else {
            return Ok(None);
        };
        let image = upstream_name(name)?;
        match fetch_manifest(registry, &upstream, image, reference).await {
            Ok(fetched) => keep_manifest(registry, package, &upstream, reference, fetched)
                .await
                .map(Some),
            Err(error) => {
                tracing::warn!(image = %name.full(), %error, "upstream failed; serving what is cached");
                Ok(None)
            }
        }
    };
    if stale {
        let Some(marker) = registry.try_fetch(package, &object).await? else {
            return Ok(None);
        };
        let refreshed = fetch().await;
        registry.release_fetch(marker).await;
        return refreshed;
    }
    let stored = || async {
        manifests::fresh_manifest(registry, package, reference)
            .await
            .map(|found| found.map(Some))
    };
    registry.fetch_once(package, &object, stored, fetch).await
}

fn manifest_error(error: FetchError, reference: &Reference) -> OciError {
    match error {
        FetchError::NotFound => OciError::manifest_unknown(&reference.to_string()),
        other => Error::from(other).into(),
    }
}

/// A blob of a cached image that its package has no link to: linked at once when the
/// workspace holds it already, else fetched from the upstream, once.
pub async fn missing_blob(
    state: &AppState,
    caller: &Caller,
    package: &PackageRecord,
    name: &ImageName,
    digest: &Digest,
    method: &Method,
) -> OciResult<Response> {
    let registry = &state.registry;
    match registry.link_blob(package, digest).await {
        Ok(link) => return blobs::answer(registry, digest, &link, method).await,
        Err(Error::NotFound(_)) => {}
        Err(other) => return Err(other.into()),
    }
    if handover::hands_over(&state.limits) {
        // A Lambda has 29 s; the upload service streams the blob to the client and to
        // storage however long that takes.
        let root = format!("/v2/{}", name.workspace);
        let path = format!("/v2/{}/blobs/{digest}", name.full());
        let location = handover::location(registry, &root, &caller.principal, &path).await?;
        return Ok(redirect(&location).finish(Body::empty()));
    }
    let items = registry.package_items(package);
    let stored = || async {
        match items.get::<BlobLinks>(digest.as_str()).await? {
            Some(link) => blobs::answer(registry, digest, &link.payload, method)
                .await
                .map(Some),
            None => Ok(None),
        }
    };
    registry
        .fetch_once_held(package, &format!("blob:{digest}"), stored, |marker| {
            fetch_blob(state, package, name, digest, method, marker)
        })
        .await
}

/// Fetches a blob from the package's upstream into storage, streaming it to the client as it
/// passes (after storing it, on a Lambda).
async fn fetch_blob(
    state: &AppState,
    package: &PackageRecord,
    name: &ImageName,
    digest: &Digest,
    method: &Method,
    marker: FetchMarker,
) -> OciResult<Response> {
    let registry = state.registry.clone();
    let fetched = match start_blob(&registry, package, name, digest).await {
        Ok(fetched) => fetched,
        Err(error) => {
            registry.release_fetch(marker).await;
            return Err(error);
        }
    };
    let size = fetched.content_length;
    let mismatch = Arc::new(AtomicBool::new(false));
    let checked = checked_against(fetched.body, digest.clone(), mismatch.clone());
    let (to_client, for_client) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(8);
    let teed: ByteStream = checked
        .then(move |chunk| {
            let to_client = to_client.clone();
            async move {
                let copy = match &chunk {
                    Ok(bytes) => Ok(bytes.clone()),
                    Err(error) => Err(std::io::Error::other(error.to_string())),
                };
                // A client that went away leaves the rest to the store.
                let _ = to_client.send(copy).await;
                chunk
            }
        })
        .boxed();
    let store = {
        let registry = registry.clone();
        let package = package.clone();
        let digest = digest.clone();
        async move {
            let stored = store_blob(&registry, &package, teed, &digest, &mismatch);
            let stored = registry.renewing(&marker, stored).await;
            if let Err(error) = &stored {
                tracing::warn!(%digest, error = %error.message, "a blob from an upstream was not stored");
            }
            registry.release_fetch(marker).await;
            stored
        }
    };
    if state.limits.platform_limited {
        drop(for_client);
        let link = store.await?;
        return blobs::answer(&registry, digest, &link, method).await;
    }
    tokio::spawn(store);
    let mut response = Response::builder()
        .status(StatusCode::OK)
        .header("Docker-Content-Digest", digest.as_str())
        .header(CONTENT_TYPE, BINARY);
    if let Some(size) = size {
        response = response.header(CONTENT_LENGTH, size);
    }
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        let chunks = stream::unfold(for_client, |mut chunks| async move {
            chunks.recv().await.map(|chunk| (chunk, chunks))
        });
        Body::from_stream(chunks)
    };
    Ok(response.finish(body))
}

/// Opens the blob's download from the package's upstream.
async fn start_blob(
    registry: &Registry,
    package: &PackageRecord,
    name: &ImageName,
    digest: &Digest,
) -> OciResult<stowage_upstream::Fetched> {
    let upstream = registry
        .upstream_of(package)
        .await?
        .ok_or_else(|| OciError::blob_unknown(digest.as_str()))?;
    let image = upstream_name(name)?;
    let url = registry_url(&upstream, &format!("{image}/blobs/{digest}")).map_err(Error::from)?;
    let fetched = UpstreamClient::of(registry)
        .get_from_registry(&upstream, image, &url, BINARY)
        .await
        .map_err(|error| match error {
            FetchError::NotFound => OciError::blob_unknown(digest.as_str()),
            other => Error::from(other).into(),
        })?;
    if fetched.content_length.is_some_and(|size| size > BLOB_MAX) {
        return Err(Error::from(FetchError::TooLarge(BLOB_MAX)).into());
    }
    Ok(fetched)
}

async fn store_blob(
    registry: &Registry,
    package: &PackageRecord,
    body: ByteStream,
    digest: &Digest,
    mismatch: &AtomicBool,
) -> OciResult<BlobLink> {
    let refused = || {
        OciError::from(Error::Upstream(format!(
            "refused from the upstream: its blob {digest} does not match its digest"
        )))
    };
    let staged = match registry
        .stage_blob(&package.workspace, body, Some(BLOB_MAX), false)
        .await
    {
        Ok(staged) => staged,
        Err(_) if mismatch.load(Ordering::SeqCst) => return Err(refused()),
        Err(other) => return Err(other.into()),
    };
    let by = "upstream";
    match registry
        .commit_staged(package, staged, Some(digest), by, |_, _, _| {})
        .await
    {
        Ok((link, _)) => Ok(link),
        Err(Error::DigestMismatch { .. }) => Err(refused()),
        Err(other) => Err(other.into()),
    }
}

/// `body`, checked against `digest` as it passes. Its last chunk is held back until the whole
/// is checked, so that neither the client nor the store ever sees all of a blob that is not
/// the one asked for: the stream ends with an error instead (and `mismatch` is set).
fn checked_against(body: ByteStream, digest: Digest, mismatch: Arc<AtomicBool>) -> ByteStream {
    struct Check {
        body: ByteStream,
        hasher: Hasher,
        held: Option<Bytes>,
        digest: Digest,
        mismatch: Arc<AtomicBool>,
        over: bool,
    }
    let check = Check {
        body,
        hasher: Hasher::new(digest.algorithm()),
        held: None,
        digest,
        mismatch,
        over: false,
    };
    stream::unfold(check, |mut check| async move {
        if check.over {
            return None;
        }
        loop {
            match check.body.next().await {
                Some(Ok(chunk)) => {
                    check.hasher.update(&chunk);
                    if let Some(previous) = check.held.replace(chunk) {
                        return Some((Ok(previous), check));
                    }
                }
                Some(Err(error)) => {
                    check.over = true;
                    return Some((Err(error), check));
                }
                None => {
                    check.over = true;
                    if check.hasher.finish() == check.digest.hex() {
                        return check.held.take().map(|last| (Ok(last), check));
                    }
                    check.mismatch.store(true, Ordering::SeqCst);
                    let error = std::io::Error::other(format!(
                        "the upstream's blob does not match its digest {}",
                        check.digest
                    ));
                    return Some((Err(error), check));
                }
            }
        }
    })
    .boxed()
}

enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Hasher {
    fn new(algorithm: DigestAlgorithm) -> Self {
        match algorithm {
            DigestAlgorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            DigestAlgorithm::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(hasher) => hasher.update(bytes),
            Hasher::Sha512(hasher) => hasher.update(bytes),
        }
    }

    fn finish(&mut self) -> String {
        match self {
            Hasher::Sha256(hasher) => hex::encode(hasher.finalize_reset()),
            Hasher::Sha512(hasher) => hex::encode(hasher.finalize_reset()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: &[&'static [u8]]) -> ByteStream {
        let parts: Vec<std::io::Result<Bytes>> = parts
            .iter()
            .map(|part| Ok(Bytes::from_static(part)))
            .collect();
        stream::iter(parts).boxed()
    }

    async fn drain(mut body: ByteStream) -> (Vec<u8>, bool) {
        let mut all = Vec::new();
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(bytes) => all.extend_from_slice(&bytes),
                Err(_) => return (all, false),
            }
        }
        (all, true)
    }

    #[tokio::test]
    async fn a_blob_unlike_its_digest_never_passes_whole() {
        let digest = digest_of(b"hello world", DigestAlgorithm::Sha256);
        let mismatch = Arc::new(AtomicBool::new(false));
        let good = checked_against(
            chunks(&[b"hello", b" ", b"world"]),
            digest.clone(),
            mismatch.clone(),
        );
        assert_eq!(drain(good).await, (b"hello world".to_vec(), true));
        assert!(!mismatch.load(Ordering::SeqCst));

        let bad = checked_against(
            chunks(&[b"hello", b" ", b"w0rld"]),
            digest,
            mismatch.clone(),
        );
        let (passed, complete) = drain(bad).await;
        assert!(!complete, "the stream ends with an error");
        assert_eq!(passed, b"hello ", "the last chunk is held back");
        assert!(mismatch.load(Ordering::SeqCst));
    }
}
