//! The JSON bodies clients read, pinned as snapshots (`tests/tests/suite/snapshots/`): the
//! management API's answers and errors, an npm package's documents, the container registry's
//! listings and errors. Ids, secrets, times and URLs (their port) are redacted. A change of shape
//! fails here first; review it with `cargo insta review` (or accept it by running the test with
//! `INSTA_UPDATE=always`) and commit the snapshot with the change.

use insta::assert_json_snapshot;
use serde_json::{Value, json};
use stowage_tests::npm::{encoded, publish_document, tarball};
use stowage_tests::oci::{RegistryClient, image};
use stowage_tests::{Auth, Backend, Stores, TestServer};

/// The bodies do not depend on the storage, so the embedded pair alone is run.
async fn server() -> Option<(TestServer, String)> {
    let stores = Stores::new(Backend::Embedded).await?;
    let server = TestServer::start(stores).await;
    let alice = server
        .user_with_token("alice", &["read:package", "write:package"])
        .await;
    Some((server, alice))
}

/// `value` with what changes from run to run replaced by its field's name in brackets: the
/// value of each field in `fields`, or, when it is an object (npm's `time`), each of its values.
fn redacted(value: Value, fields: &[&str]) -> Value {
    match value {
        Value::Object(object) => Value::Object(
            object
                .into_iter()
                .map(|(key, inner)| {
                    let inner = if fields.contains(&key.as_str()) {
                        let mark = Value::String(format!("[{key}]"));
                        match inner {
                            Value::Object(values) => Value::Object(
                                values.into_iter().map(|(k, _)| (k, mark.clone())).collect(),
                            ),
                            _ => mark,
                        }
                    } else {
                        redacted(inner, fields)
                    };
                    (key, inner)
                })
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| redacted(v, fields)).collect())
        }
        other => other,
    }
}

async fn call(
    server: &TestServer,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Value {
    let auth = if token.is_empty() {
        Auth::None
    } else {
        Auth::Bearer(token)
    };
    let (status, body) = server.call(method, path, auth, body).await;
    json!({ "status": status.as_u16(), "body": body })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn management_api_bodies() {
    let Some((server, alice)) = server().await else {
        return;
    };
    let tomorrow = (server.clock_now() + chrono::Duration::days(1)).to_rfc3339();
    let bodies = json!({
        "create_workspace": call(&server, "POST", "/api/workspaces", &alice,
            Some(json!({"slug": "acme", "plan": "standard"}))).await,
        "get_workspace": call(&server, "GET", "/api/workspaces/acme", &alice, None).await,
        "create_repository": call(&server, "POST", "/api/workspaces/acme/repositories", &alice,
            Some(json!({"slug": "web"}))).await,
        "list_repositories": call(&server, "GET", "/api/workspaces/acme/repositories", &alice, None).await,
        "create_package": call(&server, "POST", "/api/workspaces/acme/packages", &alice,
            Some(json!({"type": "npm", "name": "left-pad", "repository": "web"}))).await,
        "publish": call(&server, "PUT", "/npm/acme/left-pad", &alice,
            Some(publish_document("left-pad", "1.0.0", &tarball("left-pad", "1.0.0")))).await,
        "get_package": call(&server, "GET", "/api/workspaces/acme/packages/npm/left-pad", &alice, None).await,
        "set_permission": call(&server, "PUT", "/api/workspaces/acme/repositories/web/permissions/alice", &alice,
            Some(json!({"role": "admin"}))).await,
        "pipeline_token": call(&server, "POST", "/api/workspaces/acme/repositories/web/pipeline-tokens", &alice,
            Some(json!({}))).await,
        "create_token": call(&server, "POST", "/api/tokens", &alice,
            Some(json!({"name": "ci", "scopes": ["read:package"], "expires_at": tomorrow}))).await,
        "list_tokens": call(&server, "GET", "/api/tokens", &alice, None).await,
        "current_user": call(&server, "GET", "/api/user", &alice, None).await,
        "usage": call(&server, "GET", "/api/workspaces/acme/usage", &alice, None).await,
        "delete_package": call(&server, "DELETE", "/api/workspaces/acme/packages/npm/left-pad", &alice, None).await,
        "invalid_field": call(&server, "POST", "/api/workspaces", &alice,
            Some(json!({"slug": "Acme", "plan": "standard"}))).await,
        "missing_field": call(&server, "POST", "/api/workspaces", &alice, Some(json!({}))).await,
        "not_json": server.request("POST", "/api/workspaces", Auth::Bearer(&alice), Some("{".into()))
            .await.json::<Value>().await.expect("json"),
        "unauthenticated": call(&server, "GET", "/api/user", "", None).await,
        "no_such_route": call(&server, "GET", "/api/nothing", &alice, None).await,
        "not_found": call(&server, "GET", "/api/workspaces/elsewhere", &alice, None).await,
    });
    let mut bodies = bodies;
    // Tokens are listed by id, which is random: in name order here.
    if let Some(tokens) = bodies["list_tokens"]["body"]["values"].as_array_mut() {
        tokens.sort_by_key(|token| token["name"].to_string());
    }
    let fields = [
        "created_at",
        "expires_at",
        "published_at",
        "deleted_at",
        "purge_after",
        "token",
        "id",
    ];
    assert_json_snapshot!("management_api", redacted(bodies, &fields));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_documents() {
    let Some((server, alice)) = server().await else {
        return;
    };
    server
        .package(&alice, "acme", "web", "npm", "@acme/ui")
        .await;
    for version in ["1.0.0", "1.1.0"] {
        let document = publish_document("@acme/ui", version, &tarball("@acme/ui", version));
        let path = format!("/npm/acme/{}", encoded("@acme/ui"));
        let (status, body) = server
            .call("PUT", &path, Auth::Bearer(&alice), Some(document))
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let path = format!("/npm/acme/{}", encoded("@acme/ui"));
    let abbreviated = server
        .client
        .get(format!("{}{path}", server.url))
        .bearer_auth(&alice)
        .header("accept", "application/vnd.npm.install-v1+json")
        .send()
        .await
        .expect("GET")
        .json::<Value>()
        .await
        .expect("json");
    let bodies = json!({
        "full": call(&server, "GET", &path, &alice, None).await,
        "abbreviated": abbreviated,
        "version": call(&server, "GET", &format!("{path}/1.1.0"), &alice, None).await,
        "dist_tags": call(&server, "GET", &format!("/npm/acme/-/package/{}/dist-tags", encoded("@acme/ui")), &alice, None).await,
        "whoami": call(&server, "GET", "/npm/acme/-/whoami", &alice, None).await,
        "republish": call(&server, "PUT", &path, &alice,
            Some(publish_document("@acme/ui", "1.0.0", &tarball("@acme/ui", "1.0.0")))).await,
        "unknown_package": call(&server, "GET", "/npm/acme/nothing", &alice, None).await,
    });
    let fields = ["time", "modified", "tarball", "_rev"];
    assert_json_snapshot!("npm_documents", redacted(bodies, &fields));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_registry_bodies() {
    let Some((server, alice)) = server().await else {
        return;
    };
    server
        .package(&alice, "acme", "api", "container", "api/server")
        .await;
    let client = RegistryClient::new(&server.url, "alice", &alice);
    let img = image(
        &[1024],
        "amd64",
        "application/vnd.oci.image.manifest.v1+json",
    );
    for tag in ["v1", "latest"] {
        client.push_image("acme/api/server", tag, &img).await;
    }
    let body = |response: reqwest::Response| async move {
        let status = response.status().as_u16();
        json!({ "status": status, "body": response.json::<Value>().await.unwrap_or(Value::Null) })
    };
    let bodies = json!({
        "tags": body(client.get("/v2/acme/api/server/tags/list").await).await,
        "tags_paged": body(client.get("/v2/acme/api/server/tags/list?n=1").await).await,
        "referrers": body(client.get(&format!("/v2/acme/api/server/referrers/{}", img.digest())).await).await,
        "manifest_unknown": body(client.get("/v2/acme/api/server/manifests/v9").await).await,
        "blob_unknown": body(client.get(&format!("/v2/acme/api/server/blobs/sha256:{}", "0".repeat(64))).await).await,
        "name_unknown": body(client.get("/v2/acme/api/other/tags/list").await).await,
        "digest_invalid": body(client.get("/v2/acme/api/server/manifests/sha256:xyz").await).await,
        "unauthorized": body(reqwest::get(format!("{}/v2/acme/api/server/tags/list", server.url)).await.expect("GET")).await,
    });
    assert_json_snapshot!("container_registry", bodies);
}
