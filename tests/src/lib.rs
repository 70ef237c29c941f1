//! Helpers for end-to-end tests: finding the `gantry` binary, running it as child processes
//! that can be killed with SIGKILL, free ports, and waiting on conditions.

use std::fs::File;
use std::future::Future;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `gantry` binary built next to this test executable (`cargo build` puts it in the
/// target directory that `cargo test` uses). Panics, naming the fix, when it is missing.
pub fn gantry_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    // target/<profile>/deps/<test> -> target/<profile>/gantry
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executables live in target/<profile>/deps");
    let bin = profile_dir.join("gantry");
    assert!(
        bin.exists(),
        "the gantry binary is missing at {}: build it first with `cargo build --workspace` (scripts/test does)",
        bin.display()
    );
    bin
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding an ephemeral loopback port")
}

/// A `gantry` child process, killed (SIGKILL) when dropped.
pub struct GantryProcess {
    child: Child,
    args: Vec<String>,
    log: PathBuf,
}

impl GantryProcess {
    /// Starts `gantry ARGS…`, sending its output to `log`.
    pub fn start(args: &[String], log: &Path) -> GantryProcess {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .expect("opening the process log");
        let err = out.try_clone().expect("cloning the log handle");
        let child = Command::new(gantry_bin())
            .args(args)
            .env("RUST_LOG", "info,openraft=warn")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("starting gantry");
        GantryProcess {
            child,
            args: args.to_vec(),
            log: log.to_path_buf(),
        }
    }

    /// Kills the process with SIGKILL, as a crash would, and reaps it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the same command again (after a kill).
    pub fn restart(&mut self) {
        self.kill9();
        *self = GantryProcess::start(&self.args.clone(), &self.log.clone());
    }

    /// The process's output so far, for failure messages.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Fails if the process has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("gantry {:?} exited with {status}:\n{}", self.args, self.output());
        }
    }
}

impl Drop for GantryProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Polls `f` until it yields Some, failing with `what` after `timeout`.
pub async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
