//! The web interface as a Lambda function, at the site's root.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stowage_runtime::init_tracing();
    let state = stowage_runtime::lambda_state().await?;
    lambda_http::run(stowage_web::router(state)).await
}
