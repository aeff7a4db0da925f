use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// DynamoDB's limit on the writes in one transaction; both adapters enforce it.
pub const MAX_TRANSACTION_WRITES: usize = 100;
/// DynamoDB's limit on the keys in one batch read; both adapters enforce it.
pub const MAX_BATCH_KEYS: usize = 100;

/// An item's address: a partition and a sort key within it. Items of one partition are
/// ordered by `sort` (byte order) and can be queried together.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Key {
    pub partition: String,
    pub sort: String,
}

impl Key {
    pub fn new(partition: impl Into<String>, sort: impl Into<String>) -> Self {
        Self {
            partition: partition.into(),
            sort: sort.into(),
        }
    }
}

/// A stored item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub key: Key,
    /// The record, serialised by the service layer; opaque here.
    pub data: Vec<u8>,
    /// Bumped by every `Put`; a `Condition::Version` compares against it.
    pub version: u64,
    /// An atomic counter, changed only by `Write::Add` (0 when never added to).
    pub count: i64,
    /// The item's entry in the secondary index, if it has one.
    pub index: Option<Key>,
}

/// A precondition on the current state of one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// No precondition.
    None,
    /// The item must not exist.
    Absent,
    /// The item must exist.
    Exists,
    /// The item must exist with exactly this version (optimistic concurrency).
    Version(u64),
}

/// Writes the whole record of an item, replacing what was there (its counter is kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Put {
    pub key: Key,
    pub data: Vec<u8>,
    pub index: Option<Key>,
    pub condition: Condition,
}

impl Put {
    pub fn new(key: Key, data: Vec<u8>) -> Self {
        Self {
            key,
            data,
            index: None,
            condition: Condition::None,
        }
    }

    pub fn indexed(mut self, index: Key) -> Self {
        self.index = Some(index);
        self
    }

    pub fn when(mut self, condition: Condition) -> Self {
        self.condition = condition;
        self
    }
}

/// One write, alone or within a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    Put(Put),
    /// Deletes an item; deleting an absent item succeeds unless the condition says otherwise.
    Delete {
        key: Key,
        condition: Condition,
    },
    /// Writes nothing; fails the transaction unless the condition holds.
    Check {
        key: Key,
        condition: Condition,
    },
    /// Adds `delta` (which may be negative) to the item's counter, creating the item with an
    /// empty record if it is absent. Never conditional, so concurrent adds all count.
    Add {
        key: Key,
        delta: i64,
    },
    /// Bumps the version of an existing item without changing it; fails its condition when the
    /// item is absent. A reader that acts on an item only if its version is unchanged (the
    /// garbage collector) thereby learns that someone relied on the item meanwhile.
    Touch {
        key: Key,
    },
}

impl Write {
    pub fn key(&self) -> &Key {
        match self {
            Write::Put(put) => &put.key,
            Write::Delete { key, .. }
            | Write::Check { key, .. }
            | Write::Add { key, .. }
            | Write::Touch { key } => key,
        }
    }
}

/// Which sort keys of a partition a query returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortRange {
    /// Every sort key that starts with this prefix (the empty prefix: the whole partition).
    Prefix(String),
    /// Sort keys from `start` to `end`, both inclusive.
    Between { start: String, end: String },
}

/// Where a query resumes: the position of the last item of the previous page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub key: Key,
    pub index: Option<Key>,
}

/// An ordered, paged read of one partition, of the table or of the secondary index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Query the secondary index instead of the table. Index reads may lag writes by a moment
    /// (DynamoDB's global secondary indexes are eventually consistent); table reads never do.
    pub on_index: bool,
    pub partition: String,
    pub range: SortRange,
    /// At most this many items in the page (at least 1).
    pub limit: usize,
    pub descending: bool,
    /// Resume after this position (exclusive).
    pub after: Option<Cursor>,
}

impl Query {
    /// The items of `partition` whose sort key starts with `prefix`, ascending.
    pub fn prefix(partition: impl Into<String>, prefix: impl Into<String>, limit: usize) -> Self {
        Self {
            on_index: false,
            partition: partition.into(),
            range: SortRange::Prefix(prefix.into()),
            limit,
            descending: false,
            after: None,
        }
    }

    pub fn on_index(mut self) -> Self {
        self.on_index = true;
        self
    }

    pub fn after(mut self, cursor: Option<Cursor>) -> Self {
        self.after = cursor;
        self
    }

    pub fn descending(mut self) -> Self {
        self.descending = true;
        self
    }
}

/// One page of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub items: Vec<Item>,
    /// Present when more items may follow; pass it as `Query::after` to continue.
    pub next: Option<Cursor>,
}

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// A write's condition did not hold; in a transaction, `index` names the first write whose
    /// condition failed when the backend says so. Nothing was written.
    #[error("condition failed{}", index.map(|i| format!(" on write {i}")).unwrap_or_default())]
    ConditionFailed { index: Option<usize> },
    /// Another transaction touched the same items at the same time. Nothing was written and
    /// the whole operation may be retried.
    #[error("transaction conflict, retry")]
    Conflict,
    /// The request breaks a limit of the port (too many writes, an empty batch, …).
    #[error("invalid storage request: {0}")]
    InvalidRequest(String),
    /// The store has no room left (a full disk under the embedded store). Nothing was written.
    #[error("the metadata store is full")]
    StorageFull,
    #[error("metadata backend failed: {message}")]
    Backend {
        message: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl MetadataError {
    pub fn backend(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Backend {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

/// Checks a batch read or a transaction against the port's limits: 1 to `limit` entries, no key
/// twice. Adapters call it so that both refuse the same requests the same way.
pub fn check_batch<'a>(
    keys: impl ExactSizeIterator<Item = &'a Key>,
    limit: usize,
    what: &str,
) -> Result<(), MetadataError> {
    let len = keys.len();
    if len == 0 || len > limit {
        return Err(MetadataError::InvalidRequest(format!(
            "{what} takes 1 to {limit} entries, not {len}"
        )));
    }
    let mut seen = std::collections::HashSet::with_capacity(len);
    for key in keys {
        if !seen.insert(key) {
            return Err(MetadataError::InvalidRequest(format!(
                "{what} names {}/{} twice",
                key.partition, key.sort
            )));
        }
    }
    Ok(())
}

/// The metadata port.
///
/// Reads of the table are strongly consistent: a read that starts after a write has returned
/// sees it. Only `Query::on_index` reads may lag.
#[async_trait]
pub trait MetadataStore: Send + Sync + 'static {
    /// One item, or `None` if absent.
    async fn get(&self, key: &Key) -> Result<Option<Item>, MetadataError>;

    /// Several items in one round trip, in the order of `keys` (`None` where absent). At most
    /// [`MAX_BATCH_KEYS`] keys, no key twice.
    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, MetadataError>;

    /// One write, applied only if its condition holds.
    async fn write(&self, write: Write) -> Result<(), MetadataError>;

    /// Up to [`MAX_TRANSACTION_WRITES`] writes on distinct keys, all applied or none: if any
    /// condition fails, `ConditionFailed` and nothing is written.
    async fn transact(&self, writes: Vec<Write>) -> Result<(), MetadataError>;

    /// One page of a partition, in sort-key order.
    async fn query(&self, query: &Query) -> Result<Page, MetadataError>;
}
