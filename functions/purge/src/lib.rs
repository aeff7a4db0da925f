//! The purge as a scheduled function: one run of [`stowage_service::Registry::purge`] within
//! the time the invocation has left, with the registry's knowledge of each protocol's records.

use std::time::Duration;

use stowage_service::{PurgeReport, Registry, Result};

/// Time kept back from the invocation's deadline, to report and return.
pub const SAFETY_MARGIN: Duration = Duration::from_secs(30);

/// One run within `budget`.
pub async fn run(registry: &Registry, budget: Duration) -> Result<PurgeReport> {
    let report = registry.purge(&stowage_oci::OciContent, budget).await?;
    tracing::info!(
        purged = report.purged.len(),
        items_deleted = report.items_deleted,
        objects_deleted = report.objects_deleted,
        uploads_expired = report.uploads_expired,
        links_collected = report.links_collected,
        blobs_collected = report.blobs_collected,
        finished = report.finished,
        "purge run"
    );
    Ok(report)
}
