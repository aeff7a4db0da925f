//! A package's partition as the protocols see it. Each protocol declares the kinds of record it
//! keeps in a package (a sort-key prefix and a payload type, [`RecordKind`]) and reads and
//! writes them here; this module spells their keys and keeps the service's own records in the
//! partition in step: a kind whose records are versions ([`RecordKind::IS_VERSION`], an OCI tag)
//! writes and removes the package's `VERSION#` record with each of its own, so that rule lives
//! in one place.
//!
//! Reads cost what they did by hand: [`PackageItems::get`] one item read,
//! [`PackageItems::page_ids`] and [`PackageItems::walk`] one query per page, [`PackageItems::missing`] one batch read per hundred keys; a
//! [`PackageWrites`] is one transaction.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use stowage_domain::{Digest, PackageName, PackageType, Slug};
use stowage_storage::{
    Condition, Cursor, Item, Key, MAX_BATCH_KEYS, MetadataError, Put, Query, SortRange, Write,
};

use crate::records::{self, BlobLink, PackageRecord, VersionRecord, keys};
use crate::{Error, Registry, Result};

/// A kind of record a protocol keeps in a package's partition.
pub trait RecordKind {
    /// What starts the sort key of each record of this kind; the record's id follows it.
    const PREFIX: &'static str;
    /// Whether each record is a published version of the package (what the management API
    /// lists): writing one also writes its `VERSION#` record, deleting one deletes it.
    const IS_VERSION: bool = false;
    type Payload;
    fn encode(payload: &Self::Payload) -> Vec<u8>;
    fn decode(item: &Item) -> Result<Self::Payload>;
}

/// A kind whose payload is stored as JSON (most are).
pub trait JsonKind {
    const PREFIX: &'static str;
    const IS_VERSION: bool = false;
    type Payload: Serialize + DeserializeOwned;
}

impl<K: JsonKind> RecordKind for K {
    const PREFIX: &'static str = K::PREFIX;
    const IS_VERSION: bool = K::IS_VERSION;
    type Payload = K::Payload;

    fn encode(payload: &Self::Payload) -> Vec<u8> {
        records::encode(payload)
    }

    fn decode(item: &Item) -> Result<Self::Payload> {
        records::decode(item)
    }
}

/// The service's links from a package to the blobs of its workspace, by digest.
pub struct BlobLinks;

impl JsonKind for BlobLinks {
    const PREFIX: &'static str = keys::BLOB_LINK_PREFIX;
    type Payload = BlobLink;
}

/// A record of a package, with its id (the sort key after the kind's prefix) and the
/// version its item had when read (for a conditional write).
#[derive(Debug, Clone)]
pub struct Record<P> {
    pub id: String,
    pub payload: P,
    pub version: u64,
}

/// Where one record of a package is: built from its kind and id, never by hand.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ItemKey(Key);

impl ItemKey {
    /// The record `id` of kind `K` in the package partition `partition`.
    fn of<K: RecordKind>(partition: &str, id: &str) -> Self {
        Self(Key::new(partition, format!("{}{id}", K::PREFIX)))
    }

    /// The record `id` of kind `K` of `package`.
    pub fn of_package<K: RecordKind>(package: &PackageRecord, id: &str) -> Self {
        Self::of::<K>(&package.partition(), id)
    }

    /// The record `id` of kind `K` in a package known by name, to read with the package
    /// ([`Registry::open_package`]) before its record is at hand.
    pub fn in_package<K: RecordKind>(
        workspace: &Slug,
        kind: PackageType,
        name: &PackageName,
        id: &str,
    ) -> Self {
        Self::of::<K>(&keys::package_partition(workspace, kind, name), id)
    }

    /// The storage key, to read the record with a package ([`Registry::open_package`]).
    pub(crate) fn as_key(&self) -> &Key {
        &self.0
    }
}

fn record<K: RecordKind>(item: &Item) -> Result<Record<K::Payload>> {
    Ok(Record {
        id: item.key.sort[K::PREFIX.len()..].to_owned(),
        payload: K::decode(item)?,
        version: item.version,
    })
}

/// A page of ids, and whether more follow.
pub struct IdPage {
    pub ids: Vec<String>,
    pub more: bool,
}

/// Where a walk through a kind's records stands ([`PackageItems::walk`]).
pub struct WalkToken(Cursor);

/// The records of one package.
pub struct PackageItems<'a> {
    registry: &'a Registry,
    workspace: Slug,
    partition: String,
}

impl Registry {
    /// The records kept in `package`'s partition.
    pub fn package_items<'a>(&'a self, package: &PackageRecord) -> PackageItems<'a> {
        PackageItems {
            registry: self,
            workspace: package.workspace.clone(),
            partition: package.partition(),
        }
    }
}

impl PackageItems<'_> {
    pub fn key<K: RecordKind>(&self, id: &str) -> ItemKey {
        ItemKey::of::<K>(&self.partition, id)
    }

    /// One record, or `None`.
    pub async fn get<K: RecordKind>(&self, id: &str) -> Result<Option<Record<K::Payload>>> {
        let key = self.key::<K>(id);
        match self.registry.metadata().get(key.as_key()).await? {
            Some(item) => Ok(Some(record::<K>(&item)?)),
            None => Ok(None),
        }
    }

    /// The first of `keys` that names no record, if any: one batch read per hundred keys.
    pub async fn missing<'k>(&self, keys: &'k [ItemKey]) -> Result<Option<&'k ItemKey>> {
        for chunk in keys.chunks(MAX_BATCH_KEYS) {
            let wanted: Vec<Key> = chunk.iter().map(|key| key.as_key().clone()).collect();
            let items = self.registry.metadata().get_many(&wanted).await?;
            if let Some((key, _)) = chunk.iter().zip(&items).find(|(_, item)| item.is_none()) {
                return Ok(Some(key));
            }
        }
        Ok(None)
    }

    /// The ids of up to `limit` records of kind `K` whose ids start with `within`, in id
    /// order, after the id `after` when given (no record is decoded). Pages are read until
    /// `limit` ids are found; `more` says whether any follow.
    pub async fn page_ids<K: RecordKind>(
        &self,
        within: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<IdPage> {
        let prefix = format!("{}{within}", K::PREFIX);
        let cursor = |id: &str| Cursor {
            key: self.key::<K>(id).0,
            index: None,
        };
        let mut query =
            Query::prefix(&self.partition, &prefix, limit.max(1)).after(after.map(cursor));
        let mut ids = Vec::new();
        while ids.len() < limit {
            query.limit = limit - ids.len();
            let page = self.registry.metadata().query(&query).await?;
            ids.extend(
                page.items
                    .iter()
                    .map(|item| item.key.sort[K::PREFIX.len()..].to_owned()),
            );
            match page.next {
                Some(next) => query = query.after(Some(next)),
                None => {
                    return Ok(IdPage { ids, more: false });
                }
            }
        }
        let more = match &query.after {
            Some(last) if !ids.is_empty() => {
                let probe = Query::prefix(&self.partition, &prefix, 1).after(Some(last.clone()));
                !self
                    .registry
                    .metadata()
                    .query(&probe)
                    .await?
                    .items
                    .is_empty()
            }
            _ => false,
        };
        Ok(IdPage { ids, more })
    }

    /// One page of at most `page_size` records of kind `K` whose ids start with `within`,
    /// from where `from` (the page before's) left off; one query. The token is `None` after
    /// the last page.
    pub async fn walk<K: RecordKind>(
        &self,
        within: &str,
        from: Option<WalkToken>,
        page_size: usize,
    ) -> Result<(Vec<Record<K::Payload>>, Option<WalkToken>)> {
        let prefix = format!("{}{within}", K::PREFIX);
        let query = Query::prefix(&self.partition, prefix, page_size).after(from.map(|t| t.0));
        let page = self.registry.metadata().query(&query).await?;
        let records = page
            .items
            .iter()
            .map(record::<K>)
            .collect::<Result<Vec<_>>>()?;
        Ok((records, page.next.map(WalkToken)))
    }

    /// Every record of kind `K` whose id starts with `within`, read a thousand at a time.
    pub async fn all<K: RecordKind>(&self, within: &str) -> Result<Vec<Record<K::Payload>>> {
        let mut all = Vec::new();
        let mut from = None;
        loop {
            let (page, next) = self.walk::<K>(within, from, 1000).await?;
            all.extend(page);
            match next {
                Some(token) => from = Some(token),
                None => return Ok(all),
            }
        }
    }

    /// Up to `page_size` records of every kind from `First` to `Last` (by prefix order), in
    /// sort-key order, from where `from` left off: one query for what several kinds hold (a
    /// whole package document). Each is told apart with [`AnyRecord::as_kind`].
    pub async fn walk_kinds<First: RecordKind, Last: RecordKind>(
        &self,
        from: Option<WalkToken>,
        page_size: usize,
    ) -> Result<(Vec<AnyRecord>, Option<WalkToken>)> {
        let query = Query {
            range: SortRange::Between {
                start: First::PREFIX.to_owned(),
                end: format!("{}\u{10FFFF}", Last::PREFIX),
            },
            ..Query::prefix(&self.partition, "", page_size)
        }
        .after(from.map(|t| t.0));
        let page = self.registry.metadata().query(&query).await?;
        let records = page.items.into_iter().map(AnyRecord).collect();
        Ok((records, page.next.map(WalkToken)))
    }

    /// A transaction on the package's records, published (for version kinds) by `by`.
    pub fn writes(&self, by: impl Into<String>) -> PackageWrites<'_> {
        PackageWrites::new(
            self.registry,
            self.partition.clone(),
            self.workspace.clone(),
            by.into(),
        )
    }
}

/// A record of a kind not yet known ([`PackageItems::walk_kinds`]).
pub struct AnyRecord(Item);

impl AnyRecord {
    /// The record, if it is of kind `K`.
    pub fn as_kind<K: RecordKind>(&self) -> Option<Result<Record<K::Payload>>> {
        self.0
            .key
            .sort
            .starts_with(K::PREFIX)
            .then(|| record::<K>(&self.0))
    }
}

/// Writes to a package's records, applied together or not at all. One write per record: a
/// write replaces an earlier one of the same record, and a touch never replaces a write.
pub struct PackageWrites<'a> {
    registry: &'a Registry,
    partition: String,
    workspace: Slug,
    writes: BTreeMap<Key, Write>,
    by: String,
    at: DateTime<Utc>,
}

impl<'a> PackageWrites<'a> {
    fn new(registry: &'a Registry, partition: String, workspace: Slug, by: String) -> Self {
        Self {
            registry,
            partition,
            workspace,
            writes: BTreeMap::new(),
            by,
            at: registry.now(),
        }
    }

    /// Writes for `package` made inside the service (beside a blob's link).
    pub(crate) fn for_package(registry: &'a Registry, package: &PackageRecord, by: String) -> Self {
        Self::new(registry, package.partition(), package.workspace.clone(), by)
    }

    fn key<K: RecordKind>(&self, id: &str) -> Key {
        ItemKey::of::<K>(&self.partition, id).0
    }

    fn set(&mut self, write: Write) {
        self.writes.insert(write.key().clone(), write);
    }

    /// Writes record `id` (a version kind's `VERSION#` record with it).
    pub fn put<K: RecordKind>(&mut self, id: &str, payload: &K::Payload) -> &mut Self {
        self.put_when::<K>(id, payload, Condition::None)
    }

    /// Writes record `id` if `condition` holds.
    pub fn put_when<K: RecordKind>(
        &mut self,
        id: &str,
        payload: &K::Payload,
        condition: Condition,
    ) -> &mut Self {
        let key = self.key::<K>(id);
        self.set(Write::Put(
            Put::new(key, K::encode(payload)).when(condition),
        ));
        if K::IS_VERSION {
            let version = VersionRecord {
                version: id.to_owned(),
                published_at: self.at,
                published_by: self.by.clone(),
            };
            let key = keys::version(&self.partition, id);
            self.set(Write::Put(Put::new(key, records::encode(&version))));
        }
        self
    }

    /// Deletes record `id` if `condition` holds (a version kind's `VERSION#` record with it).
    pub fn delete<K: RecordKind>(&mut self, id: &str, condition: Condition) -> &mut Self {
        let key = self.key::<K>(id);
        self.set(Write::Delete { key, condition });
        if K::IS_VERSION {
            self.set(Write::Delete {
                key: keys::version(&self.partition, id),
                condition: Condition::None,
            });
        }
        self
    }

    /// Writes nothing to record `id`, but fails the whole unless `condition` holds.
    pub fn require<K: RecordKind>(&mut self, id: &str, condition: Condition) -> &mut Self {
        let key = self.key::<K>(id);
        self.set(Write::Check { key, condition });
        self
    }

    /// Changes record `id`'s item version, and fails the whole if the record is gone: a
    /// writer that read it before (to delete it on that condition) then fails instead.
    pub fn touch<K: RecordKind>(&mut self, id: &str) -> &mut Self {
        let key = self.key::<K>(id);
        self.writes
            .entry(key.clone())
            .or_insert(Write::Touch { key });
        self
    }

    /// Touches the package's link to a blob: a collector that found the blob unused just
    /// before gives up deleting it.
    pub fn touch_blob(&mut self, digest: &Digest) -> &mut Self {
        self.touch::<BlobLinks>(digest.as_str())
    }

    /// Lists `version` among the package's versions (what the management API shows), as
    /// published now by this transaction's publisher; for protocols whose versions hold
    /// several records (a Maven version's files).
    pub fn publish_version(&mut self, version: &str) -> &mut Self {
        let record = VersionRecord {
            version: version.to_owned(),
            published_at: self.at,
            published_by: self.by.clone(),
        };
        self.put::<Versions<VersionRecord>>(version, &record)
    }

    /// Asks the collector to look at the workspace's blobs: some may have lost their last use.
    pub fn mark_for_collection(&mut self) -> &mut Self {
        self.set(crate::mark_for_collection(&self.workspace));
        self
    }

    /// How many item writes the transaction holds (a transaction takes at most
    /// [`stowage_storage::MAX_TRANSACTION_WRITES`]).
    pub fn len(&self) -> usize {
        self.writes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    pub(crate) fn into_writes(self) -> Vec<Write> {
        self.writes.into_values().collect()
    }

    /// Applies the writes in one transaction, retrying while storage is busy.
    pub async fn commit(self) -> std::result::Result<(), CommitError> {
        let registry = self.registry;
        registry
            .transact(self.into_writes())
            .await
            .map_err(CommitError::from)
    }

    /// Applies more writes than one transaction takes, a transaction at a time: each is all
    /// or nothing, the whole is not.
    pub async fn commit_in_batches(self) -> std::result::Result<(), CommitError> {
        let registry = self.registry;
        let writes = self.into_writes();
        for batch in writes.chunks(stowage_storage::MAX_TRANSACTION_WRITES) {
            registry.transact(batch.to_vec()).await?;
        }
        Ok(())
    }
}

/// Why a package's writes were not applied. Nothing of them was.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// A condition failed: another request changed a record meanwhile (or the record a
    /// write required is not there).
    #[error("another request changed the package at the same time; nothing was stored")]
    Lost,
    #[error(transparent)]
    Failed(#[from] Error),
}

impl From<MetadataError> for CommitError {
    fn from(error: MetadataError) -> Self {
        match error {
            MetadataError::ConditionFailed { .. } => CommitError::Lost,
            other => CommitError::Failed(other.into()),
        }
    }
}

impl From<CommitError> for Error {
    fn from(error: CommitError) -> Self {
        match error {
            lost @ CommitError::Lost => Error::Conflict(lost.to_string()),
            CommitError::Failed(error) => error,
        }
    }
}

/// The versions of a package as a protocol keeps them: the service's `VERSION#` records, with
/// the protocol's detail in them. `P`'s JSON carries [`VersionRecord`]'s fields (`version`,
/// `published_at`, `published_by`), which the management API reads.
pub struct Versions<P>(PhantomData<P>);

impl<P: Serialize + DeserializeOwned> JsonKind for Versions<P> {
    const PREFIX: &'static str = keys::VERSION_PREFIX;
    type Payload = P;
}

impl Registry {
    /// Records of kind `K` of any packages, in batch reads of a hundred.
    pub async fn read_records<K: RecordKind>(
        &self,
        keys: &[ItemKey],
    ) -> Result<Vec<Option<K::Payload>>> {
        let mut records = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(MAX_BATCH_KEYS) {
            let wanted: Vec<Key> = chunk.iter().map(|key| key.0.clone()).collect();
            for item in self.metadata().get_many(&wanted).await? {
                records.push(item.as_ref().map(K::decode).transpose()?);
            }
        }
        Ok(records)
    }
}
