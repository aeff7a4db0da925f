//! Resumable uploads: a blob pushed over several requests (OCI's chunked push), with all state
//! kept in storage between them, so any instance (any Lambda) can take the next request.
//!
//! Each request streams its bytes into the upload's multipart object in parts of
//! [`PART_SIZE`]; what is left at its end (under S3's 5 MiB floor for a part) is carried to the
//! next request as a small object. The running sha256 is saved with the session, so the last
//! request checks the digest without reading the blob back.
//!
//! Two requests on one upload must not interleave their parts: each request first *claims*
//! the session with a conditional write, and a request that finds it claimed is refused as out
//! of order. A claim left by a crashed request lapses after [`CLAIM_TTL`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use digest::common::hazmat::{SerializableState, SerializedState};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use stowage_domain::{Digest, PackageName, PackageType, Slug};
use stowage_storage::{
    BlobError, ByteStream, CompletedPart, Condition, MetadataError, Put, Query, Write,
};

use crate::records::{BlobLink, PackageRecord, decode, encode, keys};
use crate::writer::{MIN_PART, ObjectWriter, WriterState, discard_object, verify};
use crate::{Error, Registry, Result};

/// How long a request may hold an upload; longer than any request can run on Lambda, and
/// long enough for a large streamed chunk on the local server.
const CLAIM_TTL: chrono::Duration = chrono::Duration::minutes(10);

/// A resumable upload's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRecord {
    pub id: String,
    pub workspace: Slug,
    pub kind: PackageType,
    pub package: PackageName,
    pub started_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_until: Option<DateTime<Utc>>,
    /// Bytes received so far.
    pub offset: u64,
    /// The sha256 of those bytes, as the hasher's serialised state.
    pub sha256_state: String,
    pub object_key: String,
    pub multipart: Option<String>,
    pub parts: Vec<CompletedPart>,
    /// Bytes received but not yet in a part, kept as an object of their own.
    pub remainder: u64,
    /// Where those bytes are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remainder_key: Option<String>,
}

impl UploadRecord {
    fn belongs_to(&self, package: &PackageRecord) -> bool {
        self.workspace == package.workspace
            && self.kind == package.kind
            && self.package == package.name
    }
}

fn save_hasher(hasher: &Sha256) -> String {
    STANDARD.encode(hasher.serialize().as_slice())
}

fn load_hasher(state: &str) -> Result<Sha256> {
    let corrupt = || Error::Corrupt("an upload's hash state".into());
    let bytes = STANDARD.decode(state).map_err(|_| corrupt())?;
    let serialized = SerializedState::<Sha256>::try_from(&bytes[..]).map_err(|_| corrupt())?;
    Sha256::deserialize(&serialized).map_err(|_| corrupt())
}

impl Registry {
    /// Starts a resumable upload to `package`.
    pub async fn start_upload(&self, package: &PackageRecord) -> Result<UploadRecord> {
        let id = uuid::Uuid::new_v4().to_string();
        let now = self.now();
        let record = UploadRecord {
            id: id.clone(),
            workspace: package.workspace.clone(),
            kind: package.kind,
            package: package.name.clone(),
            started_at: now,
            claimed_until: None,
            offset: 0,
            sha256_state: save_hasher(&Sha256::default()),
            object_key: keys::new_object(&package.workspace, now),
            multipart: None,
            parts: Vec::new(),
            remainder: 0,
            remainder_key: None,
        };
        self.metadata()
            .write(Write::Put(
                Put::new(keys::upload(&id), encode(&record))
                    .indexed(keys::uploads_index(record.started_at, &id))
                    .when(Condition::Absent),
            ))
            .await?;
        Ok(record)
    }

    /// An upload of `package`, or `UploadUnknown` (also for an id of another package).
    pub async fn upload_status(&self, package: &PackageRecord, id: &str) -> Result<UploadRecord> {
        Ok(self.load_upload(package, id).await?.0)
    }

    async fn load_upload(&self, package: &PackageRecord, id: &str) -> Result<(UploadRecord, u64)> {
        let item = self
            .metadata()
            .get(&keys::upload(id))
            .await?
            .ok_or(Error::UploadUnknown)?;
        let record: UploadRecord = decode(&item)?;
        if !record.belongs_to(package) {
            return Err(Error::UploadUnknown);
        }
        Ok((record, item.version))
    }

    /// Takes the upload for this request: refused as out of order while another request holds
    /// it, or when `start` is not where the upload stands.
    async fn claim_upload(
        &self,
        package: &PackageRecord,
        id: &str,
        start: Option<u64>,
    ) -> Result<(UploadRecord, u64)> {
        let (mut record, version) = self.load_upload(package, id).await?;
        let now = self.now();
        let held_until = record.claimed_until.filter(|until| *until > now);
        if held_until.is_some() || start.is_some_and(|s| s != record.offset) {
            return Err(Error::UploadOutOfOrder {
                offset: record.offset,
                held_until,
            });
        }
        record.claimed_until = Some(now + CLAIM_TTL);
        self.metadata()
            .write(Write::Put(
                Put::new(keys::upload(id), encode(&record))
                    .indexed(keys::uploads_index(record.started_at, id))
                    .when(Condition::Version(version)),
            ))
            .await
            .map_err(|error| match error {
                MetadataError::ConditionFailed { .. } => Error::UploadOutOfOrder {
                    offset: record.offset,
                    held_until: None,
                },
                other => other.into(),
            })?;
        Ok((record, version + 1))
    }

    /// Rebuilds the writer of a claimed upload, with its carried bytes.
    async fn resume_writer(&self, record: &UploadRecord) -> Result<ObjectWriter<'_>> {
        let carried = self.read_carried(record).await?;
        let state = WriterState {
            multipart: record.multipart.clone(),
            parts: record.parts.clone(),
            size: record.offset,
            sha256: load_hasher(&record.sha256_state)?,
            carried,
        };
        ObjectWriter::resume(self, record.object_key.clone(), state)
    }

    /// The bytes an upload carries from its last chunk to its next.
    async fn read_carried(&self, record: &UploadRecord) -> Result<Bytes> {
        if record.remainder == 0 {
            return Ok(Bytes::new());
        }
        let key = record.remainder_key.as_deref().ok_or_else(|| {
            Error::Corrupt(format!(
                "upload {}: its carried bytes are unnamed",
                record.id
            ))
        })?;
        let carried = self
            .read_small_object(key, record.remainder as usize)
            .await?;
        if carried.len() as u64 != record.remainder {
            return Err(Error::Corrupt(format!(
                "upload {}: its carried bytes are missing",
                record.id
            )));
        }
        Ok(carried)
    }

    /// Saves a claimed upload and releases the claim.
    async fn save_upload(&self, record: &UploadRecord, claimed_version: u64) -> Result<()> {
        self.metadata()
            .write(Write::Put(
                Put::new(keys::upload(&record.id), encode(record))
                    .indexed(keys::uploads_index(record.started_at, &record.id))
                    .when(Condition::Version(claimed_version)),
            ))
            .await
            .map_err(|error| match error {
                MetadataError::ConditionFailed { .. } => Error::UploadOutOfOrder {
                    offset: record.offset,
                    held_until: None,
                },
                other => other.into(),
            })
    }

    /// Appends a chunk that must start at `start` (when the client says where) to an upload.
    /// At most `limit` bytes are taken.
    pub async fn append_upload(
        &self,
        package: &PackageRecord,
        id: &str,
        start: Option<u64>,
        body: ByteStream,
        limit: Option<u64>,
    ) -> Result<UploadRecord> {
        let (mut record, claimed) = self.claim_upload(package, id, start).await?;
        let before = record.clone();
        let (appended, started_multipart) = self.append_claimed(&mut record, body, limit).await;
        let saved = match appended {
            // Give the upload back as it was, so the client can send the chunk again.
            Err(error) => {
                let released = UploadRecord {
                    claimed_until: None,
                    ..before.clone()
                };
                self.save_upload(&released, claimed).await.and(Err(error))
            }
            Ok(()) => {
                record.claimed_until = None;
                self.save_upload(&record, claimed).await
            }
        };
        if let Err(error) = saved {
            // What this chunk wrote is nobody's (a failed save: the upload was taken over).
            if record.remainder_key != before.remainder_key {
                self.delete_carried(&record.id, record.remainder_key.as_deref())
                    .await;
            }
            if let Some(upload_id) = started_multipart {
                discard_object(self, &record.object_key, Some(&upload_id)).await;
            }
            return Err(error);
        }
        if before.remainder_key != record.remainder_key {
            self.delete_carried(&record.id, before.remainder_key.as_deref())
                .await;
        }
        Ok(record)
    }

    /// Deletes carried bytes no record points at any more; a failure is logged, as the
    /// object only takes space.
    async fn delete_carried(&self, upload: &str, key: Option<&str>) {
        let Some(key) = key else {
            return;
        };
        if let Err(error) = self.blobs().delete(key).await {
            tracing::warn!(?error, upload, "could not delete carried bytes");
        }
    }

    /// Appends a chunk to a claimed upload. Also returns the multipart upload the chunk
    /// started, if the upload had none before.
    async fn append_claimed(
        &self,
        record: &mut UploadRecord,
        body: ByteStream,
        limit: Option<u64>,
    ) -> (Result<()>, Option<String>) {
        let mut writer = match self.resume_writer(record).await {
            Ok(writer) => writer,
            Err(error) => return (Err(error), None),
        };
        let had_multipart = record.multipart.is_some();
        let appended = self.append_to(&mut writer, record, body, limit).await;
        let started = writer
            .multipart()
            .filter(|_| !had_multipart)
            .map(str::to_owned);
        (appended, started)
    }

    /// Takes a chunk into a resumed writer; `record` changes only if it all succeeds.
    async fn append_to(
        &self,
        writer: &mut ObjectWriter<'_>,
        record: &mut UploadRecord,
        body: ByteStream,
        limit: Option<u64>,
    ) -> Result<()> {
        writer.push_stream(body, limit).await?;
        writer.write_buffer_from(MIN_PART).await?;
        let most = self.settings().upload_parts_max;
        if writer.parts_written() > most {
            return Err(Error::TooLarge(format!(
                "an upload in chunks holds at most {most} parts ({} bytes so far): push the \
                 rest of this blob in larger chunks, or the whole in one request",
                writer.size()
            )));
        }
        let state = writer.state();
        // New carried bytes go to a new object; the old one goes once the record has moved on.
        let remainder_key = if state.carried.is_empty() {
            None
        } else {
            let key = keys::upload_remainder(&record.workspace, &record.id, self.now());
            self.blobs().put(&key, state.carried.clone()).await?;
            Some(key)
        };
        record.remainder_key = remainder_key;
        record.offset = state.size;
        record.remainder = state.carried.len() as u64;
        record.sha256_state = save_hasher(&state.sha256);
        record.multipart = state.multipart;
        record.parts = state.parts;
        Ok(())
    }

    /// Ends an upload with its last chunk (possibly empty), checks the whole against
    /// `expected`, and commits it as a blob of `package`. On a digest mismatch nothing of the
    /// upload is kept.
    pub async fn finish_upload(
        &self,
        package: &PackageRecord,
        id: &str,
        start: Option<u64>,
        body: ByteStream,
        expected: &Digest,
        limit: Option<u64>,
    ) -> Result<BlobLink> {
        let (record, claimed) = self.claim_upload(package, id, start).await?;
        let mut writer = self.resume_writer(&record).await?;
        if let Err(error) = writer.push_stream(body, limit).await {
            let mut released = record.clone();
            released.claimed_until = None;
            self.save_upload(&released, claimed).await?;
            return Err(error);
        }
        let key = writer.key().to_owned();
        let multipart = writer.multipart().map(str::to_owned);
        let written = match writer.finish().await {
            Ok(written) => written,
            Err(error) => {
                self.drop_upload(&record, claimed, multipart.as_deref())
                    .await;
                // The parts listed are not the parts stored: a late request replaced one.
                return Err(match error {
                    Error::Blob(BlobError::InvalidMultipart(_)) => Error::UploadBroken,
                    other => other,
                });
            }
        };
        if let Err(error) = verify(self, &key, &written, expected).await {
            self.drop_upload(&record, claimed, None).await;
            return Err(error);
        }
        self.delete_carried(&record.id, record.remainder_key.as_deref())
            .await;
        let finished = Write::Delete {
            key: keys::upload(id),
            condition: Condition::Version(claimed),
        };
        self.commit_blob(package, expected.clone(), written.size, key, &|_| {
            vec![finished.clone()]
        })
        .await
    }

    /// Releases every upload's hold: for a server starting on storage no other process
    /// serves (the embedded pair), where no request of an earlier run can still be going.
    /// Without this, an upload a crash interrupted stays held for up to `CLAIM_TTL`.
    pub async fn release_upload_holds(&self) -> Result<u64> {
        let mut released = 0;
        let mut query = Query::prefix(keys::UPLOADS_INDEX, "", 100).on_index();
        loop {
            let page = self.metadata().query(&query).await?;
            for item in &page.items {
                let mut record: UploadRecord = decode(item)?;
                if record.claimed_until.take().is_none() {
                    continue;
                }
                let write = Write::Put(
                    Put::new(keys::upload(&record.id), encode(&record))
                        .indexed(keys::uploads_index(record.started_at, &record.id))
                        .when(Condition::Version(item.version)),
                );
                match self.metadata().write(write).await {
                    Ok(()) => released += 1,
                    Err(MetadataError::ConditionFailed { .. }) => {}
                    Err(other) => return Err(other.into()),
                }
            }
            match page.next {
                Some(cursor) => query = query.after(Some(cursor)),
                None => return Ok(released),
            }
        }
    }

    /// Cancels an upload and frees what it wrote.
    pub async fn cancel_upload(&self, package: &PackageRecord, id: &str) -> Result<()> {
        let (record, version) = self.load_upload(package, id).await?;
        self.drop_upload(&record, version, record.multipart.as_deref())
            .await;
        Ok(())
    }

    /// Deletes an upload's record, carried bytes and object (or multipart upload).
    pub(crate) async fn drop_upload(
        &self,
        record: &UploadRecord,
        version: u64,
        multipart: Option<&str>,
    ) {
        self.delete_carried(&record.id, record.remainder_key.as_deref())
            .await;
        discard_object(self, &record.object_key, multipart).await;
        let deleted = self
            .metadata()
            .write(Write::Delete {
                key: keys::upload(&record.id),
                condition: Condition::Version(version),
            })
            .await;
        if let Err(error) = deleted {
            tracing::warn!(?error, upload = %record.id, "could not delete an upload's record");
        }
    }
}
