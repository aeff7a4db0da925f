//! Writing one object of the blob store from a stream: in multipart parts of [`PART_SIZE`],
//! so memory stays flat whatever its size, hashed on the way, with one part written while the
//! next is received. An upload in chunks keeps a [`WriterState`] between requests and resumes
//! the writer from it.

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use sha2::{Digest as _, Sha256, Sha512};
use stowage_domain::{Digest, DigestAlgorithm};
use stowage_storage::{BlobError, ByteStream, CompletedPart, MIN_MULTIPART_PART};

use crate::{Error, Registry, Result};

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
    pub fn with_checksums(mut self) -> Self {
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
