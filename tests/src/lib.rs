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

/// A one-member `gantry server` with the API on a loopback port, and a kubeconfig for it.
pub struct ApiServerProcess {
    pub process: GantryProcess,
    pub kubeconfig: PathBuf,
    pub dir: tempfile::TempDir,
}

impl ApiServerProcess {
    /// Starts the server and waits until `kubectl` can reach it through its kubeconfig.
    pub fn start() -> ApiServerProcess {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = format!("127.0.0.1:{}", free_port());
        let api = format!("127.0.0.1:{}", free_port());
        let args: Vec<String> = [
            "server",
            "--id",
            "1",
            "--listen",
            &store,
            "--data-dir",
            &dir.path().display().to_string(),
            "--bootstrap",
            "--api-listen",
            &api,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut process = GantryProcess::start(&args, &dir.path().join("server.log"));
        let kubeconfig = dir.path().join("kubeconfig.yaml");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            process.assert_running();
            if kubeconfig.exists() {
                let out = kubectl_output(&kubeconfig, &["get", "--raw", "/readyz"]);
                if out.status.success() {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the API server did not become ready:\n{}",
                process.output()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        ApiServerProcess {
            process,
            kubeconfig,
            dir,
        }
    }

    /// Runs kubectl; returns (success, stdout, stderr).
    pub fn kubectl(&self, args: &[&str]) -> (bool, String, String) {
        let out = kubectl_output(&self.kubeconfig, args);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs kubectl and fails the test, with its output, unless it succeeds; returns stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.kubectl(args);
        assert!(
            ok,
            "kubectl {args:?} failed:\nstdout: {out}\nstderr: {err}\nserver log:\n{}",
            self.process.output()
        );
        out
    }

    /// Runs `kubectl … -f -` with `manifest` on stdin.
    pub fn kubectl_stdin(&self, args: &[&str], manifest: &str) -> (bool, String, String) {
        use std::io::Write;
        let mut child = Command::new(kubectl_bin())
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting kubectl");
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(manifest.as_bytes())
            .expect("writing the manifest to kubectl");
        let out = child.wait_with_output().expect("waiting for kubectl");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// The installed kubectl; fails naming what is missing.
pub fn kubectl_bin() -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join("kubectl");
        if p.exists() {
            return p;
        }
    }
    panic!("kubectl is not installed (not on PATH): these tests drive the real kubectl against gantry");
}

/// kubectl with this server's kubeconfig and a HOME of its own (kubectl caches discovery
/// under HOME, keyed by server address).
fn kubectl_output(kubeconfig: &Path, args: &[&str]) -> std::process::Output {
    Command::new(kubectl_bin())
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", kubeconfig.parent().unwrap_or(Path::new("/tmp")))
        .stdin(Stdio::null())
        .output()
        .expect("running kubectl")
}

/// The seed manifests shipped beside the repository (`../shared/examples`).
pub fn seed_examples() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/examples");
    assert!(
        dir.is_dir(),
        "the seed manifests are missing at {}: the repository's shared/ folder must sit beside it",
        dir.display()
    );
    dir
}
