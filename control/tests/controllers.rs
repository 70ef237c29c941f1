//! The ReplicaSet and ReplicationController controller against the real API state and
//! store: scale up and down, adoption of orphans, release of pods that stop matching, and
//! status.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gantry_control::apiserver::{ApiServer, ApiServerConfig};
use gantry_control::controllers::{self, client::LocalClient};
use gantry_store::rpc::TcpTransport;
use gantry_store::{NodeConfig, StoreNode};
use serde_json::{json, Value};

/// The API, a client, the running controllers (stopped when dropped) and the data dir.
async fn start() -> (ApiServer, LocalClient, tokio::task::JoinSet<()>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = StoreNode::open(
        NodeConfig::new(1, "127.0.0.1:0", dir.path().join("store")),
        Arc::new(TcpTransport::new()),
    )
    .await
    .expect("store");
    node.bootstrap_single().await.expect("bootstrap");
    node.wait_for_leader(Duration::from_secs(10)).await.expect("leader");
    let mut cfg = ApiServerConfig::new("127.0.0.1:0".parse().expect("addr"), dir.path());
    cfg.insecure_http = true;
    let api = ApiServer::start(cfg, node).await.expect("api");
    let manager = controllers::start(api.state.clone());
    let client = LocalClient::new(api.state.clone());
    (api, client, manager, dir)
}

async fn wait_for<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn owner_uid(pod: &Value) -> Option<&str> {
    pod.pointer("/metadata/ownerReferences/0/uid").and_then(Value::as_str)
}

async fn pods_with(client: &LocalClient, label: &str, value: &str) -> Vec<Value> {
    let (pods, _) = client.list(LocalClient::resource("", "pods")).await.expect("list pods");
    pods.into_iter()
        .filter(|p| p.pointer(&format!("/metadata/labels/{label}")).and_then(Value::as_str) == Some(value))
        .filter(|p| p.pointer("/metadata/deletionTimestamp").is_none())
        .collect()
}

fn replicaset(name: &str, replicas: i64) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}}}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicaset_scales_up_and_down_and_reports_status() {
    let (_api, client, _controllers, _dir) = start().await;
    let rs = LocalClient::resource("apps", "replicasets");
    let created = client
        .create(rs, "default", replicaset("web", 3))
        .await
        .expect("create rs");
    let uid = created["metadata"]["uid"].as_str().expect("uid").to_string();
    let pods = wait_for("three pods", async || {
        let p = pods_with(&client, "app", "web").await;
        (p.len() == 3).then_some(p)
    })
    .await;
    assert!(
        pods.iter().all(|p| owner_uid(p) == Some(uid.as_str())),
        "each pod is owned by the set"
    );
    assert!(pods
        .iter()
        .all(|p| p["metadata"]["name"].as_str().is_some_and(|n| n.starts_with("web-"))));
    wait_for("status replicas 3", async || {
        let (sets, _) = client.list(rs).await.ok()?;
        (sets[0]["status"]["replicas"] == 3 && sets[0]["status"]["observedGeneration"] == 1).then_some(())
    })
    .await;

    let (sets, _) = client.list(rs).await.expect("list");
    let mut scaled = sets[0].clone();
    scaled["spec"]["replicas"] = json!(1);
    client.update(rs, scaled).await.expect("scale down");
    wait_for("one pod left", async || {
        (pods_with(&client, "app", "web").await.len() == 1).then_some(())
    })
    .await;
    // And it stays one: no flapping from a stale cache.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(pods_with(&client, "app", "web").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_are_adopted_and_pods_that_stop_matching_are_released() {
    let (_api, client, _controllers, _dir) = start().await;
    let pods = LocalClient::resource("", "pods");
    let orphan = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "orphan", "labels": {"app": "db"}},
        "spec": {"containers": [{"name": "c", "image": "i"}]}});
    client.create(pods, "default", orphan).await.expect("orphan");
    let rs = LocalClient::resource("apps", "replicasets");
    let set = client.create(rs, "default", replicaset("db", 2)).await.expect("rs");
    let uid = set["metadata"]["uid"].as_str().expect("uid").to_string();
    let owned = wait_for("two pods, the orphan adopted", async || {
        let p = pods_with(&client, "app", "db").await;
        (p.len() == 2 && p.iter().all(|p| owner_uid(p) == Some(uid.as_str()))).then_some(p)
    })
    .await;
    assert!(
        owned.iter().any(|p| p["metadata"]["name"] == "orphan"),
        "the orphan was adopted, not replaced"
    );

    // Relabel one: it is released and replaced.
    let mut moved = owned
        .iter()
        .find(|p| p["metadata"]["name"] == "orphan")
        .expect("orphan")
        .clone();
    moved["metadata"]["labels"]["app"] = json!("elsewhere");
    client.update(pods, moved).await.expect("relabel");
    wait_for("the relabelled pod released and replaced", async || {
        let released = pods_with(&client, "app", "elsewhere").await;
        let db = pods_with(&client, "app", "db").await;
        (released.len() == 1 && owner_uid(&released[0]).is_none() && db.len() == 2).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_replication_controller_keeps_its_replicas() {
    let (_api, client, _controllers, _dir) = start().await;
    let rc = LocalClient::resource("", "replicationcontrollers");
    let myweb = json!({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "myweb"},
        "spec": {"replicas": 2, "selector": {"app": "myweb"},
                 "template": {"metadata": {"labels": {"app": "myweb"}},
                              "spec": {"containers": [{"name": "myweb", "image": "kubeguide/tomcat-app:v1", "ports": [{"containerPort": 8080}]}]}}}});
    client.create(rc, "default", myweb).await.expect("rc");
    let two = wait_for("two myweb pods", async || {
        let p = pods_with(&client, "app", "myweb").await;
        (p.len() == 2).then_some(p)
    })
    .await;
    // Deleting a pod gets it replaced.
    client
        .delete(
            LocalClient::resource("", "pods"),
            "default",
            two[0]["metadata"]["name"].as_str().expect("name"),
        )
        .await
        .expect("delete");
    wait_for("a replacement", async || {
        let p = pods_with(&client, "app", "myweb").await;
        (p.len() == 2 && !p.iter().any(|x| x["metadata"]["name"] == two[0]["metadata"]["name"])).then_some(())
    })
    .await;
}
