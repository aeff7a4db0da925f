//! Content digests, `algorithm:hex`, as OCI writes them. Stowage verifies `sha256` and
//! `sha512`; other algorithms are refused.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Invalid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DigestAlgorithm {
    Sha256,
    Sha512,
}

impl DigestAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }
}

/// A validated digest: a supported algorithm and its lowercase hexadecimal value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest {
    algorithm: DigestAlgorithm,
    text: String,
}

impl Digest {
    /// Parses `sha256:<64 hex>` or `sha512:<128 hex>` (the OCI grammar, through `oci-spec`).
    pub fn parse(field: &'static str, value: &str) -> Result<Self, Invalid> {
        let parsed = oci_spec::image::Digest::from_str(value)
            .map_err(|error| Invalid::new(field, format!("is not a digest ({error})")))?;
        let algorithm = match parsed.algorithm() {
            oci_spec::image::DigestAlgorithm::Sha256 => DigestAlgorithm::Sha256,
            oci_spec::image::DigestAlgorithm::Sha512 => DigestAlgorithm::Sha512,
            other => {
                return Err(Invalid::new(
                    field,
                    format!("uses {other}; only sha256 and sha512 are supported"),
                ));
            }
        };
        Ok(Self {
            algorithm,
            text: value.to_owned(),
        })
    }

    /// The digest of `algorithm` whose value is `hex` (lowercase, as a hasher prints it).
    pub fn from_hex(algorithm: DigestAlgorithm, hex: &str) -> Self {
        Self {
            algorithm,
            text: format!("{}:{hex}", algorithm.as_str()),
        }
    }

    pub fn algorithm(&self) -> DigestAlgorithm {
        self.algorithm
    }

    /// The hexadecimal value, without the algorithm.
    pub fn hex(&self) -> &str {
        &self.text[self.algorithm.as_str().len() + 1..]
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl TryFrom<String> for Digest {
    type Error = Invalid;
    fn try_from(value: String) -> Result<Self, Invalid> {
        Self::parse("digest", &value)
    }
}

impl From<Digest> for String {
    fn from(digest: Digest) -> Self {
        digest.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn digests() {
        let sha256 = format!("sha256:{}", "a".repeat(64));
        let digest = Digest::parse("d", &sha256).expect("valid");
        assert_eq!(
            (digest.algorithm(), digest.hex()),
            (DigestAlgorithm::Sha256, "a".repeat(64).as_str())
        );
        assert!(Digest::parse("d", &format!("sha512:{}", "0".repeat(128))).is_ok());
        for bad in [
            String::new(),
            "sha256".to_owned(),
            format!("sha256:{}", "a".repeat(63)),
            format!("sha256:{}", "A".repeat(64)),
            format!("sha384:{}", "a".repeat(96)),
            format!("md5:{}", "a".repeat(32)),
            format!("sha256:{}/..", "a".repeat(64)),
        ] {
            assert!(Digest::parse("d", &bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn any_lowercase_hex_of_the_right_length_is_a_digest(hex in "[0-9a-f]{64}") {
            let digest = Digest::parse("d", &format!("sha256:{hex}")).expect("valid");
            prop_assert_eq!(digest.hex(), hex.as_str());
            prop_assert_eq!(Digest::from_hex(DigestAlgorithm::Sha256, &hex), digest);
        }

        #[test]
        fn parsing_never_panics(s in "\\PC{0,140}") {
            let _ = Digest::parse("d", &s);
        }
    }
}
