//! A blob store that fails on request, for what a crash between two steps leaves: a delete
//! that never happens, as when the process dies right before it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use stowage_storage::{
    BlobError, BlobRead, BlobStore, ByteRange, CompletedPart, ObjectPage, PresignOptions,
    UnfinishedPage,
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
