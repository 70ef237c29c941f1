//! Discovery documents kubectl reads to learn what the server serves: `/version`, `/api`,
//! `/apis`, and the resource list of each group version (names, kinds, verbs, short names,
//! categories, subresources).

use serde_json::{json, Value};

use super::registry::{self, Resource};

/// The Kubernetes version this API follows.
pub const KUBE_MINOR: &str = "32";

pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": KUBE_MINOR,
        "gitVersion": format!("v1.{KUBE_MINOR}.0-gantry.{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "rust",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, if std::env::consts::ARCH == "x86_64" { "amd64" } else { std::env::consts::ARCH }),
    })
}

pub fn core_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}],
    })
}

fn group_entry(group: &str) -> Value {
    let gv = json!({"groupVersion": format!("{group}/v1"), "version": "v1"});
    json!({"name": group, "versions": [gv.clone()], "preferredVersion": gv})
}

pub fn group_list() -> Value {
    json!({
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": registry::groups().into_iter().map(group_entry).collect::<Vec<_>>(),
    })
}

pub fn group(name: &str) -> Option<Value> {
    registry::groups().contains(&name).then(|| {
        let mut g = group_entry(name);
        g["kind"] = json!("APIGroup");
        g["apiVersion"] = json!("v1");
        g
    })
}

fn verbs(r: &Resource) -> Vec<&'static str> {
    vec![
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    ]
    .into_iter()
    .filter(|v| !(r.kind == "Namespace" && *v == "deletecollection"))
    .collect()
}

fn sub_entry(r: &Resource, sub: &str) -> Value {
    let (kind, group, version, verbs): (&str, &str, &str, Vec<&str>) = match sub {
        "status" => (r.kind, "", "", vec!["get", "patch", "update"]),
        "scale" => ("Scale", "autoscaling", "v1", vec!["get", "patch", "update"]),
        "binding" => ("Binding", "", "", vec!["create"]),
        "eviction" => ("Eviction", "policy", "v1", vec!["create"]),
        "log" => ("Pod", "", "", vec!["get"]),
        "finalize" => (r.kind, "", "", vec!["update"]),
        _ => (r.kind, "", "", vec!["get"]),
    };
    let mut e = json!({
        "name": format!("{}/{sub}", r.plural),
        "singularName": "",
        "namespaced": r.namespaced,
        "kind": kind,
        "verbs": verbs,
    });
    if !group.is_empty() {
        e["group"] = json!(group);
        e["version"] = json!(version);
    }
    e
}

pub fn resource_list(group: &str, version: &str) -> Value {
    let mut resources = Vec::new();
    for r in registry::in_group_version(group, version) {
        let mut e = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": verbs(r),
        });
        if !r.short_names.is_empty() {
            e["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            e["categories"] = json!(r.categories);
        }
        resources.push(e);
        for sub in r.subresources {
            resources.push(sub_entry(r, sub));
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_resources_list_short_names_and_subresources() {
        let list = resource_list("", "v1");
        let resources = list["resources"].as_array().expect("resources");
        let pods = resources.iter().find(|r| r["name"] == "pods").expect("pods");
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert_eq!(pods["categories"], json!(["all"]));
        assert!(resources.iter().any(|r| r["name"] == "pods/status"));
        assert!(resources.iter().any(|r| r["name"] == "pods/log"));
        let names: Vec<&str> = resources
            .iter()
            .filter_map(|r| r["shortNames"].as_array())
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        for short in ["po", "svc", "rc", "ns", "no", "ep", "cm", "ev"] {
            assert!(names.contains(&short), "{short} is a short name");
        }
        let apps = resource_list("apps", "v1");
        let scale = apps["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .find(|r| r["name"] == "deployments/scale")
            .expect("scale");
        assert_eq!(scale["group"], "autoscaling");
        assert!(group_list()["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .any(|g| g["name"] == "batch"));
    }
}
