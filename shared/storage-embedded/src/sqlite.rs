//! The metadata port on SQLite: one table of items, with the same semantics as the DynamoDB
//! adapter (conditional writes, all-or-nothing transactions, ordered partition queries).

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use stowage_storage::{
    Condition, Cursor, Item, Key, MAX_BATCH_KEYS, MAX_TRANSACTION_WRITES, MetadataError,
    MetadataStore, Page, Query, SortRange, Write, check_batch,
};

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS items (
        pk   TEXT    NOT NULL,
        sk   TEXT    NOT NULL,
        data BLOB    NOT NULL,
        ver  INTEGER NOT NULL,
        n    INTEGER NOT NULL DEFAULT 0,
        ipk  TEXT,
        isk  TEXT,
        PRIMARY KEY (pk, sk)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS items_by_index ON items (ipk, isk, pk, sk) WHERE ipk IS NOT NULL;
";
const COLUMNS: &str = "pk, sk, data, ver, n, ipk, isk";
/// How long a writer waits for another process's write lock before giving up.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Connections kept for reuse; beyond this, finished ones are closed.
const POOL_SIZE: usize = 8;

/// SQLite in WAL mode: readers never wait for the writer. Writes and queries run on the
/// blocking thread pool, point reads on the calling thread, each on a pooled connection.
#[derive(Clone)]
pub struct SqliteMetadataStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: std::path::PathBuf,
    pool: Mutex<Vec<Connection>>,
}

impl SqliteMetadataStore {
    pub fn open(path: &Path) -> Result<Self, MetadataError> {
        create_private_file(path)
            .map_err(|error| MetadataError::backend("create the database file", error))?;
        let store = Self {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                pool: Mutex::new(Vec::new()),
            }),
        };
        let connection = store.inner.connect()?;
        connection
            .execute_batch(SCHEMA)
            .map_err(backend("create schema"))?;
        store.inner.release(connection);
        Ok(store)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, MetadataError> + Send + 'static,
    ) -> Result<T, MetadataError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let mut connection = inner.acquire()?;
            let result = work(&mut connection);
            inner.release(connection);
            result
        })
        .await
        .map_err(|join| MetadataError::backend("sqlite task failed", join))?
    }

    /// Runs a point read on the calling thread. On a pooled WAL connection it takes
    /// microseconds and does not wait for writers, so handing it to the blocking pool, two
    /// thread switches, would cost more than the read itself (profiled: the switches were
    /// the largest cost of a cached read).
    fn read_now<T>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, MetadataError>,
    ) -> Result<T, MetadataError> {
        let mut connection = self.inner.acquire()?;
        let result = work(&mut connection);
        self.inner.release(connection);
        result
    }
}

impl Inner {
    fn connect(&self) -> Result<Connection, MetadataError> {
        let connection = Connection::open(&self.path).map_err(backend("open database"))?;
        connection
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(backend("set busy timeout"))?;
        connection
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
            .map_err(backend("configure database"))?;
        Ok(connection)
    }

    fn acquire(&self) -> Result<Connection, MetadataError> {
        let pooled = self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match pooled {
            Some(connection) => Ok(connection),
            None => self.connect(),
        }
    }

    fn release(&self, connection: Connection) {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < POOL_SIZE {
            pool.push(connection);
        }
    }
}

fn backend(what: &'static str) -> impl Fn(rusqlite::Error) -> MetadataError {
    move |error| match error.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => MetadataError::StorageFull,
        _ => MetadataError::backend(format!("sqlite: {what}"), error),
    }
}

fn read_item(row: &rusqlite::Row<'_>) -> rusqlite::Result<Item> {
    let index_partition: Option<String> = row.get(5)?;
    let index_sort: Option<String> = row.get(6)?;
    Ok(Item {
        key: Key::new(row.get::<_, String>(0)?, row.get::<_, String>(1)?),
        data: row.get(2)?,
        version: row.get::<_, i64>(3)? as u64,
        count: row.get(4)?,
        index: index_partition.zip(index_sort).map(|(p, s)| Key::new(p, s)),
    })
}

fn get_one(connection: &Connection, key: &Key) -> Result<Option<Item>, MetadataError> {
    connection
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM items WHERE pk = ?1 AND sk = ?2"
        ))
        .and_then(|mut statement| {
            statement
                .query_row(params![key.partition, key.sort], read_item)
                .optional()
        })
        .map_err(backend("read item"))
}

fn version_of(connection: &Connection, key: &Key) -> Result<Option<u64>, MetadataError> {
    connection
        .prepare_cached("SELECT ver FROM items WHERE pk = ?1 AND sk = ?2")
        .and_then(|mut statement| {
            statement
                .query_row(params![key.partition, key.sort], |row| row.get::<_, i64>(0))
                .optional()
        })
        .map(|version| version.map(|v| v as u64))
        .map_err(backend("read version"))
}

fn holds(condition: Condition, version: Option<u64>) -> bool {
    match condition {
        Condition::None => true,
        Condition::Absent => version.is_none(),
        Condition::Exists => version.is_some(),
        Condition::Version(expected) => version == Some(expected),
    }
}

fn condition_of(write: &Write) -> Condition {
    match write {
        Write::Put(put) => put.condition,
        Write::Delete { condition, .. } | Write::Check { condition, .. } => *condition,
        Write::Add { .. } => Condition::None,
        Write::Touch { .. } => Condition::Exists,
    }
}

fn apply(connection: &Connection, write: &Write) -> Result<(), MetadataError> {
    let result = match write {
        Write::Put(put) => {
            let (ipk, isk) = match &put.index {
                Some(index) => (Some(&index.partition), Some(&index.sort)),
                None => (None, None),
            };
            connection
                .prepare_cached(
                    "INSERT INTO items (pk, sk, data, ver, n, ipk, isk) VALUES (?1, ?2, ?3, 1, 0, ?4, ?5)
                     ON CONFLICT (pk, sk) DO UPDATE SET
                        data = excluded.data, ver = items.ver + 1, ipk = excluded.ipk, isk = excluded.isk",
                )
                .and_then(|mut s| s.execute(params![put.key.partition, put.key.sort, put.data, ipk, isk]))
        }
        Write::Delete { key, .. } => connection
            .prepare_cached("DELETE FROM items WHERE pk = ?1 AND sk = ?2")
            .and_then(|mut s| s.execute(params![key.partition, key.sort])),
        Write::Check { .. } => Ok(0),
        Write::Touch { key } => connection
            .prepare_cached("UPDATE items SET ver = ver + 1 WHERE pk = ?1 AND sk = ?2")
            .and_then(|mut s| s.execute(params![key.partition, key.sort])),
        Write::Add { key, delta } => connection
            .prepare_cached(
                "INSERT INTO items (pk, sk, data, ver, n) VALUES (?1, ?2, x'', 0, ?3)
                 ON CONFLICT (pk, sk) DO UPDATE SET n = items.n + excluded.n",
            )
            .and_then(|mut s| s.execute(params![key.partition, key.sort, delta])),
    };
    result.map(drop).map_err(backend("write item"))
}

fn transact_blocking(connection: &mut Connection, writes: &[Write]) -> Result<(), MetadataError> {
    let transaction = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend("begin transaction"))?;
    for (index, write) in writes.iter().enumerate() {
        let condition = condition_of(write);
        if condition != Condition::None {
            let version = version_of(&transaction, write.key())?;
            if !holds(condition, version) {
                // Dropping the transaction rolls back whatever was applied before.
                return Err(MetadataError::ConditionFailed { index: Some(index) });
            }
        }
        apply(&transaction, write)?;
    }
    transaction.commit().map_err(backend("commit"))
}

/// The smallest string greater than every string that starts with `prefix`, or `None` when no
/// such bound exists (the empty prefix, or one ending in the last code point).
fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (last as u32 + 1..=char::MAX as u32).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

fn query_blocking(connection: &Connection, query: &Query) -> Result<Page, MetadataError> {
    let (partition_column, sort_column) = if query.on_index {
        ("ipk", "isk")
    } else {
        ("pk", "sk")
    };
    let mut sql = format!("SELECT {COLUMNS} FROM items WHERE {partition_column} = ?");
    let mut args: Vec<String> = vec![query.partition.clone()];
    match &query.range {
        SortRange::Prefix(prefix) => {
            if !prefix.is_empty() {
                sql.push_str(&format!(" AND {sort_column} >= ?"));
                args.push(prefix.clone());
            }
            if let Some(upper) = prefix_upper_bound(prefix) {
                sql.push_str(&format!(" AND {sort_column} < ?"));
                args.push(upper);
            }
        }
        SortRange::Between { start, end } => {
            sql.push_str(&format!(" AND {sort_column} >= ? AND {sort_column} <= ?"));
            args.push(start.clone());
            args.push(end.clone());
        }
    }
    let (comparison, order) = if query.descending {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    if let Some(after) = &query.after {
        if query.on_index {
            let index = after.index.as_ref().ok_or_else(|| {
                MetadataError::InvalidRequest("an index cursor needs the index key".into())
            })?;
            sql.push_str(&format!(" AND (isk, pk, sk) {comparison} (?, ?, ?)"));
            args.extend([
                index.sort.clone(),
                after.key.partition.clone(),
                after.key.sort.clone(),
            ]);
        } else {
            sql.push_str(&format!(" AND sk {comparison} ?"));
            args.push(after.key.sort.clone());
        }
    }
    if query.on_index {
        sql.push_str(&format!(" ORDER BY isk {order}, pk {order}, sk {order}"));
    } else {
        sql.push_str(&format!(" ORDER BY sk {order}"));
    }
    let limit = query.limit.max(1);
    sql.push_str(&format!(" LIMIT {}", limit + 1));

    let mut statement = connection
        .prepare_cached(&sql)
        .map_err(backend("prepare query"))?;
    let mut items = statement
        .query_map(rusqlite::params_from_iter(args.iter()), read_item)
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(backend("run query"))?;
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|last| Cursor {
            key: last.key.clone(),
            index: last.index.clone(),
        })
    } else {
        None
    };
    Ok(Page { items, next })
}

#[async_trait]
impl MetadataStore for SqliteMetadataStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, MetadataError> {
        self.read_now(|connection| get_one(connection, key))
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, MetadataError> {
        check_batch(keys.iter(), MAX_BATCH_KEYS, "a batch read")?;
        self.read_now(|connection| {
            // One read transaction, so the batch sees one consistent state.
            let transaction = connection.transaction().map_err(backend("begin read"))?;
            let items = keys
                .iter()
                .map(|key| get_one(&transaction, key))
                .collect::<Result<Vec<_>, _>>()?;
            transaction.finish().map_err(backend("end read"))?;
            Ok(items)
        })
    }

    async fn write(&self, write: Write) -> Result<(), MetadataError> {
        self.run(move |connection| {
            transact_blocking(connection, std::slice::from_ref(&write)).map_err(|error| match error
            {
                MetadataError::ConditionFailed { .. } => {
                    MetadataError::ConditionFailed { index: None }
                }
                other => other,
            })
        })
        .await
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), MetadataError> {
        check_batch(
            writes.iter().map(Write::key),
            MAX_TRANSACTION_WRITES,
            "a transaction",
        )?;
        self.run(move |connection| transact_blocking(connection, &writes))
            .await
    }

    async fn query(&self, query: &Query) -> Result<Page, MetadataError> {
        let query = query.clone();
        self.run(move |connection| query_blocking(connection, &query))
            .await
    }
}

/// Creates the database file readable by its owner only, if it is not there yet. SQLite gives
/// its journal files the database file's permissions.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map(drop)
}

#[cfg(test)]
mod tests {
    use super::prefix_upper_bound;

    #[test]
    fn upper_bounds_of_prefixes() {
        assert_eq!(prefix_upper_bound("TAG#"), Some("TAG$".to_owned()));
        assert_eq!(prefix_upper_bound(""), None);
        assert_eq!(prefix_upper_bound("a\u{10FFFF}"), Some("b".to_owned()));
        assert_eq!(prefix_upper_bound("\u{D7FF}"), Some("\u{E000}".to_owned()));
    }
}
