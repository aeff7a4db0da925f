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
        Error::Metadata(_) | Error::Blob(_) | Error::Corrupt(_) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

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
