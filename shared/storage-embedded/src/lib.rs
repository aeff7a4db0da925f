//! Embedded storage: everything in one data folder, for a laptop, for tests and for anyone who
//! does not want AWS.
//!
//! ```text
//! <data-dir>/stowage.db      SQLite database: the metadata items
//! <data-dir>/blobs/…         one file per blob
//! <data-dir>/signing.key     the key of the local server's signed URLs and tokens
//! <data-dir>/upstream-secrets.key   the key sealing upstream credentials (never in the database)
//! ```

mod files;
mod sealer;
mod signer;
mod sqlite;

pub use files::FileBlobStore;
pub use sealer::KeyFileSealer;
pub use signer::{SIGNED_BLOB_PATH, SignedRead, SignedUrlError, UrlSigner, load_or_create_key};
pub use sqlite::SqliteMetadataStore;
