//! Workspaces, their repositories, the roles granted on them, and pipeline tokens.

use chrono::{DateTime, Utc};
use stowage_domain::{
    Access, Grants, Invalid, Plan, Principal, PrincipalKind, PrivateNamespace, Role, Scopes, Slug,
    TokenSecret, Username, package_access, pipeline_username,
};
use stowage_storage::{Condition, Item, Key, MAX_BATCH_KEYS, MetadataError, Put, Query, Write};

use crate::accounts::acting_user;
use crate::audit::{Audit, AuditAction};
use crate::records::{
    RepositoryRecord, RoleRecord, TokenOwner, TokenRecord, UserRecord, WorkspaceRecord, decode,
    encode, keys, load_all,
};
use crate::{Entity, Error, Registry, Result};

const PIPELINE_TOKEN_DEFAULT_SECONDS: i64 = 2 * 60 * 60;
const PIPELINE_TOKEN_MAX_SECONDS: i64 = 24 * 60 * 60;
const LIST_PAGE: usize = 200;
/// Attempts at a write that must re-read what it depends on after losing a race.
const OPTIMISTIC_ATTEMPTS: u32 = 5;

/// A workspace as its member sees it.
#[derive(Debug, Clone)]
pub struct WorkspaceView {
    pub workspace: WorkspaceRecord,
    /// The caller is the workspace's admin.
    pub admin: bool,
}

#[derive(Debug, Clone)]
pub struct RepositoryView {
    pub repository: RepositoryRecord,
    /// The caller's effective role on it.
    pub role: Role,
}

/// A workspace's repositories as a member sees them ([`Registry::repositories_of`]).
pub(crate) struct Repositories {
    pub view: WorkspaceView,
    /// The live repositories the caller holds a role on, with that role.
    pub live: Vec<RepositoryView>,
    /// The deleted ones (read for the workspace's admins only).
    pub deleted: Vec<RepositoryRecord>,
}

/// A user's role on a repository.
#[derive(Debug, Clone)]
pub struct Member {
    pub username: Username,
    pub role: Role,
    pub granted_at: DateTime<Utc>,
}

/// A pipeline's credentials, as Bitbucket hands them to a build.
#[derive(Debug)]
pub struct PipelineToken {
    pub username: String,
    pub secret: TokenSecret,
    pub expires_at: DateTime<Utc>,
}

/// `PATCH /api/workspaces/{ws}`: what is given changes.
#[derive(Debug, Default)]
pub struct WorkspaceChange {
    /// npm scopes (`@acme`) and Maven groups (`com.acme`) whose names never come from an
    /// upstream; the list replaces the one before.
    pub private_namespaces: Option<Vec<String>>,
}

/// The most private namespaces a workspace declares.
pub const PRIVATE_NAMESPACES_MAX: usize = 100;

fn private_namespaces(values: &[String]) -> Result<Vec<PrivateNamespace>> {
    if values.len() > PRIVATE_NAMESPACES_MAX {
        return Err(Invalid::new(
            "private_namespaces",
            format!("at most {PRIVATE_NAMESPACES_MAX} namespaces"),
        )
        .into());
    }
    let mut namespaces = values
        .iter()
        .map(|value| PrivateNamespace::parse("private_namespaces", value))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    namespaces.sort();
    namespaces.dedup();
    Ok(namespaces)
}

/// A repository the caller can at least read, with the records it was decided on.
pub(crate) struct RepositoryAccess {
    pub workspace_version: u64,
    pub repository: RepositoryRecord,
    pub repository_version: u64,
    pub access: Access,
}

/// A slug taken from a URL path: one that cannot be valid names nothing that exists.
pub(crate) fn path_slug(value: &str, what: Entity) -> Result<Slug> {
    Slug::parse("slug", value).map_err(|_| Error::NotFound(what))
}

fn live<T>(record: Option<(T, u64)>, deleted: impl Fn(&T) -> bool) -> Option<(T, u64)> {
    record.filter(|(record, _)| !deleted(record))
}

pub(crate) fn decode_versioned<T: serde::de::DeserializeOwned>(
    item: Option<Item>,
) -> Result<Option<(T, u64)>> {
    item.map(|item| Ok((decode(&item)?, item.version)))
        .transpose()
}

fn role_of(item: Option<Item>) -> Result<Option<Role>> {
    Ok(decode_versioned::<RoleRecord>(item)?.map(|(record, _)| record.role))
}

pub(crate) fn require(access: Access, needed: Role, repository: &RepositoryRecord) -> Result<()> {
    if access.allows(needed) {
        Ok(())
    } else {
        Err(Error::forbidden(access.refusal(
            needed,
            &repository.workspace,
            &repository.slug,
        )))
    }
}

impl Registry {
    /// Creates a workspace; its creator becomes its admin.
    pub async fn create_workspace(
        &self,
        caller: &Principal,
        slug: Slug,
        plan: Plan,
    ) -> Result<WorkspaceRecord> {
        let creator = acting_user(caller)?;
        let now = self.now();
        let workspace = WorkspaceRecord {
            slug: slug.clone(),
            plan,
            created_by: creator.clone(),
            created_at: now,
            deleted: None,
            private_namespaces: Vec::new(),
        };
        let admin = RoleRecord {
            workspace: slug.clone(),
            repository: None,
            username: creator.clone(),
            role: Role::Admin,
            granted_at: now,
        };
        let writes = vec![
            Write::Put(
                Put::new(keys::workspace(&slug), encode(&workspace)).when(Condition::Absent),
            ),
            Write::Put(
                Put::new(keys::role(creator, &slug, None), encode(&admin))
                    .indexed(keys::role_index(&slug, None, creator)),
            ),
        ];
        let audit = Audit::new(
            &slug,
            caller,
            AuditAction::Created,
            format!("workspace {slug}"),
        );
        match self.transact_audited(writes, audit).await {
            Ok(()) => Ok(workspace),
            Err(MetadataError::ConditionFailed { .. }) => Err(Error::conflict(format!(
                "the workspace slug {slug} is taken"
            ))),
            Err(other) => Err(other.into()),
        }
    }

    /// The workspace and whether the caller administers it; `NotFound` unless the caller holds
    /// a role in it.
    pub async fn get_workspace(
        &self,
        caller: &Principal,
        workspace: &str,
    ) -> Result<WorkspaceView> {
        let (view, _) = self.workspace_for_member(caller, workspace).await?;
        Ok(view)
    }

    /// The workspaces the caller belongs to (admin, or a role on one of its repositories),
    /// by slug: one query of the user's own roles, then one batch read of the workspaces.
    pub async fn list_workspaces(&self, caller: &Principal) -> Result<Vec<WorkspaceView>> {
        let Some(username) = caller.user() else {
            return Err(Error::forbidden(
                "a pipeline token can only read and publish the packages of its repository",
            ));
        };
        let query = Query::prefix(keys::user_partition(username), keys::ROLE_PREFIX, LIST_PAGE);
        let roles: Vec<RoleRecord> = load_all(self.metadata(), query).await?;
        let mut memberships: std::collections::BTreeMap<Slug, bool> = Default::default();
        for role in roles {
            *memberships.entry(role.workspace).or_default() |= role.repository.is_none();
        }
        let memberships: Vec<(Slug, bool)> = memberships.into_iter().collect();
        let mut views = Vec::new();
        for chunk in memberships.chunks(MAX_BATCH_KEYS) {
            let keys: Vec<Key> = chunk
                .iter()
                .map(|(slug, _)| keys::workspace(slug))
                .collect();
            let items = self.metadata().get_many(&keys).await?;
            for (item, (_, admin)) in items.into_iter().zip(chunk) {
                let record = decode_versioned::<WorkspaceRecord>(item)?;
                if let Some((workspace, _)) = live(record, |w| w.deleted.is_some()) {
                    views.push(WorkspaceView {
                        workspace,
                        admin: *admin,
                    });
                }
            }
        }
        Ok(views)
    }

    async fn workspace_for_member(
        &self,
        caller: &Principal,
        workspace: &str,
    ) -> Result<(WorkspaceView, u64)> {
        let Some(username) = caller.user() else {
            return Err(Error::forbidden(
                "a pipeline token can only read and publish the packages of its repository",
            ));
        };
        let slug = path_slug(workspace, Entity::Workspace)?;
        let items = self
            .metadata()
            .get_many(&[keys::workspace(&slug), keys::role(username, &slug, None)])
            .await?;
        let mut items = items.into_iter();
        let record = decode_versioned::<WorkspaceRecord>(items.next().flatten())?;
        let admin = role_of(items.next().flatten())?.is_some();
        let (workspace, version) =
            live(record, |w| w.deleted.is_some()).ok_or(Error::NotFound(Entity::Workspace))?;
        if !admin && !self.holds_any_role(username, &slug).await? {
            return Err(Error::NotFound(Entity::Workspace));
        }
        Ok((WorkspaceView { workspace, admin }, version))
    }

    async fn holds_any_role(&self, username: &Username, workspace: &Slug) -> Result<bool> {
        let query = Query::prefix(
            keys::role(username, workspace, None).partition,
            keys::roles_in_workspace_prefix(workspace),
            1,
        );
        Ok(!self.metadata().query(&query).await?.items.is_empty())
    }

    pub(crate) async fn workspace_for_admin(
        &self,
        caller: &Principal,
        workspace: &str,
    ) -> Result<(WorkspaceRecord, u64)> {
        acting_user(caller)?;
        let (view, version) = self.workspace_for_member(caller, workspace).await?;
        if !view.admin {
            return Err(Error::forbidden(format!(
                "you need to be an admin of workspace {}",
                view.workspace.slug
            )));
        }
        Ok((view.workspace, version))
    }

    /// Changes a workspace's settings (workspace admin only): what is given changes. A write
    /// that meets a concurrent change of the workspace fails rather than undoing it.
    pub async fn change_workspace(
        &self,
        caller: &Principal,
        workspace: &str,
        change: WorkspaceChange,
    ) -> Result<WorkspaceRecord> {
        let (mut record, version) = self.workspace_for_admin(caller, workspace).await?;
        let mut changed = Vec::new();
        if let Some(namespaces) = change.private_namespaces {
            record.private_namespaces = private_namespaces(&namespaces)?;
            let listed: Vec<&str> = record
                .private_namespaces
                .iter()
                .map(PrivateNamespace::as_str)
                .collect();
            changed.push(format!("private namespaces [{}]", listed.join(", ")));
        }
        if changed.is_empty() {
            return Ok(record);
        }
        let writes = vec![Write::Put(
            Put::new(keys::workspace(&record.slug), encode(&record))
                .when(Condition::Version(version)),
        )];
        let audit = Audit::new(
            &record.slug,
            caller,
            AuditAction::Changed,
            format!("workspace {}: {}", record.slug, changed.join("; ")),
        );
        match self.transact_audited(writes, audit).await {
            Ok(()) => Ok(record),
            Err(MetadataError::ConditionFailed { .. }) => Err(Error::conflict(
                "the workspace was changed or deleted by another request meanwhile; read it again",
            )),
            Err(other) => Err(other.into()),
        }
    }

    /// Creates a repository in a workspace (workspace admin only).
    pub async fn create_repository(
        &self,
        caller: &Principal,
        workspace: &str,
        slug: Slug,
    ) -> Result<RepositoryRecord> {
        for _ in 0..OPTIMISTIC_ATTEMPTS {
            let (workspace, version) = self.workspace_for_admin(caller, workspace).await?;
            let repository = RepositoryRecord {
                workspace: workspace.slug.clone(),
                slug: slug.clone(),
                created_at: self.now(),
                deleted: None,
            };
            let writes = vec![
                Write::Check {
                    key: keys::workspace(&workspace.slug),
                    condition: Condition::Version(version),
                },
                Write::Put(
                    Put::new(
                        keys::repository(&workspace.slug, &slug),
                        encode(&repository),
                    )
                    .when(Condition::Absent),
                ),
            ];
            let audit = Audit::new(
                &workspace.slug,
                caller,
                AuditAction::Created,
                format!("repository {}/{slug}", workspace.slug),
            );
            match self.transact_audited(writes, audit).await {
                Ok(()) => return Ok(repository),
                // The workspace changed under us (deleted, perhaps): look again.
                Err(MetadataError::ConditionFailed { index: Some(0) }) => continue,
                Err(MetadataError::ConditionFailed { .. }) => {
                    return Err(Error::conflict(format!(
                        "the repository slug {slug} is taken in workspace {}",
                        workspace.slug
                    )));
                }
                Err(other) => return Err(other.into()),
            }
        }
        Err(Error::Busy)
    }

    /// The repositories of a workspace the caller holds a role on (every one, for its admin),
    /// with that role as the token's scope caps it.
    pub async fn list_repositories(
        &self,
        caller: &Principal,
        workspace: &str,
    ) -> Result<Vec<RepositoryView>> {
        Ok(self.repositories_of(caller, workspace).await?.live)
    }

    /// A workspace as a member sees it: one batch read of the workspace and the caller's admin
    /// role, then one query of its repositories (an admin) or of the caller's roles in it,
    /// and a batch read of those repositories (anyone else).
    pub(crate) async fn repositories_of(
        &self,
        caller: &Principal,
        workspace: &str,
    ) -> Result<Repositories> {
        let (view, _) = self.workspace_for_member(caller, workspace).await?;
        let slug = view.workspace.slug.clone();
        let cap = caller.scopes.role_cap();
        if view.admin {
            let partition = keys::workspace_partition(&slug);
            let query = Query::prefix(partition, keys::REPOSITORY_PREFIX, LIST_PAGE);
            let records: Vec<RepositoryRecord> = load_all(self.metadata(), query).await?;
            let (deleted, live): (Vec<_>, Vec<_>) = records
                .into_iter()
                .partition(|repository| repository.deleted.is_some());
            let live = live
                .into_iter()
                .map(|repository| RepositoryView {
                    repository,
                    role: Role::Admin.min(cap),
                })
                .collect();
            return Ok(Repositories {
                view,
                live,
                deleted,
            });
        }
        let username = caller.user().ok_or(Error::NotFound(Entity::Workspace))?;
        let roles = self.roles_in_workspace(username, &slug).await?;
        let granted: Vec<(Slug, Role)> = roles
            .into_iter()
            .filter_map(|role| Some((role.repository?, role.role)))
            .collect();
        let mut live = Vec::new();
        for chunk in granted.chunks(MAX_BATCH_KEYS) {
            let keys: Vec<Key> = chunk
                .iter()
                .map(|(repo, _)| keys::repository(&slug, repo))
                .collect();
            let items = self.metadata().get_many(&keys).await?;
            for (item, (_, role)) in items.into_iter().zip(chunk) {
                let record = decode_versioned::<RepositoryRecord>(item)?;
                if let Some((repository, _)) = record.filter(|(r, _)| r.deleted.is_none()) {
                    live.push(RepositoryView {
                        repository,
                        role: (*role).min(cap),
                    });
                }
            }
        }
        live.sort_by(|a, b| a.repository.slug.cmp(&b.repository.slug));
        Ok(Repositories {
            view,
            live,
            deleted: Vec::new(),
        })
    }

    /// A user's roles on the repositories of one workspace (not the workspace-admin role).
    pub(crate) async fn roles_in_workspace(
        &self,
        username: &Username,
        workspace: &Slug,
    ) -> Result<Vec<RoleRecord>> {
        let query = Query::prefix(
            keys::user_partition(username),
            keys::roles_in_workspace_prefix(workspace),
            LIST_PAGE,
        );
        let roles: Vec<RoleRecord> = load_all(self.metadata(), query).await?;
        Ok(roles
            .into_iter()
            .filter(|role| role.repository.is_some())
            .collect())
    }

    /// The caller's access to a repository, in one batch read. `NotFound` when the workspace
    /// or repository is absent or deleted, or when the caller may not read it.
    pub(crate) async fn repository_access(
        &self,
        caller: &Principal,
        workspace: &Slug,
        repository: &Slug,
    ) -> Result<RepositoryAccess> {
        let mut keys = vec![
            keys::workspace(workspace),
            keys::repository(workspace, repository),
        ];
        if let PrincipalKind::User { username } = &caller.kind {
            keys.push(keys::role(username, workspace, None));
            keys.push(keys::role(username, workspace, Some(repository)));
        }
        let mut items = self.metadata().get_many(&keys).await?.into_iter();
        let workspace_record = decode_versioned::<WorkspaceRecord>(items.next().flatten())?;
        let repository_record = decode_versioned::<RepositoryRecord>(items.next().flatten())?;
        let grants = Grants {
            workspace_admin: role_of(items.next().flatten())?.is_some(),
            repository_role: role_of(items.next().flatten())?,
        };
        let not_found = Error::NotFound(Entity::Repository);
        let (_, workspace_version) =
            live(workspace_record, |w| w.deleted.is_some()).ok_or(not_found)?;
        let (repository_record, repository_version) =
            live(repository_record, |r| r.deleted.is_some())
                .ok_or(Error::NotFound(Entity::Repository))?;
        let access = package_access(caller, workspace, repository, grants);
        if !access.allows(Role::Read) {
            return Err(Error::NotFound(Entity::Repository));
        }
        Ok(RepositoryAccess {
            workspace_version,
            repository: repository_record,
            repository_version,
            access,
        })
    }

    pub(crate) async fn repository_for_admin(
        &self,
        caller: &Principal,
        workspace: &str,
        repository: &str,
    ) -> Result<RepositoryAccess> {
        acting_user(caller)?;
        let workspace = path_slug(workspace, Entity::Repository)?;
        let repository = path_slug(repository, Entity::Repository)?;
        let access = self
            .repository_access(caller, &workspace, &repository)
            .await?;
        require(access.access, Role::Admin, &access.repository)?;
        Ok(access)
    }

    /// Grants `role` on a repository to a user (repository admin only). Returns whether the
    /// grant is new (rather than a change of role).
    pub async fn set_permission(
        &self,
        caller: &Principal,
        workspace: &str,
        repository: &str,
        username: &str,
        role: Role,
    ) -> Result<bool> {
        let access = self
            .repository_for_admin(caller, workspace, repository)
            .await?;
        let username =
            Username::parse("username", username).map_err(|_| Error::NotFound(Entity::User))?;
        let repo = &access.repository;
        let key = keys::role(&username, &repo.workspace, Some(&repo.slug));
        let items = self
            .metadata()
            .get_many(&[keys::user(&username), key.clone()])
            .await?;
        if decode_versioned::<UserRecord>(items[0].clone())?.is_none() {
            return Err(Error::NotFound(Entity::User));
        }
        let created = items[1].is_none();
        let record = RoleRecord {
            workspace: repo.workspace.clone(),
            repository: Some(repo.slug.clone()),
            username: username.clone(),
            role,
            granted_at: self.now(),
        };
        let write = Write::Put(Put::new(key, encode(&record)).indexed(keys::role_index(
            &repo.workspace,
            Some(&repo.slug),
            &username,
        )));
        let audit = Audit::new(
            &repo.workspace,
            caller,
            AuditAction::Granted,
            format!(
                "{role} role on {}/{} to {username}",
                repo.workspace, repo.slug
            ),
        );
        self.transact_audited(vec![write], audit).await?;
        Ok(created)
    }

    /// The users granted a role on a repository, by name (repository admin only; workspace
    /// admins hold every repository without a grant). One query of the workspace's members
    /// index.
    pub async fn list_members(
        &self,
        caller: &Principal,
        workspace: &str,
        repository: &str,
    ) -> Result<Vec<Member>> {
        let access = self
            .repository_for_admin(caller, workspace, repository)
            .await?;
        let repo = &access.repository;
        let query = Query::prefix(
            keys::members_partition(&repo.workspace),
            format!("{}#", repo.slug),
            LIST_PAGE,
        )
        .on_index();
        let roles: Vec<RoleRecord> = load_all(self.metadata(), query).await?;
        Ok(roles
            .into_iter()
            .map(|role| Member {
                username: role.username,
                role: role.role,
                granted_at: role.granted_at,
            })
            .collect())
    }

    /// Takes a user's role on a repository away (repository admin only).
    pub async fn remove_permission(
        &self,
        caller: &Principal,
        workspace: &str,
        repository: &str,
        username: &str,
    ) -> Result<()> {
        let access = self
            .repository_for_admin(caller, workspace, repository)
            .await?;
        let username =
            Username::parse("username", username).map_err(|_| Error::NotFound(Entity::User))?;
        let repo = &access.repository;
        let write = Write::Delete {
            key: keys::role(&username, &repo.workspace, Some(&repo.slug)),
            condition: Condition::Exists,
        };
        let audit = Audit::new(
            &repo.workspace,
            caller,
            AuditAction::Revoked,
            format!("role on {}/{} of {username}", repo.workspace, repo.slug),
        );
        self.transact_audited(vec![write], audit)
            .await
            .map_err(|error| match error {
                MetadataError::ConditionFailed { .. } => Error::NotFound(Entity::Permission),
                other => other.into(),
            })
    }

    /// Mints a token for a repository's CI pipelines (repository admin only): write access to
    /// that repository's packages and nothing else, for at most a day.
    pub async fn create_pipeline_token(
        &self,
        caller: &Principal,
        workspace: &str,
        repository: &str,
        expires_in_seconds: Option<i64>,
    ) -> Result<PipelineToken> {
        let access = self
            .repository_for_admin(caller, workspace, repository)
            .await?;
        let seconds = expires_in_seconds.unwrap_or(PIPELINE_TOKEN_DEFAULT_SECONDS);
        if !(1..=PIPELINE_TOKEN_MAX_SECONDS).contains(&seconds) {
            return Err(Invalid::new(
                "expires_in_seconds",
                format!("must be 1 to {PIPELINE_TOKEN_MAX_SECONDS} seconds"),
            )
            .into());
        }
        let now = self.now();
        let repo = access.repository;
        let secret = TokenSecret::generate();
        let record = TokenRecord {
            id: uuid::Uuid::new_v4().to_string(),
            name: "pipeline".to_owned(),
            owner: TokenOwner::Pipeline {
                workspace: repo.workspace.clone(),
                repository: repo.slug.clone(),
            },
            scopes: Scopes::WRITE,
            expires_at: now + chrono::Duration::seconds(seconds),
            created_at: now,
        };
        self.metadata()
            .write(Write::Put(
                Put::new(keys::token(&secret.hash()), encode(&record))
                    .indexed(keys::pipeline_index(
                        &repo.workspace,
                        &repo.slug,
                        &record.id,
                    ))
                    .when(Condition::Absent),
            ))
            .await?;
        Ok(PipelineToken {
            username: pipeline_username(&repo.workspace, &repo.slug),
            secret,
            expires_at: record.expires_at,
        })
    }
}
