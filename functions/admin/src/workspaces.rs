//! Workspaces, their repositories, the roles users hold on them and pipeline tokens.

use axum::Json;
use axum::extract::{Path, State};
use http::StatusCode;
use stowage_http::{AppState, Caller};
use stowage_service::{Usage, WorkspaceChange};

use crate::api::{
    AuditEventJson, ChangeWorkspace, CreatePipelineToken, CreateRepository, CreateWorkspace,
    DeletedJson, DeletionJson, PermissionJson, PipelineTokenJson, RepositoryJson, SetPermission,
    Values, WorkspaceJson,
};
use crate::body::JsonBody;
use crate::error::{ApiError, ApiResult};

type Authenticated = Caller<ApiError>;

pub async fn create_workspace(
    State(state): State<AppState>,
    caller: Authenticated,
    JsonBody(body): JsonBody<CreateWorkspace>,
) -> ApiResult<(StatusCode, Json<WorkspaceJson>)> {
    let workspace = state
        .registry
        .create_workspace(caller.principal(), body.slug, body.plan)
        .await?;
    Ok((StatusCode::CREATED, Json(workspace.into())))
}

pub async fn list_workspaces(
    State(state): State<AppState>,
    caller: Authenticated,
) -> ApiResult<Json<Values<WorkspaceJson>>> {
    let views = state.registry.list_workspaces(caller.principal()).await?;
    let values = views
        .into_iter()
        .map(|view| WorkspaceJson {
            admin: Some(view.admin),
            ..view.workspace.into()
        })
        .collect();
    Ok(Json(Values { values }))
}

pub async fn audit(
    State(state): State<AppState>,
    Path(workspace): Path<String>,
    caller: Authenticated,
) -> ApiResult<Json<Values<AuditEventJson>>> {
    let events = state
        .registry
        .audit_events(caller.principal(), &workspace)
        .await?;
    let values = events.into_iter().map(AuditEventJson::from).collect();
    Ok(Json(Values { values }))
}

pub async fn deleted(
    State(state): State<AppState>,
    Path(workspace): Path<String>,
    caller: Authenticated,
) -> ApiResult<Json<DeletedJson>> {
    let items = state
        .registry
        .deleted_in_workspace(caller.principal(), &workspace)
        .await?;
    Ok(Json(items.into()))
}

pub async fn get_workspace(
    State(state): State<AppState>,
    Path(workspace): Path<String>,
    caller: Authenticated,
) -> ApiResult<Json<WorkspaceJson>> {
    let view = state
        .registry
        .get_workspace(caller.principal(), &workspace)
        .await?;
    Ok(Json(WorkspaceJson {
        admin: Some(view.admin),
        ..view.workspace.into()
    }))
}

pub async fn change_workspace(
    State(state): State<AppState>,
    Path(workspace): Path<String>,
    caller: Authenticated,
    JsonBody(body): JsonBody<ChangeWorkspace>,
) -> ApiResult<Json<WorkspaceJson>> {
    let change = WorkspaceChange {
        private_namespaces: body.private_namespaces,
    };
    let record = state
        .registry
        .change_workspace(caller.principal(), &workspace, change)
        .await?;
    Ok(Json(WorkspaceJson {
        admin: Some(true),
        ..record.into()
    }))
}

pub async fn delete_workspace(
    State(state): State<AppState>,
    Path(workspace): Path<String>,
    caller: Authenticated,
) -> ApiResult<(StatusCode, Json<DeletionJson>)> {
    let deletion = state
        .registry
        .delete_workspace(caller.principal(), &workspace)
        .await?;
    Ok((StatusCode::ACCEPTED, Json((&deletion).into())))
}

pub async fn create_repository(
    State(state): State<AppState>,
    Path(workspace): Path<String>,
    caller: Authenticated,
    JsonBody(body): JsonBody<CreateRepository>,
) -> ApiResult<(StatusCode, Json<RepositoryJson>)> {
    let repository = state
        .registry
        .create_repository(caller.principal(), &workspace, body.slug)
        .await?;
    Ok((StatusCode::CREATED, Json(repository.into())))
}

pub async fn list_repositories(
    State(state): State<AppState>,
    Path(workspace): Path<String>,
    caller: Authenticated,
) -> ApiResult<Json<Values<RepositoryJson>>> {
    let views = state
        .registry
        .list_repositories(caller.principal(), &workspace)
        .await?;
    let values = views
        .into_iter()
        .map(|view| RepositoryJson {
            role: Some(view.role),
            ..view.repository.into()
        })
        .collect();
    Ok(Json(Values { values }))
}

pub async fn delete_repository(
    State(state): State<AppState>,
    Path((workspace, repository)): Path<(String, String)>,
    caller: Authenticated,
) -> ApiResult<(StatusCode, Json<DeletionJson>)> {
    let deletion = state
        .registry
        .delete_repository(caller.principal(), &workspace, &repository)
        .await?;
    Ok((StatusCode::ACCEPTED, Json((&deletion).into())))
}

pub async fn set_permission(
    State(state): State<AppState>,
    Path((workspace, repository, username)): Path<(String, String, String)>,
    caller: Authenticated,
    JsonBody(body): JsonBody<SetPermission>,
) -> ApiResult<(StatusCode, Json<PermissionJson>)> {
    let created = state
        .registry
        .set_permission(
            caller.principal(),
            &workspace,
            &repository,
            &username,
            body.role,
        )
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let role = body.role;
    Ok((status, Json(PermissionJson { username, role })))
}

pub async fn remove_permission(
    State(state): State<AppState>,
    Path((workspace, repository, username)): Path<(String, String, String)>,
    caller: Authenticated,
) -> ApiResult<StatusCode> {
    state
        .registry
        .remove_permission(caller.principal(), &workspace, &repository, &username)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn create_pipeline_token(
    State(state): State<AppState>,
    Path((workspace, repository)): Path<(String, String)>,
    caller: Authenticated,
    JsonBody(body): JsonBody<CreatePipelineToken>,
) -> ApiResult<(StatusCode, Json<PipelineTokenJson>)> {
    let token = state
        .registry
        .create_pipeline_token(
            caller.principal(),
            &workspace,
            &repository,
            body.expires_in_seconds,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(token.into())))
}

pub async fn restore_workspace(
    State(state): State<AppState>,
    Path(workspace): Path<String>,
    caller: Authenticated,
) -> ApiResult<Json<WorkspaceJson>> {
    let record = state
        .registry
        .restore_workspace(caller.principal(), &workspace)
        .await?;
    Ok(Json(record.into()))
}

pub async fn restore_repository(
    State(state): State<AppState>,
    Path((workspace, repository)): Path<(String, String)>,
    caller: Authenticated,
) -> ApiResult<Json<RepositoryJson>> {
    let record = state
        .registry
        .restore_repository(caller.principal(), &workspace, &repository)
        .await?;
    Ok(Json(record.into()))
}

pub async fn usage(
    State(state): State<AppState>,
    Path(workspace): Path<String>,
    caller: Authenticated,
) -> ApiResult<Json<Usage>> {
    let usage = state
        .registry
        .workspace_usage(caller.principal(), &workspace)
        .await?;
    Ok(Json(usage))
}
