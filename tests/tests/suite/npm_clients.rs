//! Real npm clients against stowage-local, on both storage pairs: npm (the machine's, 11.x),
//! pnpm and yarn 4 (installed from the npm registry by tests/run).

use std::path::Path;

use serde_json::{Value, json};
use stowage_tests::clients::{Run, available, run};
use stowage_tests::{Auth, Stores, TestServer, on_both_backends};

on_both_backends!(
    npm_publishes_installs_tags_deprecates_and_unpublishes,
    pnpm_and_yarn_install,
    twenty_npm_publishes_at_once
);

/// An npm user: their own .npmrc and cache, pointing at the workspace's registry.
pub(crate) struct NpmUser {
    home: tempfile::TempDir,
    registry: String,
}

impl NpmUser {
    pub(crate) fn new(server: &TestServer, token: &str) -> Self {
        let home = tempfile::tempdir().expect("home");
        let registry = format!("{}/npm/acme/", server.url);
        let host = registry.trim_start_matches("http:");
        let npmrc = format!(
            "registry={registry}\n{host}:_authToken={token}\nfund=false\naudit=false\nupdate-notifier=false\n"
        );
        std::fs::write(home.path().join(".npmrc"), npmrc).expect("npmrc");
        Self { home, registry }
    }

    pub(crate) fn env(&self) -> Vec<(String, String)> {
        vec![
            (
                "npm_config_userconfig".into(),
                self.home.path().join(".npmrc").display().to_string(),
            ),
            (
                "npm_config_cache".into(),
                self.home.path().join("cache").display().to_string(),
            ),
            ("HOME".into(), self.home.path().display().to_string()),
        ]
    }

    pub(crate) async fn npm(&self, dir: &Path, args: &[&str]) -> Run {
        let mut all = vec!["--prefix".to_owned(), dir.display().to_string()];
        all.extend(args.iter().map(|a| a.to_string()));
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let args: Vec<&str> = all.iter().map(String::as_str).collect();
        run("npm", &args, &env).await
    }
}

/// A package folder for `npm publish`.
pub(crate) fn package_dir(root: &Path, name: &str, version: &str) -> std::path::PathBuf {
    let dir = root.join(format!("{}-{version}", name.replace('/', "_")));
    std::fs::create_dir_all(&dir).expect("folder");
    let manifest = json!({ "name": name, "version": version, "description": format!("{name} for tests"), "main": "index.js", "keywords": ["stowage"] });
    std::fs::write(dir.join("package.json"), manifest.to_string()).expect("package.json");
    std::fs::write(
        dir.join("index.js"),
        format!("module.exports = {:?};\n", format!("{name}@{version}")),
    )
    .expect("index.js");
    dir
}

pub(crate) fn app_dir(root: &Path, dependencies: Value) -> std::path::PathBuf {
    let dir = root.join(format!("app-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("folder");
    std::fs::write(
        dir.join("package.json"),
        json!({ "name": "app", "version": "1.0.0", "private": true, "dependencies": dependencies })
            .to_string(),
    )
    .expect("package.json");
    dir
}

async fn npm_publishes_installs_tags_deprecates_and_unpublishes(stores: Stores) {
    if !available(&["npm"]) {
        return;
    }
    let server = TestServer::start(stores).await;
    let alice = server
        .user_with_token("alice", &["read:package", "write:package"])
        .await;
    server
        .package(&alice, "acme", "web", "npm", "@acme/ui")
        .await;
    let (status, _) = server
        .call(
            "POST",
            "/api/workspaces/acme/packages",
            Auth::Bearer(&alice),
            Some(json!({"type": "npm", "name": "left-pad", "repository": "web"})),
        )
        .await;
    assert_eq!(status, 201);
    let user = NpmUser::new(&server, &alice);
    let work = tempfile::tempdir().expect("work");

    for (name, version) in [
        ("@acme/ui", "1.0.0"),
        ("@acme/ui", "1.1.0"),
        ("@acme/ui", "2.0.0-beta.1"),
        ("left-pad", "1.0.0"),
    ] {
        let dir = package_dir(work.path(), name, version);
        let tag = if version.contains("beta") {
            vec!["--tag", "next"]
        } else {
            vec![]
        };
        let mut args = vec!["publish"];
        args.extend(tag);
        let published = run_in(&user, &dir, &args).await.ok("npm publish");
        assert!(
            published.stdout.contains(&format!("{name}@{version}")),
            "{}",
            published.stdout
        );
    }
    let again = run_in(
        &user,
        &package_dir(work.path(), "left-pad", "1.0.0"),
        &["publish"],
    )
    .await;
    assert!(!again.success);
    assert!(
        again.stderr.contains("EPUBLISHCONFLICT") || again.stderr.contains("previously published"),
        "{}",
        again.stderr
    );

    // Install by range: the highest matching version, not the beta.
    let app = app_dir(
        work.path(),
        json!({ "@acme/ui": "^1.0.0", "left-pad": "*" }),
    );
    user.npm(&app, &["install"]).await.ok("npm install");
    let installed =
        std::fs::read_to_string(app.join("node_modules/@acme/ui/index.js")).expect("installed");
    assert!(installed.contains("@acme/ui@1.1.0"), "{installed}");
    assert!(app.join("node_modules/left-pad/index.js").exists());

    let view = user
        .npm(work.path(), &["view", "@acme/ui", "--json"])
        .await
        .ok("npm view");
    let view: Value = serde_json::from_str(&view.stdout).expect("view JSON");
    assert_eq!(view["versions"], json!(["1.0.0", "1.1.0", "2.0.0-beta.1"]));
    assert_eq!(
        view["dist-tags"],
        json!({"latest": "1.1.0", "next": "2.0.0-beta.1"})
    );

    // dist-tag add, ls, rm.
    user.npm(
        work.path(),
        &["dist-tag", "add", "@acme/ui@1.0.0", "stable"],
    )
    .await
    .ok("dist-tag add");
    let tags = user
        .npm(work.path(), &["dist-tag", "ls", "@acme/ui"])
        .await
        .ok("dist-tag ls");
    assert!(
        tags.stdout.contains("stable: 1.0.0") && tags.stdout.contains("next: 2.0.0-beta.1"),
        "{}",
        tags.stdout
    );
    user.npm(work.path(), &["dist-tag", "rm", "@acme/ui", "stable"])
        .await
        .ok("dist-tag rm");
    let tags = user
        .npm(work.path(), &["dist-tag", "ls", "@acme/ui"])
        .await
        .ok("dist-tag ls");
    assert!(!tags.stdout.contains("stable"), "{}", tags.stdout);

    // deprecate, and undo it.
    user.npm(work.path(), &["deprecate", "@acme/ui@1.0.0", "use 1.1"])
        .await
        .ok("deprecate");
    let deprecated = user
        .npm(work.path(), &["view", "@acme/ui@1.0.0", "deprecated"])
        .await
        .ok("view deprecated");
    assert_eq!(deprecated.stdout.trim(), "use 1.1");
    user.npm(work.path(), &["deprecate", "@acme/ui@1.0.0", ""])
        .await
        .ok("undeprecate");
    let deprecated = user
        .npm(work.path(), &["view", "@acme/ui@1.0.0", "deprecated"])
        .await
        .ok("view deprecated");
    assert_eq!(deprecated.stdout.trim(), "");

    // search, whoami, ping.
    let found = user
        .npm(work.path(), &["search", "pad", "--json"])
        .await
        .ok("search");
    let found: Value = serde_json::from_str(&found.stdout).expect("search JSON");
    assert_eq!(found[0]["name"], "left-pad");
    assert_eq!(
        user.npm(work.path(), &["whoami"])
            .await
            .ok("whoami")
            .stdout
            .trim(),
        "alice"
    );
    user.npm(work.path(), &["ping"]).await.ok("ping");

    // unpublish one version, then the whole package.
    user.npm(work.path(), &["unpublish", "@acme/ui@1.0.0"])
        .await
        .ok("unpublish version");
    let versions = user
        .npm(work.path(), &["view", "@acme/ui", "versions", "--json"])
        .await
        .ok("view versions");
    assert_eq!(
        serde_json::from_str::<Value>(&versions.stdout).expect("json"),
        json!(["1.1.0", "2.0.0-beta.1"])
    );
    user.npm(work.path(), &["unpublish", "@acme/ui", "--force"])
        .await
        .ok("unpublish package");
    assert!(!user.npm(work.path(), &["view", "@acme/ui"]).await.success);

    // No package: npm shows why.
    let refused = run_in(
        &user,
        &package_dir(work.path(), "not-created", "1.0.0"),
        &["publish"],
    )
    .await;
    assert!(!refused.success);
    assert!(
        refused.stderr.contains("repository admin must create"),
        "{}",
        refused.stderr
    );
    assert!(user.registry.ends_with("/npm/acme/"));
}

/// Runs npm inside a folder (publish works on the current folder).
pub(crate) async fn run_in(user: &NpmUser, dir: &Path, args: &[&str]) -> Run {
    let env = user.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let script = format!(
        "cd '{}' && npm {}",
        dir.display(),
        args.iter()
            .map(|a| format!("'{a}'"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    run("sh", &["-c", &script], &env).await
}

async fn pnpm_and_yarn_install(stores: Stores) {
    if !available(&["npm", "pnpm", "yarn"]) {
        return;
    }
    let server = TestServer::start(stores).await;
    let alice = server
        .user_with_token("alice", &["read:package", "write:package"])
        .await;
    server
        .package(&alice, "acme", "web", "npm", "@acme/ui")
        .await;
    let user = NpmUser::new(&server, &alice);
    let work = tempfile::tempdir().expect("work");
    for version in ["1.0.0", "1.2.0"] {
        run_in(
            &user,
            &package_dir(work.path(), "@acme/ui", version),
            &["publish"],
        )
        .await
        .ok("npm publish");
    }

    // pnpm reads the same .npmrc, and spells scoped names @acme%2Fui. Like yarn 4, it skips
    // versions less than a day old unless told otherwise (judged from the document's `time`).
    let app = app_dir(work.path(), json!({ "@acme/ui": "^1.0.0" }));
    std::fs::copy(user.home.path().join(".npmrc"), app.join(".npmrc")).expect("npmrc");
    let store = work.path().join("pnpm-store");
    let script = format!(
        "cd '{}' && pnpm install --no-frozen-lockfile --store-dir '{}'",
        app.display(),
        store.display()
    );
    let mut env = user.env();
    env.push(("PNPM_CONFIG_MINIMUM_RELEASE_AGE".into(), "0".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    run("sh", &["-c", &script], &env).await.ok("pnpm install");
    let installed = std::fs::read_to_string(app.join("node_modules/@acme/ui/index.js"))
        .expect("installed by pnpm");
    assert!(installed.contains("1.2.0"), "{installed}");
    // pnpm's own dist-tag, deprecate and unpublish, through the same document rules as npm's.
    let pnpm = |args: &'static str| {
        let script = format!("cd '{}' && pnpm {args}", app.display());
        let env = env.clone();
        async move { run("sh", &["-c", &script], &env).await }
    };
    pnpm("dist-tag add @acme/ui@1.0.0 stable")
        .await
        .ok("pnpm dist-tag add");
    pnpm("deprecate @acme/ui@1.0.0 'use 1.2'")
        .await
        .ok("pnpm deprecate");
    pnpm("unpublish @acme/ui@1.2.0").await.ok("pnpm unpublish");
    let view = run_in(&user, work.path(), &["view", "@acme/ui", "--json"])
        .await
        .ok("npm view");
    let view: Value = serde_json::from_str(&view.stdout).expect("view JSON");
    assert_eq!(view["versions"], json!(["1.0.0"]));
    assert_eq!(
        view["dist-tags"],
        json!({"latest": "1.0.0", "stable": "1.0.0"})
    );
    assert_eq!(view["deprecated"], "use 1.2");
    let republished = run_in(
        &user,
        &package_dir(work.path(), "@acme/ui", "1.2.0"),
        &["publish"],
    )
    .await;
    assert!(
        !republished.success,
        "an unpublished version is never reused"
    );
    assert!(
        republished.stderr.contains("published before"),
        "{}",
        republished.stderr
    );
    run_in(
        &user,
        &package_dir(work.path(), "@acme/ui", "1.2.1"),
        &["publish"],
    )
    .await
    .ok("npm publish 1.2.1");

    // yarn 4 builds tarball URLs itself, sends no Accept, and judges versions by their age.
    // Under CI=true (as on CI machines) it refuses to create a lockfile unless told it may.
    let app = app_dir(work.path(), json!({ "@acme/ui": "^1.0.0" }));
    let host = server
        .url
        .trim_start_matches("http://")
        .split(':')
        .next()
        .expect("host")
        .to_owned();
    let yarnrc = format!(
        "npmRegistryServer: \"{}\"\nunsafeHttpWhitelist: [\"{host}\"]\nnpmAlwaysAuth: true\nnpmAuthToken: \"{alice}\"\n\
         npmMinimalAgeGate: 0\nenableImmutableInstalls: false\nnodeLinker: node-modules\nenableTelemetry: false\nenableGlobalCache: false\n",
        user.registry
    );
    std::fs::write(app.join(".yarnrc.yml"), yarnrc).expect("yarnrc");
    let cache = work.path().join("yarn-cache");
    let script = format!(
        "cd '{}' && YARN_CACHE_FOLDER='{}' yarn install",
        app.display(),
        cache.display()
    );
    run(
        "sh",
        &["-c", &script],
        &[("HOME", &user.home.path().display().to_string())],
    )
    .await
    .ok("yarn install");
    let installed = std::fs::read_to_string(app.join("node_modules/@acme/ui/index.js"))
        .expect("installed by yarn");
    assert!(installed.contains("1.2.1"), "{installed}");
    // yarn's tags: added, listed, removed; never on an unpublished version.
    let yarn = |args: &'static str| {
        let script = format!("cd '{}' && yarn npm tag {args}", app.display());
        let home = user.home.path().display().to_string();
        async move { run("sh", &["-c", &script], &[("HOME", &home)]).await }
    };
    yarn("add @acme/ui@1.2.1 beta").await.ok("yarn npm tag add");
    let listed = yarn("list @acme/ui").await.ok("yarn npm tag list");
    assert!(listed.stdout.contains("beta → 1.2.1"), "{}", listed.stdout);
    yarn("remove @acme/ui beta").await.ok("yarn npm tag remove");
    let listed = yarn("list @acme/ui").await.ok("yarn npm tag list");
    assert!(!listed.stdout.contains("beta"), "{}", listed.stdout);
    assert!(!yarn("add @acme/ui@1.2.0 gone").await.success);
}

/// Twenty `npm publish` processes at once into one workspace (as parallel CI jobs do): every
/// one succeeds, npm being a client that does not retry what it is refused.
async fn twenty_npm_publishes_at_once(stores: Stores) {
    if !available(&["npm"]) {
        return;
    }
    let server = TestServer::start(stores).await;
    let alice = server
        .user_with_token("alice", &["read:package", "write:package"])
        .await;
    server.package(&alice, "acme", "web", "npm", "pkg-0").await;
    for i in 1..20 {
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
    let user = NpmUser::new(&server, &alice);
    let work = tempfile::tempdir().expect("work");
    let publishes = (0..20).map(|i| {
        let dir = package_dir(work.path(), &format!("pkg-{i}"), "1.0.0");
        let user = &user;
        async move { run_in(user, &dir, &["publish"]).await }
    });
    for published in futures_util::future::join_all(publishes).await {
        published.ok("npm publish, one of twenty at once");
    }
    let (status, body) = server
        .call(
            "GET",
            "/api/workspaces/acme/packages",
            Auth::Bearer(&alice),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["values"].as_array().map(Vec::len), Some(20));
    for i in 0..20 {
        let (status, document) = server
            .call(
                "GET",
                &format!("/npm/acme/pkg-{i}"),
                Auth::Bearer(&alice),
                None,
            )
            .await;
        assert_eq!(status, 200);
        assert!(document["versions"]["1.0.0"].is_object(), "pkg-{i}");
    }
}
