//! A workspace's audit trail: who created, deleted, restored, granted and revoked what, and
//! when. Each event is written in the transaction of the change it records (no change without
//! its event, no event without its change), with an entry in the purge's due index that
//! removes it once the retention period has passed; and it is logged once committed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use stowage_domain::{Principal, Slug};
use stowage_storage::{Condition, MetadataError, Put, Query, Write};

use crate::records::{DueItem, DueTarget, decode, encode, keys};
use crate::{Registry, Result};

/// The most events one listing gives, newest first.
pub const AUDIT_LISTING_MAX: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    Created,
    Changed,
    Deleted,
    Restored,
    Granted,
    Revoked,
}

/// One change, as kept and as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: AuditAction,
    /// What changed, in words: `repository acme/api`, `read role of bob on acme/api`, …
    pub subject: String,
}

/// A change to record in a workspace's trail.
pub(crate) struct Audit {
    pub workspace: Slug,
    pub actor: String,
    pub action: AuditAction,
    pub subject: String,
}

impl Audit {
    pub fn new(
        workspace: &Slug,
        actor: &Principal,
        action: AuditAction,
        subject: impl Into<String>,
    ) -> Self {
        Self {
            workspace: workspace.clone(),
            actor: actor.display_name(),
            action,
            subject: subject.into(),
        }
    }
}

impl Registry {
    /// Commits `writes` with the event that records them.
    pub(crate) async fn transact_audited(
        &self,
        mut writes: Vec<Write>,
        audit: Audit,
    ) -> std::result::Result<(), MetadataError> {
        let event = AuditEvent {
            at: self.now(),
            actor: audit.actor,
            action: audit.action,
            subject: audit.subject,
        };
        let id = format!("{}#{}", keys::sortable_time(event.at), uuid::Uuid::now_v7());
        let purge_after = event.at + self.settings().retention;
        let target = DueTarget::AuditEvent {
            workspace: audit.workspace.clone(),
            id: id.clone(),
        };
        let due = DueItem {
            target: target.clone(),
            purge_after,
        };
        writes.push(Write::Put(
            Put::new(keys::audit(&audit.workspace, &id), encode(&event)).when(Condition::Absent),
        ));
        writes.push(Write::Put(
            Put::new(keys::due(purge_after, &target), encode(&due)).when(Condition::Absent),
        ));
        self.transact(writes).await?;
        tracing::info!(
            audit = true,
            workspace = %audit.workspace,
            actor = %event.actor,
            action = ?event.action,
            subject = %event.subject,
            "audit event"
        );
        Ok(())
    }

    /// A workspace's trail, newest first, at most [`AUDIT_LISTING_MAX`] events (workspace
    /// admin only): one query of the workspace's audit partition.
    pub async fn audit_events(
        &self,
        caller: &Principal,
        workspace: &str,
    ) -> Result<Vec<AuditEvent>> {
        let (workspace, _) = self.workspace_for_admin(caller, workspace).await?;
        let mut query = Query::prefix(
            keys::audit_partition(&workspace.slug),
            "",
            AUDIT_LISTING_MAX,
        );
        query.descending = true;
        let page = self.metadata().query(&query).await?;
        let kept_since = self.now() - self.settings().retention;
        let mut events = Vec::with_capacity(page.items.len());
        for item in &page.items {
            let event: AuditEvent = decode(item)?;
            // The purge removes expired events on its schedule; none is shown meanwhile.
            if event.at >= kept_since {
                events.push(event);
            }
        }
        Ok(events)
    }
}
