use std::pin::Pin;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;

/// A body of bytes read or written piece by piece, so no blob is ever held whole in memory.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// S3's lower bound on every part of a multipart upload but the last; both adapters enforce it.
pub const MIN_MULTIPART_PART: u64 = 5 * 1024 * 1024;

/// A range of bytes, as an HTTP `Range: bytes=start-end` asks (end inclusive, open if `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: Option<u64>,
}

/// A read of a blob, or of a range of it.
pub struct BlobRead {
    /// The size of the whole blob.
    pub total_size: u64,
    /// The range served: `start..=end`, within the blob.
    pub start: u64,
    pub end: u64,
    pub body: ByteStream,
}

impl BlobRead {
    pub fn len(&self) -> u64 {
        if self.total_size == 0 {
            0
        } else {
            self.end - self.start + 1
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a presigned read URL may set on the response it is answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignOptions {
    pub expires_in: Duration,
    pub content_type: Option<String>,
    pub content_disposition: Option<String>,
}

/// A part of a multipart upload, as `put_part` returned it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CompletedPart {
    pub number: u32,
    pub etag: String,
    pub size: u64,
}

/// A multipart upload that was started and neither completed nor aborted: its writer died,
/// or failed to abort it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnfinishedUpload {
    pub key: String,
    pub upload_id: String,
    pub started_at: SystemTime,
}

/// An object of the store, as a listing gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub key: String,
    pub size: u64,
}

/// A page of objects, in key order; `next`, when present, resumes after its last.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectPage {
    pub objects: Vec<StoredObject>,
    pub next: Option<String>,
}

/// A page of unfinished uploads; `next`, when present, resumes after its last.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnfinishedPage {
    pub uploads: Vec<UnfinishedUpload>,
    pub next: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob not found")]
    NotFound,
    /// The requested range starts beyond the end of the blob.
    #[error("range not satisfiable for a blob of {size} bytes")]
    InvalidRange { size: u64 },
    /// A multipart upload cannot be completed: a part but the last is under
    /// [`MIN_MULTIPART_PART`], a part is missing, or the upload is unknown.
    #[error("invalid multipart upload: {0}")]
    InvalidMultipart(String),
    /// The store has no room left (a full disk under the embedded store).
    #[error("the blob store is full")]
    StorageFull,
    #[error("blob backend failed: {message}")]
    Backend {
        message: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl BlobError {
    pub fn backend(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Backend {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

/// The blob port: bytes under string keys (`a/b/c`, no leading `/`, no `..`).
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Writes a whole, small object (replacing any object under the key).
    async fn put(&self, key: &str, body: Bytes) -> Result<(), BlobError>;

    /// Reads an object, or the part of it `range` asks for. `NotFound` if absent;
    /// `InvalidRange` if the range starts at or beyond the end of a non-empty object.
    async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<BlobRead, BlobError>;

    /// The size of an object, or `None` if absent.
    async fn size(&self, key: &str) -> Result<Option<u64>, BlobError>;

    /// Deletes an object. Deleting an absent object succeeds.
    async fn delete(&self, key: &str) -> Result<(), BlobError>;

    /// A URL from which anyone holding it may GET the object until it expires. Computed
    /// locally: no round trip to the backend, and no check that the object exists.
    async fn presign_get(&self, key: &str, options: &PresignOptions) -> Result<String, BlobError>;

    /// Starts a multipart upload to `key`; returns its id.
    async fn start_multipart(&self, key: &str) -> Result<String, BlobError>;

    /// Uploads part `number` of a multipart upload. Parts are numbered from 1 and sent in
    /// order; sending part `n` again replaces it (and, on the embedded store, drops the parts
    /// after it), which is how an interrupted chunk is retried.
    async fn put_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        body: Bytes,
    ) -> Result<CompletedPart, BlobError>;

    /// Joins the parts into the object under `key`. Every part but the last must be at least
    /// [`MIN_MULTIPART_PART`] bytes, else `InvalidMultipart` and the upload stays open.
    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> Result<(), BlobError>;

    /// Abandons a multipart upload and frees its parts. Aborting an unknown upload succeeds.
    async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), BlobError>;

    /// The objects whose keys start with `prefix`, in key order, up to `limit` of them,
    /// after the key `after`. For the purge's reconciliation, never on a request's path.
    async fn list_objects(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ObjectPage, BlobError>;

    /// Multipart uploads under `prefix` that were started and neither completed nor aborted,
    /// up to `limit` of them, resuming after `after` (a page's `next`). An upload whose key is
    /// unknown (started by an older version of the embedded store) is listed under every
    /// prefix.
    async fn list_unfinished(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<UnfinishedPage, BlobError>;
}
