//! What the npm registry keeps in a package's partition (`PKG#<ws>#npm#<name>`):
//!
//! ```text
//! VERSION#<version>     NpmVersion: the version's manifest and its tarball (one item per version)
//! DISTTAG#<tag>         DistTag: the version a dist-tag points at
//! UNPUBLISHED#<version> Unpublished: a version that was published once; never published again
//! BLOB#<digest>         BlobLink (the service's): the tarball's bytes
//! ```
//!
//! The package document is built from these on every read: no item grows with the package.
//! A link no version uses any more (its version was unpublished) is left to the purge.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use stowage_domain::{Digest, PackageType};
use stowage_storage::{Item, Key, SortRange};

pub const VERSION_PREFIX: &str = stowage_service::records::keys::VERSION_PREFIX;
pub const DIST_TAG_PREFIX: &str = "DISTTAG#";

pub fn version(partition: &str, version: &str) -> Key {
    stowage_service::records::keys::version(partition, version)
}

pub fn dist_tag(partition: &str, tag: &str) -> Key {
    Key::new(partition, format!("{DIST_TAG_PREFIX}{tag}"))
}

pub const UNPUBLISHED_PREFIX: &str = "UNPUBLISHED#";

pub fn unpublished(partition: &str, version: &str) -> Key {
    Key::new(partition, format!("{UNPUBLISHED_PREFIX}{version}"))
}

/// The sort keys of the document's items (`DISTTAG#…`, `UNPUBLISHED#…` and `VERSION#…`),
/// read in one query.
pub fn document_range() -> SortRange {
    SortRange::Between {
        start: DIST_TAG_PREFIX.to_owned(),
        end: format!("{VERSION_PREFIX}\u{10FFFF}"),
    }
}

/// A version's tarball: its bytes are the package's blob of this digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tarball {
    pub digest: Digest,
    pub size: u64,
    /// sha1 in hex, npm's `dist.shasum`.
    pub shasum: String,
    /// `sha512-<base64>`, npm's `dist.integrity`.
    pub integrity: String,
    /// Where its bytes are: the link's object, copied so that a download is one read. A
    /// linked blob keeps its object for as long as the link lives, and the link lives as
    /// long as a version uses it.
    pub object_key: String,
}

/// A published version. Its first three fields are the service's `VersionRecord`, so the
/// management API lists npm versions like any other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NpmVersion {
    pub version: String,
    pub published_at: DateTime<Utc>,
    pub published_by: String,
    /// The version's manifest as published (its package.json and npm's additions), without
    /// the readme.
    pub manifest: Map<String, Value>,
    pub tarball: Tarball,
}

/// A version that was unpublished. npm never reuses a version number: lockfiles pin the
/// integrity of what was published under it, so it stays taken until the package is purged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unpublished {
    pub version: String,
    pub integrity: String,
    pub unpublished_at: DateTime<Utc>,
    pub unpublished_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DistTag {
    pub version: String,
    pub updated_at: DateTime<Utc>,
}
/// What the purge needs to know of npm's records: the tarball each version uses.
pub struct NpmContent;

impl stowage_service::ContentReader for NpmContent {
    fn tracks_references(&self, kind: PackageType) -> bool {
        kind == PackageType::Npm
    }

    fn references(&self, kind: PackageType, item: &Item) -> Option<Vec<Digest>> {
        if kind != PackageType::Npm || !item.key.sort.starts_with(VERSION_PREFIX) {
            return Some(Vec::new());
        }
        let version: NpmVersion = stowage_service::records::decode(item).ok()?;
        Some(vec![version.tarball.digest])
    }
}
