//! The OpenAPI documents kubectl reads before `apply`: `/openapi/v3` (an index of group
//! versions) and one document per group version. Each kind gets a PATCH operation that
//! carries its group-version-kind and the `fieldValidation` query parameter, which tells
//! kubectl the server validates fields itself, so kubectl needs no schemas of its own.
//! `/openapi/v2` answers an empty protobuf document: kubectl's fallback for manifests of
//! `kind: List` then finds nothing to check client-side instead of failing.

use serde_json::{json, Map, Value};

use super::registry::{self, Resource};
use super::status::ApiError;

/// Content type of the (empty) OpenAPI v2 protobuf document.
pub const V2_CONTENT_TYPE: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn group_versions() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for r in registry::RESOURCES {
        if !out.contains(&(r.group, r.version)) {
            out.push((r.group, r.version));
        }
    }
    out
}

fn object_path(r: &Resource) -> String {
    let base = gv_path(r.group, r.version);
    if r.namespaced {
        format!("/{base}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
    } else {
        format!("/{base}/{}/{{name}}", r.plural)
    }
}

/// `/openapi/v3`: where each group version's document is.
pub fn index() -> Value {
    let mut paths = Map::new();
    for (g, v) in group_versions() {
        let p = gv_path(g, v);
        paths.insert(p.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{p}")}));
    }
    json!({"paths": paths})
}

/// The document of one group version (`api/v1`, `apis/apps/v1`).
pub fn group_version(path: &str) -> Option<Value> {
    let (group, version) = match path.split('/').collect::<Vec<_>>().as_slice() {
        ["api", v] => ("", *v),
        ["apis", g, v] => (*g, *v),
        _ => return None,
    };
    let mut paths = Map::new();
    for r in registry::in_group_version(group, version) {
        paths.insert(
            object_path(r),
            json!({"patch": {
                "x-kubernetes-group-version-kind": {"group": r.group, "version": r.version, "kind": r.kind},
                "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string"}}],
                "responses": {"200": {"description": "OK"}},
            }}),
        );
    }
    if paths.is_empty() {
        return None;
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": format!("v1.{}.0", super::discovery::KUBE_MINOR)},
        "paths": paths,
    }))
}

/// Serves `/openapi/v3…`.
pub fn serve(path: &str) -> Result<Value, ApiError> {
    match path.trim_end_matches('/') {
        "/openapi/v3" => Ok(index()),
        p => p
            .strip_prefix("/openapi/v3/")
            .and_then(group_version)
            .ok_or_else(|| ApiError::not_found_path(path)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_declares_server_side_field_validation() {
        let idx = index();
        assert_eq!(
            idx["paths"]["apis/apps/v1"]["serverRelativeURL"],
            "/openapi/v3/apis/apps/v1"
        );
        for r in registry::RESOURCES {
            let doc = group_version(&gv_path(r.group, r.version)).expect("document");
            let op = &doc["paths"][object_path(r)]["patch"];
            assert_eq!(op["x-kubernetes-group-version-kind"]["kind"], r.kind);
            assert_eq!(op["parameters"][0]["name"], "fieldValidation");
        }
        assert!(serve("/openapi/v3/apis/nope/v1").is_err());
    }
}
