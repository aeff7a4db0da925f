//! Package documents, full and abbreviated ("corgi"), built from the package's items in one
//! paged query.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};
use stowage_domain::PackageName;
use stowage_service::{AnyRecord, PackageRecord, Registry};

use crate::error::NpmResult;
use crate::records::{
    DistTag, DistTags, NpmVersion, NpmVersions, Unpublished, UnpublishedVersions,
};
use crate::route::tarball_file;

const PAGE: usize = 1000;

/// The fields of a version that installs need: the abbreviated document keeps only these.
const INSTALL_FIELDS: &[&str] = &[
    "name",
    "version",
    "deprecated",
    "dependencies",
    "optionalDependencies",
    "devDependencies",
    "bundleDependencies",
    "bundledDependencies",
    "peerDependencies",
    "peerDependenciesMeta",
    "bin",
    "directories",
    "dist",
    "engines",
    "_hasShrinkwrap",
    "hasInstallScript",
    "cpu",
    "os",
    "libc",
    "funding",
    "license",
    "acceptDependencies",
];

/// Everything published to a package: its versions (with their item versions, for
/// conditional updates) and dist-tags.
#[derive(Debug, Default)]
pub struct PackageState {
    pub versions: BTreeMap<String, (NpmVersion, u64)>,
    pub tags: BTreeMap<String, DistTag>,
    /// Versions published once and unpublished since.
    pub unpublished: BTreeMap<String, Unpublished>,
}

impl PackageState {
    /// Reads a package's versions and tags: one query, paged.
    pub async fn load(registry: &Registry, package: &PackageRecord) -> NpmResult<Self> {
        let items = registry.package_items(package);
        let mut state = PackageState::default();
        let mut from = None;
        loop {
            let (page, next) = items
                .walk_kinds::<DistTags, NpmVersions>(from, PAGE)
                .await?;
            for record in &page {
                state.add(record)?;
            }
            match next {
                Some(token) => from = Some(token),
                None => return Ok(state),
            }
        }
    }

    fn add(&mut self, record: &AnyRecord) -> NpmResult<()> {
        if let Some(tag) = record.as_kind::<DistTags>() {
            let tag = tag?;
            self.tags.insert(tag.id, tag.payload);
        } else if let Some(retired) = record.as_kind::<UnpublishedVersions>() {
            let retired = retired?;
            self.unpublished.insert(retired.id, retired.payload);
        } else if let Some(version) = record.as_kind::<NpmVersions>() {
            let version = version?;
            self.versions
                .insert(version.id, (version.payload, version.version));
        }
        Ok(())
    }

    /// A stable revision of what the document holds, for clients that send it back.
    pub fn revision(&self) -> String {
        let mut hasher = Sha256::new();
        for (version, (record, item_version)) in &self.versions {
            hasher.update(format!("{version}:{item_version}:{};", record.published_at));
        }
        for (tag, target) in &self.tags {
            hasher.update(format!("{tag}={};", target.version));
        }
        let hash = hex::encode(hasher.finalize());
        format!("{}-{}", self.versions.len() + self.tags.len(), &hash[..32])
    }

    /// The last change: a publish or a tag moved.
    fn modified(&self) -> Option<DateTime<Utc>> {
        let published = self.versions.values().map(|(v, _)| v.published_at);
        let tagged = self.tags.values().map(|t| t.updated_at);
        published.chain(tagged).max()
    }

    fn dist_tags(&self) -> Map<String, Value> {
        self.tags
            .iter()
            .map(|(tag, target)| (tag.clone(), json!(target.version)))
            .collect()
    }

    fn latest(&self) -> Option<&NpmVersion> {
        let latest = self.tags.get("latest").map(|t| t.version.as_str());
        latest.and_then(|v| self.versions.get(v)).map(|(v, _)| v)
    }
}

/// Where a version's tarball is downloaded from.
pub fn tarball_url(base: &str, workspace: &str, name: &PackageName, version: &str) -> String {
    format!(
        "{base}/npm/{workspace}/{name}/-/{}",
        tarball_file(name, version)
    )
}

/// A version's manifest as served: as published, with the registry's own `dist`.
pub fn version_manifest(
    name: &PackageName,
    version: &NpmVersion,
    tarball: String,
) -> Map<String, Value> {
    let mut manifest = version.manifest.clone();
    manifest.insert("_id".into(), json!(format!("{name}@{}", version.version)));
    manifest.insert("name".into(), json!(name.as_str()));
    manifest.insert("version".into(), json!(version.version));
    let mut dist = manifest
        .get("dist")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    dist.insert("tarball".into(), json!(tarball));
    dist.insert("shasum".into(), json!(version.tarball.shasum));
    dist.insert("integrity".into(), json!(version.tarball.integrity));
    manifest.insert("dist".into(), Value::Object(dist));
    manifest
}

/// The full document, as `npm view` and `npm install` (npm 11) ask for it. `time.created`
/// is the package's creation, which no unpublish moves.
pub fn full(
    package: &PackageRecord,
    state: &PackageState,
    tarball: impl Fn(&str) -> String,
) -> Value {
    let name = &package.name;
    let mut time = Map::new();
    if let Some(modified) = state.modified() {
        time.insert("created".into(), json!(package.created_at));
        time.insert("modified".into(), json!(modified));
    }
    let mut versions = Map::new();
    for (version, (record, _)) in &state.versions {
        time.insert(version.clone(), json!(record.published_at));
        versions.insert(
            version.clone(),
            Value::Object(version_manifest(name, record, tarball(version))),
        );
    }
    let latest = state.latest();
    let mut document = json!({
        "_id": name.as_str(),
        "_rev": state.revision(),
        "name": name.as_str(),
        "dist-tags": state.dist_tags(),
        "versions": versions,
        "time": time,
    });
    if let Some(latest) = latest {
        for field in [
            "description",
            "keywords",
            "license",
            "homepage",
            "repository",
            "author",
        ] {
            if let Some(value) = latest.manifest.get(field) {
                document[field] = value.clone();
            }
        }
        // npm view prints a maintainer as "name <email>", and "<undefined>" without one.
        let email = latest.published_by_email.as_deref().unwrap_or_default();
        document["maintainers"] = json!([{ "name": latest.published_by, "email": email }]);
    }
    document
}

/// The abbreviated document (`Accept: application/vnd.npm.install-v1+json`): only what an
/// install needs.
pub fn abbreviated(
    name: &PackageName,
    state: &PackageState,
    tarball: impl Fn(&str) -> String,
) -> Value {
    let modified = state.modified();
    let mut versions = Map::new();
    for (version, (record, _)) in &state.versions {
        let manifest = version_manifest(name, record, tarball(version));
        let kept: Map<String, Value> = manifest
            .into_iter()
            .filter(|(field, _)| INSTALL_FIELDS.contains(&field.as_str()))
            .collect();
        versions.insert(version.clone(), Value::Object(kept));
    }
    let mut time = Map::new();
    for (version, (record, _)) in &state.versions {
        time.insert(version.clone(), json!(record.published_at));
    }
    json!({
        "name": name.as_str(),
        "modified": modified,
        "dist-tags": state.dist_tags(),
        "versions": versions,
        // yarn 4 judges a version's age from `time`.
        "time": time,
    })
}
