//! An npm package as people browse it (the web interface): its versions, newest first, with
//! their tarballs and deprecations, and its dist-tags. The same one query, paged, that builds
//! the package document.

use chrono::{DateTime, Utc};
use serde_json::Value;
use stowage_domain::{PackageName, Principal, Slug};
use stowage_service::{PackageRecord, Registry};

use crate::document::PackageState;
use crate::error::NpmResult;
use crate::route::tarball_file;

#[derive(Debug, Clone)]
pub struct NpmRelease {
    pub version: String,
    pub published_at: DateTime<Utc>,
    pub published_by: String,
    pub tarball_size: u64,
    /// npm's `dist.integrity`: `sha512-<base64>`.
    pub integrity: String,
    pub deprecated: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct NpmContents {
    /// Newest first (by semver; a version npm published is always one).
    pub releases: Vec<NpmRelease>,
    /// Each dist-tag and the version it points at, by tag name.
    pub dist_tags: Vec<(String, String)>,
}

/// The versions and dist-tags of an npm package (the caller has opened it for reading).
pub async fn contents(registry: &Registry, package: &PackageRecord) -> NpmResult<NpmContents> {
    let state = PackageState::load(registry, package).await?;
    let mut releases: Vec<NpmRelease> = state
        .versions
        .into_values()
        .map(|(version, _)| NpmRelease {
            deprecated: version
                .manifest
                .get("deprecated")
                .and_then(Value::as_str)
                .map(str::to_owned),
            version: version.version,
            published_at: version.published_at,
            published_by: version.published_by,
            tarball_size: version.tarball.size,
            integrity: version.tarball.integrity,
        })
        .collect();
    releases.sort_by(|a, b| newest_first(&a.version, &b.version));
    let dist_tags = state
        .tags
        .into_iter()
        .map(|(tag, target)| (tag, target.version))
        .collect();
    Ok(NpmContents {
        releases,
        dist_tags,
    })
}

fn newest_first(a: &str, b: &str) -> std::cmp::Ordering {
    match (semver::Version::parse(a), semver::Version::parse(b)) {
        (Ok(a), Ok(b)) => b.cmp(&a),
        _ => b.cmp(a),
    }
}

/// Unpublishes one version (the write role; the last one takes an admin), as
/// `npm unpublish <name>@<version>` does; its number is never used again.
pub async fn unpublish_version(
    registry: &Registry,
    caller: &Principal,
    workspace: &Slug,
    name: &PackageName,
    version: &str,
) -> NpmResult<()> {
    crate::publish::delete_tarball(
        registry,
        caller,
        workspace,
        name,
        &tarball_file(name, version),
    )
    .await
    .map(drop)
}
