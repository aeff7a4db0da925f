//! The registry on the Lambda path: every request an API Gateway event with a base64 body,
//! at most 6 MB, through lambda_http's adapter. Blobs go up in chunks that each fit one
//! invocation, and land in storage in parts that meet S3's 5 MiB floor (which moto enforces).

use std::sync::Arc;

use stowage_domain::{ManualClock, PackageType};
use stowage_http::{AppState, Limits};
use stowage_service::BlobLink;
use stowage_service::Registry;
use stowage_service::inspect::{decode, keys};
use stowage_tests::lambda::{LambdaFunction, registry_with_packages};
use stowage_tests::oci::{OCI_MANIFEST, image, random_bytes, sha256};
use stowage_tests::{ADMIN_TOKEN, Stores, collect, on_both_backends};

on_both_backends!(
    a_chunked_push_fits_the_lambda_limits,
    an_oversized_request_says_how_to_push_in_chunks
);

/// The registry function as deployed, over `stores`, with `acme/api/server` created.
async fn deployed(stores: &Stores) -> (Arc<Registry>, LambdaFunction, String) {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let registry = registry_with_packages(
        stores,
        clock,
        ADMIN_TOKEN,
        "api",
        &[("container", "api/server")],
    )
    .await;
    let state = AppState {
        registry: Arc::clone(&registry),
        public_url: None,
        limits: Limits::LAMBDA,
    };
    let function = LambdaFunction::new(stowage_oci::router(state), "ANY /v2/{proxy+}");
    let basic = stowage_tests::basic_authorization("admin", ADMIN_TOKEN);
    (registry, function, basic)
}

async fn a_chunked_push_fits_the_lambda_limits(stores: Stores) {
    let (registry, function, auth) = deployed(&stores).await;
    let auth = [("authorization", auth.as_str())];
    let blob = random_bytes(14 * 1024 * 1024 + 123);
    let digest = sha256(&blob);

    let started = function
        .call("POST", "/v2/acme/api/server/blobs/uploads/", &auth, b"")
        .await;
    assert_eq!(started.status, 202);
    let max: usize = started
        .header("oci-chunk-max-length")
        .expect("the largest chunk")
        .parse()
        .expect("number");
    assert!(max <= 4_400_000, "a chunk must fit one invocation");
    let location = started.header("location").expect("location").to_owned();
    let mut offset = 0;
    let chunks: Vec<&[u8]> = blob.chunks(max).collect();
    let (last, body) = chunks.split_last().expect("chunks");
    for chunk in body {
        let range = format!("{}-{}", offset, offset + chunk.len() - 1);
        let patched = function
            .call(
                "PATCH",
                &location,
                &[
                    auth[0],
                    ("content-range", &range),
                    ("content-type", "application/octet-stream"),
                ],
                chunk,
            )
            .await;
        assert_eq!(
            patched.status,
            202,
            "{}",
            String::from_utf8_lossy(&patched.body)
        );
        offset += chunk.len();
        assert_eq!(
            patched.header("range"),
            Some(format!("0-{}", offset - 1).as_str())
        );
    }
    let range = format!("{}-{}", offset, blob.len() - 1);
    let finished = function
        .call(
            "PUT",
            &format!("{location}?digest={digest}"),
            &[auth[0], ("content-range", &range)],
            last,
        )
        .await;
    assert_eq!(
        finished.status,
        201,
        "{}",
        String::from_utf8_lossy(&finished.body)
    );

    // The stored blob is exactly what was sent.
    let partition = keys::package_partition(
        &stowage_domain::Slug::parse("ws", "acme").expect("slug"),
        PackageType::Container,
        &stowage_domain::PackageName::parse(PackageType::Container, "name", "api/server")
            .expect("name"),
    );
    let digest_value = stowage_domain::Digest::parse("d", &digest).expect("digest");
    let item = registry
        .inspect_metadata()
        .get(&keys::blob_link(&partition, &digest_value))
        .await
        .expect("read")
        .expect("linked");
    let link: BlobLink = decode(&item).expect("link");
    assert_eq!(link.size, blob.len() as u64);
    let stored = collect(
        registry
            .inspect_blobs()
            .get(&link.object_key, None)
            .await
            .expect("object")
            .body,
    )
    .await;
    assert!(
        stored == blob,
        "the stored bytes differ from the pushed ones"
    );

    // The rest of a push, and a pull, through the same path.
    let img = image(&[100], "amd64", OCI_MANIFEST);
    for small in img.blobs() {
        let pushed = function
            .call(
                "POST",
                &format!(
                    "/v2/acme/api/server/blobs/uploads/?digest={}",
                    sha256(small)
                ),
                &auth,
                small,
            )
            .await;
        assert_eq!(pushed.status, 201);
    }
    let pushed = function
        .call(
            "PUT",
            "/v2/acme/api/server/manifests/v1",
            &[auth[0], ("content-type", OCI_MANIFEST)],
            &img.manifest,
        )
        .await;
    assert_eq!(pushed.status, 201);
    let pulled = function
        .call("GET", "/v2/acme/api/server/manifests/v1", &auth, b"")
        .await;
    assert_eq!(
        (pulled.status, pulled.body.as_slice()),
        (200, img.manifest.as_slice())
    );
    let head = function
        .call(
            "HEAD",
            &format!("/v2/acme/api/server/blobs/{digest}"),
            &auth,
            b"",
        )
        .await;
    assert_eq!(
        (head.status, head.header("content-length")),
        (200, Some(blob.len().to_string().as_str()))
    );
    let get = function
        .call(
            "GET",
            &format!("/v2/acme/api/server/blobs/{digest}"),
            &auth,
            b"",
        )
        .await;
    assert_eq!(get.status, 307);
    assert!(
        get.header("location")
            .is_some_and(|url| url.starts_with("http"))
    );
}

async fn an_oversized_request_says_how_to_push_in_chunks(stores: Stores) {
    let (_registry, function, auth) = deployed(&stores).await;
    let auth = [("authorization", auth.as_str())];
    // Fits the 6 MB event, but not the function's share: refused with how to do it instead.
    let blob = random_bytes(4_500_000);
    let refused = function
        .call(
            "POST",
            &format!(
                "/v2/acme/api/server/blobs/uploads/?digest={}",
                sha256(&blob)
            ),
            &auth,
            &blob,
        )
        .await;
    assert_eq!(refused.status, 413);
    let error = &refused.json()["errors"][0];
    assert_eq!(error["code"], "SIZE_INVALID");
    let message = error["message"].as_str().expect("message");
    assert!(
        message.contains("chunks") && message.contains("PATCH"),
        "{message}"
    );
    let head = function
        .call(
            "HEAD",
            &format!("/v2/acme/api/server/blobs/{}", sha256(&blob)),
            &auth,
            b"",
        )
        .await;
    assert_eq!(head.status, 404, "nothing was stored");
    // Too big for the event itself: the platform refuses it before the function runs.
    let bigger = random_bytes(5_000_000);
    let refused = function
        .call(
            "POST",
            &format!(
                "/v2/acme/api/server/blobs/uploads/?digest={}",
                sha256(&bigger)
            ),
            &auth,
            &bigger,
        )
        .await;
    assert_eq!(refused.status, 413);
}
