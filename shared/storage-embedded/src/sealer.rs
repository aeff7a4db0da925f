//! Secrets sealed with AES-256-GCM under a key file in the data folder: the embedded stand-in
//! for KMS. The key never enters the database, so a copy of `stowage.db` alone reveals no
//! upstream password.

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use async_trait::async_trait;
use rand::RngCore;
use stowage_storage::{SealError, SecretSealer};

use crate::load_or_create_key;

const NONCE_LEN: usize = 12;

/// Seals with a 32-byte key; a sealed secret is its random nonce followed by the ciphertext
/// and tag, authenticated together with its context.
pub struct KeyFileSealer {
    cipher: Aes256Gcm,
}

impl KeyFileSealer {
    /// The sealer of the key in `path`, created (readable by its owner only) if missing.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        Ok(Self::with_key(&load_or_create_key(path)?))
    }

    /// A sealer over a given 32-byte key.
    pub fn with_key(key: &[u8]) -> Self {
        Self {
            cipher: Aes256Gcm::new_from_slice(key).expect("a 32-byte key"),
        }
    }
}

/// The context as associated data: JSON, so that no two contexts serialize alike.
fn associated_data(context: &[(&str, &str)]) -> Vec<u8> {
    serde_json::to_vec(context).expect("strings serialize")
}

#[async_trait]
impl SecretSealer for KeyFileSealer {
    async fn seal(&self, plaintext: &[u8], context: &[(&str, &str)]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let aad = associated_data(context);
        let ciphertext = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Unavailable("AES-GCM refused to encrypt".into()))?;
        Ok([nonce.as_slice(), &ciphertext].concat())
    }

    async fn open(&self, sealed: &[u8], context: &[(&str, &str)]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < NONCE_LEN {
            return Err(SealError::Rejected);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let aad = associated_data(context);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Rejected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTEXT: &[(&str, &str)] = &[("workspace", "acme"), ("upstream", "u1")];

    #[tokio::test]
    async fn a_sealed_secret_opens_only_under_its_key_and_context() {
        let sealer = KeyFileSealer::with_key(&[7; 32]);
        let sealed = sealer.seal(b"hunter2", CONTEXT).await.expect("seal");
        assert!(!sealed.windows(7).any(|window| window == b"hunter2"));
        assert_eq!(
            sealer.open(&sealed, CONTEXT).await.expect("open"),
            b"hunter2"
        );
        let elsewhere = [("workspace", "acme"), ("upstream", "u2")];
        assert!(matches!(
            sealer.open(&sealed, &elsewhere).await,
            Err(SealError::Rejected)
        ));
        let other_key = KeyFileSealer::with_key(&[8; 32]);
        assert!(matches!(
            other_key.open(&sealed, CONTEXT).await,
            Err(SealError::Rejected)
        ));
        let mut altered = sealed.clone();
        *altered.last_mut().expect("bytes") ^= 1;
        assert!(matches!(
            sealer.open(&altered, CONTEXT).await,
            Err(SealError::Rejected)
        ));
        assert!(matches!(
            sealer.open(b"short", CONTEXT).await,
            Err(SealError::Rejected)
        ));
    }

    #[tokio::test]
    async fn the_key_file_is_created_once_and_reused() {
        let dir = tempfile::tempdir().expect("folder");
        let path = dir.path().join("upstream-secrets.key");
        let first = KeyFileSealer::open(&path).expect("create");
        let sealed = first.seal(b"s3cret", CONTEXT).await.expect("seal");
        let again = KeyFileSealer::open(&path).expect("reopen");
        assert_eq!(again.open(&sealed, CONTEXT).await.expect("open"), b"s3cret");
    }
}
