//! A container package as people browse it (the web interface): its tags with what each
//! points at, and the referrers (signatures, SBOMs) stored beside them. One query of the
//! package's partition, paged: manifests, referrers, tags and versions are neighbours there.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use stowage_domain::{Digest, PackageName, PackageType, Principal, Role, Slug};
use stowage_service::{
    AnyRecord, Error, PackageRecord, Registry, VersionRecord, Versions, WalkToken,
};
use stowage_storage::Condition;

use crate::error::{OciError, OciResult};
use crate::records::{Manifests, Referrers, StoredManifest, Tags};

/// Records read per query.
const PAGE: usize = 1000;

/// A tag and the manifest it points at.
#[derive(Debug, Clone)]
pub struct ImageTag {
    pub tag: String,
    pub digest: Digest,
    pub media_type: String,
    /// The image's bytes: its config and layers, summed over an index's images that are
    /// stored here. `None` when the manifest is too large to be kept inline.
    pub size: Option<u64>,
    /// `os/architecture[/variant]` of each image of an index.
    pub platforms: Vec<String>,
    pub pushed_at: DateTime<Utc>,
    pub pushed_by: String,
}

/// A manifest that names another as its subject: a signature, an SBOM, an attestation.
#[derive(Debug, Clone)]
pub struct ImageReferrer {
    pub subject: String,
    pub digest: String,
    pub artifact_type: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ImageContents {
    pub tags: Vec<ImageTag>,
    pub referrers: Vec<ImageReferrer>,
}

/// What a manifest says of its size and platforms, read from its JSON.
#[derive(Deserialize)]
struct ManifestShape {
    #[serde(default)]
    config: Option<Sized>,
    #[serde(default)]
    layers: Vec<Sized>,
    #[serde(default)]
    manifests: Vec<Child>,
}

#[derive(Deserialize)]
struct Sized {
    size: u64,
}

#[derive(Deserialize)]
struct Child {
    digest: String,
    #[serde(default)]
    platform: Option<oci_spec::image::Platform>,
}

/// The tags and referrers of a container package (the caller has opened it for reading).
pub async fn contents(
    registry: &Registry,
    package: &PackageRecord,
) -> Result<ImageContents, Error> {
    let items = registry.package_items(package);
    let mut manifests: HashMap<String, StoredManifest> = HashMap::new();
    let mut tags = Vec::new();
    let mut pushed: HashMap<String, VersionRecord> = HashMap::new();
    let mut referrers = Vec::new();
    let mut from: Option<WalkToken> = None;
    loop {
        let (page, next) = items
            .walk_kinds::<Manifests, Versions<VersionRecord>>(from, PAGE)
            .await?;
        for record in &page {
            sort_record(
                record,
                &mut manifests,
                &mut tags,
                &mut pushed,
                &mut referrers,
            )?;
        }
        match next {
            Some(token) => from = Some(token),
            None => break,
        }
    }
    let tags = tags
        .into_iter()
        .map(|(tag, record): (String, crate::records::TagRecord)| {
            let (size, platforms) = describe(&manifests, record.digest.as_str());
            let version = pushed.remove(&tag);
            ImageTag {
                pushed_at: version
                    .as_ref()
                    .map_or(record.updated_at, |v| v.published_at),
                pushed_by: version.map(|v| v.published_by).unwrap_or_default(),
                tag,
                digest: record.digest,
                media_type: record.media_type,
                size,
                platforms,
            }
        })
        .collect();
    Ok(ImageContents { tags, referrers })
}

fn sort_record(
    record: &AnyRecord,
    manifests: &mut HashMap<String, StoredManifest>,
    tags: &mut Vec<(String, crate::records::TagRecord)>,
    pushed: &mut HashMap<String, VersionRecord>,
    referrers: &mut Vec<ImageReferrer>,
) -> Result<(), Error> {
    if let Some(manifest) = record.as_kind::<Manifests>() {
        let manifest = manifest?;
        manifests.insert(manifest.id, manifest.payload);
    } else if let Some(tag) = record.as_kind::<Tags>() {
        let tag = tag?;
        tags.push((tag.id, tag.payload));
    } else if let Some(version) = record.as_kind::<Versions<VersionRecord>>() {
        let version = version?;
        pushed.insert(version.id, version.payload);
    } else if let Some(referrer) = record.as_kind::<Referrers>() {
        let referrer = referrer?;
        let (subject, digest) = referrer.id.split_once('#').unwrap_or(("", &referrer.id));
        referrers.push(ImageReferrer {
            subject: subject.to_owned(),
            digest: digest.to_owned(),
            artifact_type: referrer.payload["artifactType"].as_str().map(str::to_owned),
        });
    }
    Ok(())
}

/// The size and platforms of the manifest `digest`, from its inline bytes.
fn describe(
    manifests: &HashMap<String, StoredManifest>,
    digest: &str,
) -> (Option<u64>, Vec<String>) {
    let Some(shape) = shape_of(manifests, digest) else {
        return (None, Vec::new());
    };
    if shape.manifests.is_empty() {
        return (Some(image_size(&shape)), Vec::new());
    }
    let platforms = shape
        .manifests
        .iter()
        .filter_map(|child| child.platform.as_ref())
        .map(platform_name)
        .collect();
    let size = shape
        .manifests
        .iter()
        .map(|child| shape_of(manifests, &child.digest).map(|child| image_size(&child)))
        .sum::<Option<u64>>();
    (size, platforms)
}

fn shape_of(manifests: &HashMap<String, StoredManifest>, digest: &str) -> Option<ManifestShape> {
    let bytes = manifests.get(digest)?.bytes.as_ref()?;
    serde_json::from_slice(bytes).ok()
}

fn image_size(shape: &ManifestShape) -> u64 {
    shape.config.as_ref().map_or(0, |config| config.size)
        + shape.layers.iter().map(|layer| layer.size).sum::<u64>()
}

fn platform_name(platform: &oci_spec::image::Platform) -> String {
    let mut name = format!("{}/{}", platform.os(), platform.architecture());
    if let Some(variant) = platform.variant() {
        name.push('/');
        name.push_str(variant);
    }
    name
}

/// Removes a tag (the write role); the manifest stays, reachable by digest, until the
/// collector finds nothing uses it.
pub async fn delete_tag(
    registry: &Registry,
    caller: &Principal,
    workspace: &Slug,
    name: &PackageName,
    tag: &str,
) -> OciResult<()> {
    let open = registry
        .open_package(
            caller,
            workspace,
            PackageType::Container,
            name,
            Role::Write,
            &[],
        )
        .await?;
    let items = registry.package_items(&open.package);
    let mut untag = items.writes(caller.display_name());
    untag.delete::<Tags>(tag, Condition::Exists);
    untag
        .commit()
        .await
        .map_err(|_| OciError::manifest_unknown(tag))
}
