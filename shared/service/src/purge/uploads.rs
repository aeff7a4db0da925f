//! Uploads nobody finished: sessions abandoned longer than the grace period, and multipart
//! uploads of that age whose writer died.

use chrono::{DateTime, Utc};
use stowage_storage::{Query, SortRange, UnfinishedUpload};

use super::{Finished, PAGE, Run};
use crate::Result;
use crate::records::{decode, keys};
use crate::uploads::UploadRecord;

impl Run<'_> {
    pub(super) async fn expire_uploads(&mut self) -> Result<Finished> {
        let cutoff = keys::sortable_time(self.now - self.registry.settings().collection_grace);
        loop {
            if self.out_of_time() {
                return Ok(false);
            }
            let query = Query {
                range: SortRange::Between {
                    start: String::new(),
                    end: cutoff.clone(),
                },
                ..Query::prefix(keys::UPLOADS_INDEX, "", PAGE).on_index()
            };
            let page = self.registry.metadata().query(&query).await?;
            if page.items.is_empty() {
                return Ok(true);
            }
            for item in &page.items {
                let upload: UploadRecord = decode(item)?;
                self.registry
                    .drop_upload(&upload, item.version, upload.multipart.as_deref())
                    .await;
                self.report.uploads_expired += 1;
            }
        }
    }

    /// Aborts multipart uploads started longer than the grace period ago: their writers are
    /// gone (an upload session of that age is expired by the step before, and no single
    /// request runs that long), whether they died or failed to abort them.
    pub(super) async fn abort_unfinished(&mut self) -> Result<Finished> {
        let cutoff = self.now - self.registry.settings().collection_grace;
        let mut after: Option<String> = None;
        loop {
            if self.out_of_time() {
                return Ok(false);
            }
            let page = self
                .registry
                .blobs()
                .list_unfinished(keys::OBJECTS_PREFIX, after.as_deref(), PAGE)
                .await?;
            // Dated by its key where the key says (the service's clock), else by the store.
            let old = |upload: &&UnfinishedUpload| {
                keys::object_made_at(&upload.key)
                    .unwrap_or_else(|| DateTime::<Utc>::from(upload.started_at))
                    < cutoff
            };
            for upload in page.uploads.iter().filter(old) {
                self.registry
                    .blobs()
                    .abort_multipart(&upload.key, &upload.upload_id)
                    .await?;
                self.report.unfinished_aborted += 1;
            }
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(true),
            }
        }
    }
}
