//! What the registry keeps in a container package's partition (`PKG#<ws>#container#<path>`):
//!
//! ```text
//! TAG#<tag>                          TagRecord: the manifest a tag points at
//! MANIFEST#<digest>                  ManifestRecord, with the manifest's bytes when small
//! REFERRER#<subject>#<digest>        the descriptor of a manifest whose subject is <subject>
//! VERSION#<tag>                      VersionRecord (the management API's list)
//! BLOB#<digest>                      BlobLink (the service's)
//! ```

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use stowage_domain::Digest;
use stowage_service::Error;
use stowage_storage::{Item, Key};

/// A manifest's record holds its bytes when the whole stays under this (DynamoDB items stop
/// at 400 KB, keys and attributes included); larger manifests go to the blob store.
pub const MANIFEST_RECORD_MAX: usize = 300 * 1024;

pub const TAG_PREFIX: &str = "TAG#";

pub fn tag(partition: &str, tag: &str) -> Key {
    Key::new(partition, format!("{TAG_PREFIX}{tag}"))
}

pub fn manifest(partition: &str, digest: &Digest) -> Key {
    Key::new(partition, format!("MANIFEST#{digest}"))
}

pub fn referrers_prefix(subject: &Digest) -> String {
    format!("REFERRER#{subject}#")
}

pub fn referrer(partition: &str, subject: &Digest, digest: &Digest) -> Key {
    Key::new(partition, format!("{}{digest}", referrers_prefix(subject)))
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
pub fn encode_manifest(record: &ManifestRecord, inline: Option<&[u8]>) -> Vec<u8> {
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
pub fn decode_manifest(item: &Item) -> Result<(ManifestRecord, &[u8]), Error> {
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
        if kind != stowage_domain::PackageType::Container || !item.key.sort.starts_with("MANIFEST#")
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
