//! The user's workspaces; a workspace's repositories and packages, what was deleted from it,
//! and its storage against the plan.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use stowage_domain::{PackageName, PackageType, Plan, Role, Slug};
use stowage_http::AppState;
use stowage_service::{DeletedItems, NewPackage, PackageRecord, RepositoryView};

use super::{Fields, render, see};
use crate::error::{PageError, PageResult};
use crate::session::Session;
use crate::view::{Bar, Chrome, size, when};

/// The path of a package's page.
pub fn package_path(workspace: &str, kind: PackageType, name: &str) -> String {
    format!("/workspaces/{workspace}/packages/{kind}/{name}")
}

struct WorkspaceRow {
    slug: String,
    plan: String,
    admin: bool,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    chrome: Chrome,
    workspaces: Vec<WorkspaceRow>,
}

pub async fn home(State(state): State<AppState>, session: Session) -> PageResult<Response> {
    let workspaces = state.registry.list_workspaces(&session.principal).await?;
    render(HomePage {
        chrome: Chrome::of(&session, "Workspaces"),
        workspaces: workspaces
            .into_iter()
            .map(|view| WorkspaceRow {
                slug: view.workspace.slug.to_string(),
                plan: view.workspace.plan.to_string(),
                admin: view.admin,
            })
            .collect(),
    })
}

#[derive(Deserialize)]
pub struct WorkspaceForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    slug: String,
    #[serde(default)]
    plan: String,
}

/// Creates a workspace, whose admin its creator becomes.
pub async fn create_workspace(
    State(state): State<AppState>,
    session: Session,
    Fields(form): Fields<WorkspaceForm>,
) -> PageResult<Response> {
    session.check_csrf(&form.csrf)?;
    let back = |error: PageError| error.back_to("/");
    let slug = Slug::parse("workspace", form.slug.trim()).map_err(|e| back(e.into()))?;
    let plan = Plan::parse("plan", &form.plan).map_err(|e| back(e.into()))?;
    let workspace = state
        .registry
        .create_workspace(&session.principal, slug, plan)
        .await
        .map_err(|error| back(error.into()))?;
    see(&format!("/workspaces/{}", workspace.slug))
}

#[derive(Deserialize)]
pub struct RepositoryForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    slug: String,
}

/// Creates a repository (workspace admins).
pub async fn create_repository(
    State(state): State<AppState>,
    session: Session,
    Path(workspace): Path<String>,
    Fields(form): Fields<RepositoryForm>,
) -> PageResult<Response> {
    session.check_csrf(&form.csrf)?;
    let page = format!("/workspaces/{workspace}");
    let back = |error: PageError| error.back_to(page.clone());
    let slug = Slug::parse("repository", form.slug.trim()).map_err(|e| back(e.into()))?;
    state
        .registry
        .create_repository(&session.principal, &workspace, slug)
        .await
        .map_err(|error| back(error.into()))?;
    see(&page)
}

struct PackageRow {
    kind: String,
    name: String,
    path: String,
    created_at: String,
}

struct RepositoryRow {
    slug: String,
    role: String,
    admin: bool,
    packages: Vec<PackageRow>,
}

struct DeletedRow {
    what: String,
    /// `package` or `repository`, what the restore form sends.
    target: &'static str,
    kind: String,
    name: String,
    deleted_at: String,
    deleted_by: String,
    purge_after: String,
}

#[derive(Template)]
#[template(path = "workspace.html")]
struct WorkspacePage {
    chrome: Chrome,
    workspace: String,
    plan: String,
    admin: bool,
    repositories: Vec<RepositoryRow>,
    /// The repositories the user may create packages in.
    administered: Vec<String>,
    deleted: Vec<DeletedRow>,
}

fn package_row(package: &PackageRecord) -> PackageRow {
    PackageRow {
        kind: package.kind.to_string(),
        name: package.name.to_string(),
        path: package_path(
            package.workspace.as_str(),
            package.kind,
            package.name.as_str(),
        ),
        created_at: when(&package.created_at),
    }
}

fn repository_rows(views: Vec<RepositoryView>, packages: &[PackageRecord]) -> Vec<RepositoryRow> {
    let mut by_repository: BTreeMap<&Slug, Vec<PackageRow>> = BTreeMap::new();
    for package in packages {
        by_repository
            .entry(&package.repository)
            .or_default()
            .push(package_row(package));
    }
    views
        .into_iter()
        .map(|view| RepositoryRow {
            packages: by_repository
                .remove(&view.repository.slug)
                .unwrap_or_default(),
            slug: view.repository.slug.to_string(),
            role: view.role.to_string(),
            admin: view.role == Role::Admin,
        })
        .collect()
}

/// A workspace: the repositories the user holds a role on, the packages of each they may
/// read, and (for those who may restore them) what was deleted, from one service call
/// ([`stowage_service::Registry::workspace_overview`]).
pub async fn workspace(
    State(state): State<AppState>,
    session: Session,
    Path(workspace): Path<String>,
) -> PageResult<Response> {
    let mut overview = state
        .registry
        .workspace_overview(&session.principal, &workspace)
        .await?;
    overview
        .packages
        .sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
    let administered: Vec<String> = overview
        .repositories
        .iter()
        .filter(|view| view.role == Role::Admin)
        .map(|view| view.repository.slug.to_string())
        .collect();
    let view = overview.workspace;
    render(WorkspacePage {
        chrome: Chrome::of(&session, format!("Workspace {}", view.workspace.slug)),
        plan: view.workspace.plan.to_string(),
        admin: view.admin,
        workspace: view.workspace.slug.to_string(),
        repositories: repository_rows(overview.repositories, &overview.packages),
        administered,
        deleted: deleted_rows(overview.deleted),
    })
}

fn deleted_rows(deleted: DeletedItems) -> Vec<DeletedRow> {
    let repositories = deleted.repositories.into_iter().filter_map(|repository| {
        let deletion = repository.deleted?;
        Some(DeletedRow {
            what: format!("repository {}", repository.slug),
            target: "repository",
            kind: String::new(),
            name: repository.slug.to_string(),
            deleted_at: when(&deletion.at),
            deleted_by: deletion.by,
            purge_after: when(&deletion.purge_after),
        })
    });
    let packages = deleted.packages.into_iter().filter_map(|package| {
        let deletion = package.deleted?;
        Some(DeletedRow {
            what: format!("{} package {}", package.kind, package.name),
            target: "package",
            kind: package.kind.to_string(),
            name: package.name.to_string(),
            deleted_at: when(&deletion.at),
            deleted_by: deletion.by,
            purge_after: when(&deletion.purge_after),
        })
    });
    repositories.chain(packages).collect()
}

#[derive(Deserialize)]
pub struct PackageForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    repository: String,
}

pub async fn create_package(
    State(state): State<AppState>,
    session: Session,
    Path(workspace): Path<String>,
    Fields(form): Fields<PackageForm>,
) -> PageResult<Response> {
    session.check_csrf(&form.csrf)?;
    let back_path = format!("/workspaces/{workspace}");
    let back = |error: PageError| error.back_to(back_path.clone());
    let kind = PackageType::parse("type", &form.kind).map_err(|e| back(e.into()))?;
    let input = NewPackage {
        kind,
        name: PackageName::parse(kind, "name", form.name.trim()).map_err(|e| back(e.into()))?,
        repository: Slug::parse("repository", &form.repository).map_err(|e| back(e.into()))?,
    };
    let package = state
        .registry
        .create_package(&session.principal, &workspace, input)
        .await
        .map_err(|error| back(error.into()))?;
    see(&package_path(
        package.workspace.as_str(),
        package.kind,
        package.name.as_str(),
    ))
}

#[derive(Deserialize)]
pub struct RestoreForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
}

pub async fn restore(
    State(state): State<AppState>,
    session: Session,
    Path(workspace): Path<String>,
    Fields(form): Fields<RestoreForm>,
) -> PageResult<Response> {
    session.check_csrf(&form.csrf)?;
    let registry = &state.registry;
    let caller = &session.principal;
    let back = |error: stowage_service::Error| {
        PageError::from(error).back_to(format!("/workspaces/{workspace}"))
    };
    match form.target.as_str() {
        "package" => {
            let package = registry
                .restore_package(caller, &workspace, &form.kind, &form.name)
                .await
                .map_err(back)?;
            see(&package_path(
                package.workspace.as_str(),
                package.kind,
                package.name.as_str(),
            ))
        }
        "repository" => {
            registry
                .restore_repository(caller, &workspace, &form.name)
                .await
                .map_err(back)?;
            see(&format!("/workspaces/{workspace}"))
        }
        _ => Err(PageError::new(
            http::StatusCode::BAD_REQUEST,
            "restore takes a package or a repository",
        )),
    }
}

#[derive(Template)]
#[template(path = "usage.html")]
struct UsagePage {
    chrome: Chrome,
    workspace: String,
    plan: String,
    limit: String,
    stored: String,
    billable: String,
    not_billable: String,
    cached: String,
    charts: Vec<Chart>,
}

struct Chart {
    title: &'static str,
    height: u64,
    bars: Vec<Bar>,
}

impl Chart {
    fn new(
        title: &'static str,
        values: impl IntoIterator<Item = (String, u64)>,
        limit: u64,
    ) -> Self {
        let bars = Bar::chart(values, limit);
        Self {
            title,
            height: bars.len() as u64 * Bar::ROW,
            bars,
        }
    }
}

/// A workspace's storage against its plan's limit, drawn (workspace admins). Counting reads
/// each package's links, as the usage API does: a report, never on a protocol's path.
pub async fn usage(
    State(state): State<AppState>,
    session: Session,
    Path(workspace): Path<String>,
) -> PageResult<Response> {
    let registry = &state.registry;
    let view = registry
        .get_workspace(&session.principal, &workspace)
        .await?;
    let usage = registry
        .workspace_usage(&session.principal, &workspace)
        .await?;
    let limit = registry.settings().plan_limits.of(view.workspace.plan);
    render(UsagePage {
        chrome: Chrome::of(&session, format!("Storage of {workspace}")),
        plan: view.workspace.plan.to_string(),
        limit: size(limit),
        stored: size(usage.total_bytes),
        billable: size(usage.billable_bytes),
        not_billable: size(usage.not_billable_bytes),
        cached: size(usage.cached_bytes),
        charts: vec![
            Chart::new(
                "In all",
                [("all packages".to_owned(), usage.total_bytes)],
                limit,
            ),
            Chart::new("By repository", usage.by_repository, limit),
            Chart::new("By type", usage.by_type, limit),
        ],
        workspace: view.workspace.slug.to_string(),
    })
}
