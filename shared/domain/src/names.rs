//! Validated names. Each type can only be built through its parser, so a value that exists is
//! valid: handlers and storage never re-check.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Invalid;

const SLUG_MAX: usize = 62;
const USERNAME_MAX: usize = 64;
const EMAIL_MAX: usize = 254;
/// OCI clients reject a repository name over 255 characters; the workspace slug and a `/`
/// take up to 63 of them.
const CONTAINER_PATH_MAX: usize = 255 - SLUG_MAX - 1;
const NPM_NAME_MAX: usize = 214;
const MAVEN_PART_MAX: usize = 255;

macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

/// A workspace or repository slug: lowercase letters, digits and `-`, 1 to 62 characters,
/// starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Slug(String);
string_newtype!(Slug);

impl Slug {
    pub fn parse(field: &'static str, value: &str) -> Result<Self, Invalid> {
        let bad = |why: &str| Invalid::new(field, format!("{why} (got {value:?})"));
        if value.is_empty() || value.len() > SLUG_MAX {
            return Err(bad("must be 1 to 62 characters"));
        }
        if !value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(bad("may contain only lowercase letters, digits and '-'"));
        }
        if value.starts_with('-') {
            return Err(bad("must start with a letter or digit"));
        }
        Ok(Self(value.to_owned()))
    }
}

impl TryFrom<String> for Slug {
    type Error = Invalid;
    fn try_from(value: String) -> Result<Self, Invalid> {
        Self::parse("slug", &value)
    }
}

impl From<Slug> for String {
    fn from(value: Slug) -> Self {
        value.0
    }
}

/// A user's login name: lowercase letters, digits, `.`, `_` and `-`, 1 to 64 characters,
/// starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);
string_newtype!(Username);

impl Username {
    /// The site administrator created when a store is first started.
    pub const SITE_ADMIN: &'static str = "admin";

    pub fn parse(field: &'static str, value: &str) -> Result<Self, Invalid> {
        let bad = |why: &str| Invalid::new(field, format!("{why} (got {value:?})"));
        if value.is_empty() || value.len() > USERNAME_MAX {
            return Err(bad("must be 1 to 64 characters"));
        }
        if !value.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        }) {
            return Err(bad(
                "may contain only lowercase letters, digits, '.', '_' and '-'",
            ));
        }
        if !value.as_bytes()[0].is_ascii_alphanumeric() {
            return Err(bad("must start with a letter or digit"));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn site_admin() -> Self {
        Self(Self::SITE_ADMIN.to_owned())
    }

    pub fn is_site_admin(&self) -> bool {
        self.0 == Self::SITE_ADMIN
    }
}

impl TryFrom<String> for Username {
    type Error = Invalid;
    fn try_from(value: String) -> Result<Self, Invalid> {
        Self::parse("username", &value)
    }
}

impl From<Username> for String {
    fn from(value: Username) -> Self {
        value.0
    }
}

/// An e-mail address, checked only for shape (one `@`, something on both sides, no spaces) and
/// kept in lowercase so that a login by e-mail is case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);
string_newtype!(Email);

impl Email {
    pub fn parse(field: &'static str, value: &str) -> Result<Self, Invalid> {
        let bad = || Invalid::new(field, format!("is not an e-mail address (got {value:?})"));
        if value.len() > EMAIL_MAX || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        match value.split_once('@') {
            Some((local, domain))
                if !local.is_empty() && !domain.is_empty() && !domain.contains('@') =>
            {
                Ok(Self(value.to_ascii_lowercase()))
            }
            _ => Err(bad()),
        }
    }
}

impl TryFrom<String> for Email {
    type Error = Invalid;
    fn try_from(value: String) -> Result<Self, Invalid> {
        Self::parse("email", &value)
    }
}

impl From<Email> for String {
    fn from(value: Email) -> Self {
        value.0
    }
}

/// A workspace's plan, which sets its storage limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    Standard,
    Premium,
}

impl Plan {
    pub fn parse(field: &'static str, value: &str) -> Result<Self, Invalid> {
        match value {
            "standard" => Ok(Self::Standard),
            "premium" => Ok(Self::Premium),
            other => Err(Invalid::new(
                field,
                format!("must be \"standard\" or \"premium\" (got {other:?})"),
            )),
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Standard => "standard",
            Self::Premium => "premium",
        })
    }
}

/// The kind of a package, which decides the protocol that serves it and its naming rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageType {
    Container,
    Npm,
    Maven,
}

impl PackageType {
    pub const ALL: [PackageType; 3] = [Self::Container, Self::Npm, Self::Maven];

    pub fn parse(field: &'static str, value: &str) -> Result<Self, Invalid> {
        match value {
            "container" => Ok(Self::Container),
            "npm" => Ok(Self::Npm),
            "maven" => Ok(Self::Maven),
            other => Err(Invalid::new(
                field,
                format!("must be \"container\", \"npm\" or \"maven\" (got {other:?})"),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Container => "container",
            Self::Npm => "npm",
            Self::Maven => "maven",
        }
    }
}

impl fmt::Display for PackageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A package's name, valid for its type:
/// - container: an image path below the workspace (`api/server`), OCI path components
///   separated by `/`;
/// - npm: a package name, scoped (`@scope/name`) or not, as npm accepts for new packages;
/// - maven: `groupId:artifactId`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PackageName(String);
string_newtype!(PackageName);

impl PackageName {
    pub fn parse(kind: PackageType, field: &'static str, value: &str) -> Result<Self, Invalid> {
        let checked = match kind {
            PackageType::Container => check_container_path(value),
            PackageType::Npm => check_npm_name(value),
            PackageType::Maven => check_maven_coordinates(value),
        };
        checked
            .map(|()| Self(value.to_owned()))
            .map_err(|why| Invalid::new(field, format!("{why} (got {value:?})")))
    }

    /// For a Maven package, its `(groupId, artifactId)`.
    pub fn maven_coordinates(&self) -> Option<(&str, &str)> {
        self.0.split_once(':')
    }
}

fn check_container_path(path: &str) -> Result<(), String> {
    if path.is_empty() || path.len() > CONTAINER_PATH_MAX {
        return Err(format!(
            "an image path is 1 to {CONTAINER_PATH_MAX} characters"
        ));
    }
    if path.split('/').all(is_oci_path_component) {
        Ok(())
    } else {
        Err(
            "each '/'-separated part of an image path is lowercase letters and digits, \
             joined by '.', '_', '__' or dashes"
                .to_owned(),
        )
    }
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, the distribution spec's path component.
fn is_oci_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let valid = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !valid {
            return false;
        }
    }
    true
}

fn check_npm_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > NPM_NAME_MAX {
        return Err(format!(
            "an npm package name is 1 to {NPM_NAME_MAX} characters"
        ));
    }
    let (scope, bare) = match name.strip_prefix('@') {
        Some(scoped) => match scoped.split_once('/') {
            Some((scope, bare)) => (Some(scope), bare),
            None => return Err("a scoped npm name is @scope/name".to_owned()),
        },
        None => (None, name),
    };
    for part in scope.into_iter().chain([bare]) {
        if part.is_empty() {
            return Err("a scoped npm name is @scope/name".to_owned());
        }
        if part.starts_with('.') || part.starts_with('_') {
            return Err("an npm name cannot start with '.' or '_'".to_owned());
        }
        if !part.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'_')
        }) {
            return Err(
                "an npm name may contain only lowercase letters, digits, '-', '.' and '_'"
                    .to_owned(),
            );
        }
    }
    if matches!(name, "node_modules" | "favicon.ico") {
        return Err("that npm name is reserved".to_owned());
    }
    Ok(())
}

fn check_maven_coordinates(coordinates: &str) -> Result<(), String> {
    let Some((group, artifact)) = coordinates.split_once(':') else {
        return Err("a Maven package is groupId:artifactId".to_owned());
    };
    let word = |s: &str| {
        !s.is_empty()
            && s.len() <= MAVEN_PART_MAX
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    };
    if !word(group) || group.split('.').any(str::is_empty) {
        return Err("a groupId is dot-separated words of letters, digits, '_' and '-'".to_owned());
    }
    if !word(artifact) || artifact.starts_with('.') {
        return Err(
            "an artifactId is letters, digits, '_', '-' and '.', not starting with '.'".to_owned(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn slugs() {
        for good in ["acme", "a", "team-1", "0x", &"a".repeat(62)] {
            assert!(Slug::parse("slug", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Acme",
            "..",
            "a/b",
            "a_b",
            "-a",
            "a b",
            &"a".repeat(63),
            "é",
        ] {
            let err = Slug::parse("slug", bad).expect_err(bad);
            assert_eq!(err.field, "slug");
        }
    }

    #[test]
    fn container_paths() {
        for good in ["api", "api/server", "a.b/c__d/e---f", "x1/y2/z3"] {
            assert!(
                PackageName::parse(PackageType::Container, "name", good).is_ok(),
                "{good}"
            );
        }
        for bad in [
            "", "Api", "a//b", "/a", "a/", "../a", "a/..", "a._b", "a___b", "-a", "a-",
        ] {
            assert!(
                PackageName::parse(PackageType::Container, "name", bad).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn npm_names() {
        for good in ["left-pad", "@acme/lib", "a.b_c", "x"] {
            assert!(
                PackageName::parse(PackageType::Npm, "name", good).is_ok(),
                "{good}"
            );
        }
        let long = "a".repeat(215);
        for bad in [
            "",
            "Left",
            ".hidden",
            "_under",
            "@acme",
            "@/x",
            "@acme/",
            "a/b",
            "../x",
            "a b",
            "node_modules",
            "@acme/.x",
            "a~b",
            &long,
        ] {
            assert!(
                PackageName::parse(PackageType::Npm, "name", bad).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn maven_coordinates() {
        for good in ["com.acme:lib", "org.Example:My-Lib_2", "g:a.b"] {
            assert!(
                PackageName::parse(PackageType::Maven, "name", good).is_ok(),
                "{good}"
            );
        }
        for bad in [
            "com.acme",
            ":lib",
            "com.acme:",
            "com..acme:lib",
            "com/acme:lib",
            "g:.a",
            "g:a:b",
        ] {
            assert!(
                PackageName::parse(PackageType::Maven, "name", bad).is_err(),
                "{bad}"
            );
        }
    }

    proptest! {
        #[test]
        fn container_paths_match_the_spec_grammar(path in "[a-z0-9]{1,4}(([._]|__|-{1,3})[a-z0-9]{1,4}){0,3}(/[a-z0-9]{1,4}){0,3}") {
            prop_assert!(PackageName::parse(PackageType::Container, "name", &path).is_ok());
        }

        #[test]
        fn valid_slugs_never_hold_path_syntax(s in "\\PC{0,70}") {
            if let Ok(slug) = Slug::parse("slug", &s) {
                prop_assert!(!slug.as_str().contains('/') && !slug.as_str().contains('.'));
                prop_assert!(slug.as_str().len() <= 62);
            }
        }
    }
}
