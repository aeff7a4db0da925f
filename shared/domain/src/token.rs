//! API token secrets. A secret is shown once, when it is minted; storage keeps only its hash.

use std::fmt;

use rand::{Rng, distr::Alphanumeric};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Every token starts with this, so secret scanners can recognise a leaked one.
pub const TOKEN_PREFIX: &str = "stw_";
const TOKEN_RANDOM_CHARS: usize = 40;

/// A token secret as presented by a client or just minted. `Debug` never prints it.
#[derive(Clone)]
pub struct TokenSecret(SecretString);

impl TokenSecret {
    /// Mints a new secret: the prefix and 40 random alphanumerics (about 238 bits).
    pub fn generate() -> Self {
        let random: String = rand::rng()
            .sample_iter(&Alphanumeric)
            .take(TOKEN_RANDOM_CHARS)
            .map(char::from)
            .collect();
        Self(SecretString::from(format!("{TOKEN_PREFIX}{random}")))
    }

    /// Wraps a secret received from a client or from configuration.
    pub fn from_presented(secret: String) -> Self {
        Self(SecretString::from(secret))
    }

    /// The secret itself, to show its owner once.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash(hex::encode(Sha256::digest(self.expose().as_bytes())))
    }
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSecret([redacted])")
    }
}

/// The SHA-256 of a token secret, in hex: what storage keeps and looks tokens up by. A secret
/// carries enough entropy that an unsalted fast hash cannot be reversed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TokenHash(String);

impl TokenHash {
    /// A hash given in configuration: 64 hexadecimal digits.
    pub fn parse_hex(field: &'static str, value: &str) -> Result<Self, crate::Invalid> {
        let value = value.trim().to_ascii_lowercase();
        if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Self(value))
        } else {
            Err(crate::Invalid::new(
                field,
                "must be a SHA-256 in hexadecimal (64 digits)",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_random_and_never_debug_printed() {
        let a = TokenSecret::generate();
        let b = TokenSecret::generate();
        assert!(a.expose().starts_with(TOKEN_PREFIX));
        assert_eq!(a.expose().len(), TOKEN_PREFIX.len() + TOKEN_RANDOM_CHARS);
        assert_ne!(a.expose(), b.expose());
        assert!(!format!("{a:?}").contains(a.expose()));
        assert_eq!(a.hash().as_str().len(), 64);
        assert!(!a.hash().as_str().contains(&a.expose()[4..]));
    }
}
