//! Server-side printing: `meta.k8s.io/v1` Table responses with the columns kubectl users
//! know (`kubectl get` asks for them with `Accept: …;as=Table`). Priority-1 columns are the
//! extra ones `-o wide` shows.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::registry::Resource;

struct Column {
    name: &'static str,
    ty: &'static str,
    priority: u8,
    description: &'static str,
}

const fn col(name: &'static str, priority: u8, description: &'static str) -> Column {
    Column {
        name,
        ty: "string",
        priority,
        description,
    }
}

fn columns(kind: &str) -> Vec<Column> {
    let name = Column {
        name: "Name",
        ty: "string",
        priority: 0,
        description: "Name must be unique within a namespace.",
    };
    let age = col(
        "Age",
        0,
        "CreationTimestamp is a timestamp representing the server time when this object was created.",
    );
    let mut c = vec![name];
    match kind {
        "Pod" => c.extend([
            col("Ready", 0, "The aggregate readiness state of this pod for accepting traffic."),
            col("Status", 0, "The aggregate status of the containers in this pod."),
            col("Restarts", 0, "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
            age,
            col("IP", 1, "IP address allocated to the pod."),
            col("Node", 1, "Name of the Node this pod is assigned to."),
            col("Nominated Node", 1, "Name of the node where this pod is nominated to run."),
            col("Readiness Gates", 1, "Readiness gates of the pod."),
        ]),
        "Deployment" => c.extend([
            col("Ready", 0, "Number of the pod with ready state"),
            col("Up-to-date", 0, "Total number of non-terminated pods targeted by this deployment that have the desired template spec."),
            col("Available", 0, "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment."),
            age,
            col("Containers", 1, "Names of each container in the template."),
            col("Images", 1, "Images referenced by each container in the template."),
            col("Selector", 1, "Label selector for pods."),
        ]),
        "ReplicaSet" | "ReplicationController" => c.extend([
            col("Desired", 0, "Number of desired pods."),
            col("Current", 0, "Number of actual replicas."),
            col("Ready", 0, "The number of ready replicas for this replica set."),
            age,
            col("Containers", 1, "Names of each container in the template."),
            col("Images", 1, "Images referenced by each container in the template."),
            col("Selector", 1, "Label selector for pods."),
        ]),
        "Service" => c.extend([
            col("Type", 0, "Type of the service."),
            col("Cluster-IP", 0, "The cluster IP of the service."),
            col("External-IP", 0, "External IPs of the service."),
            col("Port(s)", 0, "The ports of the service."),
            age,
            col("Selector", 1, "Route service traffic to pods with label keys and values matching this selector."),
        ]),
        "Node" => c.extend([
            col("Status", 0, "The status of the node"),
            col("Roles", 0, "The roles of the node"),
            age,
            col("Version", 0, "Kubelet Version reported by the node."),
            col("Internal-IP", 1, "List of internal IPs."),
            col("External-IP", 1, "List of external IPs."),
            col("OS-Image", 1, "OS image reported by the node."),
            col("Kernel-Version", 1, "Kernel version reported by the node."),
            col("Container-Runtime", 1, "Container runtime and version reported by the node."),
        ]),
        "Namespace" => c.extend([col("Status", 0, "The status of the namespace"), age]),
        "Endpoints" => c.extend([col("Endpoints", 0, "Endpoints of the service"), age]),
        "ConfigMap" => c.extend([col("Data", 0, "Number of data entries."), age]),
        "Secret" => c.extend([col("Type", 0, "The type of the secret"), col("Data", 0, "Number of data entries."), age]),
        "Job" => c.extend([
            col("Status", 0, "Status of the job."),
            col("Completions", 0, "The completion status of the job"),
            col("Duration", 0, "Time required to complete the job."),
            age,
        ]),
        "Lease" => c.extend([col("Holder", 0, "The identity of the holder"), age]),
        "EndpointSlice" => c.extend([
            col("AddressType", 0, "The type of addresses"),
            col("Ports", 0, "The ports of the endpoint slice"),
            col("Endpoints", 0, "The addresses of the endpoint slice"),
            age,
        ]),
        "Event" => {
            c.clear();
            c.extend([
                col("Last Seen", 0, "Time since the event was last seen."),
                col("Type", 0, "Type of this event."),
                col("Reason", 0, "Short, machine understandable string."),
                col("Object", 0, "The object this event is about."),
                col("Message", 0, "A human-readable description of the status of this operation."),
            ]);
        }
        _ => c.push(age),
    }
    c
}

/// A Table of `items` (objects of kind `r`). `include_object` is "None", "Object" or
/// (default) "Metadata" — what each row carries besides its cells.
pub fn table(
    r: &Resource,
    items: &[Value],
    resource_version: &str,
    continue_token: Option<&str>,
    include_object: &str,
) -> Value {
    let cols = columns(r.kind);
    let now = Utc::now();
    let rows: Vec<Value> = items.iter().map(|o| row(r, o, &now, include_object)).collect();
    let mut metadata = json!({"resourceVersion": resource_version});
    if let Some(c) = continue_token {
        metadata["continue"] = json!(c);
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": cols.iter().map(|c| json!({
            "name": c.name,
            "type": c.ty,
            "format": if c.name == "Name" { "name" } else { "" },
            "description": c.description,
            "priority": c.priority,
        })).collect::<Vec<_>>(),
        "rows": rows,
    })
}

fn row(r: &Resource, o: &Value, now: &DateTime<Utc>, include_object: &str) -> Value {
    let object = match include_object {
        "None" => Value::Null,
        "Object" => o.clone(),
        _ => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": o.get("metadata").cloned().unwrap_or(json!({})),
        }),
    };
    json!({"cells": cells(r.kind, o, now), "object": object})
}

fn s<'a>(o: &'a Value, ptr: &str) -> &'a str {
    o.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

fn n(o: &Value, ptr: &str) -> i64 {
    o.pointer(ptr).and_then(Value::as_i64).unwrap_or(0)
}

fn none_if_empty(v: String) -> String {
    if v.is_empty() {
        "<none>".into()
    } else {
        v
    }
}

fn age(o: &Value, now: &DateTime<Utc>) -> String {
    since(s(o, "/metadata/creationTimestamp"), now)
}

fn since(ts: &str, now: &DateTime<Utc>) -> String {
    match DateTime::parse_from_rfc3339(ts) {
        Ok(t) => human_duration((*now - t.with_timezone(&Utc)).num_seconds().max(0)),
        Err(_) => "<unknown>".into(),
    }
}

/// kubectl's short durations: `45s`, `3m20s`, `95m`, `5h12m`, `30h`, `3d4h`, `200d`, `2y3d`.
pub fn human_duration(secs: i64) -> String {
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86_400);
    if secs < 120 {
        format!("{secs}s")
    } else if m < 10 {
        let rest = secs % 60;
        if rest == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{rest}s")
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        let rest = m % 60;
        if rest == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{rest}m")
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        let rest = h % 24;
        if rest == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{rest}h")
        }
    } else if d < 365 * 2 {
        format!("{d}d")
    } else {
        let (y, rest) = (d / 365, d % 365);
        if y < 8 && rest != 0 {
            format!("{y}y{rest}d")
        } else {
            format!("{y}y")
        }
    }
}

fn template_columns(o: &Value) -> (String, String) {
    let containers = o.pointer("/spec/template/spec/containers").and_then(Value::as_array);
    let names: Vec<&str> = containers.into_iter().flatten().map(|c| s(c, "/name")).collect();
    let images: Vec<&str> = containers.into_iter().flatten().map(|c| s(c, "/image")).collect();
    (names.join(","), images.join(","))
}

fn selector_string(sel: Option<&Value>) -> String {
    let Some(sel) = sel else { return "<none>".into() };
    let labels = sel.get("matchLabels").unwrap_or(sel);
    let mut parts: Vec<String> = labels
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| *k != "matchExpressions")
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    for e in sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let key = s(e, "/key");
        parts.push(match s(e, "/operator") {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            other => format!("{key} {other}"),
        });
    }
    none_if_empty(parts.join(","))
}

fn cells(kind: &str, o: &Value, now: &DateTime<Utc>) -> Vec<Value> {
    let name = json!(s(o, "/metadata/name"));
    match kind {
        "Pod" => {
            let statuses = o.pointer("/status/containerStatuses").and_then(Value::as_array);
            let total = o
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let ready = statuses
                .into_iter()
                .flatten()
                .filter(|c| c.get("ready") == Some(&json!(true)))
                .count();
            let restarts: i64 = statuses.into_iter().flatten().map(|c| n(c, "/restartCount")).sum();
            let ip = s(o, "/status/podIP");
            let node = s(o, "/spec/nodeName");
            vec![
                name,
                json!(format!("{ready}/{total}")),
                json!(pod_status(o)),
                json!(restarts),
                json!(age(o, now)),
                json!(if ip.is_empty() { "<none>" } else { ip }),
                json!(if node.is_empty() { "<none>" } else { node }),
                json!("<none>"),
                json!("<none>"),
            ]
        }
        "Deployment" => {
            let (c, i) = template_columns(o);
            vec![
                name,
                json!(format!("{}/{}", n(o, "/status/readyReplicas"), n(o, "/spec/replicas"))),
                json!(n(o, "/status/updatedReplicas")),
                json!(n(o, "/status/availableReplicas")),
                json!(age(o, now)),
                json!(c),
                json!(i),
                json!(selector_string(o.pointer("/spec/selector"))),
            ]
        }
        "ReplicaSet" | "ReplicationController" => {
            let (c, i) = template_columns(o);
            vec![
                name,
                json!(n(o, "/spec/replicas")),
                json!(n(o, "/status/replicas")),
                json!(n(o, "/status/readyReplicas")),
                json!(age(o, now)),
                json!(c),
                json!(i),
                json!(selector_string(o.pointer("/spec/selector"))),
            ]
        }
        "Service" => {
            let ports: Vec<String> = o
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|p| {
                    let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
                    match p.get("nodePort").and_then(Value::as_i64) {
                        Some(np) => format!("{}:{np}/{proto}", n(p, "/port")),
                        None => format!("{}/{proto}", n(p, "/port")),
                    }
                })
                .collect();
            let external: Vec<&str> = o
                .pointer("/spec/externalIPs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let cluster_ip = s(o, "/spec/clusterIP");
            vec![
                name,
                json!(s(o, "/spec/type")),
                json!(if cluster_ip.is_empty() { "<none>" } else { cluster_ip }),
                json!(none_if_empty(external.join(","))),
                json!(none_if_empty(ports.join(","))),
                json!(age(o, now)),
                json!(selector_string(o.pointer("/spec/selector"))),
            ]
        }
        "Node" => {
            let conditions = o.pointer("/status/conditions").and_then(Value::as_array);
            let ready = conditions
                .into_iter()
                .flatten()
                .find(|c| s(c, "/type") == "Ready")
                .map(|c| if s(c, "/status") == "True" { "Ready" } else { "NotReady" })
                .unwrap_or("Unknown");
            let mut status = ready.to_string();
            if o.pointer("/spec/unschedulable") == Some(&json!(true)) {
                status.push_str(",SchedulingDisabled");
            }
            let roles: Vec<&str> = o
                .pointer("/metadata/labels")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .filter_map(|(k, _)| k.strip_prefix("node-role.kubernetes.io/"))
                .collect();
            let addr = |t: &str| {
                o.pointer("/status/addresses")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .find(|a| s(a, "/type") == t)
                    .map(|a| s(a, "/address").to_string())
                    .unwrap_or_else(|| "<none>".into())
            };
            vec![
                name,
                json!(status),
                json!(none_if_empty(roles.join(","))),
                json!(age(o, now)),
                json!(s(o, "/status/nodeInfo/kubeletVersion")),
                json!(addr("InternalIP")),
                json!(addr("ExternalIP")),
                json!(s(o, "/status/nodeInfo/osImage")),
                json!(s(o, "/status/nodeInfo/kernelVersion")),
                json!(s(o, "/status/nodeInfo/containerRuntimeVersion")),
            ]
        }
        "Namespace" => vec![name, json!(s(o, "/status/phase")), json!(age(o, now))],
        "Endpoints" => {
            let mut eps = Vec::new();
            for subset in o.get("subsets").and_then(Value::as_array).into_iter().flatten() {
                for a in subset.get("addresses").and_then(Value::as_array).into_iter().flatten() {
                    for p in subset.get("ports").and_then(Value::as_array).into_iter().flatten() {
                        eps.push(format!("{}:{}", s(a, "/ip"), n(p, "/port")));
                    }
                }
            }
            let shown = if eps.len() > 3 {
                format!("{} + {} more...", eps[..3].join(","), eps.len() - 3)
            } else {
                eps.join(",")
            };
            vec![name, json!(none_if_empty(shown)), json!(age(o, now))]
        }
        "ConfigMap" => {
            let count = o.get("data").and_then(Value::as_object).map_or(0, |m| m.len())
                + o.get("binaryData").and_then(Value::as_object).map_or(0, |m| m.len());
            vec![name, json!(count), json!(age(o, now))]
        }
        "Secret" => {
            let count = o.get("data").and_then(Value::as_object).map_or(0, |m| m.len());
            vec![name, json!(s(o, "/type")), json!(count), json!(age(o, now))]
        }
        "Job" => {
            let succeeded = n(o, "/status/succeeded");
            let completions = o.pointer("/spec/completions").and_then(Value::as_i64);
            let conds = o.pointer("/status/conditions").and_then(Value::as_array);
            let has = |t: &str| {
                conds
                    .into_iter()
                    .flatten()
                    .any(|c| s(c, "/type") == t && s(c, "/status") == "True")
            };
            let status = if has("Complete") {
                "Complete"
            } else if has("Failed") {
                "Failed"
            } else if o.pointer("/spec/suspend") == Some(&json!(true)) {
                "Suspended"
            } else {
                "Running"
            };
            let duration = match (
                o.pointer("/status/startTime").and_then(Value::as_str),
                o.pointer("/status/completionTime").and_then(Value::as_str),
            ) {
                (Some(start), Some(end)) => {
                    match (DateTime::parse_from_rfc3339(start), DateTime::parse_from_rfc3339(end)) {
                        (Ok(a), Ok(b)) => human_duration((b - a).num_seconds().max(0)),
                        _ => String::new(),
                    }
                }
                (Some(start), None) => since(start, now),
                _ => String::new(),
            };
            vec![
                name,
                json!(status),
                json!(format!(
                    "{succeeded}/{}",
                    completions.map_or("1".to_string(), |c| c.to_string())
                )),
                json!(duration),
                json!(age(o, now)),
            ]
        }
        "Lease" => vec![
            name,
            json!(none_if_empty(s(o, "/spec/holderIdentity").to_string())),
            json!(age(o, now)),
        ],
        "EndpointSlice" => {
            let ports: Vec<String> = o
                .get("ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|p| n(p, "/port").to_string())
                .collect();
            let addrs: Vec<&str> = o
                .get("endpoints")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .flat_map(|e| {
                    e.get("addresses")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                })
                .collect();
            vec![
                name,
                json!(s(o, "/addressType")),
                json!(none_if_empty(ports.join(","))),
                json!(none_if_empty(addrs.join(","))),
                json!(age(o, now)),
            ]
        }
        "Event" => {
            let last = [
                s(o, "/lastTimestamp"),
                s(o, "/eventTime"),
                s(o, "/metadata/creationTimestamp"),
            ]
            .into_iter()
            .find(|t| !t.is_empty())
            .unwrap_or("");
            vec![
                json!(since(last, now)),
                json!(s(o, "/type")),
                json!(s(o, "/reason")),
                json!(format!(
                    "{}/{}",
                    s(o, "/involvedObject/kind").to_lowercase(),
                    s(o, "/involvedObject/name")
                )),
                json!(s(o, "/message")),
            ]
        }
        _ => vec![name, json!(age(o, now))],
    }
}

/// The STATUS column of a pod, as kubectl computes it.
pub fn pod_status(o: &Value) -> String {
    let mut reason = s(o, "/status/reason").to_string();
    if reason.is_empty() {
        reason = s(o, "/status/phase").to_string();
    }
    for c in o
        .pointer("/status/initContainerStatuses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let waiting = s(c, "/state/waiting/reason");
        let terminated = c.pointer("/state/terminated");
        if let Some(t) = terminated {
            if n(t, "/exitCode") == 0 {
                continue;
            }
            reason = format!(
                "Init:{}",
                if s(t, "/reason").is_empty() {
                    "Error"
                } else {
                    s(t, "/reason")
                }
            );
            break;
        }
        if !waiting.is_empty() && waiting != "PodInitializing" {
            reason = format!("Init:{waiting}");
            break;
        }
    }
    for c in o
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .rev()
    {
        let waiting = s(c, "/state/waiting/reason");
        let term_reason = s(c, "/state/terminated/reason");
        if !waiting.is_empty() {
            reason = waiting.to_string();
        } else if !term_reason.is_empty() {
            reason = term_reason.to_string();
        } else if c.pointer("/state/terminated").is_some() {
            let sig = n(c, "/state/terminated/signal");
            reason = if sig != 0 {
                format!("Signal:{sig}")
            } else {
                format!("ExitCode:{}", n(c, "/state/terminated/exitCode"))
            };
        }
    }
    if o.pointer("/metadata/deletionTimestamp").is_some_and(|v| !v.is_null()) {
        reason = "Terminating".into();
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::registry::find_kind;

    #[test]
    fn durations_print_as_kubectl_prints_them() {
        assert_eq!(human_duration(45), "45s");
        assert_eq!(human_duration(200), "3m20s");
        assert_eq!(human_duration(95 * 60), "95m");
        assert_eq!(human_duration(5 * 3600 + 12 * 60), "5h12m");
        assert_eq!(human_duration(30 * 3600), "30h");
        assert_eq!(human_duration(3 * 86400 + 4 * 3600), "3d4h");
        assert_eq!(human_duration(200 * 86400), "200d");
    }

    #[test]
    fn pod_rows_have_the_columns_kubectl_shows() {
        let pods = find_kind("", "Pod").expect("pods");
        let pod = json!({
            "metadata": {"name": "web-1", "creationTimestamp": "2020-01-01T00:00:00Z"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "n1"},
            "status": {"phase": "Running", "podIP": "10.0.0.5", "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 2, "state": {"running": {}}},
                {"name": "b", "ready": false, "restartCount": 1, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
            ]}
        });
        let t = table(pods, &[pod], "10", None, "Metadata");
        let names: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .expect("columns")
            .iter()
            .map(|c| c["name"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(&names[..5], ["Name", "Ready", "Status", "Restarts", "Age"]);
        let cells = &t["rows"][0]["cells"];
        assert_eq!(cells[0], "web-1");
        assert_eq!(cells[1], "1/2");
        assert_eq!(cells[2], "CrashLoopBackOff");
        assert_eq!(cells[3], 3);
        assert_eq!(cells[5], "10.0.0.5");
        assert_eq!(cells[6], "n1");
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(t["columnDefinitions"][5]["priority"], 1);
    }
}
