//! Many writers at once on the same content or the same records, on both storage pairs (the
//! AWS pair is where DynamoDB cancels transactions that meet): parallel pushes of one image by
//! real clients, parallel publishes and deploys of the same bytes, and tags racing the removal
//! of what they point at. Every writer must succeed (or be refused for a reason of its own),
//! nothing may be left that no record names, and no tag may point at nothing.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stowage_tests::clients::{available, run};
use stowage_tests::npm::{publish_document, put_without_version, tarball};
use stowage_tests::oci::{OCI_MANIFEST, RegistryClient, image, random_bytes, write_layout};
use stowage_tests::{Auth, Stores, TestServer, on_both_backends};

on_both_backends!(
    twenty_clients_push_one_image_at_once,
    twenty_publishes_and_deploys_of_the_same_bytes_at_once,
    dist_tags_racing_an_unpublish_never_dangle,
    tags_racing_a_manifest_delete_never_dangle,
);

const PARALLEL: usize = 20;

/// What a set of parallel requests cost: the worst wait, and storage calls per request.
fn report(what: &str, server: &TestServer, requests: usize, worst: Duration) {
    let calls = server.metadata_calls.total() as f64 / requests as f64;
    eprintln!(
        "{what}: {requests} at once, the slowest answered in {} ms, {calls:.1} metadata calls each",
        worst.as_millis()
    );
}

async fn twenty_clients_push_one_image_at_once(stores: Stores) {
    if !available(&["skopeo"]) {
        return;
    }
    let server = TestServer::start(stores).await;
    let alice = server
        .user_with_token("alice", &["read:package", "write:package"])
        .await;
    server
        .package(&alice, "acme", "api", "container", "api/server")
        .await;
    server
        .package(&alice, "acme", "web", "container", "web/site")
        .await;
    let before = server.stores.object_count().await;
    let img = image(&[1024 * 1024], "amd64", OCI_MANIFEST);
    let work = tempfile::tempdir().expect("folder");
    let layout = work.path().join("layout");
    write_layout(&layout, &img, "1.0");
    let host = server.url.trim_start_matches("http://").to_owned();
    let source = format!("oci:{}:1.0", layout.display());
    let creds = format!("alice:{alice}");
    server.metadata_calls.reset();
    let started = Instant::now();
    let pushes = (0..PARALLEL).map(|i| {
        let name = if i % 2 == 0 { "api/server" } else { "web/site" };
        let dest = format!("docker://{host}/acme/{name}:t{i}");
        let (source, creds) = (source.clone(), creds.clone());
        async move {
            let pushed = run(
                "skopeo",
                &[
                    "copy",
                    "--dest-tls-verify=false",
                    "--dest-creds",
                    &creds,
                    &source,
                    &dest,
                ],
                &[],
            )
            .await;
            (pushed, started.elapsed())
        }
    });
    let outcomes = futures_util::future::join_all(pushes).await;
    let worst = outcomes
        .iter()
        .map(|(_, took)| *took)
        .max()
        .unwrap_or_default();
    for (pushed, _) in outcomes {
        pushed.ok("skopeo copy, one of twenty at once");
    }
    report("skopeo pushes of one image", &server, PARALLEL, worst);
    // One copy of each blob, and nothing else.
    assert_eq!(
        server
            .settled_object_count(before + img.blobs().len())
            .await,
        before + img.blobs().len(),
        "one object per blob, no orphans"
    );
    let client = RegistryClient::new(&server.url, "alice", &alice);
    for i in 0..PARALLEL {
        let name = if i % 2 == 0 { "api/server" } else { "web/site" };
        let pulled = client.get(&format!("/v2/acme/{name}/manifests/t{i}")).await;
        assert_eq!(pulled.status(), 200, "{name}:t{i}");
    }
}

async fn twenty_publishes_and_deploys_of_the_same_bytes_at_once(stores: Stores) {
    let server = TestServer::start(stores).await;
    let alice = server
        .user_with_token("alice", &["read:package", "write:package"])
        .await;
    server.package(&alice, "acme", "web", "npm", "pkg-0").await;
    for i in 1..PARALLEL {
        let (status, _) = server
            .call(
                "POST",
                "/api/workspaces/acme/packages",
                Auth::Bearer(&alice),
                Some(json!({"type": "npm", "name": format!("pkg-{i}"), "repository": "web"})),
            )
            .await;
        assert_eq!(status, 201);
    }
    let (status, _) = server
        .call(
            "POST",
            "/api/workspaces/acme/packages",
            Auth::Bearer(&alice),
            Some(json!({"type": "maven", "name": "com.acme:lib", "repository": "web"})),
        )
        .await;
    assert_eq!(status, 201);
    // One publish alone, for comparison.
    server.metadata_calls.reset();
    let started = Instant::now();
    let alone = publish_document("pkg-0", "0.9.0", &tarball("alone", "0.9.0"));
    let (status, _) = server
        .call("PUT", "/npm/acme/pkg-0", Auth::Bearer(&alice), Some(alone))
        .await;
    assert_eq!(status, 201);
    report("an npm publish alone", &server, 1, started.elapsed());
    let before = server.stores.object_count().await;
    // The same tarball bytes in twenty packages, at once.
    let shared = tarball("shared", "1.0.0");
    server.metadata_calls.reset();
    let started = Instant::now();
    let publishes = (0..PARALLEL).map(|i| {
        let document = publish_document(&format!("pkg-{i}"), "1.0.0", &shared);
        let server = &server;
        let alice = &alice;
        async move {
            let (status, body) = server
                .call(
                    "PUT",
                    &format!("/npm/acme/pkg-{i}"),
                    Auth::Bearer(alice),
                    Some(document),
                )
                .await;
            (status.as_u16(), body, started.elapsed())
        }
    });
    let outcomes = futures_util::future::join_all(publishes).await;
    let worst = outcomes
        .iter()
        .map(|(_, _, took)| *took)
        .max()
        .unwrap_or_default();
    for (status, body, _) in &outcomes {
        assert_eq!(*status, 201, "{body}");
    }
    report("npm publishes of one tarball", &server, PARALLEL, worst);
    // The same jar bytes as twenty versions, at once.
    let jar = random_bytes(300_000);
    server.metadata_calls.reset();
    let started = Instant::now();
    let deploys = (0..PARALLEL).map(|i| {
        let request = server
            .client
            .put(format!(
                "{}/maven/acme/com/acme/lib/1.{i}/lib-1.{i}.jar",
                server.url
            ))
            .basic_auth("alice", Some(&alice))
            .body(jar.clone());
        async move {
            let status = request.send().await.expect("PUT").status().as_u16();
            (status, started.elapsed())
        }
    });
    let outcomes = futures_util::future::join_all(deploys).await;
    let worst = outcomes
        .iter()
        .map(|(_, took)| *took)
        .max()
        .unwrap_or_default();
    assert!(
        outcomes.iter().all(|(status, _)| *status == 201),
        "{outcomes:?}"
    );
    report("Maven deploys of one jar", &server, PARALLEL, worst);
    assert_eq!(
        server.settled_object_count(before + 2).await,
        before + 2,
        "one tarball and one jar, no orphans"
    );
    let usage = stowage_tests::usage_of(&server, "acme").await;
    assert_eq!(usage.stored_bytes, usage.total_bytes, "counted once each");
}

/// The package's dist-tags that point at a version it does not have.
async fn dangling_tags(server: &TestServer, token: &str) -> Vec<String> {
    let (_, document) = server
        .call("GET", "/npm/acme/left-pad", Auth::Bearer(token), None)
        .await;
    let versions = document["versions"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    document["dist-tags"]
        .as_object()
        .map(|tags| {
            tags.iter()
                .filter(|(_, v)| !versions.contains_key(v.as_str().unwrap_or("")))
                .map(|(tag, v)| format!("{tag} -> {v}"))
                .collect()
        })
        .unwrap_or_default()
}

async fn dist_tags_racing_an_unpublish_never_dangle(stores: Stores) {
    let server = TestServer::start(stores).await;
    let alice = server
        .user_with_token("alice", &["read:package", "write:package"])
        .await;
    server
        .package(&alice, "acme", "web", "npm", "left-pad")
        .await;
    for round in 0..4 {
        let (keep, doomed) = (format!("{round}.0.0"), format!("{round}.0.1"));
        for version in [&keep, &doomed] {
            let document = publish_document("left-pad", version, &tarball("left-pad", version));
            let (status, body) = server
                .call(
                    "PUT",
                    "/npm/acme/left-pad",
                    Auth::Bearer(&alice),
                    Some(document),
                )
                .await;
            assert_eq!(status, 201, "{body}");
        }
        // Ten tags land on the doomed version while it is unpublished, whose removal the
        // storage holds up for a moment (as a slow store would) so that they land between its
        // read and its write.
        server
            .metadata_pauses
            .pause_deletes(Some(("VERSION#", Duration::from_millis(150))));
        let tags = (0..10).map(|i| {
            let tag = if i == 0 {
                "latest".to_owned()
            } else {
                format!("t{i}")
            };
            let (server, alice, doomed) = (&server, &alice, &doomed);
            async move {
                tokio::time::sleep(Duration::from_millis(40 + 10 * i)).await;
                server
                    .request(
                        "PUT",
                        &format!("/npm/acme/-/package/left-pad/dist-tags/{tag}"),
                        Auth::Bearer(alice),
                        Some(Value::String(doomed.clone()).to_string()),
                    )
                    .await
            }
        });
        let unpublish = async {
            // A lost race is told 409; npm's user runs it again.
            loop {
                let (status, mut document) = server
                    .call(
                        "GET",
                        "/npm/acme/left-pad?write=true",
                        Auth::Bearer(&alice),
                        None,
                    )
                    .await;
                assert_eq!(status, 200);
                let rev = document["_rev"].as_str().expect("rev").to_owned();
                document["versions"]
                    .as_object_mut()
                    .expect("versions")
                    .remove(&doomed);
                document["dist-tags"] = json!({ "latest": keep });
                let (status, body) = server
                    .call(
                        "PUT",
                        &format!("/npm/acme/left-pad/-rev/{rev}"),
                        Auth::Bearer(&alice),
                        Some(document),
                    )
                    .await;
                match status.as_u16() {
                    200 => return,
                    409 => continue,
                    other => panic!("unpublish: {other} {body}"),
                }
            }
        };
        let (tagged, ()) = tokio::join!(futures_util::future::join_all(tags), unpublish);
        server.metadata_pauses.pause_deletes(None);
        for response in tagged {
            let status = response.status().as_u16();
            assert!(
                status == 201 || status == 404 || status == 409,
                "tag: {status}"
            );
        }
        assert_eq!(
            dangling_tags(&server, &alice).await,
            Vec::<String>::new(),
            "round {round}"
        );
    }
    // And the helper npm's own unpublish uses leaves none either.
    put_without_version(
        &server,
        &alice,
        "left-pad",
        "3.0.0",
        Some(json!({"latest": "2.0.0"})),
    )
    .await;
    assert_eq!(dangling_tags(&server, &alice).await, Vec::<String>::new());
}

async fn tags_racing_a_manifest_delete_never_dangle(stores: Stores) {
    let server = TestServer::start(stores).await;
    let alice = server
        .user_with_token("alice", &["read:package", "write:package"])
        .await;
    server
        .package(&alice, "acme", "api", "container", "api/server")
        .await;
    let client = RegistryClient::new(&server.url, "alice", &alice);
    let img = image(&[1000], "amd64", OCI_MANIFEST);
    client.push_image("acme/api/server", "base", &img).await;
    for round in 0..4 {
        let pushes = (0..8).map(|i| {
            let (client, manifest) = (&client, &img.manifest);
            async move {
                client
                    .push_manifest(
                        "acme/api/server",
                        &format!("r{round}t{i}"),
                        OCI_MANIFEST,
                        manifest,
                    )
                    .await
            }
        });
        let delete = client
            .request(
                "DELETE",
                &format!("/v2/acme/api/server/manifests/{}", img.digest()),
            )
            .send();
        let (pushed, deleted) = tokio::join!(futures_util::future::join_all(pushes), delete);
        let deleted = deleted.expect("DELETE").status().as_u16();
        assert!(deleted == 202 || deleted == 404, "delete: {deleted}");
        for response in pushed {
            assert_eq!(response.status(), 201);
        }
        // Every listed tag serves its manifest.
        let tags: Value = client
            .get("/v2/acme/api/server/tags/list")
            .await
            .json()
            .await
            .unwrap_or(Value::Null);
        for tag in tags["tags"].as_array().cloned().unwrap_or_default() {
            let tag = tag.as_str().expect("tag");
            let response = client
                .get(&format!("/v2/acme/api/server/manifests/{tag}"))
                .await;
            assert_eq!(response.status(), 200, "round {round}: tag {tag} dangles");
        }
        client.push_image("acme/api/server", "base", &img).await;
    }
}
