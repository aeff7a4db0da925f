//! Expiring, signed URLs for blobs of the embedded store: the local server's stand-in for S3's
//! presigned URLs, so a redirect behaves the same way on both backends.

use std::io::Write as _;
use std::path::Path;

use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use sha2::Sha256;
use stowage_storage::PresignOptions;
use url::Url;

/// The path below the server's public URL where signed blob URLs are served.
pub const SIGNED_BLOB_PATH: &str = "/_blob/";
const KEY_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignedUrlError {
    #[error("the URL's signature is missing or wrong")]
    BadSignature,
    #[error("the URL has expired")]
    Expired,
}

/// What a verified URL allows: reading one object, with these response headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRead {
    pub key: String,
    pub content_type: Option<String>,
    pub content_disposition: Option<String>,
}

/// Signs and verifies blob URLs with HMAC-SHA256.
#[derive(Clone)]
pub struct UrlSigner {
    base: Url,
    key: Vec<u8>,
}

impl UrlSigner {
    /// `base` is the server's public URL (`http://127.0.0.1:8080/`).
    pub fn new(base: Url, key: Vec<u8>) -> Self {
        Self { base, key }
    }

    pub fn sign(&self, blob_key: &str, options: &PresignOptions, now_unix: u64) -> String {
        let expires = now_unix + options.expires_in.as_secs();
        let mut url = self.base.clone();
        url.set_path(&format!("{SIGNED_BLOB_PATH}{blob_key}"));
        let signature = self.signature(
            blob_key,
            expires,
            options.content_type.as_deref(),
            options.content_disposition.as_deref(),
        );
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("expires", &expires.to_string());
            if let Some(content_type) = &options.content_type {
                query.append_pair("content-type", content_type);
            }
            if let Some(disposition) = &options.content_disposition {
                query.append_pair("content-disposition", disposition);
            }
            query.append_pair("signature", &signature);
        }
        url.into()
    }

    /// Checks the path (below [`SIGNED_BLOB_PATH`]) and query of a request for a signed URL.
    pub fn verify(
        &self,
        blob_key: &str,
        query: &str,
        now_unix: u64,
    ) -> Result<SignedRead, SignedUrlError> {
        let mut expires = None;
        let mut content_type = None;
        let mut content_disposition = None;
        let mut signature = None;
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match &*name {
                "expires" => expires = value.parse::<u64>().ok(),
                "content-type" => content_type = Some(value.into_owned()),
                "content-disposition" => content_disposition = Some(value.into_owned()),
                "signature" => signature = hex::decode(value.as_bytes()).ok(),
                _ => {}
            }
        }
        let (Some(expires), Some(signature)) = (expires, signature) else {
            return Err(SignedUrlError::BadSignature);
        };
        let mac = self.mac(
            blob_key,
            expires,
            content_type.as_deref(),
            content_disposition.as_deref(),
        );
        mac.verify_slice(&signature)
            .map_err(|_| SignedUrlError::BadSignature)?;
        if now_unix > expires {
            return Err(SignedUrlError::Expired);
        }
        Ok(SignedRead {
            key: blob_key.to_owned(),
            content_type,
            content_disposition,
        })
    }

    fn signature(
        &self,
        blob_key: &str,
        expires: u64,
        content_type: Option<&str>,
        disposition: Option<&str>,
    ) -> String {
        hex::encode(
            self.mac(blob_key, expires, content_type, disposition)
                .finalize()
                .into_bytes(),
        )
    }

    fn mac(
        &self,
        blob_key: &str,
        expires: u64,
        content_type: Option<&str>,
        disposition: Option<&str>,
    ) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes a key of any size");
        // Length-prefix every field so that no two different inputs sign the same bytes.
        for field in [
            blob_key,
            &expires.to_string(),
            content_type.unwrap_or(""),
            disposition.unwrap_or(""),
        ] {
            mac.update(&(field.len() as u64).to_be_bytes());
            mac.update(field.as_bytes());
        }
        mac
    }
}

/// Reads the signing key kept in the data folder, creating it (readable by its owner only) on
/// first start.
pub fn load_or_create_key(path: &Path) -> std::io::Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(key) if key.len() == KEY_LEN => return Ok(key),
        Ok(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} is not a {KEY_LEN}-byte key", path.display()),
            ));
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let mut key = vec![0u8; KEY_LEN];
    rand::rng().fill_bytes(&mut key);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(&key)?;
            file.sync_all()?;
            Ok(key)
        }
        // Another process created it first: use theirs.
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => std::fs::read(path),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn signer() -> UrlSigner {
        UrlSigner::new(Url::parse("http://127.0.0.1:9/").expect("url"), vec![7; 32])
    }

    fn options() -> PresignOptions {
        PresignOptions {
            expires_in: Duration::from_secs(60),
            content_type: Some("application/octet-stream".into()),
            content_disposition: None,
        }
    }

    fn split(url: &str) -> (String, String) {
        let url = Url::parse(url).expect("url");
        let key = url
            .path()
            .strip_prefix(SIGNED_BLOB_PATH)
            .expect("prefix")
            .to_owned();
        (key, url.query().unwrap_or("").to_owned())
    }

    #[test]
    fn a_signed_url_verifies_until_it_expires() {
        let url = signer().sign("ws/a/blobs/x", &options(), 1000);
        let (key, query) = split(&url);
        let read = signer().verify(&key, &query, 1060).expect("valid");
        assert_eq!(read.key, "ws/a/blobs/x");
        assert_eq!(
            read.content_type.as_deref(),
            Some("application/octet-stream")
        );
        assert_eq!(
            signer().verify(&key, &query, 1061),
            Err(SignedUrlError::Expired)
        );
    }

    #[test]
    fn any_change_breaks_the_signature() {
        let url = signer().sign("ws/a/blobs/x", &options(), 1000);
        let (key, query) = split(&url);
        assert_eq!(
            signer().verify("ws/b/blobs/x", &query, 1000),
            Err(SignedUrlError::BadSignature)
        );
        let longer = query.replace("expires=1060", "expires=9999");
        assert_eq!(
            signer().verify(&key, &longer, 1000),
            Err(SignedUrlError::BadSignature)
        );
        let other_key =
            UrlSigner::new(Url::parse("http://127.0.0.1:9/").expect("url"), vec![8; 32]);
        assert_eq!(
            other_key.verify(&key, &query, 1000),
            Err(SignedUrlError::BadSignature)
        );
    }
}
