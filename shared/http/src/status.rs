//! The HTTP status of each service error: one table, which a protocol overrides only where its
//! clients need another (Maven's deploy reports a quota breach as 413, OCI has codes of its
//! own). Internal failures are logged here, once, and answered without detail.

use http::StatusCode;
use stowage_service::Error;

/// The status every protocol answers `error` with unless it says otherwise.
pub fn status_of(error: &Error) -> StatusCode {
    match error {
        Error::Invalid(_) | Error::DigestMismatch { .. } | Error::SizeMismatch(_) => {
            StatusCode::BAD_REQUEST
        }
        Error::Unauthenticated | Error::TokenExpired(_) => StatusCode::UNAUTHORIZED,
        Error::Forbidden(_) | Error::QuotaExceeded { .. } => StatusCode::FORBIDDEN,
        Error::NotFound(_) | Error::UploadUnknown | Error::Deleted(_) => StatusCode::NOT_FOUND,
        Error::Conflict(_) | Error::UploadBroken => StatusCode::CONFLICT,
        Error::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        Error::UploadOutOfOrder { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
        Error::Busy => StatusCode::SERVICE_UNAVAILABLE,
        Error::StorageFull => StatusCode::INSUFFICIENT_STORAGE,
        Error::Upstream(_) => StatusCode::BAD_GATEWAY,
        Error::Metadata(_) | Error::Blob(_) | Error::Sealer(_) | Error::Corrupt(_) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

/// Each error's short name: the management API's `code`, and the reason a refusal's log line
/// gives (a name, never a message: messages name things a log need not hold).
pub fn code_of(error: &Error) -> &'static str {
    match error {
        Error::Invalid(_) | Error::DigestMismatch { .. } | Error::SizeMismatch(_) => "invalid",
        Error::NotFound(_) | Error::UploadUnknown => "not_found",
        Error::Deleted(_) => "deleted",
        Error::UploadOutOfOrder { .. } => "out_of_order",
        Error::Conflict(_) | Error::UploadBroken => "conflict",
        Error::Unauthenticated => "unauthenticated",
        Error::TokenExpired(_) => "token_expired",
        Error::Forbidden(_) => "forbidden",
        Error::QuotaExceeded { .. } => "quota_exceeded",
        Error::TooLarge(_) => "too_large",
        Error::Busy => "busy",
        Error::StorageFull => "storage_full",
        Error::Upstream(_) => "upstream",
        Error::Metadata(_) | Error::Blob(_) | Error::Sealer(_) | Error::Corrupt(_) => "internal",
    }
}

/// The short name of a refusal that has only a status.
pub fn code_of_status(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "invalid",
        StatusCode::UNAUTHORIZED => "unauthenticated",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::CONFLICT => "conflict",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::RANGE_NOT_SATISFIABLE => "out_of_order",
        _ if status.is_server_error() => "internal",
        _ => "refused",
    }
}

/// Why a response refuses its request, set by each protocol's error mapping for the request's
/// log line.
#[derive(Debug, Clone, Copy)]
pub struct Refusal(pub &'static str);

/// The message a client is shown for `error`: the error itself, or for a failure of the
/// registry, "internal error" (the failure is logged with `protocol`).
pub fn public_message(error: &Error, protocol: &'static str) -> String {
    if error.is_internal() {
        tracing::error!(?error, protocol, "request failed");
        "internal error".to_owned()
    } else {
        error.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stowage_service::Entity;

    #[test]
    fn failures_of_the_request_are_4xx_and_of_the_registry_5xx() {
        let quota = Error::QuotaExceeded {
            limit: 1,
            stored: 2,
        };
        assert_eq!(status_of(&quota), StatusCode::FORBIDDEN);
        assert_eq!(
            status_of(&Error::NotFound(Entity::Blob)),
            StatusCode::NOT_FOUND
        );
        assert_eq!(status_of(&Error::Busy), StatusCode::SERVICE_UNAVAILABLE);
        let corrupt = Error::Corrupt("a record".into());
        assert_eq!(status_of(&corrupt), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(public_message(&corrupt, "test"), "internal error");
        assert_eq!(
            public_message(&Error::NotFound(Entity::Package), "test"),
            "package not found"
        );
    }
}
