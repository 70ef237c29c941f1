//! A store node whose disk fills up: the write that cannot be made durable fails with a
//! storage error, no later write is acknowledged, and every write that was acknowledged is
//! there when the data is reopened with room to spare.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use gantry_store::rpc::TcpTransport;
use gantry_store::{Consistency, NodeConfig, Op, RangeRequest, StoreError, StoreNode, Txn, TxnOutcome};

struct Tmpfs<'a>(&'a Path);

impl Drop for Tmpfs<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0).status();
    }
}

fn mount_tmpfs<'a>(dir: &'a Path, size: &str) -> Tmpfs<'a> {
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .status()
        .expect("running mount");
    assert!(
        status.success(),
        "this test needs root and tmpfs to fill a small disk (mount -t tmpfs failed)"
    );
    Tmpfs(dir)
}

async fn open(dir: &Path) -> StoreNode {
    let mut cfg = NodeConfig::new(1, "127.0.0.1:0", dir);
    cfg.request_timeout = Duration::from_secs(3);
    let node = StoreNode::open(cfg, Arc::new(TcpTransport::new())).await.expect("open");
    node.bootstrap_single().await.expect("bootstrap");
    node.wait_for_leader(Duration::from_secs(10)).await.expect("leader");
    node
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_writes_and_loses_no_acknowledged_one() {
    let base = tempfile::tempdir().expect("tempdir");
    let small = base.path().join("small");
    std::fs::create_dir_all(&small).expect("mkdir");
    let mount = mount_tmpfs(&small, "1m");
    let node = open(&small.join("data")).await;
    let mut acked = Vec::new();
    let mut first_error = None;
    for i in 0..4000 {
        let key = format!("/full/{i:05}");
        match node.write(Txn::single(Op::put(&key, vec![b'x'; 1024]))).await {
            Ok(TxnOutcome::Committed { .. }) => {
                assert!(
                    first_error.is_none(),
                    "a write was acknowledged after the disk failed: {key}"
                );
                acked.push(key);
            }
            Ok(other) => panic!("unexpected outcome {other:?}"),
            Err(e) => {
                first_error.get_or_insert(e);
                if acked.len() + 20 < i {
                    break;
                }
            }
        }
    }
    let err = first_error.expect("a 1 MiB disk fills up with 4 MiB of writes");
    eprintln!("first error: {err}; {} writes acknowledged", acked.len());
    assert!(
        matches!(err, StoreError::Storage(_)),
        "the failure says the store could not write: {err:?}"
    );
    assert!(
        err.to_string().contains("No space left on device"),
        "the failure names the cause: {err}"
    );
    assert!(!acked.is_empty());
    node.shutdown().await;

    // Copy the data to a disk with room and reopen: every acknowledged write is there.
    let roomy = base.path().join("roomy");
    let status = Command::new("cp")
        .arg("-a")
        .arg(small.join("data"))
        .arg(&roomy)
        .status()
        .expect("cp");
    assert!(status.success());
    drop(mount);
    let node = open(&roomy).await;
    let page = node
        .range(
            &RangeRequest {
                prefix: "/full/".into(),
                ..Default::default()
            },
            Consistency::Linearizable,
        )
        .await
        .expect("read back");
    let keys: std::collections::BTreeSet<String> = page.kvs.into_iter().map(|kv| kv.key).collect();
    for k in &acked {
        assert!(keys.contains(k), "acknowledged write {k} was lost");
    }
    node.shutdown().await;
}
