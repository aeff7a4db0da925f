//! Stowage's use cases, written once over the storage ports and shared by every protocol:
//! authentication, accounts and tokens, workspaces, repositories, roles and packages.
//!
//! Every rule about who may do what is decided here (with the pure rules of
//! `stowage-domain`); protocol crates only translate their wire formats to these calls and
//! the [`Error`]s back.
//!
//! [`Registry`] is one handle; its use cases live by aggregate, one file each:
//!
//! | file | use cases |
//! |---|---|
//! | `auth.rs` | `authenticate` (tokens, cached for a few seconds), `sign_in` (the web interface) |
//! | `accounts.rs` | users and their tokens: `create_user`, `create_token`, `list_tokens`, `revoke_token`, `bootstrap_site_admin` |
//! | `workspaces.rs` | workspaces, repositories, roles, pipeline tokens: `create_workspace`, `get_workspace`, `create_repository`, `list_repositories`, `set_permission`, `remove_permission`, `list_members`, `create_pipeline_token` |
//! | `packages.rs` | `create_package`, `list_packages`, `workspace_overview`, `get_package`, and `open_package`: the access check every protocol request starts with |
//! | `items.rs` | a package's records, as the protocols keep them: `package_items` (get, page, walk), `PackageWrites` (one transaction), `read_records` |
//! | `blobs.rs` | content: `store_blob`, `store_file`, `stage_blob`/`commit_staged`, `link_blob`, `unlink_blob`, `download_url`, `hand_over`, `read_small_object` |
//! | `writer.rs` | streaming one object in parts, resumable between requests |
//! | `uploads.rs` | uploads in chunks: `start_upload`, `upload_status`, `append_upload`, `finish_upload`, `cancel_upload` |
//! | `upstreams.rs` | registries a repository proxies: `attach_upstream`, `list_upstreams`, `get_upstream`, `change_upstream`, `remove_upstream`, `reachable_upstreams`; reading through them: `open_or_upstreams`, `create_proxied_package`, `upstream_of` |
//! | `upstream_copies.rs` | documents copied from upstreams, refreshed after a TTL: `keep_upstream_copy`, `read_upstream_copy`, `is_fresh` |
//! | `lifecycle.rs` | soft deletes and restores of workspaces, repositories and packages |
//! | `purge/` | the scheduled purge (`purge`: retention, uploads, collection, reconciliation) and usage (`workspace_usage`, `count_usage`) |
//! | `records.rs` | every storage key and record (private: protocols go through `items.rs`) |
//! | `error.rs` | the service's [`Error`], mapped to each protocol's format at its edge |

mod accounts;
mod audit;
mod auth;
mod blobs;
mod error;
mod items;
mod lifecycle;
mod packages;
mod purge;
mod records;
mod signing;
mod uploads;
mod upstream_copies;
mod upstreams;
mod workspaces;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use stowage_domain::{Clock, UpstreamReach};
use stowage_storage::{BlobStore, MetadataError, MetadataStore, SecretSealer, Write};

pub use accounts::{BootstrapToken, IssuedToken, NewToken, NewUser, TokenExpiry};
pub use audit::{AUDIT_LISTING_MAX, AuditAction, AuditEvent};
pub use auth::Credential;
pub use blobs::StagedBlob;
pub(crate) use blobs::mark_for_collection;
pub use error::{Entity, Error, Result};
pub use items::{
    AnyRecord, BlobLinks, CommitError, IdPage, ItemKey, JsonKind, PackageItems, PackageWrites,
    Record, RecordKind, Versions, WalkToken,
};
pub use lifecycle::DeletedItems;
pub use packages::{NewPackage, OpenPackage, PackageDetails, WorkspaceOverview};
pub use purge::{ContentReader, GcCandidate, PurgeReport, Usage};
pub use records::{
    BlobLink, Deletion, PackageRecord, RepositoryRecord, TokenRef, UserRecord, VersionRecord,
    WorkspaceRecord,
};
pub use uploads::UploadRecord;
pub use upstream_copies::{UPSTREAM_COPY_MAX, UpstreamCopies, UpstreamCopy};
pub use upstreams::{
    DEFAULT_PRIORITY, FetchMarker, NewUpstream, Opened, ReachableUpstream, UpstreamChange,
    UpstreamCredentials, UpstreamView,
};
pub use workspaces::{
    Member, PRIVATE_NAMESPACES_MAX, PipelineToken, RepositoryView, WorkspaceChange, WorkspaceView,
};
pub use writer::{Checksums, PART_SIZE, Written};

/// Settings that shape the service's behaviour, read once at start-up.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long deleted workspaces, repositories and packages are kept before the purge.
    pub retention: chrono::Duration,
    /// How long a verified credential is trusted without reading it again. Revoking a token
    /// takes effect on every instance within this time.
    pub credential_cache_ttl: Duration,
    /// How long a presigned download URL stays valid.
    pub presign_ttl: Duration,
    /// How much each plan may store.
    pub plan_limits: PlanLimits,
    /// How long an unused blob is left before it is collected, and an abandoned upload before
    /// it is cleared: longer than any push takes.
    pub collection_grace: chrono::Duration,
    /// The most parts an upload in chunks may have: its record lists them, and a record must
    /// fit in a DynamoDB item (400 KB).
    pub upload_parts_max: usize,
    /// Which upstream URLs repository admins may attach.
    pub upstream_reach: UpstreamReach,
    /// How long a package cached from an upstream is kept unused before the purge evicts it.
    pub upstream_evict_after: chrono::Duration,
    /// How long a document copied from an upstream (an npm package document) is served before
    /// it is fetched again; a stale copy is served while the upstream fails.
    pub upstream_ttl: chrono::Duration,
    /// How long a fetch from an upstream holds its marker unless renewed: another request
    /// takes over a marker older than this (its holder died). A long fetch renews it.
    pub upstream_fetch_hold: chrono::Duration,
}

/// Storage limits of the plans, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanLimits {
    pub standard: u64,
    pub premium: u64,
}

impl PlanLimits {
    pub fn of(&self, plan: stowage_domain::Plan) -> u64 {
        match plan {
            stowage_domain::Plan::Standard => self.standard,
            stowage_domain::Plan::Premium => self.premium,
        }
    }
}

impl Default for PlanLimits {
    fn default() -> Self {
        Self {
            standard: 10 * 1024 * 1024 * 1024,
            premium: 100 * 1024 * 1024 * 1024,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            retention: chrono::Duration::days(30),
            credential_cache_ttl: Duration::from_secs(30),
            presign_ttl: Duration::from_secs(300),
            plan_limits: PlanLimits::default(),
            collection_grace: chrono::Duration::hours(1),
            upload_parts_max: UPLOAD_PARTS_MAX,
            upstream_reach: UpstreamReach::PublicOnly,
            upstream_ttl: chrono::Duration::minutes(5),
            upstream_evict_after: chrono::Duration::days(30),
            upstream_fetch_hold: chrono::Duration::seconds(60),
        }
    }
}

/// Parts of at least 5 MiB (8 MiB when streamed): an upload in chunks of 15 to 23 GiB.
pub const UPLOAD_PARTS_MAX: usize = 3000;

/// How long a transaction is tried again while it meets concurrent ones (DynamoDB cancels
/// transactions that touch an item another one is writing).
const TRANSACTION_PATIENCE: Duration = Duration::from_secs(10);

/// Waits before trying again after losing a race, for a random time that grows with the
/// rounds lost ("full jitter"), so that requests that collided do not collide again in step.
pub(crate) async fn wait_turn(round: u32) {
    let ceiling_ms = 10u64 << round.min(6);
    let wait = rand::random_range(1..=ceiling_ms);
    tokio::time::sleep(Duration::from_millis(wait)).await;
}

/// The service: the storage ports, a clock, the settings and the credential cache.
pub struct Registry {
    metadata: Arc<dyn MetadataStore>,
    blobs: Arc<dyn BlobStore>,
    clock: Arc<dyn Clock>,
    settings: Settings,
    credentials: auth::CredentialCache,
    repository_hints: packages::RepositoryHints,
    signing_master: tokio::sync::OnceCell<Vec<u8>>,
    /// Seals upstream credentials; without one, upstreams take no credentials.
    sealer: Option<Arc<dyn SecretSealer>>,
}

impl Registry {
    pub fn new(
        metadata: Arc<dyn MetadataStore>,
        blobs: Arc<dyn BlobStore>,
        clock: Arc<dyn Clock>,
        settings: Settings,
    ) -> Self {
        let credentials = auth::CredentialCache::new(settings.credential_cache_ttl);
        Self {
            metadata,
            blobs,
            clock,
            settings,
            credentials,
            repository_hints: packages::RepositoryHints::default(),
            signing_master: tokio::sync::OnceCell::new(),
            sealer: None,
        }
    }

    /// The service sealing upstream credentials with `sealer`.
    pub fn with_sealer(mut self, sealer: Arc<dyn SecretSealer>) -> Self {
        self.sealer = Some(sealer);
        self
    }

    pub(crate) fn metadata(&self) -> &dyn MetadataStore {
        self.metadata.as_ref()
    }

    /// The metadata store, for tests that look at what was stored (feature `inspect`).
    #[cfg(feature = "inspect")]
    pub fn inspect_metadata(&self) -> &dyn MetadataStore {
        self.metadata()
    }

    /// The blob store, for tests that look at what was stored (feature `inspect`).
    #[cfg(feature = "inspect")]
    pub fn inspect_blobs(&self) -> &dyn BlobStore {
        self.blobs()
    }

    pub(crate) fn blobs(&self) -> &dyn BlobStore {
        self.blobs.as_ref()
    }

    /// The blob store, for work that outlives a borrow (a part written in the background).
    pub(crate) fn shared_blobs(&self) -> Arc<dyn BlobStore> {
        Arc::clone(&self.blobs)
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Runs a transaction, trying again when it meets a concurrent one (DynamoDB cancels both
    /// sides of a conflict; neither wrote anything), for up to [`TRANSACTION_PATIENCE`].
    pub(crate) async fn transact(&self, writes: Vec<Write>) -> Result<(), MetadataError> {
        let deadline = std::time::Instant::now() + TRANSACTION_PATIENCE;
        let mut round = 0;
        loop {
            match self.metadata.transact(writes.clone()).await {
                Err(MetadataError::Conflict) if std::time::Instant::now() < deadline => {
                    wait_turn(round).await;
                    round += 1;
                }
                result => return result,
            }
        }
    }
}

/// Storage as the service lays it out, for tests that look at what was stored (feature
/// `inspect`): protocols never see keys, they go through [`PackageItems`].
#[cfg(feature = "inspect")]
pub mod inspect {
    pub use crate::records::{BlobRecord, decode, keys};
}
