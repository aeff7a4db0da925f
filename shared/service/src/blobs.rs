//! Blob content: written once per workspace under a random key, found by its digest.
//!
//! A blob is streamed to the blob store as it arrives (in multipart parts of [`PART_SIZE`], so
//! memory stays flat whatever its size), hashed on the way, then *committed*: a workspace
//! record maps its digest to the object, and a link makes it part of one package. A second
//! upload of the same digest keeps the first object and drops its own: content is stored once
//! per workspace however many packages refer to it.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use sha2::{Digest as _, Sha256, Sha512};
use stowage_domain::{Digest, DigestAlgorithm};
use stowage_storage::{
    BlobError, ByteStream, CompletedPart, Condition, MIN_MULTIPART_PART, MetadataError,
    PresignOptions, Put, Write,
};

use crate::records::{BlobLink, BlobRecord, ObjectRecord, PackageRecord, decode, encode, keys};
use crate::{Entity, Error, PackageWrites, Registry, Result};

/// Parts written while streaming. Larger than S3's 5 MiB floor, so that a request's last
/// bytes can still make a valid part; the most an upload holds in memory.
pub const PART_SIZE: usize = 8 * 1024 * 1024;

/// What was learnt of a blob while writing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub size: u64,
    pub sha256: String,
    /// The other checksums, when they were asked for (hexadecimal).
    pub checksums: Option<Checksums>,
}

/// The checksums Maven repositories serve beside every file, besides sha256.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Checksums {
    pub md5: String,
    pub sha1: String,
    pub sha512: String,
}

/// The hashers of [`Checksums`], fed as the bytes stream past.
#[derive(Clone, Default)]
struct ChecksumHashers {
    md5: md5::Md5,
    sha1: sha1::Sha1,
    sha512: Sha512,
}

impl ChecksumHashers {
    fn update(&mut self, bytes: &[u8]) {
        self.md5.update(bytes);
        self.sha1.update(bytes);
        self.sha512.update(bytes);
    }

    fn finish(self) -> Checksums {
        Checksums {
            md5: hex::encode(self.md5.finalize()),
            sha1: hex::encode(self.sha1.finalize()),
            sha512: hex::encode(self.sha512.finalize()),
        }
    }
}

/// Writes that join a blob's transaction, made from the link it makes.
pub(crate) type LinkWrites<'a> = dyn Fn(&BlobLink) -> Vec<Write> + Send + Sync + 'a;

/// Room beyond a part in a writer's buffer, for the chunk that completes it.
const PART_SLACK: usize = 1024 * 1024;

/// A part being written while the next one is received.
type PartInFlight = tokio::task::JoinHandle<std::result::Result<CompletedPart, BlobError>>;

/// Streams bytes into one object: a plain PUT when they fit in one part, else a multipart
/// upload started on the first full part. While a request body streams in, each full part is
/// written in the background as the next one is received and hashed, so receiving, hashing
/// and storing overlap; at most one part is in flight.
///
/// Its invariant: `size` counts every byte hashed into `sha256`, which are the bytes of
/// `parts` followed by those of `buffer`. Only [`ObjectWriter::resume`] sets them from outside.
pub(crate) struct ObjectWriter<'a> {
    registry: &'a Registry,
    key: String,
    multipart: Option<String>,
    parts: Vec<CompletedPart>,
    in_flight: Option<PartInFlight>,
    buffer: BytesMut,
    size: u64,
    sha256: Sha256,
    checksums: Option<ChecksumHashers>,
}

/// Where an object being written stands between requests: what an upload in chunks keeps in
/// its record, and what a writer resumes from.
pub(crate) struct WriterState {
    pub multipart: Option<String>,
    pub parts: Vec<CompletedPart>,
    /// Every byte received so far, `carried` included.
    pub size: u64,
    pub sha256: Sha256,
    /// Bytes received and hashed, not yet in a part.
    pub carried: Bytes,
}

impl<'a> ObjectWriter<'a> {
    pub fn new(registry: &'a Registry, key: String) -> Self {
        Self {
            registry,
            key,
            multipart: None,
            parts: Vec::new(),
            in_flight: None,
            buffer: BytesMut::new(),
            size: 0,
            sha256: Sha256::new(),
            checksums: None,
        }
    }

    /// Goes on writing `key` from where an earlier writer left it.
    pub fn resume(registry: &'a Registry, key: String, state: WriterState) -> Result<Self> {
        if (state.carried.len() as u64) > state.size {
            return Err(Error::Corrupt(format!(
                "{key}: {} bytes carried of {} received",
                state.carried.len(),
                state.size
            )));
        }
        Ok(Self {
            multipart: state.multipart,
            parts: state.parts,
            buffer: BytesMut::from(&state.carried[..]),
            size: state.size,
            sha256: state.sha256,
            ..Self::new(registry, key)
        })
    }

    /// Where the writer stands, to resume from later. Parts in flight are settled first by
    /// [`ObjectWriter::push_stream`].
    pub fn state(&self) -> WriterState {
        WriterState {
            multipart: self.multipart.clone(),
            parts: self.parts.clone(),
            size: self.size,
            sha256: self.sha256.clone(),
            carried: Bytes::copy_from_slice(&self.buffer),
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn multipart(&self) -> Option<&str> {
        self.multipart.as_deref()
    }

    pub fn parts_written(&self) -> usize {
        self.parts.len()
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Writes the buffered bytes as a part if there are at least `min` of them, so that
    /// fewer bytes are carried to the next request.
    pub async fn write_buffer_from(&mut self, min: usize) -> Result<()> {
        if self.buffer.len() < min {
            return Ok(());
        }
        let part = std::mem::take(&mut self.buffer).freeze();
        self.write_part(part).await
    }

    /// Also computes md5, sha1 and sha512 (for a writer that starts from the first byte).
    fn with_checksums(mut self) -> Self {
        self.checksums = Some(ChecksumHashers::default());
        self
    }

    /// Takes a request body, up to `limit` bytes in all (the request's share). When it
    /// returns, every full part is written and `parts` lists it.
    pub async fn push_stream(&mut self, body: ByteStream, limit: Option<u64>) -> Result<u64> {
        let received = self.receive(body, limit).await;
        let written = self.settle_part().await;
        let received = received?;
        written?;
        Ok(received)
    }

    async fn receive(&mut self, mut body: ByteStream, limit: Option<u64>) -> Result<u64> {
        let mut received = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|error| {
                Error::SizeMismatch(format!("the request body broke off: {error}"))
            })?;
            received += chunk.len() as u64;
            if let Some(limit) = limit
                && received > limit
            {
                return Err(Error::TooLarge(format!(
                    "a request body may hold at most {limit} bytes"
                )));
            }
            self.push(&chunk).await?;
        }
        Ok(received)
    }

    async fn push(&mut self, bytes: &[u8]) -> Result<()> {
        self.sha256.update(bytes);
        if let Some(checksums) = &mut self.checksums {
            checksums.update(bytes);
        }
        self.size += bytes.len() as u64;
        self.append(bytes);
        while self.buffer.len() >= PART_SIZE {
            let part = self.buffer.split_to(PART_SIZE).freeze();
            self.start_part(part).await?;
        }
        Ok(())
    }

    /// Buffers bytes. Once a body is seen to be large, the buffer grows straight to a whole
    /// part, rather than by doublings that would end at twice a part (and copy it on the way).
    fn append(&mut self, bytes: &[u8]) {
        let needed = self.buffer.len() + bytes.len();
        if needed > self.buffer.capacity() && self.size > (PART_SIZE / 8) as u64 {
            let mut grown = BytesMut::with_capacity(PART_SIZE.max(needed) + PART_SLACK);
            grown.extend_from_slice(&self.buffer);
            self.buffer = grown;
        }
        self.buffer.extend_from_slice(bytes);
    }

    /// Writes one part and waits for it.
    async fn write_part(&mut self, part: Bytes) -> Result<()> {
        self.start_part(part).await?;
        self.settle_part().await
    }

    /// Starts writing a part in the background, once the one before it is written.
    async fn start_part(&mut self, part: Bytes) -> Result<()> {
        self.settle_part().await?;
        let blobs = self.registry.shared_blobs();
        let upload_id = match &self.multipart {
            Some(id) => id.clone(),
            None => {
                let id = blobs.start_multipart(&self.key).await?;
                self.multipart = Some(id.clone());
                id
            }
        };
        let number = self.parts.len() as u32 + 1;
        let key = self.key.clone();
        self.in_flight = Some(tokio::spawn(async move {
            blobs.put_part(&key, &upload_id, number, part).await
        }));
        Ok(())
    }

    /// Waits for the part in flight, if any, and records it.
    async fn settle_part(&mut self) -> Result<()> {
        let Some(in_flight) = self.in_flight.take() else {
            return Ok(());
        };
        let completed = in_flight
            .await
            .map_err(|join| BlobError::backend("part write stopped", join))??;
        self.parts.push(completed);
        Ok(())
    }

    /// Writes what is buffered and makes the object whole.
    pub async fn finish(mut self) -> Result<Written> {
        self.settle_part().await?;
        let blobs = self.registry.blobs();
        let rest = std::mem::take(&mut self.buffer).freeze();
        match self.multipart.clone() {
            None => blobs.put(&self.key, rest).await?,
            Some(upload_id) => {
                if !rest.is_empty() {
                    self.write_part(rest).await?;
                }
                blobs
                    .complete_multipart(&self.key, &upload_id, &self.parts)
                    .await?;
            }
        }
        Ok(Written {
            size: self.size,
            sha256: hex::encode(self.sha256.clone().finalize()),
            checksums: self.checksums.take().map(ChecksumHashers::finish),
        })
    }

    /// Frees whatever was written; for a failed or refused upload.
    pub async fn discard(mut self) {
        // The part in flight lands (or fails) before the upload is abandoned.
        if let Err(error) = self.settle_part().await {
            tracing::debug!(
                ?error,
                "a part in flight failed as its upload was discarded"
            );
        }
        discard_object(self.registry, &self.key, self.multipart.as_deref()).await;
    }
}

/// Deletes an object, or abandons its multipart upload; failures are logged, as the purge
/// collects what is left behind.
pub(crate) async fn discard_object(registry: &Registry, key: &str, multipart: Option<&str>) {
    let result = match multipart {
        Some(upload_id) => registry.blobs().abort_multipart(key, upload_id).await,
        None => registry.blobs().delete(key).await,
    };
    if let Err(error) = result {
        tracing::warn!(?error, key, "could not discard an unused object");
    }
}

/// Whether an object of `size` bytes with `sha256` matches `expected`. A sha512 digest is
/// checked by reading the object back: clients nearly always use sha256, and hashing both on
/// every upload would slow every push for a case that almost never comes.
pub(crate) async fn verify(
    registry: &Registry,
    key: &str,
    written: &Written,
    expected: &Digest,
) -> Result<()> {
    let actual = match expected.algorithm() {
        DigestAlgorithm::Sha256 => written.sha256.clone(),
        DigestAlgorithm::Sha512 => {
            let mut read = registry.blobs().get(key, None).await?;
            let mut hasher = Sha512::new();
            while let Some(chunk) = read.body.next().await {
                hasher.update(&chunk.map_err(|e| BlobError::backend("read back", e))?);
            }
            hex::encode(hasher.finalize())
        }
    };
    if actual == expected.hex() {
        Ok(())
    } else {
        Err(Error::DigestMismatch {
            expected: expected.to_string(),
            actual: Digest::from_hex(expected.algorithm(), &actual).to_string(),
        })
    }
}

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

/// The smallest carried remainder that is worth sending as a part of its own.
pub(crate) const MIN_PART: usize = MIN_MULTIPART_PART as usize;

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use stowage_domain::ManualClock;
    use stowage_storage_embedded::{FileBlobStore, SqliteMetadataStore, UrlSigner};

    use super::*;
    use crate::Settings;

    const MIB: usize = 1024 * 1024;

    fn registry(dir: &std::path::Path) -> Registry {
        let signer = UrlSigner::new(
            url::Url::parse("http://127.0.0.1:1/").expect("url"),
            vec![7; 32],
        );
        let blobs = FileBlobStore::open(&dir.join("blobs"), signer).expect("blob store");
        let metadata = SqliteMetadataStore::open(&dir.join("db")).expect("metadata store");
        Registry::new(
            Arc::new(metadata),
            Arc::new(blobs),
            Arc::new(ManualClock::new(chrono::Utc::now())),
            Settings::default(),
        )
    }

    fn bytes(len: usize, seed: u8) -> Bytes {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    fn body(chunks: Vec<Bytes>) -> ByteStream {
        Box::pin(futures_util::stream::iter(chunks.into_iter().map(Ok)))
    }

    /// An upload in chunks, as `uploads.rs` drives the writer: each request resumes it from
    /// the state the last one left, pushes its chunk and writes what it carries as a part
    /// when that is large enough. Every part but the last is at least the store's minimum,
    /// nothing is lost or repeated at the seams, and the hash runs across them.
    #[tokio::test]
    async fn chunks_become_parts_and_carried_bytes_without_loss() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let registry = registry(dir.path());
        let key = "ws/acme/blobs/unit".to_owned();
        let chunk_sizes = [3 * MIB, 6 * MIB + 1, MIB, 9 * MIB, 2 * MIB + 7];
        let mut sent = Vec::new();
        let mut state: Option<WriterState> = None;
        for (i, size) in chunk_sizes.into_iter().enumerate() {
            let chunk = bytes(size, i as u8);
            sent.extend_from_slice(&chunk);
            let mut writer = match state.take() {
                Some(state) => ObjectWriter::resume(&registry, key.clone(), state).expect("resume"),
                None => ObjectWriter::new(&registry, key.clone()),
            };
            // Sent in uneven pieces, as a network delivers a body.
            let pieces = vec![chunk.slice(..size / 3), chunk.slice(size / 3..)];
            writer.push_stream(body(pieces), None).await.expect("push");
            writer.write_buffer_from(MIN_PART).await.expect("part");
            let now = writer.state();
            assert_eq!(now.size, sent.len() as u64, "chunk {i}: every byte counted");
            let in_parts: u64 = now.parts.iter().map(|part| part.size).sum();
            assert_eq!(in_parts + now.carried.len() as u64, now.size, "chunk {i}");
            assert!(
                now.carried.len() < MIN_PART || now.carried.len() < PART_SIZE,
                "chunk {i}"
            );
            assert!(
                now.parts.iter().all(|part| part.size >= MIN_MULTIPART_PART),
                "chunk {i}: {:?}",
                now.parts
            );
            state = Some(now);
        }
        let writer =
            ObjectWriter::resume(&registry, key.clone(), state.expect("state")).expect("resume");
        let written = writer.finish().await.expect("finish");
        assert_eq!(written.size, sent.len() as u64);
        assert_eq!(written.sha256, hex::encode(Sha256::digest(&sent)));
        let stored = registry
            .read_small_object(&key, sent.len())
            .await
            .expect("read back");
        assert!(stored == sent, "the object holds exactly what was sent");
    }

    #[tokio::test]
    async fn a_state_that_carries_more_than_it_received_is_refused() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let registry = registry(dir.path());
        let state = WriterState {
            multipart: None,
            parts: Vec::new(),
            size: 2,
            sha256: Sha256::new(),
            carried: Bytes::from_static(b"three"),
        };
        let resumed = ObjectWriter::resume(&registry, "ws/acme/blobs/x".into(), state);
        assert!(matches!(resumed, Err(Error::Corrupt(_))));
    }
}
