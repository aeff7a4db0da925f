//! Blob content: written once per workspace under a random key, found by its digest.
//!
//! A blob is streamed to the blob store as it arrives (by [`crate::writer`]: memory stays flat
//! whatever its size), hashed on the way, then *committed*: a workspace
//! record maps its digest to the object, and a link makes it part of one package. A second
//! upload of the same digest keeps the first object and drops its own: content is stored once
//! per workspace however many packages refer to it.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use sha2::{Digest as _, Sha256};
use stowage_domain::{Digest, DigestAlgorithm};
use stowage_storage::{
    BlobError, ByteStream, Condition, MetadataError, PresignOptions, Put, Write,
};

use crate::records::{BlobLink, BlobRecord, ObjectRecord, PackageRecord, decode, encode, keys};
use crate::writer::{ObjectWriter, Written, discard_object, verify};
use crate::{Entity, Error, PackageWrites, Registry, Result};

/// Writes that join a blob's transaction, made from the link it makes.
pub(crate) type LinkWrites<'a> = dyn Fn(&BlobLink) -> Vec<Write> + Send + Sync + 'a;

/// Bytes written to the blob store and hashed, but not yet a blob of any package: committed
/// with [`Registry::commit_staged`] once the caller has checked them, or freed with
/// [`Registry::discard_staged`].
#[must_use = "staged bytes are committed or discarded"]
pub struct StagedBlob {
    key: String,
    pub written: Written,
}

impl Registry {
    /// A signed URL a client downloads a stored object from, valid for the configured time,
    /// served as `content_type` and, when `filename` is given, as an attachment of that name.
    pub async fn download_url(
        &self,
        object_key: &str,
        content_type: &str,
        filename: Option<&str>,
    ) -> Result<String> {
        let options = PresignOptions {
            expires_in: self.settings().presign_ttl,
            content_type: Some(content_type.to_owned()),
            content_disposition: filename.map(|file| format!("attachment; filename=\"{file}\"")),
        };
        Ok(self.blobs().presign_get(object_key, &options).await?)
    }

    /// The whole of a small stored object (a manifest kept as a blob, an upload's carried
    /// bytes), read into memory.
    pub async fn read_small_object(&self, key: &str, size: usize) -> Result<Bytes> {
        let read = self.blobs().get(key, None).await?;
        let mut all = BytesMut::with_capacity(size);
        let mut body = read.body;
        while let Some(chunk) = body.next().await {
            all.extend_from_slice(&chunk.map_err(|e| BlobError::backend("read object", e))?);
        }
        Ok(all.freeze())
    }

    /// A signed URL to `body`, a response too large for the platform to return: written to
    /// the blob store once (named by its content, so repeated reads reuse it).
    pub async fn hand_over(
        &self,
        workspace: &stowage_domain::Slug,
        body: Bytes,
        content_type: &str,
    ) -> Result<String> {
        let key = keys::handed_over(workspace, &hex::encode(Sha256::digest(&body)));
        if self.blobs().size(&key).await?.is_none() {
            self.blobs().put(&key, body).await?;
        }
        self.download_url(&key, content_type, None).await
    }

    /// Writes a whole body as a blob of `package`'s workspace and links it to the package,
    /// checking it against `expected` if given (else it is named by its sha256). At most
    /// `limit` bytes are taken. Nothing is kept if anything fails.
    pub async fn store_blob(
        &self,
        package: &PackageRecord,
        body: ByteStream,
        expected: Option<&Digest>,
        limit: Option<u64>,
    ) -> Result<BlobLink> {
        let staged = self
            .stage_blob(&package.workspace, body, limit, false)
            .await?;
        let (link, _) = self
            .commit_staged(package, staged, expected, "", |_, _, _| {})
            .await?;
        Ok(link)
    }

    /// Like [`Registry::store_blob`], named by its sha256, computing md5, sha1 and sha512 as
    /// well; `extra` writes, published by `by`, are made from what was learnt and from the
    /// link the transaction makes, so a file's record can hold its checksums and the object it
    /// is read from, and still land in the blob's transaction: if one of their conditions
    /// fails, `Conflict`.
    pub async fn store_file(
        &self,
        package: &PackageRecord,
        body: ByteStream,
        limit: Option<u64>,
        by: &str,
        extra: impl Fn(&Written, &BlobLink, &mut PackageWrites<'_>) + Send + Sync,
    ) -> Result<(BlobLink, Written)> {
        let staged = self
            .stage_blob(&package.workspace, body, limit, true)
            .await?;
        self.commit_staged(package, staged, None, by, extra).await
    }

    /// Streams a body into a new object of `workspace`, hashing it (and computing md5, sha1
    /// and sha512 when `checksums`). At most `limit` bytes are taken. Whatever fails, nothing
    /// written is left behind.
    pub async fn stage_blob(
        &self,
        workspace: &stowage_domain::Slug,
        body: ByteStream,
        limit: Option<u64>,
        checksums: bool,
    ) -> Result<StagedBlob> {
        let mut writer = ObjectWriter::new(self, keys::new_object(workspace, self.now()));
        if checksums {
            writer = writer.with_checksums();
        }
        if let Err(error) = writer.push_stream(body, limit).await {
            writer.discard().await;
            return Err(error);
        }
        let key = writer.key().to_owned();
        let multipart = writer.multipart().map(str::to_owned);
        match writer.finish().await {
            Ok(written) => Ok(StagedBlob { key, written }),
            Err(error) => {
                discard_object(self, &key, multipart.as_deref()).await;
                Err(error)
            }
        }
    }

    /// Makes staged bytes a blob of `package`, checked against `expected` if given (else
    /// named by their sha256), with `extra` writes in the link's transaction (see
    /// [`Registry::store_file`]). Nothing is kept if anything fails.
    pub async fn commit_staged(
        &self,
        package: &PackageRecord,
        staged: StagedBlob,
        expected: Option<&Digest>,
        by: &str,
        extra: impl Fn(&Written, &BlobLink, &mut PackageWrites<'_>) + Send + Sync,
    ) -> Result<(BlobLink, Written)> {
        let StagedBlob { key, written } = staged;
        let digest = match expected {
            Some(expected) => expected.clone(),
            None => Digest::from_hex(DigestAlgorithm::Sha256, &written.sha256),
        };
        if let Err(error) = verify(self, &key, &written, &digest).await {
            discard_object(self, &key, None).await;
            return Err(error);
        }
        let extra = |link: &BlobLink| {
            let mut writes = PackageWrites::for_package(self, package, by.to_owned());
            extra(&written, link, &mut writes);
            writes.into_writes()
        };
        let link = self
            .commit_blob(package, digest, written.size, key, &extra)
            .await?;
        Ok((link, written))
    }

    /// Frees staged bytes that will not be committed.
    pub async fn discard_staged(&self, staged: StagedBlob) {
        discard_object(self, &staged.key, None).await;
    }

    /// Records a written object as the workspace's blob `digest` and links it to `package`,
    /// applying the `extra` writes made from the link in the same transaction. If the
    /// workspace holds that content already, the object is dropped and the package linked to
    /// the existing copy.
    ///
    /// Many requests may commit the same content at once (parallel pushes of one base layer):
    /// one creates the workspace's record, the others link to it, each waiting its turn for
    /// up to [`COMMIT_PATIENCE`] rather than failing its client. Whatever happens, the object
    /// is kept only if it became the workspace's copy.
    pub(crate) async fn commit_blob(
        &self,
        package: &PackageRecord,
        digest: Digest,
        size: u64,
        object_key: String,
        extra: &LinkWrites<'_>,
    ) -> Result<BlobLink> {
        let record = BlobRecord {
            digest,
            size,
            object_key,
            created_at: self.now(),
        };
        let committed = self.commit_or_link(package, &record, extra).await;
        if !matches!(committed, Ok(Committed::Ours(_))) {
            discard_object(self, &record.object_key, None).await;
        }
        committed.map(Committed::into_link)
    }

    async fn commit_or_link(
        &self,
        package: &PackageRecord,
        record: &BlobRecord,
        extra: &LinkWrites<'_>,
    ) -> Result<Committed> {
        self.prepare_commit(&package.workspace, record.size).await?;
        let deadline = Instant::now() + COMMIT_PATIENCE;
        for round in 0.. {
            // New to the workspace: this object becomes its copy.
            let mut writes = vec![
                Write::Put(
                    Put::new(
                        keys::blob(&package.workspace, &record.digest),
                        encode(record),
                    )
                    .when(Condition::Absent),
                ),
                Write::Put(Put::new(
                    keys::blob_link(&package.partition(), &record.digest),
                    encode(record),
                )),
                Write::Put(Put::new(
                    keys::object_index(&package.workspace, &record.object_key),
                    encode(&ObjectRecord {
                        digest: record.digest.clone(),
                    }),
                )),
            ];
            writes.extend(extra(record));
            match self.transact(writes).await {
                Ok(()) => {
                    self.count_stored(&package.workspace, record.size as i64)
                        .await;
                    return Ok(Committed::Ours(record.clone()));
                }
                Err(MetadataError::ConditionFailed { index: Some(0) }) => {}
                Err(other) => return Err(lost_race(other)),
            }
            // The workspace holds it already: link to that copy.
            match self.link_existing(package, &record.digest, extra).await? {
                Linked::Done(link) => return Ok(Committed::Existing(link)),
                // Collected in between (ours can be the copy after all), or changed by
                // another request: try again.
                Linked::Gone | Linked::Raced => {}
            }
            if Instant::now() >= deadline {
                break;
            }
            crate::wait_turn(round).await;
        }
        Err(Error::Busy)
    }

    /// Checks the plan's limit for content about to be stored, and makes sure the collector
    /// will look at the workspace (a blob nothing comes to use is garbage): one batch read,
    /// and a write only when the workspace is not marked yet. Neither the usage counter nor
    /// the mark is written in a blob's transaction, which every push of the workspace would
    /// then contend for.
    async fn prepare_commit(&self, workspace: &stowage_domain::Slug, incoming: u64) -> Result<()> {
        let items = self
            .metadata()
            .get_many(&[
                keys::workspace(workspace),
                keys::stored_bytes(workspace),
                keys::collection_due(workspace),
            ])
            .await?;
        let Some(workspace_item) = &items[0] else {
            return Err(Error::NotFound(Entity::Workspace));
        };
        let plan = decode::<crate::records::WorkspaceRecord>(workspace_item)?.plan;
        let stored = items[1].as_ref().map_or(0, |item| item.count.max(0) as u64);
        let limit = self.settings().plan_limits.of(plan);
        if stored.saturating_add(incoming) > limit {
            return Err(Error::QuotaExceeded { limit, stored });
        }
        if items[2].is_none() {
            self.metadata()
                .write(mark_for_collection(workspace))
                .await?;
        }
        Ok(())
    }

    /// Adds newly stored bytes to the workspace's counter. A failure leaves the counter short
    /// until the purge's recount repairs it; the content is stored all the same.
    async fn count_stored(&self, workspace: &stowage_domain::Slug, delta: i64) {
        let counted = self
            .metadata()
            .write(Write::Add {
                key: keys::stored_bytes(workspace),
                delta,
            })
            .await;
        if let Err(error) = counted {
            tracing::warn!(?error, %workspace, "could not count stored bytes");
        }
    }

    /// Links the workspace's blob `digest` to `package`, with `extra` writes, rewriting the
    /// blob's record unchanged on the condition that it is as read: that bumps its version, so
    /// a collection of the blob that began before cannot finish. When the package already has
    /// a young link to that very copy (another request of a parallel push made it moments
    /// ago) and there is nothing else to write, that link serves: while it is young the
    /// collector takes neither it nor its blob.
    async fn link_existing(
        &self,
        package: &PackageRecord,
        digest: &Digest,
        extra: &LinkWrites<'_>,
    ) -> Result<Linked> {
        let key = keys::blob(&package.workspace, digest);
        let link_key = keys::blob_link(&package.partition(), digest);
        let items = self
            .metadata()
            .get_many(&[key.clone(), link_key.clone()])
            .await?;
        let Some(item) = &items[0] else {
            return Ok(Linked::Gone);
        };
        let existing: BlobRecord = decode(item)?;
        let now = self.now();
        // The link's age is its own: the collector gives new links a grace period.
        let link = BlobLink {
            created_at: now,
            ..existing.clone()
        };
        let extra_writes = extra(&link);
        if extra_writes.is_empty()
            && let Some(linked) = &items[1]
        {
            let current: BlobLink = decode(linked)?;
            let young = current.created_at + self.settings().collection_grace / 2 > now;
            if young && current.object_key == existing.object_key {
                return Ok(Linked::Done(current));
            }
        }
        let mut writes = vec![
            Write::Put(Put::new(key, item.data.clone()).when(Condition::Version(item.version))),
            Write::Put(Put::new(link_key, encode(&link))),
        ];
        writes.extend(extra_writes);
        match self.transact(writes).await {
            Ok(()) => Ok(Linked::Done(link)),
            Err(MetadataError::ConditionFailed { index: Some(0) }) => Ok(Linked::Raced),
            Err(other) => Err(lost_race(other)),
        }
    }

    /// Links a blob the workspace already holds to `package` (a cross-repository mount; the
    /// caller has checked read access on the source). `NotFound` if the workspace no longer
    /// holds it.
    pub async fn link_blob(&self, package: &PackageRecord, digest: &Digest) -> Result<BlobLink> {
        let deadline = Instant::now() + COMMIT_PATIENCE;
        for round in 0.. {
            match self.link_existing(package, digest, &|_| Vec::new()).await? {
                Linked::Done(link) => return Ok(link),
                Linked::Gone => return Err(Error::NotFound(Entity::Blob)),
                Linked::Raced if Instant::now() < deadline => crate::wait_turn(round).await,
                Linked::Raced => break,
            }
        }
        Err(Error::Busy)
    }

    /// Removes a package's link to a blob; `NotFound` if it had none. The blob itself is
    /// collected later if nothing else uses it.
    pub async fn unlink_blob(&self, package: &PackageRecord, digest: &Digest) -> Result<()> {
        self.transact(vec![
            Write::Delete {
                key: keys::blob_link(&package.partition(), digest),
                condition: Condition::Exists,
            },
            mark_for_collection(&package.workspace),
        ])
        .await
        .map_err(|error| match error {
            MetadataError::ConditionFailed { .. } => Error::NotFound(Entity::Blob),
            other => other.into(),
        })
    }
}

/// How long a commit keeps trying while others commit the same content.
const COMMIT_PATIENCE: Duration = Duration::from_secs(20);

/// How a commit ended: with this request's object as the workspace's copy, or linked to the
/// copy the workspace had.
enum Committed {
    Ours(BlobLink),
    Existing(BlobLink),
}

impl Committed {
    fn into_link(self) -> BlobLink {
        match self {
            Committed::Ours(link) | Committed::Existing(link) => link,
        }
    }
}

/// How an attempt to link to the workspace's copy of a blob went.
enum Linked {
    Done(BlobLink),
    /// The workspace does not hold the blob (any more).
    Gone,
    /// Its record changed between the read and the write.
    Raced,
}

/// Notes that a workspace's blobs may have become garbage, for the collector.
pub(crate) fn mark_for_collection(workspace: &stowage_domain::Slug) -> Write {
    Write::Put(Put::new(keys::collection_due(workspace), Vec::new()))
}

/// A failed condition of the caller's own writes means another request changed what this
/// one depended on.
fn lost_race(error: MetadataError) -> Error {
    match error {
        MetadataError::ConditionFailed { .. } => {
            Error::conflict("another request changed this at the same time; nothing was stored")
        }
        other => other.into(),
    }
}
