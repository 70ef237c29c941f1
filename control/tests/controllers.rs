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
    let mut cfg = controllers::ControllerConfig::default();
    cfg.node_lifecycle.grace = Duration::from_millis(300);
    cfg.node_lifecycle.default_toleration = Duration::from_millis(300);
    cfg.node_lifecycle.monitor_period = Duration::from_millis(50);
    cfg.job_backoff = Duration::from_millis(20);
    let manager = controllers::start(api.state.clone(), &cfg);
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

    wait_for("a SuccessfulCreate event about the set", async || {
        let (events, _) = client.list(LocalClient::resource("", "events")).await.ok()?;
        events
            .iter()
            .any(|e| {
                e["reason"] == "SuccessfulCreate"
                    && e["involvedObject"]["name"] == "web"
                    && e["involvedObject"]["kind"] == "ReplicaSet"
            })
            .then_some(())
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

/// Gives a pod an IP and a readiness, as an agent would.
async fn set_pod_status(client: &LocalClient, name: &str, ip: &str, ready: bool) {
    let pods = LocalClient::resource("", "pods");
    for _ in 0..10 {
        let mut pod = client.get(pods, "default", name).await.expect("pod");
        pod["status"] = json!({"phase": "Running", "podIP": ip,
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]});
        if client.update_status(pods, pod).await.is_ok() {
            return;
        }
    }
    panic!("could not set the status of {name}");
}

fn web_pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"name": "http", "containerPort": 8080}]}]}})
}

async fn endpoints_of(client: &LocalClient, name: &str) -> Option<Value> {
    client
        .get(LocalClient::resource("", "endpoints"), "default", name)
        .await
        .ok()
}

async fn slices_of(client: &LocalClient, svc: &str) -> Vec<Value> {
    let (slices, _) = client
        .list(LocalClient::resource("discovery.k8s.io", "endpointslices"))
        .await
        .expect("slices");
    slices
        .into_iter()
        .filter(|s| {
            s.pointer("/metadata/labels/kubernetes.io~1service-name")
                .and_then(Value::as_str)
                == Some(svc)
        })
        .collect()
}

fn ips(v: &Value, field: &str) -> Vec<String> {
    v.pointer("/subsets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|s| s.get(field).and_then(Value::as_array).cloned().unwrap_or_default())
        .filter_map(|a| a["ip"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_follow_pod_readiness_and_termination() {
    let (_api, client, _controllers, _dir) = start().await;
    let pods = LocalClient::resource("", "pods");
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}});
    client
        .create(LocalClient::resource("", "services"), "default", svc)
        .await
        .expect("svc");
    for n in ["a", "b"] {
        client.create(pods, "default", web_pod(n)).await.expect("pod");
    }
    set_pod_status(&client, "a", "10.1.0.1", true).await;
    set_pod_status(&client, "b", "10.1.0.2", false).await;
    let eps = wait_for("endpoints with a ready and a not-ready address", async || {
        let e = endpoints_of(&client, "web").await?;
        (ips(&e, "addresses") == ["10.1.0.1"] && ips(&e, "notReadyAddresses") == ["10.1.0.2"]).then_some(e)
    })
    .await;
    assert_eq!(
        eps["subsets"][0]["ports"][0],
        json!({"port": 8080, "protocol": "TCP", "name": "http"}),
        "the named port resolved"
    );
    let slice = wait_for("a slice with both endpoints", async || {
        let s = slices_of(&client, "web").await;
        (s.len() == 1 && s[0]["endpoints"].as_array().map_or(0, Vec::len) == 2).then(|| s[0].clone())
    })
    .await;
    assert_eq!(slice["addressType"], "IPv4");
    assert_eq!(slice["ports"][0]["port"], 8080);

    // b becomes ready.
    set_pod_status(&client, "b", "10.1.0.2", true).await;
    wait_for("both ready", async || {
        let e = endpoints_of(&client, "web").await?;
        (ips(&e, "addresses") == ["10.1.0.1", "10.1.0.2"]).then_some(())
    })
    .await;

    // a starts terminating (a finalizer holds it): it leaves Endpoints at once, and its
    // slice entry says terminating.
    let mut a = client.get(pods, "default", "a").await.expect("a");
    a["metadata"]["finalizers"] = json!(["example.com/hold"]);
    client.update(pods, a).await.expect("finalizer");
    client.delete(pods, "default", "a").await.expect("delete");
    wait_for("a gone from Endpoints and terminating in the slice", async || {
        let e = endpoints_of(&client, "web").await?;
        let s = slices_of(&client, "web").await;
        let term = s
            .iter()
            .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
            .any(|e| {
                e["addresses"][0] == "10.1.0.1"
                    && e["conditions"] == json!({"ready": false, "serving": true, "terminating": true})
            });
        (ips(&e, "addresses") == ["10.1.0.2"] && ips(&e, "notReadyAddresses").is_empty() && term).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_pod_change_rewrites_one_slice() {
    let (_api, client, _controllers, _dir) = start().await;
    let pods = LocalClient::resource("", "pods");
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}});
    client
        .create(LocalClient::resource("", "services"), "default", svc)
        .await
        .expect("svc");
    for i in 0..150 {
        let name = format!("p{i:03}");
        client.create(pods, "default", web_pod(&name)).await.expect("pod");
        set_pod_status(&client, &name, &format!("10.2.{}.{}", i / 200, i % 200 + 1), true).await;
    }
    let before = wait_for("150 endpoints in two slices", async || {
        let s = slices_of(&client, "web").await;
        let total: usize = s.iter().map(|s| s["endpoints"].as_array().map_or(0, Vec::len)).sum();
        (s.len() == 2 && total == 150).then_some(s)
    })
    .await;
    set_pod_status(&client, "p007", "10.2.0.8", false).await;
    let after = wait_for("p007 not ready in its slice", async || {
        let s = slices_of(&client, "web").await;
        let flipped = s
            .iter()
            .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
            .any(|e| e["addresses"][0] == "10.2.0.8" && e["conditions"]["ready"] == false);
        flipped.then_some(s)
    })
    .await;
    let rv = |s: &Vec<Value>| -> std::collections::BTreeMap<String, String> {
        s.iter()
            .map(|x| {
                (
                    x["metadata"]["name"].as_str().unwrap_or("").to_string(),
                    x["metadata"]["resourceVersion"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    let (b, a) = (rv(&before), rv(&after));
    let rewritten = b.iter().filter(|(k, v)| a.get(*k) != Some(*v)).count();
    assert_eq!(
        rewritten, 1,
        "exactly one slice was rewritten: before {b:?} after {a:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_cascade_in_background_foreground_and_orphan_modes() {
    let (api, client, _controllers, _dir) = start().await;
    let rs = LocalClient::resource("apps", "replicasets");
    let rc = LocalClient::resource("", "replicationcontrollers");
    let pods = |label: &'static str| {
        let client = client.clone();
        async move { pods_with(&client, "app", label).await }
    };
    // Background (kubectl's default): the owner goes at once, its pods after it.
    let myweb = json!({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "bg"},
        "spec": {"replicas": 2, "selector": {"app": "bg"},
                 "template": {"metadata": {"labels": {"app": "bg"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
    client.create(rc, "default", myweb).await.expect("rc");
    wait_for("two bg pods", async || (pods("bg").await.len() == 2).then_some(())).await;
    client.delete(rc, "default", "bg").await.expect("delete rc");
    wait_for("bg pods collected", async || pods("bg").await.is_empty().then_some(())).await;

    // Foreground: the owner waits for its dependents.
    client.create(rs, "default", replicaset("fg", 2)).await.expect("rs");
    wait_for("two fg pods", async || (pods("fg").await.len() == 2).then_some(())).await;
    let target = gantry_control::apiserver::request::Target {
        resource: rs,
        namespace: Some("default".into()),
        name: Some("fg".into()),
        subresource: None,
    };
    let q = gantry_control::apiserver::request::Query::default();
    let pending = api
        .state
        .delete(&target, &json!({"propagationPolicy": "Foreground"}), &q)
        .await
        .expect("delete");
    assert_eq!(pending["metadata"]["finalizers"], json!(["foregroundDeletion"]));
    wait_for("fg pods and then the set gone", async || {
        let set_gone = client.get(rs, "default", "fg").await.is_err();
        (pods("fg").await.is_empty() && set_gone).then_some(())
    })
    .await;

    // Orphan: the owner goes, its pods stay, no longer owned.
    client.create(rs, "default", replicaset("or", 2)).await.expect("rs");
    wait_for("two or pods", async || (pods("or").await.len() == 2).then_some(())).await;
    let target = gantry_control::apiserver::request::Target {
        name: Some("or".into()),
        ..target
    };
    api.state
        .delete(&target, &json!({"propagationPolicy": "Orphan"}), &q)
        .await
        .expect("delete");
    wait_for("the set gone and its pods orphaned", async || {
        let set_gone = client.get(rs, "default", "or").await.is_err();
        let p = pods("or").await;
        (set_gone && p.len() == 2 && p.iter().all(|p| owner_uid(p).is_none())).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_namespace_deletes_everything_in_it_then_the_namespace() {
    let (_api, client, _controllers, _dir) = start().await;
    let nsr = LocalClient::resource("", "namespaces");
    client
        .create(
            nsr,
            "",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}),
        )
        .await
        .expect("ns");
    client
        .create(
            LocalClient::resource("", "configmaps"),
            "team",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
        )
        .await
        .expect("cm");
    client
        .create(LocalClient::resource("", "pods"), "team", web_pod("p"))
        .await
        .expect("pod");
    client.delete_in(nsr, None, "team", false).await.expect("delete ns");
    wait_for("the namespace and its contents gone", async || {
        let gone = client.get_in(nsr, None, "team").await.is_err();
        let left = client
            .list_in(LocalClient::resource("", "configmaps"), "team")
            .await
            .ok()?
            .len()
            + client
                .list_in(LocalClient::resource("", "pods"), "team")
                .await
                .ok()?
                .len();
        (gone && left == 0).then_some(())
    })
    .await;
}

/// Plays the kubelet: gives every new pod an IP and marks it Ready.
fn simulate_kubelet(client: LocalClient) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let pods = LocalClient::resource("", "pods");
        let mut n = 0u32;
        loop {
            if let Ok((all, _)) = client.list(pods).await {
                for p in all {
                    if p.pointer("/status/podIP").is_some() || p.pointer("/metadata/deletionTimestamp").is_some() {
                        continue;
                    }
                    n += 1;
                    let mut next = p.clone();
                    next["status"] = json!({"phase": "Running", "podIP": format!("10.9.{}.{}", n / 250, n % 250 + 1),
                        "conditions": [{"type": "Ready", "status": "True"}]});
                    let _ = client.update_status(pods, next).await;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
}

fn ready_count(pods: &[Value]) -> usize {
    pods.iter()
        .filter(|p| p.pointer("/status/conditions/0/status") == Some(&json!("True")))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_update_never_drops_below_replicas_minus_max_unavailable() {
    let (_api, client, _controllers, _dir) = start().await;
    let kubelet = simulate_kubelet(client.clone());
    let dr = LocalClient::resource("apps", "deployments");
    let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 10, "selector": {"matchLabels": {"app": "web"}},
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "web:1"}]}}}});
    client.create(dr, "default", d).await.expect("deployment");
    let complete = |image: &'static str| {
        let client = client.clone();
        async move {
            let d = client.get(dr, "default", "web").await.ok()?;
            let s = &d["status"];
            let pods = pods_with(&client, "app", "web").await;
            let all_new = pods.len() == 10 && pods.iter().all(|p| p["spec"]["containers"][0]["image"] == image);
            (s["updatedReplicas"] == 10
                && s["availableReplicas"] == 10
                && s["replicas"] == 10
                && all_new
                && s["observedGeneration"] == d["metadata"]["generation"])
                .then_some(d)
        }
    };
    let first = wait_for("the first rollout", async || complete("web:1").await).await;
    assert_eq!(
        first["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );
    let progressing = first["status"]["conditions"]
        .as_array()
        .expect("conditions")
        .iter()
        .find(|c| c["type"] == "Progressing")
        .cloned()
        .expect("Progressing");
    assert_eq!(progressing["reason"], "NewReplicaSetAvailable");

    let mut next = first.clone();
    next["spec"]["template"]["spec"]["containers"][0]["image"] = json!("web:2");
    client.update(dr, next).await.expect("update image");
    // Watch every step: ready pods never below 10 - 1.
    let mut min_ready = usize::MAX;
    let done = wait_for("the second rollout", async || {
        let ready = ready_count(&pods_with(&client, "app", "web").await);
        min_ready = min_ready.min(ready);
        complete("web:2").await
    })
    .await;
    assert!(min_ready >= 9, "ready pods dropped to {min_ready} during the rollout");
    assert_eq!(
        done["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
    let (sets, _) = client
        .list(LocalClient::resource("apps", "replicasets"))
        .await
        .expect("sets");
    let mut replicas: Vec<(i64, String)> = sets
        .iter()
        .map(|s| {
            (
                s["spec"]["replicas"].as_i64().unwrap_or(-1),
                s["spec"]["template"]["spec"]["containers"][0]["image"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect();
    replicas.sort();
    assert_eq!(
        replicas,
        [(0, "web:1".to_string()), (10, "web:2".to_string())],
        "the old set is kept at zero for rollbacks"
    );
    assert!(sets
        .iter()
        .all(|s| s["metadata"]["labels"]["pod-template-hash"].is_string()));
    kubelet.abort();
}

fn micro_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Renews node `name`'s lease every 50 ms until aborted, as an agent would.
fn heartbeat(client: LocalClient, name: &'static str) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let leases = LocalClient::resource("coordination.k8s.io", "leases");
        loop {
            match client.get(leases, "kube-node-lease", name).await {
                Ok(mut l) => {
                    l["spec"]["renewTime"] = json!(micro_now());
                    let _ = client.update(leases, l).await;
                }
                Err(_) => {
                    let l = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                        "metadata": {"name": name, "namespace": "kube-node-lease"},
                        "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": micro_now()}});
                    let _ = client.create(leases, "kube-node-lease", l).await;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_stops_renewing_is_tainted_and_its_pods_are_recreated() {
    let (api, client, _controllers, _dir) = start().await;
    let nodes = LocalClient::resource("", "nodes");
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
    client.create(nodes, "", node.clone()).await.expect("node");
    let beat = heartbeat(client.clone(), "n1");
    // A second, healthy node: with every node silent, the controller would assume a
    // partition of its own and evict nothing (as Kubernetes does).
    let mut n2 = node;
    n2["metadata"]["name"] = json!("n2");
    client.create(nodes, "", n2).await.expect("node 2");
    let _beat2 = heartbeat(client.clone(), "n2");
    let rc = LocalClient::resource("", "replicationcontrollers");
    client
        .create(rc, "default", json!({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "w"},
            "spec": {"replicas": 2, "selector": {"app": "w"},
                     "template": {"metadata": {"labels": {"app": "w"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}))
        .await
        .expect("rc");
    let first = wait_for("two pods", async || {
        let p = pods_with(&client, "app", "w").await;
        (p.len() == 2).then_some(p)
    })
    .await;
    for p in &first {
        let t = gantry_control::apiserver::request::Target {
            resource: LocalClient::resource("", "pods"),
            namespace: Some("default".into()),
            name: p["metadata"]["name"].as_str().map(str::to_string),
            subresource: Some("binding".into()),
        };
        api.state
            .bind(&t, json!({"target": {"kind": "Node", "name": "n1"}}))
            .await
            .expect("bind");
    }
    // Healthy while it renews.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let n = client.get_in(nodes, None, "n1").await.expect("node");
    assert!(
        n["spec"]["taints"].is_null() || n["spec"]["taints"] == json!([]),
        "a renewing node is not tainted: {n}"
    );

    beat.abort();
    let tainted = wait_for("n1 marked unreachable", async || {
        let n = client.get_in(nodes, None, "n1").await.ok()?;
        let t = n["spec"]["taints"]
            .as_array()?
            .iter()
            .any(|t| t["key"] == "node.kubernetes.io/unreachable" && t["effect"] == "NoExecute");
        (t && n["status"]["conditions"][0]["status"] == "Unknown").then_some(n)
    })
    .await;
    assert_eq!(tainted["status"]["conditions"][0]["reason"], "NodeStatusUnknown");
    wait_for("the pods evicted and recreated", async || {
        let p = pods_with(&client, "app", "w").await;
        let old_gone = !p
            .iter()
            .any(|x| first.iter().any(|f| f["metadata"]["uid"] == x["metadata"]["uid"]));
        (old_gone && p.len() == 2).then_some(())
    })
    .await;

    // Renewing again lifts the taint.
    let beat = heartbeat(client.clone(), "n1");
    wait_for("the taint lifted", async || {
        let n = client.get_in(nodes, None, "n1").await.ok()?;
        n["spec"]["taints"]
            .as_array()
            .is_none_or(|t| t.is_empty())
            .then_some(())
    })
    .await;
    beat.abort();
}

async fn finish_pod(client: &LocalClient, pod: &Value, phase: &str) {
    let pods = LocalClient::resource("", "pods");
    let mut next = pod.clone();
    next["status"] = json!({"phase": phase, "startTime": micro_now()});
    client.update_status(pods, next).await.expect("pod status");
}

async fn job_pods(client: &LocalClient, job: &str) -> Vec<Value> {
    pods_with(client, "job-name", job).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_runs_to_its_completions_with_bounded_parallelism() {
    let (_api, client, _controllers, _dir) = start().await;
    let jobs = LocalClient::resource("batch", "jobs");
    create_job(&client, "j", json!({"completions": 3, "parallelism": 2})).await;
    let mut done = 0;
    while done < 3 {
        let running = wait_for("running job pods", async || {
            let p: Vec<Value> = job_pods(&client, "j")
                .await
                .into_iter()
                .filter(|p| p["status"]["phase"] == "Pending")
                .collect();
            (!p.is_empty()).then_some(p)
        })
        .await;
        let total_active = running.len();
        assert!(
            total_active <= 2,
            "parallelism 2 bounds the active pods: {total_active}"
        );
        finish_pod(&client, &running[0], "Succeeded").await;
        done += 1;
    }
    let job = wait_for("the job complete", async || {
        let j = client.get(jobs, "default", "j").await.ok()?;
        j["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|c| c["type"] == "Complete" && c["status"] == "True")
            .then_some(j)
    })
    .await;
    assert_eq!(job["status"]["succeeded"], 3);
    assert!(job["status"]["completionTime"].is_string());
    assert_eq!(job["status"]["active"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_pods_keep_failing_stops_at_its_backoff_limit() {
    let (_api, client, _controllers, _dir) = start().await;
    let jobs = LocalClient::resource("batch", "jobs");
    create_job(&client, "bad", json!({"backoffLimit": 2})).await;
    for round in 0..3 {
        let pod = wait_for("a pending pod", async || {
            job_pods(&client, "bad")
                .await
                .into_iter()
                .find(|p| p["status"]["phase"] == "Pending")
        })
        .await;
        finish_pod(&client, &pod, "Failed").await;
        let failed = wait_for("the failure counted", async || {
            let j = client.get(jobs, "default", "bad").await.ok()?;
            (j["status"]["failed"] == round + 1).then_some(j)
        })
        .await;
        let _ = failed;
    }
    let job = wait_for("the job failed", async || {
        let j = client.get(jobs, "default", "bad").await.ok()?;
        j["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "Failed" && c["status"] == "True")
            .cloned()
    })
    .await;
    assert_eq!(job["reason"], "BackoffLimitExceeded");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        job_pods(&client, "bad")
            .await
            .iter()
            .all(|p| p["status"]["phase"] == "Failed"),
        "no new pod after the limit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_past_its_active_deadline_fails_and_stops_its_pods() {
    let (_api, client, _controllers, _dir) = start().await;
    let jobs = LocalClient::resource("batch", "jobs");
    create_job(&client, "slow", json!({"activeDeadlineSeconds": 1})).await;
    wait_for("a running pod", async || {
        (!job_pods(&client, "slow").await.is_empty()).then_some(())
    })
    .await;
    let failed = wait_for("the job failed at its deadline", async || {
        let j = client.get(jobs, "default", "slow").await.ok()?;
        j["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "Failed" && c["status"] == "True")
            .cloned()
    })
    .await;
    assert_eq!(failed["reason"], "DeadlineExceeded");
    wait_for("its pod stopped", async || {
        job_pods(&client, "slow").await.is_empty().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_deployment_scales_but_does_not_roll_out_until_resumed() {
    let (_api, client, _controllers, _dir) = start().await;
    let dr = LocalClient::resource("apps", "deployments");
    let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "p"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "p"}},
                 "template": {"metadata": {"labels": {"app": "p"}}, "spec": {"containers": [{"name": "c", "image": "p:1"}]}}}});
    client.create(dr, "default", d).await.expect("deployment");
    wait_for("two pods", async || {
        (pods_with(&client, "app", "p").await.len() == 2).then_some(())
    })
    .await;
    let mut next = client.get(dr, "default", "p").await.expect("get");
    next["spec"]["paused"] = json!(true);
    next["spec"]["replicas"] = json!(3);
    next["spec"]["template"]["spec"]["containers"][0]["image"] = json!("p:2");
    client.update(dr, next).await.expect("pause, scale and change");
    wait_for("three pods of the old template", async || {
        let p = pods_with(&client, "app", "p").await;
        (p.len() == 3 && p.iter().all(|x| x["spec"]["containers"][0]["image"] == "p:1")).then_some(())
    })
    .await;
    let (sets, _) = client
        .list(LocalClient::resource("apps", "replicasets"))
        .await
        .expect("sets");
    assert_eq!(sets.len(), 1, "no new ReplicaSet while paused");
    let mut resume = client.get(dr, "default", "p").await.expect("get");
    resume["spec"]["paused"] = json!(false);
    client.update(dr, resume).await.expect("resume");
    wait_for("the rollout after resuming", async || {
        let (sets, _) = client.list(LocalClient::resource("apps", "replicasets")).await.ok()?;
        (sets.len() == 2).then_some(())
    })
    .await;
}

/// Creates a Job of one `restartPolicy: Never` container, with `spec` merged in.
async fn create_job(client: &LocalClient, name: &str, spec: Value) {
    let mut job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}});
    for (k, v) in spec.as_object().expect("a spec object") {
        job["spec"][k] = v.clone();
    }
    client
        .create(LocalClient::resource("batch", "jobs"), "default", job)
        .await
        .expect("job");
}
