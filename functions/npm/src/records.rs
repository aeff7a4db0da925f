//! The records an npm package keeps, as kinds of the service's package partition
//! ([`stowage_service::RecordKind`]):
//!
//! ```text
//! NpmVersions            VERSION#<version>     NpmVersion: the version's manifest and tarball
//! DistTags               DISTTAG#<tag>         DistTag: the version a dist-tag points at
//! UnpublishedVersions    UNPUBLISHED#<version> Unpublished: published once; never again
//! ```
//!
//! Beside them the service keeps `BLOB#<digest>`, each tarball's bytes. The package document
//! is built from these on every read, in one query (their prefixes are neighbours): no item
//! grows with the package. A link no version uses any more (its version was unpublished) is
//! left to the purge.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use stowage_domain::{Digest, PackageType};
use stowage_service::{JsonKind, RecordKind, Versions};
use stowage_storage::Item;

/// A package's versions: the service's version records, with npm's detail in them.
pub type NpmVersions = Versions<NpmVersion>;

/// A package's dist-tags, by name.
pub struct DistTags;

impl JsonKind for DistTags {
    const PREFIX: &'static str = "DISTTAG#";
    type Payload = DistTag;
}

/// The versions unpublished from a package, by number.
pub struct UnpublishedVersions;

impl JsonKind for UnpublishedVersions {
    const PREFIX: &'static str = "UNPUBLISHED#";
    type Payload = Unpublished;
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
    /// The publisher's e-mail when it was a user (versions published before it was recorded
    /// have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_by_email: Option<String>,
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
        if kind != PackageType::Npm
            || !item
                .key
                .sort
                .starts_with(<NpmVersions as RecordKind>::PREFIX)
        {
            return Some(Vec::new());
        }
        let version = NpmVersions::decode(item).ok()?;
        Some(vec![version.tarball.digest])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stowage_service::VersionRecord;

    #[test]
    fn a_version_record_is_one_the_management_api_lists() {
        let digest = Digest::parse("d", &format!("sha256:{}", "a".repeat(64))).expect("digest");
        let version = NpmVersion {
            version: "1.2.3".into(),
            published_at: Utc::now(),
            published_by: "alice".into(),
            published_by_email: None,
            manifest: Map::new(),
            tarball: Tarball {
                digest,
                size: 1,
                shasum: "s".into(),
                integrity: "i".into(),
                object_key: "k".into(),
            },
        };
        let listed: VersionRecord =
            serde_json::from_slice(&NpmVersions::encode(&version)).expect("a version record");
        assert_eq!(
            (listed.version, listed.published_at, listed.published_by),
            (version.version, version.published_at, version.published_by)
        );
    }
}
