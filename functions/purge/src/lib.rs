//! The purge as a scheduled function: one run of [`stowage_service::Registry::purge`] within
//! the time the invocation has left, with the registry's knowledge of each protocol's records.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_runtime::LambdaEvent;
use serde_json::Value;
use stowage_domain::{Digest, PackageType};
use stowage_service::{ContentReader, PurgeReport, Registry, Result};
use stowage_storage::Item;

/// Time kept back from the invocation's deadline, to report and return.
pub const SAFETY_MARGIN: Duration = Duration::from_secs(30);

/// One invocation: the schedule's event (or any manual one, such as `{}`) starts a run that
/// ends [`SAFETY_MARGIN`] before the invocation's deadline. Returns the run's report.
pub async fn handle(
    registry: &Registry,
    event: LambdaEvent<Value>,
) -> std::result::Result<Value, lambda_runtime::Error> {
    let deadline = UNIX_EPOCH + Duration::from_millis(event.context.deadline);
    let left = deadline
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    let report = run(registry, left.saturating_sub(SAFETY_MARGIN)).await?;
    Ok(serde_json::to_value(report)?)
}

/// One run within `budget`.
pub async fn run(registry: &Registry, budget: Duration) -> Result<PurgeReport> {
    let report = registry.purge(&Content, budget).await?;
    tracing::info!(
        operation = "purge",
        purged = report.purged.len(),
        items_deleted = report.items_deleted,
        objects_deleted = report.objects_deleted,
        uploads_expired = report.uploads_expired,
        unfinished_aborted = report.unfinished_aborted,
        links_collected = report.links_collected,
        blobs_collected = report.blobs_collected,
        orphans_deleted = report.orphans_deleted,
        audit_events_expired = report.audit_events_expired,
        finished = report.finished,
        "purge run"
    );
    Ok(report)
}

/// What every protocol's records say about blobs, each package asking its own protocol.
pub struct Content;

impl Content {
    fn of(kind: PackageType) -> &'static dyn ContentReader {
        match kind {
            PackageType::Container => &stowage_oci::OciContent,
            PackageType::Npm => &stowage_npm::NpmContent,
            PackageType::Maven => &stowage_maven::MavenContent,
        }
    }
}

impl ContentReader for Content {
    fn tracks_references(&self, kind: PackageType) -> bool {
        Self::of(kind).tracks_references(kind)
    }

    fn references(&self, kind: PackageType, item: &Item) -> Option<Vec<Digest>> {
        Self::of(kind).references(kind, item)
    }
}
