//! Helpers for npm registry tests: tarballs and publish documents shaped as npm sends them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sha1::Sha1;
use sha2::{Digest as _, Sha512};

use crate::{Auth, TestServer};

/// A package tarball: `package/package.json` and `package/index.js`.
pub fn tarball(name: &str, version: &str) -> Vec<u8> {
    let manifest = json!({ "name": name, "version": version, "main": "index.js" });
    tarball_of(name, version, &manifest)
}

/// Like [`tarball`], with `dependencies` in its package.json.
pub fn tarball_with(name: &str, version: &str, dependencies: Value) -> Vec<u8> {
    let manifest = json!({
        "name": name, "version": version, "main": "index.js", "dependencies": dependencies
    });
    tarball_of(name, version, &manifest)
}

fn tarball_of(name: &str, version: &str, manifest: &Value) -> Vec<u8> {
    let manifest = manifest.to_string();
    let index = format!("module.exports = {:?};\n", format!("{name}@{version}"));
    let mut tar = tar::Builder::new(Vec::new());
    for (path, content) in [
        ("package/package.json", manifest.as_bytes()),
        ("package/index.js", index.as_bytes()),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, path, content).expect("tar");
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar.into_inner().expect("tar")).expect("gzip");
    gz.finish().expect("gzip")
}

pub fn shasum(bytes: &[u8]) -> String {
    hex::encode(Sha1::digest(bytes))
}

pub fn integrity(bytes: &[u8]) -> String {
    format!("sha512-{}", STANDARD.encode(Sha512::digest(bytes)))
}

/// The document `npm publish` sends for one version, with its tarball attached.
pub fn publish_document(name: &str, version: &str, tarball: &[u8]) -> Value {
    json!({
        "_id": name,
        "name": name,
        "description": format!("{name}, for tests"),
        "dist-tags": { "latest": version },
        "versions": {
            version: {
                "name": name,
                "version": version,
                "description": format!("{name}, for tests"),
                "main": "index.js",
                "_id": format!("{name}@{version}"),
                "dist": {
                    "shasum": shasum(tarball),
                    "integrity": integrity(tarball),
                    "tarball": format!("http://ignored/{name}/-/{version}.tgz"),
                },
            },
        },
        "_attachments": {
            format!("{name}-{version}.tgz"): {
                "content_type": "application/octet-stream",
                "data": STANDARD.encode(tarball),
                "length": tarball.len(),
            },
        },
    })
}

/// How npm spells a package in a URL: scoped names with `%2f`.
pub fn encoded(name: &str) -> String {
    name.replace('/', "%2f")
}

/// npm's first step of `npm unpublish <name>@<version>`, in workspace `acme`: the document,
/// read for writing, put back without the version (with `dist_tags` instead of its own, when
/// given). Returns the revision it was read at, which the tarball's DELETE names.
pub async fn put_without_version(
    server: &TestServer,
    token: &str,
    name: &str,
    version: &str,
    dist_tags: Option<Value>,
) -> String {
    let path = format!("/npm/acme/{}", encoded(name));
    let (_, mut document) = server
        .call(
            "GET",
            &format!("{path}?write=true"),
            Auth::Bearer(token),
            None,
        )
        .await;
    let rev = document["_rev"].as_str().expect("rev").to_owned();
    document["versions"]
        .as_object_mut()
        .expect("versions")
        .remove(version);
    if let Some(tags) = dist_tags {
        document["dist-tags"] = tags;
    }
    let (status, body) = server
        .call(
            "PUT",
            &format!("{path}/-rev/{rev}"),
            Auth::Bearer(token),
            Some(document),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    rev
}
