//! AWS storage: one DynamoDB table for metadata, one S3 bucket for blobs, one KMS key sealing
//! upstream credentials. The same adapters serve the Lambda functions and
//! `stowage-local --backend aws`.

mod dynamo;
mod kms;
mod provision;
mod s3;

pub use dynamo::DynamoMetadataStore;
pub use kms::KmsSealer;
pub use provision::{create_bucket, create_key, create_table};
pub use s3::S3BlobStore;

/// The SDK clients, configured from the standard AWS environment (`AWS_REGION`,
/// credentials, `AWS_ENDPOINT_URL` for a local stand-in such as moto).
#[derive(Clone, Debug)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub s3: aws_sdk_s3::Client,
    pub kms: aws_sdk_kms::Client,
}

impl AwsClients {
    pub async fn from_env() -> Self {
        let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        // A custom endpoint (moto, MinIO, LocalStack) serves buckets by path, not by host name.
        let custom_endpoint = shared.endpoint_url().is_some();
        let s3_config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(custom_endpoint)
            // Checksums only where S3 requires them: the newer defaults are not understood by
            // every S3-compatible server, and blobs are verified by their digests anyway.
            .request_checksum_calculation(
                aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired,
            )
            .response_checksum_validation(
                aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired,
            )
            .build();
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(&shared),
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            kms: aws_sdk_kms::Client::new(&shared),
        }
    }
}
