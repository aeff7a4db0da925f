//! JSON request bodies, read field by field so that every error names its field.

use axum::extract::{FromRequest, Request};
use bytes::Bytes;
use serde_json::{Map, Value};
use stowage_domain::Invalid;

use crate::error::ApiError;

/// A JSON object body.
pub struct JsonObject(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let body =
            Bytes::from_request(request, state)
                .await
                .map_err(|rejection| match rejection.status() {
                    http::StatusCode::PAYLOAD_TOO_LARGE => {
                        ApiError(stowage_service::Error::TooLarge(format!(
                            "a request body here is at most {} bytes",
                            crate::MAX_BODY
                        )))
                    }
                    _ => Invalid::new("body", rejection.body_text()).into(),
                })?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(Map::new()));
        }
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(object)) => Ok(Self(object)),
            Ok(_) => Err(Invalid::new("body", "must be a JSON object").into()),
            Err(error) => Err(Invalid::new("body", format!("is not valid JSON: {error}")).into()),
        }
    }
}

impl JsonObject {
    pub fn string(&self, field: &'static str) -> Result<String, Invalid> {
        match self.0.get(field) {
            Some(Value::String(value)) => Ok(value.clone()),
            None | Some(Value::Null) => Err(Invalid::new(field, "is required")),
            Some(_) => Err(Invalid::new(field, "must be a string")),
        }
    }

    pub fn strings(&self, field: &'static str) -> Result<Vec<String>, Invalid> {
        let not_strings = || Invalid::new(field, "must be a list of strings");
        match self.0.get(field) {
            Some(Value::Array(values)) => values
                .iter()
                .map(|value| value.as_str().map(str::to_owned).ok_or_else(not_strings))
                .collect(),
            None | Some(Value::Null) => Err(Invalid::new(field, "is required")),
            Some(_) => Err(not_strings()),
        }
    }

    pub fn optional_integer(&self, field: &'static str) -> Result<Option<i64>, Invalid> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(number)) => number
                .as_i64()
                .map(Some)
                .ok_or_else(|| Invalid::new(field, "must be a whole number")),
            Some(_) => Err(Invalid::new(field, "must be a whole number")),
        }
    }
}
