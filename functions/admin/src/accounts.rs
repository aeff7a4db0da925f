use axum::Json;
use axum::extract::{Path, State};
use http::StatusCode;
use serde_json::{Value, json};
use stowage_http::{AppState, Caller};
use stowage_service::records::TokenRef;
use stowage_service::{IssuedToken, NewToken, NewUser};

use crate::body::JsonObject;
use crate::error::{ApiError, ApiResult};

type Authenticated = Caller<ApiError>;

fn token_json(token: &TokenRef) -> Value {
    json!({
        "id": token.id,
        "name": token.name,
        "scopes": token.scopes,
        "expires_at": token.expires_at,
        "created_at": token.created_at,
    })
}

fn issued_json(issued: &IssuedToken) -> Value {
    let mut value = token_json(&issued.token);
    value["token"] = json!(issued.secret.expose());
    value
}

fn new_token(body: &JsonObject) -> ApiResult<NewToken> {
    Ok(NewToken {
        name: body.string("name")?,
        scopes: body.strings("scopes")?,
        expires_at: body.string("expires_at")?,
    })
}

pub async fn current_user(caller: Authenticated) -> Json<Value> {
    let principal = caller.principal();
    Json(json!({
        "username": principal.display_name(),
        "scopes": principal.scopes,
        "pipeline": principal.user().is_none(),
    }))
}

pub async fn create_user(
    State(state): State<AppState>,
    caller: Authenticated,
    body: JsonObject,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let input = NewUser {
        username: body.string("username")?,
        email: body.string("email")?,
    };
    let user = state
        .registry
        .create_user(caller.principal(), input)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({ "username": user.username, "email": user.email, "created_at": user.created_at }),
        ),
    ))
}

pub async fn create_token_for_user(
    State(state): State<AppState>,
    Path(username): Path<String>,
    caller: Authenticated,
    body: JsonObject,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let issued = state
        .registry
        .create_token(caller.principal(), Some(&username), new_token(&body)?)
        .await?;
    Ok((StatusCode::CREATED, Json(issued_json(&issued))))
}

pub async fn create_own_token(
    State(state): State<AppState>,
    caller: Authenticated,
    body: JsonObject,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let issued = state
        .registry
        .create_token(caller.principal(), None, new_token(&body)?)
        .await?;
    Ok((StatusCode::CREATED, Json(issued_json(&issued))))
}

pub async fn list_tokens(
    State(state): State<AppState>,
    caller: Authenticated,
) -> ApiResult<Json<Value>> {
    let tokens = state.registry.list_tokens(caller.principal()).await?;
    Ok(Json(
        json!({ "values": tokens.iter().map(token_json).collect::<Vec<_>>() }),
    ))
}

pub async fn revoke_token(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Authenticated,
) -> ApiResult<StatusCode> {
    state.registry.revoke_token(caller.principal(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
