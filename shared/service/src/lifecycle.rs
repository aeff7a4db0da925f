//! Deleting and restoring workspaces, repositories and packages.
//!
//! A deletion hides its target at once (every read checks the deletion mark) and, in the same
//! transaction, enters it in the purge's due index. Nothing else changes until the purge, so a
//! restore within the retention period only has to lift the mark and the due entry: tokens,
//! roles, packages, versions and blobs are all still there.

use chrono::{DateTime, Utc};
use stowage_domain::{PackageName, PackageType, Principal, Role, Slug, Username};
use stowage_storage::{Condition, Key, MetadataError, Put, Write};

use crate::accounts::acting_user;
use crate::audit::{Audit, AuditAction};
use crate::records::{
    Deletion, DueItem, DueTarget, PackageRecord, RepositoryRecord, RoleRecord, WorkspaceRecord,
    decode, encode, keys,
};
use crate::workspaces::{decode_versioned, path_slug, require};
use crate::{Entity, Error, Registry, Result};

fn deletion(by: &Username, now: DateTime<Utc>, retention: chrono::Duration) -> Deletion {
    Deletion {
        at: now,
        purge_after: now + retention,
        by: by.to_string(),
    }
}

/// What a path segment keeps unencoded: RFC 3986's unreserved characters.
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The API path that restores what was deleted.
pub(crate) enum Restore<'a> {
    Workspace(&'a Slug),
    Repository(&'a Slug, &'a Slug),
    Package(&'a Slug, PackageType, &'a PackageName),
}

impl Restore<'_> {
    fn path(&self) -> String {
        match self {
            Restore::Workspace(workspace) => format!("/api/workspaces/{workspace}/restore"),
            Restore::Repository(workspace, repository) => {
                format!("/api/workspaces/{workspace}/repositories/{repository}/restore")
            }
            Restore::Package(workspace, kind, name) => {
                // A name holds `/` (image paths) and `@` (npm scopes): one path segment.
                let name = percent_encoding::utf8_percent_encode(name.as_str(), PATH_SEGMENT);
                format!("/api/workspaces/{workspace}/packages/{kind}/{name}/restore")
            }
        }
    }

    fn subject(&self) -> String {
        match self {
            Restore::Workspace(workspace) => format!("workspace {workspace}"),
            Restore::Repository(workspace, repository) => {
                format!("repository {workspace}/{repository}")
            }
            Restore::Package(workspace, kind, name) => {
                format!("{kind} package {name} in workspace {workspace}")
            }
        }
    }

    fn who(&self) -> String {
        match self {
            Restore::Workspace(_) => "its admin".to_owned(),
            Restore::Repository(workspace, _) => format!("an admin of workspace {workspace}"),
            Restore::Package(..) => "an admin of its repository".to_owned(),
        }
    }

    /// What a caller who could read the target is told instead of "not found".
    pub(crate) fn deleted(&self, deletion: &Deletion) -> Error {
        Error::Deleted(self.explain(deletion))
    }

    /// When it was deleted, until when it is kept, and how to restore it.
    pub(crate) fn explain(&self, deletion: &Deletion) -> String {
        let time = |t: &DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        format!(
            "{} was deleted at {} by {}; it is kept, with its name reserved, until {}, when it is \
             purged. Until then {} can restore it: POST {}",
            self.subject(),
            time(&deletion.at),
            deletion.by,
            time(&deletion.purge_after),
            self.who(),
            self.path()
        )
    }
}

/// The writes that mark a record deleted and enter it in the due index, conditional on the
/// record's version.
fn soft_delete_writes(
    key: Key,
    data: Vec<u8>,
    version: u64,
    target: DueTarget,
    deleted: &Deletion,
) -> Vec<Write> {
    let due = DueItem {
        target: target.clone(),
        purge_after: deleted.purge_after,
    };
    vec![
        Write::Put(Put::new(key, data).when(Condition::Version(version))),
        Write::Put(
            Put::new(keys::due(deleted.purge_after, &target), encode(&due)).when(Condition::Absent),
        ),
    ]
}

/// The writes that lift a deletion mark and its due entry.
fn restore_writes(
    key: Key,
    data: Vec<u8>,
    version: u64,
    target: &DueTarget,
    deleted: &Deletion,
) -> Vec<Write> {
    vec![
        Write::Put(Put::new(key, data).when(Condition::Version(version))),
        Write::Delete {
            key: keys::due(deleted.purge_after, target),
            condition: Condition::Exists,
        },
    ]
}

fn changed_meanwhile(what: &'static str) -> impl Fn(MetadataError) -> Error {
    move |error| match error {
        MetadataError::ConditionFailed { .. } => {
            Error::conflict(format!("the {what} changed meanwhile; try again"))
        }
        other => other.into(),
    }
}

impl Registry {
    /// A deletion that may still be undone: `Conflict` once its retention has run out (the
    /// purge owns it then).
    fn restorable(&self, deleted: Option<&Deletion>, what: &'static str) -> Result<Deletion> {
        let deleted =
            deleted.ok_or_else(|| Error::conflict(format!("the {what} is not deleted")))?;
        if deleted.purge_after <= self.now() {
            return Err(Error::conflict(format!(
                "the {what}'s retention has run out; it is being purged"
            )));
        }
        Ok(deleted.clone())
    }

    /// Soft-deletes a workspace (its admin only): everything in it is hidden at once, its
    /// storage stops being billable, and its slug stays taken until the purge.
    pub async fn delete_workspace(&self, caller: &Principal, workspace: &str) -> Result<Deletion> {
        let by = acting_user(caller)?.clone();
        let (mut record, version) = self.workspace_for_admin(caller, workspace).await?;
        let deleted = deletion(&by, self.now(), self.settings().retention);
        record.deleted = Some(deleted.clone());
        let target = DueTarget::Workspace {
            workspace: record.slug.clone(),
        };
        let audit = Audit::new(
            &record.slug,
            caller,
            AuditAction::Deleted,
            format!("workspace {}", record.slug),
        );
        let writes = soft_delete_writes(
            keys::workspace(&record.slug),
            encode(&record),
            version,
            target,
            &deleted,
        );
        self.transact_audited(writes, audit)
            .await
            .map_err(changed_meanwhile("workspace"))?;
        Ok(deleted)
    }

    /// Restores a deleted workspace within its retention period (its admin only).
    pub async fn restore_workspace(
        &self,
        caller: &Principal,
        workspace: &str,
    ) -> Result<WorkspaceRecord> {
        let username = acting_user(caller)?;
        let slug = path_slug(workspace, Entity::Workspace)?;
        let items = self
            .metadata()
            .get_many(&[keys::workspace(&slug), keys::role(username, &slug, None)])
            .await?;
        let mut items = items.into_iter();
        let record = decode_versioned::<WorkspaceRecord>(items.next().flatten())?;
        let admin = decode_versioned::<RoleRecord>(items.next().flatten())?.is_some();
        let (mut record, version) = record
            .filter(|_| admin)
            .ok_or(Error::NotFound(Entity::Workspace))?;
        let deleted = self.restorable(record.deleted.as_ref(), "workspace")?;
        record.deleted = None;
        let target = DueTarget::Workspace {
            workspace: slug.clone(),
        };
        let mut writes = restore_writes(
            keys::workspace(&slug),
            encode(&record),
            version,
            &target,
            &deleted,
        );
        // The collector skipped it while it was deleted.
        writes.push(crate::blobs::mark_for_collection(&slug));
        let audit = Audit::new(
            &slug,
            caller,
            AuditAction::Restored,
            format!("workspace {slug}"),
        );
        self.transact_audited(writes, audit)
            .await
            .map_err(changed_meanwhile("workspace"))?;
        Ok(record)
    }

    /// Soft-deletes a repository (its admin only): its packages are hidden at once; their
    /// storage stays billable and their names taken until the purge.
    pub async fn delete_repository(
        &self,
        caller: &Principal,
        workspace: &str,
        repository: &str,
    ) -> Result<Deletion> {
        let by = acting_user(caller)?.clone();
        let access = self
            .repository_for_admin(caller, workspace, repository)
            .await?;
        let mut record = access.repository;
        let deleted = deletion(&by, self.now(), self.settings().retention);
        record.deleted = Some(deleted.clone());
        let target = DueTarget::Repository {
            workspace: record.workspace.clone(),
            repository: record.slug.clone(),
        };
        let key = keys::repository(&record.workspace, &record.slug);
        let audit = Audit::new(
            &record.workspace,
            caller,
            AuditAction::Deleted,
            format!("repository {}/{}", record.workspace, record.slug),
        );
        let writes = soft_delete_writes(
            key,
            encode(&record),
            access.repository_version,
            target,
            &deleted,
        );
        self.transact_audited(writes, audit)
            .await
            .map_err(changed_meanwhile("repository"))?;
        Ok(deleted)
    }

    /// Restores a deleted repository within its retention period (a workspace admin, or an
    /// admin of the repository).
    pub async fn restore_repository(
        &self,
        caller: &Principal,
        workspace: &str,
        repository: &str,
    ) -> Result<RepositoryRecord> {
        let username = acting_user(caller)?;
        let workspace = path_slug(workspace, Entity::Repository)?;
        let repository = path_slug(repository, Entity::Repository)?;
        let items = self
            .metadata()
            .get_many(&[
                keys::workspace(&workspace),
                keys::repository(&workspace, &repository),
                keys::role(username, &workspace, None),
                keys::role(username, &workspace, Some(&repository)),
            ])
            .await?;
        let mut items = items.into_iter();
        let workspace_live = decode_versioned::<WorkspaceRecord>(items.next().flatten())?
            .is_some_and(|(w, _)| w.deleted.is_none());
        let record = decode_versioned::<RepositoryRecord>(items.next().flatten())?;
        let workspace_admin = items.next().flatten().is_some();
        let repository_role =
            decode_versioned::<RoleRecord>(items.next().flatten())?.map(|(r, _)| r.role);
        let admin = workspace_admin || repository_role == Some(Role::Admin);
        let (mut record, version) = record
            .filter(|_| workspace_live && admin)
            .ok_or(Error::NotFound(Entity::Repository))?;
        let deleted = self.restorable(record.deleted.as_ref(), "repository")?;
        record.deleted = None;
        let target = DueTarget::Repository {
            workspace: workspace.clone(),
            repository: repository.clone(),
        };
        let audit = Audit::new(
            &workspace,
            caller,
            AuditAction::Restored,
            format!("repository {workspace}/{repository}"),
        );
        let writes = restore_writes(
            keys::repository(&workspace, &repository),
            encode(&record),
            version,
            &target,
            &deleted,
        );
        self.transact_audited(writes, audit)
            .await
            .map_err(changed_meanwhile("repository"))?;
        Ok(record)
    }

    /// The package at `(kind, name)` and the caller's admin right over it, whether or not it
    /// is deleted; its workspace and repository must be live.
    async fn package_for_admin(
        &self,
        caller: &Principal,
        workspace: &str,
        kind: &str,
        name: &str,
    ) -> Result<(PackageRecord, u64)> {
        acting_user(caller)?;
        let workspace = path_slug(workspace, Entity::Package)?;
        let kind =
            PackageType::parse("type", kind).map_err(|_| Error::NotFound(Entity::Package))?;
        let name =
            PackageName::parse(kind, "name", name).map_err(|_| Error::NotFound(Entity::Package))?;
        let item = self
            .metadata()
            .get(&keys::package(&workspace, kind, &name))
            .await?
            .ok_or(Error::NotFound(Entity::Package))?;
        let package: PackageRecord = decode(&item)?;
        // Whoever cannot read the repository learns nothing: the answer of a package that
        // does not exist.
        let access = self
            .repository_access(caller, &workspace, &package.repository)
            .await
            .map_err(|error| match error {
                Error::NotFound(_) => Error::NotFound(Entity::Package),
                other => other,
            })?;
        require(access.access, Role::Admin, &access.repository)?;
        Ok((package, item.version))
    }

    /// Soft-deletes a package (an admin of its repository): gone from every protocol at once,
    /// its storage no longer billable, its name held until the purge.
    pub async fn delete_package(
        &self,
        caller: &Principal,
        workspace: &str,
        kind: &str,
        name: &str,
    ) -> Result<Deletion> {
        let by = acting_user(caller)?.clone();
        let (mut package, version) = self
            .package_for_admin(caller, workspace, kind, name)
            .await?;
        if package.deleted.is_some() {
            return Err(Error::NotFound(Entity::Package));
        }
        let deleted = deletion(&by, self.now(), self.settings().retention);
        package.deleted = Some(deleted.clone());
        let target = DueTarget::Package {
            workspace: package.workspace.clone(),
            kind: package.kind,
            name: package.name.clone(),
        };
        let key = keys::package(&package.workspace, package.kind, &package.name);
        let mut writes = soft_delete_writes(key, encode(&package), version, target, &deleted);
        if let Write::Put(put) = &mut writes[0] {
            put.index = Some(keys::package_index(
                &package.workspace,
                &package.repository,
                package.kind,
                &package.name,
            ));
        }
        let audit = Audit::new(
            &package.workspace,
            caller,
            AuditAction::Deleted,
            package_subject(&package),
        );
        self.transact_audited(writes, audit)
            .await
            .map_err(changed_meanwhile("package"))?;
        Ok(deleted)
    }

    /// Restores a deleted package within its retention period (an admin of its repository).
    pub async fn restore_package(
        &self,
        caller: &Principal,
        workspace: &str,
        kind: &str,
        name: &str,
    ) -> Result<PackageRecord> {
        let (mut package, version) = self
            .package_for_admin(caller, workspace, kind, name)
            .await?;
        let deleted = self.restorable(package.deleted.as_ref(), "package")?;
        package.deleted = None;
        let target = DueTarget::Package {
            workspace: package.workspace.clone(),
            kind: package.kind,
            name: package.name.clone(),
        };
        let key = keys::package(&package.workspace, package.kind, &package.name);
        let mut writes = restore_writes(key, encode(&package), version, &target, &deleted);
        if let Write::Put(put) = &mut writes[0] {
            put.index = Some(keys::package_index(
                &package.workspace,
                &package.repository,
                package.kind,
                &package.name,
            ));
        }
        let audit = Audit::new(
            &package.workspace,
            caller,
            AuditAction::Restored,
            package_subject(&package),
        );
        self.transact_audited(writes, audit)
            .await
            .map_err(changed_meanwhile("package"))?;
        Ok(package)
    }
}

/// A package, as an audit event names it.
pub(crate) fn package_subject(package: &PackageRecord) -> String {
    format!(
        "{} package {} (repository {}/{})",
        package.kind, package.name, package.workspace, package.repository
    )
}

/// What a workspace holds deleted and not yet purged, as far as the caller may restore it.
#[derive(Debug, Default)]
pub struct DeletedItems {
    /// Deleted repositories (for the workspace's admins).
    pub repositories: Vec<RepositoryRecord>,
    /// Deleted packages of the repositories the caller administers.
    pub packages: Vec<PackageRecord>,
}

impl Registry {
    /// The deleted repositories and packages of a workspace that the caller could restore:
    /// every one for a workspace admin, a repository admin's own packages, as the token's
    /// scope allows (a read-only token restores nothing). What [`Registry::workspace_overview`]
    /// reads, and costs.
    pub async fn deleted_in_workspace(
        &self,
        caller: &Principal,
        workspace: &str,
    ) -> Result<DeletedItems> {
        Ok(self.workspace_overview(caller, workspace).await?.deleted)
    }
}
