//! The purge: what a scheduled run does, in bounded steps within a time budget. Every step is
//! idempotent and the parent of what it deletes goes last, so a run killed at any point leaves
//! nothing half-deleted in sight (the target was hidden since its deletion), and the next run
//! finishes the job.
//!
//! 1. Targets past their retention, from the due index (never a scan of the table).
//! 2. Upload sessions abandoned for longer than the grace period, and multipart uploads of
//!    that age that no writer finished.
//! 3. Garbage: blobs that nothing uses (`collection`). For each workspace marked since the
//!    last run:
//!    - candidates marked by an earlier run, past the grace period, are deleted, on the
//!      condition that their record's version is the one seen when they were marked;
//!    - the versions of all blob records are read, *then* every package's links: a link made
//!      after the first read rewrote the record (new version), so its blob cannot be deleted;
//!    - links that no record of their package uses (no manifest, npm version or Maven
//!      file), past the grace period, are dropped (a manifest written meanwhile touched them,
//!      failing the conditional delete);
//!    - blobs that no link and no record uses become candidates for the next run;
//!    - the stored-bytes counter is checked against a recount and repaired.
//! 4. Objects that no record names (`reconcile`), once a day: what a process killed between
//!    writing an object and recording it leaves.
//!
//! The race with a push, written down: a blob is deleted only if (a) no link to it existed
//! when its record was read, (b) its record is unchanged since, and (c) a grace period has
//! passed since it was marked. Every way of starting to use a blob (a new link, a dedup hit, a
//! mount) rewrites its record in the same transaction as the link, which breaks (b), or adopts
//! a link made moments before by one that did, which (a) keeps while it is young; an upload in
//! flight has no record yet; a manifest being written touches its links in its own
//! transaction, which breaks the conditional delete of a link. Deleting a candidate takes its
//! record first, marking the candidate as deleting in the same transaction, then the object:
//! a run killed in between leaves the mark for the next run to finish.

mod collection;
mod reconcile;
mod retention;
mod uploads;
mod usage;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use stowage_domain::{Digest, PackageType, Slug};
use stowage_storage::{Condition, Item, MAX_TRANSACTION_WRITES, Query, Write};

use crate::records::{PackageRecord, decode, keys};
use crate::{Registry, Result};

pub use collection::GcCandidate;
pub use usage::Usage;

const PAGE: usize = 100;

/// What a protocol's records say about blobs, for the purge: the registry itself knows only
/// links.
pub trait ContentReader: Send + Sync {
    /// Whether packages of this kind keep blobs linked that no record uses any more (OCI: a
    /// blob pushed, or left by a deleted manifest), so that links must be checked against
    /// [`ContentReader::references`].
    fn tracks_references(&self, kind: PackageType) -> bool;

    /// The blobs an item of a package uses (none for an item that is not a record of use);
    /// `None` when the item cannot be read, and so every link of its package is kept. A blob
    /// a record uses is never collected, with or without a link.
    fn references(&self, kind: PackageType, item: &Item) -> Option<Vec<Digest>>;
}

/// What a run did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct PurgeReport {
    /// Due targets purged completely (workspaces, repositories, packages).
    pub purged: Vec<String>,
    /// Events of audit trails past the retention period, removed.
    pub audit_events_expired: u64,
    pub items_deleted: u64,
    pub objects_deleted: u64,
    pub uploads_expired: u64,
    /// Multipart uploads that no writer finished (it died, or failed to abort), aborted.
    pub unfinished_aborted: u64,
    pub links_collected: u64,
    pub blobs_collected: u64,
    /// Objects that no record named, found by the reconciliation and deleted.
    pub orphans_deleted: u64,
    /// Workspaces whose stored-bytes counter was corrected by a recount, and by how much.
    pub usage_repaired: Vec<(String, i64)>,
    /// False when the time budget ran out first; the next run goes on.
    pub finished: bool,
}

struct Run<'a> {
    registry: &'a Registry,
    reader: &'a dyn ContentReader,
    deadline: Instant,
    now: DateTime<Utc>,
    report: PurgeReport,
}

/// Whether a step finished, or stopped because time ran out.
type Finished = bool;

impl Run<'_> {
    fn out_of_time(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Every item of a query, a page at a time.
    async fn all(&self, mut query: Query) -> Result<Vec<Item>> {
        let mut items = Vec::new();
        loop {
            let page = self.registry.metadata().query(&query).await?;
            items.extend(page.items);
            match page.next {
                Some(cursor) => query = query.after(Some(cursor)),
                None => return Ok(items),
            }
        }
    }

    /// Deletes items, a transaction at a time. Blob objects are never theirs alone: the
    /// collector frees them once no link and no record uses them.
    async fn delete_items(&mut self, items: &[Item], then: Option<Write>) -> Result<()> {
        for batch in items.chunks(MAX_TRANSACTION_WRITES - 1) {
            let mut writes: Vec<Write> = batch
                .iter()
                .map(|item| Write::Delete {
                    key: item.key.clone(),
                    condition: Condition::None,
                })
                .collect();
            writes.extend(then.clone());
            self.registry.transact(writes).await?;
            self.report.items_deleted += batch.len() as u64;
        }
        Ok(())
    }

    /// Deletes every item `query` finds, a page at a time (the query is re-run: what it
    /// found is gone).
    async fn delete_matching(&mut self, query: Query) -> Result<Finished> {
        loop {
            if self.out_of_time() {
                return Ok(false);
            }
            let page = self.registry.metadata().query(&query).await?;
            if page.items.is_empty() {
                return Ok(true);
            }
            self.delete_items(&page.items, None).await?;
        }
    }

    async fn packages_of(&self, workspace: &Slug) -> Result<Vec<PackageRecord>> {
        let items = self
            .all(Query::prefix(
                keys::workspace_partition(workspace),
                keys::PACKAGE_PREFIX,
                PAGE,
            ))
            .await?;
        items.iter().map(decode).collect()
    }
}

impl Registry {
    /// One purge run, within `budget`: due targets, abandoned uploads, then garbage.
    pub async fn purge(&self, reader: &dyn ContentReader, budget: Duration) -> Result<PurgeReport> {
        let mut run = Run {
            registry: self,
            reader,
            deadline: Instant::now() + budget,
            now: self.now(),
            report: PurgeReport::default(),
        };
        let finished = run.purge_due().await?
            && run.expire_uploads().await?
            && run.abort_unfinished().await?
            && run.collect_garbage().await?
            && run.reconcile_objects().await?;
        run.report.finished = finished;
        Ok(run.report)
    }
}
