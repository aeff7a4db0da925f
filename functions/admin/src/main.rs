//! The management API as a Lambda function.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stowage_runtime::init_tracing();
    let state = stowage_runtime::lambda_state().await?;
    stowage_runtime::bootstrap_site_admin(&state.registry, false).await?;
    lambda_http::run(stowage_admin::router(state)).await
}
