//! The sealing port on a KMS key: each secret is encrypted by KMS itself (they are a few
//! bytes, well under KMS's 4 KB), with its context as KMS's encryption context, so CloudTrail
//! records every use and IAM decides which functions may open them.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use stowage_storage::{SealError, SecretSealer};

#[derive(Clone, Debug)]
pub struct KmsSealer {
    client: aws_sdk_kms::Client,
    key_id: String,
}

impl KmsSealer {
    /// Seals with the key `key_id` (an id, ARN or alias).
    pub fn new(client: aws_sdk_kms::Client, key_id: impl Into<String>) -> Self {
        Self {
            client,
            key_id: key_id.into(),
        }
    }
}

fn encryption_context(context: &[(&str, &str)]) -> HashMap<String, String> {
    context
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

/// A ciphertext KMS will not open (altered, another context or key) is rejected; anything
/// else is the service failing.
fn failure<E: ProvideErrorMetadata>(error: &SdkError<E>) -> SealError {
    match error.code() {
        Some("InvalidCiphertextException" | "IncorrectKeyException") => SealError::Rejected,
        code => SealError::Unavailable(format!(
            "kms: {}",
            code.or_else(|| error.message()).unwrap_or("no answer")
        )),
    }
}

#[async_trait]
impl SecretSealer for KmsSealer {
    async fn seal(&self, plaintext: &[u8], context: &[(&str, &str)]) -> Result<Vec<u8>, SealError> {
        let output = self
            .client
            .encrypt()
            .key_id(&self.key_id)
            .plaintext(Blob::new(plaintext))
            .set_encryption_context(Some(encryption_context(context)))
            .send()
            .await
            .map_err(|error| failure(&error))?;
        output
            .ciphertext_blob
            .map(Blob::into_inner)
            .ok_or_else(|| SealError::Unavailable("kms: no ciphertext in the answer".into()))
    }

    async fn open(&self, sealed: &[u8], context: &[(&str, &str)]) -> Result<Vec<u8>, SealError> {
        let output = self
            .client
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(sealed))
            .set_encryption_context(Some(encryption_context(context)))
            .send()
            .await
            .map_err(|error| failure(&error))?;
        output
            .plaintext
            .map(Blob::into_inner)
            .ok_or_else(|| SealError::Unavailable("kms: no plaintext in the answer".into()))
    }
}
