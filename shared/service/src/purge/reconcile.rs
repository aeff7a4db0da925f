//! The reconciliation: a walk of the blob store for objects that no record names — what a
//! process killed between writing an object and recording it leaves, which no record leads the
//! purge to. Objects older than the grace period (dated by their time-ordered keys) whose
//! naming record is missing are deleted. The walk is bounded by the run's time and resumes
//! where it stopped; a whole walk is made at most once every [`RECONCILE_EVERY`], as it lists
//! the whole bucket. Objects whose keys say nothing of their age or owner (written by an
//! earlier version) are left alone.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use stowage_storage::{Key, MAX_BATCH_KEYS, Put, StoredObject, Write};

use super::{Finished, Run};
use crate::Result;
use crate::records::{ObjectOwner, decode, encode, keys, load};
use crate::uploads::UploadRecord;

/// How often a whole walk of the blob store is made.
pub const RECONCILE_EVERY: chrono::Duration = chrono::Duration::hours(24);
/// Objects listed at a time.
const OBJECT_PAGE: usize = 1000;

/// Where the walk stands.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Reconciliation {
    /// The last key looked at, while a walk is under way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<String>,
    /// When the last whole walk ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    finished_at: Option<DateTime<Utc>>,
}

impl Run<'_> {
    pub(super) async fn reconcile_objects(&mut self) -> Result<Finished> {
        let registry = self.registry;
        let mut state = load::<Reconciliation>(registry.metadata(), &keys::reconciliation())
            .await?
            .map(|(state, _)| state)
            .unwrap_or_default();
        let recent = state
            .finished_at
            .is_some_and(|at| at + RECONCILE_EVERY > self.now);
        if state.after.is_none() && recent {
            return Ok(true);
        }
        loop {
            if self.out_of_time() {
                self.save_reconciliation(&state).await?;
                return Ok(false);
            }
            let page = registry
                .blobs()
                .list_objects(keys::OBJECTS_PREFIX, state.after.as_deref(), OBJECT_PAGE)
                .await?;
            for key in self.orphans(&page.objects).await? {
                registry.blobs().delete(&key).await?;
                self.report.orphans_deleted += 1;
                self.report.objects_deleted += 1;
            }
            match page.next {
                Some(next) => state.after = Some(next),
                None => {
                    state = Reconciliation {
                        after: None,
                        finished_at: Some(self.now),
                    };
                    self.save_reconciliation(&state).await?;
                    return Ok(true);
                }
            }
        }
    }

    async fn save_reconciliation(&self, state: &Reconciliation) -> Result<()> {
        let write = Write::Put(Put::new(keys::reconciliation(), encode(state)));
        Ok(self.registry.metadata().write(write).await?)
    }

    /// The objects of a page that are past the grace period and that no record names.
    async fn orphans(&self, objects: &[StoredObject]) -> Result<Vec<String>> {
        let cutoff = self.now - self.registry.settings().collection_grace;
        let owned: Vec<(&str, ObjectOwner)> = objects
            .iter()
            .filter(|object| keys::object_made_at(&object.key).is_some_and(|made| made < cutoff))
            .filter_map(|object| Some((object.key.as_str(), keys::object_owner(&object.key)?)))
            .collect();
        let mut orphans = Vec::new();
        for batch in owned.chunks(MAX_BATCH_KEYS) {
            let mut wanted: Vec<Key> = batch
                .iter()
                .map(|(_, owner)| owner_key(owner).clone())
                .collect();
            wanted.sort();
            wanted.dedup();
            let items = self.registry.metadata().get_many(&wanted).await?;
            for (object, owner) in batch {
                let record = wanted
                    .binary_search(owner_key(owner))
                    .ok()
                    .and_then(|at| items[at].as_ref());
                let named = match (owner, record) {
                    (_, None) => false,
                    (ObjectOwner::Blob(_), Some(_)) => true,
                    (ObjectOwner::Upload(_), Some(item)) => {
                        decode::<UploadRecord>(item)?.remainder_key.as_deref() == Some(*object)
                    }
                };
                if !named {
                    orphans.push((*object).to_owned());
                }
            }
        }
        Ok(orphans)
    }
}

fn owner_key(owner: &ObjectOwner) -> &Key {
    match owner {
        ObjectOwner::Blob(key) | ObjectOwner::Upload(key) => key,
    }
}
