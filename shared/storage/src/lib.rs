//! The ports through which Stowage keeps its state. Protocol and service code depends on these
//! traits only; adapters (embedded, AWS) implement them and are chosen at start-up.
//!
//! - [`MetadataStore`]: small records under a two-part key, with conditional writes,
//!   all-or-nothing transactions and ordered, paged queries. The shape is DynamoDB's, so
//!   everything the service layer does maps onto one call there.
//! - [`BlobStore`]: content bytes under string keys, with multipart uploads and presigned reads.
//! - [`SecretSealer`]: secrets kept to be used again (an upstream's password), sealed by a key
//!   that lives outside the metadata store.

mod blob;
mod counting;
mod metadata;
mod seal;

pub use blob::{
    BlobError, BlobRead, BlobStore, ByteRange, ByteStream, CompletedPart, MIN_MULTIPART_PART,
    ObjectPage, PresignOptions, StoredObject, UnfinishedPage, UnfinishedUpload,
};
pub use counting::{CallCounts, CountingBlobStore, CountingMetadataStore};
pub use metadata::{
    Condition, Cursor, Item, Key, MAX_BATCH_KEYS, MAX_TRANSACTION_WRITES, MetadataError,
    MetadataStore, Page, Put, Query, SortRange, Write, check_batch,
};
pub use seal::{SealError, SecretSealer};
