use axum::Json;
use axum::extract::{Path, State};
use http::StatusCode;
use serde_json::{Value, json};
use stowage_http::{AppState, Caller};
use stowage_service::NewPackage;
use stowage_service::records::PackageRecord;

use crate::body::JsonObject;
use crate::error::{ApiError, ApiResult};

type Authenticated = Caller<ApiError>;

fn package_json(package: &PackageRecord) -> Value {
    json!({
        "type": package.kind,
        "name": package.name,
        "repository": package.repository,
        "created_at": package.created_at,
        "created_by": package.created_by,
    })
}

pub async fn create_package(
    State(state): State<AppState>,
    Path(workspace): Path<String>,
    caller: Authenticated,
    body: JsonObject,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let input = NewPackage {
        kind: body.string("type")?,
        name: body.string("name")?,
        repository: body.string("repository")?,
    };
    let package = state
        .registry
        .create_package(caller.principal(), &workspace, input)
        .await?;
    Ok((StatusCode::CREATED, Json(package_json(&package))))
}

pub async fn list_packages(
    State(state): State<AppState>,
    Path(workspace): Path<String>,
    caller: Authenticated,
) -> ApiResult<Json<Value>> {
    let packages = state
        .registry
        .list_packages(caller.principal(), &workspace)
        .await?;
    Ok(Json(
        json!({ "values": packages.iter().map(package_json).collect::<Vec<_>>() }),
    ))
}

pub async fn get_package(
    State(state): State<AppState>,
    Path((workspace, kind, name)): Path<(String, String, String)>,
    caller: Authenticated,
) -> ApiResult<Json<Value>> {
    let details = state
        .registry
        .get_package(caller.principal(), &workspace, &kind, &name)
        .await?;
    let mut value = package_json(&details.package);
    value["versions"] = json!(
        details
            .versions
            .iter()
            .map(|v| json!({ "version": v.version, "published_at": v.published_at }))
            .collect::<Vec<_>>()
    );
    Ok(Json(value))
}

pub async fn delete_package(
    State(state): State<AppState>,
    Path((workspace, kind, name)): Path<(String, String, String)>,
    caller: Authenticated,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let deletion = state
        .registry
        .delete_package(caller.principal(), &workspace, &kind, &name)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(crate::workspaces::deletion_json(&deletion)),
    ))
}

pub async fn restore_package(
    State(state): State<AppState>,
    Path((workspace, kind, name)): Path<(String, String, String)>,
    caller: Authenticated,
) -> ApiResult<Json<Value>> {
    let package = state
        .registry
        .restore_package(caller.principal(), &workspace, &kind, &name)
        .await?;
    Ok(Json(package_json(&package)))
}
