//! Folder listings, as Maven repositories serve them to browsers and to tools that browse
//! (`GET /maven/<workspace>/<folders>/`): the folders and files the caller may read, as HTML.
//! A folder above packages lists the next folder of each readable package's path (one query
//! of the workspace's packages); a package's folder its versions; a version's its files.

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;
use http::header::CONTENT_TYPE;
use stowage_domain::{PackageType, Principal, Slug};
use stowage_http::Finish;
use stowage_service::{PackageRecord, Registry, VersionRecord, Versions};

use crate::error::{MavenError, MavenResult};
use crate::records::{Files, files_of_version};
use crate::route::METADATA;

/// One entry of a listing: a folder (ends in `/`) or a file.
type Entry = String;

/// The listing of `folders` (the path's segments after the workspace) in `workspace`.
pub async fn folder(
    registry: &Registry,
    caller: &Principal,
    workspace: &Slug,
    folders: &[String],
) -> MavenResult<Response> {
    let packages: Vec<PackageRecord> = registry
        .list_packages(caller, workspace.as_str())
        .await?
        .into_iter()
        .filter(|package| package.kind == PackageType::Maven)
        .collect();
    let entries = entries(registry, &packages, folders).await?;
    if entries.is_empty() && !folders.is_empty() {
        return Err(MavenError::not_found());
    }
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(CONTENT_TYPE, "text/html; charset=utf-8")
        .finish(Body::from(html(workspace, folders, &entries))))
}

/// A package's folders: its group's, then its artifactId.
fn folders_of(package: &PackageRecord) -> Vec<String> {
    let (group, artifact) = package
        .name
        .as_str()
        .split_once(':')
        .unwrap_or(("", package.name.as_str()));
    group
        .split('.')
        .chain([artifact])
        .map(str::to_owned)
        .collect()
}

/// `packages` are those the caller can read, live, as just listed: their records are read
/// without opening each again.
async fn entries(
    registry: &Registry,
    packages: &[PackageRecord],
    folders: &[String],
) -> MavenResult<Vec<Entry>> {
    for package in packages {
        let path = folders_of(package);
        if folders.len() >= path.len() && folders[..path.len()] == path[..] {
            return package_entries(registry, package, &folders[path.len()..]).await;
        }
    }
    let mut entries: Vec<Entry> = packages
        .iter()
        .map(folders_of)
        .filter(|path| path.len() > folders.len() && path[..folders.len()] == *folders)
        .map(|path| format!("{}/", path[folders.len()]))
        .collect();
    entries.sort();
    entries.dedup();
    Ok(entries)
}

/// Inside a package's folder: its versions and metadata, or (one folder down) a version's
/// files.
async fn package_entries(
    registry: &Registry,
    package: &PackageRecord,
    below: &[String],
) -> MavenResult<Vec<Entry>> {
    let items = registry.package_items(package);
    match below {
        [] => {
            let versions = items.all::<Versions<VersionRecord>>("").await?;
            let mut entries: Vec<Entry> = versions
                .into_iter()
                .map(|version| format!("{}/", version.payload.version))
                .collect();
            if !entries.is_empty() {
                entries.push(METADATA.to_owned());
            }
            Ok(entries)
        }
        [version] => {
            let files = items.all::<Files>(&files_of_version(version)).await?;
            Ok(files.into_iter().map(|file| file.payload.file).collect())
        }
        _ => Ok(Vec::new()),
    }
}

/// The page: a heading and a list of links, escaped (names come from clients).
fn html(workspace: &Slug, folders: &[String], entries: &[Entry]) -> String {
    let mut title = format!("/maven/{workspace}/");
    for folder in folders {
        title.push_str(folder);
        title.push('/');
    }
    let title = escape(&title);
    let mut page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\n<body><h1>{title}</h1>\n<ul>\n"
    );
    if !folders.is_empty() {
        page.push_str("<li><a href=\"../\">../</a></li>\n");
    }
    for entry in entries {
        let entry = escape(entry);
        page.push_str(&format!("<li><a href=\"{entry}\">{entry}</a></li>\n"));
    }
    page.push_str("</ul></body></html>\n");
    page
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
