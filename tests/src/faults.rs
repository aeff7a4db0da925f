//! Storage that misbehaves on request: a blob store whose deletes fail (what a crash between
//! two steps leaves), and a metadata store whose transactions pause (a slow or stalled store).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use stowage_storage::{
    BlobError, BlobRead, BlobStore, ByteRange, CompletedPart, Item, Key, MetadataError,
    MetadataStore, ObjectPage, Page, PresignOptions, Query, UnfinishedPage, Write,
};

pub struct FaultyBlobStore {
    inner: Arc<dyn BlobStore>,
    failing_deletes: AtomicUsize,
}

impl FaultyBlobStore {
    pub fn new(inner: Arc<dyn BlobStore>) -> Self {
        Self {
            inner,
            failing_deletes: AtomicUsize::new(0),
        }
    }

    /// The next `count` deletes fail, and delete nothing.
    pub fn fail_deletes(&self, count: usize) {
        self.failing_deletes.store(count, Ordering::SeqCst);
    }

    fn take_failure(&self) -> bool {
        self.failing_deletes
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(1)
            })
            .is_ok()
    }
}

#[async_trait]
impl BlobStore for FaultyBlobStore {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), BlobError> {
        self.inner.put(key, body).await
    }

    async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<BlobRead, BlobError> {
        self.inner.get(key, range).await
    }

    async fn size(&self, key: &str) -> Result<Option<u64>, BlobError> {
        self.inner.size(key).await
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        if self.take_failure() {
            return Err(BlobError::Backend {
                message: "injected: the process died before this delete".into(),
                source: None,
            });
        }
        self.inner.delete(key).await
    }

    async fn presign_get(&self, key: &str, options: &PresignOptions) -> Result<String, BlobError> {
        self.inner.presign_get(key, options).await
    }

    async fn start_multipart(&self, key: &str) -> Result<String, BlobError> {
        self.inner.start_multipart(key).await
    }

    async fn put_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        body: Bytes,
    ) -> Result<CompletedPart, BlobError> {
        self.inner.put_part(key, upload_id, number, body).await
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> Result<(), BlobError> {
        self.inner.complete_multipart(key, upload_id, parts).await
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), BlobError> {
        self.inner.abort_multipart(key, upload_id).await
    }

    async fn list_objects(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ObjectPage, BlobError> {
        self.inner.list_objects(prefix, after, limit).await
    }

    async fn list_unfinished(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<UnfinishedPage, BlobError> {
        self.inner.list_unfinished(prefix, after, limit).await
    }
}

/// A metadata store that can pause, as a slow or stalled storage does: transactions that
/// delete an item whose sort key starts with a given prefix wait before they run, which
/// widens the window in which a racing request can slip in.
pub struct PausingMetadataStore {
    inner: Arc<dyn MetadataStore>,
    pause: std::sync::Mutex<Option<(String, std::time::Duration)>>,
}

impl PausingMetadataStore {
    pub fn new(inner: Arc<dyn MetadataStore>) -> Self {
        Self {
            inner,
            pause: std::sync::Mutex::new(None),
        }
    }

    /// From now on, transactions deleting an item under `sort_prefix` wait `pause` first
    /// (`None`: no more pauses).
    pub fn pause_deletes(&self, pause: Option<(&str, std::time::Duration)>) {
        *self.pause.lock().expect("pause") = pause.map(|(prefix, wait)| (prefix.to_owned(), wait));
    }

    fn pause_for(&self, writes: &[Write]) -> Option<std::time::Duration> {
        let pause = self.pause.lock().expect("pause").clone()?;
        writes
            .iter()
            .any(|write| matches!(write, Write::Delete { key, .. } if key.sort.starts_with(&pause.0)))
            .then_some(pause.1)
    }
}

#[async_trait]
impl MetadataStore for PausingMetadataStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, MetadataError> {
        self.inner.get(key).await
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, MetadataError> {
        self.inner.get_many(keys).await
    }

    async fn write(&self, write: Write) -> Result<(), MetadataError> {
        self.inner.write(write).await
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), MetadataError> {
        if let Some(wait) = self.pause_for(&writes) {
            tokio::time::sleep(wait).await;
        }
        self.inner.transact(writes).await
    }

    async fn query(&self, query: &Query) -> Result<Page, MetadataError> {
        self.inner.query(query).await
    }
}
