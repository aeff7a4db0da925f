//! A repository: who holds which role on it, granting, changing and revoking roles, and
//! minting a token for its CI pipelines (repository admins).

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use stowage_domain::Role;
use stowage_http::AppState;

use super::{CsrfOnly, Fields, render, see};
use crate::error::{PageError, PageResult};
use crate::session::Session;
use crate::view::{Chrome, when};

struct MemberRow {
    username: String,
    role: String,
    granted_at: String,
}

struct PipelineTokenShown {
    username: String,
    secret: String,
    expires_at: String,
}

#[derive(Template)]
#[template(path = "repository.html")]
struct RepositoryPage {
    chrome: Chrome,
    workspace: String,
    repository: String,
    role: String,
    admin: bool,
    members: Vec<MemberRow>,
    pipeline_token: Option<PipelineTokenShown>,
}

async fn repository_page(
    state: &AppState,
    session: &Session,
    workspace: &str,
    repository: &str,
    pipeline_token: Option<PipelineTokenShown>,
) -> PageResult<Response> {
    let registry = &state.registry;
    let caller = &session.principal;
    let view = registry
        .list_repositories(caller, workspace)
        .await?
        .into_iter()
        .find(|view| view.repository.slug.as_str() == repository)
        .ok_or_else(PageError::not_found)?;
    let admin = view.role == Role::Admin;
    let members = if admin {
        registry
            .list_members(caller, workspace, repository)
            .await?
            .into_iter()
            .map(|member| MemberRow {
                username: member.username.to_string(),
                role: member.role.to_string(),
                granted_at: when(&member.granted_at),
            })
            .collect()
    } else {
        Vec::new()
    };
    render(RepositoryPage {
        chrome: Chrome::of(session, format!("Repository {workspace}/{repository}")),
        workspace: view.repository.workspace.to_string(),
        repository: view.repository.slug.to_string(),
        role: view.role.to_string(),
        admin,
        members,
        pipeline_token,
    })
}

pub async fn repository(
    State(state): State<AppState>,
    session: Session,
    Path((workspace, repository)): Path<(String, String)>,
) -> PageResult<Response> {
    repository_page(&state, &session, &workspace, &repository, None).await
}

#[derive(Deserialize)]
pub struct MemberForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    role: String,
}

fn repository_path(workspace: &str, repository: &str) -> String {
    format!("/workspaces/{workspace}/repositories/{repository}")
}

/// Grants a role, or changes the one a user holds.
pub async fn set_member(
    State(state): State<AppState>,
    session: Session,
    Path((workspace, repository)): Path<(String, String)>,
    Fields(form): Fields<MemberForm>,
) -> PageResult<Response> {
    session.check_csrf(&form.csrf)?;
    let page = repository_path(&workspace, &repository);
    let back = |error: PageError| error.back_to(page.clone());
    let role = Role::parse("role", &form.role).map_err(|e| back(e.into()))?;
    state
        .registry
        .set_permission(
            &session.principal,
            &workspace,
            &repository,
            form.username.trim(),
            role,
        )
        .await
        .map_err(|error| back(error.into()))?;
    see(&page)
}

pub async fn revoke_member(
    State(state): State<AppState>,
    session: Session,
    Path((workspace, repository, username)): Path<(String, String, String)>,
    Fields(form): Fields<CsrfOnly>,
) -> PageResult<Response> {
    session.check_csrf(&form.csrf)?;
    let page = repository_path(&workspace, &repository);
    state
        .registry
        .remove_permission(&session.principal, &workspace, &repository, &username)
        .await
        .map_err(|error| PageError::from(error).back_to(page.clone()))?;
    see(&page)
}

/// Mints a pipeline token and shows it on the answer, this once.
pub async fn pipeline_token(
    State(state): State<AppState>,
    session: Session,
    Path((workspace, repository)): Path<(String, String)>,
    Fields(form): Fields<CsrfOnly>,
) -> PageResult<Response> {
    session.check_csrf(&form.csrf)?;
    let token = state
        .registry
        .create_pipeline_token(&session.principal, &workspace, &repository, None)
        .await
        .map_err(|error| {
            PageError::from(error).back_to(repository_path(&workspace, &repository))
        })?;
    let shown = PipelineTokenShown {
        username: token.username,
        secret: token.secret.expose().to_owned(),
        expires_at: when(&token.expires_at),
    };
    repository_page(&state, &session, &workspace, &repository, Some(shown)).await
}
