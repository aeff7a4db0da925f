//! The purge: what a scheduled run does, in bounded steps within a time budget. Every step is
//! idempotent and the parent of what it deletes goes last, so a run killed at any point leaves
//! nothing half-deleted in sight (the target was hidden since its deletion), and the next run
//! finishes the job.
//!
//! 1. Targets past their retention, from the due index (never a scan of the table).
//! 2. Upload sessions abandoned for longer than the grace period, and multipart uploads of
//!    that age that no writer finished.
//! 3. Garbage: blobs that nothing uses. For each workspace marked since the last run:
//!    - candidates marked by an earlier run, past the grace period, are deleted, on the
//!      condition that their record's version is the one seen when they were marked;
//!    - the versions of all blob records are read, *then* every package's links: a link made
//!      after the first read rewrote the record (new version), so its blob cannot be deleted;
//!    - links that no record of their package uses (no manifest, npm version or Maven
//!      file), past the grace period, are dropped (a manifest written meanwhile touched them,
//!      failing the conditional delete);
//!    - blobs that no link and no record uses become candidates for the next run;
//!    - the stored-bytes counter is checked against a recount and repaired.
//!
//! The race with a push, written down: a blob is deleted only if (a) no link to it existed
//! when its record was read, (b) its record is unchanged since, and (c) a grace period has
//! passed since it was marked. Every way of starting to use a blob (a new link, a dedup hit, a
//! mount) rewrites its record in the same transaction as the link, which breaks (b); an upload
//! in flight has no record yet; a manifest being written touches its links in its own
//! transaction, which breaks the conditional delete of a link.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use stowage_domain::{Digest, PackageType, Slug};
use stowage_storage::{
    Condition, Item, MAX_TRANSACTION_WRITES, MetadataError, Put, Query, SortRange,
    UnfinishedUpload, Write,
};

use crate::blobs::mark_for_collection;
use crate::records::{
    BlobLink, BlobRecord, DueItem, DueTarget, PackageRecord, RepositoryRecord, WorkspaceRecord,
    decode, encode, keys,
};
use crate::uploads::{UPLOADS_INDEX, UploadRecord};
use crate::{Registry, Result};

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
    /// Due targets purged completely.
    pub purged: Vec<String>,
    pub items_deleted: u64,
    pub objects_deleted: u64,
    pub uploads_expired: u64,
    /// Multipart uploads that no writer finished (it died, or failed to abort), aborted.
    pub unfinished_aborted: u64,
    pub links_collected: u64,
    pub blobs_collected: u64,
    /// Workspaces whose stored-bytes counter was corrected by a recount, and by how much.
    pub usage_repaired: Vec<(String, i64)>,
    /// False when the time budget ran out first; the next run goes on.
    pub finished: bool,
}

/// A blob marked as unused by one run, for a later run to delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcCandidate {
    pub digest: Digest,
    pub size: u64,
    pub object_key: String,
    /// The version of the blob's record when it was found unused.
    pub version: u64,
    pub marked_at: DateTime<Utc>,
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

    async fn delete_by_index(&mut self, partition: String, prefix: String) -> Result<Finished> {
        loop {
            if self.out_of_time() {
                return Ok(false);
            }
            let page = self
                .registry
                .metadata()
                .query(&Query::prefix(partition.clone(), prefix.clone(), PAGE).on_index())
                .await?;
            if page.items.is_empty() {
                return Ok(true);
            }
            self.delete_items(&page.items, None).await?;
        }
    }

    /// Empties a package's partition, then deletes the package.
    async fn purge_package(&mut self, package: &PackageRecord) -> Result<Finished> {
        let partition = package.partition();
        loop {
            if self.out_of_time() {
                return Ok(false);
            }
            let page = self
                .registry
                .metadata()
                .query(&Query::prefix(partition.clone(), "", PAGE))
                .await?;
            if page.items.is_empty() {
                break;
            }
            self.delete_items(&page.items, Some(mark_for_collection(&package.workspace)))
                .await?;
        }
        let key = keys::package(&package.workspace, package.kind, &package.name);
        self.registry
            .metadata()
            .write(Write::Delete {
                key,
                condition: Condition::None,
            })
            .await?;
        self.report.items_deleted += 1;
        Ok(true)
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

    /// Whether a record's deletion has run out (and so whether the purge may touch it).
    fn is_due(&self, deleted: Option<&crate::records::Deletion>) -> bool {
        deleted.is_some_and(|d| d.purge_after <= self.now)
    }

    async fn purge_target(&mut self, target: &DueTarget) -> Result<Finished> {
        let registry = self.registry;
        match target {
            DueTarget::Package {
                workspace,
                kind,
                name,
            } => {
                let Some(item) = registry
                    .metadata()
                    .get(&keys::package(workspace, *kind, name))
                    .await?
                else {
                    return Ok(true);
                };
                let package: PackageRecord = decode(&item)?;
                if !self.is_due(package.deleted.as_ref()) {
                    return Ok(true);
                }
                self.purge_package(&package).await
            }
            DueTarget::Repository {
                workspace,
                repository,
            } => {
                let Some(item) = registry
                    .metadata()
                    .get(&keys::repository(workspace, repository))
                    .await?
                else {
                    return Ok(true);
                };
                let record: RepositoryRecord = decode(&item)?;
                if !self.is_due(record.deleted.as_ref()) {
                    return Ok(true);
                }
                for package in self.packages_of(workspace).await? {
                    if &package.repository == repository && !self.purge_package(&package).await? {
                        return Ok(false);
                    }
                }
                let members = format!("MEMBERS#{workspace}");
                if !self
                    .delete_by_index(members, format!("{repository}#"))
                    .await?
                {
                    return Ok(false);
                }
                if !self
                    .delete_by_index(format!("PIPELINES#{workspace}"), format!("{repository}#"))
                    .await?
                {
                    return Ok(false);
                }
                registry
                    .metadata()
                    .write(Write::Delete {
                        key: item.key,
                        condition: Condition::None,
                    })
                    .await?;
                self.report.items_deleted += 1;
                Ok(true)
            }
            DueTarget::Workspace { workspace } => self.purge_workspace(workspace).await,
        }
    }

    async fn purge_workspace(&mut self, workspace: &Slug) -> Result<Finished> {
        let registry = self.registry;
        let Some(item) = registry.metadata().get(&keys::workspace(workspace)).await? else {
            return Ok(true);
        };
        let record: WorkspaceRecord = decode(&item)?;
        if !self.is_due(record.deleted.as_ref()) {
            return Ok(true);
        }
        for package in self.packages_of(workspace).await? {
            if !self.purge_package(&package).await? {
                return Ok(false);
            }
        }
        for (partition, prefix) in [
            (format!("MEMBERS#{workspace}"), String::new()),
            (format!("PIPELINES#{workspace}"), String::new()),
        ] {
            if !self.delete_by_index(partition, prefix).await? {
                return Ok(false);
            }
        }
        // The blobs: each object, then its record.
        loop {
            if self.out_of_time() {
                return Ok(false);
            }
            let page = registry
                .metadata()
                .query(&Query::prefix(keys::blobs_partition(workspace), "", PAGE))
                .await?;
            if page.items.is_empty() {
                break;
            }
            for blob in &page.items {
                let record: BlobRecord = decode(blob)?;
                registry.blobs().delete(&record.object_key).await?;
                self.report.objects_deleted += 1;
            }
            self.delete_items(&page.items, None).await?;
        }
        for partition in [
            keys::workspace_partition(workspace),
            format!("GC#{workspace}"),
            format!("USAGE#{workspace}"),
        ] {
            loop {
                if self.out_of_time() {
                    return Ok(false);
                }
                let page = registry
                    .metadata()
                    .query(&Query::prefix(partition.clone(), "", PAGE))
                    .await?;
                // The workspace's own record goes last of all.
                let rest: Vec<Item> = page
                    .items
                    .into_iter()
                    .filter(|i| i.key != item.key)
                    .collect();
                if rest.is_empty() {
                    break;
                }
                self.delete_items(&rest, None).await?;
            }
        }
        registry
            .metadata()
            .write(Write::Delete {
                key: keys::collection_due(workspace),
                condition: Condition::None,
            })
            .await?;
        registry
            .metadata()
            .write(Write::Delete {
                key: item.key,
                condition: Condition::None,
            })
            .await?;
        self.report.items_deleted += 1;
        Ok(true)
    }

    async fn purge_due(&mut self) -> Result<Finished> {
        let now = keys::sortable_time(self.now);
        loop {
            let query = Query {
                range: SortRange::Between {
                    start: String::new(),
                    end: format!("{now}\u{10FFFF}"),
                },
                ..Query::prefix(keys::DUE_PARTITION, "", PAGE)
            };
            let page = self.registry.metadata().query(&query).await?;
            if page.items.is_empty() {
                return Ok(true);
            }
            for item in &page.items {
                if self.out_of_time() {
                    return Ok(false);
                }
                let due: DueItem = decode(item)?;
                if !self.purge_target(&due.target).await? {
                    return Ok(false);
                }
                self.registry
                    .metadata()
                    .write(Write::Delete {
                        key: item.key.clone(),
                        condition: Condition::None,
                    })
                    .await?;
                self.report.purged.push(due.target.id());
            }
        }
    }

    async fn expire_uploads(&mut self) -> Result<Finished> {
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
                ..Query::prefix(UPLOADS_INDEX, "", PAGE).on_index()
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
    async fn abort_unfinished(&mut self) -> Result<Finished> {
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

    async fn collect_garbage(&mut self) -> Result<Finished> {
        let marks = self
            .all(Query::prefix(keys::COLLECTION_DUE_PARTITION, "", PAGE))
            .await?;
        for mark in marks {
            if self.out_of_time() {
                return Ok(false);
            }
            let Ok(workspace) = Slug::parse("workspace", &mark.key.sort) else {
                continue;
            };
            // A deleted workspace's blobs go with it at its purge (a restore marks it again);
            // a mark that outlived its workspace is dropped.
            match self
                .registry
                .metadata()
                .get(&keys::workspace(&workspace))
                .await?
            {
                None => {
                    self.registry
                        .metadata()
                        .write(Write::Delete {
                            key: mark.key.clone(),
                            condition: Condition::None,
                        })
                        .await?;
                    continue;
                }
                Some(item) if decode::<WorkspaceRecord>(&item)?.deleted.is_some() => continue,
                Some(_) => {}
            }
            if !self.collect_workspace(&workspace, mark.version).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn collect_workspace(&mut self, workspace: &Slug, mark_version: u64) -> Result<Finished> {
        let registry = self.registry;
        let grace = registry.settings().collection_grace;
        // 1. Delete what an earlier run found unused, if it still is.
        let candidates = self
            .all(Query::prefix(format!("GC#{workspace}"), "", PAGE))
            .await?;
        let mut pending = false;
        for item in &candidates {
            let candidate: GcCandidate = decode(item)?;
            if candidate.marked_at + grace > self.now {
                pending = true;
                continue;
            }
            let deleted = registry
                .transact(vec![
                    Write::Delete {
                        key: keys::blob(workspace, &candidate.digest),
                        condition: Condition::Version(candidate.version),
                    },
                    Write::Add {
                        key: keys::stored_bytes(workspace),
                        delta: -(candidate.size as i64),
                    },
                    Write::Delete {
                        key: item.key.clone(),
                        condition: Condition::None,
                    },
                ])
                .await;
            match deleted {
                Ok(()) => {
                    registry.blobs().delete(&candidate.object_key).await?;
                    self.report.blobs_collected += 1;
                    self.report.objects_deleted += 1;
                }
                // Used again since it was marked: it stays.
                Err(MetadataError::ConditionFailed { .. }) => {
                    registry
                        .metadata()
                        .write(Write::Delete {
                            key: item.key.clone(),
                            condition: Condition::None,
                        })
                        .await?;
                }
                Err(other) => return Err(other.into()),
            }
        }
        if self.out_of_time() {
            return Ok(false);
        }
        // 2. Every blob record, read before any link.
        let counted_before = registry
            .metadata()
            .get(&keys::stored_bytes(workspace))
            .await?
            .map_or(0, |i| i.count);
        let blobs = self
            .all(Query::prefix(keys::blobs_partition(workspace), "", PAGE))
            .await?;
        // 3. The links in use, after dropping container links no manifest uses.
        let mut linked: HashSet<Digest> = HashSet::new();
        for package in self.packages_of(workspace).await? {
            if self.out_of_time() {
                return Ok(false);
            }
            pending |= self.links_in_use(&package, &mut linked).await?;
        }
        // 4. Unused blobs past the grace period become candidates.
        let mut recount: i64 = 0;
        let already: HashSet<String> = candidates.iter().map(|c| c.key.sort.clone()).collect();
        for item in &blobs {
            let blob: BlobRecord = decode(item)?;
            recount += blob.size as i64;
            if linked.contains(&blob.digest)
                || blob.created_at + grace > self.now
                || already.contains(blob.digest.as_str())
            {
                continue;
            }
            let candidate = GcCandidate {
                digest: blob.digest.clone(),
                size: blob.size,
                object_key: blob.object_key.clone(),
                version: item.version,
                marked_at: self.now,
            };
            registry
                .metadata()
                .write(Write::Put(Put::new(
                    keys::collection_candidate(workspace, &blob.digest),
                    encode(&candidate),
                )))
                .await?;
            pending = true;
        }
        // 5. The counter against the recount, unless a push changed it meanwhile.
        let counted_after = registry
            .metadata()
            .get(&keys::stored_bytes(workspace))
            .await?
            .map_or(0, |i| i.count);
        if counted_before == counted_after && counted_after != recount {
            let delta = recount - counted_after;
            registry
                .metadata()
                .write(Write::Add {
                    key: keys::stored_bytes(workspace),
                    delta,
                })
                .await?;
            self.report
                .usage_repaired
                .push((workspace.to_string(), delta));
        }
        // 6. Done with this workspace, unless candidates wait or it was marked again meanwhile.
        if !pending {
            let cleared = registry
                .metadata()
                .write(Write::Delete {
                    key: keys::collection_due(workspace),
                    condition: Condition::Version(mark_version),
                })
                .await;
            if let Err(error) = cleared
                && !matches!(error, MetadataError::ConditionFailed { .. })
            {
                return Err(error.into());
            }
        }
        Ok(true)
    }

    /// Collects the blobs a package's items use into `referenced`; false when an item cannot
    /// be read, so that none of the package's links is taken for unused.
    fn referenced(
        &self,
        kind: PackageType,
        items: &[Item],
        referenced: &mut HashSet<Digest>,
    ) -> bool {
        for item in items {
            match self.reader.references(kind, item) {
                Some(digests) => referenced.extend(digests),
                None => {
                    tracing::warn!(key = ?item.key, "an unreadable record: the package's links are all kept");
                    return false;
                }
            }
        }
        true
    }

    /// Adds the digests a package's links use to `linked`; for packages that track
    /// references, first drops links that no record uses, past the grace period.
    async fn links_in_use(
        &mut self,
        package: &PackageRecord,
        linked: &mut HashSet<Digest>,
    ) -> Result<bool> {
        let items = self
            .all(Query::prefix(package.partition(), "", PAGE))
            .await?;
        let mut referenced = HashSet::new();
        let tracks = self.reader.tracks_references(package.kind)
            && self.referenced(package.kind, &items, &mut referenced);
        // What a record uses stays, even without a link (a blob deleted from the package
        // while a manifest of it still names it).
        linked.extend(referenced.iter().cloned());
        let grace = self.registry.settings().collection_grace;
        let mut waiting = false;
        for item in items.iter().filter(|i| i.key.sort.starts_with("BLOB#")) {
            let link: BlobLink = decode(item)?;
            let unreferenced = tracks && !referenced.contains(&link.digest);
            let young = link.created_at + grace > self.now;
            waiting |= unreferenced && young;
            if !unreferenced || young {
                linked.insert(link.digest);
                continue;
            }
            let dropped = self
                .registry
                .metadata()
                .write(Write::Delete {
                    key: item.key.clone(),
                    condition: Condition::Version(item.version),
                })
                .await;
            match dropped {
                Ok(()) => self.report.links_collected += 1,
                // A manifest took it up meanwhile.
                Err(MetadataError::ConditionFailed { .. }) => {
                    linked.insert(link.digest);
                }
                Err(other) => return Err(other.into()),
            }
        }
        Ok(waiting)
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
            && run.collect_garbage().await?;
        run.report.finished = finished;
        Ok(run.report)
    }
}

/// The usage of a workspace, counted from its records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// The running counter, kept on every push and collection (what plan limits check).
    pub stored_bytes: u64,
    /// Unique bytes stored, counted now: a blob used by several packages counts once.
    pub total_bytes: u64,
    /// Bytes used by at least one package that is billed (not deleted, in a live workspace;
    /// a deleted repository's packages are still billed until the purge).
    pub billable_bytes: u64,
    pub not_billable_bytes: u64,
    /// Unique bytes used by each repository's packages.
    pub by_repository: BTreeMap<String, u64>,
    /// Unique bytes used by packages of each type.
    pub by_type: BTreeMap<String, u64>,
}

impl Registry {
    /// Counts a workspace's usage from its blob records and every package's links: a query of
    /// each package's links, so its cost grows with the workspace (this is a report for its
    /// admin, never on a push path; pushes check the running counter).
    pub async fn count_usage(&self, workspace: &Slug) -> Result<Usage> {
        let run = Run {
            registry: self,
            reader: &NoContent,
            deadline: Instant::now() + Duration::from_secs(3600),
            now: self.now(),
            report: PurgeReport::default(),
        };
        let stored_bytes = self
            .metadata()
            .get(&keys::stored_bytes(workspace))
            .await?
            .map_or(0, |i| i.count.max(0) as u64);
        let mut sizes: BTreeMap<Digest, u64> = BTreeMap::new();
        for item in run
            .all(Query::prefix(keys::blobs_partition(workspace), "", PAGE))
            .await?
        {
            let blob: BlobRecord = decode(&item)?;
            sizes.insert(blob.digest, blob.size);
        }
        let workspace_live = self
            .metadata()
            .get(&keys::workspace(workspace))
            .await?
            .map(|item| decode::<WorkspaceRecord>(&item))
            .transpose()?
            .is_some_and(|w| w.deleted.is_none());
        let mut billable: HashSet<Digest> = HashSet::new();
        let mut by_repository: BTreeMap<String, HashSet<Digest>> = BTreeMap::new();
        let mut by_type: BTreeMap<String, HashSet<Digest>> = BTreeMap::new();
        for package in run.packages_of(workspace).await? {
            let links = run
                .all(Query::prefix(package.partition(), "BLOB#", PAGE))
                .await?;
            for item in &links {
                let link: BlobLink = decode(item)?;
                if workspace_live && package.deleted.is_none() {
                    billable.insert(link.digest.clone());
                }
                by_repository
                    .entry(package.repository.to_string())
                    .or_default()
                    .insert(link.digest.clone());
                by_type
                    .entry(package.kind.to_string())
                    .or_default()
                    .insert(link.digest);
            }
        }
        let sum = |set: &HashSet<Digest>| {
            set.iter()
                .map(|d| sizes.get(d).copied().unwrap_or(0))
                .sum::<u64>()
        };
        let total_bytes: u64 = sizes.values().sum();
        let billable_bytes = sum(&billable);
        Ok(Usage {
            stored_bytes,
            total_bytes,
            billable_bytes,
            not_billable_bytes: total_bytes.saturating_sub(billable_bytes),
            by_repository: by_repository
                .iter()
                .map(|(k, v)| (k.clone(), sum(v)))
                .collect(),
            by_type: by_type.iter().map(|(k, v)| (k.clone(), sum(v))).collect(),
        })
    }

    /// A workspace's usage, for its admin.
    pub async fn workspace_usage(
        &self,
        caller: &stowage_domain::Principal,
        workspace: &str,
    ) -> Result<Usage> {
        let (record, _) = self.workspace_for_admin(caller, workspace).await?;
        self.count_usage(&record.slug).await
    }
}

/// For counting usage: links are all it needs.
struct NoContent;

impl ContentReader for NoContent {
    fn tracks_references(&self, _: PackageType) -> bool {
        false
    }

    fn references(&self, _: PackageType, _: &Item) -> Option<Vec<Digest>> {
        Some(Vec::new())
    }
}
