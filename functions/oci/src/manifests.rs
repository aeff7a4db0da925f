//! Manifests: GET/HEAD/PUT/DELETE by tag or digest. Bytes and content type come back exactly
//! as pushed; every blob and child manifest a manifest refers to must be in the repository.

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, ETAG, LOCATION};
use http::{HeaderMap, Method, StatusCode};
use serde_json::Value;
use sha2::{Digest as _, Sha256, Sha512};
use stowage_domain::{Digest, DigestAlgorithm, Role};
use stowage_http::Finish;
use stowage_service::{
    BlobLinks, CommitError, Error, ItemKey, OpenPackage, PackageItems, PackageRecord, RecordKind,
    Registry,
};
use stowage_storage::{ByteStream, Condition, MAX_TRANSACTION_WRITES};

use crate::auth::{Caller, Source};
use crate::error::{OciError, OciResult};
use crate::proxy;
use crate::records::{
    MANIFEST_RECORD_MAX, ManifestRecord, Manifests, Referrers, Stored, StoredManifest, TagRecord,
    Tags, referrer_id,
};
use crate::route::{ImageName, Reference};

/// The largest manifest taken; larger ones get 413.
pub const MANIFEST_MAX: usize = 4 * 1024 * 1024;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Layers that registries do not hold (they are fetched from their `urls`).
const FOREIGN_LAYERS: [&str; 3] = [
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
];

fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

/// What the registry needs to know of a manifest.
#[derive(Debug)]
struct Parsed {
    media_type: String,
    blobs: Vec<Digest>,
    manifests: Vec<Digest>,
    subject: Option<Digest>,
    artifact_type: Option<String>,
    annotations: Option<serde_json::Map<String, Value>>,
}

fn descriptor_digest(descriptor: &oci_spec::image::Descriptor) -> OciResult<Digest> {
    Digest::parse("digest", descriptor.digest().as_ref()).map_err(|invalid| {
        OciError::manifest_invalid(format!("a descriptor's digest {}", invalid.message))
    })
}

/// Checks a manifest's shape and collects what it refers to.
fn parse(content_type: Option<&str>, body: &[u8]) -> OciResult<Parsed> {
    let value: Value = serde_json::from_slice(body).map_err(|error| {
        OciError::manifest_invalid(format!("the manifest is not valid JSON: {error}"))
    })?;
    let object = value
        .as_object()
        .ok_or_else(|| OciError::manifest_invalid("a manifest is a JSON object"))?;
    match object.get("schemaVersion").and_then(Value::as_u64) {
        Some(2) => {}
        Some(1) => {
            return Err(OciError::manifest_invalid(
                "Docker schema 1 manifests are not supported",
            ));
        }
        _ => return Err(OciError::manifest_invalid("schemaVersion must be 2")),
    }
    let declared = object.get("mediaType").and_then(Value::as_str);
    let content_type = content_type.map(|ct| ct.split(';').next().unwrap_or(ct).trim());
    let media_type = match (declared, content_type) {
        (Some(declared), Some(sent)) if declared != sent => {
            return Err(OciError::manifest_invalid(format!(
                "the manifest's mediaType {declared} differs from its Content-Type {sent}"
            )));
        }
        (Some(declared), _) => declared.to_owned(),
        (None, Some(sent)) if sent == OCI_MANIFEST || sent == OCI_INDEX => sent.to_owned(),
        (None, _) if object.contains_key("manifests") => OCI_INDEX.to_owned(),
        (None, _) if object.contains_key("config") => OCI_MANIFEST.to_owned(),
        (None, sent) => {
            return Err(OciError::manifest_invalid(format!(
                "unknown manifest type {}",
                sent.unwrap_or("(none)")
            )));
        }
    };
    if ![OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST].contains(&media_type.as_str()) {
        return Err(OciError::manifest_invalid(format!(
            "unsupported manifest media type {media_type}"
        )));
    }
    let mut parsed = Parsed {
        media_type: media_type.clone(),
        blobs: Vec::new(),
        manifests: Vec::new(),
        subject: None,
        artifact_type: object
            .get("artifactType")
            .and_then(Value::as_str)
            .map(str::to_owned),
        annotations: object
            .get("annotations")
            .and_then(Value::as_object)
            .cloned(),
    };
    let invalid = |error: serde_json::Error| {
        OciError::manifest_invalid(format!("the manifest is malformed: {error}"))
    };
    let subject = if is_index(&media_type) {
        let index: oci_spec::image::ImageIndex =
            serde_json::from_value(value.clone()).map_err(invalid)?;
        for child in index.manifests() {
            parsed.manifests.push(descriptor_digest(child)?);
        }
        index.subject().clone()
    } else {
        let manifest: oci_spec::image::ImageManifest =
            serde_json::from_value(value.clone()).map_err(invalid)?;
        parsed.blobs.push(descriptor_digest(manifest.config())?);
        if parsed.artifact_type.is_none() {
            parsed.artifact_type = Some(manifest.config().media_type().to_string());
        }
        for layer in manifest.layers() {
            let foreign = FOREIGN_LAYERS.contains(&layer.media_type().to_string().as_str());
            let digest = descriptor_digest(layer)?;
            if !foreign {
                parsed.blobs.push(digest);
            }
        }
        manifest.subject().clone()
    };
    parsed.subject = subject.as_ref().map(descriptor_digest).transpose()?;
    Ok(parsed)
}

/// The digest of `body` by `algorithm`.
pub fn digest_of(body: &[u8], algorithm: DigestAlgorithm) -> Digest {
    let hex = match algorithm {
        DigestAlgorithm::Sha256 => hex::encode(Sha256::digest(body)),
        DigestAlgorithm::Sha512 => hex::encode(Sha512::digest(body)),
    };
    Digest::from_hex(algorithm, &hex)
}

fn manifest_response(method: &Method, record: &ManifestRecord, bytes: Bytes) -> Response {
    let builder = Response::builder()
        .status(StatusCode::OK)
        .header(CONTENT_TYPE, &record.media_type)
        .header(CONTENT_LENGTH, record.size)
        .header("Docker-Content-Digest", record.digest.as_str())
        .header(ETAG, format!("\"{}\"", record.digest));
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(bytes)
    };
    builder.finish(body)
}

/// GET or HEAD a manifest. By digest: one batch read. By tag: one batch read, then the
/// manifest (from its record; from the blob store only when it is too large for one). An
/// image through an upstream: see [`crate::proxy`].
pub async fn get(
    registry: &Registry,
    caller: &Caller,
    name: &ImageName,
    reference: &Reference,
    method: &Method,
) -> OciResult<Response> {
    let not_found = || OciError::manifest_unknown(&reference.to_string());
    let first = match reference {
        Reference::Tag(tag) => name.item::<Tags>(tag),
        Reference::Digest(digest) => name.item::<Manifests>(digest.as_str()),
        Reference::InvalidTag(_) => {
            caller.open(registry, name, Role::Read, &[]).await?;
            return Err(not_found());
        }
    };
    // A first pull through an upstream that meets another making the same package opens
    // the package that one made.
    for _ in 0..2 {
        let open = match caller
            .open_or_upstreams(registry, name, std::slice::from_ref(&first))
            .await?
        {
            Source::Package(open) => open,
            Source::Upstreams(upstreams) => {
                match proxy::first_manifest(registry, name, reference, &upstreams).await? {
                    Some((record, bytes)) => return Ok(manifest_response(method, &record, bytes)),
                    None => continue,
                }
            }
        };
        let (found, fetched_at) = local_manifest(registry, &open, reference, &first).await?;
        let fresh = match (&found, fetched_at) {
            (None, _) => false,
            (Some(_), Some(at)) => registry.fetched_recently(at),
            (Some(_), None) => true,
        };
        if open.package.upstream.is_some()
            && !fresh
            && let Some((record, bytes)) =
                proxy::refreshed_manifest(registry, &open.package, name, reference, found.is_some())
                    .await?
        {
            return Ok(manifest_response(method, &record, bytes));
        }
        let (record, bytes) = manifest_bytes(registry, found.ok_or_else(not_found)?).await?;
        return Ok(manifest_response(method, &record, bytes));
    }
    Err(Error::Busy.into())
}

/// A stored manifest's record and bytes (from the blob store when too large for a record).
async fn manifest_bytes(
    registry: &Registry,
    manifest: StoredManifest,
) -> OciResult<(ManifestRecord, Bytes)> {
    let StoredManifest { record, bytes } = manifest;
    let bytes = match (&record.stored, bytes) {
        (Stored::Inline, bytes) => bytes.unwrap_or_default(),
        (Stored::Object { key }, _) => {
            registry
                .read_small_object(key, record.size as usize)
                .await?
        }
    };
    Ok((record, bytes))
}

/// A cached image's manifest `reference` as stored now, when fresh: by digest if it is there,
/// by tag if the tag was fetched within the TTL.
pub async fn fresh_manifest(
    registry: &Registry,
    package: &PackageRecord,
    reference: &Reference,
) -> OciResult<Option<(ManifestRecord, Bytes)>> {
    let items = registry.package_items(package);
    let digest = match reference {
        Reference::Digest(digest) => digest.clone(),
        Reference::Tag(tag) => match items.get::<Tags>(tag).await? {
            Some(tag) if registry.fetched_recently(tag.payload.updated_at) => tag.payload.digest,
            _ => return Ok(None),
        },
        Reference::InvalidTag(_) => return Ok(None),
    };
    match items.get::<Manifests>(digest.as_str()).await? {
        Some(found) => manifest_bytes(registry, found.payload).await.map(Some),
        None => Ok(None),
    }
}

/// The package's manifest `reference` (`first`, read with the package), and for a tag, when
/// it was last written (a cached image's tag is fetched again once that is older than the
/// TTL).
async fn local_manifest(
    registry: &Registry,
    open: &OpenPackage,
    reference: &Reference,
    first: &ItemKey,
) -> OciResult<(Option<StoredManifest>, Option<DateTime<Utc>>)> {
    Ok(match reference {
        Reference::Tag(_) => match open.record::<Tags>(first)? {
            Some(tag) => {
                let manifest = registry
                    .package_items(&open.package)
                    .get::<Manifests>(tag.digest.as_str())
                    .await?
                    .map(|found| found.payload);
                (manifest, Some(tag.updated_at))
            }
            None => (None, None),
        },
        _ => (open.record::<Manifests>(first)?, None),
    })
}

/// The most distinct blobs and manifests one manifest may refer to: its record lists them,
/// and a record must fit in a metadata item (images have a few dozen layers at most; Docker
/// stops at 127).
pub const REFERENCES_MAX: usize = 1000;
/// The longest media type or artifact type taken (RFC 6838 allows 127 characters on each side
/// of the `/`).
const MEDIA_TYPE_MAX: usize = 255;

/// Every blob and manifest a manifest refers to, each once, within the limits a record holds.
fn distinct_references(parsed: &Parsed) -> OciResult<Vec<Digest>> {
    let mut references: Vec<Digest> = parsed
        .blobs
        .iter()
        .chain(&parsed.manifests)
        .cloned()
        .collect();
    references.sort();
    references.dedup();
    if references.len() > REFERENCES_MAX {
        return Err(OciError::manifest_invalid(format!(
            "a manifest may refer to at most {REFERENCES_MAX} distinct blobs and manifests; this one refers to {}",
            references.len()
        )));
    }
    for (what, value) in [
        ("mediaType", Some(&parsed.media_type)),
        ("artifactType", parsed.artifact_type.as_ref()),
    ] {
        if value.is_some_and(|value| value.len() > MEDIA_TYPE_MAX) {
            return Err(OciError::manifest_invalid(format!(
                "the manifest's {what} is longer than {MEDIA_TYPE_MAX} characters"
            )));
        }
    }
    Ok(references)
}

/// Checks that every blob and child manifest is in the package, in batch reads.
async fn check_references(items: &PackageItems<'_>, parsed: &Parsed) -> OciResult<()> {
    let mut wanted: Vec<(ItemKey, &Digest)> = Vec::new();
    for digest in &parsed.blobs {
        wanted.push((items.key::<BlobLinks>(digest.as_str()), digest));
    }
    for digest in &parsed.manifests {
        wanted.push((items.key::<Manifests>(digest.as_str()), digest));
    }
    wanted.sort_by(|a, b| a.0.cmp(&b.0));
    wanted.dedup_by(|a, b| a.0 == b.0);
    let (keys, digests): (Vec<ItemKey>, Vec<&Digest>) = wanted.into_iter().unzip();
    match items.missing(&keys).await? {
        Some(missing) => {
            let at = keys
                .iter()
                .position(|key| key == missing)
                .unwrap_or_default();
            Err(OciError::manifest_blob_unknown(digests[at].as_str()))
        }
        None => Ok(()),
    }
}

/// PUT a manifest under a tag or its digest.
pub async fn put(
    registry: &Registry,
    caller: &Caller,
    name: &ImageName,
    reference: &Reference,
    headers: &HeaderMap,
    body: Body,
) -> OciResult<Response> {
    if let Reference::InvalidTag(tag) = reference {
        return Err(OciError::tag_invalid(tag));
    }
    let open = caller.open(registry, name, Role::Write, &[]).await?;
    let bytes = stowage_http::read_limited(body, MANIFEST_MAX)
        .await
        .map_err(|_| OciError::too_large(format!("a manifest is at most {MANIFEST_MAX} bytes")))?;
    let package = &open.package;
    let digest = match reference {
        Reference::Digest(expected) => {
            let actual = digest_of(&bytes, expected.algorithm());
            if &actual != expected {
                return Err(OciError::digest_invalid(
                    "the manifest does not match the digest it was pushed under",
                )
                .with_detail(
                    serde_json::json!({ "expected": expected.as_str(), "actual": actual.as_str() }),
                ));
            }
            actual
        }
        _ => digest_of(&bytes, DigestAlgorithm::Sha256),
    };
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let tag = match reference {
        Reference::Tag(tag) => Some(tag.as_str()),
        _ => None,
    };
    let manifest = NewManifest::parse(&digest, bytes, content_type, tag)?;
    check_references(&registry.package_items(package), &manifest.parsed).await?;
    let subject = manifest.parsed.subject.clone();
    let publisher = caller.principal.display_name();
    record_manifest(registry, package, &publisher, manifest, Blobs::InPackage).await?;

    let mut response = Response::builder()
        .status(StatusCode::CREATED)
        .header(LOCATION, format!("/v2/{}/manifests/{digest}", name.full()))
        .header("Docker-Content-Digest", digest.as_str());
    if let Some(subject) = &subject {
        response = response.header("OCI-Subject", subject.as_str());
    }
    Ok(response.finish(Body::empty()))
}

/// A manifest to write, its shape checked.
pub struct NewManifest<'a> {
    digest: &'a Digest,
    bytes: Bytes,
    parsed: Parsed,
    references: Vec<Digest>,
    tag: Option<&'a str>,
}

impl<'a> NewManifest<'a> {
    /// Checks the manifest `bytes` of `digest`, sent as `content_type`, to be tagged `tag`.
    pub fn parse(
        digest: &'a Digest,
        bytes: Bytes,
        content_type: Option<&str>,
        tag: Option<&'a str>,
    ) -> OciResult<Self> {
        let parsed = parse(content_type, &bytes)?;
        let references = distinct_references(&parsed)?;
        Ok(Self {
            digest,
            bytes,
            parsed,
            references,
            tag,
        })
    }
}

/// Whether the blobs a manifest uses are in its package when it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blobs {
    /// Checked: their links are touched with the write, so that a collector that found them
    /// unused just before gives up deleting them.
    InPackage,
    /// A proxied manifest's blobs, fetched on their first pull.
    FetchedLater,
}

/// Writes a manifest under its digest and its tag, with its referrer entry when it has a
/// subject; answers its record.
pub async fn record_manifest(
    registry: &Registry,
    package: &PackageRecord,
    publisher: &str,
    manifest: NewManifest<'_>,
    blobs: Blobs,
) -> OciResult<ManifestRecord> {
    let NewManifest {
        digest,
        bytes,
        parsed,
        references,
        tag,
    } = manifest;
    let items = registry.package_items(package);
    let now = registry.now();
    let mut record = ManifestRecord {
        digest: digest.clone(),
        media_type: parsed.media_type.clone(),
        size: bytes.len() as u64,
        artifact_type: parsed.artifact_type.clone(),
        subject: parsed.subject.clone(),
        references,
        stored: Stored::Inline,
        created_at: now,
    };
    // Kept in its record only when the record, with what it says of the manifest, fits.
    let whole = StoredManifest {
        record: record.clone(),
        bytes: Some(bytes.clone()),
    };
    let inline = <Manifests as RecordKind>::encode(&whole).len() <= MANIFEST_RECORD_MAX;
    record.stored = if inline {
        Stored::Inline
    } else {
        // Stored as a blob of the package: identical manifests elsewhere share its content,
        // which is collected only once nothing uses it.
        let content = bytes.clone();
        let body: ByteStream = Box::pin(futures_util::stream::once(async move { Ok(content) }));
        let link = registry
            .store_blob(package, body, Some(digest), None)
            .await?;
        Stored::Object {
            key: link.object_key,
        }
    };
    let mut writes = items.writes(publisher);
    let stored = StoredManifest {
        record: record.clone(),
        bytes: inline.then(|| bytes.clone()),
    };
    writes.put::<Manifests>(digest.as_str(), &stored);
    // Touching the links of the blobs it uses makes a collector that found them unused just
    // before give up deleting them (their versions change).
    let touches = blobs_in_use(&parsed, &record);
    let touch_inline = touches.len() + 4 <= MAX_TRANSACTION_WRITES;
    if blobs == Blobs::InPackage && touch_inline {
        for blob in &touches {
            writes.touch_blob(blob);
        }
    }
    if let Some(tag) = tag {
        let tag_record = TagRecord {
            digest: digest.clone(),
            media_type: record.media_type.clone(),
            updated_at: now,
        };
        writes.put::<Tags>(tag, &tag_record);
    }
    if let Some(subject) = &parsed.subject {
        let descriptor = referrer_descriptor(&record, parsed.annotations.as_ref());
        writes.put::<Referrers>(&referrer_id(subject, digest), &descriptor);
    }
    writes.commit().await.map_err(|error| match error {
        CommitError::Lost => {
            OciError::manifest_blob_unknown("a blob it refers to was removed meanwhile")
        }
        CommitError::Failed(other) => other.into(),
    })?;
    if blobs == Blobs::InPackage && !touch_inline {
        confirm_links(&items, publisher, digest, &touches).await?;
    }
    Ok(record)
}

/// Every blob a manifest uses, each once: those it refers to, and its own content when that
/// is a blob.
fn blobs_in_use(parsed: &Parsed, record: &ManifestRecord) -> Vec<Digest> {
    let own = matches!(record.stored, Stored::Object { .. }).then_some(&record.digest);
    let mut digests: Vec<Digest> = parsed.blobs.iter().chain(own).cloned().collect();
    digests.sort();
    digests.dedup();
    digests
}

/// For a manifest with more blobs than one transaction can touch: touches their links after
/// the manifest is written; if one is gone (collected meanwhile), the manifest is taken back.
async fn confirm_links(
    items: &PackageItems<'_>,
    publisher: &str,
    digest: &Digest,
    blobs: &[Digest],
) -> OciResult<()> {
    for batch in blobs.chunks(MAX_TRANSACTION_WRITES) {
        let mut touches = items.writes(publisher);
        for blob in batch {
            touches.touch_blob(blob);
        }
        if touches.commit().await.is_err() {
            let mut withdrawal = items.writes(publisher);
            withdrawal.delete::<Manifests>(digest.as_str(), Condition::None);
            withdrawal.commit().await.map_err(Error::from)?;
            return Err(OciError::manifest_blob_unknown(
                "a blob it refers to was removed meanwhile",
            ));
        }
    }
    Ok(())
}

/// Annotations larger than this are left out of a referrer's descriptor, which must fit in
/// a metadata item.
const REFERRER_ANNOTATIONS_MAX: usize = 16 * 1024;

/// The descriptor listed by the referrers API for a manifest.
fn referrer_descriptor(
    record: &ManifestRecord,
    annotations: Option<&serde_json::Map<String, Value>>,
) -> Value {
    let mut descriptor = serde_json::json!({
        "mediaType": record.media_type,
        "digest": record.digest.as_str(),
        "size": record.size,
    });
    if let Some(artifact_type) = &record.artifact_type {
        descriptor["artifactType"] = Value::String(artifact_type.clone());
    }
    if let Some(annotations) = annotations {
        let annotations = Value::Object(annotations.clone());
        if annotations.to_string().len() <= REFERRER_ANNOTATIONS_MAX {
            descriptor["annotations"] = annotations;
        }
    }
    descriptor
}

/// DELETE by tag removes the tag; by digest, the manifest and every tag pointing at it.
pub async fn delete(
    registry: &Registry,
    caller: &Caller,
    name: &ImageName,
    reference: &Reference,
) -> OciResult<Response> {
    let open = caller.open(registry, name, Role::Write, &[]).await?;
    let items = registry.package_items(&open.package);
    let publisher = caller.principal.display_name();
    match reference {
        Reference::InvalidTag(tag) => return Err(OciError::manifest_unknown(tag)),
        Reference::Tag(tag) => {
            let mut untag = items.writes(&publisher);
            untag.delete::<Tags>(tag, Condition::Exists);
            untag
                .commit()
                .await
                .map_err(|_| OciError::manifest_unknown(tag))?;
        }
        Reference::Digest(digest) => delete_manifest(&items, &publisher, digest).await?,
    }
    Ok(Response::builder()
        .status(StatusCode::ACCEPTED)
        .finish(Body::empty()))
}

/// How long a delete keeps trying while pushes re-tag the manifest it deletes.
const DELETE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// Deletes a manifest and every tag pointing at it. The tags go first, so that no tag ever
/// points at a manifest that is gone; the manifest goes on the condition that no push wrote
/// it again meanwhile (a push writes the manifest with its tag), else the whole is done
/// again: the delete then comes after that push, and takes its tag too.
async fn delete_manifest(
    items: &PackageItems<'_>,
    publisher: &str,
    digest: &Digest,
) -> OciResult<()> {
    let deadline = std::time::Instant::now() + DELETE_PATIENCE;
    loop {
        let manifest = items
            .get::<Manifests>(digest.as_str())
            .await?
            .ok_or_else(|| OciError::manifest_unknown(digest.as_str()))?;
        untag(items, publisher, digest).await?;
        // Its blobs may now be unreferenced: the collector looks. A large manifest's content
        // is a blob too.
        let mut writes = items.writes(publisher);
        writes
            .delete::<Manifests>(digest.as_str(), Condition::Version(manifest.version))
            .mark_for_collection();
        if let Some(subject) = &manifest.payload.record.subject {
            writes.delete::<Referrers>(&referrer_id(subject, digest), Condition::None);
        }
        match writes.commit().await {
            Ok(()) => return Ok(()),
            Err(CommitError::Lost) if std::time::Instant::now() < deadline => {}
            Err(CommitError::Lost) => {
                return Err(stowage_service::Error::Busy.into());
            }
            Err(CommitError::Failed(other)) => return Err(other.into()),
        }
    }
}

/// Removes every tag pointing at a manifest, a page of tags at a time.
async fn untag(items: &PackageItems<'_>, publisher: &str, digest: &Digest) -> OciResult<()> {
    let mut from = None;
    loop {
        let (tags, next) = items.walk::<Tags>("", from, 100).await?;
        for tag in tags.iter().filter(|tag| &tag.payload.digest == digest) {
            let mut writes = items.writes(publisher);
            writes.delete::<Tags>(&tag.id, Condition::Version(tag.version));
            // A tag re-pointed elsewhere meanwhile fails its condition and is kept, as it
            // should be.
            if let Err(error) = writes.commit().await {
                tracing::info!(
                    ?error,
                    tag = tag.id,
                    "a tag changed while its manifest was deleted"
                );
            }
        }
        match next {
            Some(token) => from = Some(token),
            None => return Ok(()),
        }
    }
}
