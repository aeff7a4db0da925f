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
