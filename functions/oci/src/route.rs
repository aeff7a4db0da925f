//! The one place where the path after `/v2/` is taken apart. Image names contain `/`, which
//! axum's router cannot match in the middle of a path, so the endpoint is found from the end.

use stowage_domain::{Digest, PackageName, PackageType, Slug};
use stowage_service::{ItemKey, RecordKind};

use crate::error::OciError;

/// OCI's limit on a repository name (`<workspace>/<path>`).
const NAME_MAX: usize = 255;
const TAG_MAX: usize = 128;

/// An image name, `<workspace>/<path>`: the package `path` in workspace `workspace`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageName {
    pub workspace: Slug,
    pub path: PackageName,
}

impl ImageName {
    pub fn parse(name: &str) -> Result<Self, OciError> {
        if name.len() > NAME_MAX {
            return Err(OciError::name_invalid(format!(
                "a name is at most {NAME_MAX} characters"
            )));
        }
        let (workspace, path) = name
            .split_once('/')
            .ok_or_else(|| OciError::name_invalid("a name is <workspace>/<image path>"))?;
        let workspace = Slug::parse("name", workspace)
            .map_err(|invalid| OciError::name_invalid(invalid.message))?;
        let path = PackageName::parse(PackageType::Container, "name", path)
            .map_err(|invalid| OciError::name_invalid(invalid.message))?;
        Ok(Self { workspace, path })
    }

    /// The repository an image through an upstream is cached in, and its name upstream:
    /// `hub/library/alpine` is `library/alpine` through repository `hub`'s upstreams.
    pub fn upstream_image(&self) -> Option<(&str, &str)> {
        self.path.as_str().split_once('/')
    }

    pub fn full(&self) -> String {
        format!("{}/{}", self.workspace, self.path)
    }

    /// The record `id` of kind `K` of this image's package, to read with the package.
    pub fn item<K: RecordKind>(&self, id: &str) -> ItemKey {
        ItemKey::in_package::<K>(&self.workspace, PackageType::Container, &self.path, id)
    }
}

/// A manifest reference: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    Digest(Digest),
    /// Outside the tag grammar: no manifest can have it, so a read or a delete finds nothing
    /// (404, as the spec wants) and a push is refused (`TAG_INVALID`).
    InvalidTag(String),
}

impl Reference {
    pub fn parse(reference: &str) -> Result<Self, OciError> {
        if reference.contains(':') {
            return Digest::parse("reference", reference)
                .map(Reference::Digest)
                .map_err(|invalid| OciError::digest_invalid(invalid.message));
        }
        Ok(match parse_tag(reference) {
            Ok(tag) => Reference::Tag(tag),
            Err(_) => Reference::InvalidTag(reference.to_owned()),
        })
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reference::Tag(tag) | Reference::InvalidTag(tag) => f.write_str(tag),
            Reference::Digest(digest) => f.write_str(digest.as_str()),
        }
    }
}

/// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`, the spec's tag grammar.
pub fn parse_tag(tag: &str) -> Result<String, OciError> {
    let bytes = tag.as_bytes();
    let valid = !bytes.is_empty()
        && bytes.len() <= TAG_MAX
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if valid {
        Ok(tag.to_owned())
    } else {
        Err(OciError::tag_invalid(tag))
    }
}

/// What a request under `/v2/` is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `/v2/`: the API version check.
    Ping,
    /// `/v2/token`: the token endpoint of the Docker token flow.
    Token,
    /// `/v2/_catalog`: the images the caller can read.
    Catalog,
    Manifest {
        name: ImageName,
        reference: Reference,
    },
    Blob {
        name: ImageName,
        digest: Digest,
    },
    /// `/v2/<name>/blobs/uploads/`: starts an upload.
    Uploads {
        name: ImageName,
    },
    Upload {
        name: ImageName,
        id: String,
    },
    /// `/v2/<workspace>/-/fetches/<capability>`: a read a Lambda handed over to the upload
    /// service ([`stowage_http::handover`]), a blob through an upstream.
    HandedOver {
        workspace: Slug,
        capability: String,
    },
    Tags {
        name: ImageName,
    },
    Referrers {
        name: ImageName,
        digest: Digest,
    },
}

impl Endpoint {
    /// Parses the path after `/v2/` (no leading slash).
    pub fn parse(tail: &str) -> Result<Self, OciError> {
        if tail.is_empty() {
            return Ok(Endpoint::Ping);
        }
        if tail == "token" {
            return Ok(Endpoint::Token);
        }
        if tail == "_catalog" {
            return Ok(Endpoint::Catalog);
        }
        if let Some(name) = tail.strip_suffix("/tags/list") {
            return Ok(Endpoint::Tags {
                name: ImageName::parse(name)?,
            });
        }
        if let Some(name) = tail
            .strip_suffix("/blobs/uploads/")
            .or_else(|| tail.strip_suffix("/blobs/uploads"))
        {
            return Ok(Endpoint::Uploads {
                name: ImageName::parse(name)?,
            });
        }
        if let Some((workspace, capability)) = tail.split_once("/-/fetches/")
            && !workspace.contains('/')
        {
            return Ok(Endpoint::HandedOver {
                workspace: Slug::parse("name", workspace)
                    .map_err(|invalid| OciError::name_invalid(invalid.message))?,
                capability: capability.to_owned(),
            });
        }
        if let Some((name, id)) = tail.rsplit_once("/blobs/uploads/") {
            return Ok(Endpoint::Upload {
                name: ImageName::parse(name)?,
                id: id.to_owned(),
            });
        }
        if let Some((name, reference)) = split_last(tail, "/manifests/") {
            return Ok(Endpoint::Manifest {
                name: ImageName::parse(name)?,
                reference: Reference::parse(reference)?,
            });
        }
        if let Some((name, digest)) = split_last(tail, "/blobs/") {
            return Ok(Endpoint::Blob {
                name: ImageName::parse(name)?,
                digest: parse_digest(digest)?,
            });
        }
        if let Some((name, digest)) = split_last(tail, "/referrers/") {
            return Ok(Endpoint::Referrers {
                name: ImageName::parse(name)?,
                digest: parse_digest(digest)?,
            });
        }
        Err(OciError::not_found_route())
    }

    /// What the endpoint is, for the request log.
    pub fn operation(&self) -> &'static str {
        match self {
            Endpoint::Ping => "ping",
            Endpoint::Token => "token",
            Endpoint::Catalog => "catalog",
            Endpoint::Manifest { .. } => "manifest",
            Endpoint::Blob { .. } | Endpoint::HandedOver { .. } => "blob",
            Endpoint::Uploads { .. } | Endpoint::Upload { .. } => "upload",
            Endpoint::Tags { .. } => "tags",
            Endpoint::Referrers { .. } => "referrers",
        }
    }

    /// The image the request is about, if any.
    pub fn name(&self) -> Option<&ImageName> {
        match self {
            Endpoint::Ping | Endpoint::Token | Endpoint::Catalog | Endpoint::HandedOver { .. } => {
                None
            }
            Endpoint::Manifest { name, .. }
            | Endpoint::Blob { name, .. }
            | Endpoint::Uploads { name }
            | Endpoint::Upload { name, .. }
            | Endpoint::Tags { name }
            | Endpoint::Referrers { name, .. } => Some(name),
        }
    }
}

/// Splits at the last `separator` whose remainder holds no further `/`.
fn split_last<'a>(tail: &'a str, separator: &str) -> Option<(&'a str, &'a str)> {
    let (name, rest) = tail.rsplit_once(separator)?;
    (!rest.is_empty() && !rest.contains('/')).then_some((name, rest))
}

pub fn parse_digest(value: &str) -> Result<Digest, OciError> {
    Digest::parse("digest", value).map_err(|invalid| OciError::digest_invalid(invalid.message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn digest() -> String {
        format!("sha256:{}", "a".repeat(64))
    }

    #[test]
    fn endpoints() {
        assert_eq!(Endpoint::parse(""), Ok(Endpoint::Ping));
        let name = ImageName::parse("acme/api/server").expect("name");
        assert_eq!(
            Endpoint::parse("acme/api/server/manifests/1.2"),
            Ok(Endpoint::Manifest {
                name: name.clone(),
                reference: Reference::Tag("1.2".into())
            })
        );
        assert!(matches!(
            Endpoint::parse(&format!("acme/api/server/manifests/{}", digest())),
            Ok(Endpoint::Manifest {
                reference: Reference::Digest(_),
                ..
            })
        ));
        assert_eq!(
            Endpoint::parse("acme/api/server/blobs/uploads/"),
            Ok(Endpoint::Uploads { name: name.clone() })
        );
        assert_eq!(
            Endpoint::parse("acme/api/server/blobs/uploads/abc-123"),
            Ok(Endpoint::Upload {
                name: name.clone(),
                id: "abc-123".into()
            })
        );
        assert_eq!(
            Endpoint::parse("acme/api/server/tags/list"),
            Ok(Endpoint::Tags { name: name.clone() })
        );
        // Path components may themselves be called like endpoints.
        let odd = ImageName::parse("acme/manifests/blobs").expect("name");
        assert_eq!(
            Endpoint::parse("acme/manifests/blobs/manifests/latest"),
            Ok(Endpoint::Manifest {
                name: odd,
                reference: Reference::Tag("latest".into())
            })
        );
    }

    #[test]
    fn bad_names_tags_and_digests() {
        for (path, code) in [
            ("acme/Api/manifests/latest", "NAME_INVALID"),
            ("acme//x/manifests/latest", "NAME_INVALID"),
            ("acme/../x/manifests/latest", "NAME_INVALID"),
            ("Acme/x/manifests/latest", "NAME_INVALID"),
            ("acme/manifests/latest", "NAME_INVALID"),
            ("acme/x/manifests/sha256:abc", "DIGEST_INVALID"),
            ("acme/x/blobs/md5:abc", "DIGEST_INVALID"),
        ] {
            let error = Endpoint::parse(path).expect_err(path);
            assert_eq!(error.code.as_str(), code, "{path}");
        }
        let long = format!("acme/{}/manifests/latest", "a".repeat(260));
        assert_eq!(
            Endpoint::parse(&long).expect_err("long").code.as_str(),
            "NAME_INVALID"
        );
        assert_eq!(
            Endpoint::parse("acme/x/manifests/-bad"),
            Ok(Endpoint::Manifest {
                name: ImageName::parse("acme/x").expect("name"),
                reference: Reference::InvalidTag("-bad".into())
            })
        );
        assert!(parse_tag(&"t".repeat(128)).is_ok());
        assert!(parse_tag(&"t".repeat(129)).is_err());
    }

    proptest! {
        #[test]
        fn parsing_never_panics(tail in "[a-z0-9/:._-]{0,80}") {
            let _ = Endpoint::parse(&tail);
        }

        #[test]
        fn valid_names_round_trip(ws in "[a-z0-9]{1,8}", path in "[a-z0-9]{1,6}(/[a-z0-9]{1,6}){0,3}", tag in "[a-zA-Z0-9_][a-zA-Z0-9._-]{0,20}") {
            let parsed = Endpoint::parse(&format!("{ws}/{path}/manifests/{tag}")).expect("valid");
            let Endpoint::Manifest { name, reference } = parsed else { panic!("not a manifest") };
            prop_assert_eq!(name.full(), format!("{ws}/{path}"));
            prop_assert_eq!(reference, Reference::Tag(tag));
        }
    }
}
