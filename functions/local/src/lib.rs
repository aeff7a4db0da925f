//! Stowage as one local process: the same routers the Lambda functions serve, merged, plus the
//! route that answers the embedded blob store's signed URLs (S3 answers them on AWS). On AWS
//! the same process, on the AWS adapters, is the upload service; [`emulate`] serves the whole
//! deployment's shape on one machine.

pub mod emulate;
mod serve;
mod signed_blobs;

use std::sync::Arc;

use axum::Router;
use stowage_http::AppState;
use stowage_storage::BlobStore;
use stowage_storage_embedded::UrlSigner;

pub use serve::{ConnectionLimits, raise_open_file_limit, serve};
pub use signed_blobs::signed_blob_router;

/// The embedded blob store and the signer of its URLs, when the local server serves them.
#[derive(Clone)]
pub struct SignedBlobs {
    pub signer: UrlSigner,
    pub blobs: Arc<dyn BlobStore>,
}

/// Every function's router in one.
pub fn app(state: AppState, signed_blobs: Option<SignedBlobs>) -> Router {
    let app = Router::new()
        // Liveness, for a load balancer or an orchestrator: no credentials, no storage call.
        .route("/healthz", axum::routing::get(|| async { "ok\n" }))
        .merge(stowage_admin::router(state.clone()))
        .merge(stowage_oci::router(state.clone()))
        .merge(stowage_npm::router(state.clone()))
        .merge(stowage_maven::router(state.clone()))
        .merge(stowage_web::router(state));
    let app = stowage_http::run_to_completion(app);
    let app = match signed_blobs {
        Some(signed) => app.merge(signed_blob_router(signed)),
        None => app,
    };
    stowage_http::drain_unread_bodies(app)
}
