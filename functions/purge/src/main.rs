//! The purge as a Lambda function, run by an EventBridge schedule.

use std::time::{Duration, SystemTime};

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    stowage_runtime::init_tracing();
    let state = stowage_runtime::lambda_state().await?;
    let registry = state.registry;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let registry = registry.clone();
        async move {
            let deadline = event.context.deadline();
            let left = deadline
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO);
            let budget = left.saturating_sub(stowage_purge::SAFETY_MARGIN);
            let report = stowage_purge::run(&registry, budget).await?;
            Ok::<_, Error>(serde_json::to_value(report)?)
        }
    }))
    .await
}
