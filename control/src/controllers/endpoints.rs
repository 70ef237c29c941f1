//! The Endpoints and EndpointSlice controller: for each Service with a selector, the pods
//! it selects that have an IP, with their readiness.
//!
//! - Endpoints (core/v1): ready pods under `addresses`, not-ready ones under
//!   `notReadyAddresses`; a pod that starts terminating leaves both at once.
//! - EndpointSlices (discovery.k8s.io/v1): every pod with an IP, with `ready`, `serving` and
//!   `terminating` conditions, at most 100 per slice. Updates are incremental: an endpoint
//!   stays in the slice it is in, so one pod's change rewrites that one slice only.
//!
//! Named target ports are resolved against each pod's container ports; endpoints whose
//! ports resolve differently go to different slices.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use gantry_api::selector::LabelSelector;
use parking_lot::Mutex;
use serde_json::{json, Value};

use super::client::LocalClient;
use super::informer::{key_of, Informer};
use super::queue::WorkQueue;
use crate::apiserver::object;
use crate::apiserver::status::ApiError;

/// Endpoints per slice, as Kubernetes' default.
pub const MAX_PER_SLICE: usize = 100;
const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
const SERVICE_NAME: &str = "kubernetes.io/service-name";

struct Controller {
    client: LocalClient,
    pods: Informer,
    services: Informer,
    slices: Informer,
    queue: WorkQueue,
    /// Per service, the revision of our last slice write: until the slice informer has seen
    /// it, the cache is behind our own writes and must not be acted on.
    written: Mutex<HashMap<String, u64>>,
}

pub struct EndpointsController;

impl EndpointsController {
    pub fn start(tasks: &mut tokio::task::JoinSet<()>, client: LocalClient, pods: Informer) {
        let services = Informer::start(tasks, client.clone(), "", "services");
        let slices = Informer::start(tasks, client.clone(), "discovery.k8s.io", "endpointslices");
        let c = Arc::new(Controller {
            client,
            pods,
            services,
            slices,
            queue: WorkQueue::new(),
            written: Mutex::default(),
        });
        let mut svc_changes = c.services.subscribe();
        let mut pod_changes = c.pods.subscribe();
        let c1 = c.clone();
        tasks.spawn(async move {
            while let Some(ch) = svc_changes.recv().await {
                if let Some(o) = ch.new.as_ref().or(ch.old.as_ref()) {
                    c1.queue.add(key_of(o));
                }
            }
        });
        let c2 = c.clone();
        tasks.spawn(async move {
            while let Some(ch) = pod_changes.recv().await {
                let Some(any) = ch.new.as_ref().or(ch.old.as_ref()) else {
                    continue;
                };
                let ns = object::meta_str(any, "namespace").unwrap_or_default().to_string();
                for svc in c2.services.list(Some(&ns)) {
                    let Some(sel) = selector(&svc) else { continue };
                    let hit = |p: &Option<Arc<Value>>| p.as_ref().is_some_and(|p| sel.matches_object(p));
                    if hit(&ch.old) || hit(&ch.new) {
                        c2.queue.add(key_of(&svc));
                    }
                }
            }
        });
        super::spawn_workers(tasks, c);
    }
}

fn selector(svc: &Value) -> Option<LabelSelector> {
    let sel = svc.pointer("/spec/selector")?;
    if sel.as_object().is_none_or(|m| m.is_empty()) {
        return None;
    }
    LabelSelector::from_map(sel).ok()
}

fn condition(pod: &Value, kind: &str) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| c.iter().any(|c| c["type"] == kind && c["status"] == "True"))
}

/// The pod's port for a service port's targetPort (a number, or a container port name).
fn resolve_port(pod: &Value, target: &Value) -> Option<i64> {
    if let Some(n) = target.as_i64() {
        return Some(n);
    }
    let name = target.as_str()?;
    if let Ok(n) = name.parse() {
        return Some(n);
    }
    pod.pointer("/spec/containers")?
        .as_array()?
        .iter()
        .flat_map(|c| c.get("ports").and_then(Value::as_array).into_iter().flatten())
        .find(|p| p.get("name").and_then(Value::as_str) == Some(name))
        .and_then(|p| p.get("containerPort").and_then(Value::as_i64))
}

/// One pod as an endpoint: its address, conditions and resolved ports.
struct Desired {
    ip: String,
    ready: bool,
    terminating: bool,
    ports: Vec<Value>,
    endpoint: Value,
    target: Value,
    node: Option<String>,
}

impl super::Reconcile for Controller {
    const NAME: &'static str = "endpoints";

    fn queue(&self) -> &WorkQueue {
        &self.queue
    }

    fn informers(&self) -> Vec<&Informer> {
        vec![&self.services, &self.pods, &self.slices]
    }

    fn reconcile<'a>(&'a self, key: &'a str) -> futures::future::BoxFuture<'a, Result<(), ApiError>> {
        Box::pin(Controller::reconcile(self, key))
    }
}

impl Controller {
    async fn reconcile(&self, key: &str) -> Result<(), ApiError> {
        let (ns, name) = key.split_once('/').unwrap_or(("default", key));
        let eps_r = LocalClient::resource("", "endpoints");
        let Some(svc) = self.services.get(key) else {
            // The Service is gone; its slices go with it (owner references), its Endpoints here.
            match self.client.delete(eps_r, ns, name).await {
                Ok(_) => {}
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
            for s in self.owned_slices(ns, name) {
                let _ = self
                    .client
                    .delete(
                        LocalClient::resource("discovery.k8s.io", "endpointslices"),
                        ns,
                        object::name(&s).unwrap_or_default(),
                    )
                    .await;
            }
            return Ok(());
        };
        let Some(sel) = selector(&svc) else { return Ok(()) };
        if self
            .written
            .lock()
            .get(key)
            .is_some_and(|rev| *rev > self.slices.revision())
        {
            self.queue.add_after(key.to_string(), Duration::from_millis(10));
            return Ok(());
        }
        let svc_ports: Vec<Value> = svc
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut desired = Vec::new();
        for pod in self.pods.list(Some(ns)) {
            if !sel.matches_object(&pod) {
                continue;
            }
            let Some(ip) = pod
                .pointer("/status/podIP")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            else {
                continue;
            };
            let phase = pod.pointer("/status/phase").and_then(Value::as_str).unwrap_or("");
            if phase == "Succeeded" || phase == "Failed" {
                continue;
            }
            let terminating = pod.pointer("/metadata/deletionTimestamp").is_some_and(|v| !v.is_null());
            let serving = condition(&pod, "Ready");
            let mut ports = Vec::new();
            for p in &svc_ports {
                let target = p.get("targetPort").or(p.get("port")).cloned().unwrap_or(Value::Null);
                let Some(port) = resolve_port(&pod, &target) else {
                    continue;
                };
                let mut e = json!({"port": port, "protocol": p.get("protocol").cloned().unwrap_or(json!("TCP"))});
                if let Some(n) = p.get("name") {
                    e["name"] = n.clone();
                }
                ports.push(e);
            }
            let target = json!({
                "kind": "Pod",
                "namespace": ns,
                "name": object::name(&pod).unwrap_or_default(),
                "uid": object::meta_str(&pod, "uid").unwrap_or_default(),
            });
            let node = pod
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .map(str::to_string);
            let mut endpoint = json!({
                "addresses": [ip],
                "conditions": {"ready": serving && !terminating, "serving": serving, "terminating": terminating},
                "targetRef": target.clone(),
            });
            if let Some(n) = &node {
                endpoint["nodeName"] = json!(n);
            }
            desired.push(Desired {
                ip: ip.to_string(),
                ready: serving && !terminating,
                terminating,
                ports,
                endpoint,
                target,
                node,
            });
        }
        desired.sort_by(|a, b| a.ip.cmp(&b.ip));
        self.write_endpoints(&svc, ns, name, &desired).await?;
        let rev = self.write_slices(&svc, ns, name, &desired).await?;
        if rev > 0 {
            self.written.lock().insert(key.to_string(), rev);
        }
        Ok(())
    }

    async fn write_endpoints(&self, svc: &Value, ns: &str, name: &str, desired: &[Desired]) -> Result<(), ApiError> {
        let r = LocalClient::resource("", "endpoints");
        // Subsets group endpoints by their resolved ports.
        // ports (as JSON) -> (ports, ready addresses, not-ready addresses)
        type Subset = (Vec<Value>, Vec<Value>, Vec<Value>);
        let mut groups: BTreeMap<String, Subset> = BTreeMap::new();
        for d in desired.iter().filter(|d| !d.terminating && !d.ports.is_empty()) {
            let g = groups
                .entry(serde_json::to_string(&d.ports).unwrap_or_default())
                .or_insert_with(|| (d.ports.clone(), Vec::new(), Vec::new()));
            let mut addr = json!({"ip": d.ip, "targetRef": d.target});
            if let Some(n) = &d.node {
                addr["nodeName"] = json!(n);
            }
            if d.ready {
                g.1.push(addr);
            } else {
                g.2.push(addr);
            }
        }
        let subsets: Vec<Value> = groups
            .into_values()
            .map(|(ports, ready, not_ready)| {
                let mut s = json!({"ports": ports});
                if !ready.is_empty() {
                    s["addresses"] = json!(ready);
                }
                if !not_ready.is_empty() {
                    s["notReadyAddresses"] = json!(not_ready);
                }
                s
            })
            .collect();
        let mut labels = svc.pointer("/metadata/labels").cloned().unwrap_or(json!({}));
        if svc.pointer("/spec/clusterIP").and_then(Value::as_str) == Some("None") {
            labels["service.kubernetes.io/headless"] = json!("");
        }
        let want = json!({"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": name, "namespace": ns, "labels": labels}, "subsets": subsets});
        match self.client.get(r, ns, name).await {
            Ok(current) => {
                if current.get("subsets").cloned().unwrap_or(json!([])) == want["subsets"]
                    && current.pointer("/metadata/labels") == want.pointer("/metadata/labels")
                {
                    return Ok(());
                }
                let mut next = current.clone();
                next["subsets"] = want["subsets"].clone();
                next["metadata"]["labels"] = want["metadata"]["labels"].clone();
                self.client.update(r, next).await.map(|_| ())
            }
            Err(e) if e.code == 404 => self.client.create(r, ns, want).await.map(|_| ()),
            Err(e) => Err(e),
        }
    }

    fn owned_slices(&self, ns: &str, svc: &str) -> Vec<Arc<Value>> {
        self.slices
            .list(Some(ns))
            .into_iter()
            .filter(|s| {
                s.pointer(&format!("/metadata/labels/{}", SERVICE_NAME.replace('/', "~1")))
                    .and_then(Value::as_str)
                    == Some(svc)
            })
            .filter(|s| {
                s.pointer("/metadata/labels/endpointslice.kubernetes.io~1managed-by")
                    .and_then(Value::as_str)
                    == Some(MANAGED_BY)
            })
            .collect()
    }

    /// Writes the slices that changed; returns the revision of the last write (0: none).
    async fn write_slices(&self, svc: &Value, ns: &str, name: &str, desired: &[Desired]) -> Result<u64, ApiError> {
        let r = LocalClient::resource("discovery.k8s.io", "endpointslices");
        let by_ip: BTreeMap<&str, &Desired> = desired.iter().map(|d| (d.ip.as_str(), d)).collect();
        let mut placed: HashSet<&str> = HashSet::new();
        let mut slices: Vec<(Value, bool)> = Vec::new();
        // Keep every endpoint where it is; refresh its conditions; drop the ones gone.
        for s in self.owned_slices(ns, name) {
            let ports = s.get("ports").cloned().unwrap_or(json!([]));
            let mut kept = Vec::new();
            for e in s.get("endpoints").and_then(Value::as_array).into_iter().flatten() {
                let ip = e.pointer("/addresses/0").and_then(Value::as_str).unwrap_or("");
                if let Some(d) = by_ip.get(ip) {
                    if json!(d.ports) == ports && placed.insert(d.ip.as_str()) {
                        kept.push(d.endpoint.clone());
                    }
                }
            }
            let changed = s.get("endpoints").cloned().unwrap_or(json!([])) != json!(kept);
            let mut next = (*s).clone();
            next["endpoints"] = json!(kept);
            slices.push((next, changed));
        }
        // New endpoints fill slices with the same ports that have room, then new slices.
        let unplaced: Vec<&Desired> = desired.iter().filter(|d| !placed.contains(d.ip.as_str())).collect();
        for d in unplaced {
            let ports = json!(d.ports);
            let slot = slices.iter_mut().find(|(s, _)| {
                s.get("ports") == Some(&ports) && s["endpoints"].as_array().map_or(0, Vec::len) < MAX_PER_SLICE
            });
            match slot {
                Some((s, changed)) => {
                    s["endpoints"]
                        .as_array_mut()
                        .expect("endpoints is an array")
                        .push(d.endpoint.clone());
                    *changed = true;
                }
                None => {
                    let owner = json!({"apiVersion": "v1", "kind": "Service", "name": name,
                        "uid": object::meta_str(svc, "uid").unwrap_or_default(), "controller": true, "blockOwnerDeletion": true});
                    slices.push((
                        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                            "metadata": {"generateName": format!("{name}-"), "namespace": ns,
                                "labels": {SERVICE_NAME: name, "endpointslice.kubernetes.io/managed-by": MANAGED_BY},
                                "ownerReferences": [owner]},
                            "addressType": "IPv4", "ports": ports, "endpoints": [d.endpoint.clone()]}),
                        true,
                    ));
                }
            }
        }
        // A Service with no endpoints keeps one empty slice, as Kubernetes does.
        if slices.is_empty() {
            let owner = json!({"apiVersion": "v1", "kind": "Service", "name": name,
                "uid": object::meta_str(svc, "uid").unwrap_or_default(), "controller": true, "blockOwnerDeletion": true});
            slices.push((
                json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                    "metadata": {"generateName": format!("{name}-"), "namespace": ns,
                        "labels": {SERVICE_NAME: name, "endpointslice.kubernetes.io/managed-by": MANAGED_BY},
                        "ownerReferences": [owner]},
                    "addressType": "IPv4", "ports": [], "endpoints": []}),
                true,
            ));
        }
        // Empty slices go once another slice holds the endpoints (the placeholder included).
        let nonempty = slices
            .iter()
            .filter(|(s, _)| s["endpoints"].as_array().is_some_and(|e| !e.is_empty()))
            .count();
        let empty_allowed = nonempty == 0 && slices.len() == 1;
        for (s, changed) in slices.iter_mut() {
            if !empty_allowed && s["endpoints"].as_array().is_none_or(Vec::is_empty) {
                *changed = true;
            }
        }
        let mut last = 0;
        let rv = |v: &Value| {
            object::meta_str(v, "resourceVersion")
                .and_then(|r| r.parse::<u64>().ok())
                .unwrap_or(0)
        };
        for (s, changed) in slices {
            if !changed {
                continue;
            }
            let exists = object::meta_str(&s, "uid").is_some();
            let empty = s["endpoints"].as_array().is_none_or(Vec::is_empty);
            match (exists, empty && !empty_allowed) {
                (true, true) => {
                    if let Ok(v) = self.client.delete(r, ns, object::name(&s).unwrap_or_default()).await {
                        last = last.max(rv(&v));
                    }
                }
                (true, false) => last = last.max(rv(&self.client.update(r, s).await?)),
                (false, _) => last = last.max(rv(&self.client.create(r, ns, s).await?)),
            }
        }
        Ok(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_target_ports_resolve_against_container_ports() {
        let pod = json!({"spec": {"containers": [{"ports": [{"name": "http", "containerPort": 8080}]}, {"ports": [{"name": "metrics", "containerPort": 9090}]}]}});
        assert_eq!(resolve_port(&pod, &json!("metrics")), Some(9090));
        assert_eq!(resolve_port(&pod, &json!(80)), Some(80));
        assert_eq!(resolve_port(&pod, &json!("missing")), None);
    }
}
