//! A Maven package as people browse it (the web interface): its versions, newest first, each
//! with its files. One query of the package's partition, paged: files and versions are
//! neighbours there.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use stowage_domain::{PackageName, Principal, Slug};
use stowage_service::{PackageRecord, Registry, VersionRecord, Versions, WalkToken};

use crate::error::MavenResult;
pub use crate::records::MavenFile;

use crate::records::Files;
use crate::version::compare;

const PAGE: usize = 1000;

#[derive(Debug, Clone)]
pub struct MavenRelease {
    pub version: String,
    pub published_at: DateTime<Utc>,
    pub published_by: String,
    /// By file name.
    pub files: Vec<MavenFile>,
}

impl MavenRelease {
    pub fn size(&self) -> u64 {
        self.files.iter().map(|file| file.size).sum()
    }
}

/// The versions of a Maven package with their files, newest first (Maven's order).
pub async fn contents(
    registry: &Registry,
    package: &PackageRecord,
) -> MavenResult<Vec<MavenRelease>> {
    let items = registry.package_items(package);
    let mut files: BTreeMap<String, Vec<MavenFile>> = BTreeMap::new();
    let mut releases = Vec::new();
    let mut from: Option<WalkToken> = None;
    loop {
        let (page, next) = items
            .walk_kinds::<Files, Versions<VersionRecord>>(from, PAGE)
            .await?;
        for record in &page {
            if let Some(file) = record.as_kind::<Files>() {
                let file = file?.payload;
                files.entry(file.version.clone()).or_default().push(file);
            } else if let Some(version) = record.as_kind::<Versions<VersionRecord>>() {
                releases.push(version?.payload);
            }
        }
        match next {
            Some(token) => from = Some(token),
            None => break,
        }
    }
    let mut releases: Vec<MavenRelease> = releases
        .into_iter()
        .map(|version| MavenRelease {
            files: files.remove(&version.version).unwrap_or_default(),
            version: version.version,
            published_at: version.published_at,
            published_by: version.published_by,
        })
        .collect();
    releases.sort_by(|a, b| compare(&b.version, &a.version));
    Ok(releases)
}

/// Deletes a version and its files (the write role), as `DELETE <artifact>/<version>/` does.
pub async fn delete_version(
    registry: &Registry,
    caller: &Principal,
    workspace: &Slug,
    package: &PackageName,
    version: &str,
) -> MavenResult<()> {
    crate::files::delete_version(registry, caller, workspace, package, version).await
}
