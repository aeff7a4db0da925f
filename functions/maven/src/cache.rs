//! Generated `maven-metadata.xml` documents, kept in memory under the revision of the package
//! they were generated for. Every deployed file writes a fresh revision in the same
//! transaction as its records, and every read of metadata fetches the revision in the batch
//! that opens the package, so a document is served from here only while nothing it describes
//! has changed, on this instance or any other.

use bytes::Bytes;

use crate::records::Revision;

/// How much generated metadata one instance keeps.
const CAPACITY_BYTES: u64 = 32 * 1024 * 1024;

/// One document: a package (`<workspace>/<group>:<artifact>`) and, for SNAPSHOT-level
/// metadata, the version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DocumentId {
    pub package: String,
    pub version: Option<String>,
}

#[derive(Clone)]
struct Cached {
    revision: String,
    xml: Bytes,
}

pub struct MetadataCache(moka::sync::Cache<DocumentId, Cached>);

impl Default for MetadataCache {
    fn default() -> Self {
        Self(
            moka::sync::Cache::builder()
                .weigher(|id: &DocumentId, cached: &Cached| {
                    let bytes = id.package.len() + cached.revision.len() + cached.xml.len();
                    u32::try_from(bytes).unwrap_or(u32::MAX)
                })
                .max_capacity(CAPACITY_BYTES)
                .build(),
        )
    }
}

impl MetadataCache {
    /// The document, if it was generated at `revision`.
    pub fn get(&self, id: &DocumentId, revision: &Revision) -> Option<Bytes> {
        self.0
            .get(id)
            .filter(|cached| cached.revision == revision.revision)
            .map(|cached| cached.xml)
    }

    /// Keeps a document generated after `revision` was read: it holds at least everything
    /// written up to that revision, and is replaced as soon as another is read.
    pub fn insert(&self, id: DocumentId, revision: &Revision, xml: Bytes) {
        let cached = Cached {
            revision: revision.revision.clone(),
            xml,
        };
        self.0.insert(id, cached);
    }
}
