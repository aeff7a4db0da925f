//! The port that keeps secrets Stowage must give back later (an upstream's password), so
//! that they are never stored in clear: sealed by a key that is not in the metadata store
//! (KMS on AWS, a key file beside the embedded database).

use async_trait::async_trait;

/// Why a secret could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The sealed bytes were altered, belong to another context, or were sealed by another key.
    #[error("the sealed secret cannot be opened with this key and context")]
    Rejected,
    /// The key service failed (KMS unreachable, throttled, not allowed).
    #[error("the key service failed: {0}")]
    Unavailable(String),
}

/// Seals and opens small secrets. `context` binds a sealed secret to what it belongs to (the
/// workspace, repository and upstream): opened under any other context it is rejected, so a
/// sealed value copied to another record is useless.
#[async_trait]
pub trait SecretSealer: Send + Sync {
    async fn seal(&self, plaintext: &[u8], context: &[(&str, &str)]) -> Result<Vec<u8>, SealError>;

    async fn open(&self, sealed: &[u8], context: &[(&str, &str)]) -> Result<Vec<u8>, SealError>;
}
