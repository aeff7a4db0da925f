//! The Maven repository as a Lambda function.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stowage_runtime::init_tracing();
    let state = stowage_runtime::lambda_state().await?;
    lambda_http::run(stowage_maven::router(state)).await
}
