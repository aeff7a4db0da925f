//! `maven-metadata.xml`, generated from the repository's own records: at artifact level (the
//! versions) and at SNAPSHOT-version level (the timestamped builds). One a client uploads is
//! checked for shape and otherwise ignored: the records are the truth.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};
use stowage_service::VersionRecord;

use crate::error::MavenError;
use crate::records::MavenFile;
use crate::route::snapshot_stamp;
use crate::version::{compare, is_snapshot};

/// The largest `maven-metadata.xml` taken from a client.
pub const UPLOADED_METADATA_MAX: usize = 256 * 1024;

fn stamp(time: DateTime<Utc>) -> String {
    time.format("%Y%m%d%H%M%S").to_string()
}

type XmlWriter = Writer<Vec<u8>>;
type XmlResult = std::io::Result<()>;

fn text(writer: &mut XmlWriter, name: &str, value: &str) -> XmlResult {
    writer
        .create_element(name)
        .write_text_content(BytesText::new(value))?;
    Ok(())
}

fn document(body: impl FnOnce(&mut XmlWriter) -> XmlResult) -> Vec<u8> {
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    let written = writer
        .write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))
        .and_then(|()| body(&mut writer));
    // Writing to memory cannot fail.
    written.expect("writing XML to memory");
    let mut bytes = writer.into_inner();
    bytes.push(b'\n');
    bytes
}

/// The artifact's metadata: its versions in Maven's order, the latest and the latest release.
pub fn artifact(group: &str, artifact: &str, versions: &[VersionRecord]) -> Option<Vec<u8>> {
    let mut sorted: Vec<&VersionRecord> = versions.iter().collect();
    sorted.sort_by(|a, b| compare(&a.version, &b.version));
    let latest = sorted.last()?;
    let release = sorted.iter().rev().find(|v| !is_snapshot(&v.version));
    let updated = sorted.iter().map(|v| v.published_at).max()?;
    Some(document(|w| {
        w.create_element("metadata").write_inner_content(|w| {
            text(w, "groupId", group)?;
            text(w, "artifactId", artifact)?;
            w.create_element("versioning").write_inner_content(|w| {
                text(w, "latest", &latest.version)?;
                if let Some(release) = release {
                    text(w, "release", &release.version)?;
                }
                w.create_element("versions").write_inner_content(|w| {
                    for version in &sorted {
                        text(w, "version", &version.version)?;
                    }
                    Ok(())
                })?;
                text(w, "lastUpdated", &stamp(updated))
            })?;
            Ok(())
        })?;
        Ok(())
    }))
}

/// One deployed file of a timestamped SNAPSHOT build.
struct Build<'a> {
    timestamp: &'a str,
    number: u64,
    classifier: Option<&'a str>,
    extension: &'a str,
    uploaded_at: DateTime<Utc>,
}

fn build_of<'a>(artifact: &str, base: &str, file: &'a MavenFile) -> Option<Build<'a>> {
    let rest = file
        .file
        .strip_prefix(artifact)?
        .strip_prefix('-')?
        .strip_prefix(base)?
        .strip_prefix('-')?;
    let (timestamp, number, rest) = snapshot_stamp(rest)?;
    let (classifier, extension) = match rest.strip_prefix('-') {
        Some(classified) => {
            let (classifier, extension) = classified.split_once('.')?;
            (Some(classifier), extension)
        }
        None => (None, rest.strip_prefix('.')?),
    };
    Some(Build {
        timestamp,
        number,
        classifier,
        extension,
        uploaded_at: file.uploaded_at,
    })
}

/// A SNAPSHOT version's metadata: its latest build, and for each classifier and extension the
/// file of the latest build that has one.
pub fn snapshot(
    group: &str,
    artifact: &str,
    version: &str,
    files: &[MavenFile],
) -> Option<Vec<u8>> {
    let base = version.strip_suffix("-SNAPSHOT")?;
    let builds: Vec<Build> = files
        .iter()
        .filter_map(|f| build_of(artifact, base, f))
        .collect();
    let updated = files.iter().map(|f| f.uploaded_at).max()?;
    let latest = builds
        .iter()
        .max_by(|a, b| (a.timestamp, a.number).cmp(&(b.timestamp, b.number)));
    let mut newest: BTreeMap<(Option<&str>, &str), &Build> = BTreeMap::new();
    for build in &builds {
        let entry = newest
            .entry((build.classifier, build.extension))
            .or_insert(build);
        if (build.timestamp, build.number) > (entry.timestamp, entry.number) {
            *entry = build;
        }
    }
    Some(document(|w| {
        w.create_element("metadata")
            .with_attribute(("modelVersion", "1.1.0"))
            .write_inner_content(|w| {
                text(w, "groupId", group)?;
                text(w, "artifactId", artifact)?;
                text(w, "version", version)?;
                w.create_element("versioning").write_inner_content(|w| {
                    if let Some(latest) = latest {
                        w.create_element("snapshot").write_inner_content(|w| {
                            text(w, "timestamp", latest.timestamp)?;
                            text(w, "buildNumber", &latest.number.to_string())
                        })?;
                    }
                    text(w, "lastUpdated", &stamp(updated))?;
                    w.create_element("snapshotVersions")
                        .write_inner_content(|w| {
                            for ((classifier, extension), build) in &newest {
                                w.create_element("snapshotVersion")
                                    .write_inner_content(|w| {
                                        if let Some(classifier) = classifier {
                                            text(w, "classifier", classifier)?;
                                        }
                                        text(w, "extension", extension)?;
                                        text(
                                            w,
                                            "value",
                                            &format!("{base}-{}-{}", build.timestamp, build.number),
                                        )?;
                                        text(w, "updated", &stamp(build.uploaded_at))
                                    })?;
                            }
                            Ok(())
                        })?;
                    Ok(())
                })?;
                Ok(())
            })?;
        Ok(())
    }))
}

/// Checks a `maven-metadata.xml` a client uploads: well-formed, a `<metadata>` document, no
/// DOCTYPE (so no entity can be declared, let alone expanded), and not too large.
pub fn check_uploaded(bytes: &[u8]) -> Result<(), MavenError> {
    if bytes.len() > UPLOADED_METADATA_MAX {
        return Err(MavenError::bad_request(format!(
            "maven-metadata.xml is at most {UPLOADED_METADATA_MAX} bytes"
        )));
    }
    let invalid =
        |why: String| MavenError::bad_request(format!("invalid maven-metadata.xml: {why}"));
    let mut reader = quick_xml::Reader::from_reader(bytes);
    reader.config_mut().check_end_names = true;
    let mut buffer = Vec::new();
    let mut depth = 0usize;
    let mut root = None;
    loop {
        match reader.read_event_into(&mut buffer) {
            Ok(Event::DocType(_)) => return Err(invalid("a DOCTYPE is not allowed".into())),
            Ok(Event::Start(element)) => {
                if depth == 0 {
                    root = Some(element.name().as_ref().to_owned());
                }
                depth += 1;
            }
            Ok(Event::Empty(element)) if depth == 0 => {
                root = Some(element.name().as_ref().to_owned())
            }
            Ok(Event::End(_)) => depth = depth.saturating_sub(1),
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(error) => return Err(invalid(error.to_string())),
        }
        buffer.clear();
    }
    if depth != 0 {
        return Err(invalid("the document is not closed".into()));
    }
    if root.as_deref() != Some("metadata") {
        return Err(invalid("the root element must be <metadata>".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(v: &str) -> VersionRecord {
        VersionRecord {
            version: v.into(),
            published_at: Utc::now(),
            published_by: "t".into(),
        }
    }

    #[test]
    fn artifact_metadata_orders_versions_the_maven_way() {
        let xml = artifact(
            "com.acme",
            "lib",
            &[version("1.10"), version("1.2"), version("1.11-SNAPSHOT")],
        )
        .expect("xml");
        let xml = String::from_utf8(xml).expect("utf-8");
        assert!(
            xml.contains("<latest>1.11-SNAPSHOT</latest>")
                && xml.contains("<release>1.10</release>"),
            "{xml}"
        );
        let first = xml.find("<version>1.2</version>").expect("1.2");
        let second = xml.find("<version>1.10</version>").expect("1.10");
        assert!(first < second);
        assert!(
            check_uploaded(xml.as_bytes()).is_ok(),
            "generated metadata passes the upload check"
        );
    }

    #[test]
    fn uploads_are_checked() {
        let billion_laughs = br#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><metadata>&lol2;</metadata>"#;
        assert!(check_uploaded(billion_laughs).is_err());
        assert!(check_uploaded(b"<metadata><versioning></metadata>").is_err());
        assert!(check_uploaded(b"<project/>").is_err());
        assert!(check_uploaded(b"not xml at all <").is_err());
        assert!(check_uploaded(&vec![b' '; UPLOADED_METADATA_MAX + 1]).is_err());
        assert!(
            check_uploaded(b"<?xml version=\"1.0\"?><metadata><groupId>g</groupId></metadata>")
                .is_ok()
        );
    }
}
