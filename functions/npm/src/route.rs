//! The one place where npm request paths are taken apart: `/npm/<workspace>/<rest>`. The raw
//! (still percent-encoded) path is read, so that every spelling of a scoped name clients use
//! (`@scope%2fname`, `%2F`, `%40scope%2fname`, or a raw `/`) is recognised.

use percent_encoding::percent_decode_str;
use stowage_domain::{PackageName, PackageType, Slug};

use crate::error::NpmError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /<pkg>`: the package document. `PUT /<pkg>`: publish, or a document update.
    Package {
        name: PackageName,
    },
    /// `PUT`/`DELETE /<pkg>/-rev/<rev>`: a document update, or unpublishing the package, as
    /// of the revision the client read.
    PackageRevision {
        name: PackageName,
        rev: String,
    },
    /// `GET /<pkg>/<version or tag>`: one version's manifest.
    Version {
        name: PackageName,
        version: String,
    },
    /// `GET /<pkg>/-/<file>.tgz`.
    Tarball {
        name: PackageName,
        file: String,
    },
    /// `DELETE /<pkg>/-/<file>.tgz/-rev/<rev>`: the last step of unpublishing a version.
    TarballRevision {
        name: PackageName,
        file: String,
    },
    /// `/-/package/<pkg>/dist-tags[/<tag>]`.
    DistTags {
        name: PackageName,
        tag: Option<String>,
    },
    Search,
    Whoami,
    Ping,
    /// The security audit endpoints: answered, with no advisories.
    Audit {
        quick: bool,
    },
    /// `PUT /-/user/org.couchdb.user:<name>`: the legacy login.
    Login {
        username: String,
    },
    /// `POST /-/v1/login`: web login, which this registry does not offer.
    WebLogin,
}

impl Endpoint {
    /// What the endpoint is, and the package it is about, for the request log.
    pub fn describe(&self) -> (&'static str, Option<&PackageName>) {
        match self {
            Endpoint::Package { name } | Endpoint::PackageRevision { name, .. } => {
                ("document", Some(name))
            }
            Endpoint::Version { name, .. } => ("version", Some(name)),
            Endpoint::Tarball { name, .. } | Endpoint::TarballRevision { name, .. } => {
                ("tarball", Some(name))
            }
            Endpoint::DistTags { name, .. } => ("dist-tags", Some(name)),
            Endpoint::Search => ("search", None),
            Endpoint::Whoami => ("whoami", None),
            Endpoint::Ping => ("ping", None),
            Endpoint::Audit { .. } => ("audit", None),
            Endpoint::Login { .. } | Endpoint::WebLogin => ("login", None),
        }
    }
}

/// `/npm/<workspace>/<rest>` → the workspace and the endpoint.
pub fn parse(path: &str) -> Result<(Slug, Endpoint), NpmError> {
    let rest = path.strip_prefix("/npm/").ok_or_else(NpmError::not_found)?;
    let (workspace, rest) = rest.split_once('/').unwrap_or((rest, ""));
    let workspace = Slug::parse("workspace", workspace).map_err(|_| NpmError::not_found())?;
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    if segments.iter().any(|s| is_traversal(s)) {
        return Err(NpmError::bad_request("path traversal is not allowed"));
    }
    let endpoint = match segments.first() {
        None => return Err(NpmError::not_found()),
        Some(&"-") => special(&segments[1..])?,
        Some(_) => package_endpoint(&segments)?,
    };
    Ok((workspace, endpoint))
}

fn is_traversal(segment: &str) -> bool {
    let decoded = decode(segment);
    decoded == "."
        || decoded == ".."
        || decoded.contains("/../")
        || decoded.starts_with("../")
        || decoded.ends_with("/..")
}

fn decode(segment: &str) -> String {
    percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

/// The package name at the start of `segments`, and the segments after it.
fn split_name<'a>(segments: &'a [&'a str]) -> Result<(PackageName, &'a [&'a str]), NpmError> {
    let first = decode(segments.first().ok_or_else(NpmError::not_found)?);
    let (name, rest) = if first.starts_with('@') && !first.contains('/') {
        let bare = segments.get(1).ok_or_else(NpmError::not_found)?;
        (format!("{first}/{}", decode(bare)), &segments[2..])
    } else {
        (first, &segments[1..])
    };
    let name = PackageName::parse(PackageType::Npm, "name", &name).map_err(|invalid| {
        NpmError::bad_request(format!("invalid package name: {}", invalid.message))
    })?;
    Ok((name, rest))
}

fn package_endpoint(segments: &[&str]) -> Result<Endpoint, NpmError> {
    let (name, rest) = split_name(segments)?;
    Ok(match rest {
        [] => Endpoint::Package { name },
        ["-rev", rev] => Endpoint::PackageRevision {
            name,
            rev: decode(rev),
        },
        ["-", file] => Endpoint::Tarball {
            name,
            file: decode(file),
        },
        ["-", file, "-rev", _] => Endpoint::TarballRevision {
            name,
            file: decode(file),
        },
        [version] => Endpoint::Version {
            name,
            version: decode(version),
        },
        _ => return Err(NpmError::not_found()),
    })
}

fn special(segments: &[&str]) -> Result<Endpoint, NpmError> {
    Ok(match segments {
        ["ping"] => Endpoint::Ping,
        ["whoami"] => Endpoint::Whoami,
        ["v1", "search"] => Endpoint::Search,
        ["v1", "login"] => Endpoint::WebLogin,
        ["npm", "v1", "security", "advisories", "bulk"] | ["npm", "v1", "security", "audits"] => {
            Endpoint::Audit { quick: false }
        }
        ["npm", "v1", "security", "audits", "quick"] => Endpoint::Audit { quick: true },
        ["user", user, ..] => {
            let user = decode(user);
            let username = user
                .strip_prefix("org.couchdb.user:")
                .ok_or_else(NpmError::not_found)?;
            Endpoint::Login {
                username: username.to_owned(),
            }
        }
        ["package", rest @ ..] => {
            let (name, rest) = split_name(rest)?;
            match rest {
                ["dist-tags"] => Endpoint::DistTags { name, tag: None },
                ["dist-tags", tag] => Endpoint::DistTags {
                    name,
                    tag: Some(decode(tag)),
                },
                _ => return Err(NpmError::not_found()),
            }
        }
        _ => return Err(NpmError::not_found()),
    })
}

/// The file name npm gives a version's tarball: `<name without scope>-<version>.tgz`.
pub fn tarball_file(name: &PackageName, version: &str) -> String {
    let bare = name.as_str().rsplit('/').next().unwrap_or(name.as_str());
    format!("{bare}-{version}.tgz")
}

/// The version a tarball file name is for, if it is one of this package's.
pub fn version_of_tarball(name: &PackageName, file: &str) -> Option<String> {
    let bare = name.as_str().rsplit('/').next().unwrap_or(name.as_str());
    file.strip_prefix(bare)?
        .strip_prefix('-')?
        .strip_suffix(".tgz")
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn name(s: &str) -> PackageName {
        PackageName::parse(PackageType::Npm, "name", s).expect("name")
    }

    #[test]
    fn scoped_names_in_every_spelling() {
        for path in [
            "/npm/acme/@ui%2fkit",
            "/npm/acme/@ui%2Fkit",
            "/npm/acme/%40ui%2fkit",
            "/npm/acme/@ui/kit",
        ] {
            assert_eq!(
                parse(path),
                Ok((
                    Slug::parse("w", "acme").expect("slug"),
                    Endpoint::Package {
                        name: name("@ui/kit")
                    }
                )),
                "{path}"
            );
        }
        assert_eq!(
            parse("/npm/acme/@ui/kit/-/kit-1.0.0.tgz").map(|(_, e)| e),
            Ok(Endpoint::Tarball {
                name: name("@ui/kit"),
                file: "kit-1.0.0.tgz".into()
            })
        );
        assert_eq!(
            parse("/npm/acme/@ui%2fkit/-/kit-1.0.0.tgz").map(|(_, e)| e),
            Ok(Endpoint::Tarball {
                name: name("@ui/kit"),
                file: "kit-1.0.0.tgz".into()
            })
        );
        assert_eq!(
            parse("/npm/acme/left-pad/-/left-pad-1.0.0.tgz/-rev/3-abc").map(|(_, e)| e),
            Ok(Endpoint::TarballRevision {
                name: name("left-pad"),
                file: "left-pad-1.0.0.tgz".into()
            })
        );
        assert_eq!(
            parse("/npm/acme/-/package/@ui%2fkit/dist-tags/beta").map(|(_, e)| e),
            Ok(Endpoint::DistTags {
                name: name("@ui/kit"),
                tag: Some("beta".into())
            })
        );
        assert_eq!(
            parse("/npm/acme/left-pad/latest").map(|(_, e)| e),
            Ok(Endpoint::Version {
                name: name("left-pad"),
                version: "latest".into()
            })
        );
        assert_eq!(
            parse("/npm/acme/-/user/org.couchdb.user:alice").map(|(_, e)| e),
            Ok(Endpoint::Login {
                username: "alice".into()
            })
        );
    }

    #[test]
    fn bad_paths() {
        for path in [
            "/npm/acme/Upper",
            "/npm/acme/.hidden",
            "/npm/acme/_under",
            "/npm/acme/..",
            "/npm/acme/%2e%2e/x",
            "/npm/acme/a%2f..%2fb",
        ] {
            let error = parse(path).expect_err(path);
            assert_eq!(error.status, http::StatusCode::BAD_REQUEST, "{path}");
        }
        assert_eq!(
            parse("/npm/Acme/x").expect_err("workspace").status,
            http::StatusCode::NOT_FOUND
        );
        assert_eq!(
            parse(&format!("/npm/acme/{}", "a".repeat(215)))
                .expect_err("long")
                .status,
            http::StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn tarball_names() {
        assert_eq!(
            tarball_file(&name("@ui/kit"), "1.2.3-beta.1"),
            "kit-1.2.3-beta.1.tgz"
        );
        assert_eq!(
            version_of_tarball(&name("@ui/kit"), "kit-1.2.3-beta.1.tgz").as_deref(),
            Some("1.2.3-beta.1")
        );
        assert_eq!(version_of_tarball(&name("kit"), "other-1.0.0.tgz"), None);
    }

    proptest! {
        #[test]
        fn parsing_never_panics(path in "/npm/[a-z]{1,4}/[@%a-zA-Z0-9/._-]{0,40}") {
            let _ = parse(&path);
        }
    }
}
