//! Garbage collection: blobs that no link and no record uses, collected in two phases (see
//! the race argument at the head of the purge).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use stowage_domain::{Digest, PackageType, Slug};
use stowage_storage::{Condition, Item, MetadataError, Put, Query, Write};

use super::{Finished, PAGE, Run};
use crate::records::{BlobLink, BlobRecord, PackageRecord, WorkspaceRecord, decode, encode, keys};
use crate::{RecordKind, Result, UpstreamCopies};

/// A blob marked as unused by one run, for a later run to delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcCandidate {
    pub digest: Digest,
    pub size: u64,
    pub object_key: String,
    /// The version of the blob's record when it was found unused.
    pub version: u64,
    pub marked_at: DateTime<Utc>,
    /// Its record is gone and its object is being deleted: a run killed in between leaves
    /// this, and the next run deletes the object.
    #[serde(default)]
    pub deleting: bool,
}

impl Run<'_> {
    pub(super) async fn collect_garbage(&mut self) -> Result<Finished> {
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
            .all(Query::prefix(
                keys::collection_candidates_partition(workspace),
                "",
                PAGE,
            ))
            .await?;
        let mut pending = false;
        for item in &candidates {
            let candidate: GcCandidate = decode(item)?;
            if !candidate.deleting && candidate.marked_at + grace > self.now {
                pending = true;
                continue;
            }
            self.collect_candidate(workspace, item, candidate).await?;
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
            if linked.contains(&blob.digest) || already.contains(blob.digest.as_str()) {
                continue;
            }
            // Too young to tell: a later run looks again, so the workspace stays marked.
            if blob.created_at + grace > self.now {
                pending = true;
                continue;
            }
            let candidate = GcCandidate {
                digest: blob.digest.clone(),
                size: blob.size,
                object_key: blob.object_key.clone(),
                version: item.version,
                marked_at: self.now,
                deleting: false,
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

    /// Deletes a blob marked unused, if it still is: its record (on the condition that no
    /// one used it since the mark) in one transaction that also marks the candidate as being
    /// deleted, then its object, then the candidate. A run killed anywhere leaves either the
    /// record (the blob is whole) or the candidate marked deleting (the next run finishes).
    async fn collect_candidate(
        &mut self,
        workspace: &Slug,
        item: &Item,
        mut candidate: GcCandidate,
    ) -> Result<()> {
        let registry = self.registry;
        if !candidate.deleting {
            candidate.deleting = true;
            let taken = registry
                .transact(vec![
                    Write::Delete {
                        key: keys::blob(workspace, &candidate.digest),
                        condition: Condition::Version(candidate.version),
                    },
                    Write::Delete {
                        key: keys::object_index(workspace, &candidate.object_key),
                        condition: Condition::None,
                    },
                    Write::Put(
                        Put::new(item.key.clone(), encode(&candidate))
                            .when(Condition::Version(item.version)),
                    ),
                ])
                .await;
            match taken {
                Ok(()) => {}
                // Used again since it was marked: it stays.
                Err(MetadataError::ConditionFailed { index: Some(0) }) => {
                    registry
                        .metadata()
                        .write(Write::Delete {
                            key: item.key.clone(),
                            condition: Condition::None,
                        })
                        .await?;
                    return Ok(());
                }
                Err(other) => return Err(other.into()),
            }
            // Not in the transaction: pushes add to the counter without one, and would
            // contend with it. A run killed before this leaves drift the recount repairs.
            registry
                .metadata()
                .write(Write::Add {
                    key: keys::stored_bytes(workspace),
                    delta: -(candidate.size as i64),
                })
                .await?;
            self.report.blobs_collected += 1;
        }
        registry.blobs().delete(&candidate.object_key).await?;
        self.report.objects_deleted += 1;
        registry
            .metadata()
            .write(Write::Delete {
                key: item.key.clone(),
                condition: Condition::None,
            })
            .await?;
        Ok(())
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
            if item
                .key
                .sort
                .starts_with(<UpstreamCopies as RecordKind>::PREFIX)
            {
                match UpstreamCopies::decode(item) {
                    Ok(copy) => referenced.insert(copy.digest),
                    Err(_) => return false,
                };
                continue;
            }
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
        for item in items
            .iter()
            .filter(|i| i.key.sort.starts_with(keys::BLOB_LINK_PREFIX))
        {
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;
    use stowage_domain::{
        Digest, DigestAlgorithm, ManualClock, PackageName, PackageType, Plan, Principal,
    };
    use stowage_storage::Item;
    use stowage_storage_embedded::{FileBlobStore, SqliteMetadataStore, UrlSigner};

    use sha2::Digest as _;

    use crate::purge::ContentReader;
    use crate::{BootstrapToken, Credential, NewPackage, PackageRecord, Registry, Settings};

    /// A protocol whose links are all in use: what decides is whether a link exists.
    struct LinksOnly;

    impl ContentReader for LinksOnly {
        fn tracks_references(&self, _: PackageType) -> bool {
            false
        }

        fn references(&self, _: PackageType, _: &Item) -> Option<Vec<Digest>> {
            Some(Vec::new())
        }
    }

    struct World {
        registry: Registry,
        clock: Arc<ManualClock>,
        package: PackageRecord,
        _dir: tempfile::TempDir,
    }

    async fn world() -> World {
        let dir = tempfile::tempdir().expect("temporary folder");
        let signer = UrlSigner::new(
            url::Url::parse("http://127.0.0.1:1/").expect("url"),
            vec![7; 32],
        );
        let blobs = FileBlobStore::open(&dir.path().join("blobs"), signer).expect("blob store");
        let metadata = SqliteMetadataStore::open(&dir.path().join("db")).expect("metadata store");
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        let registry = Registry::new(
            Arc::new(metadata),
            Arc::new(blobs),
            clock.clone(),
            Settings::default(),
        );
        let secret = registry
            .bootstrap_site_admin(BootstrapToken::Generate)
            .await
            .expect("bootstrap")
            .expect("a new token");
        let admin: Principal = registry
            .authenticate(&Credential::Bearer(secret))
            .await
            .expect("admin");
        let slug = |s: &str| stowage_domain::Slug::parse("slug", s).expect("slug");
        registry
            .create_workspace(&admin, slug("acme"), Plan::Standard)
            .await
            .expect("workspace");
        registry
            .create_repository(&admin, "acme", slug("web"))
            .await
            .expect("repository");
        let package = registry
            .create_package(
                &admin,
                "acme",
                NewPackage {
                    kind: PackageType::Container,
                    name: PackageName::parse(PackageType::Container, "name", "web/site")
                        .expect("name"),
                    repository: slug("web"),
                },
            )
            .await
            .expect("package");
        World {
            registry,
            clock,
            package,
            _dir: dir,
        }
    }

    impl World {
        /// Stores `bytes` as a blob of the package; its digest and object.
        async fn store(&self, bytes: &'static [u8]) -> (Digest, String) {
            let body: stowage_storage::ByteStream =
                Box::pin(futures_util::stream::once(async move {
                    Ok(Bytes::from_static(bytes))
                }));
            let link = self
                .registry
                .store_blob(&self.package, body, None, None)
                .await
                .expect("store");
            let digest = Digest::from_hex(
                DigestAlgorithm::Sha256,
                &hex::encode(sha2::Sha256::digest(bytes)),
            );
            (digest, link.object_key)
        }

        async fn collect(&self) -> u64 {
            let report = self
                .registry
                .purge(&LinksOnly, Duration::from_secs(60))
                .await
                .expect("purge");
            assert!(report.finished);
            report.blobs_collected
        }

        async fn object_exists(&self, key: &str) -> bool {
            self.registry
                .blobs()
                .size(key)
                .await
                .expect("size")
                .is_some()
        }

        fn after_grace(&self) {
            let grace = self.registry.settings().collection_grace;
            self.clock.advance(grace + chrono::Duration::seconds(1));
        }
    }

    /// A blob nothing links is left alone while young (a push may be about to link it), then
    /// marked by one run and deleted by a run after the grace period, never by the run that
    /// marks it; the workspace stays marked for collection until then.
    #[tokio::test]
    async fn an_unused_blob_is_marked_then_deleted_after_the_grace_period() {
        let world = world().await;
        let (digest, object) = world.store(b"unused").await;
        world
            .registry
            .unlink_blob(&world.package, &digest)
            .await
            .expect("unlink");
        assert_eq!(world.collect().await, 0, "too young to mark");
        world.after_grace();
        assert_eq!(world.collect().await, 0, "this run marks it");
        assert_eq!(
            world.collect().await,
            0,
            "within the grace period of its mark"
        );
        assert!(world.object_exists(&object).await);
        world.after_grace();
        assert_eq!(world.collect().await, 1);
        assert!(!world.object_exists(&object).await, "its object is gone");
    }

    /// A blob used again between the mark and the delete (its record rewritten by the new
    /// link) is kept, however long the wait.
    #[tokio::test]
    async fn a_blob_used_again_after_its_mark_is_kept() {
        let world = world().await;
        let (digest, object) = world.store(b"reused").await;
        world
            .registry
            .unlink_blob(&world.package, &digest)
            .await
            .expect("unlink");
        world.after_grace();
        assert_eq!(world.collect().await, 0, "marked");
        world.store(b"reused").await;
        world.after_grace();
        assert_eq!(world.collect().await, 0);
        assert!(
            world.object_exists(&object).await,
            "the linked blob keeps its object"
        );
    }

    /// A linked blob is never a candidate.
    #[tokio::test]
    async fn a_linked_blob_is_never_collected() {
        let world = world().await;
        let (_, object) = world.store(b"linked").await;
        let mark = crate::mark_for_collection(&world.package.workspace);
        world.registry.transact(vec![mark]).await.expect("mark");
        for _ in 0..2 {
            world.collect().await;
            world.after_grace();
        }
        assert_eq!(world.collect().await, 0);
        assert!(world.object_exists(&object).await);
    }
}
