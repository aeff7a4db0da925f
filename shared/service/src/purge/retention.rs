//! Deletions whose retention has run out, found from the due index, purged parent last.

use stowage_domain::{PackageName, PackageType, Slug};
use stowage_storage::{Condition, Item, Query, SortRange, Write};

use super::{Finished, PAGE, Run};
use crate::Result;
use crate::blobs::mark_for_collection;
use crate::records::{
    BlobRecord, DueItem, DueTarget, PackageRecord, RepositoryRecord, WorkspaceRecord, decode, keys,
};

impl Run<'_> {
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

    async fn package_named(
        &self,
        workspace: &Slug,
        kind: PackageType,
        name: &PackageName,
    ) -> Result<Option<PackageRecord>> {
        let key = keys::package(workspace, kind, name);
        match self.registry.metadata().get(&key).await? {
            Some(item) => Ok(Some(decode(&item)?)),
            None => Ok(None),
        }
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
                let Some(package) = self.package_named(workspace, *kind, name).await? else {
                    return Ok(true);
                };
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
                let own = format!("{repository}#");
                for query in [
                    Query::prefix(keys::members_partition(workspace), own.clone(), PAGE).on_index(),
                    Query::prefix(keys::pipelines_partition(workspace), own, PAGE).on_index(),
                    Query::prefix(
                        keys::workspace_partition(workspace),
                        keys::upstreams_of_repository_prefix(repository),
                        PAGE,
                    ),
                ] {
                    if !self.delete_matching(query).await? {
                        return Ok(false);
                    }
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
            DueTarget::CachedPackage {
                workspace,
                kind,
                name,
            } => {
                let Some(package) = self.package_named(workspace, *kind, name).await? else {
                    return Ok(true);
                };
                if package.upstream.is_none() || package.deleted.is_some() {
                    return Ok(true);
                }
                let last_use = registry.last_use(&package).await?;
                if last_use + registry.settings().upstream_evict_after > self.now {
                    // Read since: looked at again once it may have gone unused.
                    registry
                        .metadata()
                        .write(registry.eviction(&package, last_use))
                        .await?;
                    return Ok(true);
                }
                // Its links go with it; a blob a local package also uses keeps that link.
                let evicted = self.purge_package(&package).await?;
                if evicted {
                    self.report
                        .purged
                        .push(format!("cache/{workspace}/{kind}/{name}"));
                }
                Ok(evicted)
            }
            DueTarget::AuditEvent { workspace, id } => {
                registry
                    .metadata()
                    .write(Write::Delete {
                        key: keys::audit(workspace, id),
                        condition: Condition::None,
                    })
                    .await?;
                Ok(true)
            }
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
            (keys::members_partition(workspace), String::new()),
            (keys::pipelines_partition(workspace), String::new()),
        ] {
            if !self
                .delete_matching(Query::prefix(partition, prefix, PAGE).on_index())
                .await?
            {
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
            keys::collection_candidates_partition(workspace),
            keys::object_index_partition(workspace),
            keys::usage_partition(workspace),
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

    pub(super) async fn purge_due(&mut self) -> Result<Finished> {
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
                match due.target {
                    DueTarget::AuditEvent { .. } => self.report.audit_events_expired += 1,
                    // Reported when evicted, not when looked at and kept.
                    DueTarget::CachedPackage { .. } => {}
                    _ => self.report.purged.push(due.target.id()),
                }
            }
        }
    }
}
