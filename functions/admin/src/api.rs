//! The management API's bodies: what each endpoint takes and answers, as types. Requests carry
//! the domain's types, so a body that reaches a handler is valid; responses are the views
//! the README's API table lists.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use stowage_domain::{
    Email, PackageName, PackageType, Plan, PrivateNamespace, Role, Scopes, Slug, Username,
};
use stowage_service::{
    Deletion, PackageRecord, RepositoryRecord, TokenRef, UserRecord, VersionRecord, WorkspaceRecord,
};
use stowage_service::{
    IssuedToken, PackageDetails, PipelineToken, TokenExpiry, UpstreamChange, UpstreamCredentials,
    UpstreamView,
};

use crate::body::field;

/// `POST /api/users`
#[derive(Deserialize)]
pub struct CreateUser {
    #[serde(deserialize_with = "field::username")]
    pub username: Username,
    #[serde(deserialize_with = "field::email")]
    pub email: Email,
}

/// `POST /api/tokens`, `POST /api/users/{user}/tokens`: the expiry is `expires_at` or
/// `expires_in_days`, exactly one ([`CreateToken::expiry`]).
#[derive(Deserialize)]
pub struct CreateToken {
    pub name: String,
    #[serde(deserialize_with = "field::scopes")]
    pub scopes: Scopes,
    #[serde(default, deserialize_with = "field::optional_rfc3339")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

impl CreateToken {
    pub fn expiry(&self) -> Result<TokenExpiry, stowage_domain::Invalid> {
        match (self.expires_at, self.expires_in_days) {
            (Some(at), None) => Ok(TokenExpiry::At(at)),
            (None, Some(days)) => Ok(TokenExpiry::InDays(days)),
            (None, None) => Err(stowage_domain::Invalid::new(
                "expires_at",
                "is required (or expires_in_days)",
            )),
            (Some(_), Some(_)) => Err(stowage_domain::Invalid::new(
                "expires_in_days",
                "cannot be given with expires_at",
            )),
        }
    }
}

/// `POST /api/workspaces`
#[derive(Deserialize)]
pub struct CreateWorkspace {
    #[serde(deserialize_with = "field::slug")]
    pub slug: Slug,
    #[serde(deserialize_with = "field::plan")]
    pub plan: Plan,
}

/// `PATCH /api/workspaces/{ws}`: what is given changes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeWorkspace {
    pub private_namespaces: Option<Vec<String>>,
}

/// `POST /api/workspaces/{ws}/repositories`
#[derive(Deserialize)]
pub struct CreateRepository {
    #[serde(deserialize_with = "field::slug")]
    pub slug: Slug,
}

/// `PUT /api/workspaces/{ws}/repositories/{repo}/permissions/{user}`
#[derive(Deserialize)]
pub struct SetPermission {
    #[serde(deserialize_with = "field::role")]
    pub role: Role,
}

/// `POST /api/workspaces/{ws}/repositories/{repo}/pipeline-tokens`
#[derive(Deserialize)]
pub struct CreatePipelineToken {
    #[serde(default)]
    pub expires_in_seconds: Option<i64>,
}

/// `POST /api/workspaces/{ws}/repositories/{repo}/upstreams`
#[derive(Deserialize)]
pub struct AttachUpstream {
    #[serde(rename = "type", deserialize_with = "field::package_type")]
    pub kind: PackageType,
    pub url: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub priority: Option<u16>,
}

impl AttachUpstream {
    pub fn credentials(&mut self) -> Result<Option<UpstreamCredentials>, stowage_domain::Invalid> {
        credentials(self.username.take(), self.password.take())
    }
}

/// `PATCH /api/workspaces/{ws}/repositories/{repo}/upstreams/{id}`: the fields given change;
/// `username` and `password` change together (both `null` removes the credentials). The
/// type cannot change: attach another upstream.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeUpstream {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub priority: Option<u16>,
    #[serde(default, deserialize_with = "field::nullable")]
    pub username: Option<Option<String>>,
    #[serde(default, deserialize_with = "field::nullable")]
    pub password: Option<Option<String>>,
}

impl TryFrom<ChangeUpstream> for UpstreamChange {
    type Error = stowage_domain::Invalid;

    fn try_from(body: ChangeUpstream) -> Result<Self, Self::Error> {
        let credentials = match (body.username, body.password) {
            (None, None) => None,
            (username, password) => Some(credentials(username.flatten(), password.flatten())?),
        };
        Ok(UpstreamChange {
            url: body.url,
            priority: body.priority,
            credentials,
        })
    }
}

/// A password alone is a token; a username needs its password.
fn credentials(
    username: Option<String>,
    password: Option<String>,
) -> Result<Option<UpstreamCredentials>, stowage_domain::Invalid> {
    match (username, password) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(stowage_domain::Invalid::new(
            "password",
            "is required with a username",
        )),
        (username, Some(password)) => Ok(Some(UpstreamCredentials {
            username,
            password: SecretString::from(password),
        })),
    }
}

/// An upstream, without its password.
#[derive(Serialize)]
pub struct UpstreamJson {
    pub id: String,
    pub repository: Slug,
    #[serde(rename = "type")]
    pub kind: PackageType,
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    pub has_password: bool,
    pub priority: u16,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
}

impl From<UpstreamView> for UpstreamJson {
    fn from(view: UpstreamView) -> Self {
        Self {
            id: view.id,
            repository: view.repository,
            kind: view.kind,
            url: view.url.to_string(),
            username: view.username,
            has_password: view.has_password,
            priority: view.priority,
            created_at: view.created_at,
            created_by: view.created_by,
            updated_at: view.updated_at,
        }
    }
}

/// `POST /api/workspaces/{ws}/packages`. The name's rules depend on the type, so it is
/// checked once both are read ([`CreatePackage::name`]).
#[derive(Deserialize)]
pub struct CreatePackage {
    #[serde(rename = "type", deserialize_with = "field::package_type")]
    pub kind: PackageType,
    pub name: String,
    #[serde(deserialize_with = "field::slug")]
    pub repository: Slug,
}

impl CreatePackage {
    pub fn name(&self) -> Result<PackageName, stowage_domain::Invalid> {
        PackageName::parse(self.kind, "name", &self.name)
    }
}

/// A list, as every listing answers.
#[derive(Serialize)]
pub struct Values<T> {
    pub values: Vec<T>,
}

#[derive(Serialize)]
pub struct CurrentUserJson {
    pub username: String,
    pub scopes: Scopes,
    pub pipeline: bool,
}

#[derive(Serialize)]
pub struct UserJson {
    pub username: Username,
    pub email: Email,
    pub created_at: DateTime<Utc>,
}

impl From<UserRecord> for UserJson {
    fn from(user: UserRecord) -> Self {
        Self {
            username: user.username,
            email: user.email,
            created_at: user.created_at,
        }
    }
}

#[derive(Serialize)]
pub struct TokenJson {
    pub id: String,
    pub name: String,
    pub scopes: Scopes,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

impl From<TokenRef> for TokenJson {
    fn from(token: TokenRef) -> Self {
        Self {
            id: token.id,
            name: token.name,
            scopes: token.scopes,
            expires_at: token.expires_at,
            created_at: token.created_at,
        }
    }
}

/// A token just minted: its description and, this once, its secret.
#[derive(Serialize)]
pub struct IssuedTokenJson {
    #[serde(flatten)]
    pub description: TokenJson,
    pub token: String,
}

impl From<IssuedToken> for IssuedTokenJson {
    fn from(issued: IssuedToken) -> Self {
        Self {
            description: issued.token.into(),
            token: issued.secret.expose().to_owned(),
        }
    }
}

#[derive(Serialize)]
pub struct WorkspaceJson {
    pub slug: Slug,
    pub plan: Plan,
    pub created_at: DateTime<Utc>,
    /// Whether the caller is its admin, where the answer is about the caller.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin: Option<bool>,
    /// npm scopes and Maven groups whose names never come from an upstream.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub private_namespaces: Vec<PrivateNamespace>,
}

impl From<WorkspaceRecord> for WorkspaceJson {
    fn from(workspace: WorkspaceRecord) -> Self {
        Self {
            slug: workspace.slug,
            plan: workspace.plan,
            created_at: workspace.created_at,
            admin: None,
            private_namespaces: workspace.private_namespaces,
        }
    }
}

#[derive(Serialize)]
pub struct RepositoryJson {
    pub workspace: Slug,
    pub slug: Slug,
    pub created_at: DateTime<Utc>,
    /// The caller's effective role on it, in a listing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
}

impl From<RepositoryRecord> for RepositoryJson {
    fn from(repository: RepositoryRecord) -> Self {
        Self {
            workspace: repository.workspace,
            slug: repository.slug,
            created_at: repository.created_at,
            role: None,
        }
    }
}

#[derive(Serialize)]
pub struct PermissionJson {
    pub username: String,
    pub role: Role,
}

#[derive(Serialize)]
pub struct PipelineTokenJson {
    pub username: String,
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

impl From<PipelineToken> for PipelineTokenJson {
    fn from(token: PipelineToken) -> Self {
        Self {
            username: token.username,
            token: token.secret.expose().to_owned(),
            expires_at: token.expires_at,
        }
    }
}

#[derive(Serialize)]
pub struct PackageJson {
    #[serde(rename = "type")]
    pub kind: PackageType,
    pub name: PackageName,
    pub repository: Slug,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    /// Its versions, when one package is asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub versions: Option<Vec<VersionJson>>,
}

impl From<PackageRecord> for PackageJson {
    fn from(package: PackageRecord) -> Self {
        Self {
            kind: package.kind,
            name: package.name,
            repository: package.repository,
            created_at: package.created_at,
            created_by: package.created_by,
            versions: None,
        }
    }
}

impl From<PackageDetails> for PackageJson {
    fn from(details: PackageDetails) -> Self {
        let versions = details
            .versions
            .into_iter()
            .map(VersionJson::from)
            .collect();
        Self {
            versions: Some(versions),
            ..Self::from(details.package)
        }
    }
}

#[derive(Serialize)]
pub struct VersionJson {
    pub version: String,
    pub published_at: DateTime<Utc>,
}

impl From<VersionRecord> for VersionJson {
    fn from(version: VersionRecord) -> Self {
        Self {
            version: version.version,
            published_at: version.published_at,
        }
    }
}

/// `GET /api/workspaces/{ws}/audit`: one event of the trail.
#[derive(Serialize)]
pub struct AuditEventJson {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: stowage_service::AuditAction,
    pub subject: String,
}

impl From<stowage_service::AuditEvent> for AuditEventJson {
    fn from(event: stowage_service::AuditEvent) -> Self {
        Self {
            at: event.at,
            actor: event.actor,
            action: event.action,
            subject: event.subject,
        }
    }
}

/// `GET /api/workspaces/{ws}/deleted`: what the caller could restore.
#[derive(Serialize)]
pub struct DeletedJson {
    pub repositories: Vec<DeletedRepositoryJson>,
    pub packages: Vec<DeletedPackageJson>,
}

#[derive(Serialize)]
pub struct DeletedRepositoryJson {
    #[serde(flatten)]
    pub repository: RepositoryJson,
    #[serde(flatten)]
    pub deletion: DeletionJson,
}

#[derive(Serialize)]
pub struct DeletedPackageJson {
    #[serde(flatten)]
    pub package: PackageJson,
    #[serde(flatten)]
    pub deletion: DeletionJson,
}

impl From<stowage_service::DeletedItems> for DeletedJson {
    fn from(items: stowage_service::DeletedItems) -> Self {
        let repositories = items
            .repositories
            .into_iter()
            .filter_map(|repository| {
                let deletion = DeletionJson::from(repository.deleted.as_ref()?);
                Some(DeletedRepositoryJson {
                    repository: repository.into(),
                    deletion,
                })
            })
            .collect();
        let packages = items
            .packages
            .into_iter()
            .filter_map(|package| {
                let deletion = DeletionJson::from(package.deleted.as_ref()?);
                Some(DeletedPackageJson {
                    package: package.into(),
                    deletion,
                })
            })
            .collect();
        Self {
            repositories,
            packages,
        }
    }
}

/// A deletion: when it happened, and when the purge removes what it hid.
#[derive(Serialize)]
pub struct DeletionJson {
    pub deleted_at: DateTime<Utc>,
    pub deleted_by: String,
    pub purge_after: DateTime<Utc>,
}

impl From<&Deletion> for DeletionJson {
    fn from(deletion: &Deletion) -> Self {
        Self {
            deleted_at: deletion.at,
            deleted_by: deletion.by.clone(),
            purge_after: deletion.purge_after,
        }
    }
}
