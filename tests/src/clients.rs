//! Running real registry clients (skopeo, buildah, npm, mvn, …) from tests.
//!
//! A client that is not installed skips its test with a note, unless `STOWAGE_REQUIRE_CLIENTS=1`
//! (which `tests/run`, having installed them, sets) makes that a failure.

use std::time::Duration;

/// What a client run printed.
#[derive(Debug)]
pub struct Run {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Panics with the client's output unless it succeeded.
    pub fn ok(self, what: &str) -> Self {
        assert!(
            self.success,
            "{what} failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
}

/// True when every program is on the PATH; else false (or a failure when clients are required).
pub fn available(programs: &[&str]) -> bool {
    let missing: Vec<&&str> = programs
        .iter()
        .filter(|program| {
            std::process::Command::new("sh")
                .args(["-c", &format!("command -v {program}")])
                .output()
                .map(|output| !output.status.success())
                .unwrap_or(true)
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var("STOWAGE_REQUIRE_CLIENTS").as_deref() != Ok("1"),
        "STOWAGE_REQUIRE_CLIENTS=1 but {missing:?} are not installed (tests/run installs them)"
    );
    eprintln!("note: {missing:?} not installed; skipping (run tests/run)");
    false
}

/// Runs a client to completion (at most five minutes), with extra environment variables.
pub async fn run(program: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = tokio::process::Command::new(program);
    command.args(args).kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = tokio::time::timeout(Duration::from_secs(300), command.output())
        .await
        .unwrap_or_else(|_| panic!("{program} {args:?} took over five minutes"))
        .unwrap_or_else(|error| panic!("cannot run {program}: {error}"));
    Run {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A real `stowage-local` process on embedded storage in a temporary folder, killed on drop.
/// The binary is the workspace's debug build (`cargo build --bins`, which tests/run does).
pub struct LocalServer {
    pub url: String,
    pub admin_token: String,
    pub data: tempfile::TempDir,
    child: tokio::process::Child,
    args: Vec<String>,
}

impl LocalServer {
    /// The path of the `stowage-local` binary of this workspace's debug build.
    pub fn binary() -> std::path::PathBuf {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
        target.join("debug/stowage-local")
    }

    /// Starts the server with extra arguments; `None` (a skip) when the binary is not built,
    /// unless clients are required.
    pub async fn start(args: &[&str]) -> Option<Self> {
        Self::spawn(args, false).await
    }

    /// Starts the server logging every request as JSON (as on Lambda) to [`Self::log_file`].
    pub async fn start_with_json_logs() -> Option<Self> {
        Self::spawn(&[], true).await
    }

    /// Starts the server with extra arguments, logging as [`Self::start_with_json_logs`].
    pub async fn start_with_json_logs_and(args: &[&str]) -> Option<Self> {
        Self::spawn(args, true).await
    }

    /// Where a server started with JSON logs writes them.
    pub fn log_file(&self) -> std::path::PathBuf {
        self.data.path().join("stderr.log")
    }

    async fn spawn(args: &[&str], json_logs: bool) -> Option<Self> {
        let binary = Self::binary();
        if !binary.exists() {
            assert!(
                std::env::var("STOWAGE_REQUIRE_CLIENTS").as_deref() != Ok("1"),
                "{} is missing: run `cargo build --bins` (tests/run does)",
                binary.display()
            );
            eprintln!("note: {} is not built; skipping", binary.display());
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("port")
            .local_addr()
            .expect("address")
            .port();
        let data = tempfile::tempdir().expect("data folder");
        let mut args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        args.extend(["--listen".into(), format!("127.0.0.1:{port}")]);
        if json_logs {
            args.push("--json-logs-for-tests".into());
        }
        let child = Self::launch(&data, &args);
        let server = Self {
            url: format!("http://127.0.0.1:{port}"),
            admin_token: crate::ADMIN_TOKEN.to_owned(),
            data,
            child,
            args,
        };
        server.wait_until_up().await;
        Some(server)
    }

    /// Starts the server with its data on a disk of `mib` MiB (a tmpfs mounted in a user
    /// and mount namespace of its own: no privileges needed, nothing seen outside).
    pub async fn start_on_small_disk(mib: u64) -> Option<Self> {
        Self::spawn(&[&format!("--disk-mib-for-tests={mib}")], false).await
    }

    /// Starts the binary on `data` with `args` (`--json-logs-for-tests` and
    /// `--disk-mib-for-tests=N` are ours: JSON logs to [`Self::log_file`], a small disk).
    fn launch(data: &tempfile::TempDir, args: &[String]) -> tokio::process::Child {
        let json_logs = args.iter().any(|a| a == "--json-logs-for-tests");
        let disk = args
            .iter()
            .find_map(|a| a.strip_prefix("--disk-mib-for-tests="));
        let ours =
            |a: &&String| *a != "--json-logs-for-tests" && !a.starts_with("--disk-mib-for-tests=");
        let mut command = match disk {
            None => tokio::process::Command::new(Self::binary()),
            Some(mib) => {
                let mut command = tokio::process::Command::new("unshare");
                command.args([
                    "-rm",
                    "sh",
                    "-c",
                    &format!("mount -t tmpfs -o size={mib}m tmpfs \"$1\" && shift && exec \"$@\""),
                    "sh",
                ]);
                command.arg(data.path()).arg(Self::binary());
                command
            }
        };
        command
            .arg("--data-dir")
            .arg(data.path())
            .args(args.iter().filter(ours))
            .env("STOWAGE_BOOTSTRAP_TOKEN", crate::ADMIN_TOKEN)
            .env("STOWAGE_LOG", "warn")
            .kill_on_drop(true);
        if json_logs {
            let log = std::fs::File::options()
                .create(true)
                .append(true)
                .open(data.path().join("stderr.log"))
                .expect("log file");
            command
                .env("STOWAGE_LOG", "info")
                .env("STOWAGE_LOG_FORMAT", "json")
                .stderr(log);
        }
        command.spawn().expect("start stowage-local")
    }

    async fn wait_until_up(&self) {
        for _ in 0..200 {
            if reqwest::get(format!("{}/v2/", self.url)).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("stowage-local did not start");
    }

    /// Kills the server as a crash would (SIGKILL: nothing is cleaned up).
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("kill stowage-local");
    }

    /// Starts the server again on the same data and address, after [`Self::kill`].
    pub async fn restart(&mut self) {
        self.child = Self::launch(&self.data, &self.args);
        self.wait_until_up().await;
    }

    /// Runs `stowage-local purge` on the server's data, as of `now`; the report.
    pub async fn purge_at(&self, now: chrono::DateTime<chrono::Utc>) -> serde_json::Value {
        let binary = Self::binary();
        let data = self.data.path().display().to_string();
        let now = now.to_rfc3339();
        let run = run(
            binary.to_str().expect("path"),
            &["purge", "--data-dir", &data, "--now", &now],
            &[("STOWAGE_LOG", "warn")],
        )
        .await
        .ok("stowage-local purge");
        serde_json::from_str(&run.stdout).expect("purge report")
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// Creates (as the site admin) a workspace, repository and package.
    pub async fn create_package(&self, workspace: &str, repository: &str, kind: &str, name: &str) {
        let client = reqwest::Client::new();
        let api = format!("{}/api", self.url);
        let calls = [
            (
                format!("{api}/workspaces"),
                serde_json::json!({"slug": workspace, "plan": "standard"}),
            ),
            (
                format!("{api}/workspaces/{workspace}/repositories"),
                serde_json::json!({"slug": repository}),
            ),
            (
                format!("{api}/workspaces/{workspace}/packages"),
                serde_json::json!({"type": kind, "name": name, "repository": repository}),
            ),
        ];
        for (url, body) in calls {
            let response = client
                .post(&url)
                .bearer_auth(&self.admin_token)
                .json(&body)
                .send()
                .await
                .expect("admin call");
            assert!(
                response.status().is_success() || response.status() == 409,
                "{url}: {}",
                response.status()
            );
        }
    }
}
