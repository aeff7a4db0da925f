//! The README runs as written: its shell blocks from "Quick start" to "Management API", in
//! order, in one shell, against a fresh `stowage-local` started as a new user starts it (no
//! configuration, its admin token read from what it prints), with the real clients. As
//! documentation tests do, the harness changes only what a reader's machine supplies: the
//! server's port, the admin token it printed, and a home folder of the test's own. Every
//! `curl` must succeed (`--fail-with-body`), and so must every other command (`set -e`).

use std::path::Path;
use std::time::Duration;

use stowage_tests::clients::{LocalServer, available, run};
use tokio::io::{AsyncBufReadExt, BufReader};

/// What the README's quick start says to replace with the printed token.
const ADMIN_PLACEHOLDER: &str = "ADMIN=stw_...";
/// The address the README's blocks name: the server's default.
const DEFAULT_ADDRESS: &str = "127.0.0.1:8080";
/// Gradle 6 and later need this for a plain-HTTP repository; Debian's Gradle (4.4.1) predates
/// the property and refuses it, so the harness removes that one line.
const GRADLE_INSECURE_PROTOCOL: &str = "allowInsecureProtocol = true";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_runs_as_written() {
    let clients = [
        "curl", "jq", "buildah", "skopeo", "podman", "npm", "pnpm", "yarn", "mvn", "java", "gradle",
    ];
    if !available(&clients) {
        return;
    }
    let binary = LocalServer::binary();
    if !binary.exists() {
        assert!(
            std::env::var("STOWAGE_REQUIRE_CLIENTS").as_deref() != Ok("1"),
            "{} is missing: run `cargo build --bins` (tests/run does)",
            binary.display()
        );
        return;
    }
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .expect("README.md");
    let blocks = shell_blocks(&readme, "## Quick start", "## Management API");
    assert!(
        blocks.len() >= 6,
        "the quick start, containers, npm, pnpm, yarn, Maven and Gradle blocks: {}",
        blocks.len()
    );

    let folder = tempfile::tempdir().expect("folder");
    let (port, server, admin_token) = start_as_a_new_user(&binary, folder.path()).await;
    let script = script_for(&blocks.join("\n"), port, &admin_token);
    let environment = UserMachine::new(folder.path());
    let work = folder.path().join("work");
    std::fs::create_dir_all(&work).expect("work folder");
    std::fs::write(folder.path().join("readme.sh"), &script).expect("script");

    let args = environment.command(&work, &folder.path().join("readme.sh"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let outcome = run("env", &args, &[]).await;
    drop(server);
    let outcome = outcome.ok("the README's shell blocks");

    // What the blocks did is there: the image, the npm installs, the Maven and Gradle builds.
    assert!(
        outcome
            .stderr
            .contains("Writing manifest to image destination")
    );
    for installed in ["app", "pnpm-app", "yarn-app"] {
        let index = work.join(installed).join("node_modules/@acme/ui/index.js");
        let text = std::fs::read_to_string(&index)
            .unwrap_or_else(|_| panic!("{installed} installed @acme/ui"));
        assert!(text.contains("acme ui"), "{text}");
    }
    assert!(
        work.join("app-maven/target/classes/com/acme/app/App.class")
            .exists()
    );
    assert!(
        work.join("app-gradle/build/classes/java/main/com/acme/app/App.class")
            .exists()
    );
}

/// The fenced `sh` blocks between two headings, in order.
fn shell_blocks(markdown: &str, from: &str, to: &str) -> Vec<String> {
    let start = markdown.find(from).expect("the first heading");
    let end = start + markdown[start..].find(to).expect("the last heading");
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in markdown[start..end].lines() {
        match (&mut current, line.trim_end()) {
            (None, "```sh") => current = Some(Vec::new()),
            (Some(lines), "```") => {
                blocks.push(lines.join("\n"));
                current = None;
            }
            (Some(lines), _) => lines.push(line),
            (None, _) => {}
        }
    }
    assert!(current.is_none(), "an unterminated block");
    blocks
}

/// The blocks as one script, with what the reader's machine supplies filled in.
fn script_for(blocks: &str, port: u16, admin_token: &str) -> String {
    assert_eq!(
        blocks.matches(ADMIN_PLACEHOLDER).count(),
        1,
        "the quick start sets ADMIN from the printed token once"
    );
    assert!(blocks.contains(GRADLE_INSECURE_PROTOCOL));
    let blocks = blocks
        .replace(ADMIN_PLACEHOLDER, &format!("ADMIN={admin_token}"))
        .replace(DEFAULT_ADDRESS, &format!("127.0.0.1:{port}"))
        .replace(GRADLE_INSECURE_PROTOCOL, "");
    format!(
        "set -euo pipefail\nshopt -s inherit_errexit\nset -x\n\
         curl() {{ command curl --fail-with-body \"$@\" && echo; }}\n{blocks}\n"
    )
}

/// Starts the binary as the README's first command does: in a folder of its own, with no
/// configuration but the port; returns the port, the process and the token it printed.
async fn start_as_a_new_user(binary: &Path, folder: &Path) -> (u16, tokio::process::Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("address")
        .port();
    let cwd = folder.join("server");
    std::fs::create_dir_all(&cwd).expect("server folder");
    let mut child = tokio::process::Command::new(binary)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .current_dir(&cwd)
        .env_remove("STOWAGE_BOOTSTRAP_TOKEN")
        .env_remove("STOWAGE_DATA_DIR")
        .env("STOWAGE_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start stowage-local");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let token = tokio::time::timeout(Duration::from_secs(30), async {
        let mut token = None;
        while let Some(line) = lines.next_line().await.expect("stdout") {
            if let Some(secret) = line.trim().strip_prefix("stw_") {
                token = Some(format!("stw_{secret}"));
            }
            // After the token: when it expires, and how to mint the next.
            if line.contains("expires in a year") && line.contains("stowage-local admin-token") {
                return token.expect("the token comes first");
            }
        }
        panic!("stowage-local exited without printing its token and how to replace it");
    })
    .await
    .expect("the token, printed at first start");
    for _ in 0..200 {
        if reqwest::get(format!("http://127.0.0.1:{port}/v2/"))
            .await
            .is_ok()
        {
            return (port, child, token);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("stowage-local did not start");
}

/// A reader's machine, inside the test's folder: a home of its own (for Java too), the containers tools'
/// storage and credentials there, Maven's plugins from Debian's repository (there is no Maven
/// Central here), no Gradle daemon left behind, and not a CI machine (yarn refuses to write a
/// lockfile under `CI`).
struct UserMachine {
    variables: Vec<(String, String)>,
}

impl UserMachine {
    fn new(folder: &Path) -> Self {
        let home = folder.join("home");
        let bin = folder.join("bin");
        let runtime = folder.join("run");
        std::fs::create_dir_all(&runtime).expect("runtime folder");
        std::fs::create_dir_all(&home).expect("home");
        std::fs::create_dir_all(&bin).expect("bin");
        let storage = folder.join("containers-storage.conf");
        std::fs::write(
            &storage,
            format!(
                "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
                folder.join("storage/root").display(),
                folder.join("storage/run").display()
            ),
        )
        .expect("storage.conf");
        let maven_mirror = folder.join("maven-global-settings.xml");
        std::fs::write(
            &maven_mirror,
            format!(
                "<settings><mirrors><mirror><id>debian</id><mirrorOf>*,!stowage</mirrorOf>\
                 <url>file://{}</url></mirror></mirrors></settings>",
                crate::maven_clients::debian_repository().display()
            ),
        )
        .expect("global settings");
        let mvn = bin.join("mvn");
        std::fs::write(
            &mvn,
            format!(
                "#!/bin/sh\nexec /usr/bin/mvn -gs '{}' \"$@\"\n",
                maven_mirror.display()
            ),
        )
        .expect("mvn wrapper");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&mvn, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let variables = [
            ("HOME", home.display().to_string()),
            ("PATH", path),
            ("CONTAINERS_STORAGE_CONF", storage.display().to_string()),
            // Where skopeo, buildah and podman keep their logins.
            ("XDG_RUNTIME_DIR", runtime.display().to_string()),
            // Java reads its home from the password database, not from HOME.
            ("MAVEN_OPTS", format!("-Duser.home={}", home.display())),
            (
                "GRADLE_USER_HOME",
                home.join(".gradle").display().to_string(),
            ),
            ("GRADLE_OPTS", "-Dorg.gradle.daemon=false".into()),
        ];
        Self {
            variables: variables
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value))
                .collect(),
        }
    }

    /// `env` arguments that run `script` with bash in `cwd`, in this environment alone (plus
    /// the locale and the temporary folder).
    fn command(&self, cwd: &Path, script: &Path) -> Vec<String> {
        let mut args = vec!["-i".to_owned()];
        for (name, value) in &self.variables {
            args.push(format!("{name}={value}"));
        }
        for kept in ["LANG", "TMPDIR", "JAVA_HOME"] {
            if let Ok(value) = std::env::var(kept) {
                args.push(format!("{kept}={value}"));
            }
        }
        args.extend([
            "bash".to_owned(),
            "-c".to_owned(),
            format!("cd '{}' && exec bash '{}'", cwd.display(), script.display()),
        ]);
        args
    }
}
