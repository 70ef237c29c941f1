//! The node lifecycle controller: a node whose Lease (in `kube-node-lease`) is not renewed
//! within the grace period becomes `Ready=Unknown` and gets the
//! `node.kubernetes.io/unreachable:NoExecute` taint; pods on it are evicted once their
//! toleration of that taint runs out (default 300 s), so their owners recreate them. A node
//! that renews again loses the taint.
//!
//! Evictions are rate-limited per node, as Kubernetes does: `eviction_rate` nodes per
//! second normally; when more than `unhealthy_threshold` of the nodes are unhealthy at once
//! (a partition, not a failure), `secondary_rate` in large clusters and none in small ones.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::client::LocalClient;
use super::informer::Informer;
use crate::apiserver::object;
use crate::apiserver::status::ApiError;

pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";

/// Settings; the defaults are Kubernetes'.
#[derive(Clone, Debug)]
pub struct NodeLifecycleConfig {
    pub grace: Duration,
    pub default_toleration: Duration,
    pub monitor_period: Duration,
    pub eviction_rate: f64,
    pub secondary_rate: f64,
    pub unhealthy_threshold: f64,
    pub large_cluster: usize,
}

impl Default for NodeLifecycleConfig {
    fn default() -> NodeLifecycleConfig {
        NodeLifecycleConfig {
            grace: Duration::from_secs(40),
            default_toleration: Duration::from_secs(300),
            monitor_period: Duration::from_secs(5),
            eviction_rate: 0.1,
            secondary_rate: 0.01,
            unhealthy_threshold: 0.55,
            large_cluster: 50,
        }
    }
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

fn age(ts: Option<DateTime<Utc>>) -> Option<Duration> {
    ts.map(|t| (Utc::now() - t).to_std().unwrap_or_default())
}

/// A token bucket of node evictions.
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn take(&mut self, rate: f64) -> bool {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * rate).min(1.0);
        self.last = now;
        if rate > 0.0 && self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

pub struct NodeLifecycleController;

impl NodeLifecycleController {
    pub fn start(tasks: &mut tokio::task::JoinSet<()>, client: LocalClient, pods: Informer, cfg: NodeLifecycleConfig) {
        let nodes = Informer::start(tasks, client.clone(), "", "nodes");
        let leases = Informer::start(tasks, client.clone(), "coordination.k8s.io", "leases");
        tasks.spawn(async move {
            nodes.wait_synced().await;
            leases.wait_synced().await;
            pods.wait_synced().await;
            // The first eviction may happen at once.
            let mut bucket = Bucket {
                tokens: 1.0,
                last: Instant::now(),
            };
            // Nodes whose pods have been let go, and when.
            let mut evicting: HashMap<String, Instant> = HashMap::new();
            loop {
                if let Err(e) = monitor(&client, &nodes, &leases, &pods, &cfg, &mut bucket, &mut evicting).await {
                    tracing::debug!(error = %e.message, "node monitoring pass failed");
                }
                tokio::time::sleep(cfg.monitor_period).await;
            }
        });
    }
}

async fn monitor(
    client: &LocalClient,
    nodes: &Informer,
    leases: &Informer,
    pods: &Informer,
    cfg: &NodeLifecycleConfig,
    bucket: &mut Bucket,
    evicting: &mut HashMap<String, Instant>,
) -> Result<(), ApiError> {
    let nr = LocalClient::resource("", "nodes");
    let all = nodes.list(None);
    let mut unhealthy = Vec::new();
    for node in &all {
        let name = object::name(node).unwrap_or_default().to_string();
        let renewed = leases.get(&format!("kube-node-lease/{name}")).and_then(|l| {
            l.pointer("/spec/renewTime")
                .and_then(Value::as_str)
                .and_then(parse_time)
        });
        let created = object::meta_str(node, "creationTimestamp").and_then(parse_time);
        // A node that never renewed is measured from its creation.
        let silent = age(renewed.or(created)).unwrap_or_default();
        let tainted = has_taint(node);
        if silent > cfg.grace {
            unhealthy.push(name.clone());
            if !tainted {
                mark_unreachable(client, node).await?;
            }
        } else if tainted {
            // It came back.
            let mut next = (**node).clone();
            let kept: Vec<Value> = taints(node).into_iter().filter(|t| t["key"] != UNREACHABLE).collect();
            next["spec"]["taints"] = json!(kept);
            client.update(nr, next).await?;
            evicting.remove(&name);
        }
    }
    // Pods on unreachable nodes, past their toleration, are evicted node by node.
    let fraction = if all.is_empty() {
        0.0
    } else {
        unhealthy.len() as f64 / all.len() as f64
    };
    let rate = if fraction > cfg.unhealthy_threshold {
        if all.len() > cfg.large_cluster {
            cfg.secondary_rate
        } else {
            0.0
        }
    } else {
        cfg.eviction_rate
    };
    for name in unhealthy {
        let Some(node) = nodes.get(&name) else { continue };
        let Some(since) = taint_added(&node) else { continue };
        let on_node: Vec<_> = pods
            .list(None)
            .into_iter()
            .filter(|p| p.pointer("/spec/nodeName").and_then(Value::as_str) == Some(name.as_str()))
            .filter(|p| p.pointer("/metadata/deletionTimestamp").is_none_or(Value::is_null))
            .collect();
        let due: Vec<_> = on_node
            .iter()
            .filter(|p| age(Some(since)).unwrap_or_default() >= toleration(p, cfg.default_toleration))
            .collect();
        if due.is_empty() {
            continue;
        }
        // The rate limits nodes entering eviction, not pods: once a node's turn comes, all
        // its due pods go.
        if !evicting.contains_key(&name) {
            if !bucket.take(rate) {
                continue;
            }
            evicting.insert(name.clone(), Instant::now());
        }
        for p in due {
            let ns = object::meta_str(p, "namespace").unwrap_or("default");
            tracing::info!(pod = object::name(p).unwrap_or_default(), node = %name, "evicting a pod from an unreachable node");
            super::events::record(
                client,
                "node-controller",
                p,
                "Normal",
                "TaintManagerEviction",
                format!(
                    "Marking for deletion Pod {}/{}",
                    ns,
                    object::name(p).unwrap_or_default()
                ),
            );
            match client
                .delete_in(
                    LocalClient::resource("", "pods"),
                    Some(ns),
                    object::name(p).unwrap_or_default(),
                    false,
                )
                .await
            {
                Ok(_) => {}
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

fn taints(node: &Value) -> Vec<Value> {
    node.pointer("/spec/taints")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn has_taint(node: &Value) -> bool {
    taints(node)
        .iter()
        .any(|t| t["key"] == UNREACHABLE && t["effect"] == "NoExecute")
}

fn taint_added(node: &Value) -> Option<DateTime<Utc>> {
    taints(node)
        .iter()
        .find(|t| t["key"] == UNREACHABLE)
        .and_then(|t| t["timeAdded"].as_str())
        .and_then(parse_time)
}

/// How long a pod tolerates the unreachable taint.
fn toleration(pod: &Value, default: Duration) -> Duration {
    let tolerations = pod
        .pointer("/spec/tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for t in &tolerations {
        let key_ok = t["key"] == UNREACHABLE || (t["operator"] == "Exists" && t.get("key").is_none_or(|k| k == ""));
        let effect_ok = t.get("effect").is_none_or(|e| e == "" || e == "NoExecute");
        if key_ok && effect_ok {
            return match t.get("tolerationSeconds").and_then(Value::as_i64) {
                Some(s) => Duration::from_secs(s.max(0) as u64),
                None => Duration::MAX,
            };
        }
    }
    default
}

async fn mark_unreachable(client: &LocalClient, node: &Value) -> Result<(), ApiError> {
    let nr = LocalClient::resource("", "nodes");
    let name = object::name(node).unwrap_or_default();
    // Status first: Ready becomes Unknown.
    let mut status_next = node.clone();
    let now = object::now();
    let mut conditions: Vec<Value> = node
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    match conditions.iter_mut().find(|c| c["type"] == "Ready") {
        Some(c) => {
            if c["status"] != "Unknown" {
                c["lastTransitionTime"] = json!(now);
            }
            c["status"] = json!("Unknown");
            c["reason"] = json!("NodeStatusUnknown");
            c["message"] = json!("Kubelet stopped posting node status.");
        }
        None => conditions.push(
            json!({"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
            "message": "Kubelet stopped posting node status.", "lastTransitionTime": now, "lastHeartbeatTime": now}),
        ),
    }
    status_next["status"]["conditions"] = json!(conditions);
    let updated = client.update_status(nr, status_next).await?;
    let mut next = updated;
    let mut t = taints(&next);
    t.push(json!({"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": object::now()}));
    next["spec"]["taints"] = json!(t);
    client.update(nr, next).await?;
    tracing::warn!(node = name, "node stopped renewing its lease: marked unreachable");
    super::events::record(
        client,
        "node-controller",
        node,
        "Normal",
        "NodeNotReady",
        format!("Node {name} status is now: NodeNotReady"),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerations_of_the_unreachable_taint_set_the_eviction_delay() {
        let d = Duration::from_secs(300);
        assert_eq!(toleration(&json!({"spec": {}}), d), d);
        let p = json!({"spec": {"tolerations": [{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}]}});
        assert_eq!(toleration(&p, d), Duration::from_secs(5));
        let forever = json!({"spec": {"tolerations": [{"operator": "Exists"}]}});
        assert_eq!(toleration(&forever, d), Duration::MAX);
    }

    #[test]
    fn the_bucket_admits_at_its_rate_and_zero_stops_evictions() {
        let mut b = Bucket {
            tokens: 1.0,
            last: Instant::now(),
        };
        assert!(b.take(0.1));
        assert!(!b.take(0.1), "the next node waits ten seconds");
        let mut z = Bucket {
            tokens: 1.0,
            last: Instant::now(),
        };
        assert!(!z.take(0.0));
    }
}
