//! Upstreams: registries a repository proxies (the public npm registry, Maven Central, Docker
//! Hub, or a registry of one's own). A repository admin attaches, changes and removes them;
//! what they serve is cached as packages of that repository, so the one permission model
//! covers proxied packages too.
//!
//! A password is sealed by the deployment's [`SecretSealer`] (KMS on AWS, a key file
//! locally) under the upstream's identity, and never returned. Upstreams live in their
//! workspace's partition, so the ones a caller may read through are one query away.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use stowage_domain::{Invalid, PackageName, PackageType, Principal, Role, Slug, UpstreamUrl};
use stowage_storage::{Condition, Key, MetadataError, Put, Query, SealError, Write};

use crate::audit::{Audit, AuditAction};
use crate::packages::OpenPackage;
use crate::records::{
    DueItem, DueTarget, PackageRecord, UpstreamRecord, WorkspaceRecord, decode, encode, keys,
    load_all,
};
use crate::workspaces::{RepositoryAccess, path_slug};
use crate::{Entity, Error, ItemKey, JsonKind, Registry, Result};

const LIST_PAGE: usize = 200;
/// How long a request waits for another's fetch of the same object.
const FETCH_WAIT: std::time::Duration = std::time::Duration::from_secs(25);
/// Where an upstream goes when several could serve a name, unless its admin says otherwise.
pub const DEFAULT_PRIORITY: u16 = 100;
const USERNAME_MAX: usize = 256;
/// KMS encrypts at most 4 KiB in one call.
const PASSWORD_MAX: usize = 4096;

/// How an upstream authenticates: a username and password (HTTP Basic), or a password alone
/// (a token sent as a Bearer credential, as npm's `_authToken` is).
pub struct UpstreamCredentials {
    pub username: Option<String>,
    pub password: SecretString,
}

/// `POST …/upstreams`.
pub struct NewUpstream {
    pub kind: PackageType,
    pub url: String,
    pub credentials: Option<UpstreamCredentials>,
    pub priority: Option<u16>,
}

/// `PATCH …/upstreams/{id}`: what is given changes; credentials change as a whole.
#[derive(Default)]
pub struct UpstreamChange {
    pub url: Option<String>,
    pub priority: Option<u16>,
    /// `Some(None)` removes the credentials.
    pub credentials: Option<Option<UpstreamCredentials>>,
}

/// An upstream as its admins see it: everything but the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamView {
    pub id: String,
    pub repository: Slug,
    pub kind: PackageType,
    pub url: UpstreamUrl,
    pub username: Option<String>,
    pub has_password: bool,
    pub priority: u16,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
}

impl From<&UpstreamRecord> for UpstreamView {
    fn from(record: &UpstreamRecord) -> Self {
        Self {
            id: record.id.clone(),
            repository: record.repository.clone(),
            kind: record.kind,
            url: record.url.clone(),
            username: record.username.clone(),
            has_password: record.sealed_password.is_some(),
            priority: record.priority,
            created_at: record.created_at,
            created_by: record.created_by.clone(),
            updated_at: record.updated_at,
        }
    }
}

/// An upstream a caller may fetch through, with its credentials opened.
pub struct ReachableUpstream {
    pub upstream: UpstreamView,
    pub credentials: Option<UpstreamCredentials>,
}

/// What a read of a package name finds.
pub enum Opened {
    /// The package (local, or a cached copy of an upstream's).
    Package(OpenPackage),
    /// No package of that name exists in the workspace (not even one the caller cannot see,
    /// or one deleted): the upstreams the caller may fetch it through, in order, never empty.
    Upstreams(Vec<ReachableUpstream>),
}

/// A fetch from an upstream under way: the marker that makes concurrent misses of one
/// object one upstream request, across processes ([`keys::fetch_marker`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Fetching {
    pub started_at: DateTime<Utc>,
}

/// This request's hold on fetching one object of a cached package ([`Registry::fetch_once_held`]).
#[must_use = "a marker is released once its fetch is over"]
pub struct FetchMarker {
    key: Key,
}

/// When a cached package was last read (written at most once a day): the purge evicts it
/// once unused for `Settings::upstream_evict_after`.
pub(crate) struct CacheUses;

impl JsonKind for CacheUses {
    const PREFIX: &'static str = "USED";
    type Payload = CacheUse;
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct CacheUse {
    pub at: DateTime<Utc>,
}

/// How stale a cached package's last use may be before a read records it again.
const USE_GRANULARITY: chrono::Duration = chrono::Duration::days(1);

/// What a sealed password is bound to: opened for any other upstream, it is rejected.
fn seal_context(record: &UpstreamRecord) -> [(&'static str, &str); 3] {
    [
        ("workspace", record.workspace.as_str()),
        ("repository", record.repository.as_str()),
        ("upstream", record.id.as_str()),
    ]
}

fn check_credentials(credentials: &UpstreamCredentials) -> Result<()> {
    if let Some(username) = &credentials.username
        && (username.is_empty()
            || username.len() > USERNAME_MAX
            || username.chars().any(char::is_control))
    {
        return Err(Invalid::new(
            "username",
            format!("must be 1 to {USERNAME_MAX} characters, none of them control characters"),
        )
        .into());
    }
    let password = credentials.password.expose_secret();
    if password.is_empty() || password.len() > PASSWORD_MAX {
        return Err(Invalid::new("password", format!("must be 1 to {PASSWORD_MAX} bytes")).into());
    }
    Ok(())
}

fn upstream_subject(record: &UpstreamRecord) -> String {
    format!(
        "{} upstream {} of {}/{}",
        record.kind, record.url, record.workspace, record.repository
    )
}

impl Registry {
    /// Attaches an upstream to a repository (repository admin only).
    pub async fn attach_upstream(
        &self,
        caller: &Principal,
        workspace: &str,
        repository: &str,
        new: NewUpstream,
    ) -> Result<UpstreamView> {
        let access = self
            .repository_for_admin(caller, workspace, repository)
            .await?;
        let url = UpstreamUrl::parse("url", &new.url, self.settings().upstream_reach)?;
        let now = self.now();
        let repo = &access.repository;
        let mut record = UpstreamRecord {
            id: uuid::Uuid::new_v4().simple().to_string(),
            workspace: repo.workspace.clone(),
            repository: repo.slug.clone(),
            kind: new.kind,
            url,
            username: None,
            sealed_password: None,
            priority: new.priority.unwrap_or(DEFAULT_PRIORITY),
            created_at: now,
            created_by: caller.display_name(),
            updated_at: now,
        };
        self.set_credentials(&mut record, new.credentials).await?;
        let writes = vec![
            repository_unchanged(&access),
            Write::Put(
                Put::new(
                    keys::upstream(&record.workspace, &record.repository, &record.id),
                    encode(&record),
                )
                .when(Condition::Absent),
            ),
        ];
        let audit = Audit::new(
            &record.workspace,
            caller,
            AuditAction::Created,
            upstream_subject(&record),
        );
        self.transact_audited(writes, audit)
            .await
            .map_err(repository_gone)?;
        Ok(UpstreamView::from(&record))
    }

    /// A repository's upstreams, in the order they are tried (repository admin only).
    pub async fn list_upstreams(
        &self,
        caller: &Principal,
        workspace: &str,
        repository: &str,
    ) -> Result<Vec<UpstreamView>> {
        let access = self
            .repository_for_admin(caller, workspace, repository)
            .await?;
        let repo = &access.repository;
        let query = Query::prefix(
            keys::workspace_partition(&repo.workspace),
            keys::upstreams_of_repository_prefix(&repo.slug),
            LIST_PAGE,
        );
        let mut records: Vec<UpstreamRecord> = load_all(self.metadata(), query).await?;
        records.sort_by(in_resolution_order);
        Ok(records.iter().map(UpstreamView::from).collect())
    }

    /// One upstream of a repository (repository admin only).
    pub async fn get_upstream(
        &self,
        caller: &Principal,
        workspace: &str,
        repository: &str,
        id: &str,
    ) -> Result<UpstreamView> {
        let access = self
            .repository_for_admin(caller, workspace, repository)
            .await?;
        let (record, _) = self.upstream_record(&access, id).await?;
        Ok(UpstreamView::from(&record))
    }

    /// Changes an upstream (repository admin only). A write that meets a concurrent change
    /// of the same upstream fails rather than undoing it.
    pub async fn change_upstream(
        &self,
        caller: &Principal,
        workspace: &str,
        repository: &str,
        id: &str,
        change: UpstreamChange,
    ) -> Result<UpstreamView> {
        let access = self
            .repository_for_admin(caller, workspace, repository)
            .await?;
        let (mut record, version) = self.upstream_record(&access, id).await?;
        if let Some(url) = change.url {
            record.url = UpstreamUrl::parse("url", &url, self.settings().upstream_reach)?;
        }
        if let Some(priority) = change.priority {
            record.priority = priority;
        }
        if let Some(credentials) = change.credentials {
            self.set_credentials(&mut record, credentials).await?;
        }
        record.updated_at = self.now();
        let writes = vec![
            repository_unchanged(&access),
            Write::Put(
                Put::new(
                    keys::upstream(&record.workspace, &record.repository, &record.id),
                    encode(&record),
                )
                .when(Condition::Version(version)),
            ),
        ];
        let audit = Audit::new(
            &record.workspace,
            caller,
            AuditAction::Changed,
            upstream_subject(&record),
        );
        self.transact_audited(writes, audit)
            .await
            .map_err(|error| match error {
                MetadataError::ConditionFailed { index: Some(1) } => Error::conflict(
                    "the upstream was changed or removed by another request meanwhile; read it again",
                ),
                other => repository_gone(other),
            })?;
        Ok(UpstreamView::from(&record))
    }

    /// Removes an upstream (repository admin only). What it served stays cached until the
    /// purge evicts it.
    pub async fn remove_upstream(
        &self,
        caller: &Principal,
        workspace: &str,
        repository: &str,
        id: &str,
    ) -> Result<()> {
        let access = self
            .repository_for_admin(caller, workspace, repository)
            .await?;
        let (record, _) = self.upstream_record(&access, id).await?;
        let write = Write::Delete {
            key: keys::upstream(&record.workspace, &record.repository, &record.id),
            condition: Condition::Exists,
        };
        let audit = Audit::new(
            &record.workspace,
            caller,
            AuditAction::Deleted,
            upstream_subject(&record),
        );
        self.transact_audited(vec![write], audit)
            .await
            .map_err(|error| match error {
                MetadataError::ConditionFailed { .. } => Error::NotFound(Entity::Upstream),
                other => other.into(),
            })
    }

    /// The upstreams of `kind` a caller may fetch through: those of the live repositories of
    /// the workspace it may read, in resolution order (priority, then repository, then age),
    /// with their credentials opened. One query of the workspace's upstreams beside the
    /// caller's repositories.
    pub async fn reachable_upstreams(
        &self,
        caller: &Principal,
        workspace: &str,
        kind: PackageType,
    ) -> Result<Vec<ReachableUpstream>> {
        let repositories = self.repositories_of(caller, workspace).await?;
        let slug = repositories.view.workspace.slug;
        let query = Query::prefix(
            keys::workspace_partition(&slug),
            keys::UPSTREAM_PREFIX,
            LIST_PAGE,
        );
        let mut records: Vec<UpstreamRecord> = load_all(self.metadata(), query).await?;
        records.retain(|record| {
            record.kind == kind
                && repositories
                    .live
                    .iter()
                    .any(|view| view.repository.slug == record.repository)
        });
        records.sort_by(in_resolution_order);
        let mut reachable = Vec::with_capacity(records.len());
        for record in &records {
            reachable.push(ReachableUpstream {
                upstream: UpstreamView::from(record),
                credentials: self.open_credentials(record).await?,
            });
        }
        Ok(reachable)
    }

    /// Opens a package for reading like [`Registry::open_package`]; when the workspace has no
    /// package of that name at all, the upstreams the caller may fetch it through instead.
    /// A name that exists locally never comes from an upstream (dependency confusion), even
    /// for a caller who cannot read it, nor does a name in a namespace the workspace declares
    /// private. A miss costs one batch read more, and a query of the workspace's upstreams.
    pub async fn open_or_upstreams(
        &self,
        caller: &Principal,
        workspace: &Slug,
        kind: PackageType,
        name: &PackageName,
        extra: &[ItemKey],
    ) -> Result<Opened> {
        let use_key = ItemKey::in_package::<CacheUses>(workspace, kind, name, "");
        let mut keys = extra.to_vec();
        keys.push(use_key.clone());
        let error = match self
            .open_package(caller, workspace, kind, name, Role::Read, &keys)
            .await
        {
            Ok(open) => {
                if open.package.upstream.is_some() {
                    let used = open.record::<CacheUses>(&use_key)?;
                    self.mark_used(&open.package, used).await?;
                }
                return Ok(Opened::Package(open));
            }
            Err(error @ Error::NotFound(_)) => error,
            Err(other) => return Err(other),
        };
        let mut found = self
            .metadata()
            .get_many(&[
                keys::package(workspace, kind, name),
                keys::workspace(workspace),
            ])
            .await?
            .into_iter();
        if found.next().flatten().is_some() {
            return Err(error);
        }
        let declared_private = match found.next().flatten() {
            Some(item) => decode::<WorkspaceRecord>(&item)?
                .private_namespaces
                .iter()
                .any(|namespace| namespace.covers(kind, name)),
            None => true,
        };
        if declared_private {
            return Err(error);
        }
        match self
            .reachable_upstreams(caller, workspace.as_str(), kind)
            .await
        {
            Ok(upstreams) if !upstreams.is_empty() => Ok(Opened::Upstreams(upstreams)),
            Ok(_) | Err(Error::NotFound(_)) => Err(error),
            Err(other) => Err(other),
        }
    }

    /// [`Registry::open_package_granted`] for a read: a cached package's use is recorded, as
    /// [`Registry::open_or_upstreams`] records it.
    pub async fn open_granted_for_read(
        &self,
        workspace: &Slug,
        kind: PackageType,
        name: &PackageName,
        repository: &Slug,
        granted: Role,
        extra: &[ItemKey],
    ) -> Result<Option<OpenPackage>> {
        let use_key = ItemKey::in_package::<CacheUses>(workspace, kind, name, "");
        let mut keys = extra.to_vec();
        keys.push(use_key.clone());
        let open = self
            .open_package_granted(workspace, kind, name, repository, granted, &keys)
            .await?;
        if let Some(open) = &open
            && open.package.upstream.is_some()
        {
            let used = open.record::<CacheUses>(&use_key)?;
            self.mark_used(&open.package, used).await?;
        }
        Ok(open)
    }

    /// Records `name` as a package of `upstream`'s repository, a cached copy of what the
    /// upstream serves. `None` when the name was taken meanwhile (published locally, or cached
    /// by a concurrent request): open it again.
    pub async fn create_proxied_package(
        &self,
        workspace: &Slug,
        upstream: &UpstreamView,
        name: &PackageName,
    ) -> Result<Option<PackageRecord>> {
        let package = PackageRecord {
            workspace: workspace.clone(),
            kind: upstream.kind,
            name: name.clone(),
            repository: upstream.repository.clone(),
            created_by: format!("upstream {}", upstream.url),
            created_at: self.now(),
            deleted: None,
            upstream: Some(upstream.id.clone()),
        };
        let writes = vec![
            Write::Put(
                Put::new(
                    keys::package(workspace, upstream.kind, name),
                    encode(&package),
                )
                .indexed(keys::package_index(
                    workspace,
                    &upstream.repository,
                    upstream.kind,
                    name,
                ))
                .when(Condition::Absent),
            ),
            self.eviction(&package, package.created_at),
        ];
        match self.transact(writes).await {
            Ok(()) => Ok(Some(package)),
            Err(MetadataError::ConditionFailed { .. }) => Ok(None),
            Err(other) => Err(other.into()),
        }
    }

    /// The purge's entry that looks at a cached package once it may have gone unused since
    /// `last_use`.
    pub(crate) fn eviction(&self, package: &PackageRecord, last_use: DateTime<Utc>) -> Write {
        let due = DueItem {
            target: DueTarget::CachedPackage {
                workspace: package.workspace.clone(),
                kind: package.kind,
                name: package.name.clone(),
            },
            purge_after: last_use + self.settings().upstream_evict_after,
        };
        Write::Put(Put::new(
            keys::due(due.purge_after, &due.target),
            encode(&due),
        ))
    }

    /// Records that a cached package is read, at most once a day.
    async fn mark_used(&self, package: &PackageRecord, used: Option<CacheUse>) -> Result<()> {
        let now = self.now();
        if used.is_some_and(|used| used.at + USE_GRANULARITY > now) {
            return Ok(());
        }
        let items = self.package_items(package);
        let mut writes = items.writes("upstream");
        writes.put::<CacheUses>("", &CacheUse { at: now });
        Ok(writes.commit().await?)
    }

    /// When a cached package was last read (or made), for the purge.
    pub(crate) async fn last_use(&self, package: &PackageRecord) -> Result<DateTime<Utc>> {
        let used = self.package_items(package).get::<CacheUses>("").await?;
        Ok(used.map_or(package.created_at, |used| {
            used.payload.at.max(package.created_at)
        }))
    }

    /// The upstream a cached package was copied from, with its credentials opened; `None`
    /// when it is not a cached copy, or its upstream was removed (its copy is then served as
    /// it stands).
    pub async fn upstream_of(&self, package: &PackageRecord) -> Result<Option<ReachableUpstream>> {
        let Some(id) = &package.upstream else {
            return Ok(None);
        };
        let key = keys::upstream(&package.workspace, &package.repository, id);
        let Some(item) = self.metadata().get(&key).await? else {
            return Ok(None);
        };
        let record: UpstreamRecord = decode(&item)?;
        Ok(Some(ReachableUpstream {
            upstream: UpstreamView::from(&record),
            credentials: self.open_credentials(&record).await?,
        }))
    }

    /// Fetches `object` of a cached package once, however many requests miss it at once:
    /// the first to mark it fetches (`fetch`), the others wait (up to 25 s) until `done` finds
    /// what it stored. A marker left by a request that died is taken over after a minute.
    pub async fn fetch_once<T, E, Done, DoneFuture, Fetch, FetchFuture>(
        &self,
        package: &PackageRecord,
        object: &str,
        done: Done,
        fetch: Fetch,
    ) -> std::result::Result<T, E>
    where
        E: From<Error>,
        Done: FnMut() -> DoneFuture,
        DoneFuture: Future<Output = std::result::Result<Option<T>, E>>,
        Fetch: FnOnce() -> FetchFuture,
        FetchFuture: Future<Output = std::result::Result<T, E>>,
    {
        self.fetch_released(Self::marker_key(package, object), done, fetch)
            .await
    }

    /// [`Registry::fetch_once`] for a fetch that answers before it is done (a blob streamed to
    /// its client while it is stored): `fetch` is given the marker, and releases it with
    /// [`Registry::release_fetch`] once what it fetched is stored or given up.
    pub async fn fetch_once_held<T, E, Done, DoneFuture, Fetch, FetchFuture>(
        &self,
        package: &PackageRecord,
        object: &str,
        done: Done,
        fetch: Fetch,
    ) -> std::result::Result<T, E>
    where
        E: From<Error>,
        Done: FnMut() -> DoneFuture,
        DoneFuture: Future<Output = std::result::Result<Option<T>, E>>,
        Fetch: FnOnce(FetchMarker) -> FetchFuture,
        FetchFuture: Future<Output = std::result::Result<T, E>>,
    {
        self.fetch_marked(Self::marker_key(package, object), done, fetch)
            .await
    }

    /// [`Registry::fetch_once`] for a name the workspace does not have yet: the first request
    /// fetches `object` (and makes the package), the others wait until `done` finds what it
    /// made. Its marker is the one later fetches of the object use: the two exclude each other.
    pub async fn fetch_first_once<T, E, Done, DoneFuture, Fetch, FetchFuture>(
        &self,
        workspace: &Slug,
        kind: PackageType,
        name: &PackageName,
        object: &str,
        done: Done,
        fetch: Fetch,
    ) -> std::result::Result<T, E>
    where
        E: From<Error>,
        Done: FnMut() -> DoneFuture,
        DoneFuture: Future<Output = std::result::Result<Option<T>, E>>,
        Fetch: FnOnce() -> FetchFuture,
        FetchFuture: Future<Output = std::result::Result<T, E>>,
    {
        let key = keys::fetch_marker(workspace, kind, name, object);
        self.fetch_released(key, done, fetch).await
    }

    /// Where the marker of a fetch of `object` of a cached package is.
    fn marker_key(package: &PackageRecord, object: &str) -> Key {
        keys::fetch_marker(&package.workspace, package.kind, &package.name, object)
    }

    /// Marks `object` of a cached package as being fetched by this request, without waiting:
    /// `None` when another request is fetching it (a refresh then serves what it has).
    pub async fn try_fetch(
        &self,
        package: &PackageRecord,
        object: &str,
    ) -> Result<Option<FetchMarker>> {
        let key = Self::marker_key(package, object);
        Ok(self.take_fetch(&key).await?.then_some(FetchMarker { key }))
    }

    /// [`Registry::fetch_marked`] for a fetch that is done when `fetch` answers: the marker
    /// is released then.
    async fn fetch_released<T, E, Done, DoneFuture, Fetch, FetchFuture>(
        &self,
        key: Key,
        done: Done,
        fetch: Fetch,
    ) -> std::result::Result<T, E>
    where
        E: From<Error>,
        Done: FnMut() -> DoneFuture,
        DoneFuture: Future<Output = std::result::Result<Option<T>, E>>,
        Fetch: FnOnce() -> FetchFuture,
        FetchFuture: Future<Output = std::result::Result<T, E>>,
    {
        self.fetch_marked(key, done, |marker| async move {
            let fetched = self.renewing(&marker, fetch()).await;
            self.release_fetch(marker).await;
            fetched
        })
        .await
    }

    /// Whether a name missed by a first fetch was made meanwhile: the package exists and, if it
    /// is a cached copy, holds `evidence` (what that fetch stores). A package published
    /// locally meanwhile counts as made.
    pub async fn made_meanwhile(
        &self,
        workspace: &Slug,
        kind: PackageType,
        name: &PackageName,
        evidence: &ItemKey,
    ) -> Result<bool> {
        let found = self
            .metadata()
            .get_many(&[
                keys::package(workspace, kind, name),
                evidence.as_key().clone(),
            ])
            .await?;
        let mut found = found.into_iter();
        let package = found.next().flatten();
        let stored = found.next().flatten().is_some();
        Ok(match package {
            Some(item) => stored || decode::<PackageRecord>(&item)?.upstream.is_none(),
            None => false,
        })
    }

    /// The loop of the fetches above: `done`, else take the marker at `key` and `fetch`, else
    /// wait and look again.
    async fn fetch_marked<T, E, Done, DoneFuture, Fetch, FetchFuture>(
        &self,
        key: Key,
        mut done: Done,
        fetch: Fetch,
    ) -> std::result::Result<T, E>
    where
        E: From<Error>,
        Done: FnMut() -> DoneFuture,
        DoneFuture: Future<Output = std::result::Result<Option<T>, E>>,
        Fetch: FnOnce(FetchMarker) -> FetchFuture,
        FetchFuture: Future<Output = std::result::Result<T, E>>,
    {
        let deadline = tokio::time::Instant::now() + FETCH_WAIT;
        let mut fetch = Some(fetch);
        loop {
            if let Some(found) = done().await? {
                return Ok(found);
            }
            if self.take_fetch(&key).await?
                && let Some(fetch) = fetch.take()
            {
                // Another request may have stored it and let go of the marker between the
                // look above and taking the marker: look again, holding it.
                let marker = FetchMarker { key };
                return match done().await {
                    Ok(None) => fetch(marker).await,
                    Ok(Some(found)) => {
                        self.release_fetch(marker).await;
                        Ok(found)
                    }
                    Err(error) => {
                        self.release_fetch(marker).await;
                        Err(error)
                    }
                };
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Busy.into());
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Marks the object of `key` as being fetched by this request; false if another holds it.
    async fn take_fetch(&self, key: &Key) -> Result<bool> {
        let now = self.now();
        let condition = match self.metadata().get(key).await? {
            None => Condition::Absent,
            Some(item)
                if decode::<Fetching>(&item)?.started_at + self.settings().upstream_fetch_hold
                    < now =>
            {
                Condition::Version(item.version)
            }
            Some(_) => return Ok(false),
        };
        let marker = Put::new(key.clone(), encode(&Fetching { started_at: now })).when(condition);
        match self.metadata().write(Write::Put(marker)).await {
            Ok(()) => Ok(true),
            Err(MetadataError::ConditionFailed { .. }) => Ok(false),
            Err(other) => Err(other.into()),
        }
    }

    /// How often a long fetch renews its marker, so that nobody takes it over meanwhile.
    fn fetch_renewal(&self) -> std::time::Duration {
        (self.settings().upstream_fetch_hold / 3)
            .to_std()
            .unwrap_or(std::time::Duration::from_secs(1))
    }

    /// Runs `work` while renewing `marker`, so that no request takes over a fetch that is only
    /// long (a large layer, a slow client).
    pub async fn renewing<T>(&self, marker: &FetchMarker, work: impl Future<Output = T>) -> T {
        let mut work = std::pin::pin!(work);
        let mut ticks = tokio::time::interval(self.fetch_renewal());
        ticks.tick().await;
        loop {
            tokio::select! {
                done = &mut work => return done,
                _ = ticks.tick() => self.renew_fetch(marker).await,
            }
        }
    }

    /// Renews this request's marker: the fetch is still under way.
    async fn renew_fetch(&self, marker: &FetchMarker) {
        let renewed = Put::new(
            marker.key.clone(),
            encode(&Fetching {
                started_at: self.now(),
            }),
        );
        if let Err(error) = self.metadata().write(Write::Put(renewed)).await {
            tracing::warn!(%error, "could not renew an upstream fetch marker");
        }
    }

    /// Lets other requests fetch the marked object again (if it was not stored, the next
    /// request that misses it fetches it).
    pub async fn release_fetch(&self, marker: FetchMarker) {
        let release = Write::Delete {
            key: marker.key,
            condition: Condition::None,
        };
        if let Err(error) = self.metadata().write(release).await {
            // It is taken over once `upstream_fetch_hold` has passed.
            tracing::warn!(%error, "could not release an upstream fetch marker");
        }
    }

    async fn upstream_record(
        &self,
        access: &RepositoryAccess,
        id: &str,
    ) -> Result<(UpstreamRecord, u64)> {
        let repo = &access.repository;
        let id = path_slug(id, Entity::Upstream)?;
        let item = self
            .metadata()
            .get(&keys::upstream(&repo.workspace, &repo.slug, id.as_str()))
            .await?
            .ok_or(Error::NotFound(Entity::Upstream))?;
        Ok((decode(&item)?, item.version))
    }

    /// Replaces a record's credentials, sealing the password under the record's identity.
    async fn set_credentials(
        &self,
        record: &mut UpstreamRecord,
        credentials: Option<UpstreamCredentials>,
    ) -> Result<()> {
        let Some(credentials) = credentials else {
            record.username = None;
            record.sealed_password = None;
            return Ok(());
        };
        check_credentials(&credentials)?;
        let sealer = self.sealer.as_ref().ok_or_else(|| {
            Invalid::new(
                "password",
                "this registry has no key to seal credentials with (its operator sets \
                 STOWAGE_UPSTREAM_KEY); attach the upstream without credentials",
            )
        })?;
        let sealed = sealer
            .seal(
                credentials.password.expose_secret().as_bytes(),
                &seal_context(record),
            )
            .await
            .map_err(Error::Sealer)?;
        record.username = credentials.username;
        record.sealed_password = Some(BASE64.encode(sealed));
        Ok(())
    }

    async fn open_credentials(
        &self,
        record: &UpstreamRecord,
    ) -> Result<Option<UpstreamCredentials>> {
        let Some(sealed) = &record.sealed_password else {
            return Ok(None);
        };
        let corrupt = || Error::Corrupt(format!("the password of upstream {}", record.id));
        let sealed = BASE64.decode(sealed).map_err(|_| corrupt())?;
        let sealer = self
            .sealer
            .as_ref()
            .ok_or(Error::Sealer(SealError::Unavailable(
                "no key to open upstream credentials with (STOWAGE_UPSTREAM_KEY)".into(),
            )))?;
        let password = sealer
            .open(&sealed, &seal_context(record))
            .await
            .map_err(Error::Sealer)?;
        let password = String::from_utf8(password).map_err(|_| corrupt())?;
        Ok(Some(UpstreamCredentials {
            username: record.username.clone(),
            password: SecretString::from(password),
        }))
    }
}

/// The repository must still be the one whose admin was checked (not deleted meanwhile).
fn repository_unchanged(access: &RepositoryAccess) -> Write {
    Write::Check {
        key: keys::repository(&access.repository.workspace, &access.repository.slug),
        condition: Condition::Version(access.repository_version),
    }
}

fn repository_gone(error: MetadataError) -> Error {
    match error {
        MetadataError::ConditionFailed { index: Some(0) } => Error::NotFound(Entity::Repository),
        MetadataError::ConditionFailed { .. } => {
            Error::conflict("another request changed the upstreams meanwhile; try again")
        }
        other => other.into(),
    }
}

fn in_resolution_order(a: &UpstreamRecord, b: &UpstreamRecord) -> std::cmp::Ordering {
    (a.priority, &a.repository, a.created_at, &a.id).cmp(&(
        b.priority,
        &b.repository,
        b.created_at,
        &b.id,
    ))
}
