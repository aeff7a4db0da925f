//! The Maven repository over real HTTP, on both storage pairs.

use std::sync::Arc;

use md5::Md5;
use serde_json::json;
use sha1::Sha1;
use sha2::{Digest as _, Sha256, Sha512};
use stowage_tests::oci::random_bytes;
use stowage_tests::race::{race, tally};
use stowage_tests::{
    Auth, Stores, TestServer, basic_authorization, follow_redirect, on_both_backends,
};

on_both_backends!(
    deploy_and_resolve_files_checksums_and_metadata,
    releases_are_immutable_and_snapshots_are_not,
    checksums_are_verified_and_a_mismatch_changes_nothing,
    concurrent_deploys_lose_no_version,
    access_rules,
    bad_input_is_refused_and_stores_nothing,
    a_deploy_cut_off_midway_leaves_nothing,
    deleted_versions_go_and_releases_stay_retired,
);

const BASE: &str = "/maven/acme/com/acme/lib";

async fn fixture(stores: Stores) -> (TestServer, String) {
    let server = TestServer::start(stores).await;
    let alice = server
        .user_with_token("alice", &["read:package", "write:package"])
        .await;
    server
        .package(&alice, "acme", "libs", "maven", "com.acme:lib")
        .await;
    (server, alice)
}

async fn put(server: &TestServer, token: &str, path: &str, body: &[u8]) -> u16 {
    let response = server
        .client
        .put(format!("{}{path}", server.url))
        .basic_auth("alice", Some(token))
        .body(body.to_vec())
        .send()
        .await
        .expect("PUT");
    response.status().as_u16()
}

async fn get(server: &TestServer, token: &str, path: &str) -> reqwest::Response {
    server
        .client
        .get(format!("{}{path}", server.url))
        .basic_auth("alice", Some(token))
        .send()
        .await
        .expect("GET")
}

async fn text(server: &TestServer, token: &str, path: &str) -> (u16, String) {
    let response = get(server, token, path).await;
    (
        response.status().as_u16(),
        response.text().await.expect("body"),
    )
}

/// Follows a file's redirect and returns its bytes.
async fn download(server: &TestServer, token: &str, path: &str) -> Vec<u8> {
    follow_redirect(get(server, token, path).await).await
}

async fn deploy_and_resolve_files_checksums_and_metadata(stores: Stores) {
    let (server, alice) = fixture(stores).await;
    let jar = random_bytes(200_000);
    let pom = b"<project><modelVersion>4.0.0</modelVersion></project>".to_vec();
    let sources = random_bytes(5000);
    for (file, body) in [
        ("lib-1.0.pom", &pom),
        ("lib-1.0.jar", &jar),
        ("lib-1.0-sources.jar", &sources),
    ] {
        assert_eq!(
            put(&server, &alice, &format!("{BASE}/1.0/{file}"), body).await,
            201,
            "{file}"
        );
        assert_eq!(
            put(
                &server,
                &alice,
                &format!("{BASE}/1.0/{file}.sha1"),
                hex::encode(Sha1::digest(body)).as_bytes()
            )
            .await,
            201
        );
        assert_eq!(
            put(
                &server,
                &alice,
                &format!("{BASE}/1.0/{file}.md5"),
                hex::encode(Md5::digest(body)).as_bytes()
            )
            .await,
            201
        );
    }
    assert_eq!(
        download(&server, &alice, &format!("{BASE}/1.0/lib-1.0.jar")).await,
        jar
    );
    assert_eq!(
        download(&server, &alice, &format!("{BASE}/1.0/lib-1.0-sources.jar")).await,
        sources
    );
    // The same bytes again, as another file: stored once, read through the first copy.
    let objects = server.stores.object_count().await;
    assert_eq!(
        put(
            &server,
            &alice,
            &format!("{BASE}/1.0/lib-1.0-copy.jar"),
            &jar
        )
        .await,
        201
    );
    assert_eq!(server.stores.object_count().await, objects);
    assert_eq!(
        download(&server, &alice, &format!("{BASE}/1.0/lib-1.0-copy.jar")).await,
        jar
    );
    // Every checksum, computed by the server.
    for (suffix, expected) in [
        ("md5", hex::encode(Md5::digest(&jar))),
        ("sha1", hex::encode(Sha1::digest(&jar))),
        ("sha256", hex::encode(Sha256::digest(&jar))),
        ("sha512", hex::encode(Sha512::digest(&jar))),
    ] {
        assert_eq!(
            text(&server, &alice, &format!("{BASE}/1.0/lib-1.0.jar.{suffix}")).await,
            (200, expected),
            "{suffix}"
        );
    }
    // HEAD: answered directly, with length and checksums.
    let head = server
        .client
        .head(format!("{}{BASE}/1.0/lib-1.0.jar", server.url))
        .basic_auth("alice", Some(&alice))
        .send()
        .await
        .expect("HEAD");
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], "200000");
    assert_eq!(
        head.headers()["x-checksum-sha1"],
        hex::encode(Sha1::digest(&jar)).as_str()
    );
    assert!(head.headers().get("location").is_none());
    // Stored files are downloads that a browser never runs: the registry's own answers and
    // the file behind the redirect (the local server's, on the embedded pair; S3's otherwise)
    // say so.
    let pom_path = format!("{BASE}/1.0/lib-1.0.pom");
    for response in [
        get(&server, &alice, &pom_path).await,
        get(&server, &alice, &format!("{pom_path}.sha1")).await,
    ] {
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        let policy = response.headers()["content-security-policy"]
            .to_str()
            .expect("policy");
        assert!(policy.contains("sandbox") && policy.contains("default-src 'none'"));
    }
    let redirect = get(&server, &alice, &pom_path).await;
    let location = redirect.headers()["location"].to_str().expect("location");
    let file = reqwest::get(location).await.expect("download");
    assert_eq!(
        file.headers()["content-disposition"],
        "attachment; filename=\"lib-1.0.pom\""
    );
    if server.stores.signer.is_some() {
        assert_eq!(file.headers()["x-content-type-options"], "nosniff");
    }

    // A metadata upload is accepted, but the records decide what it says.
    let claimed = b"<?xml version=\"1.0\"?><metadata><groupId>com.acme</groupId><artifactId>lib</artifactId><versioning><versions><version>9.9</version></versions></versioning></metadata>";
    assert_eq!(
        put(
            &server,
            &alice,
            &format!("{BASE}/maven-metadata.xml"),
            claimed
        )
        .await,
        201
    );
    assert_eq!(
        put(
            &server,
            &alice,
            &format!("{BASE}/maven-metadata.xml.sha1"),
            b"0000"
        )
        .await,
        201
    );
    put(
        &server,
        &alice,
        &format!("{BASE}/1.2-SNAPSHOT/lib-1.2-20261126.101010-1.jar"),
        b"snap",
    )
    .await;
    put(&server, &alice, &format!("{BASE}/1.10/lib-1.10.pom"), &pom).await;
    let (status, xml) = text(&server, &alice, &format!("{BASE}/maven-metadata.xml")).await;
    assert_eq!(status, 200);
    assert!(!xml.contains("9.9"), "{xml}");
    assert!(
        xml.contains("<latest>1.10</latest>") && xml.contains("<release>1.10</release>"),
        "{xml}"
    );
    let order: Vec<usize> = [
        "<version>1.0</version>",
        "<version>1.2-SNAPSHOT</version>",
        "<version>1.10</version>",
    ]
    .iter()
    .map(|v| xml.find(v).expect(v))
    .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "Maven's version order: {xml}"
    );
    let (_, sha1) = text(&server, &alice, &format!("{BASE}/maven-metadata.xml.sha1")).await;
    assert_eq!(
        sha1,
        hex::encode(Sha1::digest(xml.as_bytes())),
        "the metadata's checksum matches what is served"
    );
    // The management API lists the versions.
    let (_, package) = server
        .call(
            "GET",
            "/api/workspaces/acme/packages/maven/com.acme:lib",
            Auth::Bearer(&alice),
            None,
        )
        .await;
    assert_eq!(package["versions"].as_array().map(Vec::len), Some(3));
}

async fn releases_are_immutable_and_snapshots_are_not(stores: Stores) {
    let (server, alice) = fixture(stores).await;
    assert_eq!(
        put(
            &server,
            &alice,
            &format!("{BASE}/1.0/lib-1.0.jar"),
            b"first"
        )
        .await,
        201
    );
    assert_eq!(
        put(
            &server,
            &alice,
            &format!("{BASE}/1.0/lib-1.0.jar"),
            b"second"
        )
        .await,
        409
    );
    assert_eq!(
        download(&server, &alice, &format!("{BASE}/1.0/lib-1.0.jar")).await,
        b"first"
    );
    let snapshot = format!("{BASE}/2.0-SNAPSHOT/lib-2.0-SNAPSHOT.jar");
    assert_eq!(put(&server, &alice, &snapshot, b"first").await, 201);
    assert_eq!(put(&server, &alice, &snapshot, b"second").await, 201);
    assert_eq!(download(&server, &alice, &snapshot).await, b"second");
    // Timestamped builds, with and without a classifier: the version-level metadata.
    for (file, body) in [
        ("lib-2.0-20261126.101010-1.jar", b"one".as_slice()),
        ("lib-2.0-20261126.101010-1.pom", b"<project/>"),
        ("lib-2.0-20261126.121212-2.jar", b"two"),
        ("lib-2.0-20261126.121212-2-sources.jar", b"src"),
    ] {
        assert_eq!(
            put(
                &server,
                &alice,
                &format!("{BASE}/2.0-SNAPSHOT/{file}"),
                body
            )
            .await,
            201,
            "{file}"
        );
    }
    let (status, xml) = text(
        &server,
        &alice,
        &format!("{BASE}/2.0-SNAPSHOT/maven-metadata.xml"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        xml.contains("<timestamp>20261126.121212</timestamp>")
            && xml.contains("<buildNumber>2</buildNumber>"),
        "{xml}"
    );
    assert!(
        xml.contains("<value>2.0-20261126.121212-2</value>"),
        "{xml}"
    );
    assert!(
        xml.contains("<value>2.0-20261126.101010-1</value>"),
        "the pom of build 1 is still the latest pom: {xml}"
    );
    assert!(xml.contains("<classifier>sources</classifier>"), "{xml}");
    assert_eq!(
        text(
            &server,
            &alice,
            &format!("{BASE}/3.0-SNAPSHOT/maven-metadata.xml")
        )
        .await
        .0,
        404
    );
}

async fn checksums_are_verified_and_a_mismatch_changes_nothing(stores: Stores) {
    let (server, alice) = fixture(stores).await;
    let jar = random_bytes(10_000);
    put(&server, &alice, &format!("{BASE}/1.0/lib-1.0.jar"), &jar).await;
    assert_eq!(
        put(
            &server,
            &alice,
            &format!("{BASE}/1.0/lib-1.0.jar.sha1"),
            b"0123456789abcdef0123456789abcdef01234567"
        )
        .await,
        400
    );
    assert_eq!(
        put(
            &server,
            &alice,
            &format!("{BASE}/1.0/lib-1.0.jar.md5"),
            b"not even hex"
        )
        .await,
        400
    );
    let with_name = format!("{}  lib-1.0.jar\n", hex::encode(Sha256::digest(&jar)));
    assert_eq!(
        put(
            &server,
            &alice,
            &format!("{BASE}/1.0/lib-1.0.jar.sha256"),
            with_name.as_bytes()
        )
        .await,
        201
    );
    assert_eq!(
        download(&server, &alice, &format!("{BASE}/1.0/lib-1.0.jar")).await,
        jar,
        "the file is left as it was"
    );
    assert_eq!(
        text(&server, &alice, &format!("{BASE}/1.0/lib-1.0.jar.sha1"))
            .await
            .1,
        hex::encode(Sha1::digest(&jar))
    );
    assert_eq!(
        put(
            &server,
            &alice,
            &format!("{BASE}/1.0/lib-1.0.pom.sha1"),
            b"00"
        )
        .await,
        404,
        "no such file"
    );
}

async fn concurrent_deploys_lose_no_version(stores: Stores) {
    let (server, alice) = fixture(stores).await;
    let server = Arc::new(server);
    let statuses = race(20, |i| {
        let server = Arc::clone(&server);
        let alice = alice.clone();
        async move {
            let path = format!("{BASE}/1.{i}/lib-1.{i}.jar");
            put(&server, &alice, &path, format!("v{i}").as_bytes()).await
        }
    })
    .await;
    assert_eq!(tally(&statuses), [(201, 20)].into(), "{statuses:?}");
    let (_, xml) = text(&server, &alice, &format!("{BASE}/maven-metadata.xml")).await;
    assert_eq!(xml.matches("<version>").count(), 20, "{xml}");
    assert!(xml.contains("<latest>1.19</latest>"), "{xml}");
}

async fn access_rules(stores: Stores) {
    let (server, alice) = fixture(stores).await;
    put(&server, &alice, &format!("{BASE}/1.0/lib-1.0.jar"), b"jar").await;
    // Maven sends credentials on GET only after a Basic challenge.
    let anonymous = reqwest::Client::new()
        .get(format!("{}{BASE}/1.0/lib-1.0.jar", server.url))
        .send()
        .await
        .expect("GET");
    assert_eq!(anonymous.status(), 401);
    assert!(
        anonymous.headers()["www-authenticate"]
            .to_str()
            .expect("header")
            .starts_with("Basic")
    );
    let reader = server
        .user_with_token("rita", &["read:package", "write:package"])
        .await;
    server
        .call(
            "PUT",
            "/api/workspaces/acme/repositories/libs/permissions/rita",
            Auth::Bearer(&alice),
            Some(json!({"role": "read"})),
        )
        .await;
    let response = server
        .client
        .get(format!("{}{BASE}/1.0/lib-1.0.jar", server.url))
        .basic_auth("rita", Some(&reader))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 307);
    let response = server
        .client
        .put(format!("{}{BASE}/1.1/lib-1.1.jar", server.url))
        .basic_auth("rita", Some(&reader))
        .body("x")
        .send()
        .await
        .expect("PUT");
    assert_eq!(response.status(), 403);
    // No package at those coordinates: a clear refusal.
    let response = server
        .client
        .put(format!(
            "{}/maven/acme/com/acme/other/1.0/other-1.0.jar",
            server.url
        ))
        .basic_auth("alice", Some(&alice))
        .body("x")
        .send()
        .await
        .expect("PUT");
    assert_eq!(response.status(), 403);
    assert!(
        response
            .text()
            .await
            .expect("body")
            .contains("repository admin must create")
    );
    let stranger = server.user_with_token("sam", &["read:package"]).await;
    let response = server
        .client
        .get(format!("{}{BASE}/maven-metadata.xml", server.url))
        .basic_auth("sam", Some(&stranger))
        .send()
        .await
        .expect("GET");
    assert_eq!(
        response.status(),
        404,
        "a package you cannot read does not exist"
    );
}

async fn bad_input_is_refused_and_stores_nothing(stores: Stores) {
    let (server, alice) = fixture(stores).await;
    let basic = basic_authorization("alice", &alice);
    for path in [
        "/maven/acme/com/acme/lib/1.0/../1.0/lib-1.0.jar",
        "/maven/acme/com/acme/lib/%2e%2e/lib-1.0.jar",
        "/maven/acme/com/acme/lib/1.0/..%2flib-1.0.jar",
        "/maven/acme/com/acme%2flib/1.0/lib-1.0.jar",
        "/maven/acme/com/acme/lib/1.0/other-1.0.jar",
        "/maven/acme/com/acme/lib/1.0/lib-2.0.jar",
        "/maven/acme/com/acme/lib-1.0.jar",
        "/maven/acme/com/acme/lib/1.0/lib-1.0.jar%00.txt",
        // One package, one path: a groupId's dots are folders.
        "/maven/acme/com.acme/lib/1.0/lib-1.0.jar",
    ] {
        let (status, body) = server
            .raw("PUT", path, &[("Authorization", &basic)], b"content")
            .await;
        assert_eq!(status, 400, "{path}: {body}");
    }
    for (what, xml) in [
        ("entities", br#"<?xml version="1.0"?><!DOCTYPE m [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><metadata>&b;</metadata>"#.to_vec()),
        ("malformed", b"<metadata><versioning></metadata>".to_vec()),
        ("not metadata", b"<project/>".to_vec()),
        ("huge", [b"<metadata>".to_vec(), vec![b' '; 300 * 1024], b"</metadata>".to_vec()].concat()),
    ] {
        assert_eq!(put(&server, &alice, &format!("{BASE}/maven-metadata.xml"), &xml).await, 400, "{what}");
    }
    assert_eq!(
        text(&server, &alice, &format!("{BASE}/maven-metadata.xml"))
            .await
            .0,
        404,
        "nothing was stored"
    );
    let (_, package) = server
        .call(
            "GET",
            "/api/workspaces/acme/packages/maven/com.acme:lib",
            Auth::Bearer(&alice),
            None,
        )
        .await;
    assert_eq!(package["versions"], json!([]));
}

/// A client that goes away half-way through a large deploy: the server still sees the body
/// break off, and frees the parts it had written.
async fn a_deploy_cut_off_midway_leaves_nothing(stores: Stores) {
    let (server, alice) = fixture(stores).await;
    let basic = basic_authorization("alice", &alice);
    // Past the first 8 MiB part, so a multipart upload is under way.
    server
        .hang_up_midway(
            "PUT",
            &format!("{BASE}/1.0/lib-1.0.jar"),
            &[("Authorization", &basic)],
            40 * 1024 * 1024,
            &random_bytes(20 * 1024 * 1024),
        )
        .await;
    assert_eq!(
        server.settled_object_count(0).await,
        0,
        "objects or multipart uploads left behind"
    );
    assert_eq!(
        text(&server, &alice, &format!("{BASE}/1.0/lib-1.0.jar.sha1"))
            .await
            .0,
        404,
        "nothing was recorded"
    );
}

async fn delete(server: &TestServer, user: &str, token: &str, path: &str) -> u16 {
    server
        .client
        .delete(format!("{}{path}", server.url))
        .basic_auth(user, Some(token))
        .send()
        .await
        .expect("DELETE")
        .status()
        .as_u16()
}

/// A version's folder can be deleted (write role): its files and its place in the metadata
/// go. A release's coordinates are never deployed again, until the package itself is purged;
/// a SNAPSHOT's may be.
async fn deleted_versions_go_and_releases_stay_retired(stores: Stores) {
    let (server, alice) = fixture(stores).await;
    let reader = server.user_with_token("rita", &["read:package"]).await;
    server
        .call(
            "PUT",
            "/api/workspaces/acme/repositories/libs/permissions/rita",
            Auth::Bearer(&alice),
            Some(json!({"role": "read"})),
        )
        .await;
    for (file, body) in [
        ("1.0/lib-1.0.jar", b"jar".as_slice()),
        ("1.0/lib-1.0.pom", b"<project/>"),
        ("1.1/lib-1.1.jar", b"jar 1.1"),
        ("2.0-SNAPSHOT/lib-2.0-SNAPSHOT.jar", b"snap"),
    ] {
        assert_eq!(
            put(&server, &alice, &format!("{BASE}/{file}"), body).await,
            201
        );
    }
    assert_eq!(
        delete(&server, "rita", &reader, &format!("{BASE}/1.0/")).await,
        403
    );
    assert_eq!(
        delete(&server, "alice", &alice, &format!("{BASE}/9.9/")).await,
        404
    );
    assert_eq!(
        delete(&server, "alice", &alice, &format!("{BASE}/1.0/lib-1.0.jar")).await,
        405,
        "files are deleted with their version"
    );
    assert_eq!(
        delete(&server, "alice", &alice, &format!("{BASE}/1.0/")).await,
        204
    );
    assert_eq!(
        get(&server, &alice, &format!("{BASE}/1.0/lib-1.0.jar"))
            .await
            .status(),
        404
    );
    let (_, xml) = text(&server, &alice, &format!("{BASE}/maven-metadata.xml")).await;
    assert!(
        !xml.contains("<version>1.0</version>") && xml.contains("<version>1.1</version>"),
        "{xml}"
    );
    let (_, package) = server
        .call(
            "GET",
            "/api/workspaces/acme/packages/maven/com.acme:lib",
            Auth::Bearer(&alice),
            None,
        )
        .await;
    let listed: Vec<&str> = package["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .filter_map(|v| v["version"].as_str())
        .collect();
    assert_eq!(listed, ["1.1", "2.0-SNAPSHOT"]);
    // The release's coordinates stay taken, with other bytes or the same.
    for body in [b"other".as_slice(), b"jar"] {
        let response = server
            .client
            .put(format!("{}{BASE}/1.0/lib-1.0.jar", server.url))
            .basic_auth("alice", Some(&alice))
            .body(body.to_vec())
            .send()
            .await
            .expect("PUT");
        assert_eq!(response.status(), 409);
        let message = response.text().await.expect("body");
        assert!(message.contains("deleted release"), "{message}");
    }
    // A SNAPSHOT comes back.
    assert_eq!(
        delete(&server, "alice", &alice, &format!("{BASE}/2.0-SNAPSHOT/")).await,
        204
    );
    let snapshot = format!("{BASE}/2.0-SNAPSHOT/lib-2.0-SNAPSHOT.jar");
    assert_eq!(put(&server, &alice, &snapshot, b"again").await, 201);
    assert_eq!(download(&server, &alice, &snapshot).await, b"again");
    // Once the package is purged, its name and every coordinate are free again.
    let (status, _) = server
        .call(
            "DELETE",
            "/api/workspaces/acme/packages/maven/com.acme:lib",
            Auth::Bearer(&alice),
            None,
        )
        .await;
    assert_eq!(status, 202);
    server.clock.advance(chrono::Duration::days(31));
    let report = server
        .registry
        .purge(&stowage_purge::Content, std::time::Duration::from_secs(60))
        .await
        .expect("purge");
    assert!(report.finished);
    server
        .package(&alice, "acme", "libs", "maven", "com.acme:lib")
        .await;
    assert_eq!(
        put(&server, &alice, &format!("{BASE}/1.0/lib-1.0.jar"), b"new").await,
        201
    );
}
