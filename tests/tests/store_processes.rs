//! Three `gantry server` processes on loopback: one is killed with SIGKILL under write load
//! and restarted; no acknowledged write may be lost and the restarted member catches up.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gantry_store::{Op, RangeRequest, StoreClient, Txn, TxnOutcome};
use gantry_tests::{free_port, wait_for, GantryProcess};

struct Member {
    id: u64,
    addr: String,
    process: GantryProcess,
}

fn start_cluster(dir: &std::path::Path) -> Vec<Member> {
    let addrs: Vec<String> = (0..3).map(|_| format!("127.0.0.1:{}", free_port())).collect();
    (1..=3u64)
        .map(|id| {
            let addr = addrs[id as usize - 1].clone();
            let mut args = vec![
                "server".to_string(),
                "--id".into(),
                id.to_string(),
                "--listen".into(),
                addr.clone(),
                "--data-dir".into(),
                dir.join(format!("n{id}")).display().to_string(),
                // Small, so that snapshots and log purges happen during the test too.
                "--snapshot-every".into(),
                "200".into(),
            ];
            if id == 1 {
                args.push("--bootstrap".into());
            } else {
                args.extend(["--join".into(), addrs[0].clone()]);
            }
            let process = GantryProcess::start(&args, &dir.join(format!("n{id}.log")));
            Member { id, addr, process }
        })
        .collect()
}

async fn voters(client: &StoreClient, addr: &str) -> Option<Vec<u64>> {
    client.status(addr).await.ok().map(|s| s.voters)
}

async fn run_kill_test(kill_leader: bool) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut members = start_cluster(dir.path());
    let endpoints: Vec<String> = members.iter().map(|m| m.addr.clone()).collect();
    let client = StoreClient::new(endpoints.clone()).with_timeout(Duration::from_secs(3));
    wait_for(Duration::from_secs(60), "three voters", || {
        let client = client.clone();
        let addr = endpoints[0].clone();
        async move { (voters(&client, &addr).await == Some(vec![1, 2, 3])).then_some(()) }
    })
    .await;

    // Writers: unique keys, each created once; only a Committed outcome counts as acknowledged.
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let client = client.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut acked = Vec::new();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("/load/{w}/{i:06}");
                    i += 1;
                    if let Ok(TxnOutcome::Committed { .. }) = client.write(Txn::single(Op::create(&key, "v"))).await {
                        acked.push(key);
                    }
                }
                acked
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;

    let status = client.status(&endpoints[0]).await.expect("status");
    let leader = status.leader.expect("a leader");
    let victim = if kill_leader {
        leader
    } else {
        (1..=3).find(|id| *id != leader).expect("a follower")
    };
    let m = members.iter_mut().find(|m| m.id == victim).expect("victim");
    m.process.kill9();
    tokio::time::sleep(Duration::from_secs(3)).await;
    m.process.restart();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.expect("writer"));
    }
    assert!(
        acked.len() > 100,
        "the cluster kept taking writes: only {} acknowledged",
        acked.len()
    );
    for m in &mut members {
        m.process.assert_running();
    }

    // Every member, the restarted one included, has every acknowledged write.
    let victim_addr = members.iter().find(|m| m.id == victim).expect("victim").addr.clone();
    for addr in &endpoints {
        let one = StoreClient::new(vec![addr.clone()]).with_timeout(Duration::from_secs(3));
        let keys: BTreeSet<String> = wait_for(Duration::from_secs(60), "a linearizable read", || {
            let one = one.clone();
            async move {
                one.range(
                    RangeRequest {
                        prefix: "/load/".into(),
                        ..Default::default()
                    },
                    true,
                )
                .await
                .ok()
                .map(|r| r.kvs.into_iter().map(|kv| kv.key).collect())
            }
        })
        .await;
        let lost: Vec<&String> = acked.iter().filter(|k| !keys.contains(*k)).collect();
        assert!(
            lost.is_empty(),
            "{} acknowledged writes missing on {addr} (restarted: {}), e.g. {:?}",
            lost.len(),
            *addr == victim_addr,
            lost.first()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_with_sigkill_under_load_loses_no_acknowledged_write() {
    run_kill_test(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_killed_with_sigkill_under_load_catches_up() {
    run_kill_test(false).await;
}
