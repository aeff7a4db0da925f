//! Users and their tokens.

use axum::Json;
use axum::extract::{Path, State};
use http::StatusCode;
use stowage_http::{AppState, Caller};
use stowage_service::{NewToken, NewUser};

use crate::api::{
    CreateToken, CreateUser, CurrentUserJson, IssuedTokenJson, TokenJson, UserJson, Values,
};
use crate::body::JsonBody;
use crate::error::{ApiError, ApiResult};

type Authenticated = Caller<ApiError>;

fn new_token(body: CreateToken) -> Result<NewToken, ApiError> {
    Ok(NewToken {
        expires: body.expiry()?,
        name: body.name,
        scopes: body.scopes,
    })
}

pub async fn current_user(caller: Authenticated) -> Json<CurrentUserJson> {
    let principal = caller.principal();
    Json(CurrentUserJson {
        username: principal.display_name(),
        scopes: principal.scopes,
        pipeline: principal.user().is_none(),
    })
}

pub async fn create_user(
    State(state): State<AppState>,
    caller: Authenticated,
    JsonBody(body): JsonBody<CreateUser>,
) -> ApiResult<(StatusCode, Json<UserJson>)> {
    let input = NewUser {
        username: body.username,
        email: body.email,
    };
    let user = state
        .registry
        .create_user(caller.principal(), input)
        .await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

pub async fn create_token_for_user(
    State(state): State<AppState>,
    Path(username): Path<String>,
    caller: Authenticated,
    JsonBody(body): JsonBody<CreateToken>,
) -> ApiResult<(StatusCode, Json<IssuedTokenJson>)> {
    let issued = state
        .registry
        .create_token(caller.principal(), Some(&username), new_token(body)?)
        .await?;
    Ok((StatusCode::CREATED, Json(issued.into())))
}

pub async fn create_own_token(
    State(state): State<AppState>,
    caller: Authenticated,
    JsonBody(body): JsonBody<CreateToken>,
) -> ApiResult<(StatusCode, Json<IssuedTokenJson>)> {
    let issued = state
        .registry
        .create_token(caller.principal(), None, new_token(body)?)
        .await?;
    Ok((StatusCode::CREATED, Json(issued.into())))
}

pub async fn list_tokens(
    State(state): State<AppState>,
    caller: Authenticated,
) -> ApiResult<Json<Values<TokenJson>>> {
    let tokens = state.registry.list_tokens(caller.principal()).await?;
    let values = tokens.into_iter().map(TokenJson::from).collect();
    Ok(Json(Values { values }))
}

pub async fn revoke_token(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Authenticated,
) -> ApiResult<StatusCode> {
    state.registry.revoke_token(caller.principal(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
