//! A repository's upstreams: the registries it proxies (repository admins only).

use axum::Json;
use axum::extract::{Path, State};
use http::StatusCode;
use stowage_http::{AppState, Caller};
use stowage_service::{NewUpstream, UpstreamChange};

use crate::api::{AttachUpstream, ChangeUpstream, UpstreamJson, Values};
use crate::body::JsonBody;
use crate::error::{ApiError, ApiResult};

type Authenticated = Caller<ApiError>;

pub async fn attach_upstream(
    State(state): State<AppState>,
    Path((workspace, repository)): Path<(String, String)>,
    caller: Authenticated,
    JsonBody(mut body): JsonBody<AttachUpstream>,
) -> ApiResult<(StatusCode, Json<UpstreamJson>)> {
    let new = NewUpstream {
        credentials: body.credentials()?,
        kind: body.kind,
        url: body.url,
        priority: body.priority,
    };
    let upstream = state
        .registry
        .attach_upstream(caller.principal(), &workspace, &repository, new)
        .await?;
    Ok((StatusCode::CREATED, Json(upstream.into())))
}

pub async fn list_upstreams(
    State(state): State<AppState>,
    Path((workspace, repository)): Path<(String, String)>,
    caller: Authenticated,
) -> ApiResult<Json<Values<UpstreamJson>>> {
    let upstreams = state
        .registry
        .list_upstreams(caller.principal(), &workspace, &repository)
        .await?;
    let values = upstreams.into_iter().map(UpstreamJson::from).collect();
    Ok(Json(Values { values }))
}

pub async fn get_upstream(
    State(state): State<AppState>,
    Path((workspace, repository, id)): Path<(String, String, String)>,
    caller: Authenticated,
) -> ApiResult<Json<UpstreamJson>> {
    let upstream = state
        .registry
        .get_upstream(caller.principal(), &workspace, &repository, &id)
        .await?;
    Ok(Json(upstream.into()))
}

pub async fn change_upstream(
    State(state): State<AppState>,
    Path((workspace, repository, id)): Path<(String, String, String)>,
    caller: Authenticated,
    JsonBody(body): JsonBody<ChangeUpstream>,
) -> ApiResult<Json<UpstreamJson>> {
    let change = UpstreamChange::try_from(body)?;
    let upstream = state
        .registry
        .change_upstream(caller.principal(), &workspace, &repository, &id, change)
        .await?;
    Ok(Json(upstream.into()))
}

pub async fn remove_upstream(
    State(state): State<AppState>,
    Path((workspace, repository, id)): Path<(String, String, String)>,
    caller: Authenticated,
) -> ApiResult<StatusCode> {
    state
        .registry
        .remove_upstream(caller.principal(), &workspace, &repository, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
