//! Helpers over objects as JSON: metadata access, server-set fields, defaults, and the
//! conversion between stored bytes and what clients see.
//!
//! Objects are stored as canonical JSON without `metadata.resourceVersion`: the revision a
//! write gets is only known once Raft applies it, so it is added on the way out from the
//! key's mod revision (as Kubernetes does over etcd).

use chrono::{SecondsFormat, Utc};
use gantry_store::KeyValue;
use rand::Rng;
use serde_json::{json, Map, Value};

use super::registry::Resource;
use super::status::ApiError;

/// Now, as Kubernetes writes timestamps: RFC 3339, seconds, `Z`.
pub fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `metadata` of an object, created if missing.
pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    obj["metadata"]
        .as_object_mut()
        .expect("metadata was just made an object")
}

pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

pub fn name(obj: &Value) -> Option<&str> {
    meta_str(obj, "name")
}

/// The names in `metadata.finalizers`.
pub fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// Decodes a stored object and sets its resourceVersion from the key's mod revision.
pub fn from_kv(kv: &KeyValue) -> Result<Value, ApiError> {
    decode_at(&kv.value, kv.mod_revision, &kv.key)
}

/// Decodes stored bytes and sets resourceVersion to `revision`.
pub fn decode_at(bytes: &[u8], revision: u64, key: &str) -> Result<Value, ApiError> {
    let mut obj: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::internal(format!("stored object {key} is not valid JSON: {e}")))?;
    meta_mut(&mut obj).insert("resourceVersion".into(), Value::String(revision.to_string()));
    Ok(obj)
}

/// Encodes an object for storage: without resourceVersion (it comes from the store).
pub fn encode(obj: &Value) -> Vec<u8> {
    let mut obj = obj.clone();
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
    }
    serde_json::to_vec(&obj).expect("JSON values always serialize")
}

/// A random suffix for `generateName`, from Kubernetes' alphabet (no vowels, no look-alikes).
pub fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::thread_rng();
    (0..5)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Parses a resourceVersion string; "" and absent are None.
pub fn parse_rv(s: Option<&str>) -> Result<Option<u64>, ApiError> {
    match s {
        None | Some("") => Ok(None),
        Some(s) => s
            .parse::<u64>()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("invalid resource version \"{s}\""))),
    }
}

/// Fills the defaults Kubernetes applies on create and update, for the kinds that have them.
pub fn apply_defaults(r: &Resource, obj: &mut Value) {
    match (r.group, r.kind) {
        ("", "Pod") => {
            if let Some(spec) = obj.get_mut("spec") {
                default_pod_spec(spec);
            }
        }
        ("", "Service") => default_service(obj),
        ("apps", "Deployment") => {
            let spec = spec_mut(obj);
            set_default(spec, "replicas", json!(1));
            set_default(spec, "revisionHistoryLimit", json!(10));
            set_default(spec, "progressDeadlineSeconds", json!(600));
            if spec.get("strategy").is_none() {
                spec.insert(
                    "strategy".into(),
                    json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
                );
            } else if let Some(strategy) = spec.get_mut("strategy").and_then(Value::as_object_mut) {
                set_default(strategy, "type", json!("RollingUpdate"));
                if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
                    let ru = strategy.entry("rollingUpdate").or_insert_with(|| json!({}));
                    if let Some(ru) = ru.as_object_mut() {
                        set_default(ru, "maxUnavailable", json!("25%"));
                        set_default(ru, "maxSurge", json!("25%"));
                    }
                }
            }
            default_template(spec);
        }
        ("apps", "ReplicaSet") => {
            let spec = spec_mut(obj);
            set_default(spec, "replicas", json!(1));
            default_template(spec);
        }
        ("", "ReplicationController") => {
            let spec = spec_mut(obj);
            set_default(spec, "replicas", json!(1));
            // An RC without a selector selects its template's labels.
            let labels = spec
                .get("template")
                .and_then(|t| t.pointer("/metadata/labels"))
                .cloned();
            if spec
                .get("selector")
                .is_none_or(|s| s.as_object().is_some_and(Map::is_empty))
            {
                if let Some(labels) = labels {
                    spec.insert("selector".into(), labels);
                }
            }
            default_template(spec);
        }
        ("batch", "Job") => {
            let spec = spec_mut(obj);
            set_default(spec, "parallelism", json!(1));
            set_default(spec, "backoffLimit", json!(6));
            set_default(spec, "completionMode", json!("NonIndexed"));
            set_default(spec, "suspend", json!(false));
            if spec.get("completions").is_none() {
                spec.insert("completions".into(), json!(1));
            }
            default_template(spec);
        }
        ("", "Namespace") => {
            let spec = spec_mut(obj);
            if spec.get("finalizers").is_none() {
                spec.insert("finalizers".into(), json!(["kubernetes"]));
            }
            let status = obj
                .as_object_mut()
                .expect("objects are JSON objects")
                .entry("status")
                .or_insert_with(|| json!({}));
            if let Some(status) = status.as_object_mut() {
                set_default(status, "phase", json!("Active"));
            }
        }
        ("", "Secret") => {
            if let Some(o) = obj.as_object_mut() {
                o.entry("type").or_insert_with(|| json!("Opaque"));
            }
        }
        _ => {}
    }
}

fn spec_mut(obj: &mut Value) -> &mut Map<String, Value> {
    let o = obj.as_object_mut().expect("objects are JSON objects");
    let spec = o.entry("spec").or_insert_with(|| json!({}));
    if !spec.is_object() {
        *spec = json!({});
    }
    spec.as_object_mut().expect("spec was just made an object")
}

fn set_default(m: &mut Map<String, Value>, key: &str, value: Value) {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.to_string(), value);
    }
}

fn default_template(spec: &mut Map<String, Value>) {
    if let Some(pod_spec) = spec.get_mut("template").and_then(|t| t.get_mut("spec")) {
        default_pod_spec(pod_spec);
    }
}

fn default_pod_spec(spec: &mut Value) {
    let Some(spec) = spec.as_object_mut() else { return };
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    set_default(spec, "securityContext", json!({}));
    for list in ["containers", "initContainers"] {
        if let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) {
            for c in containers.iter_mut().filter_map(Value::as_object_mut) {
                let latest = c
                    .get("image")
                    .and_then(Value::as_str)
                    .is_some_and(|i| !i.rsplit('/').next().unwrap_or(i).contains(':') || i.ends_with(":latest"));
                set_default(
                    c,
                    "imagePullPolicy",
                    json!(if latest { "Always" } else { "IfNotPresent" }),
                );
                set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
                set_default(c, "terminationMessagePolicy", json!("File"));
                set_default(c, "resources", json!({}));
                if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
                    for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                        set_default(p, "protocol", json!("TCP"));
                    }
                }
            }
        }
    }
}

fn default_service(obj: &mut Value) {
    let spec = spec_mut(obj);
    set_default(spec, "type", json!("ClusterIP"));
    set_default(spec, "sessionAffinity", json!("None"));
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            set_default(p, "protocol", json!("TCP"));
            if p.get("targetPort").is_none() {
                if let Some(port) = p.get("port").cloned() {
                    p.insert("targetPort".into(), port);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_objects_carry_no_resource_version_and_get_it_back_on_read() {
        let obj = json!({"metadata": {"name": "a", "resourceVersion": "7"}, "spec": {}});
        let bytes = encode(&obj);
        assert!(!String::from_utf8_lossy(&bytes).contains("resourceVersion"));
        let back = decode_at(&bytes, 42, "/k").expect("decode");
        assert_eq!(back["metadata"]["resourceVersion"], "42");
    }

    #[test]
    fn rc_selector_defaults_to_template_labels() {
        let rc = super::super::registry::find_kind("", "ReplicationController").expect("rc");
        let mut obj = json!({"spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}});
        apply_defaults(rc, &mut obj);
        assert_eq!(obj["spec"]["selector"], json!({"app": "web"}));
        assert_eq!(obj["spec"]["replicas"], 1);
        assert_eq!(obj["spec"]["template"]["spec"]["restartPolicy"], "Always");
        assert_eq!(
            obj["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
            "Always"
        );
    }

    #[test]
    fn service_ports_default_protocol_and_target_port() {
        let svc = super::super::registry::find_kind("", "Service").expect("svc");
        let mut obj = json!({"spec": {"ports": [{"port": 3306}]}});
        apply_defaults(svc, &mut obj);
        assert_eq!(
            obj["spec"]["ports"][0],
            json!({"port": 3306, "protocol": "TCP", "targetPort": 3306})
        );
        assert_eq!(obj["spec"]["type"], "ClusterIP");
    }

    #[test]
    fn generated_suffixes_use_the_kubernetes_alphabet() {
        let s = random_suffix();
        assert_eq!(s.len(), 5);
        assert!(s.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
    }
}
