use stowage_domain::Invalid;
use stowage_storage::{BlobError, MetadataError, SealError};

/// What a use case can fail with. Each protocol maps these to its own wire format in one place.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input, naming the field at fault.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// No credential, or one that is unknown, expired or revoked.
    #[error("authentication required")]
    Unauthenticated,
    /// A token whose secret matched, past its expiry: its holder may be told when it expired.
    #[error(
        "this token expired at {}: create a new one (POST /api/tokens, or ask the site admin)",
        .0.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )]
    TokenExpired(chrono::DateTime<chrono::Utc>),
    /// Authenticated, but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// Absent, or not visible to the caller: the two are never told apart.
    #[error("{0} not found")]
    NotFound(Entity),
    /// Deleted and not yet purged, told to a caller who could read it: when, until when it is
    /// kept, and how to restore it.
    #[error("{0}")]
    Deleted(String),
    /// A name that is taken, or a write that lost to another.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    /// The content does not match the digest it was sent with. Nothing was kept.
    #[error("the content's digest is {actual}, not {expected}")]
    DigestMismatch { expected: String, actual: String },
    /// An upload session that does not exist (finished, cancelled, expired or never started).
    #[error("upload not found")]
    UploadUnknown,
    /// A chunk that does not start where the upload stands, or that comes while another
    /// request holds the upload (until `held_until` at most).
    #[error("{}", out_of_order(*offset, held_until.as_ref()))]
    UploadOutOfOrder {
        offset: u64,
        held_until: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// An upload whose parts were replaced by a request that had lost its hold on it. Nothing
    /// of it is kept.
    #[error("the upload was changed by a request that had lost it; start the upload again")]
    UploadBroken,
    /// A length that does not match the content.
    #[error("{0}")]
    SizeMismatch(String),
    /// The push would take the workspace over its plan's storage limit. Nothing was kept.
    #[error(
        "storage quota exceeded: the workspace's plan allows {limit} bytes and it stores {stored}"
    )]
    QuotaExceeded { limit: u64, stored: u64 },
    /// Storage stayed busy through every retry; the client may try again.
    #[error("storage is busy, try again")]
    Busy,
    /// The registry's storage has no room left; nothing of the request was kept.
    #[error(
        "the registry's storage is full; nothing was stored. Its operator must free or add space"
    )]
    StorageFull,
    #[error("metadata storage failed")]
    Metadata(#[source] MetadataError),
    #[error("blob storage failed")]
    Blob(#[source] BlobError),
    /// An upstream failed to give what was asked (unreachable, refused, or bytes that do not
    /// match what it advertised). Nothing of it was kept.
    #[error("{0}")]
    Upstream(String),
    /// The key service sealing upstream credentials failed.
    #[error("sealing credentials failed")]
    Sealer(#[source] SealError),
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
}

/// What a request found missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Workspace,
    Repository,
    Package,
    Blob,
    User,
    Token,
    Permission,
    Upstream,
}

impl std::fmt::Display for Entity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Entity::Workspace => "workspace",
            Entity::Repository => "repository",
            Entity::Package => "package",
            Entity::Blob => "blob",
            Entity::User => "user",
            Entity::Token => "token",
            Entity::Permission => "permission",
            Entity::Upstream => "upstream",
        })
    }
}

impl From<MetadataError> for Error {
    fn from(error: MetadataError) -> Self {
        match error {
            MetadataError::Conflict => Error::Busy,
            MetadataError::StorageFull => Error::StorageFull,
            other => Error::Metadata(other),
        }
    }
}

impl From<BlobError> for Error {
    fn from(error: BlobError) -> Self {
        match error {
            BlobError::StorageFull => Error::StorageFull,
            other => Error::Blob(other),
        }
    }
}

impl Error {
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Forbidden(message.into())
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict(message.into())
    }

    /// True for failures of the service itself rather than of the request (logged as errors).
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            Error::Metadata(_) | Error::Blob(_) | Error::Sealer(_) | Error::Corrupt(_)
        )
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn out_of_order(offset: u64, held_until: Option<&chrono::DateTime<chrono::Utc>>) -> String {
    match held_until {
        Some(until) => format!(
            "another request is sending a chunk of this upload (it holds it until {} at the \
             latest); the upload stands at byte {offset}: send the next chunk from there once \
             that request ends",
            until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
        None => format!("the upload stands at byte {offset}; a chunk must start there"),
    }
}
