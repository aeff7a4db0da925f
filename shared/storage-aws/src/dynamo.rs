//! The metadata port on one DynamoDB table.
//!
//! Table: partition key `pk` (S), sort key `sk` (S); attributes `d` (B, the record), `ver` (N),
//! `n` (N, the counter), and `ipk`/`isk` (S), the key of the global secondary index
//! [`INDEX_NAME`] (projection: all attributes).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, KeysAndAttributes, TransactWriteItem, Update,
};
use stowage_storage::{
    Condition, Cursor, Item, Key, MAX_BATCH_KEYS, MAX_TRANSACTION_WRITES, MetadataError,
    MetadataStore, Page, Put, Query, SortRange, Write, check_batch,
};

pub const INDEX_NAME: &str = "index1";
const UNPROCESSED_RETRIES: u32 = 8;

type Attributes = HashMap<String, AttributeValue>;

#[derive(Clone, Debug)]
pub struct DynamoMetadataStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoMetadataStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn key_attributes(key: &Key) -> Attributes {
    HashMap::from([
        ("pk".to_owned(), s(&key.partition)),
        ("sk".to_owned(), s(&key.sort)),
    ])
}

fn string_of(attributes: &Attributes, name: &str) -> Option<String> {
    attributes.get(name)?.as_s().ok().cloned()
}

fn number_of(attributes: &Attributes, name: &str) -> i64 {
    attributes
        .get(name)
        .and_then(|value| value.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn item_of(attributes: &Attributes) -> Result<Item, MetadataError> {
    let (Some(partition), Some(sort)) = (string_of(attributes, "pk"), string_of(attributes, "sk"))
    else {
        return Err(MetadataError::Backend {
            message: "dynamodb returned an item without its key".into(),
            source: None,
        });
    };
    let index = string_of(attributes, "ipk")
        .zip(string_of(attributes, "isk"))
        .map(|(p, s)| Key::new(p, s));
    Ok(Item {
        key: Key::new(partition, sort),
        data: attributes
            .get("d")
            .and_then(|value| value.as_b().ok())
            .map(|blob| blob.as_ref().to_vec())
            .unwrap_or_default(),
        version: number_of(attributes, "ver").max(0) as u64,
        count: number_of(attributes, "n"),
        index,
    })
}

/// A condition expression and the values it names.
fn condition_expression(
    condition: Condition,
) -> Option<(String, Option<(String, AttributeValue)>)> {
    match condition {
        Condition::None => None,
        Condition::Absent => Some(("attribute_not_exists(pk)".into(), None)),
        Condition::Exists => Some(("attribute_exists(pk)".into(), None)),
        Condition::Version(version) => Some((
            "ver = :expected".into(),
            Some((":expected".into(), AttributeValue::N(version.to_string()))),
        )),
    }
}

/// The parts of an `UpdateItem` for a write: update expression, condition, values.
struct UpdateParts {
    update: String,
    condition: Option<String>,
    values: Attributes,
}

fn put_parts(put: &Put) -> UpdateParts {
    let mut values = HashMap::from([
        (
            ":d".to_owned(),
            AttributeValue::B(Blob::new(put.data.clone())),
        ),
        (":one".to_owned(), AttributeValue::N("1".into())),
    ]);
    let update = match &put.index {
        Some(index) => {
            values.insert(":ipk".into(), s(&index.partition));
            values.insert(":isk".into(), s(&index.sort));
            "SET d = :d, ipk = :ipk, isk = :isk ADD ver :one".to_owned()
        }
        None => "SET d = :d REMOVE ipk, isk ADD ver :one".to_owned(),
    };
    let condition = condition_expression(put.condition).map(|(expression, value)| {
        values.extend(value);
        expression
    });
    UpdateParts {
        update,
        condition,
        values,
    }
}

fn add_parts(delta: i64) -> UpdateParts {
    UpdateParts {
        update: "ADD n :delta SET ver = if_not_exists(ver, :zero)".into(),
        condition: None,
        values: HashMap::from([
            (":delta".to_owned(), AttributeValue::N(delta.to_string())),
            (":zero".to_owned(), AttributeValue::N("0".into())),
        ]),
    }
}

fn touch_parts() -> UpdateParts {
    UpdateParts {
        update: "ADD ver :one".into(),
        condition: Some("attribute_exists(pk)".into()),
        values: HashMap::from([(":one".to_owned(), AttributeValue::N("1".into()))]),
    }
}

fn condition_values(condition: Condition) -> (Option<String>, Option<Attributes>) {
    match condition_expression(condition) {
        None => (None, None),
        Some((expression, value)) => (Some(expression), value.map(|v| HashMap::from([v]))),
    }
}

fn backend<E>(what: &'static str) -> impl Fn(SdkError<E>) -> MetadataError
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |error| MetadataError::backend(format!("dynamodb: {what}"), error)
}

fn is_condition_failure<E: ProvideErrorMetadata>(error: &SdkError<E>) -> bool {
    error
        .as_service_error()
        .and_then(ProvideErrorMetadata::code)
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}

fn update_item(
    table: &str,
    key: &Key,
    parts: UpdateParts,
) -> Result<
    aws_sdk_dynamodb::types::builders::TransactWriteItemBuilder,
    aws_sdk_dynamodb::error::BuildError,
> {
    Ok(TransactWriteItem::builder().update(
        Update::builder()
            .table_name(table)
            .set_key(Some(key_attributes(key)))
            .update_expression(parts.update)
            .set_condition_expression(parts.condition)
            .set_expression_attribute_values(Some(parts.values))
            .build()?,
    ))
}

fn transact_item(write: &Write, table: &str) -> Result<TransactWriteItem, MetadataError> {
    let invalid = |error: aws_sdk_dynamodb::error::BuildError| {
        MetadataError::InvalidRequest(format!("dynamodb request: {error}"))
    };
    let item = match write {
        Write::Put(put) => {
            let parts = put_parts(put);
            TransactWriteItem::builder().update(
                Update::builder()
                    .table_name(table)
                    .set_key(Some(key_attributes(&put.key)))
                    .update_expression(parts.update)
                    .set_condition_expression(parts.condition)
                    .set_expression_attribute_values(Some(parts.values))
                    .build()
                    .map_err(invalid)?,
            )
        }
        Write::Add { key, delta } => update_item(table, key, add_parts(*delta)).map_err(invalid)?,
        Write::Touch { key } => update_item(table, key, touch_parts()).map_err(invalid)?,
        Write::Delete { key, condition } => {
            let (expression, values) = condition_values(*condition);
            TransactWriteItem::builder().delete(
                Delete::builder()
                    .table_name(table)
                    .set_key(Some(key_attributes(key)))
                    .set_condition_expression(expression)
                    .set_expression_attribute_values(values)
                    .build()
                    .map_err(invalid)?,
            )
        }
        Write::Check { key, condition } => {
            let (expression, values) = condition_values(*condition);
            let Some(expression) = expression else {
                return Err(MetadataError::InvalidRequest(
                    "a check needs a condition".into(),
                ));
            };
            TransactWriteItem::builder().condition_check(
                ConditionCheck::builder()
                    .table_name(table)
                    .set_key(Some(key_attributes(key)))
                    .condition_expression(expression)
                    .set_expression_attribute_values(values)
                    .build()
                    .map_err(invalid)?,
            )
        }
    };
    Ok(item.build())
}

impl DynamoMetadataStore {
    async fn update(&self, key: &Key, parts: UpdateParts) -> Result<(), MetadataError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_attributes(key)))
            .update_expression(parts.update)
            .set_condition_expression(parts.condition)
            .set_expression_attribute_values(Some(parts.values))
            .send()
            .await
            .map(drop)
            .map_err(|error| {
                if is_condition_failure(&error) {
                    MetadataError::ConditionFailed { index: None }
                } else {
                    backend("update item")(error)
                }
            })
    }

    async fn delete(&self, key: &Key, condition: Condition) -> Result<(), MetadataError> {
        let (expression, values) = condition_values(condition);
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_attributes(key)))
            .set_condition_expression(expression)
            .set_expression_attribute_values(values)
            .send()
            .await
            .map(drop)
            .map_err(|error| {
                if is_condition_failure(&error) {
                    MetadataError::ConditionFailed { index: None }
                } else {
                    backend("delete item")(error)
                }
            })
    }
}

#[async_trait]
impl MetadataStore for DynamoMetadataStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, MetadataError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_attributes(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend("get item"))?;
        output.item.as_ref().map(item_of).transpose()
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, MetadataError> {
        check_batch(keys.iter(), MAX_BATCH_KEYS, "a batch read")?;
        let mut request = KeysAndAttributes::builder().consistent_read(true);
        for key in keys {
            request = request.keys(key_attributes(key));
        }
        let mut pending = HashMap::from([(
            self.table.clone(),
            request
                .build()
                .map_err(|e| MetadataError::InvalidRequest(e.to_string()))?,
        )]);
        let mut found: HashMap<Key, Item> = HashMap::new();
        // BatchGetItem may leave keys unprocessed under load; ask again for those, backing off.
        for attempt in 0..=UNPROCESSED_RETRIES {
            let output = self
                .client
                .batch_get_item()
                .set_request_items(Some(pending))
                .send()
                .await
                .map_err(backend("batch get"))?;
            for attributes in output.responses.unwrap_or_default().into_values().flatten() {
                let item = item_of(&attributes)?;
                found.insert(item.key.clone(), item);
            }
            match output.unprocessed_keys {
                Some(unprocessed) if !unprocessed.is_empty() => pending = unprocessed,
                _ => {
                    return Ok(keys.iter().map(|key| found.remove(key)).collect());
                }
            }
            tokio::time::sleep(Duration::from_millis(20 << attempt.min(6))).await;
        }
        Err(MetadataError::Backend {
            message: "dynamodb: batch get left keys unprocessed after retries".into(),
            source: None,
        })
    }

    async fn write(&self, write: Write) -> Result<(), MetadataError> {
        match write {
            Write::Put(put) => self.update(&put.key, put_parts(&put)).await,
            Write::Add { key, delta } => self.update(&key, add_parts(delta)).await,
            Write::Touch { key } => self.update(&key, touch_parts()).await,
            Write::Delete { key, condition } => self.delete(&key, condition).await,
            Write::Check { key, condition } => {
                let item = self.get(&key).await?;
                let holds = match condition {
                    Condition::None => true,
                    Condition::Absent => item.is_none(),
                    Condition::Exists => item.is_some(),
                    Condition::Version(version) => item.is_some_and(|i| i.version == version),
                };
                if holds {
                    Ok(())
                } else {
                    Err(MetadataError::ConditionFailed { index: None })
                }
            }
        }
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), MetadataError> {
        check_batch(
            writes.iter().map(Write::key),
            MAX_TRANSACTION_WRITES,
            "a transaction",
        )?;
        let items = writes
            .iter()
            .map(|write| transact_item(write, &self.table))
            .collect::<Result<Vec<_>, _>>()?;
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        let Err(error) = result else { return Ok(()) };
        let Some(service_error) = error.as_service_error() else {
            return Err(backend("transaction")(error));
        };
        if let aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(canceled) = service_error {
            let reasons = canceled.cancellation_reasons();
            if let Some(index) = reasons
                .iter()
                .position(|reason| reason.code() == Some("ConditionalCheckFailed"))
            {
                return Err(MetadataError::ConditionFailed { index: Some(index) });
            }
            if reasons
                .iter()
                .any(|reason| reason.code() == Some("TransactionConflict"))
            {
                return Err(MetadataError::Conflict);
            }
        }
        if service_error.is_transaction_in_progress_exception() {
            return Err(MetadataError::Conflict);
        }
        Err(backend("transaction")(error))
    }

    async fn query(&self, query: &Query) -> Result<Page, MetadataError> {
        let (partition_name, sort_name) = if query.on_index {
            ("ipk", "isk")
        } else {
            ("pk", "sk")
        };
        let mut values = HashMap::from([(":p".to_owned(), s(&query.partition))]);
        let mut condition = format!("{partition_name} = :p");
        match &query.range {
            SortRange::Prefix(prefix) if prefix.is_empty() => {}
            SortRange::Prefix(prefix) => {
                condition.push_str(&format!(" AND begins_with({sort_name}, :prefix)"));
                values.insert(":prefix".into(), s(prefix));
            }
            // DynamoDB takes no empty string in a key condition: an empty start is no bound.
            SortRange::Between { start, end } if start.is_empty() => {
                condition.push_str(&format!(" AND {sort_name} <= :end"));
                values.insert(":end".into(), s(end));
            }
            SortRange::Between { start, end } => {
                condition.push_str(&format!(" AND {sort_name} BETWEEN :start AND :end"));
                values.insert(":start".into(), s(start));
                values.insert(":end".into(), s(end));
            }
        }
        let start_key = match &query.after {
            None => None,
            Some(cursor) => {
                let mut key = key_attributes(&cursor.key);
                if query.on_index {
                    let index = cursor.index.as_ref().ok_or_else(|| {
                        MetadataError::InvalidRequest("an index cursor needs the index key".into())
                    })?;
                    key.insert("ipk".into(), s(&index.partition));
                    key.insert("isk".into(), s(&index.sort));
                }
                Some(key)
            }
        };
        let limit = i32::try_from(query.limit.max(1)).unwrap_or(i32::MAX);
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name(query.on_index.then(|| INDEX_NAME.to_owned()))
            .key_condition_expression(condition)
            .set_expression_attribute_values(Some(values))
            .scan_index_forward(!query.descending)
            .consistent_read(!query.on_index)
            .limit(limit)
            .set_exclusive_start_key(start_key)
            .send()
            .await
            .map_err(backend("query"))?;
        let items = output
            .items
            .unwrap_or_default()
            .iter()
            .map(item_of)
            .collect::<Result<Vec<_>, _>>()?;
        let next = match output.last_evaluated_key {
            Some(last) if !last.is_empty() => {
                let key = Key::new(
                    string_of(&last, "pk").unwrap_or_default(),
                    string_of(&last, "sk").unwrap_or_default(),
                );
                let index = string_of(&last, "ipk")
                    .zip(string_of(&last, "isk"))
                    .map(|(p, s)| Key::new(p, s));
                Some(Cursor { key, index })
            }
            _ => None,
        };
        Ok(Page { items, next })
    }
}
