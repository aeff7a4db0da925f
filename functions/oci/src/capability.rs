//! Upload URLs that are their own authority. The `Location` of an upload session ends in a
//! capability: a sealed token naming the session, the image, the repository its package was
//! linked to, the caller and an expiry. Requests on that URL are authorised by it alone, with
//! any `Authorization` header ignored, because clients disagree about credentials on an
//! upload URL (containerd drops them, containers/image sends them wherever the URL points,
//! and a 60-second registry token may expire in the middle of a large layer). On AWS the URL
//! is served by the upload service, which thus needs no credential lookup.
//!
//! Every answer on the session renews the capability, so it need only outlive the gap between
//! two requests of one upload. The request log never shows it (`stowage_http::loggable_path`).

use serde::{Deserialize, Serialize};
use stowage_domain::{Principal, Role, Slug};
use stowage_http::UPLOAD_CAPABILITY_PREFIX;
use stowage_service::Registry;

use crate::auth::{Caller, Grant};
use crate::error::{OciError, OciResult};
use crate::route::ImageName;

/// How long an upload URL may go unused.
pub const UPLOAD_CAPABILITY_SECONDS: i64 = 15 * 60;
const PURPOSE: &str = "oci-upload-capability";

#[derive(Debug, Serialize, Deserialize)]
struct Capability {
    session: String,
    name: String,
    repository: Slug,
    principal: Principal,
    /// Unix seconds.
    expires: i64,
}

/// The URL path of upload `session` of `name`, for `caller` writing to the package linked to
/// `repository`.
pub async fn upload_location(
    registry: &Registry,
    caller: &Caller,
    name: &ImageName,
    repository: &Slug,
    session: &str,
) -> OciResult<String> {
    let capability = Capability {
        session: session.to_owned(),
        name: name.full(),
        repository: repository.clone(),
        principal: caller.principal.clone(),
        expires: registry.now().timestamp() + UPLOAD_CAPABILITY_SECONDS,
    };
    let token = stowage_http::sealed::seal(registry, PURPOSE, &capability).await?;
    Ok(format!(
        "/v2/{}/blobs/uploads/{UPLOAD_CAPABILITY_PREFIX}{token}",
        name.full()
    ))
}

/// The capability in the last segment of an upload URL, if that segment is one.
pub fn presented(segment: &str) -> Option<&str> {
    segment.strip_prefix(UPLOAD_CAPABILITY_PREFIX)
}

/// The caller and the upload session a capability stands for, when it is genuine, unexpired
/// and presented on the image it was made for.
pub async fn redeem(
    registry: &Registry,
    token: &str,
    name: &ImageName,
) -> OciResult<(Caller, String)> {
    let invalid = || OciError::unauthorized_because("this upload URL is not valid");
    let capability: Capability = stowage_http::sealed::open(registry, PURPOSE, token)
        .await?
        .ok_or_else(invalid)?;
    if capability.name != name.full() {
        return Err(invalid());
    }
    if capability.expires <= registry.now().timestamp() {
        return Err(OciError::unauthorized_because(
            "this upload URL has expired: start the upload again",
        ));
    }
    let caller = Caller {
        principal: capability.principal,
        grants: vec![Grant {
            name: capability.name,
            repository: capability.repository,
            role: Role::Write,
        }],
    };
    Ok((caller, capability.session))
}
