//! The one place where Maven repository paths are taken apart:
//! `/maven/<workspace>/<group path>/<artifactId>/<version>/<file>`, or a `maven-metadata.xml`
//! at artifact level or (for a SNAPSHOT) at version level, each with optional checksum suffix.

use percent_encoding::percent_decode_str;
use stowage_domain::{PackageName, PackageType, Slug};

use crate::error::MavenError;
use crate::version::is_snapshot;

pub const METADATA: &str = "maven-metadata.xml";

/// A checksum file beside another file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumKind {
    Md5,
    Sha1,
    Sha256,
    Sha512,
}

impl ChecksumKind {
    const ALL: [(ChecksumKind, &'static str); 4] = [
        (ChecksumKind::Md5, ".md5"),
        (ChecksumKind::Sha1, ".sha1"),
        (ChecksumKind::Sha256, ".sha256"),
        (ChecksumKind::Sha512, ".sha512"),
    ];

    /// Splits `lib-1.0.jar.sha1` into `lib-1.0.jar` and `Sha1`.
    fn split(file: &str) -> (&str, Option<ChecksumKind>) {
        for (kind, suffix) in Self::ALL {
            if let Some(base) = file.strip_suffix(suffix) {
                return (base, Some(kind));
            }
        }
        (file, None)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A file in a version folder.
    File { version: String, file: String },
    /// `<artifact>/maven-metadata.xml`.
    ArtifactMetadata,
    /// `<artifact>/<x-SNAPSHOT>/maven-metadata.xml`.
    VersionMetadata { version: String },
    /// `<artifact>/<version>/`: a version's folder, which a DELETE removes.
    VersionFolder { version: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MavenPath {
    pub workspace: Slug,
    /// `groupId:artifactId`.
    pub package: PackageName,
    pub group: String,
    pub artifact: String,
    pub target: Target,
    pub checksum: Option<ChecksumKind>,
}

/// The longest path segment taken: versions and file names are parts of records' keys.
const SEGMENT_MAX: usize = 255;

fn segment(raw: &str) -> Result<String, MavenError> {
    let decoded = percent_decode_str(raw).decode_utf8_lossy().into_owned();
    if decoded.len() > SEGMENT_MAX {
        return Err(MavenError::bad_request(format!(
            "a path segment is at most {SEGMENT_MAX} characters"
        )));
    }
    let valid = !decoded.is_empty()
        && decoded != "."
        && decoded != ".."
        && decoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+'));
    if valid {
        Ok(decoded)
    } else {
        Err(MavenError::bad_request(format!(
            "invalid path segment {decoded:?}"
        )))
    }
}

/// A folder to list: `/maven/<workspace>/<folders…>/` (with its trailing slash), as the
/// workspace and the folders below it. `None` for anything else.
pub fn parse_folder(path: &str) -> Option<Result<(Slug, Vec<String>), MavenError>> {
    let rest = path.strip_prefix("/maven/")?.strip_suffix('/')?;
    let (workspace, folders) = rest.split_once('/').unwrap_or((rest, ""));
    let Ok(workspace) = Slug::parse("workspace", workspace) else {
        return Some(Err(MavenError::not_found()));
    };
    if folders.is_empty() {
        return Some(Ok((workspace, Vec::new())));
    }
    Some(
        folders
            .split('/')
            .map(segment)
            .collect::<Result<Vec<_>, _>>()
            .map(|folders| (workspace, folders)),
    )
}

/// Parses `/maven/<workspace>/<…>`.
pub fn parse(path: &str) -> Result<MavenPath, MavenError> {
    let rest = path
        .strip_prefix("/maven/")
        .ok_or_else(MavenError::not_found)?;
    let (workspace, rest) = rest.split_once('/').ok_or_else(MavenError::not_found)?;
    let workspace = Slug::parse("workspace", workspace).map_err(|_| MavenError::not_found())?;
    let (rest, folder) = match rest.strip_suffix('/') {
        Some(folder) => (folder, true),
        None => (rest, false),
    };
    let segments = rest
        .split('/')
        .map(segment)
        .collect::<Result<Vec<_>, _>>()?;
    let n = segments.len();
    if folder {
        if n < 3 {
            return Err(MavenError::not_found());
        }
        let target = Target::VersionFolder {
            version: segments[n - 1].clone(),
        };
        return package_path(
            workspace,
            &segments[..n - 2],
            &segments[n - 2],
            target,
            None,
        );
    }
    let (last, checksum) = ChecksumKind::split(&segments[n - 1]);
    let last = last.to_owned();
    let (group, artifact, target) = if last == METADATA {
        if n >= 4 && is_snapshot(&segments[n - 2]) {
            (
                &segments[..n - 3],
                &segments[n - 3],
                Target::VersionMetadata {
                    version: segments[n - 2].clone(),
                },
            )
        } else if n >= 3 {
            (
                &segments[..n - 2],
                &segments[n - 2],
                Target::ArtifactMetadata,
            )
        } else {
            return Err(MavenError::not_found());
        }
    } else if n >= 4 {
        let version = segments[n - 2].clone();
        check_file_name(&segments[n - 3], &version, &last)?;
        (
            &segments[..n - 3],
            &segments[n - 3],
            Target::File {
                version,
                file: last,
            },
        )
    } else {
        return Err(MavenError::bad_request(
            "a file goes in <group>/<artifactId>/<version>/",
        ));
    };
    package_path(workspace, group, artifact, target, checksum)
}

/// The package a path is in, from its group folders and artifactId.
fn package_path(
    workspace: Slug,
    group: &[String],
    artifact: &str,
    target: Target,
    checksum: Option<ChecksumKind>,
) -> Result<MavenPath, MavenError> {
    // A groupId's dots are folders, so `com/acme` and `com.acme` would name one package twice.
    if let Some(dotted) = group.iter().find(|segment| segment.contains('.')) {
        return Err(MavenError::bad_request(format!(
            "{dotted:?}: the dots of a groupId are folders in the path ({})",
            dotted.replace('.', "/")
        )));
    }
    let group = group.join(".");
    let coordinates = format!("{group}:{artifact}");
    let package =
        PackageName::parse(PackageType::Maven, "coordinates", &coordinates).map_err(|invalid| {
            MavenError::bad_request(format!(
                "invalid coordinates {coordinates}: {}",
                invalid.message
            ))
        })?;
    Ok(MavenPath {
        workspace,
        package,
        group,
        artifact: artifact.to_owned(),
        target,
        checksum,
    })
}

/// A file in a version folder must be that artifact's, of that version:
/// `<artifactId>-<version>[-<classifier>].<ext>`, a SNAPSHOT's version possibly timestamped.
fn check_file_name(artifact: &str, version: &str, file: &str) -> Result<(), MavenError> {
    let wrong = || MavenError::bad_request(format!("{file} is not a file of {artifact} {version}"));
    let rest = file
        .strip_prefix(artifact)
        .and_then(|r| r.strip_prefix('-'))
        .ok_or_else(wrong)?;
    let after_version = match rest.strip_prefix(version) {
        Some(after) => after,
        None if is_snapshot(version) => {
            let base = version.trim_end_matches("-SNAPSHOT");
            let stamped = rest
                .strip_prefix(base)
                .and_then(|r| r.strip_prefix('-'))
                .ok_or_else(wrong)?;
            snapshot_stamp(stamped)
                .map(|(_, _, after)| after)
                .ok_or_else(wrong)?
        }
        None => return Err(wrong()),
    };
    if after_version.starts_with('.') || after_version.starts_with('-') {
        Ok(())
    } else {
        Err(wrong())
    }
}

/// `20261126.223152-1<rest>` → the timestamp, the build number and the rest.
pub fn snapshot_stamp(text: &str) -> Option<(&str, u64, &str)> {
    let (date, rest) = text.split_at_checked(8)?;
    let rest = rest.strip_prefix('.')?;
    let (time, rest) = rest.split_at_checked(6)?;
    let rest = rest.strip_prefix('-')?;
    if !date.bytes().chain(time.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let build = rest[..digits].parse().ok()?;
    Some((&text[..15], build, &rest[digits..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(path: &str) -> Target {
        parse(path).expect(path).target
    }

    #[test]
    fn paths() {
        let parsed = parse("/maven/acme/com/acme/lib/1.0/lib-1.0.jar").expect("file");
        assert_eq!(
            (parsed.group.as_str(), parsed.artifact.as_str()),
            ("com.acme", "lib")
        );
        assert_eq!(parsed.package.as_str(), "com.acme:lib");
        assert_eq!(
            parsed.target,
            Target::File {
                version: "1.0".into(),
                file: "lib-1.0.jar".into()
            }
        );
        assert_eq!(
            parse("/maven/acme/com/acme/lib/1.0/lib-1.0-sources.jar.sha1")
                .expect("checksum")
                .checksum,
            Some(ChecksumKind::Sha1)
        );
        assert_eq!(
            target("/maven/acme/com/acme/lib/maven-metadata.xml"),
            Target::ArtifactMetadata
        );
        assert_eq!(
            target("/maven/acme/com/acme/lib/1.1-SNAPSHOT/maven-metadata.xml.md5"),
            Target::VersionMetadata {
                version: "1.1-SNAPSHOT".into()
            }
        );
        assert_eq!(
            target("/maven/acme/com/acme/lib/1.1-SNAPSHOT/lib-1.1-20261126.223152-3.jar"),
            Target::File {
                version: "1.1-SNAPSHOT".into(),
                file: "lib-1.1-20261126.223152-3.jar".into()
            }
        );
        assert!(parse("/maven/acme/com/acme/lib/1.1-SNAPSHOT/lib-1.1-SNAPSHOT.pom").is_ok());
        assert_eq!(
            target("/maven/acme/com/acme/lib/1.0/"),
            Target::VersionFolder {
                version: "1.0".into()
            }
        );
        // An artifactId may have dots; only the group's are folders.
        let dotted = parse("/maven/acme/org/eclipse/org.eclipse.core/3.1/org.eclipse.core-3.1.jar")
            .expect("dotted artifactId");
        assert_eq!(dotted.package.as_str(), "org.eclipse:org.eclipse.core");
    }

    #[test]
    fn bad_paths() {
        for path in [
            "/maven/acme/com/acme/lib/1.0/other-1.0.jar",
            "/maven/acme/com/acme/lib/1.0/lib-2.0.jar",
            "/maven/acme/com/acme/lib/1.0/lib-1.0x.jar",
            "/maven/acme/com/../lib/1.0/lib-1.0.jar",
            "/maven/acme/com/acme/lib/%2e%2e/lib-1.0.jar",
            "/maven/acme/com/acme%2flib/1.0/lib-1.0.jar",
            "/maven/acme/com//lib/1.0/lib-1.0.jar",
            "/maven/acme/lib-1.0.jar",
            "/maven/acme/com.acme/lib/1.0/lib-1.0.jar",
            "/maven/acme/com.acme/lib/maven-metadata.xml",
            "/maven/acme/com/acme/lib/1.1-SNAPSHOT/lib-1.1-2026.223152-1.jar",
        ] {
            assert_eq!(
                parse(path).expect_err(path).status,
                http::StatusCode::BAD_REQUEST,
                "{path}"
            );
        }
    }

    #[test]
    fn snapshot_stamps() {
        assert_eq!(
            snapshot_stamp("20261126.223152-12.jar"),
            Some(("20261126.223152", 12, ".jar"))
        );
        assert_eq!(snapshot_stamp("20261126.223152-x"), None);
        assert_eq!(snapshot_stamp("2026112.223152-1"), None);
    }
}
