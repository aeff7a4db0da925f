//! Deletion, restore, retention and purge, garbage collection, usage and plan limits, across
//! the three protocols, on both storage pairs, with an injected clock for time travel.

use std::sync::Arc;
use std::time::Duration;

use chrono::Duration as Days;
use serde_json::{Value, json};
use stowage_http::Limits;
use stowage_service::{PlanLimits, PurgeReport, Settings};
use stowage_tests::npm::{encoded, publish_document, put_without_version, tarball};
use stowage_tests::oci::{OCI_MANIFEST, RegistryClient, image, random_bytes, sha256};
use stowage_tests::{Auth, Backend, Stores, TestServer, follow_redirect, on_both_backends};

on_both_backends!(
    deletions_hide_at_once_and_restores_bring_everything_back,
    retention_runs_out_and_the_purge_frees_names,
    usage_counts_unique_bytes_and_billing,
    plan_limits_refuse_pushes_over_quota,
    unused_blobs_are_collected_after_the_grace_period,
    unpublished_tarballs_and_overwritten_snapshots_are_collected,
    an_unreadable_record_keeps_every_link_of_its_package,
    a_push_racing_the_collector_keeps_its_blob,
    abandoned_uploads_are_cleared,
    identical_large_manifests_in_two_repositories_stay_readable,
    unfinished_multipart_uploads_are_aborted,
    a_collector_killed_midway_is_finished_by_the_next,
    objects_no_record_names_are_reconciled_away,
);

const GRACE: i64 = 3600;

/// A server whose grace period is an hour, with `acme`: repositories `api` (container
/// `api/server`, npm `left-pad`, maven `com.acme:lib`) and `web` (container `web/site`).
async fn fixture(stores: Stores, plan_limits: PlanLimits) -> (TestServer, String, RegistryClient) {
    let settings = Settings {
        plan_limits,
        collection_grace: Days::seconds(GRACE),
        ..Settings::default()
    };
    let server = TestServer::start_with(stores, settings, Limits::local(64 * 1024 * 1024)).await;
    let alice = server
        .user_with_token("alice", &["read:package", "write:package"])
        .await;
    server
        .package(&alice, "acme", "api", "container", "api/server")
        .await;
    server
        .package(&alice, "acme", "web", "container", "web/site")
        .await;
    for (kind, name) in [("npm", "left-pad"), ("maven", "com.acme:lib")] {
        let (status, _) = server
            .call(
                "POST",
                "/api/workspaces/acme/packages",
                Auth::Bearer(&alice),
                Some(json!({"type": kind, "name": name, "repository": "api"})),
            )
            .await;
        assert_eq!(status, 201);
    }
    let client = RegistryClient::new(&server.url, "alice", &alice);
    (server, alice, client)
}

async fn purge(server: &TestServer) -> PurgeReport {
    server
        .registry
        .purge(&stowage_purge::Content, Duration::from_secs(120))
        .await
        .expect("purge")
}

/// Publishes to each protocol of `api`: an image, an npm version, a Maven file.
async fn publish_everything(
    server: &TestServer,
    alice: &str,
    client: &RegistryClient,
) -> stowage_tests::oci::Image {
    let img = image(&[20_000], "amd64", OCI_MANIFEST);
    client.push_image("acme/api/server", "v1", &img).await;
    let document = publish_document("left-pad", "1.0.0", &tarball("left-pad", "1.0.0"));
    assert_eq!(
        server
            .call(
                "PUT",
                "/npm/acme/left-pad",
                Auth::Bearer(alice),
                Some(document)
            )
            .await
            .0,
        201
    );
    let response = client
        .request("PUT", "/maven/acme/com/acme/lib/1.0/lib-1.0.jar")
        .body(b"jar".to_vec())
        .send()
        .await
        .expect("PUT");
    assert_eq!(response.status(), 201);
    img
}

/// Status of a read through each protocol: (registry manifest, npm document, Maven file).
async fn reads(server: &TestServer, alice: &str, client: &RegistryClient) -> (u16, u16, u16) {
    let oci = client
        .get("/v2/acme/api/server/manifests/v1")
        .await
        .status()
        .as_u16();
    let npm = server
        .status("GET", "/npm/acme/left-pad", alice)
        .await
        .as_u16();
    let maven = client
        .get("/maven/acme/com/acme/lib/1.0/lib-1.0.jar.sha1")
        .await
        .status()
        .as_u16();
    (oci, npm, maven)
}

async fn deletions_hide_at_once_and_restores_bring_everything_back(stores: Stores) {
    let (server, alice, client) = fixture(stores, PlanLimits::default()).await;
    publish_everything(&server, &alice, &client).await;
    let bob = server
        .user_with_token("bob", &["read:package", "write:package"])
        .await;
    server
        .call(
            "PUT",
            "/api/workspaces/acme/repositories/api/permissions/bob",
            Auth::Bearer(&alice),
            Some(json!({"role": "read"})),
        )
        .await;
    assert_eq!(reads(&server, &alice, &client).await, (200, 200, 200));

    // A package: gone from its protocol at once, its name held, then restored.
    let (status, _) = server
        .call(
            "DELETE",
            "/api/workspaces/acme/packages/container/api%2Fserver",
            Auth::Bearer(&alice),
            None,
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(reads(&server, &alice, &client).await, (404, 200, 200));
    let (status, _) = server
        .call(
            "POST",
            "/api/workspaces/acme/packages",
            Auth::Bearer(&alice),
            Some(json!({"type": "container", "name": "api/server", "repository": "web"})),
        )
        .await;
    assert_eq!(status, 409, "the name is held until the purge");
    assert_eq!(
        server
            .status(
                "POST",
                "/api/workspaces/acme/packages/container/api%2Fserver/restore",
                &alice
            )
            .await,
        200
    );
    assert_eq!(reads(&server, &alice, &client).await, (200, 200, 200));

    // A repository: all its packages, every protocol.
    assert_eq!(
        server
            .status("DELETE", "/api/workspaces/acme/repositories/api", &alice)
            .await,
        202
    );
    assert_eq!(reads(&server, &alice, &client).await, (404, 404, 404));
    assert_eq!(
        server
            .status(
                "POST",
                "/api/workspaces/acme/repositories/api/restore",
                &alice
            )
            .await,
        200
    );
    assert_eq!(reads(&server, &alice, &client).await, (200, 200, 200));

    // The workspace: everything, including the management API; then back, tokens and roles too.
    assert_eq!(
        server
            .status("DELETE", "/api/workspaces/acme", &alice)
            .await,
        202
    );
    assert_eq!(reads(&server, &alice, &client).await, (404, 404, 404));
    assert_eq!(
        server
            .status("GET", "/api/workspaces/acme/packages", &alice)
            .await,
        404
    );
    let (status, _) = server
        .call(
            "POST",
            "/api/workspaces",
            Auth::Bearer(&alice),
            Some(json!({"slug": "acme", "plan": "standard"})),
        )
        .await;
    assert_eq!(status, 409, "the slug is held until the purge");
    assert_eq!(
        server
            .status("POST", "/api/workspaces/acme/restore", &bob)
            .await,
        404,
        "only its admin restores it"
    );
    assert_eq!(
        server
            .status("POST", "/api/workspaces/acme/restore", &alice)
            .await,
        200
    );
    assert_eq!(reads(&server, &alice, &client).await, (200, 200, 200));
    let bob_client = RegistryClient::new(&server.url, "bob", &bob);
    assert_eq!(
        bob_client
            .get("/v2/acme/api/server/manifests/v1")
            .await
            .status(),
        200,
        "bob's role came back"
    );
    assert_eq!(
        server
            .status("POST", "/api/workspaces/acme/restore", &alice)
            .await,
        409,
        "not deleted"
    );
}

async fn retention_runs_out_and_the_purge_frees_names(stores: Stores) {
    let (server, alice, client) = fixture(stores, PlanLimits::default()).await;
    publish_everything(&server, &alice, &client).await;
    let objects_before = server.stores.object_count().await;
    assert!(objects_before > 0);

    assert_eq!(
        server
            .status("DELETE", "/api/workspaces/acme/repositories/api", &alice)
            .await,
        202
    );
    server.clock.advance(Days::days(29));
    assert!(
        purge(&server).await.purged.is_empty(),
        "nothing is due before 30 days"
    );
    assert_eq!(
        server
            .status(
                "POST",
                "/api/workspaces/acme/repositories/api/restore",
                &alice
            )
            .await,
        200
    );
    assert_eq!(reads(&server, &alice, &client).await, (200, 200, 200));
    assert_eq!(
        server
            .status("DELETE", "/api/workspaces/acme/repositories/api", &alice)
            .await,
        202
    );
    server.clock.advance(Days::days(31));
    assert_eq!(
        server
            .status(
                "POST",
                "/api/workspaces/acme/repositories/api/restore",
                &alice
            )
            .await,
        409,
        "too late"
    );
    let report = purge(&server).await;
    assert!(report.finished);
    assert_eq!(report.purged, ["repo/acme/api"]);
    // Its names are free again: a new package starts empty.
    let (status, _) = server
        .call(
            "POST",
            "/api/workspaces/acme/repositories",
            Auth::Bearer(&alice),
            Some(json!({"slug": "api"})),
        )
        .await;
    assert_eq!(status, 201, "the repository slug is free");
    server
        .package(&alice, "acme", "api", "npm", "left-pad")
        .await;
    assert_eq!(
        server.status("GET", "/npm/acme/left-pad", &alice).await,
        404,
        "and empty"
    );
    // The blobs nothing uses any more are collected, after the grace period.
    let mut collected = report.blobs_collected;
    for _ in 0..2 {
        server.clock.advance(Days::seconds(GRACE + 1));
        collected += purge(&server).await.blobs_collected;
    }
    assert!(
        collected >= 3,
        "the image's blobs, the tarball and the jar: {collected}"
    );
    assert_eq!(
        server.stores.object_count().await,
        0,
        "every blob of the purged repository is gone"
    );

    // A deleted workspace: purged whole, and its slug free.
    assert_eq!(
        server
            .status("DELETE", "/api/workspaces/acme", &alice)
            .await,
        202
    );
    server.clock.advance(Days::days(31));
    let report = purge(&server).await;
    assert!(report.purged.contains(&"ws/acme".to_owned()), "{report:?}");
    let (status, _) = server
        .call(
            "POST",
            "/api/workspaces",
            Auth::Bearer(&alice),
            Some(json!({"slug": "acme", "plan": "standard"})),
        )
        .await;
    assert_eq!(status, 201, "the slug is free");
    let (_, repositories) = server
        .call(
            "GET",
            "/api/workspaces/acme/repositories",
            Auth::Bearer(&alice),
            None,
        )
        .await;
    assert_eq!(
        repositories["values"],
        json!([]),
        "nothing of the old workspace is left"
    );
}

async fn usage(server: &TestServer, alice: &str) -> Value {
    let (status, usage) = server
        .call(
            "GET",
            "/api/workspaces/acme/usage",
            Auth::Bearer(alice),
            None,
        )
        .await;
    assert_eq!(status, 200, "{usage}");
    usage
}

async fn usage_counts_unique_bytes_and_billing(stores: Stores) {
    let (server, alice, client) = fixture(stores, PlanLimits::default()).await;
    let shared = random_bytes(100_000);
    let own = random_bytes(30_000);
    for (name, blob) in [
        ("acme/api/server", &shared),
        ("acme/web/site", &shared),
        ("acme/web/site", &own),
    ] {
        assert_eq!(client.push_blob(name, blob).await.status(), 201);
    }
    let usage = usage(&server, &alice).await;
    assert_eq!(
        usage["total_bytes"], 130_000,
        "a blob in two images counts once: {usage}"
    );
    assert_eq!(usage["stored_bytes"], 130_000);
    assert_eq!(usage["billable_bytes"], 130_000);
    assert_eq!(
        usage["by_repository"],
        json!({"api": 100_000, "web": 130_000})
    );
    assert_eq!(usage["by_type"], json!({"container": 130_000}));
    // A deleted package stops being billed at once, though its bytes stay until the purge.
    server
        .call(
            "DELETE",
            "/api/workspaces/acme/packages/container/web%2Fsite",
            Auth::Bearer(&alice),
            None,
        )
        .await;
    let usage = stowage_tests::usage_of(&server, "acme").await;
    assert_eq!(
        (
            usage.total_bytes,
            usage.billable_bytes,
            usage.not_billable_bytes
        ),
        (130_000, 100_000, 30_000)
    );
    // A deleted repository's packages are still billed.
    server
        .call(
            "POST",
            "/api/workspaces/acme/packages/container/web%2Fsite/restore",
            Auth::Bearer(&alice),
            None,
        )
        .await;
    server
        .call(
            "DELETE",
            "/api/workspaces/acme/repositories/api",
            Auth::Bearer(&alice),
            None,
        )
        .await;
    let usage = stowage_tests::usage_of(&server, "acme").await;
    assert_eq!(usage.billable_bytes, 130_000);
    // A deleted workspace is not billed at all.
    server
        .call("DELETE", "/api/workspaces/acme", Auth::Bearer(&alice), None)
        .await;
    let usage = stowage_tests::usage_of(&server, "acme").await;
    assert_eq!(
        (usage.billable_bytes, usage.not_billable_bytes),
        (0, 130_000)
    );
    assert_eq!(
        usage.stored_bytes, usage.total_bytes,
        "the running counter agrees with a recount"
    );
}

async fn plan_limits_refuse_pushes_over_quota(stores: Stores) {
    let limits = PlanLimits {
        standard: 200_000,
        premium: 10_000_000,
    };
    let (server, alice, client) = fixture(stores, limits).await;
    assert_eq!(
        client
            .push_blob("acme/api/server", &random_bytes(150_000))
            .await
            .status(),
        201
    );
    let objects = server.stores.object_count().await;
    let response = client
        .push_blob("acme/api/server", &random_bytes(100_000))
        .await;
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["errors"][0]["code"], "DENIED");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("storage quota exceeded")
    );
    let bytes = tarball("left-pad", "1.0.0");
    let padded = [bytes.clone(), random_bytes(60_000)].concat();
    let document = publish_document("left-pad", "1.0.0", &padded);
    let (status, body) = server
        .call(
            "PUT",
            &format!("/npm/acme/{}", encoded("left-pad")),
            Auth::Bearer(&alice),
            Some(document),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"].as_str().expect("error").contains("quota"));
    let response = client
        .request("PUT", "/maven/acme/com/acme/lib/1.0/lib-1.0.jar")
        .body(random_bytes(60_000))
        .send()
        .await
        .expect("PUT");
    assert_eq!(response.status(), 413);
    assert_eq!(
        server.stores.object_count().await,
        objects,
        "nothing partial is kept"
    );
    assert_eq!(
        stowage_tests::usage_of(&server, "acme").await.stored_bytes,
        150_000
    );
    // Content the workspace already holds takes no more space.
    let again = client
        .request("POST", "/v2/acme/web/site/blobs/uploads/")
        .send()
        .await
        .expect("POST");
    assert_eq!(again.status(), 202);
}

async fn unused_blobs_are_collected_after_the_grace_period(stores: Stores) {
    let (server, _alice, client) = fixture(stores, PlanLimits::default()).await;
    let first = image(&[10_000, 20_000], "amd64", OCI_MANIFEST);
    client.push_image("acme/api/server", "one", &first).await;
    // A second image sharing the first's config and first layer.
    let mut second = image(&[5_000], "amd64", OCI_MANIFEST);
    second.config = first.config.clone();
    second.layers.insert(0, first.layers[0].clone());
    second.manifest = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(&second.config), "size": second.config.len()},
        "layers": second.layers.iter().map(|l| json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha256(l), "size": l.len()})).collect::<Vec<_>>(),
    }).to_string().into_bytes();
    client.push_image("acme/api/server", "two", &second).await;
    let stray = random_bytes(7_000);
    client.push_blob("acme/api/server", &stray).await;
    let objects = server.stores.object_count().await;
    // The first manifest goes: only its second layer is used by nothing.
    let deleted = client
        .request(
            "DELETE",
            &format!("/v2/acme/api/server/manifests/{}", first.digest()),
        )
        .send()
        .await
        .expect("DELETE");
    assert_eq!(deleted.status(), 202);
    let report = purge(&server).await;
    assert_eq!(
        (report.links_collected, report.blobs_collected),
        (0, 0),
        "nothing within the grace period: {report:?}"
    );
    server.clock.advance(Days::seconds(GRACE + 1));
    let report = purge(&server).await;
    assert_eq!(
        report.links_collected, 2,
        "the unused layer and the stray blob: {report:?}"
    );
    assert_eq!(
        report.blobs_collected, 0,
        "marked now, deleted in a later run"
    );
    server.clock.advance(Days::seconds(GRACE + 1));
    let report = purge(&server).await;
    assert_eq!(report.blobs_collected, 2, "{report:?}");
    assert_eq!(server.stores.object_count().await, objects - 2);
    // Everything the second image uses is still there.
    for blob in second.blobs() {
        let response = client
            .get(&format!("/v2/acme/api/server/blobs/{}", sha256(blob)))
            .await;
        assert_eq!(response.status(), 307);
        let url = response.headers()["location"]
            .to_str()
            .expect("location")
            .to_owned();
        assert_eq!(
            reqwest::get(&url)
                .await
                .expect("download")
                .bytes()
                .await
                .expect("bytes")
                .as_ref(),
            &blob[..]
        );
    }
    let usage = stowage_tests::usage_of(&server, "acme").await;
    assert_eq!(usage.stored_bytes, usage.total_bytes);
}

/// A manifest too large for its record is kept in the blob store. The same bytes pushed in two
/// repositories share that content, like any blob: deleting it in one (by a pipeline that
/// cannot even read the other), or purging a deleted package, must leave the other readable.
/// Once nothing uses it, it is collected.
async fn identical_large_manifests_in_two_repositories_stay_readable(stores: Stores) {
    let (server, alice, client) = fixture(stores, PlanLimits::default()).await;
    let img = image(&[10], "amd64", OCI_MANIFEST);
    let mut value: Value = serde_json::from_slice(&img.manifest).expect("json");
    value["annotations"] = json!({ "org.example.filler": "x".repeat(400 * 1024) });
    let big = value.to_string().into_bytes();
    client.push_image("acme/api/server", "v1", &img).await;
    let pushed = client
        .push_manifest("acme/api/server", "big", OCI_MANIFEST, &big)
        .await;
    assert_eq!(pushed.status(), 201);
    let (status, pipeline) = server
        .call(
            "POST",
            "/api/workspaces/acme/repositories/web/pipeline-tokens",
            Auth::Bearer(&alice),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 201);
    let web = RegistryClient::new(
        &server.url,
        pipeline["username"].as_str().expect("username"),
        pipeline["token"].as_str().expect("token"),
    );
    web.push_image("acme/web/site", "v1", &img).await;
    let pushed = web
        .push_manifest("acme/web/site", "big", OCI_MANIFEST, &big)
        .await;
    assert_eq!(pushed.status(), 201);
    let deleted = web
        .request(
            "DELETE",
            &format!("/v2/acme/web/site/manifests/{}", sha256(&big)),
        )
        .send()
        .await
        .expect("DELETE");
    assert_eq!(deleted.status(), 202);
    let read = |client: RegistryClient| async move {
        let response = client.get("/v2/acme/api/server/manifests/big").await;
        let status = response.status().as_u16();
        (status, sha256(&response.bytes().await.expect("body")))
    };
    assert_eq!(read(client.clone()).await, (200, sha256(&big)));
    // The other package deleted and purged, and every collection run there is.
    let (status, _) = server
        .call(
            "DELETE",
            "/api/workspaces/acme/packages/container/web%2Fsite",
            Auth::Bearer(&alice),
            None,
        )
        .await;
    assert_eq!(status, 202);
    for _ in 0..3 {
        server.clock.advance(Days::days(31));
        assert!(purge(&server).await.finished);
    }
    assert_eq!(read(client.clone()).await, (200, sha256(&big)));
    // Deleted here too, the manifest's content is collected like a blob.
    let objects = server.stores.object_count().await;
    let deleted = client
        .request(
            "DELETE",
            &format!("/v2/acme/api/server/manifests/{}", sha256(&big)),
        )
        .send()
        .await
        .expect("DELETE");
    assert_eq!(deleted.status(), 202);
    let mut collected = 0;
    for _ in 0..3 {
        server.clock.advance(Days::seconds(GRACE + 1));
        collected += purge(&server).await.blobs_collected;
    }
    assert_eq!(collected, 1, "the large manifest's content, alone");
    assert_eq!(server.stores.object_count().await, objects - 1);
    assert_eq!(read(client.clone()).await.0, 404);
    assert_eq!(
        client
            .get("/v2/acme/api/server/manifests/v1")
            .await
            .status(),
        200
    );
}

/// npm and Maven leave links no record uses: an unpublished version's tarball (the document
/// update removes the version; the client's tarball DELETE may never come) and a SNAPSHOT
/// file's earlier bytes when it is deployed again. The purge collects them like OCI's.
async fn unpublished_tarballs_and_overwritten_snapshots_are_collected(stores: Stores) {
    let (server, alice, client) = fixture(stores, PlanLimits::default()).await;
    for version in ["1.0.0", "1.1.0"] {
        let document = publish_document("left-pad", version, &tarball("left-pad", version));
        let (status, _) = server
            .call(
                "PUT",
                "/npm/acme/left-pad",
                Auth::Bearer(&alice),
                Some(document),
            )
            .await;
        assert_eq!(status, 201, "{version}");
    }
    put_without_version(
        &server,
        &alice,
        "left-pad",
        "1.1.0",
        Some(json!({"latest": "1.0.0"})),
    )
    .await;

    let snapshot = "/maven/acme/com/acme/lib/1.0-SNAPSHOT/lib-1.0-SNAPSHOT.jar";
    let latest = random_bytes(3_000);
    for bytes in [random_bytes(2_000), latest.clone()] {
        let response = client
            .request("PUT", snapshot)
            .body(bytes)
            .send()
            .await
            .expect("PUT");
        assert_eq!(response.status(), 201);
    }
    let objects = server.stores.object_count().await;
    let used = stowage_tests::usage_of(&server, "acme").await;

    assert_eq!(
        purge(&server).await.links_collected,
        0,
        "within the grace period"
    );
    server.clock.advance(Days::seconds(GRACE + 1));
    let report = purge(&server).await;
    assert_eq!(
        report.links_collected, 2,
        "the unpublished tarball and the snapshot's first jar: {report:?}"
    );
    server.clock.advance(Days::seconds(GRACE + 1));
    let report = purge(&server).await;
    assert_eq!(report.blobs_collected, 2, "{report:?}");
    assert_eq!(server.stores.object_count().await, objects - 2);
    let now_used = stowage_tests::usage_of(&server, "acme").await;
    let freed = (tarball("left-pad", "1.1.0").len() + 2_000) as u64;
    assert_eq!(
        now_used.stored_bytes,
        used.stored_bytes - freed,
        "{now_used:?}"
    );
    assert_eq!(now_used.total_bytes, now_used.stored_bytes, "{now_used:?}");

    // What is still published still downloads.
    let response = client.get("/npm/acme/left-pad/-/left-pad-1.0.0.tgz").await;
    assert_eq!(response.status(), 307);
    assert_eq!(follow_redirect(client.get(snapshot).await).await, latest);
}

/// A record the purge cannot read might be using any blob: its package keeps all its links.
async fn an_unreadable_record_keeps_every_link_of_its_package(stores: Stores) {
    use stowage_storage::{Key, Put, Write};

    let (server, _alice, client) = fixture(stores, PlanLimits::default()).await;
    let response = client
        .request(
            "PUT",
            "/maven/acme/com/acme/lib/1.0-SNAPSHOT/lib-1.0-SNAPSHOT.jar",
        )
        .body(random_bytes(1_000))
        .send()
        .await
        .expect("PUT");
    assert_eq!(response.status(), 201);
    let partition = "PKG#acme#maven#com.acme:lib";
    let unreadable = Key::new(partition, "FILE#1.0-SNAPSHOT#lib-1.0-SNAPSHOT.jar");
    server
        .registry
        .inspect_metadata()
        .write(Write::Put(Put::new(unreadable, b"not a record".to_vec())))
        .await
        .expect("write");
    server.clock.advance(Days::seconds(GRACE + 1));
    let report = purge(&server).await;
    assert_eq!(report.links_collected, 0, "{report:?}");
}

async fn a_push_racing_the_collector_keeps_its_blob(stores: Stores) {
    let (server, _alice, client) = fixture(stores, PlanLimits::default()).await;
    let layer = image(&[40_000], "amd64", OCI_MANIFEST);
    client.push_image("acme/api/server", "old", &layer).await;
    client
        .request(
            "DELETE",
            &format!("/v2/acme/api/server/manifests/{}", layer.digest()),
        )
        .send()
        .await
        .expect("DELETE");
    server.clock.advance(Days::seconds(GRACE + 1));
    let report = purge(&server).await;
    assert_eq!(
        report.links_collected, 2,
        "its layer and config are unused and marked: {report:?}"
    );
    // Before the collector's next run, a push takes the same content up again (in another
    // repository, so as a dedup hit on the workspace's copy).
    client.push_image("acme/web/site", "new", &layer).await;
    server.clock.advance(Days::seconds(GRACE + 1));
    let report = purge(&server).await;
    assert_eq!(
        report.blobs_collected, 0,
        "the push rewrote the records the collector read: {report:?}"
    );
    for blob in layer.blobs() {
        let response = client
            .get(&format!("/v2/acme/web/site/blobs/{}", sha256(blob)))
            .await;
        let url = response.headers()["location"]
            .to_str()
            .expect("location")
            .to_owned();
        assert_eq!(
            reqwest::get(&url)
                .await
                .expect("download")
                .bytes()
                .await
                .expect("bytes")
                .as_ref(),
            &blob[..]
        );
    }
    // And truly concurrently: pushes of shared layers while the collector runs, many times.
    let server = Arc::new(server);
    let base = image(&[8_000], "amd64", OCI_MANIFEST);
    for round in 0..6 {
        client
            .push_image("acme/api/server", &format!("r{round}"), &base)
            .await;
        client
            .request(
                "DELETE",
                &format!("/v2/acme/api/server/manifests/{}", base.digest()),
            )
            .send()
            .await
            .expect("DELETE");
        server.clock.advance(Days::seconds(GRACE + 1));
        let collector = {
            let server = Arc::clone(&server);
            tokio::spawn(async move { purge(&server).await })
        };
        let pusher = {
            let client = client.clone();
            let base = base.clone();
            tokio::spawn(async move {
                client
                    .push_image("acme/web/site", &format!("r{round}"), &base)
                    .await
            })
        };
        collector.await.expect("collector");
        pusher.await.expect("pusher");
        server.clock.advance(Days::seconds(GRACE + 1));
        purge(&server).await;
        for blob in base.blobs() {
            let response = client
                .get(&format!("/v2/acme/web/site/blobs/{}", sha256(blob)))
                .await;
            assert_eq!(response.status(), 307, "round {round}");
            let url = response.headers()["location"]
                .to_str()
                .expect("location")
                .to_owned();
            let download = reqwest::get(&url).await.expect("download");
            assert_eq!(
                download.status(),
                200,
                "round {round}: the blob of a live manifest was collected"
            );
        }
    }
}

/// A writer that dies leaves its multipart upload open with no record naming it (a
/// monolithic push, an npm publish, a Maven deploy, or a chunk's new part). The purge aborts
/// it once it is older than the grace period, and never before.
async fn unfinished_multipart_uploads_are_aborted(stores: Stores) {
    let (server, _alice, _client) = fixture(stores, PlanLimits::default()).await;
    let before = server.stores.object_count().await;
    let workspace = stowage_domain::Slug::parse("ws", "acme").expect("slug");
    let key = stowage_service::inspect::keys::new_object(&workspace, server.clock_now());
    let blobs = server.registry.inspect_blobs();
    let upload = blobs.start_multipart(&key).await.expect("start");
    blobs
        .put_part(&key, &upload, 1, bytes::Bytes::from(random_bytes(1024)))
        .await
        .expect("part");
    assert!(server.stores.object_count().await > before);
    let report = purge(&server).await;
    assert_eq!(report.unfinished_aborted, 0, "a writer may still be at it");
    server.clock.advance(Days::seconds(GRACE + 1));
    let report = purge(&server).await;
    assert_eq!(report.unfinished_aborted, 1, "{report:?}");
    assert_eq!(server.stores.object_count().await, before);
}

/// The collector dies right after a garbage blob's record is gone, before its object is: the
/// next run deletes the object all the same.
async fn a_collector_killed_midway_is_finished_by_the_next(stores: Stores) {
    let (server, _alice, client) = fixture(stores, PlanLimits::default()).await;
    let before = server.stores.object_count().await;
    let stray = random_bytes(5_000);
    assert_eq!(
        client.push_blob("acme/api/server", &stray).await.status(),
        201
    );
    assert_eq!(server.stores.object_count().await, before + 1);
    // Past the grace period the link goes and the blob is marked; a grace period later the
    // run that deletes it dies before its object goes.
    server.clock.advance(Days::seconds(GRACE + 1));
    purge(&server).await;
    server.clock.advance(Days::seconds(GRACE + 1));
    server.blob_faults.fail_deletes(1);
    assert!(
        server
            .registry
            .purge(&stowage_purge::Content, Duration::from_secs(120))
            .await
            .is_err(),
        "the run died"
    );
    assert_eq!(
        server.stores.object_count().await,
        before + 1,
        "the object stayed"
    );
    let report = purge(&server).await;
    assert_eq!(report.objects_deleted, 1, "{report:?}");
    assert_eq!(server.stores.object_count().await, before);
    let usage = stowage_tests::usage_of(&server, "acme").await;
    assert_eq!((usage.stored_bytes, usage.total_bytes), (0, 0));
}

/// An object that no record names (its writer died between writing and recording it) is
/// deleted by the daily reconciliation once it is older than the grace period; what records
/// name, and what is young, stays.
async fn objects_no_record_names_are_reconciled_away(stores: Stores) {
    let (server, _alice, client) = fixture(stores, PlanLimits::default()).await;
    let img = image(&[10_000], "amd64", OCI_MANIFEST);
    client.push_image("acme/api/server", "v1", &img).await;
    let before = server.stores.object_count().await;
    let workspace = stowage_domain::Slug::parse("ws", "acme").expect("slug");
    let orphan = stowage_service::inspect::keys::new_object(&workspace, server.clock_now());
    server
        .registry
        .inspect_blobs()
        .put(&orphan, bytes::Bytes::from_static(b"nobody's"))
        .await
        .expect("put");
    let carried =
        stowage_service::inspect::keys::upload_remainder(&workspace, "gone", server.clock_now());
    server
        .registry
        .inspect_blobs()
        .put(&carried, bytes::Bytes::from_static(b"carried"))
        .await
        .expect("put");
    let report = purge(&server).await;
    assert_eq!(report.orphans_deleted, 0, "young: its writer may be at it");
    server.clock.advance(Days::days(1) + Days::seconds(GRACE));
    let report = purge(&server).await;
    assert_eq!(report.orphans_deleted, 2, "{report:?}");
    assert_eq!(server.stores.object_count().await, before);
    // The image is whole.
    for blob in img.blobs() {
        let response = client
            .request(
                "HEAD",
                &format!("/v2/acme/api/server/blobs/{}", sha256(blob)),
            )
            .send()
            .await
            .expect("HEAD");
        assert_eq!(response.status(), 200);
    }
    assert_eq!(
        follow_redirect(
            client
                .get(&format!(
                    "/v2/acme/api/server/blobs/{}",
                    sha256(&img.layers[0])
                ))
                .await
        )
        .await,
        img.layers[0]
    );
}

async fn abandoned_uploads_are_cleared(stores: Stores) {
    let (server, _alice, client) = fixture(stores, PlanLimits::default()).await;
    let before = server.stores.object_count().await;
    let location = client.start_upload("acme/api/server").await;
    // Over one part, so a multipart upload is open, plus carried bytes.
    let patched = client
        .request("PATCH", &location)
        .body(random_bytes(9 * 1024 * 1024))
        .send()
        .await
        .expect("PATCH");
    assert_eq!(patched.status(), 202);
    assert!(server.stores.object_count().await > before);
    purge(&server).await;
    assert_eq!(
        client.get(&location).await.status(),
        204,
        "within the grace period it stays"
    );
    server.clock.advance(Days::seconds(GRACE + 1));
    let report = purge(&server).await;
    assert_eq!(report.uploads_expired, 1);
    // Its URL's capability has expired too; with credentials, the session is unknown.
    assert_eq!(client.get(&location).await.status(), 401);
    assert_eq!(
        client
            .get(&stowage_tests::oci::without_capability(&location))
            .await
            .status(),
        404
    );
    assert_eq!(
        server.stores.object_count().await,
        before,
        "its parts and carried bytes are gone"
    );
}

on_both_backends!(
    a_big_workspace_is_purged_in_bounded_runs_with_a_kill,
    usage_matches_a_recount_after_random_pushes_and_deletes
);

async fn a_big_workspace_is_purged_in_bounded_runs_with_a_kill(stores: Stores) {
    use stowage_storage::{Key, Put, Query, Write};
    let stores_backend = stores.backend;
    let (server, alice, _client) = fixture(stores, PlanLimits::default()).await;
    // Written straight to the store: 10,000 items on embedded storage; on moto, whose
    // transactions copy the whole table, 600.
    let (packages, items, budget) = match stores_backend {
        Backend::Embedded => (10, 1000, Duration::from_millis(25)),
        Backend::Aws => (3, 200, Duration::from_millis(400)),
    };
    for package in 0..packages {
        let name = format!("bulk-{package}");
        let (status, _) = server
            .call(
                "POST",
                "/api/workspaces/acme/packages",
                Auth::Bearer(&alice),
                Some(json!({"type": "npm", "name": name, "repository": "web"})),
            )
            .await;
        assert_eq!(status, 201);
        let partition = format!("PKG#acme#npm#{name}");
        for chunk in (0..items).collect::<Vec<_>>().chunks(100) {
            let writes = chunk
                .iter()
                .map(|i| {
                    let record = json!({"version": format!("1.0.{i}"), "published_at": "2026-01-01T00:00:00Z", "published_by": "alice"});
                    Write::Put(Put::new(Key::new(&partition, format!("VERSION#1.0.{i}")), record.to_string().into_bytes()))
                })
                .collect();
            server.stores.metadata.transact(writes).await.expect("seed");
        }
    }
    assert_eq!(
        server
            .status("DELETE", "/api/workspaces/acme", &alice)
            .await,
        202
    );
    server.clock.advance(Days::days(31));

    let mut runs = 0;
    let mut deleted = 0;
    loop {
        runs += 1;
        assert!(runs < 400, "the purge never finished");
        if runs == 2 {
            // Killed in the middle: the run is dropped wherever it stands.
            let killed = tokio::time::timeout(
                budget * 4 / 5,
                purge_within(&server, Duration::from_secs(60)),
            )
            .await;
            assert!(killed.is_err(), "the run was cut short");
        } else {
            let report = purge_within(&server, budget).await;
            deleted += report.items_deleted;
            if report.finished {
                break;
            }
        }
        // Whatever is left stays out of sight.
        assert_eq!(
            server.status("GET", "/api/workspaces/acme", &alice).await,
            404
        );
        assert_eq!(server.status("GET", "/npm/acme/bulk-3", &alice).await, 404);
    }
    assert!(
        runs >= 3,
        "bounded runs: it took {runs} (deleted {deleted} items after the kill)"
    );
    for package in 0..packages {
        let left = server
            .stores
            .metadata
            .query(&Query::prefix(
                format!("PKG#acme#npm#bulk-{package}"),
                "",
                10,
            ))
            .await
            .expect("query");
        assert!(left.items.is_empty(), "bulk-{package} still has items");
    }
    let left = server
        .stores
        .metadata
        .query(&Query::prefix("WS#acme", "", 10))
        .await
        .expect("query");
    assert!(left.items.is_empty(), "the workspace's records are gone");
    let (status, _) = server
        .call(
            "POST",
            "/api/workspaces",
            Auth::Bearer(&alice),
            Some(json!({"slug": "acme", "plan": "standard"})),
        )
        .await;
    assert_eq!(status, 201, "the slug is free");
}

async fn purge_within(server: &TestServer, budget: Duration) -> PurgeReport {
    server
        .registry
        .purge(&stowage_purge::Content, budget)
        .await
        .expect("purge")
}

async fn usage_matches_a_recount_after_random_pushes_and_deletes(stores: Stores) {
    use rand::{Rng, SeedableRng};
    let (server, alice, client) = fixture(stores, PlanLimits::default()).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(20261127);
    // A small pool of contents, so that pushes often share bytes.
    let pool: Vec<Vec<u8>> = (0..6).map(|i| random_bytes(1_000 * (i + 1))).collect();
    let images = ["acme/api/server", "acme/web/site"];
    let mut npm_version = 0;
    for step in 0..60 {
        match rng.random_range(0..6) {
            0 | 1 => {
                let blob = &pool[rng.random_range(0..pool.len())];
                let name = images[rng.random_range(0..2)];
                let status = client.push_blob(name, blob).await.status();
                // 404 (deleted, with how to restore it) while web/site is deleted: another step
                // deletes and restores it.
                assert!(status == 201 || status == 404, "step {step}: {status}");
            }
            2 => {
                let blob = &pool[rng.random_range(0..pool.len())];
                let name = images[rng.random_range(0..2)];
                let status = client
                    .request("DELETE", &format!("/v2/{name}/blobs/{}", sha256(blob)))
                    .send()
                    .await
                    .expect("DELETE")
                    .status();
                // 403 while web/site is deleted.
                assert!(
                    status == 202 || status == 404 || status == 403,
                    "step {step}: {status}"
                );
            }
            3 => {
                npm_version += 1;
                let version = format!("1.0.{npm_version}");
                let document =
                    publish_document("left-pad", &version, &tarball("left-pad", &version));
                assert_eq!(
                    server
                        .call(
                            "PUT",
                            "/npm/acme/left-pad",
                            Auth::Bearer(&alice),
                            Some(document)
                        )
                        .await
                        .0,
                    201
                );
            }
            4 => {
                let file = format!("/maven/acme/com/acme/lib/1.{step}/lib-1.{step}.jar");
                let body = pool[rng.random_range(0..pool.len())].clone();
                assert_eq!(
                    client
                        .request("PUT", &file)
                        .body(body)
                        .send()
                        .await
                        .expect("PUT")
                        .status(),
                    201
                );
            }
            _ => {
                let path = "/api/workspaces/acme/packages/container/web%2Fsite";
                if server.status("DELETE", path, &alice).await != 202 {
                    server
                        .call(
                            "POST",
                            &format!("{path}/restore"),
                            Auth::Bearer(&alice),
                            None,
                        )
                        .await;
                }
            }
        }
        if step % 15 == 14 {
            let usage = stowage_tests::usage_of(&server, "acme").await;
            assert_eq!(
                usage.stored_bytes, usage.total_bytes,
                "step {step}: the running counter against a recount"
            );
            assert_eq!(
                usage.billable_bytes + usage.not_billable_bytes,
                usage.total_bytes
            );
        }
    }
    // Collection changes what is stored; the counter follows.
    for _ in 0..2 {
        server.clock.advance(Days::seconds(GRACE + 1));
        purge(&server).await;
    }
    let usage = stowage_tests::usage_of(&server, "acme").await;
    assert_eq!(usage.stored_bytes, usage.total_bytes, "after collection");
    // Drift, as a lost update would leave it, is repaired by the purge's recount.
    server
        .stores
        .metadata
        .write(stowage_storage::Write::Add {
            key: stowage_storage::Key::new("USAGE#acme", "STORED"),
            delta: 12_345,
        })
        .await
        .expect("drift");
    server
        .call(
            "POST",
            "/api/workspaces/acme/packages/container/web%2Fsite/restore",
            Auth::Bearer(&alice),
            None,
        )
        .await;
    assert_eq!(
        client
            .push_blob("acme/web/site", b"marks the workspace for collection")
            .await
            .status(),
        201
    );
    let report = purge(&server).await;
    assert_eq!(
        report.usage_repaired,
        [("acme".to_owned(), -12_345)],
        "{report:?}"
    );
    let usage = stowage_tests::usage_of(&server, "acme").await;
    assert_eq!(usage.stored_bytes, usage.total_bytes);
}
