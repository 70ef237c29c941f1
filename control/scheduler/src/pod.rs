//! A typed view of a Pod with what scheduling needs (requests, ports, node affinity,
//! tolerations, priority), read once from the stored JSON, which is kept for write-back.

use std::sync::Arc;

use gantry_api::selector::{Operator, Requirement};
use gantry_api::validation::parse_quantity;
use gantry_store::Revision;
use serde_json::{Map, Value};

use crate::plugins::inter_pod_affinity::PodAffinityInfo;
use crate::snapshot::{Taint, TaintEffect};

/// kube-scheduler's stand-in for a container with no CPU request, for scoring only.
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// kube-scheduler's stand-in for a container with no memory request (200 MiB), for scoring only.
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// CPU in millicores and memory in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: i64,
    pub memory: i64,
}

impl Resources {
    fn add(&mut self, o: Resources) {
        self.milli_cpu += o.milli_cpu;
        self.memory += o.memory;
    }

    fn max(&mut self, o: Resources) {
        self.milli_cpu = self.milli_cpu.max(o.milli_cpu);
        self.memory = self.memory.max(o.memory);
    }
}

/// One `hostPort` a container asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPort {
    /// `0.0.0.0` when unset: every address.
    pub ip: String,
    pub protocol: String,
    pub port: u16,
}

impl HostPort {
    /// Kubernetes' `HostPortInfo.CheckConflict`: the same protocol and port, and the same
    /// address or either side on every address.
    pub fn conflicts(&self, other: &HostPort) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && (self.ip == other.ip || self.ip == "0.0.0.0" || other.ip == "0.0.0.0")
    }
}

/// A pod toleration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Toleration {
    /// Empty with `Exists` tolerates every key.
    pub key: String,
    /// `Equal` (the default) or `Exists`.
    pub operator: String,
    pub value: String,
    /// `None` tolerates every effect.
    pub effect: Option<TaintEffect>,
}

impl Toleration {
    /// Kubernetes' `Toleration.ToleratesTaint`.
    pub fn tolerates(&self, taint: &Taint) -> bool {
        if self.effect.is_some_and(|e| e != taint.effect) {
            return false;
        }
        if !self.key.is_empty() && self.key != taint.key {
            return false;
        }
        match self.operator.as_str() {
            "" | "Equal" => self.value == taint.value,
            "Exists" => true,
            _ => false,
        }
    }
}

/// One `nodeSelectorTerm`: its expressions and fields all hold.
#[derive(Clone, Debug, Default)]
pub struct NodeSelectorTerm {
    pub expressions: Vec<Requirement>,
    /// `matchFields` on `metadata.name`: (In?, names).
    pub name_fields: Vec<(bool, Vec<String>)>,
    /// The term had an expression Kubernetes would reject; such a term matches no node.
    pub invalid: bool,
}

impl NodeSelectorTerm {
    /// Whether a node matches. A term with no requirements matches nothing, as in Kubernetes.
    pub fn matches(&self, node_name: &str, labels: &Map<String, Value>) -> bool {
        if self.invalid || (self.expressions.is_empty() && self.name_fields.is_empty()) {
            return false;
        }
        self.expressions.iter().all(|r| r.matches(labels))
            && self
                .name_fields
                .iter()
                .all(|(is_in, names)| names.iter().any(|n| n == node_name) == *is_in)
    }
}

/// `spec.nodeSelector` and `spec.affinity.nodeAffinity`.
#[derive(Clone, Debug, Default)]
pub struct NodeAffinity {
    pub node_selector: Vec<(String, String)>,
    /// `requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms` (any one holds).
    pub required: Option<Vec<NodeSelectorTerm>>,
    /// `preferredDuringSchedulingIgnoredDuringExecution`: (weight, term).
    pub preferred: Vec<(i64, NodeSelectorTerm)>,
}

/// A pod as the scheduler sees it.
#[derive(Clone, Debug)]
pub struct PodInfo {
    /// The store key, `/registry/core/pods/{namespace}/{name}`.
    pub key: String,
    pub namespace: String,
    pub name: String,
    pub mod_revision: Revision,
    /// `spec.priority`; higher is scheduled first.
    pub priority: i32,
    /// What the pod asks for (sum of containers, max with each init container, plus overhead).
    pub requests: Resources,
    /// The same with kube-scheduler's defaults for containers that request nothing (scoring).
    pub non_zero_requests: Resources,
    pub host_ports: Vec<HostPort>,
    pub node_name: Option<String>,
    pub scheduler_name: Option<String>,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    /// `status.phase` is Succeeded or Failed: its resources are free again.
    pub terminal: bool,
    pub affinity: NodeAffinity,
    pub tolerations: Vec<Toleration>,
    /// Labels and inter-pod (anti-)affinity terms, shared with the cache once placed.
    pub inter_pod: Arc<PodAffinityInfo>,
    /// The stored object, for writing the binding back.
    pub object: Value,
}

impl PodInfo {
    /// Reads a pod from its stored JSON.
    pub fn from_json(key: &str, mod_revision: Revision, bytes: &[u8]) -> Result<PodInfo, String> {
        let object: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
        PodInfo::from_value(key, mod_revision, object)
    }

    pub fn from_value(key: &str, mod_revision: Revision, object: Value) -> Result<PodInfo, String> {
        let meta = &object["metadata"];
        let spec = &object["spec"];
        let (requests, non_zero_requests) = pod_requests(spec)?;
        let namespace = meta["namespace"].as_str().unwrap_or("default").to_string();
        let inter_pod = Arc::new(PodAffinityInfo::from_pod(&namespace, &object));
        let info = PodInfo {
            key: key.to_string(),
            namespace,
            name: meta["name"].as_str().unwrap_or_default().to_string(),
            mod_revision,
            priority: spec["priority"]
                .as_i64()
                .map_or(0, |p| p.clamp(i32::MIN.into(), i32::MAX.into()) as i32),
            requests,
            non_zero_requests,
            host_ports: host_ports(spec),
            node_name: spec["nodeName"].as_str().filter(|s| !s.is_empty()).map(String::from),
            scheduler_name: spec["schedulerName"].as_str().map(String::from),
            deleting: !meta["deletionTimestamp"].is_null(),
            terminal: matches!(object["status"]["phase"].as_str(), Some("Succeeded" | "Failed")),
            affinity: node_affinity(spec),
            tolerations: tolerations(spec),
            inter_pod,
            object,
        };
        Ok(info)
    }

    /// What the pod takes from a node: resources, one pod slot, host ports.
    pub fn usage(&self) -> PodUsage {
        PodUsage {
            requests: self.requests,
            non_zero: self.non_zero_requests,
            ports: self.host_ports.clone(),
        }
    }

    /// Whether two versions of a pod differ in what scheduling reads (spec or labels), so an
    /// update must re-decide it; a status-only change (our own condition) must not.
    pub fn scheduling_changed(&self, newer: &PodInfo) -> bool {
        self.object["spec"] != newer.object["spec"]
            || self.object["metadata"]["labels"] != newer.object["metadata"]["labels"]
    }
}

/// What a placed pod takes from its node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodUsage {
    pub requests: Resources,
    pub non_zero: Resources,
    pub ports: Vec<HostPort>,
}

/// A quantity in millis (CPU in millicores); a malformed one is an error naming it.
fn quantity_millis(v: &Value) -> Result<i64, String> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Err(format!("quantity {v} is not a string")),
    };
    let q = parse_quantity(&text).map_err(|e| e.to_string())?;
    i64::try_from(q).map_err(|_| format!("quantity {text:?} is too large"))
}

/// One container's requests, and the same with kube-scheduler's non-zero defaults.
fn container_requests(c: &Value) -> Result<(Resources, Resources), String> {
    let req = &c["resources"]["requests"];
    let cpu = req.get("cpu").map(quantity_millis).transpose()?;
    // Memory is in bytes: millis rounded up, as Quantity.Value() does.
    let mem = req
        .get("memory")
        .map(quantity_millis)
        .transpose()?
        .map(|m| (m + 999).div_euclid(1000));
    let r = Resources {
        milli_cpu: cpu.unwrap_or(0),
        memory: mem.unwrap_or(0),
    };
    // Only a missing request gets the default; an explicit zero stays zero.
    let nz = Resources {
        milli_cpu: cpu.unwrap_or(DEFAULT_MILLI_CPU_REQUEST),
        memory: mem.unwrap_or(DEFAULT_MEMORY_REQUEST),
    };
    Ok((r, nz))
}

/// kube's `PodRequests`: the sum of the app containers and the restartable init containers
/// (sidecars), at least each regular init container plus the sidecars started before it; then
/// the pod overhead.
fn pod_requests(spec: &Value) -> Result<(Resources, Resources), String> {
    let mut sum = (Resources::default(), Resources::default());
    for c in spec["containers"].as_array().into_iter().flatten() {
        let (r, nz) = container_requests(c)?;
        sum.0.add(r);
        sum.1.add(nz);
    }
    let mut sidecars = (Resources::default(), Resources::default());
    let mut init_peak = (Resources::default(), Resources::default());
    for c in spec["initContainers"].as_array().into_iter().flatten() {
        let (r, nz) = container_requests(c)?;
        if c["restartPolicy"].as_str() == Some("Always") {
            sidecars.0.add(r);
            sidecars.1.add(nz);
            init_peak.0.max(sidecars.0);
            init_peak.1.max(sidecars.1);
        } else {
            let (mut a, mut b) = sidecars;
            a.add(r);
            b.add(nz);
            init_peak.0.max(a);
            init_peak.1.max(b);
        }
    }
    sum.0.add(sidecars.0);
    sum.1.add(sidecars.1);
    sum.0.max(init_peak.0);
    sum.1.max(init_peak.1);
    if let Some(overhead) = spec.get("overhead").filter(|o| o.is_object()) {
        let (o, _) = container_requests(&serde_json::json!({ "resources": { "requests": overhead } }))?;
        sum.0.add(o);
        sum.1.add(o);
    }
    Ok(sum)
}

fn host_ports(spec: &Value) -> Vec<HostPort> {
    let mut out = Vec::new();
    for c in spec["containers"].as_array().into_iter().flatten() {
        for p in c["ports"].as_array().into_iter().flatten() {
            let Some(port) = p["hostPort"].as_u64().filter(|&p| p > 0 && p <= 65535) else {
                continue;
            };
            out.push(HostPort {
                ip: p["hostIP"]
                    .as_str()
                    .filter(|s| !s.is_empty())
                    .unwrap_or("0.0.0.0")
                    .to_string(),
                protocol: p["protocol"]
                    .as_str()
                    .filter(|s| !s.is_empty())
                    .unwrap_or("TCP")
                    .to_string(),
                port: port as u16,
            });
        }
    }
    out
}

fn tolerations(spec: &Value) -> Vec<Toleration> {
    spec["tolerations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| Toleration {
            key: t["key"].as_str().unwrap_or_default().to_string(),
            operator: t["operator"].as_str().unwrap_or_default().to_string(),
            value: t["value"].as_str().unwrap_or_default().to_string(),
            effect: t["effect"].as_str().and_then(TaintEffect::parse),
        })
        .collect()
}

fn node_affinity(spec: &Value) -> NodeAffinity {
    let node_selector = spec["nodeSelector"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    let na = &spec["affinity"]["nodeAffinity"];
    let required = na["requiredDuringSchedulingIgnoredDuringExecution"]
        .as_object()
        .map(|sel| sel_terms(&sel.get("nodeSelectorTerms").cloned().unwrap_or(Value::Null)));
    let preferred = na["preferredDuringSchedulingIgnoredDuringExecution"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let w = p["weight"].as_i64().unwrap_or(0);
            (w != 0).then(|| (w, selector_term(&p["preference"])))
        })
        .collect();
    NodeAffinity {
        node_selector,
        required,
        preferred,
    }
}

fn sel_terms(v: &Value) -> Vec<NodeSelectorTerm> {
    v.as_array().into_iter().flatten().map(selector_term).collect()
}

/// Parses one `nodeSelectorTerm`; an expression Kubernetes would reject marks it invalid.
pub fn selector_term(t: &Value) -> NodeSelectorTerm {
    let mut term = NodeSelectorTerm::default();
    for e in t["matchExpressions"].as_array().into_iter().flatten() {
        let op = match e["operator"].as_str().unwrap_or_default() {
            "In" => Operator::In,
            "NotIn" => Operator::NotIn,
            "Exists" => Operator::Exists,
            "DoesNotExist" => Operator::DoesNotExist,
            "Gt" => Operator::GreaterThan,
            "Lt" => Operator::LessThan,
            _ => {
                term.invalid = true;
                continue;
            }
        };
        let values = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| v.as_str().unwrap_or_default().to_string())
            .collect();
        match Requirement::new(e["key"].as_str().unwrap_or_default(), op, values) {
            Ok(r) => term.expressions.push(r),
            Err(_) => term.invalid = true,
        }
    }
    for f in t["matchFields"].as_array().into_iter().flatten() {
        let names: Vec<String> = f["values"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| v.as_str().unwrap_or_default().to_string())
            .collect();
        match (f["key"].as_str(), f["operator"].as_str()) {
            (Some("metadata.name"), Some("In")) if names.len() == 1 => term.name_fields.push((true, names)),
            (Some("metadata.name"), Some("NotIn")) if names.len() == 1 => term.name_fields.push((false, names)),
            _ => term.invalid = true,
        }
    }
    term
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(spec: Value) -> PodInfo {
        PodInfo::from_value(
            "/registry/core/pods/default/p",
            1,
            json!({"metadata": {"name": "p"}, "spec": spec}),
        )
        .expect("pod")
    }

    #[test]
    fn requests_sum_containers_and_take_the_largest_init_container() {
        // kube docs: init containers run one at a time, so the effective request is the max of
        // the largest init container and the sum of the app containers.
        let p = pod(json!({
            "initContainers": [{"resources": {"requests": {"cpu": "2", "memory": "1Gi"}}}],
            "containers": [
                {"resources": {"requests": {"cpu": "500m", "memory": "256Mi"}}},
                {"resources": {"requests": {"cpu": "250m", "memory": "1.5Gi"}}},
            ]
        }));
        assert_eq!(p.requests.milli_cpu, 2000);
        assert_eq!(p.requests.memory, 256 * 1024 * 1024 + 1536 * 1024 * 1024);
    }

    #[test]
    fn sidecar_init_containers_add_to_the_pod_and_overhead_is_added() {
        let p = pod(json!({
            "initContainers": [
                {"restartPolicy": "Always", "resources": {"requests": {"cpu": "100m"}}},
                {"resources": {"requests": {"cpu": "1"}}},
            ],
            "containers": [{"resources": {"requests": {"cpu": "200m"}}}],
            "overhead": {"cpu": "50m"}
        }));
        // max(200 + 100, 1000 + 100) + 50
        assert_eq!(p.requests.milli_cpu, 1150);
    }

    #[test]
    fn missing_requests_get_non_zero_defaults_for_scoring_only() {
        let p = pod(json!({"containers": [{}, {"resources": {"requests": {"cpu": "0"}}}]}));
        assert_eq!(p.requests, Resources::default());
        assert_eq!(p.non_zero_requests.milli_cpu, DEFAULT_MILLI_CPU_REQUEST);
        assert_eq!(p.non_zero_requests.memory, 2 * DEFAULT_MEMORY_REQUEST);
    }

    #[test]
    fn malformed_quantity_is_an_error_naming_it() {
        let err = PodInfo::from_value(
            "k",
            1,
            json!({"spec": {"containers": [{"resources": {"requests": {"cpu": "lots"}}}]}}),
        )
        .expect_err("malformed");
        assert!(err.contains("lots"), "{err}");
    }

    #[test]
    fn host_ports_default_to_every_address_and_tcp() {
        let p =
            pod(json!({"containers": [{"ports": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 81}]}]}));
        assert_eq!(
            p.host_ports,
            vec![HostPort {
                ip: "0.0.0.0".into(),
                protocol: "TCP".into(),
                port: 8080
            }]
        );
        let a = HostPort {
            ip: "10.0.0.1".into(),
            protocol: "TCP".into(),
            port: 8080,
        };
        let b = HostPort {
            ip: "10.0.0.2".into(),
            ..a.clone()
        };
        assert!(p.host_ports[0].conflicts(&a));
        assert!(!a.conflicts(&b));
        assert!(!a.conflicts(&HostPort {
            protocol: "UDP".into(),
            ..a.clone()
        }));
    }

    #[test]
    fn tolerations_match_as_kubernetes_documents() {
        let taint = Taint {
            key: "key1".into(),
            value: "value1".into(),
            effect: TaintEffect::NoSchedule,
        };
        let equal = Toleration {
            key: "key1".into(),
            operator: "Equal".into(),
            value: "value1".into(),
            effect: Some(TaintEffect::NoSchedule),
        };
        assert!(equal.tolerates(&taint));
        let exists = Toleration {
            operator: "Exists".into(),
            value: String::new(),
            ..equal.clone()
        };
        assert!(exists.tolerates(&taint));
        // An empty key with Exists tolerates everything.
        let everything = Toleration {
            key: String::new(),
            operator: "Exists".into(),
            value: String::new(),
            effect: None,
        };
        assert!(everything.tolerates(&taint));
        let other_effect = Toleration {
            effect: Some(TaintEffect::NoExecute),
            ..equal.clone()
        };
        assert!(!other_effect.tolerates(&taint));
        let other_value = Toleration {
            value: "value2".into(),
            ..equal
        };
        assert!(!other_value.tolerates(&taint));
    }

    #[test]
    fn empty_or_invalid_node_selector_terms_match_nothing() {
        let labels = Map::new();
        assert!(!selector_term(&json!({})).matches("n", &labels));
        assert!(
            !selector_term(&json!({"matchExpressions": [{"key": "a", "operator": "Bogus"}]})).matches("n", &labels)
        );
        let by_name =
            selector_term(&json!({"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n"]}]}));
        assert!(by_name.matches("n", &labels));
        assert!(!by_name.matches("m", &labels));
    }
}
