//! The registry's protocol over real HTTP, on both storage pairs: the distribution spec's
//! pull, push, discovery and management, its error codes, and the storage-call budgets.

use serde_json::{Value, json};
use stowage_tests::oci::{
    DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, RegistryClient, error_code, image,
    index, random_bytes, sha256,
};
use stowage_tests::{
    Auth, Stores, TestServer, basic_authorization, follow_redirect, on_both_backends,
};

on_both_backends!(
    every_manifest_type_round_trips_exactly,
    manifests_need_their_content_in_the_repository,
    tags_repoint_and_a_deleted_digest_takes_its_tags,
    blobs_redirect_answer_head_and_serve_ranges,
    uploads_in_every_style,
    a_digest_mismatch_leaves_nothing,
    a_chunk_cut_off_midway_can_be_sent_again,
    a_chunk_that_lost_its_upload_leaves_the_new_holder_intact,
    mounts_need_read_access_on_the_source,
    tag_lists_page_with_links,
    referrers_list_artifacts_by_type,
    bad_input_gets_the_spec_codes,
    basic_auth_token_flow_and_pipelines,
    storage_call_budgets,
    deleting_a_repository_hides_its_images_at_once,
    a_manifest_of_four_mib_round_trips,
);

/// A server with workspace `acme`: repositories `api` (package `api/server`) and `web`
/// (package `web/site`), administered by alice; her registry client.
async fn fixture(stores: Stores) -> (TestServer, String, RegistryClient) {
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
    let client = RegistryClient::new(&server.url, "alice", &alice);
    (server, alice, client)
}

async fn tags_of(client: &RegistryClient, name: &str) -> Vec<String> {
    let body: Value = client
        .get(&format!("/v2/{name}/tags/list"))
        .await
        .json()
        .await
        .expect("json");
    body["tags"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn every_manifest_type_round_trips_exactly(stores: Stores) {
    let (_server, _, client) = fixture(stores).await;
    let oci = image(&[1000, 2000], "amd64", OCI_MANIFEST);
    let docker = image(&[1500], "arm64", DOCKER_MANIFEST);
    client.push_image("acme/api/server", "oci", &oci).await;
    client
        .push_image("acme/api/server", "docker", &docker)
        .await;
    let oci_index = index(&[(&oci, "amd64"), (&docker, "arm64")], OCI_INDEX);
    let docker_list = index(&[(&oci, "amd64"), (&docker, "arm64")], DOCKER_LIST);
    for (reference, media_type, bytes) in [
        ("oci", OCI_MANIFEST, oci.manifest.clone()),
        ("docker", DOCKER_MANIFEST, docker.manifest.clone()),
        ("index", OCI_INDEX, oci_index),
        ("list", DOCKER_LIST, docker_list),
    ] {
        if reference == "index" || reference == "list" {
            let pushed = client
                .push_manifest("acme/api/server", reference, media_type, &bytes)
                .await;
            assert_eq!(pushed.status(), 201, "{reference}");
            assert_eq!(
                pushed.headers()["docker-content-digest"],
                sha256(&bytes).as_str()
            );
            assert_eq!(
                pushed.headers()["location"],
                format!("/v2/acme/api/server/manifests/{}", sha256(&bytes)).as_str()
            );
        }
        for by in [reference.to_owned(), sha256(&bytes)] {
            let response = client
                .get(&format!("/v2/acme/api/server/manifests/{by}"))
                .await;
            assert_eq!(response.status(), 200, "{by}");
            assert_eq!(response.headers()["content-type"], media_type);
            assert_eq!(
                response.headers()["docker-content-digest"],
                sha256(&bytes).as_str()
            );
            assert_eq!(
                response.bytes().await.expect("body").as_ref(),
                &bytes[..],
                "{reference} by {by}"
            );
            let head = client
                .request("HEAD", &format!("/v2/acme/api/server/manifests/{by}"))
                .send()
                .await
                .expect("HEAD");
            assert_eq!(head.status(), 200);
            assert_eq!(
                head.headers()["content-length"],
                bytes.len().to_string().as_str()
            );
            assert_eq!(
                head.headers()["docker-content-digest"],
                sha256(&bytes).as_str()
            );
            assert!(head.bytes().await.expect("body").is_empty());
        }
    }
}

async fn manifests_need_their_content_in_the_repository(stores: Stores) {
    let (_server, _, client) = fixture(stores).await;
    let img = image(&[500], "amd64", OCI_MANIFEST);
    // Nothing pushed yet.
    let response = client
        .push_manifest("acme/api/server", "x", OCI_MANIFEST, &img.manifest)
        .await;
    assert_eq!(response.status(), 400);
    assert_eq!(error_code(response).await, "MANIFEST_BLOB_UNKNOWN");
    // The blobs in another repository of the workspace do not count.
    for blob in img.blobs() {
        assert_eq!(client.push_blob("acme/web/site", blob).await.status(), 201);
    }
    let response = client
        .push_manifest("acme/api/server", "x", OCI_MANIFEST, &img.manifest)
        .await;
    assert_eq!(error_code(response).await, "MANIFEST_BLOB_UNKNOWN");
    // An index whose child is missing.
    let list = index(&[(&img, "amd64")], OCI_INDEX);
    let response = client
        .push_manifest("acme/api/server", "list", OCI_INDEX, &list)
        .await;
    assert_eq!(error_code(response).await, "MANIFEST_BLOB_UNKNOWN");
    let response = client.get("/v2/acme/api/server/manifests/x").await;
    assert_eq!(
        (
            response.status().as_u16(),
            error_code(response).await.as_str()
        ),
        (404, "MANIFEST_UNKNOWN")
    );
    assert!(tags_of(&client, "acme/api/server").await.is_empty());
    // With its blobs in place, it goes in.
    for blob in img.blobs() {
        assert_eq!(
            client.push_blob("acme/api/server", blob).await.status(),
            201
        );
    }
    assert_eq!(
        client
            .push_manifest("acme/api/server", "x", OCI_MANIFEST, &img.manifest)
            .await
            .status(),
        201
    );
    assert_eq!(
        client
            .push_manifest("acme/api/server", "list", OCI_INDEX, &list)
            .await
            .status(),
        201
    );
}

async fn tags_repoint_and_a_deleted_digest_takes_its_tags(stores: Stores) {
    let (server, alice, client) = fixture(stores).await;
    let first = image(&[100], "amd64", OCI_MANIFEST);
    let second = image(&[200], "amd64", OCI_MANIFEST);
    client.push_image("acme/api/server", "latest", &first).await;
    client.push_image("acme/api/server", "v1", &first).await;
    client
        .push_image("acme/api/server", "latest", &second)
        .await;
    let response = client.get("/v2/acme/api/server/manifests/latest").await;
    assert_eq!(
        response.headers()["docker-content-digest"],
        second.digest().as_str()
    );
    assert_eq!(tags_of(&client, "acme/api/server").await, ["latest", "v1"]);
    let (_, package) = server
        .call(
            "GET",
            "/api/workspaces/acme/packages/container/api%2Fserver",
            Auth::Bearer(&alice),
            None,
        )
        .await;
    let versions: Vec<_> = package["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| v["version"].clone())
        .collect();
    assert_eq!(versions, [json!("latest"), json!("v1")]);

    // Deleting a tag leaves the manifest.
    let deleted = client
        .request("DELETE", "/v2/acme/api/server/manifests/v1")
        .send()
        .await
        .expect("DELETE");
    assert_eq!(deleted.status(), 202);
    assert_eq!(tags_of(&client, "acme/api/server").await, ["latest"]);
    assert_eq!(
        client
            .get(&format!("/v2/acme/api/server/manifests/{}", first.digest()))
            .await
            .status(),
        200
    );
    // Deleting by digest takes the manifest and its tags.
    let deleted = client
        .request(
            "DELETE",
            &format!("/v2/acme/api/server/manifests/{}", second.digest()),
        )
        .send()
        .await
        .expect("DELETE");
    assert_eq!(deleted.status(), 202);
    assert!(tags_of(&client, "acme/api/server").await.is_empty());
    let response = client
        .get(&format!(
            "/v2/acme/api/server/manifests/{}",
            second.digest()
        ))
        .await;
    assert_eq!(error_code(response).await, "MANIFEST_UNKNOWN");
    let again = client
        .request(
            "DELETE",
            &format!("/v2/acme/api/server/manifests/{}", second.digest()),
        )
        .send()
        .await
        .expect("DELETE");
    assert_eq!(
        (again.status().as_u16(), error_code(again).await.as_str()),
        (404, "MANIFEST_UNKNOWN")
    );
}

async fn blobs_redirect_answer_head_and_serve_ranges(stores: Stores) {
    let (_server, _, client) = fixture(stores).await;
    let blob = random_bytes(100_000);
    let digest = sha256(&blob);
    let pushed = client.push_blob("acme/api/server", &blob).await;
    assert_eq!(pushed.status(), 201);
    assert_eq!(
        pushed.headers()["location"],
        format!("/v2/acme/api/server/blobs/{digest}").as_str()
    );
    let path = format!("/v2/acme/api/server/blobs/{digest}");
    let head = client.request("HEAD", &path).send().await.expect("HEAD");
    assert_eq!(head.status(), 200, "HEAD is answered, never redirected");
    assert_eq!(head.headers()["content-length"], "100000");
    assert_eq!(head.headers()["docker-content-digest"], digest.as_str());
    assert!(head.headers().get("location").is_none());
    let get = client.get(&path).await;
    assert_eq!(get.status(), 307);
    let location = get.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    // The presigned URL needs no credentials, like S3's.
    let anonymous = reqwest::Client::new();
    let whole = anonymous.get(&location).send().await.expect("follow");
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.bytes().await.expect("body").as_ref(), &blob[..]);
    let part = anonymous
        .get(&location)
        .header("range", "bytes=1000-1999")
        .send()
        .await
        .expect("range");
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.bytes().await.expect("body").as_ref(),
        &blob[1000..2000]
    );
    let tampered = location.replace("blobs", "blobz");
    assert!(
        anonymous
            .get(&tampered)
            .send()
            .await
            .expect("tampered")
            .status()
            .is_client_error()
    );

    assert_eq!(
        client
            .request("DELETE", &path)
            .send()
            .await
            .expect("DELETE")
            .status(),
        202
    );
    let head = client.request("HEAD", &path).send().await.expect("HEAD");
    assert_eq!(head.status(), 404);
    let get = client.get(&path).await;
    assert_eq!(error_code(get).await, "BLOB_UNKNOWN");
}

async fn uploads_in_every_style(stores: Stores) {
    let (_server, _, client) = fixture(stores).await;
    let name = "acme/api/server";
    // POST, then PUT with the whole body.
    let blob = random_bytes(70_000);
    let started = client
        .request("POST", &format!("/v2/{name}/blobs/uploads/"))
        .send()
        .await
        .expect("POST");
    assert_eq!(started.status(), 202);
    assert!(started.headers().contains_key("oci-chunk-min-length"));
    assert!(
        !started.headers().contains_key("oci-chunk-max-length"),
        "the local server takes any size"
    );
    let location = started.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let put = client
        .request("PUT", &format!("{location}?digest={}", sha256(&blob)))
        .body(blob.clone())
        .send()
        .await
        .expect("PUT");
    assert_eq!(put.status(), 201);
    assert_eq!(
        client
            .request("HEAD", &format!("/v2/{name}/blobs/{}", sha256(&blob)))
            .send()
            .await
            .expect("HEAD")
            .status(),
        200
    );

    // Chunked: three PATCHes with Content-Range, a status check, out-of-order refusal, PUT.
    let blob = random_bytes(3 * 1_000_000 + 17);
    let location = client.start_upload(name).await;
    let chunks: Vec<&[u8]> = blob.chunks(1_000_000).collect();
    let mut offset = 0usize;
    for chunk in &chunks[..3] {
        let patched = client
            .request("PATCH", &location)
            .header(
                "content-range",
                format!("{}-{}", offset, offset + chunk.len() - 1),
            )
            .header("content-type", "application/octet-stream")
            .body(chunk.to_vec())
            .send()
            .await
            .expect("PATCH");
        assert_eq!(patched.status(), 202);
        offset += chunk.len();
        assert_eq!(
            patched.headers()["range"],
            format!("0-{}", offset - 1).as_str()
        );
    }
    let status = client.get(&location).await;
    assert_eq!(status.status(), 204);
    assert_eq!(
        status.headers()["range"],
        format!("0-{}", offset - 1).as_str()
    );
    let out_of_order = client
        .request("PATCH", &location)
        .header("content-range", "0-9")
        .body(vec![0u8; 10])
        .send()
        .await
        .expect("PATCH");
    assert_eq!(out_of_order.status(), 416);
    assert_eq!(
        out_of_order.headers()["range"],
        format!("0-{}", offset - 1).as_str()
    );
    let put = client
        .request("PUT", &format!("{location}?digest={}", sha256(&blob)))
        .header("content-range", format!("{}-{}", offset, blob.len() - 1))
        .body(chunks[3].to_vec())
        .send()
        .await
        .expect("PUT");
    assert_eq!(put.status(), 201, "{:?}", put.text().await);
    let get = client
        .get(&format!("/v2/{name}/blobs/{}", sha256(&blob)))
        .await;
    let url = get.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    assert_eq!(
        reqwest::get(&url)
            .await
            .expect("GET")
            .bytes()
            .await
            .expect("body")
            .as_ref(),
        &blob[..]
    );
    // Chunks after the final PUT find no upload.
    let late = client
        .request("PATCH", &location)
        .body(vec![1u8; 5])
        .send()
        .await
        .expect("PATCH");
    assert_eq!(
        (late.status().as_u16(), error_code(late).await.as_str()),
        (404, "BLOB_UPLOAD_UNKNOWN")
    );

    // Cancelled uploads are gone; an upload URL of another image is refused here.
    let location = client.start_upload(name).await;
    let foreign = location.replace("acme/api/server", "acme/web/site");
    let response = client
        .request("PATCH", &foreign)
        .body(vec![1u8; 5])
        .send()
        .await
        .expect("PATCH");
    assert_eq!(response.status(), 401);
    assert_eq!(error_code(response).await, "UNAUTHORIZED");
    assert_eq!(
        client
            .request("DELETE", &location)
            .send()
            .await
            .expect("DELETE")
            .status(),
        204
    );
    let response = client.get(&location).await;
    assert_eq!(error_code(response).await, "BLOB_UPLOAD_UNKNOWN");
    let response = client
        .request("PATCH", &format!("/v2/{name}/blobs/uploads/not-an-upload"))
        .body(vec![1u8])
        .send()
        .await
        .expect("PATCH");
    assert_eq!(error_code(response).await, "BLOB_UPLOAD_UNKNOWN");

    // A sha512 digest is verified too.
    let blob = random_bytes(4096);
    let digest = format!(
        "sha512:{}",
        hex::encode(<sha2::Sha512 as sha2::Digest>::digest(&blob))
    );
    let pushed = client
        .request(
            "POST",
            &format!("/v2/{name}/blobs/uploads/?digest={digest}"),
        )
        .body(blob)
        .send()
        .await
        .expect("POST");
    assert_eq!(pushed.status(), 201);
    assert_eq!(
        client
            .request("HEAD", &format!("/v2/{name}/blobs/{digest}"))
            .send()
            .await
            .expect("HEAD")
            .status(),
        200
    );
}

async fn a_digest_mismatch_leaves_nothing(stores: Stores) {
    let (server, _, client) = fixture(stores).await;
    let before = server.stores.object_count().await;
    let blob = random_bytes(12 * 1024 * 1024);
    let wrong = sha256(b"something else");
    // Monolithic, and chunked over several parts.
    let response = client
        .request(
            "POST",
            &format!("/v2/acme/api/server/blobs/uploads/?digest={wrong}"),
        )
        .body(blob.clone())
        .send()
        .await
        .expect("POST");
    assert_eq!(
        (
            response.status().as_u16(),
            error_code(response).await.as_str()
        ),
        (400, "DIGEST_INVALID")
    );
    let location = client.start_upload("acme/api/server").await;
    let patched = client
        .request("PATCH", &location)
        .body(blob[..9_000_000].to_vec())
        .send()
        .await
        .expect("PATCH");
    assert_eq!(patched.status(), 202);
    let put = client
        .request("PUT", &format!("{location}?digest={wrong}"))
        .body(blob[9_000_000..].to_vec())
        .send()
        .await
        .expect("PUT");
    assert_eq!(
        (put.status().as_u16(), error_code(put).await.as_str()),
        (400, "DIGEST_INVALID")
    );
    assert_eq!(
        client.get(&location).await.status(),
        404,
        "the upload is gone"
    );
    for digest in [wrong, sha256(&blob)] {
        let head = client
            .request("HEAD", &format!("/v2/acme/api/server/blobs/{digest}"))
            .send()
            .await
            .expect("HEAD");
        assert_eq!(head.status(), 404);
    }
    assert_eq!(
        server.stores.object_count().await,
        before,
        "no object is left behind"
    );
}

/// A client that goes away half-way through a chunk: the upload stays as it was before that
/// chunk, nothing the chunk wrote is left behind, and the chunk can be sent again.
async fn a_chunk_cut_off_midway_can_be_sent_again(stores: Stores) {
    let (server, _, client) = fixture(stores).await;
    let blob = random_bytes(20 * 1024 * 1024);
    let first = 1024 * 1024;
    let location = client.start_upload("acme/api/server").await;
    let patched = client
        .request("PATCH", &location)
        .body(blob[..first].to_vec())
        .send()
        .await
        .expect("PATCH");
    assert_eq!(patched.status(), 202);

    let basic = basic_authorization("alice", &client.token);
    let path = location.trim_start_matches(&server.url);
    let range = format!("{first}-{}", blob.len() - 1);
    // Well past a part, so the broken chunk had started a multipart upload.
    server
        .hang_up_midway(
            "PATCH",
            path,
            &[("Authorization", &basic), ("Content-Range", &range)],
            blob.len() - first,
            &blob[first..first + 12 * 1024 * 1024],
        )
        .await;
    assert_eq!(
        client.get(&location).await.headers()["range"],
        format!("0-{}", first - 1).as_str(),
        "the upload is as it was before the broken chunk"
    );

    // The server may still be taking the broken chunk apart, holding the upload: until it
    // lets go, a chunk is refused with the range it stands at, often before its body is sent
    // (the client then sees the connection close under it).
    let mut finished = None;
    for _ in 0..100 {
        let response = client
            .request("PUT", &format!("{location}?digest={}", sha256(&blob)))
            .header("content-range", &range)
            .body(blob[first..].to_vec())
            .send()
            .await;
        if let Ok(response) = response
            && response.status() != 416
        {
            finished = Some(response.status());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(finished, Some(reqwest::StatusCode::CREATED));
    let head = client
        .request(
            "HEAD",
            &format!("/v2/acme/api/server/blobs/{}", sha256(&blob)),
        )
        .send()
        .await
        .expect("HEAD");
    assert_eq!(head.headers()["content-length"], blob.len().to_string());
    assert_eq!(
        server.settled_object_count(1).await,
        1,
        "only the blob is stored: what the broken chunk wrote is freed"
    );
}

/// Sends `slow` from `offset` so slowly that its hold on the upload lapses, meanwhile
/// `taken_over` (as long) from the same offset takes the upload over; the slow chunk is
/// refused when it ends.
async fn lose_a_chunk(
    server: &TestServer,
    client: &RegistryClient,
    location: &str,
    offset: usize,
    slow: &[u8],
    taken_over: &[u8],
) {
    let id = &stowage_tests::oci::upload_session(location);
    let basic = basic_authorization("alice", &client.token);
    let range = format!("{offset}-{}", offset + slow.len() - 1);
    let path = location.trim_start_matches(&server.url);
    let half = slow.len() / 2;
    let pending = server
        .send_partly(
            "PATCH",
            path,
            &[("Authorization", &basic), ("Content-Range", &range)],
            slow.len(),
            &slow[..half],
        )
        .await;
    let mut claimed = false;
    for _ in 0..100 {
        let item = server
            .registry
            .inspect_metadata()
            .get(&stowage_service::inspect::keys::upload(id))
            .await
            .expect("read")
            .expect("upload");
        let record: stowage_service::UploadRecord =
            stowage_service::inspect::decode(&item).expect("record");
        if record.claimed_until.is_some() {
            claimed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(claimed, "the slow chunk holds the upload");
    server.clock.advance(chrono::Duration::minutes(11));
    let patched = client
        .request("PATCH", location)
        .header("content-range", &range)
        .body(taken_over.to_vec())
        .send()
        .await
        .expect("PATCH");
    assert_eq!(patched.status(), 202, "the upload is taken over");
    let (status, body) = stowage_tests::finish_request(pending, &slow[half..]).await;
    assert_eq!(status, 416, "the slow chunk lost the upload: {body}");
}

/// Finishes an upload with `rest`, named by the digest of `whole`.
async fn finish_upload(
    client: &RegistryClient,
    location: &str,
    offset: usize,
    rest: &[u8],
    whole: &[u8],
) -> reqwest::Response {
    client
        .request("PUT", &format!("{location}?digest={}", sha256(whole)))
        .header(
            "content-range",
            format!("{offset}-{}", offset + rest.len() - 1),
        )
        .body(rest.to_vec())
        .send()
        .await
        .expect("PUT")
}

/// A blob's bytes, through its redirect.
async fn blob_bytes(client: &RegistryClient, digest: &str) -> Vec<u8> {
    follow_redirect(
        client
            .get(&format!("/v2/acme/api/server/blobs/{digest}"))
            .await,
    )
    .await
}

/// A chunk so slow that its hold on the upload lapses, and another request takes the upload
/// over: what the slow one wrote never replaces what the new holder wrote, or, where it
/// could not be kept apart (a part of the same multipart upload), the upload fails whole.
async fn a_chunk_that_lost_its_upload_leaves_the_new_holder_intact(stores: Stores) {
    let (server, _, client) = fixture(stores).await;

    // Small chunks: all carried to the next request.
    let chunk = 1024 * 1024;
    let (slow, taken_over, rest) = (
        random_bytes(chunk),
        random_bytes(chunk),
        random_bytes(chunk),
    );
    let location = client.start_upload("acme/api/server").await;
    lose_a_chunk(&server, &client, &location, 0, &slow, &taken_over).await;
    let whole = [taken_over, rest.clone()].concat();
    let finished = finish_upload(&client, &location, chunk, &rest, &whole).await;
    assert_eq!(finished.status(), 201, "{:?}", finished.text().await);
    // The digest is checked against the running hash, so the bytes are checked here.
    assert!(
        blob_bytes(&client, &sha256(&whole)).await == whole,
        "the blob holds its digest's bytes"
    );
    assert_eq!(
        server.settled_object_count(1).await,
        1,
        "no carried bytes are left"
    );

    // A first chunk over a part: each request starts its own multipart upload.
    let chunk = 9 * 1024 * 1024;
    let (slow, taken_over, rest) = (random_bytes(chunk), random_bytes(chunk), random_bytes(1000));
    let location = client.start_upload("acme/api/server").await;
    lose_a_chunk(&server, &client, &location, 0, &slow, &taken_over).await;
    let whole = [taken_over, rest.clone()].concat();
    let finished = finish_upload(&client, &location, chunk, &rest, &whole).await;
    assert_eq!(finished.status(), 201, "{:?}", finished.text().await);
    assert!(
        blob_bytes(&client, &sha256(&whole)).await == whole,
        "the blob holds its digest's bytes"
    );
    assert_eq!(
        server.settled_object_count(2).await,
        2,
        "the slow chunk's multipart upload is freed"
    );

    // A later chunk over a part: both write parts of the one multipart upload.
    let (first, slow, taken_over, rest) = (
        random_bytes(chunk),
        random_bytes(chunk),
        random_bytes(chunk),
        random_bytes(1000),
    );
    let location = client.start_upload("acme/api/server").await;
    let patched = client
        .request("PATCH", &location)
        .header("content-range", format!("0-{}", chunk - 1))
        .body(first.clone())
        .send()
        .await
        .expect("PATCH");
    assert_eq!(patched.status(), 202);
    lose_a_chunk(&server, &client, &location, chunk, &slow, &taken_over).await;
    let whole = [first, taken_over, rest.clone()].concat();
    let finished = finish_upload(&client, &location, 2 * chunk, &rest, &whole).await;
    assert_eq!(
        (
            finished.status().as_u16(),
            error_code(finished).await.as_str()
        ),
        (400, "BLOB_UPLOAD_INVALID"),
        "a part was replaced: the upload must start again"
    );
    assert_eq!(
        server.settled_object_count(2).await,
        2,
        "nothing of the failed upload is left"
    );
}

async fn mounts_need_read_access_on_the_source(stores: Stores) {
    let (server, alice, client) = fixture(stores).await;
    let blob = random_bytes(5000);
    let digest = sha256(&blob);
    client.push_blob("acme/api/server", &blob).await;
    // bob writes to web but cannot read api; carol can do both.
    let bob = server.user_with_token("bob", &["write:package"]).await;
    let carol = server.user_with_token("carol", &["write:package"]).await;
    for (user, roles) in [
        ("bob", vec![("web", "write")]),
        ("carol", vec![("web", "write"), ("api", "read")]),
    ] {
        for (repository, role) in roles {
            let (status, _) = server
                .call(
                    "PUT",
                    &format!("/api/workspaces/acme/repositories/{repository}/permissions/{user}"),
                    Auth::Bearer(&alice),
                    Some(json!({"role": role})),
                )
                .await;
            assert_eq!(status, 201);
        }
    }
    let mount = format!("/v2/acme/web/site/blobs/uploads/?mount={digest}&from=acme/api/server");
    let bob_client = RegistryClient::new(&server.url, "bob", &bob);
    let response = bob_client
        .request("POST", &mount)
        .send()
        .await
        .expect("mount");
    assert_eq!(
        response.status(),
        202,
        "no read access on the source: a plain upload"
    );
    assert!(
        response.headers()["location"]
            .to_str()
            .expect("location")
            .contains("/blobs/uploads/")
    );
    let head = bob_client
        .request("HEAD", &format!("/v2/acme/web/site/blobs/{digest}"))
        .send()
        .await
        .expect("HEAD");
    assert_eq!(head.status(), 404);
    let carol_client = RegistryClient::new(&server.url, "carol", &carol);
    let response = carol_client
        .request("POST", &mount)
        .send()
        .await
        .expect("mount");
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["docker-content-digest"], digest.as_str());
    let head = carol_client
        .request("HEAD", &format!("/v2/acme/web/site/blobs/{digest}"))
        .send()
        .await
        .expect("HEAD");
    assert_eq!(head.status(), 200);
    // Never across workspaces, whoever asks.
    server
        .package(&alice, "other", "repo", "container", "img")
        .await;
    let response = client
        .request(
            "POST",
            &format!("/v2/other/img/blobs/uploads/?mount={digest}&from=acme/api/server"),
        )
        .send()
        .await
        .expect("mount");
    assert_eq!(response.status(), 202);
}

async fn tag_lists_page_with_links(stores: Stores) {
    let (_server, _, client) = fixture(stores).await;
    let img = image(&[10], "amd64", OCI_MANIFEST);
    client.push_image("acme/api/server", "t01", &img).await;
    for tag in ["t02", "t03", "t04", "t05"] {
        assert_eq!(
            client
                .push_manifest("acme/api/server", tag, OCI_MANIFEST, &img.manifest)
                .await
                .status(),
            201
        );
    }
    let mut seen = Vec::new();
    let mut path = "/v2/acme/api/server/tags/list?n=2".to_owned();
    loop {
        let response = client.get(&path).await;
        assert_eq!(response.status(), 200);
        let link = response
            .headers()
            .get("link")
            .map(|l| l.to_str().expect("link").to_owned());
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["name"], "acme/api/server");
        let page: Vec<String> = body["tags"]
            .as_array()
            .expect("tags")
            .iter()
            .map(|t| t.as_str().expect("tag").to_owned())
            .collect();
        assert!(page.len() <= 2);
        seen.extend(page);
        match link {
            Some(link) => {
                assert!(link.ends_with("; rel=\"next\""), "{link}");
                path = link[1..link.find('>').expect("link target")].to_owned();
            }
            None => break,
        }
    }
    assert_eq!(seen, ["t01", "t02", "t03", "t04", "t05"]);
    assert_eq!(tags_of(&client, "acme/api/server").await.len(), 5);
    let last = client
        .get("/v2/acme/api/server/tags/list?last=t03")
        .await
        .json::<Value>()
        .await
        .expect("json");
    assert_eq!(last["tags"], json!(["t04", "t05"]));
    let none = client
        .get("/v2/acme/api/server/tags/list?n=0")
        .await
        .json::<Value>()
        .await
        .expect("json");
    assert_eq!(none["tags"], json!([]));
}

async fn referrers_list_artifacts_by_type(stores: Stores) {
    let (_server, _, client) = fixture(stores).await;
    let img = image(&[100], "amd64", OCI_MANIFEST);
    client.push_image("acme/api/server", "v1", &img).await;
    let empty = b"{}".to_vec();
    assert_eq!(
        client.push_blob("acme/api/server", &empty).await.status(),
        201
    );
    let mut artifacts = Vec::new();
    for artifact_type in [
        "application/vnd.example.sbom+json",
        "application/vnd.example.signature",
    ] {
        let payload = random_bytes(64);
        assert_eq!(
            client.push_blob("acme/api/server", &payload).await.status(),
            201
        );
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": { "mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256(&empty), "size": 2 },
            "layers": [{ "mediaType": "application/octet-stream", "digest": sha256(&payload), "size": 64 }],
            "subject": { "mediaType": OCI_MANIFEST, "digest": img.digest(), "size": img.manifest.len() },
            "annotations": { "org.example.kind": artifact_type },
        })
        .to_string()
        .into_bytes();
        let pushed = client
            .push_manifest(
                "acme/api/server",
                &sha256(&manifest),
                OCI_MANIFEST,
                &manifest,
            )
            .await;
        assert_eq!(pushed.status(), 201);
        assert_eq!(pushed.headers()["oci-subject"], img.digest().as_str());
        artifacts.push(sha256(&manifest));
    }
    let response = client
        .get(&format!("/v2/acme/api/server/referrers/{}", img.digest()))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], OCI_INDEX);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["schemaVersion"], 2);
    let listed: Vec<_> = body["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|m| m["digest"].as_str().expect("digest").to_owned())
        .collect();
    let mut expected = artifacts.clone();
    expected.sort();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(sorted, expected);
    let filtered = client
        .get(&format!(
            "/v2/acme/api/server/referrers/{}?artifactType=application/vnd.example.sbom%2Bjson",
            img.digest()
        ))
        .await;
    assert_eq!(filtered.headers()["oci-filters-applied"], "artifactType");
    let body: Value = filtered.json().await.expect("json");
    assert_eq!(body["manifests"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        body["manifests"][0]["artifactType"],
        "application/vnd.example.sbom+json"
    );
    assert_eq!(
        body["manifests"][0]["annotations"]["org.example.kind"],
        "application/vnd.example.sbom+json"
    );
    let nothing = client
        .get(&format!(
            "/v2/acme/api/server/referrers/{}",
            sha256(b"nothing")
        ))
        .await;
    assert_eq!(nothing.status(), 200);
    assert_eq!(
        nothing.json::<Value>().await.expect("json")["manifests"],
        json!([])
    );
    // Deleting an artifact takes it off the list.
    client
        .request(
            "DELETE",
            &format!("/v2/acme/api/server/manifests/{}", artifacts[0]),
        )
        .send()
        .await
        .expect("DELETE");
    let body: Value = client
        .get(&format!("/v2/acme/api/server/referrers/{}", img.digest()))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(body["manifests"].as_array().map(Vec::len), Some(1));
}

async fn bad_input_gets_the_spec_codes(stores: Stores) {
    let (server, _, client) = fixture(stores).await;
    let img = image(&[100], "amd64", OCI_MANIFEST);
    for blob in img.blobs() {
        client.push_blob("acme/api/server", blob).await;
    }
    let config_digest = sha256(&img.config);
    let manifest_with = |change: &dyn Fn(&mut Value)| {
        let mut value: Value = serde_json::from_slice(&img.manifest).expect("json");
        change(&mut value);
        value.to_string().into_bytes()
    };
    let cases: Vec<(&str, String, Vec<u8>, u16, &str)> = vec![
        (
            "invalid JSON",
            OCI_MANIFEST.into(),
            b"{not json".to_vec(),
            400,
            "MANIFEST_INVALID",
        ),
        (
            "schema 1",
            OCI_MANIFEST.into(),
            manifest_with(&|v| v["schemaVersion"] = json!(1)),
            400,
            "MANIFEST_INVALID",
        ),
        (
            "no schemaVersion",
            OCI_MANIFEST.into(),
            manifest_with(&|v| {
                v.as_object_mut().expect("object").remove("schemaVersion");
            }),
            400,
            "MANIFEST_INVALID",
        ),
        (
            "unknown mediaType",
            "application/vnd.example+json".into(),
            manifest_with(&|v| v["mediaType"] = json!("application/vnd.example+json")),
            400,
            "MANIFEST_INVALID",
        ),
        (
            "type mismatch",
            DOCKER_MANIFEST.into(),
            img.manifest.clone(),
            400,
            "MANIFEST_INVALID",
        ),
        (
            "bad layer digest",
            OCI_MANIFEST.into(),
            manifest_with(&|v| v["layers"][0]["digest"] = json!("sha256:short")),
            400,
            "MANIFEST_INVALID",
        ),
        (
            "md5 config digest",
            OCI_MANIFEST.into(),
            manifest_with(&|v| v["config"]["digest"] = json!(format!("md5:{}", "a".repeat(32)))),
            400,
            "MANIFEST_INVALID",
        ),
        (
            "not an object",
            OCI_MANIFEST.into(),
            b"[1,2,3]".to_vec(),
            400,
            "MANIFEST_INVALID",
        ),
    ];
    for (what, media_type, body, status, code) in cases {
        let response = client
            .push_manifest("acme/api/server", "bad", &media_type, &body)
            .await;
        assert_eq!(response.status(), status, "{what}");
        assert_eq!(error_code(response).await, code, "{what}");
    }
    assert_eq!(config_digest, sha256(&img.config));
    // Pushed under a digest it does not have.
    let response = client
        .push_manifest(
            "acme/api/server",
            &sha256(b"other"),
            OCI_MANIFEST,
            &img.manifest,
        )
        .await;
    assert_eq!(
        (
            response.status().as_u16(),
            error_code(response).await.as_str()
        ),
        (400, "DIGEST_INVALID")
    );
    // Too big.
    let huge = vec![b' '; 4 * 1024 * 1024 + 1];
    let response = client
        .push_manifest("acme/api/server", "huge", OCI_MANIFEST, &huge)
        .await;
    assert_eq!(response.status(), 413);
    // Names, tags and digests in the path.
    for (path, code) in [
        ("/v2/acme/API/manifests/latest", "NAME_INVALID"),
        ("/v2/acme//x/manifests/latest", "NAME_INVALID"),
        (
            &format!("/v2/acme/{}/manifests/latest", "a".repeat(250)),
            "NAME_INVALID",
        ),
        ("/v2/acme/api/server/manifests/-bad-tag", "TAG_INVALID"),
        ("/v2/acme/api/server/manifests/sha256:123", "DIGEST_INVALID"),
        ("/v2/acme/api/server/blobs/sha256:123", "DIGEST_INVALID"),
    ] {
        let response = client
            .request("PUT", path)
            .header("content-type", OCI_MANIFEST)
            .body(img.manifest.clone())
            .send()
            .await
            .expect("PUT");
        assert_eq!(response.status(), 400, "{path}");
        assert_eq!(error_code(response).await, code, "{path}");
    }
    // Path traversal, sent as written (an HTTP client would resolve the `..` first).
    let basic = basic_authorization("alice", &client.token);
    for path in [
        "/v2/acme/a/../b/manifests/latest",
        "/v2/acme/../acme/api/server/manifests/latest",
        "/v2/acme/api/%2e%2e/x/manifests/latest",
    ] {
        let (status, body) = server
            .raw("GET", path, &[("Authorization", &basic)], b"")
            .await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains("NAME_INVALID"), "{path}: {body}");
    }
    let response = client
        .request("PUT", "/v2/acme/api/server/blobs/uploads/x")
        .send()
        .await
        .expect("PUT");
    assert_eq!(
        error_code(response).await,
        "DIGEST_INVALID",
        "PUT without ?digest="
    );
    let response = client
        .get(&format!("/v2/acme/api/server/blobs/{}", sha256(b"none")))
        .await;
    assert_eq!(
        (
            response.status().as_u16(),
            error_code(response).await.as_str()
        ),
        (404, "BLOB_UNKNOWN")
    );
    let response = client.get("/v2/acme/api/server/manifests/none").await;
    assert_eq!(
        (
            response.status().as_u16(),
            error_code(response).await.as_str()
        ),
        (404, "MANIFEST_UNKNOWN")
    );
    let response = client.get("/v2/acme/nothing/here/manifests/latest").await;
    assert_eq!(
        (
            response.status().as_u16(),
            error_code(response).await.as_str()
        ),
        (404, "NAME_UNKNOWN")
    );
    // A tag outside the grammar names no manifest: reads and deletes find nothing (the
    // spec's 404), in a repository the caller can read, and NAME_UNKNOWN in one that is not.
    for (path, code, methods) in [
        (
            "/v2/acme/api/server/manifests/-bad-tag",
            "MANIFEST_UNKNOWN",
            &["GET", "DELETE"][..],
        ),
        (
            "/v2/acme/api/server/manifests/.hidden",
            "MANIFEST_UNKNOWN",
            &["GET", "DELETE"],
        ),
        (
            "/v2/acme/nothing/here/manifests/-bad-tag",
            "NAME_UNKNOWN",
            &["GET"],
        ),
    ] {
        for &method in methods {
            let response = client.request(method, path).send().await.expect("send");
            assert_eq!(response.status(), 404, "{method} {path}");
            assert_eq!(error_code(response).await, code, "{method} {path}");
        }
        let response = client.request("HEAD", path).send().await.expect("HEAD");
        assert_eq!(response.status(), 404, "HEAD {path}");
    }
    // Pushing where no package exists: denied, saying an admin must create it.
    let response = client.push_blob("acme/not/created", b"x").await;
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["errors"][0]["code"], "DENIED");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("repository admin must create")
    );
    assert!(
        tags_of(&client, "acme/api/server").await.is_empty(),
        "nothing was stored"
    );
}

async fn basic_auth_token_flow_and_pipelines(stores: Stores) {
    let (server, alice, client) = fixture(stores).await;
    let anonymous = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let ping = anonymous
        .get(format!("{}/v2/", server.url))
        .send()
        .await
        .expect("ping");
    assert_eq!(ping.status(), 401);
    let challenge = ping.headers()["www-authenticate"]
        .to_str()
        .expect("challenge")
        .to_owned();
    assert!(
        challenge.starts_with(&format!("Bearer realm=\"{}/v2/token\"", server.url)),
        "{challenge}"
    );
    assert_eq!(error_code(ping).await, "UNAUTHORIZED");
    let scoped = anonymous
        .get(format!("{}/v2/acme/api/server/tags/list", server.url))
        .send()
        .await
        .expect("tags");
    assert!(
        scoped.headers()["www-authenticate"]
            .to_str()
            .expect("challenge")
            .contains("scope=\"repository:acme/api/server:pull\"")
    );
    assert_eq!(client.get("/v2/").await.status(), 200);

    // The token flow: credentials once, then a signed token.
    let token = |user: &str, secret: &str, scope: &str| {
        let request = anonymous
            .get(format!("{}/v2/token?service=x&scope={scope}", server.url))
            .basic_auth(user, Some(secret));
        async move { request.send().await.expect("token") }
    };
    let response = token("alice", &alice, "repository:acme/api/server:pull,push").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["access"][0]["actions"], json!(["pull", "push"]));
    assert!(body["expires_in"].as_i64().expect("expiry") >= 60);
    let bearer = body["token"].as_str().expect("token").to_owned();
    let img = image(&[300], "amd64", OCI_MANIFEST);
    for blob in img.blobs() {
        let pushed = anonymous
            .post(format!(
                "{}/v2/acme/api/server/blobs/uploads/?digest={}",
                server.url,
                sha256(blob)
            ))
            .bearer_auth(&bearer)
            .body(blob.clone())
            .send()
            .await
            .expect("push");
        assert_eq!(pushed.status(), 201);
    }
    let pushed = anonymous
        .put(format!("{}/v2/acme/api/server/manifests/v1", server.url))
        .bearer_auth(&bearer)
        .header("content-type", OCI_MANIFEST)
        .body(img.manifest.clone())
        .send()
        .await
        .expect("push manifest");
    assert_eq!(pushed.status(), 201);
    assert_eq!(
        token("alice", "stw_wrong", "repository:acme/api/server:pull")
            .await
            .status(),
        401
    );
    assert_eq!(
        anonymous
            .get(format!("{}/v2/token", server.url))
            .send()
            .await
            .expect("token")
            .status(),
        401
    );

    // A reader gets pull only, and pushing with that token is denied.
    let reader = server.user_with_token("rita", &["read:package"]).await;
    server
        .call(
            "PUT",
            "/api/workspaces/acme/repositories/api/permissions/rita",
            Auth::Bearer(&alice),
            Some(json!({"role": "write"})),
        )
        .await;
    let body: Value = token("rita", &reader, "repository:acme/api/server:pull,push")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        body["access"][0]["actions"],
        json!(["pull"]),
        "a read-only token caps a write role"
    );
    let rita_bearer = body["token"].as_str().expect("token").to_owned();
    let denied = anonymous
        .post(format!("{}/v2/acme/api/server/blobs/uploads/", server.url))
        .bearer_auth(&rita_bearer)
        .send()
        .await
        .expect("push");
    assert_eq!(
        (denied.status().as_u16(), error_code(denied).await.as_str()),
        (403, "DENIED")
    );
    let pulled = anonymous
        .get(format!("{}/v2/acme/api/server/manifests/v1", server.url))
        .bearer_auth(&rita_bearer)
        .send()
        .await
        .expect("pull");
    assert_eq!(pulled.status(), 200);

    // A pipeline token works for its repository's images only.
    let (_, pipeline) = server
        .call(
            "POST",
            "/api/workspaces/acme/repositories/api/pipeline-tokens",
            Auth::Bearer(&alice),
            Some(json!({})),
        )
        .await;
    let ci = RegistryClient::new(
        &server.url,
        pipeline["username"].as_str().expect("user"),
        pipeline["token"].as_str().expect("token"),
    );
    ci.push_image(
        "acme/api/server",
        "ci",
        &image(&[50], "amd64", OCI_MANIFEST),
    )
    .await;
    let response = ci.push_blob("acme/web/site", b"nope").await;
    assert_eq!(
        (
            response.status().as_u16(),
            error_code(response).await.as_str()
        ),
        (403, "DENIED")
    );
    let response = ci.get("/v2/acme/web/site/tags/list").await;
    assert_eq!(error_code(response).await, "NAME_UNKNOWN");

    // Registry tokens expire.
    server.clock.advance(chrono::Duration::seconds(61));
    let expired = anonymous
        .get(format!("{}/v2/acme/api/server/tags/list", server.url))
        .bearer_auth(&bearer)
        .send()
        .await
        .expect("tags");
    assert_eq!(expired.status(), 401);
}

async fn storage_call_budgets(stores: Stores) {
    let (server, alice, client) = fixture(stores).await;
    let img = image(&[1000], "amd64", OCI_MANIFEST);
    client.push_image("acme/api/server", "v1", &img).await;
    let body: Value = reqwest::Client::new()
        .get(format!(
            "{}/v2/token?scope=repository:acme/api/server:pull",
            server.url
        ))
        .basic_auth("alice", Some(&alice))
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let bearer = body["token"].as_str().expect("token").to_owned();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let layer = sha256(&img.layers[0]);
    // (request, metadata reads, queries, writes) each may make, and no blob-store call.
    for (path, method, budget) in [
        (
            "/v2/acme/api/server/manifests/v1".to_owned(),
            "GET",
            (2, 0, 0),
        ),
        (
            "/v2/acme/api/server/manifests/v1".to_owned(),
            "HEAD",
            (2, 0, 0),
        ),
        (
            format!("/v2/acme/api/server/manifests/{}", img.digest()),
            "GET",
            (1, 0, 0),
        ),
        (
            format!("/v2/acme/api/server/blobs/{layer}"),
            "GET",
            (1, 0, 0),
        ),
        (
            format!("/v2/acme/api/server/blobs/{layer}"),
            "HEAD",
            (1, 0, 0),
        ),
    ] {
        server.metadata_calls.reset();
        server.blob_calls.reset();
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let response = http
            .request(method.clone(), format!("{}{path}", server.url))
            .bearer_auth(&bearer)
            .send()
            .await
            .expect("request");
        assert!(
            response.status().is_success() || response.status().is_redirection(),
            "{method} {path}: {}",
            response.status()
        );
        assert_eq!(
            server.metadata_calls.snapshot(),
            budget,
            "{method} {path}: no credential read, and within budget"
        );
        assert_eq!(
            server.blob_calls.total(),
            0,
            "{method} {path}: no blob-store call"
        );
    }
}

async fn deleting_a_repository_hides_its_images_at_once(stores: Stores) {
    let (server, alice, client) = fixture(stores).await;
    client
        .push_image(
            "acme/api/server",
            "v1",
            &image(&[10], "amd64", OCI_MANIFEST),
        )
        .await;
    let body: Value = reqwest::Client::new()
        .get(format!(
            "{}/v2/token?scope=repository:acme/api/server:pull",
            server.url
        ))
        .basic_auth("alice", Some(&alice))
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let bearer = body["token"].as_str().expect("token").to_owned();
    let (status, _) = server
        .call(
            "DELETE",
            "/api/workspaces/acme/repositories/api",
            Auth::Bearer(&alice),
            None,
        )
        .await;
    assert_eq!(status, 202);
    for auth in ["basic", "bearer"] {
        let request =
            reqwest::Client::new().get(format!("{}/v2/acme/api/server/manifests/v1", server.url));
        let request = if auth == "basic" {
            request.basic_auth("alice", Some(&alice))
        } else {
            request.bearer_auth(&bearer)
        };
        let response = request.send().await.expect("GET");
        assert_eq!(
            (
                response.status().as_u16(),
                error_code(response).await.as_str()
            ),
            (404, "NAME_UNKNOWN"),
            "{auth}"
        );
    }
}

async fn a_manifest_of_four_mib_round_trips(stores: Stores) {
    let (_server, _, client) = fixture(stores).await;
    let img = image(&[10], "amd64", OCI_MANIFEST);
    for blob in img.blobs() {
        client.push_blob("acme/api/server", blob).await;
    }
    // Too big for a metadata record: kept in the blob store, and served exactly all the same.
    let mut value: Value = serde_json::from_slice(&img.manifest).expect("json");
    let filler = "x".repeat(4 * 1024 * 1024 - img.manifest.len() - 64);
    value["annotations"] = json!({ "org.example.filler": filler });
    let big = value.to_string().into_bytes();
    assert!(big.len() <= 4 * 1024 * 1024 && big.len() > 4_000_000);
    let pushed = client
        .push_manifest("acme/api/server", "big", OCI_MANIFEST, &big)
        .await;
    assert_eq!(pushed.status(), 201);
    let pulled = client.get("/v2/acme/api/server/manifests/big").await;
    assert_eq!(pulled.status(), 200);
    assert_eq!(pulled.bytes().await.expect("body").as_ref(), &big[..]);
    let deleted = client
        .request(
            "DELETE",
            &format!("/v2/acme/api/server/manifests/{}", sha256(&big)),
        )
        .send()
        .await
        .expect("DELETE");
    assert_eq!(deleted.status(), 202);
    assert_eq!(
        client
            .get("/v2/acme/api/server/manifests/big")
            .await
            .status(),
        404
    );
    // A method an endpoint does not take.
    let response = client
        .request("POST", "/v2/acme/api/server/manifests/big")
        .send()
        .await
        .expect("POST");
    assert_eq!(
        (
            response.status().as_u16(),
            error_code(response).await.as_str()
        ),
        (405, "UNSUPPORTED")
    );
}
