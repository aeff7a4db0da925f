//! The deployment's secret key for short-lived tokens (the OCI token flow): random, created on
//! first use by whichever instance gets there first, kept in the metadata store, and derived
//! per purpose so that one kind of token can never pass for another.

use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use sha2::Sha256;
use stowage_storage::{Condition, MetadataError, Put, Write};

use crate::records::keys;
use crate::{Error, Registry, Result};

const KEY_LEN: usize = 32;

fn derive(master: &[u8], purpose: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(master).expect("HMAC takes a key of any size");
    mac.update(purpose.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

impl Registry {
    /// The key for tokens of `purpose`, loaded (or created) once per process.
    pub async fn signing_key(&self, purpose: &str) -> Result<Vec<u8>> {
        let master = self
            .signing_master
            .get_or_try_init(|| self.load_or_create_master())
            .await?;
        Ok(derive(master, purpose))
    }

    async fn load_or_create_master(&self) -> Result<Vec<u8>> {
        if let Some(item) = self.metadata().get(&keys::signing_key()).await? {
            return checked(item.data);
        }
        let mut key = vec![0u8; KEY_LEN];
        rand::rng().fill_bytes(&mut key);
        let created = self
            .metadata()
            .write(Write::Put(
                Put::new(keys::signing_key(), key.clone()).when(Condition::Absent),
            ))
            .await;
        match created {
            Ok(()) => Ok(key),
            // Another instance created it first: use theirs.
            Err(MetadataError::ConditionFailed { .. }) => {
                let item = self
                    .metadata()
                    .get(&keys::signing_key())
                    .await?
                    .ok_or(Error::Busy)?;
                checked(item.data)
            }
            Err(other) => Err(other.into()),
        }
    }
}

fn checked(key: Vec<u8>) -> Result<Vec<u8>> {
    if key.len() == KEY_LEN {
        Ok(key)
    } else {
        Err(Error::Corrupt("the signing key".into()))
    }
}
