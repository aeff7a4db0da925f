//! Real container clients against stowage-local, on both storage pairs: skopeo and buildah
//! (Debian's packages, installed by tests/run).

use serde_json::{Value, json};
use stowage_tests::clients::{available, run};
use stowage_tests::oci::{OCI_MANIFEST, RegistryClient, image, write_layout};
use stowage_tests::{Auth, Stores, TestServer, on_both_backends};

on_both_backends!(
    skopeo_pushes_pulls_copies_lists_and_deletes,
    buildah_pushes_a_multi_arch_index
);

async fn skopeo(args: &[&str]) -> stowage_tests::clients::Run {
    run("skopeo", args, &[]).await
}

async fn skopeo_pushes_pulls_copies_lists_and_deletes(stores: Stores) {
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
    let host = server.url.trim_start_matches("http://").to_owned();
    let work = tempfile::tempdir().expect("folder");
    let authfile = work.path().join("auth.json");
    let authfile = authfile.to_str().expect("path");

    // Log in with a token, as `docker login` would.
    let login = skopeo(&[
        "login",
        "--tls-verify=false",
        "--authfile",
        authfile,
        "-u",
        "alice",
        "-p",
        &alice,
        &host,
    ])
    .await
    .ok("skopeo login");
    assert!(login.stdout.contains("Login Succeeded"), "{}", login.stdout);
    let bad = skopeo(&[
        "login",
        "--tls-verify=false",
        "--authfile",
        authfile,
        "-u",
        "alice",
        "-p",
        "stw_wrong",
        &host,
    ])
    .await;
    assert!(!bad.success);

    let img = image(&[300_000, 2_000_000], "amd64", OCI_MANIFEST);
    let layout = work.path().join("layout");
    write_layout(&layout, &img, "1.0");
    let source = format!("oci:{}:1.0", layout.display());
    let dest = format!("docker://{host}/acme/api/server:1.0");
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--authfile",
        authfile,
        &source,
        &dest,
    ])
    .await
    .ok("skopeo push");

    let inspected = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--authfile",
        authfile,
        &dest,
    ])
    .await
    .ok("skopeo inspect");
    let inspected: Value = serde_json::from_str(&inspected.stdout).expect("inspect JSON");
    assert_eq!(inspected["Digest"], img.digest().as_str());
    assert_eq!(inspected["Architecture"], "amd64");
    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--authfile",
        authfile,
        &dest,
    ])
    .await
    .ok("skopeo inspect --raw");
    assert_eq!(
        raw.stdout.trim_end().as_bytes(),
        img.manifest.as_slice(),
        "the manifest comes back byte for byte"
    );

    // Pull it back into a layout: every blob arrives intact (through the redirect).
    let pulled = work.path().join("pulled");
    let target = format!("oci:{}:1.0", pulled.display());
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--authfile",
        authfile,
        &dest,
        &target,
    ])
    .await
    .ok("skopeo pull");
    for blob in img.blobs() {
        let digest = stowage_tests::oci::sha256(blob);
        let file = pulled.join("blobs/sha256").join(&digest["sha256:".len()..]);
        assert_eq!(&std::fs::read(&file).expect("pulled blob"), blob);
    }

    // Copy between repositories of the workspace, and list tags.
    let copied = format!("docker://{host}/acme/web/site:copied");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--authfile",
        authfile,
        &dest,
        &copied,
    ])
    .await
    .ok("skopeo copy");
    let inspected = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--authfile",
        authfile,
        &copied,
    ])
    .await
    .ok("inspect copy");
    assert_eq!(
        serde_json::from_str::<Value>(&inspected.stdout).expect("json")["Digest"],
        img.digest().as_str()
    );
    let extra = format!("docker://{host}/acme/api/server:extra");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--authfile",
        authfile,
        &dest,
        &extra,
    ])
    .await
    .ok("second tag");
    let tags = skopeo(&[
        "list-tags",
        "--tls-verify=false",
        "--authfile",
        authfile,
        &format!("docker://{host}/acme/api/server"),
    ])
    .await
    .ok("list-tags");
    assert_eq!(
        serde_json::from_str::<Value>(&tags.stdout).expect("json")["Tags"],
        json!(["1.0", "extra"])
    );

    // Delete a tag (the API; skopeo only deletes manifests), then the manifest with skopeo.
    let client = RegistryClient::new(&server.url, "alice", &alice);
    assert_eq!(
        client
            .request("DELETE", "/v2/acme/api/server/manifests/extra")
            .send()
            .await
            .expect("DELETE")
            .status(),
        202
    );
    skopeo(&[
        "delete",
        "--tls-verify=false",
        "--authfile",
        authfile,
        &dest,
    ])
    .await
    .ok("skopeo delete");
    let tags = skopeo(&[
        "list-tags",
        "--tls-verify=false",
        "--authfile",
        authfile,
        &format!("docker://{host}/acme/api/server"),
    ])
    .await
    .ok("list-tags");
    assert_eq!(
        serde_json::from_str::<Value>(&tags.stdout).expect("json")["Tags"],
        json!([])
    );
    assert!(
        !skopeo(&[
            "inspect",
            "--tls-verify=false",
            "--authfile",
            authfile,
            &dest
        ])
        .await
        .success
    );

    // No package: skopeo reports why.
    let denied = skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--authfile",
        authfile,
        &source,
        &format!("docker://{host}/acme/no/package:1"),
    ])
    .await;
    assert!(!denied.success);
    assert!(
        denied.stderr.contains("repository admin must create"),
        "{}",
        denied.stderr
    );

    // A pipeline token pushes to its repository only.
    let (_, pipeline) = server
        .call(
            "POST",
            "/api/workspaces/acme/repositories/api/pipeline-tokens",
            Auth::Bearer(&alice),
            Some(json!({})),
        )
        .await;
    let creds = format!(
        "{}:{}",
        pipeline["username"].as_str().expect("user"),
        pipeline["token"].as_str().expect("token")
    );
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        &creds,
        &source,
        &format!("docker://{host}/acme/api/server:ci"),
    ])
    .await
    .ok("pipeline push");
    let refused = skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        &creds,
        &source,
        &format!("docker://{host}/acme/web/site:ci"),
    ])
    .await;
    assert!(
        !refused.success,
        "a pipeline token of api cannot push to web"
    );
}

async fn buildah_pushes_a_multi_arch_index(stores: Stores) {
    if !available(&["buildah", "skopeo"]) {
        return;
    }
    let server = TestServer::start(stores).await;
    let alice = server
        .user_with_token("alice", &["read:package", "write:package"])
        .await;
    server
        .package(&alice, "acme", "api", "container", "api/multi")
        .await;
    server
        .package(&alice, "acme", "web", "container", "web/multi")
        .await;
    let host = server.url.trim_start_matches("http://").to_owned();
    let work = tempfile::tempdir().expect("folder");
    let root = work.path().join("root");
    let runroot = work.path().join("run");
    let (root, runroot) = (
        root.to_str().expect("path"),
        runroot.to_str().expect("path"),
    );
    let buildah = |args: Vec<String>| {
        let mut all: Vec<String> = [
            "--storage-driver",
            "vfs",
            "--root",
            root,
            "--runroot",
            runroot,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        all.extend(args);
        async move {
            let refs: Vec<&str> = all.iter().map(String::as_str).collect();
            run("buildah", &refs, &[]).await
        }
    };
    let file = work.path().join("hello.txt");
    std::fs::write(&file, "hello from stowage\n").expect("file");
    for arch in ["amd64", "arm64"] {
        let container = buildah(vec![
            "from".into(),
            "--arch".into(),
            arch.into(),
            "scratch".into(),
        ])
        .await
        .ok("buildah from");
        let container = container.stdout.trim().to_owned();
        buildah(vec![
            "copy".into(),
            container.clone(),
            file.display().to_string(),
            "/hello.txt".into(),
        ])
        .await
        .ok("buildah copy");
        buildah(vec![
            "config".into(),
            "--arch".into(),
            arch.into(),
            "--os".into(),
            "linux".into(),
            container.clone(),
        ])
        .await
        .ok("buildah config");
        buildah(vec![
            "commit".into(),
            "--format".into(),
            "oci".into(),
            container,
            format!("img-{arch}"),
        ])
        .await
        .ok("buildah commit");
    }
    buildah(vec!["manifest".into(), "create".into(), "multi".into()])
        .await
        .ok("manifest create");
    for arch in ["amd64", "arm64"] {
        buildah(vec![
            "manifest".into(),
            "add".into(),
            "multi".into(),
            format!("containers-storage:localhost/img-{arch}"),
        ])
        .await
        .ok("manifest add");
    }
    let destination = format!("docker://{host}/acme/api/multi:1");
    let creds = format!("alice:{alice}");
    buildah(vec![
        "manifest".into(),
        "push".into(),
        "--all".into(),
        "--tls-verify=false".into(),
        "--creds".into(),
        creds.clone(),
        "multi".into(),
        destination.clone(),
    ])
    .await
    .ok("buildah manifest push");

    let raw = run(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--creds",
            &creds,
            &destination,
        ],
        &[],
    )
    .await
    .ok("inspect index");
    let index: Value = serde_json::from_str(&raw.stdout).expect("index JSON");
    let archs: Vec<_> = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|m| m["platform"]["architecture"].clone())
        .collect();
    assert_eq!(archs, [json!("amd64"), json!("arm64")]);
    for arch in ["amd64", "arm64"] {
        let inspected = run(
            "skopeo",
            &[
                "inspect",
                "--tls-verify=false",
                "--creds",
                &creds,
                "--override-arch",
                arch,
                &destination,
            ],
            &[],
        )
        .await
        .ok("inspect platform");
        assert_eq!(
            serde_json::from_str::<Value>(&inspected.stdout).expect("json")["Architecture"],
            arch
        );
    }
    // Copy the whole index to another repository and pull it back.
    let copy = format!("docker://{host}/acme/web/multi:1");
    run(
        "skopeo",
        &[
            "copy",
            "--all",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--src-creds",
            &creds,
            "--dest-creds",
            &creds,
            &destination,
            &copy,
        ],
        &[],
    )
    .await
    .ok("skopeo copy --all");
    let copied = run(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--creds",
            &creds,
            &copy,
        ],
        &[],
    )
    .await
    .ok("inspect copy");
    assert_eq!(
        copied.stdout, raw.stdout,
        "the index is copied byte for byte"
    );
    let pulled = work.path().join("pulled");
    run(
        "skopeo",
        &[
            "copy",
            "--all",
            "--src-tls-verify=false",
            "--src-creds",
            &creds,
            &copy,
            &format!("oci:{}:1", pulled.display()),
        ],
        &[],
    )
    .await
    .ok("pull the index");
}
