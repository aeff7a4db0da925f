use axum::Json;
use axum::extract::{Path, State};
use http::StatusCode;
use serde_json::{Value, json};
use stowage_http::{AppState, Caller};
use stowage_service::records::{Deletion, RepositoryRecord, WorkspaceRecord};

use crate::body::JsonObject;
use crate::error::{ApiError, ApiResult};

type Authenticated = Caller<ApiError>;

fn workspace_json(workspace: &WorkspaceRecord) -> Value {
    json!({ "slug": workspace.slug, "plan": workspace.plan, "created_at": workspace.created_at })
}

fn repository_json(repository: &RepositoryRecord) -> Value {
    json!({
        "workspace": repository.workspace,
        "slug": repository.slug,
        "created_at": repository.created_at,
    })
}

pub fn deletion_json(deletion: &Deletion) -> Value {
    json!({ "deleted_at": deletion.at, "purge_after": deletion.purge_after })
}

pub async fn create_workspace(
    State(state): State<AppState>,
    caller: Authenticated,
    body: JsonObject,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let slug = body.string("slug")?;
    let plan = body.string("plan")?;
    let workspace = state
        .registry
        .create_workspace(caller.principal(), &slug, &plan)
        .await?;
    Ok((StatusCode::CREATED, Json(workspace_json(&workspace))))
}

pub async fn get_workspace(
    State(state): State<AppState>,
    Path(workspace): Path<String>,
    caller: Authenticated,
) -> ApiResult<Json<Value>> {
    let view = state
        .registry
        .get_workspace(caller.principal(), &workspace)
        .await?;
    let mut value = workspace_json(&view.workspace);
    value["admin"] = json!(view.admin);
    Ok(Json(value))
}

pub async fn delete_workspace(
    State(state): State<AppState>,
    Path(workspace): Path<String>,
    caller: Authenticated,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let deletion = state
        .registry
        .delete_workspace(caller.principal(), &workspace)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(deletion_json(&deletion))))
}

pub async fn create_repository(
    State(state): State<AppState>,
    Path(workspace): Path<String>,
    caller: Authenticated,
    body: JsonObject,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let slug = body.string("slug")?;
    let repository = state
        .registry
        .create_repository(caller.principal(), &workspace, &slug)
        .await?;
    Ok((StatusCode::CREATED, Json(repository_json(&repository))))
}

pub async fn list_repositories(
    State(state): State<AppState>,
    Path(workspace): Path<String>,
    caller: Authenticated,
) -> ApiResult<Json<Value>> {
    let views = state
        .registry
        .list_repositories(caller.principal(), &workspace)
        .await?;
    let values: Vec<Value> = views
        .iter()
        .map(|view| {
            let mut value = repository_json(&view.repository);
            value["role"] = json!(view.role);
            value
        })
        .collect();
    Ok(Json(json!({ "values": values })))
}

pub async fn delete_repository(
    State(state): State<AppState>,
    Path((workspace, repository)): Path<(String, String)>,
    caller: Authenticated,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let deletion = state
        .registry
        .delete_repository(caller.principal(), &workspace, &repository)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(deletion_json(&deletion))))
}

pub async fn set_permission(
    State(state): State<AppState>,
    Path((workspace, repository, username)): Path<(String, String, String)>,
    caller: Authenticated,
    body: JsonObject,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let role = body.string("role")?;
    let created = state
        .registry
        .set_permission(
            caller.principal(),
            &workspace,
            &repository,
            &username,
            &role,
        )
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!({ "username": username, "role": role }))))
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
    body: JsonObject,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let expires_in = body.optional_integer("expires_in_seconds")?;
    let token = state
        .registry
        .create_pipeline_token(caller.principal(), &workspace, &repository, expires_in)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "username": token.username,
            "token": token.secret.expose(),
            "expires_at": token.expires_at,
        })),
    ))
}

pub async fn restore_workspace(
    State(state): State<AppState>,
    Path(workspace): Path<String>,
    caller: Authenticated,
) -> ApiResult<Json<Value>> {
    let record = state
        .registry
        .restore_workspace(caller.principal(), &workspace)
        .await?;
    Ok(Json(workspace_json(&record)))
}

pub async fn restore_repository(
    State(state): State<AppState>,
    Path((workspace, repository)): Path<(String, String)>,
    caller: Authenticated,
) -> ApiResult<Json<Value>> {
    let record = state
        .registry
        .restore_repository(caller.principal(), &workspace, &repository)
        .await?;
    Ok(Json(repository_json(&record)))
}

pub async fn usage(
    State(state): State<AppState>,
    Path(workspace): Path<String>,
    caller: Authenticated,
) -> ApiResult<Json<Value>> {
    let usage = state
        .registry
        .workspace_usage(caller.principal(), &workspace)
        .await?;
    Ok(Json(json!(usage)))
}
