//! OCI errors: `{"errors": [{"code", "message", "detail"}]}`. Every code and its HTTP status
//! live in one table, and service errors become OCI errors here and nowhere else.

use axum::response::{IntoResponse, Response};
use http::header::{CONTENT_TYPE, RANGE};
use http::{HeaderValue, StatusCode};
use serde_json::{Value, json};
use stowage_http::public_message;
use stowage_service::{Entity, Error};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    TagInvalid,
    Unauthorized,
    Denied,
    Unsupported,
    TooManyRequests,
    /// A failure of the registry itself.
    Unknown,
}

impl Code {
    /// The code's name on the wire and its usual status.
    fn entry(self) -> (&'static str, StatusCode) {
        match self {
            Code::BlobUnknown => ("BLOB_UNKNOWN", StatusCode::NOT_FOUND),
            Code::BlobUploadInvalid => ("BLOB_UPLOAD_INVALID", StatusCode::BAD_REQUEST),
            Code::BlobUploadUnknown => ("BLOB_UPLOAD_UNKNOWN", StatusCode::NOT_FOUND),
            Code::DigestInvalid => ("DIGEST_INVALID", StatusCode::BAD_REQUEST),
            Code::ManifestBlobUnknown => ("MANIFEST_BLOB_UNKNOWN", StatusCode::BAD_REQUEST),
            Code::ManifestInvalid => ("MANIFEST_INVALID", StatusCode::BAD_REQUEST),
            Code::ManifestUnknown => ("MANIFEST_UNKNOWN", StatusCode::NOT_FOUND),
            Code::NameInvalid => ("NAME_INVALID", StatusCode::BAD_REQUEST),
            Code::NameUnknown => ("NAME_UNKNOWN", StatusCode::NOT_FOUND),
            Code::SizeInvalid => ("SIZE_INVALID", StatusCode::BAD_REQUEST),
            Code::TagInvalid => ("TAG_INVALID", StatusCode::BAD_REQUEST),
            Code::Unauthorized => ("UNAUTHORIZED", StatusCode::UNAUTHORIZED),
            Code::Denied => ("DENIED", StatusCode::FORBIDDEN),
            Code::Unsupported => ("UNSUPPORTED", StatusCode::METHOD_NOT_ALLOWED),
            Code::TooManyRequests => ("TOOMANYREQUESTS", StatusCode::TOO_MANY_REQUESTS),
            Code::Unknown => ("UNKNOWN", StatusCode::INTERNAL_SERVER_ERROR),
        }
    }

    pub fn as_str(self) -> &'static str {
        self.entry().0
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct OciError {
    pub code: Code,
    pub status: StatusCode,
    pub message: String,
    pub detail: Option<Value>,
    /// For 416 on an upload: the offset it stands at, sent back as `Range`.
    pub upload_offset: Option<u64>,
    /// For 401: the `WWW-Authenticate` challenge, added where the request is known.
    pub challenge: Option<HeaderValue>,
}

impl OciError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            status: code.entry().1,
            message: message.into(),
            detail: None,
            upload_offset: None,
            challenge: None,
        }
    }

    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub fn with_detail(mut self, detail: Value) -> Self {
        self.detail = Some(detail);
        self
    }

    pub fn name_invalid(message: impl Into<String>) -> Self {
        Self::new(Code::NameInvalid, message)
    }

    pub fn name_unknown() -> Self {
        Self::new(Code::NameUnknown, "repository name not known to registry")
    }

    pub fn tag_invalid(tag: &str) -> Self {
        Self::new(
            Code::TagInvalid,
            "a tag is [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}",
        )
        .with_detail(json!({ "tag": tag }))
    }

    pub fn digest_invalid(message: impl Into<String>) -> Self {
        Self::new(Code::DigestInvalid, message)
    }

    pub fn manifest_unknown(reference: &str) -> Self {
        Self::new(Code::ManifestUnknown, "manifest unknown")
            .with_detail(json!({ "reference": reference }))
    }

    pub fn manifest_invalid(message: impl Into<String>) -> Self {
        Self::new(Code::ManifestInvalid, message)
    }

    pub fn manifest_blob_unknown(digest: &str) -> Self {
        Self::new(
            Code::ManifestBlobUnknown,
            "the manifest refers to content that is not in this repository",
        )
        .with_detail(json!({ "digest": digest }))
    }

    pub fn blob_unknown(digest: &str) -> Self {
        Self::new(Code::BlobUnknown, "blob unknown to registry")
            .with_detail(json!({ "digest": digest }))
    }

    pub fn upload_unknown() -> Self {
        Self::new(Code::BlobUploadUnknown, "blob upload unknown to registry")
    }

    pub fn upload_invalid(message: impl Into<String>) -> Self {
        Self::new(Code::BlobUploadInvalid, message)
    }

    pub fn unauthorized() -> Self {
        Self::new(Code::Unauthorized, "authentication required")
    }

    pub fn unauthorized_because(message: impl Into<String>) -> Self {
        Self::new(Code::Unauthorized, message)
    }

    pub fn denied(message: impl Into<String>) -> Self {
        Self::new(Code::Denied, message)
    }

    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(Code::Unsupported, message)
    }

    pub fn not_found_route() -> Self {
        Self::new(Code::Unsupported, "no such endpoint").with_status(StatusCode::NOT_FOUND)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(Code::SizeInvalid, message).with_status(StatusCode::PAYLOAD_TOO_LARGE)
    }
}

impl From<Error> for OciError {
    fn from(error: Error) -> Self {
        match error {
            Error::Unauthenticated => OciError::unauthorized(),
            expired @ Error::TokenExpired(_) => OciError::unauthorized_because(expired.to_string()),
            Error::Forbidden(message) => OciError::denied(message),
            quota @ Error::QuotaExceeded { .. } => OciError::denied(quota.to_string()),
            Error::NotFound(Entity::Blob) => {
                OciError::new(Code::BlobUnknown, "blob unknown to registry")
            }
            Error::NotFound(_) => OciError::name_unknown(),
            Error::Deleted(message) => OciError::new(Code::NameUnknown, message),
            // Names, tags and digests are checked where the request is read (route.rs), each
            // with its own code; what the service finds invalid is in the manifest's content.
            Error::Invalid(invalid) => OciError::manifest_invalid(invalid.to_string()),
            Error::Conflict(message) => OciError::denied(message),
            Error::TooLarge(message) => OciError::too_large(message),
            Error::Busy => OciError::new(Code::TooManyRequests, "the registry is busy; try again"),
            full @ Error::StorageFull => OciError::new(Code::Unknown, full.to_string())
                .with_status(StatusCode::INSUFFICIENT_STORAGE),
            Error::DigestMismatch { expected, actual } => {
                OciError::digest_invalid("the content does not match its digest")
                    .with_detail(json!({ "expected": expected, "actual": actual }))
            }
            Error::UploadUnknown => OciError::upload_unknown(),
            out_of_order @ Error::UploadOutOfOrder { offset, .. } => {
                let mut error = OciError::upload_invalid(out_of_order.to_string())
                    .with_status(StatusCode::RANGE_NOT_SATISFIABLE);
                error.upload_offset = Some(offset);
                error
            }
            Error::SizeMismatch(message) => OciError::new(Code::SizeInvalid, message),
            Error::UploadBroken => OciError::upload_invalid(Error::UploadBroken.to_string()),
            Error::Upstream(message) => {
                OciError::new(Code::Unknown, message).with_status(StatusCode::BAD_GATEWAY)
            }
            internal @ (Error::Metadata(_)
            | Error::Blob(_)
            | Error::Sealer(_)
            | Error::Corrupt(_)) => OciError::new(Code::Unknown, public_message(&internal, "oci")),
        }
    }
}

impl IntoResponse for OciError {
    fn into_response(self) -> Response {
        let mut error = json!({ "code": self.code.as_str(), "message": self.message });
        if let Some(detail) = self.detail {
            error["detail"] = detail;
        }
        let body = json!({ "errors": [error] }).to_string();
        let mut response =
            (self.status, [(CONTENT_TYPE, "application/json")], body).into_response();
        response
            .extensions_mut()
            .insert(stowage_http::Refusal(self.code.as_str()));
        if let Some(offset) = self.upload_offset {
            let range = format!("0-{}", offset.saturating_sub(1));
            if let Ok(value) = HeaderValue::from_str(&range) {
                response.headers_mut().insert(RANGE, value);
            }
        }
        if let Some(challenge) = self.challenge {
            response
                .headers_mut()
                .insert(http::header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

pub type OciResult<T> = Result<T, OciError>;
