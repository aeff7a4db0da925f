//! Wrappers that count the calls made through a port, so tests and benchmarks can hold each
//! operation to its budget of storage round trips.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;

use crate::{
    BlobError, BlobRead, BlobStore, ByteRange, CompletedPart, Item, Key, MetadataError,
    MetadataStore, ObjectPage, Page, PresignOptions, Query, UnfinishedPage, Write,
};

/// Round trips made through a counted port, by kind.
#[derive(Debug, Default)]
pub struct CallCounts {
    pub reads: AtomicU64,
    pub queries: AtomicU64,
    pub writes: AtomicU64,
}

impl CallCounts {
    /// `(reads, queries, writes)` so far.
    pub fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.reads.load(Ordering::Relaxed),
            self.queries.load(Ordering::Relaxed),
            self.writes.load(Ordering::Relaxed),
        )
    }

    pub fn total(&self) -> u64 {
        let (reads, queries, writes) = self.snapshot();
        reads + queries + writes
    }

    pub fn reset(&self) {
        self.reads.store(0, Ordering::Relaxed);
        self.queries.store(0, Ordering::Relaxed);
        self.writes.store(0, Ordering::Relaxed);
    }

    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts every call to the metadata store: `get` and `get_many` are reads, `query` a query,
/// `write` and `transact` writes.
pub struct CountingMetadataStore {
    inner: Arc<dyn MetadataStore>,
    pub counts: Arc<CallCounts>,
}

impl CountingMetadataStore {
    pub fn new(inner: Arc<dyn MetadataStore>) -> Self {
        Self {
            inner,
            counts: Arc::default(),
        }
    }
}

#[async_trait]
impl MetadataStore for CountingMetadataStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, MetadataError> {
        CallCounts::bump(&self.counts.reads);
        self.inner.get(key).await
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, MetadataError> {
        CallCounts::bump(&self.counts.reads);
        self.inner.get_many(keys).await
    }

    async fn write(&self, write: Write) -> Result<(), MetadataError> {
        CallCounts::bump(&self.counts.writes);
        self.inner.write(write).await
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), MetadataError> {
        CallCounts::bump(&self.counts.writes);
        self.inner.transact(writes).await
    }

    async fn query(&self, query: &Query) -> Result<Page, MetadataError> {
        CallCounts::bump(&self.counts.queries);
        self.inner.query(query).await
    }
}

/// Counts the calls to the blob store that reach the backend (`presign_get` is local and is
/// not counted): `get`, `size` and the listings are reads, the rest writes.
pub struct CountingBlobStore {
    inner: Arc<dyn BlobStore>,
    pub counts: Arc<CallCounts>,
}

impl CountingBlobStore {
    pub fn new(inner: Arc<dyn BlobStore>) -> Self {
        Self {
            inner,
            counts: Arc::default(),
        }
    }
}

#[async_trait]
impl BlobStore for CountingBlobStore {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), BlobError> {
        CallCounts::bump(&self.counts.writes);
        self.inner.put(key, body).await
    }

    async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<BlobRead, BlobError> {
        CallCounts::bump(&self.counts.reads);
        self.inner.get(key, range).await
    }

    async fn size(&self, key: &str) -> Result<Option<u64>, BlobError> {
        CallCounts::bump(&self.counts.reads);
        self.inner.size(key).await
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        CallCounts::bump(&self.counts.writes);
        self.inner.delete(key).await
    }

    async fn presign_get(&self, key: &str, options: &PresignOptions) -> Result<String, BlobError> {
        self.inner.presign_get(key, options).await
    }

    async fn start_multipart(&self, key: &str) -> Result<String, BlobError> {
        CallCounts::bump(&self.counts.writes);
        self.inner.start_multipart(key).await
    }

    async fn put_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        body: Bytes,
    ) -> Result<CompletedPart, BlobError> {
        CallCounts::bump(&self.counts.writes);
        self.inner.put_part(key, upload_id, number, body).await
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> Result<(), BlobError> {
        CallCounts::bump(&self.counts.writes);
        self.inner.complete_multipart(key, upload_id, parts).await
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), BlobError> {
        CallCounts::bump(&self.counts.writes);
        self.inner.abort_multipart(key, upload_id).await
    }

    async fn list_objects(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ObjectPage, BlobError> {
        CallCounts::bump(&self.counts.reads);
        self.inner.list_objects(prefix, after, limit).await
    }

    async fn list_unfinished(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<UnfinishedPage, BlobError> {
        CallCounts::bump(&self.counts.reads);
        self.inner.list_unfinished(prefix, after, limit).await
    }
}
