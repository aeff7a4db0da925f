//! The records a Maven package keeps, as kinds of the service's package partition
//! ([`stowage_service::RecordKind`]):
//!
//! ```text
//! Files              FILE#<version>#<file name>   MavenFile: a file and its checksums
//! RetiredVersions    RETIRED#<version>            Retired: a deleted release, whose coordinates stay taken
//! Revisions          REVISION                     Revision: replaced by every deploy
//! ```
//!
//! Beside them the service keeps `VERSION#<version>` (a version with files, listed by the
//! management API) and `BLOB#<digest>` (a file's bytes). `maven-metadata.xml` is never
//! stored: it is generated from these records, and kept in memory only as long as the
//! revision it was generated at is current.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use stowage_domain::{Digest, PackageType};
use stowage_service::{Checksums, JsonKind, RecordKind};
use stowage_storage::Item;

/// A package's files, by `<version>#<file name>` ([`file_id`]).
pub struct Files;

impl JsonKind for Files {
    const PREFIX: &'static str = "FILE#";
    type Payload = MavenFile;
}

pub fn file_id(version: &str, file: &str) -> String {
    format!("{version}#{file}")
}

/// What the ids of a version's files start with.
pub fn files_of_version(version: &str) -> String {
    format!("{version}#")
}

/// The releases deleted from a package, by version.
pub struct RetiredVersions;

impl JsonKind for RetiredVersions {
    const PREFIX: &'static str = "RETIRED#";
    type Payload = Retired;
}

/// A package's revision: one record, of id `""`.
pub struct Revisions;

impl JsonKind for Revisions {
    const PREFIX: &'static str = "REVISION";
    type Payload = Revision;
}

/// A release deleted from the package. Releases never change, so its coordinates are never
/// deployed again (a build that resolved them must not get other bytes), until the package
/// itself is purged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retired {
    pub version: String,
    pub deleted_at: DateTime<Utc>,
    pub deleted_by: String,
}

/// A package's revision: replaced, never reused, by every deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revision {
    pub revision: String,
}

impl Revision {
    pub fn fresh() -> Self {
        Self {
            revision: uuid::Uuid::new_v4().simple().to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MavenFile {
    pub file: String,
    pub version: String,
    pub size: u64,
    /// sha256: the blob it is.
    pub digest: Digest,
    pub checksums: Checksums,
    /// Where its bytes are: the link's object, copied so that a download is one read. A
    /// linked blob keeps its object for as long as the link lives.
    pub object_key: String,
    pub uploaded_at: DateTime<Utc>,
    pub uploaded_by: String,
}

/// What the purge needs to know of Maven's records: the blob each file is. A SNAPSHOT file
/// deployed again leaves its old blob's link unused.
pub struct MavenContent;

impl stowage_service::ContentReader for MavenContent {
    fn tracks_references(&self, kind: PackageType) -> bool {
        kind == PackageType::Maven
    }

    fn references(&self, kind: PackageType, item: &Item) -> Option<Vec<Digest>> {
        if kind != PackageType::Maven || !item.key.sort.starts_with(<Files as RecordKind>::PREFIX) {
            return Some(Vec::new());
        }
        let file = Files::decode(item).ok()?;
        Some(vec![file.digest])
    }
}
