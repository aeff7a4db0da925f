//! Packages: created by a repository admin, listed, deleted and restored.

use axum::Json;
use axum::extract::{Path, State};
use http::StatusCode;
use stowage_http::{AppState, Caller};
use stowage_service::NewPackage;

use crate::api::{CreatePackage, DeletionJson, PackageJson, Values};
use crate::body::JsonBody;
use crate::error::{ApiError, ApiResult};

type Authenticated = Caller<ApiError>;

pub async fn create_package(
    State(state): State<AppState>,
    Path(workspace): Path<String>,
    caller: Authenticated,
    JsonBody(body): JsonBody<CreatePackage>,
) -> ApiResult<(StatusCode, Json<PackageJson>)> {
    let input = NewPackage {
        name: body.name()?,
        kind: body.kind,
        repository: body.repository,
    };
    let package = state
        .registry
        .create_package(caller.principal(), &workspace, input)
        .await?;
    Ok((StatusCode::CREATED, Json(package.into())))
}

pub async fn list_packages(
    State(state): State<AppState>,
    Path(workspace): Path<String>,
    caller: Authenticated,
) -> ApiResult<Json<Values<PackageJson>>> {
    let packages = state
        .registry
        .list_packages(caller.principal(), &workspace)
        .await?;
    let values = packages.into_iter().map(PackageJson::from).collect();
    Ok(Json(Values { values }))
}

pub async fn get_package(
    State(state): State<AppState>,
    Path((workspace, kind, name)): Path<(String, String, String)>,
    caller: Authenticated,
) -> ApiResult<Json<PackageJson>> {
    let details = state
        .registry
        .get_package(caller.principal(), &workspace, &kind, &name)
        .await?;
    Ok(Json(details.into()))
}

pub async fn delete_package(
    State(state): State<AppState>,
    Path((workspace, kind, name)): Path<(String, String, String)>,
    caller: Authenticated,
) -> ApiResult<(StatusCode, Json<DeletionJson>)> {
    let deletion = state
        .registry
        .delete_package(caller.principal(), &workspace, &kind, &name)
        .await?;
    Ok((StatusCode::ACCEPTED, Json((&deletion).into())))
}

pub async fn restore_package(
    State(state): State<AppState>,
    Path((workspace, kind, name)): Path<(String, String, String)>,
    caller: Authenticated,
) -> ApiResult<Json<PackageJson>> {
    let package = state
        .registry
        .restore_package(caller.principal(), &workspace, &kind, &name)
        .await?;
    Ok(Json(package.into()))
}
