//! Where an upstream registry is reached, and which addresses an upstream may have. The rules
//! are the registry's defence against being turned into a proxy into its own network (SSRF):
//! an upstream is https on a public address unless the operator allows private ones.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};
use url::{Host, Url};

use crate::{Invalid, PackageName, PackageType};

const URL_MAX: usize = 2048;

/// Which upstreams the operator allows (`STOWAGE_UPSTREAM_ALLOW_PRIVATE=1` allows private and
/// loopback addresses, and plain http, for registries inside one's own network and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UpstreamReach {
    /// https to public addresses only.
    #[default]
    PublicOnly,
    /// Any address, http or https.
    AnyAddress,
}

impl UpstreamReach {
    /// Whether an upstream may be reached at `address` (checked again on every connection,
    /// after name resolution, since a public name can resolve to a private address).
    pub fn allows(self, address: IpAddr) -> bool {
        self == Self::AnyAddress || is_public(address)
    }
}

/// The base URL of an upstream registry: absolute, `https` (or `http` where the operator
/// allows private upstreams), without credentials, query or fragment, ending in `/` so that
/// paths join below it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UpstreamUrl(Url);

impl UpstreamUrl {
    pub fn parse(field: &'static str, value: &str, reach: UpstreamReach) -> Result<Self, Invalid> {
        let bad = |why: &str| Invalid::new(field, format!("{why} (got {value:?})"));
        if value.len() > URL_MAX {
            return Err(Invalid::new(
                field,
                format!("must be at most {URL_MAX} characters"),
            ));
        }
        let mut url = Url::parse(value).map_err(|_| bad("must be an absolute URL"))?;
        match (url.scheme(), reach) {
            ("https", _) | ("http", UpstreamReach::AnyAddress) => {}
            ("http", UpstreamReach::PublicOnly) => return Err(bad("must be an https URL")),
            _ => return Err(bad("must be an https URL")),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad(
                "must not carry credentials: give them as username and password",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("must not have a query or a fragment"));
        }
        let host = url.host().ok_or_else(|| bad("must name a host"))?;
        if reach == UpstreamReach::PublicOnly && !is_public_host(&host) {
            return Err(bad(
                "must be a public address (private and loopback upstreams are allowed only \
                 when the operator sets STOWAGE_UPSTREAM_ALLOW_PRIVATE=1)",
            ));
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Ok(Self(url))
    }

    pub fn as_url(&self) -> &Url {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for UpstreamUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<UpstreamUrl> for String {
    fn from(url: UpstreamUrl) -> Self {
        url.0.into()
    }
}

/// A namespace a workspace declares its own: an npm scope (`@acme`) or a Maven group
/// (`com.acme`, with the groups below it). A name in one never comes from an upstream, even
/// before the workspace publishes it, so that nobody can take it on a public registry and have
/// it installed here (dependency confusion).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PrivateNamespace(String);

/// The longest namespace taken (npm's limit on a whole name).
const NAMESPACE_MAX: usize = 214;

impl PrivateNamespace {
    pub fn parse(field: &'static str, value: &str) -> Result<Self, Invalid> {
        let bad = || {
            Invalid::new(
                field,
                format!(
                    "must be an npm scope (@acme) or a Maven group (com.acme), of at most \
                     {NAMESPACE_MAX} characters (got {value:?})"
                ),
            )
        };
        if value.is_empty() || value.len() > NAMESPACE_MAX {
            return Err(bad());
        }
        let valid = match value.strip_prefix('@') {
            Some(scope) => {
                !scope.is_empty()
                    && !scope.starts_with('.')
                    && scope.bytes().all(|b| {
                        b.is_ascii_lowercase()
                            || b.is_ascii_digit()
                            || matches!(b, b'-' | b'.' | b'_')
                    })
            }
            None => value.split('.').all(|segment| {
                !segment.is_empty()
                    && segment
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
            }),
        };
        if valid {
            Ok(Self(value.to_owned()))
        } else {
            Err(bad())
        }
    }

    /// Whether package `name` of `kind` is in this namespace.
    pub fn covers(&self, kind: PackageType, name: &PackageName) -> bool {
        let name = name.as_str();
        match (kind, self.0.starts_with('@')) {
            (PackageType::Npm, true) => name
                .strip_prefix(self.0.as_str())
                .is_some_and(|rest| rest.starts_with('/')),
            (PackageType::Maven, false) => name.split_once(':').is_some_and(|(group, _)| {
                group
                    .strip_prefix(self.0.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
            }),
            _ => false,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<PrivateNamespace> for String {
    fn from(namespace: PrivateNamespace) -> Self {
        namespace.0
    }
}

impl TryFrom<String> for PrivateNamespace {
    type Error = Invalid;

    fn try_from(value: String) -> Result<Self, Invalid> {
        Self::parse("namespace", &value)
    }
}

/// Stored URLs were checked when they were set; reading one back only parses it, so that a
/// change of the operator's policy does not make records unreadable.
impl TryFrom<String> for UpstreamUrl {
    type Error = Invalid;

    fn try_from(value: String) -> Result<Self, Invalid> {
        Self::parse("url", &value, UpstreamReach::AnyAddress)
    }
}

fn is_public_host(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name != "localhost" && !name.ends_with(".localhost") && name.contains('.')
        }
        Host::Ipv4(address) => is_public(IpAddr::V4(*address)),
        Host::Ipv6(address) => is_public(IpAddr::V6(*address)),
    }
}

/// Whether an address is on the public internet: not loopback, private, link-local (cloud
/// metadata services live there), shared, documentation, multicast or unspecified.
pub fn is_public(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(address: Ipv4Addr) -> bool {
    let [a, b, ..] = address.octets();
    let shared = a == 100 && (64..128).contains(&b);
    let benchmarking = a == 198 && (b == 18 || b == 19);
    !(address.is_loopback()
        || address.is_private()
        || address.is_link_local()
        || address.is_unspecified()
        || address.is_broadcast()
        || address.is_documentation()
        || address.is_multicast()
        || shared
        || benchmarking
        || a == 0
        || a >= 240)
}

fn is_public_v6(address: Ipv6Addr) -> bool {
    let first = address.segments()[0];
    let unique_local = first & 0xfe00 == 0xfc00;
    let link_local = first & 0xffc0 == 0xfe80;
    let documentation = first == 0x2001 && address.segments()[1] == 0x0db8;
    !(address.is_loopback()
        || address.is_unspecified()
        || address.is_multicast()
        || unique_local
        || link_local
        || documentation)
}

#[cfg(test)]
mod tests {

    #[test]
    fn private_namespaces_cover_their_scope_or_group_only() {
        let name =
            |kind: PackageType, value: &str| PackageName::parse(kind, "name", value).expect("name");
        let scope = PrivateNamespace::parse("ns", "@acme").expect("scope");
        assert!(scope.covers(PackageType::Npm, &name(PackageType::Npm, "@acme/lib")));
        assert!(!scope.covers(PackageType::Npm, &name(PackageType::Npm, "@acmecorp/lib")));
        assert!(!scope.covers(PackageType::Npm, &name(PackageType::Npm, "acme")));
        let group = PrivateNamespace::parse("ns", "com.acme").expect("group");
        assert!(group.covers(
            PackageType::Maven,
            &name(PackageType::Maven, "com.acme:lib")
        ));
        assert!(group.covers(
            PackageType::Maven,
            &name(PackageType::Maven, "com.acme.tools:cli")
        ));
        assert!(!group.covers(
            PackageType::Maven,
            &name(PackageType::Maven, "com.acmecorp:lib")
        ));
        assert!(!group.covers(PackageType::Npm, &name(PackageType::Npm, "com.acme")));
        for bad in [
            "",
            "@",
            "@Acme",
            "@a/b",
            "com..acme",
            ".com",
            "com acme",
            "@.x",
        ] {
            assert!(PrivateNamespace::parse("ns", bad).is_err(), "{bad:?}");
        }
    }

    use super::*;

    fn public(value: &str) -> Result<UpstreamUrl, Invalid> {
        UpstreamUrl::parse("url", value, UpstreamReach::PublicOnly)
    }

    #[test]
    fn a_public_https_url_is_taken_and_ends_in_a_slash() {
        let url = public("https://registry.npmjs.org").expect("valid");
        assert_eq!(url.as_str(), "https://registry.npmjs.org/");
        let url = public("https://repo.maven.apache.org/maven2").expect("valid");
        assert_eq!(url.as_str(), "https://repo.maven.apache.org/maven2/");
    }

    #[test]
    fn private_loopback_and_metadata_addresses_are_refused() {
        for value in [
            "https://127.0.0.1/",
            "https://localhost:4873/",
            "https://registry.localhost/",
            "https://10.1.2.3/",
            "https://172.16.0.1/",
            "https://192.168.1.1/",
            "https://169.254.169.254/latest/meta-data/",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
            "https://[::1]/",
            "https://[fd00::1]/",
            "https://[fe80::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://intranet/",
        ] {
            let error = public(value).expect_err(value);
            assert!(
                error.message.contains("public address"),
                "{value}: {error:?}"
            );
        }
    }

    #[test]
    fn http_credentials_queries_and_other_schemes_are_refused() {
        for (value, why) in [
            ("http://registry.npmjs.org/", "https"),
            ("ftp://example.com/", "https"),
            ("file:///etc/passwd", "https"),
            ("https://user:pw@example.com/", "credentials"),
            ("https://example.com/?a=1", "query"),
            ("https://example.com/#x", "fragment"),
            ("registry.npmjs.org", "absolute"),
        ] {
            let error = public(value).expect_err(value);
            assert!(error.message.contains(why), "{value}: {error:?}");
        }
        assert!(public(&format!("https://example.com/{}", "a".repeat(URL_MAX))).is_err());
    }

    #[test]
    fn the_operator_may_allow_private_upstreams_over_http() {
        let url = UpstreamUrl::parse("url", "http://127.0.0.1:4873", UpstreamReach::AnyAddress)
            .expect("allowed");
        assert_eq!(url.as_str(), "http://127.0.0.1:4873/");
        assert!(UpstreamReach::AnyAddress.allows("10.0.0.1".parse().expect("ip")));
        assert!(!UpstreamReach::PublicOnly.allows("10.0.0.1".parse().expect("ip")));
        assert!(UpstreamReach::PublicOnly.allows("151.101.0.162".parse().expect("ip")));
    }
}
