//! The ReplicaSet and ReplicationController controller: keeps exactly `spec.replicas` pods
//! that match the selector, adopting matching orphans and releasing pods that stop matching;
//! creates and deletes in slow-start bursts; prefers deleting unscheduled, pending, not-ready
//! and newest pods; reports replicas, fullyLabeledReplicas, readyReplicas, availableReplicas
//! and observedGeneration.
//!
//! Expectations: after creating or deleting pods, the controller waits until its informer
//! has seen them before it counts again, so a reconcile that runs before the cache catches
//! up does not create twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gantry_api::selector::LabelSelector;
use parking_lot::Mutex;
use serde_json::{json, Value};

use super::client::LocalClient;
use super::events;
use super::informer::{key_of, Change, Informer};
use super::queue::WorkQueue;
use crate::apiserver::object;
use crate::apiserver::registry::Resource;
use crate::apiserver::status::ApiError;

/// Pods created or deleted at most this many per reconcile.
const BURST: usize = 500;
/// Expectations older than this are dropped (a lost event must not wedge a set).
const EXPECTATION_TTL: Duration = Duration::from_secs(30);

#[derive(Default)]
struct Expect {
    adds: i64,
    dels: i64,
    at: Option<Instant>,
}

struct Controller {
    client: LocalClient,
    pods: Informer,
    sets: Informer,
    resource: &'static Resource,
    pod_resource: &'static Resource,
    queue: WorkQueue,
    expectations: Mutex<HashMap<String, Expect>>,
}

pub struct ReplicaSetController;

impl ReplicaSetController {
    /// Starts the controller for `apps/replicasets` or `/replicationcontrollers`.
    /// Starts the controller for the sets `sets` informs about (ReplicaSets or
    /// ReplicationControllers).
    pub fn start(tasks: &mut tokio::task::JoinSet<()>, client: LocalClient, pods: Informer, sets: Informer) {
        let c = Arc::new(Controller {
            resource: sets.resource(),
            pod_resource: LocalClient::resource("", "pods"),
            client,
            pods,
            sets,
            queue: WorkQueue::new(),
            expectations: Mutex::default(),
        });
        let mut set_changes = c.sets.subscribe();
        let mut pod_changes = c.pods.subscribe();
        let c2 = c.clone();
        tasks.spawn(async move {
            while let Some(ch) = set_changes.recv().await {
                if let Some(o) = ch.new.as_ref().or(ch.old.as_ref()) {
                    c2.queue.add(key_of(o));
                }
            }
        });
        let c3 = c.clone();
        tasks.spawn(async move {
            while let Some(ch) = pod_changes.recv().await {
                c3.pod_changed(&ch);
            }
        });
        super::spawn_workers(tasks, c);
    }
}

/// The controller owner reference of an object, if any: (kind, name, uid).
fn controller_of(obj: &Value) -> Option<(&str, &str, &str)> {
    obj.pointer("/metadata/ownerReferences")?
        .as_array()?
        .iter()
        .find(|r| r.get("controller") == Some(&json!(true)))
        .map(|r| {
            (
                r.get("kind").and_then(Value::as_str).unwrap_or(""),
                r.get("name").and_then(Value::as_str).unwrap_or(""),
                r.get("uid").and_then(Value::as_str).unwrap_or(""),
            )
        })
}

fn is_terminating(pod: &Value) -> bool {
    pod.pointer("/metadata/deletionTimestamp").is_some_and(|v| !v.is_null())
}

fn is_active(pod: &Value) -> bool {
    let phase = pod.pointer("/status/phase").and_then(Value::as_str).unwrap_or("");
    !is_terminating(pod) && phase != "Succeeded" && phase != "Failed"
}

fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

impl super::Reconcile for Controller {
    const NAME: &'static str = "replicaset";

    fn queue(&self) -> &WorkQueue {
        &self.queue
    }

    fn informers(&self) -> Vec<&Informer> {
        vec![&self.sets, &self.pods]
    }

    fn reconcile<'a>(&'a self, key: &'a str) -> futures::future::BoxFuture<'a, Result<(), ApiError>> {
        Box::pin(Controller::reconcile(self, key))
    }
}

impl Controller {
    fn component(&self) -> &'static str {
        if self.resource.kind == "ReplicationController" {
            "replication-controller"
        } else {
            "replicaset-controller"
        }
    }

    fn selector(&self, set: &Value) -> Option<LabelSelector> {
        let sel = set.pointer("/spec/selector")?;
        if self.resource.kind == "ReplicationController" {
            LabelSelector::from_map(sel).ok()
        } else {
            LabelSelector::from_label_selector(sel).ok()
        }
    }

    fn pod_changed(&self, ch: &Change) {
        let Some(pod) = ch.new.as_ref().or(ch.old.as_ref()) else {
            return;
        };
        let ns = object::meta_str(pod, "namespace").unwrap_or_default();
        if let Some((kind, name, _)) = controller_of(pod) {
            if kind == self.resource.kind {
                let key = format!("{ns}/{name}");
                let mut exp = self.expectations.lock();
                if let Some(e) = exp.get_mut(&key) {
                    if ch.old.is_none() && ch.new.is_some() {
                        e.adds -= 1;
                    }
                    if ch.new.is_none() {
                        e.dels -= 1;
                    }
                }
                drop(exp);
                self.queue.add(key);
            }
        }
        // An orphan, or a pod whose labels changed, may concern any set in its namespace.
        let orphan = ch.new.as_ref().is_some_and(|p| controller_of(p).is_none());
        let labels_changed = match (&ch.old, &ch.new) {
            (Some(a), Some(b)) => a.pointer("/metadata/labels") != b.pointer("/metadata/labels"),
            _ => false,
        };
        if orphan || labels_changed {
            for set in self.sets.list(Some(ns)) {
                if self
                    .selector(&set)
                    .is_some_and(|s| ch.new.as_ref().is_some_and(|p| s.matches_object(p)))
                {
                    self.queue.add(key_of(&set));
                }
            }
        }
    }

    fn expectations_met(&self, key: &str) -> bool {
        let mut exp = self.expectations.lock();
        match exp.get(key) {
            None => true,
            Some(e) if (e.adds <= 0 && e.dels <= 0) || e.at.is_some_and(|t| t.elapsed() > EXPECTATION_TTL) => {
                exp.remove(key);
                true
            }
            Some(_) => false,
        }
    }

    fn expect(&self, key: &str, adds: i64, dels: i64) {
        self.expectations.lock().insert(
            key.to_string(),
            Expect {
                adds,
                dels,
                at: Some(Instant::now()),
            },
        );
    }

    async fn reconcile(&self, key: &str) -> Result<(), ApiError> {
        let Some(set) = self.sets.get(key) else {
            self.expectations.lock().remove(key);
            return Ok(());
        };
        if is_terminating(&set) {
            return Ok(());
        }
        let ns = object::meta_str(&set, "namespace").unwrap_or("default").to_string();
        let uid = object::meta_str(&set, "uid").unwrap_or_default().to_string();
        let name = object::name(&set).unwrap_or_default().to_string();
        let Some(selector) = self.selector(&set) else {
            return Ok(());
        };
        if selector.is_empty() {
            // An empty selector would select every pod in the namespace: refuse to act.
            return Ok(());
        }
        let mut owned = Vec::new();
        for pod in self.pods.list(Some(&ns)) {
            match controller_of(&pod) {
                Some((_, _, owner)) if owner == uid => {
                    if selector.matches_object(&pod) {
                        owned.push(pod);
                    } else {
                        // Stopped matching: release it.
                        self.set_owner(&pod, None).await?;
                    }
                }
                None if selector.matches_object(&pod) && !is_terminating(&pod) => {
                    if let Some(adopted) = self.set_owner(&pod, Some(&set)).await? {
                        owned.push(Arc::new(adopted));
                    }
                }
                _ => {}
            }
        }
        let active: Vec<Arc<Value>> = owned.iter().filter(|p| is_active(p)).cloned().collect();
        if self.expectations_met(key) {
            let want = set
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1)
                .max(0) as usize;
            if active.len() < want {
                let n = (want - active.len()).min(BURST);
                self.expect(key, n as i64, 0);
                let (created, failed) = self.create_pods(&set, &ns, n).await;
                if created > 0 {
                    events::record(
                        &self.client,
                        self.component(),
                        &set,
                        "Normal",
                        "SuccessfulCreate",
                        format!("Created {created} pod(s)"),
                    );
                }
                if let Some(e) = &failed {
                    events::record(
                        &self.client,
                        self.component(),
                        &set,
                        "Warning",
                        "FailedCreate",
                        format!("Error creating: {}", e.message),
                    );
                }
                // Pods that were not created will never be observed.
                if let Some(e) = self.expectations.lock().get_mut(key) {
                    e.adds -= (n - created) as i64;
                }
                if let Some(e) = failed {
                    return Err(e);
                }
            } else if active.len() > want {
                let mut victims = active.clone();
                victims.sort_by_key(|p| deletion_rank(p));
                let n = (active.len() - want).min(BURST);
                self.expect(key, 0, n as i64);
                events::record(
                    &self.client,
                    self.component(),
                    &set,
                    "Normal",
                    "SuccessfulDelete",
                    format!("Deleting {n} pod(s)"),
                );
                for pod in victims.iter().take(n) {
                    match self
                        .client
                        .delete(self.pod_resource, &ns, object::name(pod).unwrap_or_default())
                        .await
                    {
                        Ok(_) => {}
                        Err(e) if e.code == 404 => {
                            if let Some(x) = self.expectations.lock().get_mut(key) {
                                x.dels -= 1;
                            }
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        self.update_status(&set, &name, &owned, &active).await
    }

    /// Creates `n` pods from the template in slow-start batches (1, 2, 4, …), stopping at
    /// the first failed batch. Returns how many were created, and the failure if any.
    async fn create_pods(&self, set: &Value, ns: &str, n: usize) -> (usize, Option<ApiError>) {
        let template = set.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let name = object::name(set).unwrap_or_default();
        let owner = json!({
            "apiVersion": self.resource.api_version(),
            "kind": self.resource.kind,
            "name": name,
            "uid": object::meta_str(set, "uid").unwrap_or_default(),
            "controller": true,
            "blockOwnerDeletion": true,
        });
        let mut created = 0;
        let mut batch = 1;
        while created < n {
            let size = batch.min(n - created);
            let mut tasks = Vec::new();
            for _ in 0..size {
                let mut pod = json!({
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {
                        "generateName": format!("{name}-"),
                        "namespace": ns,
                        "labels": template.pointer("/metadata/labels").cloned().unwrap_or(json!({})),
                        "ownerReferences": [owner.clone()],
                    },
                    "spec": template.get("spec").cloned().unwrap_or(json!({})),
                });
                if let Some(a) = template.pointer("/metadata/annotations") {
                    pod["metadata"]["annotations"] = a.clone();
                }
                let client = self.client.clone();
                let r = self.pod_resource;
                let ns = ns.to_string();
                tasks.push(tokio::spawn(async move { client.create(r, &ns, pod).await }));
            }
            let mut failed = None;
            for t in tasks {
                match t.await {
                    Ok(Ok(_)) => created += 1,
                    Ok(Err(e)) => failed = Some(e),
                    Err(e) => failed = Some(ApiError::internal(format!("pod creation task failed: {e}"))),
                }
            }
            if failed.is_some() {
                return (created, failed);
            }
            batch *= 2;
        }
        (created, None)
    }

    /// Adopts (`owner` = the set) or releases (`None`) a pod with a guarded update.
    /// Returns the updated pod, or None if it changed meanwhile (the next reconcile sees it).
    async fn set_owner(&self, pod: &Value, owner: Option<&Value>) -> Result<Option<Value>, ApiError> {
        let mut next = pod.clone();
        let refs: Vec<Value> = next
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.get("controller") != Some(&json!(true)))
            .collect();
        let mut refs = refs;
        if let Some(set) = owner {
            refs.push(json!({
                "apiVersion": self.resource.api_version(),
                "kind": self.resource.kind,
                "name": object::name(set).unwrap_or_default(),
                "uid": object::meta_str(set, "uid").unwrap_or_default(),
                "controller": true,
                "blockOwnerDeletion": true,
            }));
        }
        object::meta_mut(&mut next).insert("ownerReferences".into(), json!(refs));
        match self.client.update(self.pod_resource, next).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.code == 409 || e.code == 404 => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn update_status(
        &self,
        set: &Value,
        name: &str,
        owned: &[Arc<Value>],
        active: &[Arc<Value>],
    ) -> Result<(), ApiError> {
        let template_labels = set
            .pointer("/spec/template/metadata/labels")
            .cloned()
            .unwrap_or(json!({}));
        let full = LabelSelector::from_map(&template_labels).unwrap_or_else(|_| LabelSelector::everything());
        let ready = active.iter().filter(|p| is_ready(p)).count();
        let status = json!({
            "replicas": active.len(),
            "fullyLabeledReplicas": owned.iter().filter(|p| is_active(p) && full.matches_object(p)).count(),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": set.pointer("/metadata/generation").cloned().unwrap_or(json!(1)),
        });
        let current = set.get("status").cloned().unwrap_or(json!({}));
        let same = [
            "replicas",
            "fullyLabeledReplicas",
            "readyReplicas",
            "availableReplicas",
            "observedGeneration",
        ]
        .iter()
        .all(|k| current.get(*k).cloned().unwrap_or(json!(0)) == status[*k]);
        if same {
            return Ok(());
        }
        let mut next = set.clone();
        let mut merged = current;
        for (k, v) in status.as_object().expect("status is an object") {
            merged[k] = v.clone();
        }
        next["status"] = merged;
        match self.client.update_status(self.resource, next).await {
            Ok(_) => Ok(()),
            Err(e) if e.code == 404 => Ok(()),
            Err(e) => {
                tracing::debug!(set = name, error = %e.message, "status update lost a race; retrying");
                Err(e)
            }
        }
    }
}

/// Lower ranks are deleted first: unscheduled, then pending, then not ready, then newest.
fn deletion_rank(pod: &Value) -> (u8, u8, u8, std::cmp::Reverse<String>) {
    let scheduled = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let phase = pod.pointer("/status/phase").and_then(Value::as_str).unwrap_or("");
    (
        u8::from(scheduled),
        u8::from(phase == "Running"),
        u8::from(is_ready(pod)),
        std::cmp::Reverse(object::meta_str(pod, "creationTimestamp").unwrap_or("").to_string()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletion_prefers_unscheduled_then_pending_then_not_ready_then_newest() {
        let pod = |node: &str, phase: &str, ready: bool, created: &str| {
            json!({"metadata": {"creationTimestamp": created}, "spec": {"nodeName": node},
                   "status": {"phase": phase, "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}})
        };
        let mut pods = [
            pod("n1", "Running", true, "2020-01-01T00:00:00Z"),
            pod("n1", "Running", true, "2021-01-01T00:00:00Z"),
            pod("n1", "Running", false, "2019-01-01T00:00:00Z"),
            pod("n1", "Pending", false, "2019-01-01T00:00:00Z"),
            pod("", "Pending", false, "2018-01-01T00:00:00Z"),
        ];
        pods.sort_by_key(deletion_rank);
        let order: Vec<(&str, &str)> = pods
            .iter()
            .map(|p| {
                (
                    p["spec"]["nodeName"].as_str().unwrap_or(""),
                    p["metadata"]["creationTimestamp"].as_str().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(
            order,
            [
                ("", "2018-01-01T00:00:00Z"),
                ("n1", "2019-01-01T00:00:00Z"),
                ("n1", "2019-01-01T00:00:00Z"),
                ("n1", "2021-01-01T00:00:00Z"),
                ("n1", "2020-01-01T00:00:00Z"),
            ]
        );
        assert_eq!(pods[1]["status"]["phase"], "Pending");
    }
}
