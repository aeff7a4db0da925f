//! Storage usage, counted from the records: unique bytes, billable and not, by repository and
//! type.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use serde::Serialize;
use stowage_domain::{Digest, PackageType, Slug};
use stowage_storage::{Item, Query};

use super::{ContentReader, PAGE, PurgeReport, Run};
use crate::records::{BlobLink, BlobRecord, WorkspaceRecord, decode, keys};
use crate::{Registry, Result};

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
    /// Unique bytes used by packages that are cached copies of an upstream's (counted in the
    /// totals above too: a cache is storage like any other, kept in bounds by eviction).
    pub cached_bytes: u64,
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
        let mut cached: HashSet<Digest> = HashSet::new();
        let mut by_repository: BTreeMap<String, HashSet<Digest>> = BTreeMap::new();
        let mut by_type: BTreeMap<String, HashSet<Digest>> = BTreeMap::new();
        for package in run.packages_of(workspace).await? {
            let links = run
                .all(Query::prefix(
                    package.partition(),
                    keys::BLOB_LINK_PREFIX,
                    PAGE,
                ))
                .await?;
            for item in &links {
                let link: BlobLink = decode(item)?;
                if workspace_live && package.deleted.is_none() {
                    billable.insert(link.digest.clone());
                }
                if package.upstream.is_some() {
                    cached.insert(link.digest.clone());
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
            cached_bytes: sum(&cached),
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
