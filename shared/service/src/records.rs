//! The data model: every key and every record Stowage keeps in the metadata store, in one
//! place. Records are JSON in the item's data.
//!
//! ```text
//! partition                      sort                         record
//! USER#<user>                    PROFILE                      UserRecord
//! USER#<user>                    TOKEN#<id>                   TokenRef (listing; points at the hash)
//! USER#<user>                    ROLE#<ws>#<repo|*>           RoleRecord   index: MEMBERS#<ws> / <repo|*>#<user>
//! EMAIL#<email>                  EMAIL                        EmailRecord (uniqueness of e-mails)
//! TOKEN#<sha256 of secret>       TOKEN                        TokenRecord (the credential lookup)
//! WS#<ws>                        WORKSPACE                    WorkspaceRecord
//! WS#<ws>                        REPO#<repo>                  RepositoryRecord
//! WS#<ws>                        PKG#<type>#<name>            PackageRecord  index: REPOPKGS#<ws>#<repo> / <type>#<name>
//! WS#<ws>                        UPSTREAM#<repo>#<id>         UpstreamRecord (a registry the repository proxies)
//! PKG#<ws>#<type>#<name>         VERSION#<version>            VersionRecord, then each protocol's own kinds (items.rs)
//! PKG#<ws>#<type>#<name>         BLOB#<digest>                BlobLink (the package uses this blob)
//! BLOBS#<ws>                     <digest>                     BlobRecord (the workspace holds this content)
//! UPLOAD#<id>                    UPLOAD                       UploadRecord (a resumable upload)  index: UPLOADS / <started>#<id>
//! DUE                            <purge after>#<target>       DueItem (what the purge removes, when)
//! AUDIT#<ws>                     <time>#<uuid>                AuditEvent (the workspace's trail)
//! USAGE#<ws>                     STORED                       counter: the workspace's stored bytes
//! OBJECTS#<ws>                   <object key>                 ObjectRecord (a record names this object)
//! GC#<ws>                        <digest>                     GcCandidate (a blob marked as unused)
//! GCDIRTY                        <ws>                         a workspace whose blobs may have become garbage
//! (index) PIPELINES#<ws>         <repo>#<id>                  a pipeline token of a repository, for the purge
//! CONFIG                         SIGNING_KEY                  the key of short-lived tokens
//! RECONCILE                      CURSOR                       Reconciliation (the purge's walk of the bucket)
//! ```
//!
//! Blob objects live under `ws/<ws>/blobs/<uuid>`: an upload stays where it was written.
//!
//! Names never contain `#` (slugs, package names, tags and versions exclude it), so keys
//! cannot collide.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use stowage_domain::{
    Digest, Email, PackageName, PackageType, Plan, PrivateNamespace, Role, Scopes, Slug, TokenHash,
    UpstreamUrl, Username,
};
use stowage_storage::{Item, Key, MetadataStore};

use crate::{Error, Result};

pub mod keys {
    use super::*;

    pub fn user(username: &Username) -> Key {
        Key::new(format!("USER#{username}"), "PROFILE")
    }

    pub fn email(email: &Email) -> Key {
        Key::new(format!("EMAIL#{email}"), "EMAIL")
    }

    pub fn token(hash: &TokenHash) -> Key {
        Key::new(format!("TOKEN#{}", hash.as_str()), "TOKEN")
    }

    pub fn user_token(username: &Username, id: &str) -> Key {
        Key::new(
            format!("USER#{username}"),
            format!("{USER_TOKEN_PREFIX}{id}"),
        )
    }

    /// The sort-key prefix of a user's token listing entries.
    pub const USER_TOKEN_PREFIX: &str = "TOKEN#";

    /// The partition of a user's profile, token listing and roles.
    pub fn user_partition(username: &Username) -> String {
        format!("USER#{username}")
    }

    pub fn workspace(workspace: &Slug) -> Key {
        Key::new(workspace_partition(workspace), "WORKSPACE")
    }

    pub fn workspace_partition(workspace: &Slug) -> String {
        format!("WS#{workspace}")
    }

    pub fn repository(workspace: &Slug, repository: &Slug) -> Key {
        Key::new(workspace_partition(workspace), format!("REPO#{repository}"))
    }

    pub const REPOSITORY_PREFIX: &str = "REPO#";
    pub const PACKAGE_PREFIX: &str = "PKG#";

    /// A user's role in a workspace: on one repository, or (`None`) as workspace admin.
    pub fn role(username: &Username, workspace: &Slug, repository: Option<&Slug>) -> Key {
        Key::new(
            format!("USER#{username}"),
            format!("ROLE#{workspace}#{}", repository.map_or("*", Slug::as_str)),
        )
    }

    /// The sort-key prefix of all of a user's roles.
    pub const ROLE_PREFIX: &str = "ROLE#";

    /// The sort-key prefix of all of a user's roles in one workspace.
    pub fn roles_in_workspace_prefix(workspace: &Slug) -> String {
        format!("ROLE#{workspace}#")
    }

    pub fn role_index(workspace: &Slug, repository: Option<&Slug>, username: &Username) -> Key {
        Key::new(
            members_partition(workspace),
            format!("{}#{username}", repository.map_or("*", Slug::as_str)),
        )
    }

    pub fn package(workspace: &Slug, kind: PackageType, name: &PackageName) -> Key {
        Key::new(
            workspace_partition(workspace),
            format!("{PACKAGE_PREFIX}{kind}#{name}"),
        )
    }

    pub fn package_index(
        workspace: &Slug,
        repository: &Slug,
        kind: PackageType,
        name: &PackageName,
    ) -> Key {
        Key::new(
            format!("REPOPKGS#{workspace}#{repository}"),
            format!("{kind}#{name}"),
        )
    }

    /// The partition holding everything published to one package.
    pub fn package_partition(workspace: &Slug, kind: PackageType, name: &PackageName) -> String {
        format!("PKG#{workspace}#{kind}#{name}")
    }

    pub const VERSION_PREFIX: &str = "VERSION#";

    /// The workspace's record of a blob, by digest.
    pub fn blob(workspace: &Slug, digest: &Digest) -> Key {
        Key::new(blobs_partition(workspace), digest.as_str())
    }

    pub fn blobs_partition(workspace: &Slug) -> String {
        format!("BLOBS#{workspace}")
    }

    /// A package's link to a blob of its workspace.
    pub fn blob_link(package_partition: &str, digest: &Digest) -> Key {
        Key::new(package_partition, format!("{BLOB_LINK_PREFIX}{digest}"))
    }

    /// A copy of a response too large for a Lambda, named by its content's sha256: outside
    /// `ws/`, where a lifecycle rule of the bucket expires it after a day.
    pub fn handed_over(workspace: &Slug, sha256_hex: &str) -> String {
        format!("npm-documents/{workspace}/{sha256_hex}")
    }

    /// Where every object of the blob store lives: under `ws/<workspace>/`.
    pub const OBJECTS_PREFIX: &str = "ws/";

    /// A new, unique object key in the workspace's area of the blob store. Its name is a
    /// time-ordered UUID (v7) of when it was made, so that whatever a dead writer left under it
    /// can be dated without trusting the store's clock.
    pub fn new_object(workspace: &Slug, now: DateTime<Utc>) -> String {
        format!("ws/{workspace}/blobs/{}", time_ordered(now))
    }

    /// A unique name that tells when it was made (a UUID v7).
    fn time_ordered(now: DateTime<Utc>) -> uuid::Uuid {
        let made = uuid::Timestamp::from_unix(
            uuid::NoContext,
            now.timestamp().max(0) as u64,
            now.timestamp_subsec_nanos(),
        );
        uuid::Uuid::new_v7(made)
    }

    /// The entry that says a blob record names an object: written with the record, so the
    /// purge's reconciliation can tell an object nobody names from one in use.
    pub fn object_index(workspace: &Slug, object_key: &str) -> Key {
        Key::new(object_index_partition(workspace), object_key)
    }

    /// Where the purge's walk of the blob store is.
    pub fn reconciliation() -> Key {
        Key::new("RECONCILE", "CURSOR")
    }

    /// Which record would name an object, from its key: a blob's object is named by its
    /// entry in [`object_index`], an upload's carried bytes by the upload's record.
    pub fn object_owner(key: &str) -> Option<ObjectOwner> {
        let mut parts = key.split('/');
        let (Some("ws"), Some(workspace), Some(area)) = (parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let workspace = Slug::parse("workspace", workspace).ok()?;
        match (area, parts.next(), parts.next(), parts.next()) {
            ("blobs", Some(_), None, None) => {
                Some(ObjectOwner::Blob(object_index(&workspace, key)))
            }
            ("uploads", Some(upload), Some(_), None) => {
                Some(ObjectOwner::Upload(self::upload(upload)))
            }
            _ => None,
        }
    }

    /// When an object key made by [`new_object`] was made; `None` for other keys.
    pub fn object_made_at(key: &str) -> Option<DateTime<Utc>> {
        let name = key.rsplit('/').next()?;
        let (seconds, nanos) = uuid::Uuid::parse_str(name).ok()?.get_timestamp()?.to_unix();
        DateTime::from_timestamp(seconds as i64, nanos)
    }

    /// The purge's index: what falls due when, in time order.
    pub const DUE_PARTITION: &str = "DUE";

    /// The partition of a workspace's audit trail.
    pub fn audit_partition(workspace: &Slug) -> String {
        format!("AUDIT#{workspace}")
    }

    /// An event of a workspace's audit trail: `<time>#<uuid>`, so a query gives them in time
    /// order.
    pub fn audit(workspace: &Slug, id: &str) -> Key {
        Key::new(audit_partition(workspace), id)
    }

    pub fn due(purge_after: DateTime<Utc>, target: &DueTarget) -> Key {
        Key::new(
            DUE_PARTITION,
            format!("{}#{}", sortable_time(purge_after), target.id()),
        )
    }

    /// Times that sort as text in time order (fixed width, UTC).
    pub fn sortable_time(time: DateTime<Utc>) -> String {
        time.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    }

    /// A pipeline token's entry in its workspace's index, for the purge.
    pub fn pipeline_index(workspace: &Slug, repository: &Slug, id: &str) -> Key {
        Key::new(pipelines_partition(workspace), format!("{repository}#{id}"))
    }

    /// Marks a workspace for the garbage collector's next run.
    pub fn collection_due(workspace: &Slug) -> Key {
        Key::new(COLLECTION_DUE_PARTITION, workspace.as_str())
    }

    pub const COLLECTION_DUE_PARTITION: &str = "GCDIRTY";

    /// A blob the collector marked as unused, in a workspace.
    pub fn collection_candidate(workspace: &Slug, digest: &Digest) -> Key {
        Key::new(collection_candidates_partition(workspace), digest.as_str())
    }

    /// A workspace's stored bytes: an atomic counter.
    pub fn stored_bytes(workspace: &Slug) -> Key {
        Key::new(usage_partition(workspace), "STORED")
    }

    pub fn usage_partition(workspace: &Slug) -> String {
        format!("USAGE#{workspace}")
    }

    /// The blobs the collector marked as unused in a workspace.
    pub fn collection_candidates_partition(workspace: &Slug) -> String {
        format!("GC#{workspace}")
    }

    /// The object index entries of a workspace.
    pub fn object_index_partition(workspace: &Slug) -> String {
        format!("OBJECTS#{workspace}")
    }

    /// An upstream a repository proxies.
    pub fn upstream(workspace: &Slug, repository: &Slug, id: &str) -> Key {
        Key::new(
            workspace_partition(workspace),
            format!("{UPSTREAM_PREFIX}{repository}#{id}"),
        )
    }

    /// The marker of a fetch of `object` of package `name` from an upstream. It lives in the
    /// workspace, so that the first fetch of a name (which makes the package) and later ones
    /// share it.
    pub fn fetch_marker(
        workspace: &Slug,
        kind: PackageType,
        name: &PackageName,
        object: &str,
    ) -> Key {
        Key::new(
            workspace_partition(workspace),
            format!("FETCHING#{kind}#{name}#{object}"),
        )
    }

    /// The sort-key prefix of every upstream of a workspace (one query resolves a name).
    pub const UPSTREAM_PREFIX: &str = "UPSTREAM#";

    /// The sort-key prefix of one repository's upstreams.
    pub fn upstreams_of_repository_prefix(repository: &Slug) -> String {
        format!("{UPSTREAM_PREFIX}{repository}#")
    }

    /// The index partition of a workspace's roles: `<repo|*>#<user>`.
    pub fn members_partition(workspace: &Slug) -> String {
        format!("MEMBERS#{workspace}")
    }

    /// The index partition of a workspace's pipeline tokens: `<repo>#<id>`.
    pub fn pipelines_partition(workspace: &Slug) -> String {
        format!("PIPELINES#{workspace}")
    }

    /// The sort-key prefix of a package's blob links.
    pub const BLOB_LINK_PREFIX: &str = "BLOB#";

    /// The index partition of every upload session, by start time.
    pub const UPLOADS_INDEX: &str = "UPLOADS";

    /// An upload session's entry in [`UPLOADS_INDEX`].
    pub fn uploads_index(started_at: DateTime<Utc>, id: &str) -> Key {
        Key::new(UPLOADS_INDEX, format!("{}#{id}", sortable_time(started_at)))
    }

    /// The key that signs short-lived tokens.
    pub fn signing_key() -> Key {
        Key::new("CONFIG", "SIGNING_KEY")
    }

    pub fn upload(id: &str) -> Key {
        Key::new(format!("UPLOAD#{id}"), "UPLOAD")
    }

    /// A new place for the bytes an upload carries from one request to the next. Each
    /// request's carried bytes get their own, so a request that lost its claim can never
    /// overwrite those of the request that took the upload over; the name is time-ordered, as
    /// [`new_object`]'s.
    pub fn upload_remainder(workspace: &Slug, id: &str, now: DateTime<Utc>) -> String {
        format!("ws/{workspace}/uploads/{id}/{}", time_ordered(now))
    }

    pub fn version(package_partition: &str, version: &str) -> Key {
        Key::new(package_partition, format!("{VERSION_PREFIX}{version}"))
    }
}

/// The record that names an object of the blob store, if any does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectOwner {
    /// A blob's object: named by this index entry.
    Blob(Key),
    /// Bytes an upload carries between requests: named by this upload record.
    Upload(Key),
}

/// A soft deletion: hidden at once, purged after `purge_after` unless restored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deletion {
    pub at: DateTime<Utc>,
    pub purge_after: DateTime<Utc>,
    pub by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub username: Username,
    pub email: Email,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailRecord {
    pub username: Username,
}

/// Whom a token authenticates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TokenOwner {
    User { username: Username, email: Email },
    Pipeline { workspace: Slug, repository: Slug },
}

/// A token, stored under the hash of its secret (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: String,
    pub name: String,
    pub owner: TokenOwner,
    pub scopes: Scopes,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// A user's listing entry for one of their tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRef {
    pub hash: TokenHash,
    pub id: String,
    pub name: String,
    pub scopes: Scopes,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceRecord {
    pub slug: Slug,
    pub plan: Plan,
    pub created_by: Username,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<Deletion>,
    /// Namespaces whose names never come from an upstream.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub private_namespaces: Vec<PrivateNamespace>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryRecord {
    pub workspace: Slug,
    pub slug: Slug,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<Deletion>,
}

/// A registry a repository proxies: what it serves is cached as packages of the repository.
/// The password is sealed ([`stowage_storage::SecretSealer`]) under the upstream's identity,
/// in base64; it is never returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamRecord {
    pub id: String,
    pub workspace: Slug,
    pub repository: Slug,
    pub kind: PackageType,
    pub url: UpstreamUrl,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_password: Option<String>,
    /// Lower first, when several upstreams could serve a name.
    pub priority: u16,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
}

/// A role granted to a user in a workspace: on one repository, or on all of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleRecord {
    pub workspace: Slug,
    /// `None`: workspace admin.
    pub repository: Option<Slug>,
    pub username: Username,
    pub role: Role,
    pub granted_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageRecord {
    pub workspace: Slug,
    #[serde(rename = "type")]
    pub kind: PackageType,
    pub name: PackageName,
    pub repository: Slug,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<Deletion>,
    /// The upstream (of its repository) this package is a cached copy of: nobody publishes
    /// into it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
}

impl PackageRecord {
    pub fn partition(&self) -> String {
        keys::package_partition(&self.workspace, self.kind, &self.name)
    }
}

/// One published version of a package, whatever its protocol: what the management API lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    pub version: String,
    pub published_at: DateTime<Utc>,
    pub published_by: String,
}

/// What a due item purges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DueTarget {
    Workspace {
        workspace: Slug,
    },
    Repository {
        workspace: Slug,
        repository: Slug,
    },
    Package {
        workspace: Slug,
        #[serde(rename = "type")]
        kind: PackageType,
        name: PackageName,
    },
    /// A package cached from an upstream, evicted once unused for the configured time.
    CachedPackage {
        workspace: Slug,
        #[serde(rename = "type")]
        kind: PackageType,
        name: PackageName,
    },
    /// An event of a workspace's audit trail, past the retention period.
    AuditEvent {
        workspace: Slug,
        id: String,
    },
}

impl DueTarget {
    pub fn id(&self) -> String {
        match self {
            DueTarget::Workspace { workspace } => format!("ws/{workspace}"),
            DueTarget::Repository {
                workspace,
                repository,
            } => format!("repo/{workspace}/{repository}"),
            DueTarget::Package {
                workspace,
                kind,
                name,
            } => format!("pkg/{workspace}/{kind}/{name}"),
            DueTarget::CachedPackage {
                workspace,
                kind,
                name,
            } => format!("cache/{workspace}/{kind}/{name}"),
            DueTarget::AuditEvent { workspace, id } => format!("audit/{workspace}/{id}"),
        }
    }
}

/// An entry of the purge's index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DueItem {
    pub target: DueTarget,
    pub purge_after: DateTime<Utc>,
}

/// A blob of a workspace: where its bytes are, and how many.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRecord {
    pub digest: Digest,
    pub size: u64,
    pub object_key: String,
    pub created_at: DateTime<Utc>,
}

/// That a blob of a workspace is kept in an object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRecord {
    pub digest: Digest,
}

/// A package's reference to a blob of its workspace: a copy of the blob's record, so that a
/// download costs one read.
pub type BlobLink = BlobRecord;

/// Serialises a record for an item's data.
pub fn encode<T: Serialize>(record: &T) -> Vec<u8> {
    serde_json::to_vec(record).expect("records always serialise")
}

/// Reads a record from an item's data.
pub fn decode<T: DeserializeOwned>(item: &Item) -> Result<T> {
    serde_json::from_slice(&item.data).map_err(|error| {
        Error::Corrupt(format!("{}/{}: {error}", item.key.partition, item.key.sort))
    })
}

/// Reads one record and its version, or `None`.
pub async fn load<T: DeserializeOwned>(
    store: &dyn MetadataStore,
    key: &Key,
) -> Result<Option<(T, u64)>> {
    match store.get(key).await? {
        Some(item) => Ok(Some((decode(&item)?, item.version))),
        None => Ok(None),
    }
}

/// Every record a query finds, page after page.
pub async fn load_all<T: DeserializeOwned>(
    store: &dyn MetadataStore,
    mut query: stowage_storage::Query,
) -> Result<Vec<T>> {
    let mut records = Vec::new();
    loop {
        let page = store.query(&query).await?;
        for item in &page.items {
            records.push(decode(item)?);
        }
        match page.next {
            Some(cursor) => query = query.after(Some(cursor)),
            None => return Ok(records),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_keys_tell_when_they_were_made() {
        let workspace = Slug::parse("w", "acme").expect("slug");
        let now = DateTime::parse_from_rfc3339("2026-12-03T10:11:12.345Z")
            .expect("time")
            .with_timezone(&Utc);
        let key = keys::new_object(&workspace, now);
        assert!(key.starts_with("ws/acme/blobs/"));
        assert_eq!(keys::object_made_at(&key), Some(now));
        assert_ne!(
            key,
            keys::new_object(&workspace, now),
            "unique at the same time"
        );
        assert_eq!(keys::object_made_at("ws/acme/blobs/not-a-uuid"), None);
        let v4 = format!("ws/acme/blobs/{}", uuid::Uuid::new_v4());
        assert_eq!(keys::object_made_at(&v4), None);
    }

    #[test]
    fn objects_name_their_owners() {
        let workspace = Slug::parse("w", "acme").expect("slug");
        let blob = keys::new_object(&workspace, Utc::now());
        assert_eq!(
            keys::object_owner(&blob),
            Some(ObjectOwner::Blob(keys::object_index(&workspace, &blob)))
        );
        let carried = keys::upload_remainder(&workspace, "u1", Utc::now());
        assert_eq!(
            keys::object_owner(&carried),
            Some(ObjectOwner::Upload(keys::upload("u1")))
        );
        for other in [
            "npm-documents/acme/x",
            "ws/acme/manifests/sha256:x",
            "ws/Bad/blobs/x",
            "ws/acme/blobs/a/b",
        ] {
            assert_eq!(keys::object_owner(other), None, "{other}");
        }
    }
}
