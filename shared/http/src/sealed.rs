//! Tokens the registry signs for itself: `<payload>.<signature>`, both base64url, the payload
//! JSON claims and the signature an HMAC-SHA256 under a key of the deployment (kept in the
//! metadata store, one per purpose). Registry tokens, upload capabilities and the URLs of
//! reads handed over to the upload service ([`crate::handover`]) are sealed this way; only
//! this process's peers can make or read them.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::Sha256;
use stowage_service::{Error, Registry};

fn mac(key: &[u8]) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any size")
}

/// Signs `claims` for `purpose`.
pub async fn seal<T: Serialize>(
    registry: &Registry,
    purpose: &str,
    claims: &T,
) -> Result<String, Error> {
    let key = registry.signing_key(purpose).await?;
    let json = serde_json::to_vec(claims)
        .map_err(|error| Error::Corrupt(format!("claims that do not serialise: {error}")))?;
    let payload = URL_SAFE_NO_PAD.encode(json);
    let mut mac = mac(&key);
    mac.update(payload.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    Ok(format!("{payload}.{signature}"))
}

/// The claims of a token sealed for `purpose`; `None` when it is malformed, signed for
/// another purpose, or altered.
pub async fn open<T: DeserializeOwned>(
    registry: &Registry,
    purpose: &str,
    token: &str,
) -> Result<Option<T>, Error> {
    let Some((payload, signature)) = token.split_once('.') else {
        return Ok(None);
    };
    let Ok(signature) = URL_SAFE_NO_PAD.decode(signature) else {
        return Ok(None);
    };
    let key = registry.signing_key(purpose).await?;
    let mut mac = mac(&key);
    mac.update(payload.as_bytes());
    if mac.verify_slice(&signature).is_err() {
        return Ok(None);
    }
    Ok(URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok()))
}
