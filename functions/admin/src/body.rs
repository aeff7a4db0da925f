//! JSON request bodies, deserialized into the types of [`crate::api`]. A field that is missing,
//! of the wrong type or invalid by the domain's rules is refused with its name (the path
//! serde reached) and the domain's own message.

use axum::extract::{FromRequest, Request};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use stowage_domain::Invalid;

use crate::error::ApiError;

/// A request body of type `T`. An empty body reads as `{}`, so that a body of optional fields
/// may be left out.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
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
        let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &body
        };
        let value: serde_json::Value = serde_json::from_slice(body)
            .map_err(|error| Invalid::new("body", format!("is not valid JSON: {error}")))?;
        if !value.is_object() {
            return Err(Invalid::new("body", "must be a JSON object").into());
        }
        serde_path_to_error::deserialize(value)
            .map(JsonBody)
            .map_err(|error| field_error(&error).into())
    }
}

/// The field at fault and what is wrong with it.
fn field_error(error: &serde_path_to_error::Error<serde_json::Error>) -> Invalid {
    let message = error.inner().to_string();
    // serde reports a missing field on the object that lacks it.
    if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        return Invalid::new(join(&error.path().to_string(), field), "is required");
    }
    Invalid::new(error.path().to_string(), message)
}

fn join(path: &str, field: &str) -> String {
    if path == "." {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

/// serde adapters that read a field with the domain's parser, so that its message is the
/// domain's (the field's name comes from serde's path).
pub mod field {
    use chrono::{DateTime, Utc};
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer};
    use stowage_domain::{Email, Invalid, PackageType, Plan, Role, Scopes, Slug, Username};

    fn with<'de, D, T>(
        deserializer: D,
        parse: impl FnOnce(&str) -> Result<T, Invalid>,
    ) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
    {
        let value = String::deserialize(deserializer)?;
        parse(&value).map_err(|invalid| D::Error::custom(invalid.message))
    }

    pub fn slug<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Slug, D::Error> {
        with(deserializer, |value| Slug::parse("slug", value))
    }

    pub fn username<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Username, D::Error> {
        with(deserializer, |value| Username::parse("username", value))
    }

    pub fn email<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Email, D::Error> {
        with(deserializer, |value| Email::parse("email", value))
    }

    pub fn plan<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Plan, D::Error> {
        with(deserializer, |value| Plan::parse("plan", value))
    }

    pub fn package_type<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<PackageType, D::Error> {
        with(deserializer, |value| PackageType::parse("type", value))
    }

    pub fn role<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Role, D::Error> {
        with(deserializer, |value| Role::parse("role", value))
    }

    pub fn scopes<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Scopes, D::Error> {
        let values = Vec::<String>::deserialize(deserializer)?;
        Scopes::parse("scopes", &values).map_err(|invalid| D::Error::custom(invalid.message))
    }

    /// A field that may be given as `null`: `Some(None)`, told apart from a field left out
    /// (`None`, with `#[serde(default)]`).
    pub fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        deserializer: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(deserializer).map(Some)
    }

    pub fn optional_rfc3339<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        with(deserializer, |value| {
            DateTime::parse_from_rfc3339(value)
                .map(|time| time.with_timezone(&Utc))
                .map_err(|_| {
                    Invalid::new(
                        "expires_at",
                        format!("must be an RFC 3339 time (got {value:?})"),
                    )
                })
        })
        .map(Some)
    }
}
