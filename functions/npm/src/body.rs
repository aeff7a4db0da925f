//! Reading a package document as it streams in (`PUT /<pkg>`). A publish carries its tarball
//! base64-encoded inside the JSON, so the document is never held whole: the tarball is decoded
//! and handed on as it arrives, the versions the package already has are read for their
//! deprecation alone, and everything else is bounded.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use std::rc::Rc;

use base64::engine::general_purpose::STANDARD;
use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use struson::reader::{JsonReader, JsonStreamReader, ReaderError, TransferError};
use struson::writer::{JsonStreamWriter, JsonWriter};

/// The most a document may hold besides its tarball's data.
pub const DOCUMENT_MAX: u64 = 16 * 1024 * 1024;
/// The most the manifest of a new version may take as sent (its readme included).
pub const NEW_VERSION_MAX: usize = 8 * 1024 * 1024;
/// The tarball is handed on in pieces of this size.
const TARBALL_PIECE: usize = 256 * 1024;

/// What a document says, as far as the registry listens.
#[derive(Debug, Default)]
pub struct Document {
    pub rev: Option<String>,
    pub name: Option<String>,
    pub dist_tags: Option<BTreeMap<String, String>>,
    /// The versions the package has that the document lists, each with the deprecation it
    /// carries.
    pub listed: BTreeMap<String, Option<String>>,
    /// A version the package does not have, with its manifest as sent (JSON).
    pub added: Option<(String, Vec<u8>)>,
    pub attachment: Option<Attachment>,
}

/// The tarball attached to a document.
#[derive(Debug)]
pub struct Attachment {
    pub file: String,
    /// The length the document announces.
    pub length: Option<u64>,
}

/// Why a document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("{0}")]
    Invalid(String),
    #[error("a document may hold at most {DOCUMENT_MAX} bytes besides its tarball")]
    TooLarge,
    #[error("the request body broke off: {0}")]
    Broken(io::Error),
    /// The tarball's bytes were refused where they were handed on (whose error says why).
    #[error("the tarball could not be stored")]
    Refused,
}

/// A listed version: only its deprecation is read; the rest is skipped unread.
#[derive(Deserialize)]
struct Listed {
    #[serde(default)]
    deprecated: Option<String>,
}

/// How a read of the body went, seen from outside the JSON reader (whose errors cannot say).
#[derive(Default)]
struct Meter {
    /// Bytes read that count against [`DOCUMENT_MAX`].
    charged: Cell<u64>,
    /// False while the tarball's data is read: it is bounded by the request's limit alone.
    charging: Cell<bool>,
    over: Cell<bool>,
    broken: Cell<bool>,
    refused: Cell<bool>,
}

/// The request body, metered.
struct Metered<R> {
    inner: R,
    meter: Rc<Meter>,
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self
            .inner
            .read(buf)
            .inspect_err(|_| self.meter.broken.set(true))?;
        if self.meter.charging.get() {
            let charged = self.meter.charged.get() + read as u64;
            self.meter.charged.set(charged);
            if charged > DOCUMENT_MAX {
                self.meter.over.set(true);
                return Err(io::Error::other("document too large"));
            }
        }
        Ok(read)
    }
}

/// A JSON value copied out, up to a bound.
struct Bounded {
    bytes: Vec<u8>,
    max: usize,
}

impl io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.bytes.len() + buf.len() > self.max {
            return Err(io::Error::other("value too large"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

type Json<R> = JsonStreamReader<Metered<R>>;

/// Reads a document from `body`. `known` are the versions the package has. The tarball's
/// bytes go to `tarball` as they are decoded.
pub fn read_document(
    body: impl Read,
    known: &BTreeSet<String>,
    tarball: &mut dyn FnMut(Bytes) -> io::Result<()>,
) -> Result<Document, BodyError> {
    let meter = Rc::new(Meter::default());
    meter.charging.set(true);
    let mut json = JsonStreamReader::new(Metered {
        inner: body,
        meter: Rc::clone(&meter),
    });
    let mut document = Document::default();
    read_top_level(&mut json, known, tarball, &meter, &mut document)
        .map_err(|error| explain(&meter, error))?;
    json.consume_trailing_whitespace()
        .map_err(|error| explain(&meter, Invalid::from(error)))?;
    Ok(document)
}

/// An error inside the reading, before it is told apart by the meter.
struct Invalid(String);

impl From<ReaderError> for Invalid {
    fn from(error: ReaderError) -> Self {
        Self(format!("the document is not what npm sends: {error}"))
    }
}

impl From<TransferError> for Invalid {
    fn from(error: TransferError) -> Self {
        Self(format!("the document is not what npm sends: {error}"))
    }
}

impl From<struson::serde::DeserializerError> for Invalid {
    fn from(error: struson::serde::DeserializerError) -> Self {
        Self(format!("the document is not what npm sends: {error}"))
    }
}

fn explain(meter: &Meter, error: Invalid) -> BodyError {
    if meter.over.get() {
        BodyError::TooLarge
    } else if meter.refused.get() {
        BodyError::Refused
    } else if meter.broken.get() {
        BodyError::Broken(io::Error::other(error.0))
    } else {
        BodyError::Invalid(error.0)
    }
}

fn read_top_level<R: Read>(
    json: &mut Json<R>,
    known: &BTreeSet<String>,
    tarball: &mut dyn FnMut(Bytes) -> io::Result<()>,
    meter: &Meter,
    document: &mut Document,
) -> Result<(), Invalid> {
    json.begin_object()?;
    while json.has_next()? {
        match json.next_name_owned()?.as_str() {
            "_rev" => document.rev = Some(json.next_string()?),
            "name" => document.name = Some(json.next_string()?),
            "dist-tags" => document.dist_tags = Some(json.deserialize_next()?),
            "versions" => read_versions(json, known, document)?,
            "_attachments" => read_attachments(json, tarball, meter, document)?,
            _ => json.skip_value()?,
        }
    }
    json.end_object()?;
    Ok(())
}

fn read_versions<R: Read>(
    json: &mut Json<R>,
    known: &BTreeSet<String>,
    document: &mut Document,
) -> Result<(), Invalid> {
    json.begin_object()?;
    while json.has_next()? {
        let version = json.next_name_owned()?;
        if known.contains(&version) {
            let listed: Listed = json.deserialize_next()?;
            document.listed.insert(version, listed.deprecated);
            continue;
        }
        if let Some((added, _)) = &document.added {
            return Err(Invalid(format!(
                "the document adds versions {added} and {version}: a publish carries exactly one version"
            )));
        }
        let mut copy = JsonStreamWriter::new(Bounded {
            bytes: Vec::new(),
            max: NEW_VERSION_MAX,
        });
        json.transfer_to(&mut copy).map_err(|error| match error {
            TransferError::WriterError(_) => Invalid(format!(
                "the manifest of version {version} is over {NEW_VERSION_MAX} bytes"
            )),
            other => Invalid::from(other),
        })?;
        let manifest = copy
            .finish_document()
            .map_err(|error| Invalid(error.to_string()))?
            .bytes;
        document.added = Some((version, manifest));
    }
    json.end_object()?;
    Ok(())
}

fn read_attachments<R: Read>(
    json: &mut Json<R>,
    tarball: &mut dyn FnMut(Bytes) -> io::Result<()>,
    meter: &Meter,
    document: &mut Document,
) -> Result<(), Invalid> {
    json.begin_object()?;
    while json.has_next()? {
        let file = json.next_name_owned()?;
        if document.attachment.is_some() {
            return Err(Invalid("a publish carries exactly one tarball".into()));
        }
        let mut attachment = Attachment { file, length: None };
        json.begin_object()?;
        while json.has_next()? {
            match json.next_name_owned()?.as_str() {
                "data" => {
                    meter.charging.set(false);
                    let streamed = stream_data(json, tarball, meter);
                    meter.charging.set(true);
                    streamed?;
                }
                "length" => {
                    let length = json.next_number::<u64>()?.map_err(|_| {
                        Invalid("the tarball's length is not a whole number".into())
                    })?;
                    attachment.length = Some(length);
                }
                _ => json.skip_value()?,
            }
        }
        json.end_object()?;
        document.attachment = Some(attachment);
    }
    json.end_object()?;
    Ok(())
}

/// Decodes the attachment's base64 data and hands it on, a piece at a time.
fn stream_data<R: Read>(
    json: &mut Json<R>,
    tarball: &mut dyn FnMut(Bytes) -> io::Result<()>,
    meter: &Meter,
) -> Result<(), Invalid> {
    let text = json.next_string_reader()?;
    let mut decoded = base64::read::DecoderReader::new(text, &STANDARD);
    loop {
        let mut piece = BytesMut::zeroed(TARBALL_PIECE);
        let filled = fill(&mut decoded, &mut piece)
            .map_err(|error| Invalid(format!("the tarball's data is not base64 text: {error}")))?;
        if filled == 0 {
            return Ok(());
        }
        piece.truncate(filled);
        tarball(piece.freeze()).map_err(|_| {
            meter.refused.set(true);
            Invalid("the tarball was refused".into())
        })?;
    }
}

/// Reads until `buffer` is full or the reader ends; how much was read.
fn fill(reader: &mut impl Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use serde_json::json;

    use super::*;

    fn read(body: &[u8], known: &[&str]) -> (Result<Document, BodyError>, Vec<u8>) {
        let known = known.iter().map(|v| (*v).to_owned()).collect();
        let mut tarball = Vec::new();
        let document = read_document(body, &known, &mut |piece| {
            tarball.extend_from_slice(&piece);
            Ok(())
        });
        (document, tarball)
    }

    #[test]
    fn a_publish_streams_its_tarball_and_keeps_the_new_manifest() {
        let data: Vec<u8> = (0..700_000u32).map(|i| (i * 31 % 251) as u8).collect();
        let body = json!({
            "_id": "left-pad",
            "name": "left-pad",
            "dist-tags": { "latest": "1.1.0" },
            "versions": {
                "1.0.0": { "name": "left-pad", "deprecated": "old", "readme": "x".repeat(1000) },
                "1.1.0": { "name": "left-pad", "version": "1.1.0" },
            },
            "_attachments": { "left-pad-1.1.0.tgz": {
                "content_type": "application/octet-stream",
                "data": STANDARD.encode(&data),
                "length": data.len(),
            }},
        })
        .to_string();
        let (document, tarball) = read(body.as_bytes(), &["1.0.0"]);
        let document = document.expect("document");
        assert_eq!(tarball, data);
        assert_eq!(document.name.as_deref(), Some("left-pad"));
        assert_eq!(document.listed["1.0.0"].as_deref(), Some("old"));
        let (version, manifest) = document.added.expect("added");
        assert_eq!(version, "1.1.0");
        let manifest: serde_json::Value = serde_json::from_slice(&manifest).expect("json");
        assert_eq!(manifest["version"], "1.1.0");
        let attachment = document.attachment.expect("attachment");
        assert_eq!(
            (attachment.file.as_str(), attachment.length),
            ("left-pad-1.1.0.tgz", Some(700_000))
        );
    }

    #[test]
    fn bad_documents_are_refused_with_a_reason() {
        for (body, expected) in [
            ("[1]", "not what npm sends"),
            (
                "{\"versions\": {\"2.0.0\": {}, \"3.0.0\": {}}}",
                "exactly one version",
            ),
            (
                "{\"_attachments\": {\"a.tgz\": {\"data\": \"!!\"}}}",
                "not base64",
            ),
            (
                "{\"_attachments\": {\"a.tgz\": {}, \"b.tgz\": {}}}",
                "exactly one tarball",
            ),
            (
                "{\"versions\": {\"1.0.0\": {\"deprecated\": 3}}}",
                "not what npm sends",
            ),
            ("{\"name\": \"x\"} trailing", "not what npm sends"),
        ] {
            let (document, _) = read(body.as_bytes(), &["1.0.0"]);
            match document {
                Err(BodyError::Invalid(message)) => {
                    assert!(message.contains(expected), "{body}: {message}")
                }
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn everything_but_the_tarball_is_bounded() {
        let long = format!(
            "{{\"name\": \"{}\"}}",
            "a".repeat(DOCUMENT_MAX as usize + 10)
        );
        assert!(matches!(
            read(long.as_bytes(), &[]).0,
            Err(BodyError::TooLarge)
        ));
        let big_manifest = format!(
            "{{\"versions\": {{\"1.0.0\": {{\"readme\": \"{}\"}}}}}}",
            "a".repeat(NEW_VERSION_MAX)
        );
        assert!(matches!(
            read(big_manifest.as_bytes(), &[]).0,
            Err(BodyError::Invalid(message)) if message.contains("over")
        ));
        // A large tarball is not charged to the document.
        let data = vec![7u8; DOCUMENT_MAX as usize + 1024];
        let body = format!(
            "{{\"_attachments\": {{\"a.tgz\": {{\"data\": \"{}\"}}}}}}",
            STANDARD.encode(&data)
        );
        let (document, tarball) = read(body.as_bytes(), &[]);
        assert!(document.is_ok());
        assert_eq!(tarball.len(), data.len());
    }

    #[test]
    fn a_refused_tarball_stops_the_reading() {
        let body = format!(
            "{{\"_attachments\": {{\"a.tgz\": {{\"data\": \"{}\"}}}}}}",
            STANDARD.encode(vec![1u8; 1024])
        );
        let known = BTreeSet::new();
        let result = read_document(body.as_bytes(), &known, &mut |_| {
            Err(io::Error::other("storage full"))
        });
        assert!(matches!(result, Err(BodyError::Refused)));
    }
}
