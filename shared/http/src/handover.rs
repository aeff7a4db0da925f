//! Reads a Lambda hands over to the upload service. A cache miss of what an upstream serves (a
//! tarball, a file, a layer) may take longer to fetch than a Lambda has (29 s, and 6 MB of
//! answer). Where the deployment has the upload service, the function answers the miss with a
//! redirect to `<root>/-/fetches/<capability>`: a URL that is its own authority (the caller and
//! the path it asked for, sealed, valid a few minutes), which the front routes to the upload
//! service. There the read is answered as if it had been asked there, with no time limit.
//! Clients follow the redirect without their credentials (they drop them on a redirect, or
//! send them only to the registry's own paths), so the URL carries them.

use serde::{Deserialize, Serialize};
use stowage_domain::Principal;
use stowage_service::{Error, Registry};

use crate::{Limits, UPLOAD_CAPABILITY_PREFIX, sealed};

/// The path segment a handed-over read's URL has below its protocol's root.
pub const FETCHES: &str = "-/fetches/";
/// How long a handed-over read's URL may wait to be followed (clients follow at once).
const VALID_SECONDS: i64 = 5 * 60;
const PURPOSE: &str = "handover";

#[derive(Serialize, Deserialize)]
struct Claims {
    principal: Principal,
    path: String,
    /// Unix seconds.
    expires: i64,
}

/// Whether misses are handed over: on a Lambda, in a deployment with the upload service.
pub fn hands_over(limits: &Limits) -> bool {
    limits.platform_limited && limits.upload_service
}

/// The URL path that answers the read of `path` for `principal` on the upload service, below
/// `root` (its protocol's root for the workspace, `/npm/acme`).
pub async fn location(
    registry: &Registry,
    root: &str,
    principal: &Principal,
    path: &str,
) -> Result<String, Error> {
    let claims = Claims {
        principal: principal.clone(),
        path: path.to_owned(),
        expires: registry.now().timestamp() + VALID_SECONDS,
    };
    let token = sealed::seal(registry, PURPOSE, &claims).await?;
    Ok(format!("{root}/{FETCHES}{UPLOAD_CAPABILITY_PREFIX}{token}"))
}

/// The capability of a handed-over read's URL, when `path` is one below `root`.
pub fn presented<'a>(root: &str, path: &'a str) -> Option<&'a str> {
    path.strip_prefix(root)?
        .strip_prefix('/')?
        .strip_prefix(FETCHES)?
        .strip_prefix(UPLOAD_CAPABILITY_PREFIX)
}

/// The caller and the path of a handed-over read, when its capability is genuine, unexpired
/// and for a path below `root` (the root it was presented under).
pub async fn redeem(
    registry: &Registry,
    root: &str,
    capability: &str,
) -> Result<(Principal, String), Error> {
    let claims: Option<Claims> = sealed::open(registry, PURPOSE, capability).await?;
    match claims {
        Some(claims)
            if claims.expires > registry.now().timestamp()
                && claims.path.starts_with(&format!("{root}/")) =>
        {
            Ok((claims.principal, claims.path))
        }
        _ => Err(Error::Unauthenticated),
    }
}
