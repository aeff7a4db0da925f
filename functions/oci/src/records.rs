//! The records a container package keeps, as kinds of the service's package partition
//! ([`stowage_service::RecordKind`]):
//!
//! ```text
//! Tags        TAG#<tag>                     TagRecord: the manifest a tag points at (a version)
//! Manifests   MANIFEST#<digest>             ManifestRecord, with the manifest's bytes when small
//! Referrers   REFERRER#<subject>#<digest>   the descriptor of a manifest whose subject is <subject>
//! ```
//!
//! Beside them the service keeps its own: `VERSION#<tag>` for each tag, `BLOB#<digest>` for
//! each blob the package holds.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use stowage_domain::Digest;
use stowage_service::{Error, JsonKind, RecordKind};
use stowage_storage::Item;

/// A manifest's record holds its bytes when the whole stays under this (DynamoDB items stop
/// at 400 KB, keys and attributes included); larger manifests go to the blob store.
pub const MANIFEST_RECORD_MAX: usize = 300 * 1024;

/// A package's tags, by name. Each is a version of the package.
pub struct Tags;

impl JsonKind for Tags {
    const PREFIX: &'static str = "TAG#";
    const IS_VERSION: bool = true;
    type Payload = TagRecord;
}

/// A package's manifests, by digest.
pub struct Manifests;

impl RecordKind for Manifests {
    const PREFIX: &'static str = "MANIFEST#";
    type Payload = StoredManifest;

    fn encode(manifest: &StoredManifest) -> Vec<u8> {
        encode_manifest(&manifest.record, manifest.bytes.as_deref())
    }

    fn decode(item: &Item) -> Result<StoredManifest, Error> {
        let (record, inline) = decode_manifest(item)?;
        let bytes = matches!(record.stored, Stored::Inline).then(|| Bytes::copy_from_slice(inline));
        Ok(StoredManifest { record, bytes })
    }
}

/// The descriptors of the manifests that name a subject, by `<subject>#<digest>`
/// ([`referrer_id`]).
pub struct Referrers;

impl JsonKind for Referrers {
    const PREFIX: &'static str = "REFERRER#";
    type Payload = Value;
}

/// The id of the referrer `digest` of `subject`; the ids of a subject's referrers start with
/// `<subject>#`.
pub fn referrer_id(subject: &Digest, digest: &Digest) -> String {
    format!("{subject}#{digest}")
}

/// A manifest's record, and its bytes when they are kept in it.
#[derive(Debug, Clone)]
pub struct StoredManifest {
    pub record: ManifestRecord,
    pub bytes: Option<Bytes>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagRecord {
    pub digest: Digest,
    pub media_type: String,
    pub updated_at: DateTime<Utc>,
}

/// Where a manifest's bytes are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "in", rename_all = "snake_case")]
pub enum Stored {
    /// After the record's header, in the same item.
    Inline,
    /// In the blob store, as the package's blob of the manifest's digest: `key` is that
    /// link's object, kept while a link to it lives.
    Object { key: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestRecord {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Digest>,
    /// Every blob and child manifest it refers to.
    pub references: Vec<Digest>,
    pub stored: Stored,
    pub created_at: DateTime<Utc>,
}

impl ManifestRecord {
    /// Every blob the manifest needs kept: those it refers to, and its own content when that
    /// is a blob.
    pub fn blobs_in_use(&self) -> Vec<Digest> {
        let mut digests = self.references.clone();
        if matches!(self.stored, Stored::Object { .. }) {
            digests.push(self.digest.clone());
        }
        digests
    }
}

/// A manifest item's data: a length-prefixed JSON header, then the manifest's bytes when they
/// are kept inline (no base64, so more fits in an item).
fn encode_manifest(record: &ManifestRecord, inline: Option<&[u8]>) -> Vec<u8> {
    let header = serde_json::to_vec(record).expect("records always serialise");
    let mut data = Vec::with_capacity(4 + header.len() + inline.map_or(0, <[u8]>::len));
    data.extend_from_slice(&(header.len() as u32).to_be_bytes());
    data.extend_from_slice(&header);
    if let Some(bytes) = inline {
        data.extend_from_slice(bytes);
    }
    data
}

/// The record of a manifest item, and its inline bytes.
fn decode_manifest(item: &Item) -> Result<(ManifestRecord, &[u8]), Error> {
    let corrupt = || Error::Corrupt(format!("manifest item {}", item.key.sort));
    let length = item.data.get(..4).ok_or_else(corrupt)?;
    let length = u32::from_be_bytes(length.try_into().map_err(|_| corrupt())?) as usize;
    let header = item.data.get(4..4 + length).ok_or_else(corrupt)?;
    let record = serde_json::from_slice(header).map_err(|_| corrupt())?;
    Ok((record, &item.data[4 + length..]))
}

/// What the purge needs to know of the registry's records: the blobs each manifest uses.
pub struct OciContent;

impl stowage_service::ContentReader for OciContent {
    fn tracks_references(&self, kind: stowage_domain::PackageType) -> bool {
        kind == stowage_domain::PackageType::Container
    }

    fn references(&self, kind: stowage_domain::PackageType, item: &Item) -> Option<Vec<Digest>> {
        if kind != stowage_domain::PackageType::Container
            || !item.key.sort.starts_with(Manifests::PREFIX)
        {
            return Some(Vec::new());
        }
        decode_manifest(item)
            .ok()
            .map(|(record, _)| record.blobs_in_use())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stowage_storage::Key;

    #[test]
    fn manifest_items_round_trip() {
        let digest = Digest::parse("d", &format!("sha256:{}", "b".repeat(64))).expect("digest");
        let record = ManifestRecord {
            digest: digest.clone(),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            size: 3,
            artifact_type: None,
            subject: None,
            references: vec![digest],
            stored: Stored::Inline,
            created_at: Utc::now(),
        };
        let item = Item {
            key: Key::new("p", "s"),
            data: encode_manifest(&record, Some(b"{}\n")),
            version: 1,
            count: 0,
            index: None,
        };
        let (decoded, bytes) = decode_manifest(&item).expect("decode");
        assert_eq!((decoded, bytes), (record, &b"{}\n"[..]));
        let truncated = Item {
            data: item.data[..10].to_vec(),
            ..item
        };
        assert!(decode_manifest(&truncated).is_err());
    }
}
