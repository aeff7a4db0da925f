//! Packages: created by a repository admin and linked to that repository, whose roles they
//! inherit. Protocols open a package through [`Registry::open_package`], which decides access
//! in two batch reads.

use std::collections::HashSet;

use stowage_domain::{
    Access, Grants, PackageName, PackageType, Principal, PrincipalKind, Role, Slug, Username,
    package_access,
};
use stowage_storage::{Condition, Item, Key, MetadataError, Put, Query, Write};

use crate::accounts::acting_user;
use crate::audit::{Audit, AuditAction};
use crate::lifecycle::{DeletedItems, Restore};
use crate::records::{
    PackageRecord, RepositoryRecord, VersionRecord, WorkspaceRecord, decode, encode, keys, load_all,
};
use crate::workspaces::{RepositoryView, WorkspaceView, decode_versioned, path_slug, require};
use crate::{Entity, Error, ItemKey, RecordKind, Registry, Result};

const LIST_PAGE: usize = 500;
const OPTIMISTIC_ATTEMPTS: u32 = 5;

#[derive(Debug, Clone)]
pub struct NewPackage {
    pub kind: PackageType,
    pub name: PackageName,
    pub repository: Slug,
}

#[derive(Debug, Clone)]
pub struct PackageDetails {
    pub package: PackageRecord,
    pub versions: Vec<VersionRecord>,
}

/// A workspace as the caller sees it ([`Registry::workspace_overview`]).
#[derive(Debug)]
pub struct WorkspaceOverview {
    pub workspace: WorkspaceView,
    pub repositories: Vec<RepositoryView>,
    /// The live packages of those repositories.
    pub packages: Vec<PackageRecord>,
    pub deleted: DeletedItems,
}

/// A package the caller may act on, and the extra items read along with it.
#[derive(Debug, Clone)]
pub struct OpenPackage {
    pub package: PackageRecord,
    pub access: Access,
    /// The items of the `extra` keys given to `open_package`, in order: read them with
    /// [`OpenPackage::record`].
    extra: Vec<Option<Item>>,
}

impl OpenPackage {
    /// The record at `key`, read with the package (`key` was among the `extra` asked for;
    /// `None` if it was not, or if there is no such record).
    pub fn record<K: RecordKind>(&self, key: &ItemKey) -> Result<Option<K::Payload>> {
        let wanted = key.as_key();
        match self.extra.iter().flatten().find(|item| &item.key == wanted) {
            Some(item) => Ok(Some(K::decode(item)?)),
            None => Ok(None),
        }
    }
}

/// What a caller who may not see a package is told: that it does not exist, or, for a write,
/// that an admin must create it. The two cases are deliberately indistinguishable.
fn absent_package(workspace: &Slug, kind: PackageType, name: &PackageName, needed: Role) -> Error {
    if needed >= Role::Write {
        Error::forbidden(format!(
            "there is no {kind} package {name} in workspace {workspace} that you can publish to: \
             a repository admin must create the package and link it to a repository first"
        ))
    } else {
        Error::NotFound(Entity::Package)
    }
}

impl Registry {
    /// Creates a package linked to a repository (admin of that repository only).
    pub async fn create_package(
        &self,
        caller: &Principal,
        workspace: &str,
        input: NewPackage,
    ) -> Result<PackageRecord> {
        let creator = acting_user(caller)?.to_string();
        let workspace = path_slug(workspace, Entity::Workspace)?;
        let NewPackage {
            kind,
            name,
            repository,
        } = input;
        for _ in 0..OPTIMISTIC_ATTEMPTS {
            let access = self
                .repository_access(caller, &workspace, &repository)
                .await?;
            require(access.access, Role::Admin, &access.repository)?;
            let package = PackageRecord {
                workspace: workspace.clone(),
                kind,
                name: name.clone(),
                repository: repository.clone(),
                created_by: creator.clone(),
                created_at: self.now(),
                deleted: None,
                upstream: None,
            };
            let writes = vec![
                Write::Check {
                    key: keys::workspace(&workspace),
                    condition: Condition::Version(access.workspace_version),
                },
                Write::Check {
                    key: keys::repository(&workspace, &repository),
                    condition: Condition::Version(access.repository_version),
                },
                Write::Put(
                    Put::new(keys::package(&workspace, kind, &name), encode(&package))
                        .indexed(keys::package_index(&workspace, &repository, kind, &name))
                        .when(Condition::Absent),
                ),
            ];
            let audit = Audit::new(
                &workspace,
                caller,
                AuditAction::Created,
                crate::lifecycle::package_subject(&package),
            );
            match self.transact_audited(writes, audit).await {
                Ok(()) => return Ok(package),
                Err(MetadataError::ConditionFailed { index: Some(0 | 1) }) => continue,
                Err(MetadataError::ConditionFailed { .. }) => {
                    return Err(self.name_taken(caller, &workspace, kind, &name).await);
                }
                Err(other) => return Err(other.into()),
            }
        }
        Err(Error::Busy)
    }

    /// Why a package name cannot be created: it exists, or, to those who could read it, it
    /// was deleted and is held until its purge.
    async fn name_taken(
        &self,
        caller: &Principal,
        workspace: &Slug,
        kind: PackageType,
        name: &PackageName,
    ) -> Error {
        let taken = Error::conflict(format!(
            "a {kind} package named {name} already exists in workspace {workspace}"
        ));
        let Ok(Some(item)) = self
            .metadata()
            .get(&keys::package(workspace, kind, name))
            .await
        else {
            return taken;
        };
        let Ok(package) = decode::<PackageRecord>(&item) else {
            return taken;
        };
        let Some(deletion) = &package.deleted else {
            return taken;
        };
        match self
            .repository_access(caller, workspace, &package.repository)
            .await
        {
            Ok(_) => Error::conflict(Restore::Package(workspace, kind, name).explain(deletion)),
            Err(_) => taken,
        }
    }

    /// The packages of a workspace the caller can read.
    pub async fn list_packages(
        &self,
        caller: &Principal,
        workspace: &str,
    ) -> Result<Vec<PackageRecord>> {
        let workspace = path_slug(workspace, Entity::Workspace)?;
        let readable = self.readable_repositories(caller, &workspace).await?;
        let query = Query::prefix(
            keys::workspace_partition(&workspace),
            keys::PACKAGE_PREFIX,
            LIST_PAGE,
        );
        let packages: Vec<PackageRecord> = load_all(self.metadata(), query).await?;
        Ok(packages
            .into_iter()
            .filter(|package| package.deleted.is_none() && readable.contains(&package.repository))
            .collect())
    }

    /// What a workspace holds for the caller, read at once: the repositories they hold a role
    /// on, the live packages of those, and what they could restore (see
    /// [`Registry::deleted_in_workspace`]). The calls of [`Registry::list_repositories`] and
    /// one query of the workspace's packages.
    pub async fn workspace_overview(
        &self,
        caller: &Principal,
        workspace: &str,
    ) -> Result<WorkspaceOverview> {
        let repositories = self.repositories_of(caller, workspace).await?;
        let slug = &repositories.view.workspace.slug;
        let query = Query::prefix(
            keys::workspace_partition(slug),
            keys::PACKAGE_PREFIX,
            LIST_PAGE,
        );
        let all: Vec<PackageRecord> = load_all(self.metadata(), query).await?;
        let workspace_admin = repositories.view.admin && caller.scopes.role_cap() == Role::Admin;
        let role_on = |repository: &Slug| {
            repositories
                .live
                .iter()
                .find(|view| &view.repository.slug == repository)
                .map(|view| view.role)
        };
        let mut packages = Vec::new();
        let mut deleted = DeletedItems::default();
        for package in all {
            let role = role_on(&package.repository);
            if package.deleted.is_none() {
                if role.is_some() {
                    packages.push(package);
                }
            } else if workspace_admin || role == Some(Role::Admin) {
                deleted.packages.push(package);
            }
        }
        if workspace_admin {
            deleted.repositories = repositories.deleted;
        }
        Ok(WorkspaceOverview {
            workspace: repositories.view,
            repositories: repositories.live,
            packages,
            deleted,
        })
    }

    async fn readable_repositories(
        &self,
        caller: &Principal,
        workspace: &Slug,
    ) -> Result<HashSet<Slug>> {
        if let PrincipalKind::Pipeline {
            workspace: own,
            repository,
        } = &caller.kind
        {
            if own != workspace {
                return Err(Error::NotFound(Entity::Workspace));
            }
            self.repository_access(caller, workspace, repository)
                .await?;
            return Ok(HashSet::from([repository.clone()]));
        }
        let views = self.list_repositories(caller, workspace.as_str()).await?;
        Ok(views.into_iter().map(|view| view.repository.slug).collect())
    }

    /// One package and its versions (read access).
    pub async fn get_package(
        &self,
        caller: &Principal,
        workspace: &str,
        kind: &str,
        name: &str,
    ) -> Result<PackageDetails> {
        let workspace = path_slug(workspace, Entity::Package)?;
        let kind =
            PackageType::parse("type", kind).map_err(|_| Error::NotFound(Entity::Package))?;
        let name =
            PackageName::parse(kind, "name", name).map_err(|_| Error::NotFound(Entity::Package))?;
        let open = self
            .open_package(caller, &workspace, kind, &name, Role::Read, &[])
            .await?;
        let query = Query::prefix(open.package.partition(), keys::VERSION_PREFIX, LIST_PAGE);
        let versions: Vec<VersionRecord> = load_all(self.metadata(), query).await?;
        Ok(PackageDetails {
            package: open.package,
            versions,
        })
    }

    /// Opens a package for an operation that needs `needed`, reading `extra` items of the
    /// caller's choice in the same round trip (a tag, a version, …).
    ///
    /// One batch read: the workspace, the package, the caller's roles, the repository and
    /// `extra`. Which repository to read is known from an earlier call (a package stays
    /// linked to its repository for life); the first time, or if the hint is stale, a second
    /// batch reads it. A package the caller cannot read is reported exactly as one that does
    /// not exist; one that is deleted, or whose repository or workspace is, is reported as
    /// deleted (when, until when it is kept, how to restore it) to those who could read it.
    pub async fn open_package(
        &self,
        caller: &Principal,
        workspace: &Slug,
        kind: PackageType,
        name: &PackageName,
        needed: Role,
        extra: &[ItemKey],
    ) -> Result<OpenPackage> {
        let absent = || absent_package(workspace, kind, name, needed);
        let user = caller.user();
        let package_key = keys::package(workspace, kind, name);
        let hint = self.repository_hints.get(&package_key);
        let mut keys = vec![keys::workspace(workspace), package_key.clone()];
        keys.extend(user.map(|username| keys::role(username, workspace, None)));
        if let Some(repository) = &hint {
            keys.extend(repository_keys(workspace, repository, user));
        }
        let fixed = keys.len();
        keys.extend(extra.iter().map(|key| key.as_key().clone()));
        let mut items = self.metadata().get_many(&keys).await?;
        let extra_items = items.split_off(fixed);
        let mut items = items.into_iter();
        let workspace_record = decode_versioned::<WorkspaceRecord>(items.next().flatten())?;
        let package = decode_versioned::<PackageRecord>(items.next().flatten())?;
        let workspace_admin = user.is_some() && items.next().flatten().is_some();
        let Some((workspace_record, _)) = workspace_record else {
            return Err(absent());
        };
        if let Some(deletion) = &workspace_record.deleted {
            return Err(if workspace_admin {
                Restore::Workspace(workspace).deleted(deletion)
            } else {
                absent()
            });
        }
        let Some((package, _)) = package else {
            return Err(absent());
        };
        let mut repository_items: Vec<Option<Item>> = items.collect();
        if hint.as_ref() != Some(&package.repository) {
            let keys = repository_keys(workspace, &package.repository, user);
            repository_items = self.metadata().get_many(&keys).await?;
            self.repository_hints
                .insert(package_key, package.repository.clone());
        }
        let mut items = repository_items.into_iter();
        let Some((repository, _)) = decode_versioned::<RepositoryRecord>(items.next().flatten())?
        else {
            return Err(absent());
        };
        let repository_role = match items.next().flatten() {
            Some(item) => Some(decode::<crate::records::RoleRecord>(&item)?.role),
            None => None,
        };
        let grants = Grants {
            workspace_admin,
            repository_role,
        };
        let access = package_access(caller, workspace, &package.repository, grants);
        if !access.allows(Role::Read) {
            return Err(absent());
        }
        // Those who could read it are told what became of it.
        if let Some(deletion) = &repository.deleted {
            return Err(Restore::Repository(workspace, &repository.slug).deleted(deletion));
        }
        if let Some(deletion) = &package.deleted {
            return Err(Restore::Package(workspace, kind, name).deleted(deletion));
        }
        if !access.allows(needed) {
            return Err(Error::forbidden(access.refusal(
                needed,
                workspace,
                &package.repository,
            )));
        }
        if needed >= Role::Write && package.upstream.is_some() {
            return Err(Error::forbidden(format!(
                "{kind} package {name} is a cached copy of an upstream of repository {}/{}: \
                 nobody publishes into a proxied name (delete the package to publish your own)",
                workspace, package.repository
            )));
        }
        Ok(OpenPackage {
            package,
            access,
            extra: extra_items,
        })
    }

    /// Opens a package on the strength of a role granted earlier (by a signed token naming
    /// its repository): one batch read of the workspace, repository, package and `extra`,
    /// to see that they still exist. `None` when the package is no longer linked to that
    /// repository, so the caller decides afresh with [`Registry::open_package`].
    pub async fn open_package_granted(
        &self,
        workspace: &Slug,
        kind: PackageType,
        name: &PackageName,
        repository: &Slug,
        granted: Role,
        extra: &[ItemKey],
    ) -> Result<Option<OpenPackage>> {
        let mut keys = vec![
            keys::workspace(workspace),
            keys::repository(workspace, repository),
            keys::package(workspace, kind, name),
        ];
        keys.extend(extra.iter().map(|key| key.as_key().clone()));
        let mut items = self.metadata().get_many(&keys).await?;
        let extra_items = items.split_off(3);
        let mut items = items.into_iter();
        let workspace_live = decode_versioned::<WorkspaceRecord>(items.next().flatten())?
            .is_some_and(|(w, _)| w.deleted.is_none());
        let repository_live = decode_versioned::<RepositoryRecord>(items.next().flatten())?
            .is_some_and(|(r, _)| r.deleted.is_none());
        let package = decode_versioned::<PackageRecord>(items.next().flatten())?;
        match package {
            Some((package, _))
                if workspace_live
                    && repository_live
                    && package.deleted.is_none()
                    && &package.repository == repository =>
            {
                Ok(Some(OpenPackage {
                    package,
                    access: Access::granted(granted),
                    extra: extra_items,
                }))
            }
            _ => Ok(None),
        }
    }
}

/// The repository record, and the caller's role on it.
fn repository_keys(workspace: &Slug, repository: &Slug, user: Option<&Username>) -> Vec<Key> {
    let mut keys = vec![keys::repository(workspace, repository)];
    keys.extend(user.map(|username| keys::role(username, workspace, Some(repository))));
    keys
}

/// Which repository each package was last seen linked to: a hint for reading everything
/// `open_package` needs in one batch. Always checked against the package record read in the
/// same batch, so a stale hint costs a second read, never a wrong answer.
pub(crate) struct RepositoryHints(moka::sync::Cache<Key, Slug>);

impl Default for RepositoryHints {
    fn default() -> Self {
        Self(moka::sync::Cache::new(100_000))
    }
}

impl RepositoryHints {
    fn get(&self, package: &Key) -> Option<Slug> {
        self.0.get(package)
    }

    fn insert(&self, package: Key, repository: Slug) {
        self.0.insert(package, repository);
    }
}
