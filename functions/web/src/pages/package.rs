//! A package: its versions (an image's tags, with platforms and referrers; npm's dist-tags and
//! deprecations; Maven's files), how to use it, and deleting a version or the package.
//!
//! Storage calls: opening the package (one batch read, as every protocol request starts) and
//! one query of its partition, paged: the same as `GET /api/…/packages/{type}/{name}`, which
//! opens it and queries its versions.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use http::HeaderMap;
use serde::Deserialize;
use stowage_domain::{PackageName, PackageType, Role, Slug};
use stowage_http::{AppState, base_url};
use stowage_oci::browse::ImageContents;
use stowage_service::{OpenPackage, Registry};

use super::workspace::package_path;
use super::{Fields, render, see};
use crate::error::{PageError, PageResult};
use crate::how_to_use::{Snippet, Subject, snippets};
use crate::session::Session;
use crate::view::{Chrome, short_digest, size, when};

/// One version of any type, as the versions table shows it.
struct VersionRow {
    /// The tag or version.
    name: String,
    size: String,
    digest: String,
    short_digest: String,
    created_at: String,
    created_by: String,
    /// Platforms of an index, a deprecation: what this type adds.
    notes: Vec<String>,
    /// A Maven version's files.
    files: Vec<FileRow>,
}

struct FileRow {
    name: String,
    size: String,
    sha256: String,
}

struct ReferrerRow {
    subject: String,
    digest: String,
    artifact_type: String,
}

#[derive(Template)]
#[template(path = "package.html")]
struct PackagePage {
    chrome: Chrome,
    workspace: String,
    repository: String,
    kind: String,
    name: String,
    created_at: String,
    created_by: String,
    /// "Tags" for images, "Versions" otherwise.
    versions_title: &'static str,
    versions: Vec<VersionRow>,
    dist_tags: Vec<(String, String)>,
    referrers: Vec<ReferrerRow>,
    snippets: Vec<Snippet>,
    can_write: bool,
    can_admin: bool,
    delete_version_path: String,
    delete_package_path: String,
}

/// A package's path as the routes give it, parsed; anything wrong reads as "not found".
fn parse(workspace: &str, kind: &str, name: &str) -> PageResult<(Slug, PackageType, PackageName)> {
    let workspace = Slug::parse("workspace", workspace).map_err(|_| PageError::not_found())?;
    let kind = PackageType::parse("type", kind).map_err(|_| PageError::not_found())?;
    let name = PackageName::parse(kind, "name", name).map_err(|_| PageError::not_found())?;
    Ok((workspace, kind, name))
}

async fn open(
    registry: &Registry,
    session: &Session,
    (workspace, kind, name): &(Slug, PackageType, PackageName),
    needed: Role,
) -> PageResult<OpenPackage> {
    Ok(registry
        .open_package(&session.principal, workspace, *kind, name, needed, &[])
        .await?)
}

pub async fn package(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Path((workspace, kind, name)): Path<(String, String, String)>,
) -> PageResult<Response> {
    let target = parse(&workspace, &kind, &name)?;
    let registry = &state.registry;
    let open = open(registry, &session, &target, Role::Read).await?;
    let package = &open.package;
    let (versions_title, versions, dist_tags, referrers, shown) = match package.kind {
        PackageType::Container => {
            let contents = stowage_oci::browse::contents(registry, package).await?;
            let shown = newest_tag(&contents);
            let (versions, referrers) = image_rows(contents);
            ("Tags", versions, Vec::new(), referrers, shown)
        }
        PackageType::Npm => {
            let contents = stowage_npm::browse::contents(registry, package).await?;
            let shown = contents
                .dist_tags
                .iter()
                .find(|(tag, _)| tag == "latest")
                .map(|(_, version)| version.clone())
                .or_else(|| contents.releases.first().map(|r| r.version.clone()));
            let versions = contents.releases.into_iter().map(npm_row).collect();
            ("Versions", versions, contents.dist_tags, Vec::new(), shown)
        }
        PackageType::Maven => {
            let releases = stowage_maven::browse::contents(registry, package).await?;
            let shown = releases.first().map(|release| release.version.clone());
            let versions = releases.into_iter().map(maven_row).collect();
            ("Versions", versions, Vec::new(), Vec::new(), shown)
        }
    };
    let base = base_url(&state, &headers);
    let username = session.username().to_string();
    let snippets = snippets(&Subject {
        base: &base,
        workspace: package.workspace.as_str(),
        kind: package.kind,
        name: package.name.as_str(),
        version: shown.as_deref(),
        username: &username,
    });
    let (workspace, kind, name) = (&package.workspace, package.kind, &package.name);
    render(PackagePage {
        chrome: Chrome::of(&session, format!("{} {}", package.kind, package.name)),
        workspace: package.workspace.to_string(),
        repository: package.repository.to_string(),
        kind: package.kind.to_string(),
        name: package.name.to_string(),
        created_at: when(&package.created_at),
        created_by: package.created_by.clone(),
        versions_title,
        versions,
        dist_tags,
        referrers,
        snippets,
        can_write: open.access.allows(Role::Write),
        can_admin: open.access.allows(Role::Admin),
        delete_version_path: format!("/workspaces/{workspace}/delete-version/{kind}/{name}"),
        delete_package_path: format!("/workspaces/{workspace}/delete-package/{kind}/{name}"),
    })
}

/// The tag to show in the pull command: `latest` if there is one, else the last pushed.
fn newest_tag(contents: &ImageContents) -> Option<String> {
    if contents.tags.iter().any(|tag| tag.tag == "latest") {
        return Some("latest".to_owned());
    }
    contents
        .tags
        .iter()
        .max_by_key(|tag| tag.pushed_at)
        .map(|tag| tag.tag.clone())
}

fn image_rows(contents: ImageContents) -> (Vec<VersionRow>, Vec<ReferrerRow>) {
    let mut tags = contents.tags;
    tags.sort_by_key(|tag| std::cmp::Reverse(tag.pushed_at));
    let versions = tags
        .into_iter()
        .map(|tag| {
            let mut notes = Vec::new();
            if !tag.platforms.is_empty() {
                notes.push(format!("platforms: {}", tag.platforms.join(", ")));
            }
            VersionRow {
                size: tag.size.map(size).unwrap_or_else(|| "–".to_owned()),
                short_digest: short_digest(tag.digest.as_str()),
                digest: tag.digest.to_string(),
                created_at: when(&tag.pushed_at),
                created_by: tag.pushed_by,
                name: tag.tag,
                notes,
                files: Vec::new(),
            }
        })
        .collect();
    let referrers = contents
        .referrers
        .into_iter()
        .map(|referrer| ReferrerRow {
            subject: referrer.subject,
            digest: referrer.digest,
            artifact_type: referrer.artifact_type.unwrap_or_else(|| "–".to_owned()),
        })
        .collect();
    (versions, referrers)
}

fn npm_row(release: stowage_npm::browse::NpmRelease) -> VersionRow {
    VersionRow {
        size: size(release.tarball_size),
        short_digest: short_digest(&release.integrity),
        digest: release.integrity,
        created_at: when(&release.published_at),
        created_by: release.published_by,
        notes: release
            .deprecated
            .map(|message| format!("deprecated: {message}"))
            .into_iter()
            .collect(),
        files: Vec::new(),
        name: release.version,
    }
}

fn maven_row(release: stowage_maven::browse::MavenRelease) -> VersionRow {
    VersionRow {
        size: size(release.size()),
        digest: String::new(),
        short_digest: String::new(),
        created_at: when(&release.published_at),
        created_by: release.published_by.clone(),
        notes: Vec::new(),
        files: release
            .files
            .iter()
            .map(|file| FileRow {
                name: file.file.clone(),
                size: size(file.size),
                sha256: file.digest.to_string(),
            })
            .collect(),
        name: release.version,
    }
}

#[derive(Deserialize)]
pub struct VersionQuery {
    #[serde(default)]
    version: String,
}

#[derive(Template)]
#[template(path = "confirm.html")]
struct ConfirmPage {
    chrome: Chrome,
    question: String,
    consequence: String,
    action: String,
    version: String,
    button: String,
    cancel: String,
}

/// Asks before deleting a version or tag (the write role; the form works without script).
pub async fn confirm_delete_version(
    State(state): State<AppState>,
    session: Session,
    Path((workspace, kind, name)): Path<(String, String, String)>,
    Query(query): Query<VersionQuery>,
) -> PageResult<Response> {
    let target = parse(&workspace, &kind, &name)?;
    open(&state.registry, &session, &target, Role::Write).await?;
    let (workspace, kind, name) = target;
    let what = if kind == PackageType::Container {
        "tag"
    } else {
        "version"
    };
    let consequence = match kind {
        PackageType::Container => {
            "The image stays reachable by its digest until nothing uses it; the tag can be pushed again."
        }
        PackageType::Npm => {
            "npm never reuses a version number: this version cannot be published again."
        }
        PackageType::Maven => {
            "A release's coordinates stay retired; a SNAPSHOT can be deployed again."
        }
    };
    render(ConfirmPage {
        chrome: Chrome::of(&session, format!("Delete {what} {}", query.version)),
        question: format!("Delete {what} {} of {kind} package {name}?", query.version),
        consequence: consequence.to_owned(),
        action: format!("/workspaces/{workspace}/delete-version/{kind}/{name}"),
        version: query.version,
        button: format!("Delete this {what}"),
        cancel: package_path(workspace.as_str(), kind, name.as_str()),
    })
}

#[derive(Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    version: String,
}

pub async fn delete_version(
    State(state): State<AppState>,
    session: Session,
    Path((workspace, kind, name)): Path<(String, String, String)>,
    Fields(form): Fields<DeleteForm>,
) -> PageResult<Response> {
    session.check_csrf(&form.csrf)?;
    let (workspace, kind, name) = parse(&workspace, &kind, &name)?;
    let registry = &state.registry;
    let caller = &session.principal;
    let page = package_path(workspace.as_str(), kind, name.as_str());
    let deleted = match kind {
        PackageType::Container => {
            stowage_oci::browse::delete_tag(registry, caller, &workspace, &name, &form.version)
                .await
                .map_err(PageError::from)
        }
        PackageType::Npm => stowage_npm::browse::unpublish_version(
            registry,
            caller,
            &workspace,
            &name,
            &form.version,
        )
        .await
        .map_err(PageError::from),
        PackageType::Maven => stowage_maven::browse::delete_version(
            registry,
            caller,
            &workspace,
            &name,
            &form.version,
        )
        .await
        .map_err(PageError::from),
    };
    deleted.map_err(|error| error.back_to(page.clone()))?;
    see(&page)
}

/// Asks before deleting a package (repository admins).
pub async fn confirm_delete_package(
    State(state): State<AppState>,
    session: Session,
    Path((workspace, kind, name)): Path<(String, String, String)>,
) -> PageResult<Response> {
    let target = parse(&workspace, &kind, &name)?;
    let open = open(&state.registry, &session, &target, Role::Admin).await?;
    let (workspace, kind, name) = target;
    let retention = state.registry.settings().retention.num_days();
    render(ConfirmPage {
        chrome: Chrome::of(&session, format!("Delete {kind} package {name}")),
        question: format!("Delete {kind} package {name} and all its versions?"),
        consequence: format!(
            "It disappears at once for everyone. It is kept for {retention} days, during which an \
             admin of repository {} can restore it from the workspace's page; then it is purged.",
            open.package.repository
        ),
        action: format!("/workspaces/{workspace}/delete-package/{kind}/{name}"),
        version: String::new(),
        button: "Delete this package".to_owned(),
        cancel: package_path(workspace.as_str(), kind, name.as_str()),
    })
}

pub async fn delete_package(
    State(state): State<AppState>,
    session: Session,
    Path((workspace, kind, name)): Path<(String, String, String)>,
    Fields(form): Fields<DeleteForm>,
) -> PageResult<Response> {
    session.check_csrf(&form.csrf)?;
    state
        .registry
        .delete_package(&session.principal, &workspace, &kind, &name)
        .await
        .map_err(|error| PageError::from(error).back_to(format!("/workspaces/{workspace}")))?;
    see(&format!("/workspaces/{workspace}"))
}
