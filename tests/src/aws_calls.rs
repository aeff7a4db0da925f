//! Records the AWS operations the adapters make, through an interceptor on the SDK clients:
//! service, operation and, for S3, the first segment of the object key. The deployment test
//! holds each function's IAM policy against what its requests really called.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// One kind of call: `("DynamoDB", "Query", None)`, `("S3", "PutObject", Some("ws"))`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AwsCall {
    pub service: String,
    pub operation: String,
    /// For S3: the object key's first segment (the prefix policies are written for).
    pub key_prefix: Option<String>,
    /// A presigned URL made, not a request sent: the SDK runs it through the same pipeline,
    /// and IAM checks it when the URL is used.
    pub presigned: bool,
}

/// The calls made since the last take, in order.
#[derive(Debug, Clone, Default)]
pub struct CallRecorder(Arc<Mutex<Vec<AwsCall>>>);

impl CallRecorder {
    /// Every call since the last take.
    pub fn take_all(&self) -> Vec<AwsCall> {
        std::mem::take(&mut *self.0.lock().expect("recorded calls"))
    }

    /// The kinds of call since the last take.
    pub fn take(&self) -> BTreeSet<AwsCall> {
        self.take_all().into_iter().collect()
    }
}

impl Intercept for CallRecorder {
    fn name(&self) -> &'static str {
        "CallRecorder"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(metadata) = cfg.load::<Metadata>() else {
            return Ok(());
        };
        // Buckets are addressed by path on moto: /<bucket>/<prefix>/...
        let presigned = context.request().uri().contains("X-Amz-Signature=");
        let key_prefix = (metadata.service() == "S3")
            .then(|| {
                let uri = context.request().uri();
                let path = uri.split_once("://").map_or(uri, |(_, rest)| rest);
                let path = path.split_once('/').map_or("", |(_, path)| path);
                let path = path.split(['?', '#']).next().unwrap_or_default();
                path.split('/').nth(1).map(str::to_owned)
            })
            .flatten();
        self.0.lock().expect("recorded calls").push(AwsCall {
            service: metadata.service().to_owned(),
            operation: metadata.name().to_owned(),
            key_prefix,
            presigned,
        });
        Ok(())
    }
}
