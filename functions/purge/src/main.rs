//! The purge as a Lambda function, run by an EventBridge schedule.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    stowage_runtime::init_tracing();
    let state = stowage_runtime::lambda_state().await?;
    let registry = state.registry;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let registry = registry.clone();
        async move { stowage_purge::handle(&registry, event).await }
    }))
    .await
}
