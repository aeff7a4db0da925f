//! The blob port on one S3 bucket.

use async_trait::async_trait;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream as SdkByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart as SdkCompletedPart};
use bytes::Bytes;
use stowage_storage::{
    BlobError, BlobRead, BlobStore, ByteRange, CompletedPart, ObjectPage, PresignOptions,
    StoredObject, UnfinishedPage, UnfinishedUpload,
};

const BINARY: &str = "application/octet-stream";
const READ_BUFFER: usize = 256 * 1024;

#[derive(Clone, Debug)]
pub struct S3BlobStore {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3BlobStore {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }
}

fn backend<E>(what: &'static str) -> impl Fn(SdkError<E>) -> BlobError
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |error| BlobError::backend(format!("s3: {what}"), error)
}

fn error_code<E: ProvideErrorMetadata>(error: &SdkError<E>) -> Option<&str> {
    error
        .as_service_error()
        .and_then(ProvideErrorMetadata::code)
}

fn is_not_found<E: ProvideErrorMetadata>(error: &SdkError<E>) -> bool {
    let status_404 = match error {
        SdkError::ServiceError(service) => service.raw().status().as_u16() == 404,
        _ => false,
    };
    status_404
        || matches!(
            error_code(error),
            Some("NoSuchKey" | "NotFound" | "NoSuchUpload")
        )
}

/// `bytes start-end/total` → `(start, end, total)`.
fn parse_content_range(value: &str) -> Option<(u64, u64, u64)> {
    let rest = value.strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    Some((start.parse().ok()?, end.parse().ok()?, total.parse().ok()?))
}

fn range_header(range: ByteRange) -> String {
    match range.end {
        Some(end) => format!("bytes={}-{end}", range.start),
        None => format!("bytes={}-", range.start),
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), BlobError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(BINARY)
            .body(SdkByteStream::from(body))
            .send()
            .await
            .map(drop)
            .map_err(backend("put object"))
    }

    async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<BlobRead, BlobError> {
        let result = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_range(range.map(range_header))
            .send()
            .await;
        let output = match result {
            Ok(output) => output,
            Err(error) if is_not_found(&error) => return Err(BlobError::NotFound),
            Err(error) if error_code(&error) == Some("InvalidRange") => {
                let size = self.size(key).await?.unwrap_or(0);
                return Err(BlobError::InvalidRange { size });
            }
            Err(error) => return Err(backend("get object")(error)),
        };
        let length = output.content_length.unwrap_or(0).max(0) as u64;
        let (start, end, total_size) = match output
            .content_range
            .as_deref()
            .and_then(parse_content_range)
        {
            Some(parsed) => parsed,
            None => (0, length.saturating_sub(1), length),
        };
        let reader = output.body.into_async_read();
        Ok(BlobRead {
            total_size,
            start,
            end,
            body: Box::pin(tokio_util::io::ReaderStream::with_capacity(
                reader,
                READ_BUFFER,
            )),
        })
    }

    async fn size(&self, key: &str) -> Result<Option<u64>, BlobError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(output) => Ok(Some(output.content_length.unwrap_or(0).max(0) as u64)),
            Err(error) if is_not_found(&error) => Ok(None),
            Err(error) => Err(backend("head object")(error)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if is_not_found(&error) => Ok(()),
            Err(error) => Err(backend("delete object")(error)),
        }
    }

    async fn presign_get(&self, key: &str, options: &PresignOptions) -> Result<String, BlobError> {
        let config = PresigningConfig::expires_in(options.expires_in).map_err(|error| {
            BlobError::Backend {
                message: format!("s3: presign expiry: {error}"),
                source: None,
            }
        })?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_response_content_type(options.content_type.clone())
            .set_response_content_disposition(options.content_disposition.clone())
            .presigned(config)
            .await
            .map_err(backend("presign"))?;
        Ok(request.uri().to_owned())
    }

    async fn start_multipart(&self, key: &str) -> Result<String, BlobError> {
        let output = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(BINARY)
            .send()
            .await
            .map_err(backend("create multipart upload"))?;
        output.upload_id.ok_or_else(|| BlobError::Backend {
            message: "s3: no upload id returned".into(),
            source: None,
        })
    }

    async fn put_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        body: Bytes,
    ) -> Result<CompletedPart, BlobError> {
        let size = body.len() as u64;
        let result = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(number as i32)
            .body(SdkByteStream::from(body))
            .send()
            .await;
        match result {
            Ok(output) => Ok(CompletedPart {
                number,
                etag: output.e_tag.unwrap_or_default(),
                size,
            }),
            Err(error) if is_not_found(&error) => {
                Err(BlobError::InvalidMultipart("unknown upload".into()))
            }
            Err(error) => Err(backend("upload part")(error)),
        }
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> Result<(), BlobError> {
        let completed = CompletedMultipartUpload::builder()
            .set_parts(Some(
                parts
                    .iter()
                    .map(|part| {
                        SdkCompletedPart::builder()
                            .part_number(part.number as i32)
                            .e_tag(&part.etag)
                            .build()
                    })
                    .collect(),
            ))
            .build();
        let result = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(completed)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error)
                if matches!(
                    error_code(&error),
                    Some("EntityTooSmall" | "InvalidPart" | "InvalidPartOrder" | "NoSuchUpload")
                ) =>
            {
                Err(BlobError::InvalidMultipart(
                    error_code(&error).unwrap_or_default().to_owned(),
                ))
            }
            Err(error) => Err(backend("complete multipart upload")(error)),
        }
    }

    async fn list_objects(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ObjectPage, BlobError> {
        let output = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .set_start_after(after.map(str::to_owned))
            .max_keys(limit.clamp(1, 1000) as i32)
            .send()
            .await
            .map_err(backend("list objects"))?;
        let objects: Vec<StoredObject> = output
            .contents()
            .iter()
            .filter_map(|object| {
                Some(StoredObject {
                    key: object.key()?.to_owned(),
                    size: object.size().unwrap_or(0).max(0) as u64,
                })
            })
            .collect();
        let next = match (output.is_truncated(), objects.last()) {
            (Some(true), Some(last)) => Some(last.key.clone()),
            _ => None,
        };
        Ok(ObjectPage { objects, next })
    }

    async fn list_unfinished(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<UnfinishedPage, BlobError> {
        // A position is the last key and upload id, as S3's two markers.
        let (key_marker, upload_marker) = match after.and_then(|after| after.split_once('\n')) {
            Some((key, upload)) => (Some(key.to_owned()), Some(upload.to_owned())),
            None => (None, None),
        };
        let output = self
            .client
            .list_multipart_uploads()
            .bucket(&self.bucket)
            .prefix(prefix)
            .set_key_marker(key_marker.clone())
            .set_upload_id_marker(upload_marker.clone())
            .max_uploads(limit.clamp(1, 1000) as i32)
            .send()
            .await
            .map_err(backend("list multipart uploads"))?;
        // S3 starts after the markers and stops at the page size; moto does neither, so both
        // are applied again here (a no-op on S3).
        let starts_after = |upload: &UnfinishedUpload| match (&key_marker, &upload_marker) {
            (Some(key), Some(id)) => (&upload.key, &upload.upload_id) > (key, id),
            _ => true,
        };
        let mut uploads: Vec<UnfinishedUpload> = output
            .uploads()
            .iter()
            .filter_map(|upload| {
                Some(UnfinishedUpload {
                    key: upload.key()?.to_owned(),
                    upload_id: upload.upload_id()?.to_owned(),
                    started_at: upload
                        .initiated()
                        .and_then(|time| std::time::SystemTime::try_from(*time).ok())
                        .unwrap_or(std::time::UNIX_EPOCH),
                })
            })
            .filter(starts_after)
            .collect();
        let more = output.is_truncated() == Some(true) || uploads.len() > limit.max(1);
        uploads.truncate(limit.max(1));
        let next = match (more, uploads.last()) {
            (true, Some(last)) => Some(format!("{}\n{}", last.key, last.upload_id)),
            _ => None,
        };
        Ok(UnfinishedPage { uploads, next })
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), BlobError> {
        let result = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if is_not_found(&error) => Ok(()),
            Err(error) => Err(backend("abort multipart upload")(error)),
        }
    }
}
