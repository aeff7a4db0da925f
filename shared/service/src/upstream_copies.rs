//! Copies of what an upstream serves that change upstream (an npm package document, a Maven
//! `maven-metadata.xml`): kept as blobs of the cached package (they can be many MB), with a
//! record saying when they were fetched, and fetched again once older than
//! `Settings::upstream_ttl`. Bytes that never change (tarballs, jars) are stored as the
//! protocols' own records instead.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use stowage_domain::{Digest, DigestAlgorithm};
use stowage_storage::ByteStream;

use crate::records::PackageRecord;
use crate::{BlobLink, Error, JsonKind, PackageWrites, Registry, Result, Written};

/// A cached package's copies of upstream documents, by id (`document`, `metadata`, a
/// version's `metadata/<version>`).
pub struct UpstreamCopies;

impl JsonKind for UpstreamCopies {
    const PREFIX: &'static str = "UPSTREAMCOPY#";
    type Payload = UpstreamCopy;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamCopy {
    pub fetched_at: DateTime<Utc>,
    pub digest: Digest,
    pub object_key: String,
    pub size: u64,
}

/// The largest document copied from an upstream (the public npm registry's largest are a few
/// tens of MB).
pub const UPSTREAM_COPY_MAX: u64 = 64 * 1024 * 1024;

impl Registry {
    /// Whether a copy is recent enough to be served without asking the upstream.
    pub fn is_fresh(&self, copy: &UpstreamCopy) -> bool {
        self.fetched_recently(copy.fetched_at)
    }

    /// Whether what was fetched from an upstream at `at` is recent enough to be served
    /// without asking it again (within `Settings::upstream_ttl`).
    pub fn fetched_recently(&self, at: DateTime<Utc>) -> bool {
        at + self.settings().upstream_ttl > self.now()
    }

    /// A copy's bytes.
    pub async fn read_upstream_copy(&self, copy: &UpstreamCopy) -> Result<Bytes> {
        let size = usize::try_from(copy.size).unwrap_or(usize::MAX);
        self.read_small_object(&copy.object_key, size).await
    }

    /// Keeps `bytes` as the package's copy `id`, replacing `replaced` (whose blob is unlinked,
    /// for the purge to collect).
    pub async fn keep_upstream_copy(
        &self,
        package: &PackageRecord,
        id: &str,
        bytes: Bytes,
        replaced: Option<&UpstreamCopy>,
    ) -> Result<()> {
        let fetched_at = self.now();
        let body: ByteStream = futures_util::stream::once(async move { Ok(bytes) }).boxed();
        let staged = self
            .stage_blob(&package.workspace, body, Some(UPSTREAM_COPY_MAX), false)
            .await?;
        let extra = |written: &Written, link: &BlobLink, writes: &mut PackageWrites<'_>| {
            let copy = UpstreamCopy {
                fetched_at,
                digest: Digest::from_hex(DigestAlgorithm::Sha256, &written.sha256),
                object_key: link.object_key.clone(),
                size: written.size,
            };
            writes.put::<UpstreamCopies>(id, &copy);
        };
        let (link, _) = self
            .commit_staged(package, staged, None, "upstream", extra)
            .await?;
        if let Some(old) = replaced
            && old.digest != link.digest
        {
            match self.unlink_blob(package, &old.digest).await {
                Ok(()) | Err(Error::NotFound(_)) => {}
                Err(other) => return Err(other),
            }
        }
        Ok(())
    }
}
