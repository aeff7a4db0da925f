//! DynamoDB's limits (400 KB an item, 100 writes a transaction, 1 KB a sort key) met with
//! legitimate input: each record that grows with its input either moves its bulk to the blob
//! store or is refused with the protocol's own 4xx naming the limit, at the limit and over it.
//! On both storage pairs, so that the embedded pair holds the same limits as the deployment.

use serde_json::{Value, json};
use stowage_http::Limits;
use stowage_service::Settings;
use stowage_tests::npm::{publish_document, tarball};
use stowage_tests::oci::{OCI_MANIFEST, RegistryClient, error_code, image, random_bytes, sha256};
use stowage_tests::{Auth, Stores, TestServer, on_both_backends};

on_both_backends!(
    manifests_stay_within_a_record,
    npm_versions_stay_within_a_record,
    maven_paths_stay_within_a_key,
    an_upload_in_chunks_is_bounded_by_its_parts,
);

const MIB: usize = 1024 * 1024;

async fn server_with_package(stores: Stores, kind: &str, name: &str) -> (TestServer, String) {
    let server = TestServer::start(stores).await;
    let alice = server
        .user_with_token("alice", &["read:package", "write:package"])
        .await;
    server.package(&alice, "acme", "api", kind, name).await;
    (server, alice)
}

/// An image's manifest with its first layer listed `times` times, and `extra` set on it.
fn repeating(img: &stowage_tests::oci::Image, times: usize, extra: &dyn Fn(&mut Value)) -> Vec<u8> {
    let mut manifest: Value = serde_json::from_slice(&img.manifest).expect("json");
    let layer = manifest["layers"][0].clone();
    manifest["layers"] = Value::Array(vec![layer; times]);
    extra(&mut manifest);
    manifest.to_string().into_bytes()
}

async fn manifests_stay_within_a_record(stores: Stores) {
    let (server, alice) = server_with_package(stores, "container", "api/server").await;
    let client = RegistryClient::new(&server.url, "alice", &alice);
    let img = image(&[1000], "amd64", OCI_MANIFEST);
    client.push_image("acme/api/server", "base", &img).await;
    // One layer listed 1,500 times (300 KiB) and 25,000 times (4 MiB): taken, and read back.
    for (times, tag) in [(1500, "many"), (25_000, "most")] {
        let manifest = repeating(&img, times, &|_| {});
        assert!(manifest.len() <= 4 * MIB, "{}", manifest.len());
        let pushed = client
            .push_manifest("acme/api/server", tag, OCI_MANIFEST, &manifest)
            .await;
        assert_eq!(pushed.status(), 201, "{times} layers");
        let pulled = client
            .get(&format!("/v2/acme/api/server/manifests/{tag}"))
            .await;
        assert_eq!(pulled.status(), 200);
        assert_eq!(
            sha256(&pulled.bytes().await.expect("body")),
            sha256(&manifest)
        );
    }
    // Distinct references: at the limit they pass it (to be found missing), over it they are
    // refused for it.
    for (distinct, code) in [(1000, "MANIFEST_BLOB_UNKNOWN"), (1001, "MANIFEST_INVALID")] {
        let manifest = repeating(&img, 1, &|manifest| {
            let layers: Vec<Value> = (0..distinct - 1)
                .map(|i| {
                    json!({
                        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": sha256(format!("layer {i}").as_bytes()),
                        "size": 1,
                    })
                })
                .collect();
            manifest["layers"] = Value::Array(layers);
        });
        let pushed = client
            .push_manifest("acme/api/server", "refs", OCI_MANIFEST, &manifest)
            .await;
        assert_eq!(pushed.status(), 400);
        let body: Value = pushed.json().await.expect("json");
        assert_eq!(body["errors"][0]["code"], code, "{distinct}: {body}");
        if distinct > 1000 {
            assert!(
                body["errors"][0]["message"]
                    .as_str()
                    .expect("message")
                    .contains("at most 1000")
            );
        }
    }
    // The artifact type: 255 characters, then 256.
    for (length, status) in [(255, 201), (256, 400)] {
        let manifest = repeating(&img, 1, &|manifest| {
            manifest["artifactType"] = json!(format!("application/{}", "x".repeat(length - 12)));
        });
        let pushed = client
            .push_manifest("acme/api/server", "typed", OCI_MANIFEST, &manifest)
            .await;
        assert_eq!(pushed.status(), status, "{length}");
        if status == 400 {
            assert_eq!(error_code(pushed).await, "MANIFEST_INVALID");
        }
    }
}

async fn publish(server: &TestServer, token: &str, document: Value) -> (u16, Value) {
    let (status, body) = server
        .call(
            "PUT",
            "/npm/acme/left-pad",
            Auth::Bearer(token),
            Some(document),
        )
        .await;
    (status.as_u16(), body)
}

async fn npm_versions_stay_within_a_record(stores: Stores) {
    let (server, alice) = server_with_package(stores, "npm", "left-pad").await;
    let document =
        |version: &str| publish_document("left-pad", version, &tarball("left-pad", version));
    // A description of 290 KiB fits a version's record; 420 kB and 2,000 kB do not.
    for (size, version, status) in [
        (290 * 1024, "1.0.0", 201),
        (420_000, "1.0.1", 413),
        (2_000_000, "1.0.2", 413),
    ] {
        let mut sent = document(version);
        sent["versions"][version]["description"] = json!("d".repeat(size));
        let (got, body) = publish(&server, &alice, sent).await;
        assert_eq!(got, status, "{size}: {body}");
        if status == 413 {
            assert!(
                body["error"].as_str().expect("error").contains("307200"),
                "{body}"
            );
        }
    }
    // Twenty dist-tags in a publish, then twenty-one, then 120.
    for (tags, version, status) in [(20, "2.0.0", 201), (21, "2.0.1", 400), (120, "2.0.2", 400)] {
        let mut sent = document(version);
        sent["dist-tags"] = (0..tags)
            .map(|i| (format!("tag{i}"), json!(version)))
            .collect::<serde_json::Map<_, _>>()
            .into();
        let (got, body) = publish(&server, &alice, sent).await;
        assert_eq!(got, status, "{tags} tags: {body}");
    }
    // A version of 256 characters, then 257.
    for (length, status) in [(256, 201), (257, 400)] {
        let version = format!("3.0.0-{}", "a".repeat(length - 6));
        let (got, body) = publish(&server, &alice, document(&version)).await;
        assert_eq!(got, status, "{length}: {body}");
    }
}

async fn maven_paths_stay_within_a_key(stores: Stores) {
    let (server, alice) = server_with_package(stores, "maven", "com.acme:lib").await;
    // A file name of 255 characters, then 256.
    for (length, status) in [(255, 201), (256, 400)] {
        let version = "1".repeat(length - "lib-".len() - ".jar".len());
        let response = server
            .client
            .put(format!(
                "{}/maven/acme/com/acme/lib/{version}/lib-{version}.jar",
                server.url
            ))
            .basic_auth("alice", Some(&alice))
            .body(b"jar".to_vec())
            .send()
            .await
            .expect("PUT");
        assert_eq!(response.status(), status, "{length}");
    }
}

async fn an_upload_in_chunks_is_bounded_by_its_parts(stores: Stores) {
    let settings = Settings {
        upload_parts_max: 2,
        ..Settings::default()
    };
    let server = TestServer::start_with(stores, settings, Limits::local(64 * MIB)).await;
    let alice = server
        .user_with_token("alice", &["read:package", "write:package"])
        .await;
    server
        .package(&alice, "acme", "api", "container", "api/server")
        .await;
    let client = RegistryClient::new(&server.url, "alice", &alice);
    let location = client.start_upload("acme/api/server").await;
    let chunks: Vec<Vec<u8>> = (0..3).map(|_| random_bytes(6 * MIB)).collect();
    let mut offset = 0;
    for (i, chunk) in chunks.iter().enumerate() {
        let patched = client
            .request("PATCH", &location)
            .header(
                "content-range",
                format!("{offset}-{}", offset + chunk.len() - 1),
            )
            .body(chunk.clone())
            .send()
            .await
            .expect("PATCH");
        if i < 2 {
            assert_eq!(patched.status(), 202, "chunk {i}");
            offset += chunk.len();
        } else {
            assert_eq!(patched.status(), 413, "the third part");
            let body: Value = patched.json().await.expect("json");
            assert_eq!(body["errors"][0]["code"], "SIZE_INVALID");
            assert!(
                body["errors"][0]["message"]
                    .as_str()
                    .expect("message")
                    .contains("at most 2 parts")
            );
        }
    }
    // The upload stands where it was, and can be finished.
    let blob = [chunks[0].clone(), chunks[1].clone()].concat();
    let finished = client
        .request("PUT", &format!("{location}?digest={}", sha256(&blob)))
        .send()
        .await
        .expect("PUT");
    assert_eq!(finished.status(), 201);
}
