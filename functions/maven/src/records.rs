//! What the Maven repository keeps in a package's partition (`PKG#<ws>#maven#<g>:<a>`):
//!
//! ```text
//! VERSION#<version>              VersionRecord (the service's): a version with files
//! FILE#<version>#<file name>     MavenFile: a file and its checksums
//! BLOB#<digest>                  BlobLink (the service's): a file's bytes
//! REVISION                       Revision: replaced by every deploy
//! RETIRED#<version>              Retired: a deleted release, whose coordinates stay taken
//! ```
//!
//! `maven-metadata.xml` is never stored: it is generated from these records, and kept in
//! memory only as long as the revision it was generated at is current.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use stowage_domain::{Digest, PackageType};
use stowage_service::Checksums;
use stowage_storage::{Item, Key};

pub const FILE_PREFIX: &str = "FILE#";

pub fn file(partition: &str, version: &str, file: &str) -> Key {
    Key::new(partition, format!("{FILE_PREFIX}{version}#{file}"))
}

pub fn files_of_version(version: &str) -> String {
    format!("{FILE_PREFIX}{version}#")
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

impl Retired {
    pub fn key(partition: &str, version: &str) -> Key {
        Key::new(partition, format!("RETIRED#{version}"))
    }
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

    pub fn key(partition: &str) -> Key {
        Key::new(partition, "REVISION")
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
        if kind != PackageType::Maven || !item.key.sort.starts_with(FILE_PREFIX) {
            return Some(Vec::new());
        }
        let file: MavenFile = stowage_service::records::decode(item).ok()?;
        Some(vec![file.digest])
    }
}
