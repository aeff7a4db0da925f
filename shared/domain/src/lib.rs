//! The domain of Stowage: what workspaces, repositories, packages, users and tokens are, which
//! names are valid, and who may do what. Everything here is pure: no storage, no HTTP.

mod access;
mod clock;
mod digest;
mod error;
mod names;
mod role;
mod token;
mod upstream;

pub use access::{Access, Grants, Principal, PrincipalKind, package_access, pipeline_username};
pub use clock::{Clock, ManualClock, SystemClock};
pub use digest::{Digest, DigestAlgorithm};
pub use error::Invalid;
pub use names::{Email, PackageName, PackageType, Plan, Slug, Username};
pub use role::{Role, Scope, Scopes};
pub use token::{TOKEN_PREFIX, TokenHash, TokenSecret};
pub use upstream::{PrivateNamespace, UpstreamReach, UpstreamUrl, is_public};
