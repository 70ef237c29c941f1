//! Turning an HTTP request into what the API understands: the target resource, object and
//! subresource from the path, the verb, and the query parameters.

use std::collections::HashMap;

use axum::http::Method;

use super::registry::{self, Resource};
use super::status::ApiError;

/// What a resource request addresses.
#[derive(Debug, Clone)]
pub struct Target {
    pub resource: &'static Resource,
    /// The namespace from the path (`/namespaces/{ns}/…`), if any.
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

/// A path under `/api` or `/apis`.
#[derive(Debug)]
pub enum ApiPath {
    /// `/api` or `/apis`.
    Root {
        core: bool,
    },
    /// `/apis/{group}`.
    Group(String),
    /// `/api/v1` or `/apis/{group}/{version}`: the resource list.
    GroupVersion {
        group: String,
        version: String,
    },
    Resource(Target),
}

/// Parses `/api/...` and `/apis/...` paths.
pub fn parse_path(path: &str) -> Result<ApiPath, ApiError> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api"] => return Ok(ApiPath::Root { core: true }),
        ["apis"] => return Ok(ApiPath::Root { core: false }),
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g] => return Ok(ApiPath::Group(g.to_string())),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(ApiError::not_found_path(path)),
    };
    if rest.is_empty() {
        if registry::in_group_version(group, version).next().is_none() {
            return Err(ApiError::not_found_path(path));
        }
        return Ok(ApiPath::GroupVersion {
            group: group.to_string(),
            version: version.to_string(),
        });
    }
    let find = |plural: &str| registry::find(group, version, plural).ok_or_else(|| ApiError::not_found_path(path));
    // `/namespaces/{ns}/{plural}...` addresses a namespaced resource; `/namespaces/{name}`
    // and `/namespaces/{name}/status` address the namespace itself.
    let namespaced = rest.len() >= 3
        && rest[0] == "namespaces"
        && registry::find(group, version, rest[2]).is_some_and(|r| r.namespaced);
    let target = if namespaced {
        let resource = find(rest[2])?;
        Target {
            resource,
            namespace: Some(rest[1].to_string()),
            name: rest.get(3).map(|s| s.to_string()),
            subresource: rest.get(4).map(|s| s.to_string()),
        }
    } else {
        let resource = find(rest[0])?;
        Target {
            resource,
            namespace: None,
            name: rest.get(1).map(|s| s.to_string()),
            subresource: rest.get(2).map(|s| s.to_string()),
        }
    };
    if rest.len() > if namespaced { 5 } else { 3 } {
        return Err(ApiError::not_found_path(path));
    }
    if let Some(sub) = &target.subresource {
        if !target.resource.has_subresource(sub) {
            return Err(ApiError::not_found_path(path));
        }
    }
    Ok(ApiPath::Resource(target))
}

/// The Kubernetes verb of a request, as authorization and metrics name it.
pub fn verb(method: &Method, target: &Target, watch: bool) -> &'static str {
    match (method.as_str(), target.name.is_some()) {
        ("GET", false) if watch => "watch",
        ("GET", false) => "list",
        ("GET", true) => "get",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", false) => "deletecollection",
        ("DELETE", true) => "delete",
        _ => "unknown",
    }
}

/// Decoded query parameters.
#[derive(Debug, Default)]
pub struct Query(HashMap<String, String>);

impl Query {
    pub fn parse(q: Option<&str>) -> Result<Query, ApiError> {
        let mut map = HashMap::new();
        for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            map.insert(percent_decode(k)?, percent_decode(v)?);
        }
        Ok(Query(map))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true") | Some("1"))
    }

    pub fn u64(&self, key: &str) -> Result<Option<u64>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!(
                    "invalid value for {key}: \"{v}\" is not a non-negative integer"
                ))
            }),
        }
    }

    pub fn i64(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("invalid value for {key}: \"{v}\" is not an integer"))),
        }
    }
}

fn percent_decode(s: &str) -> Result<String, ApiError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| ApiError::bad_request(format!("invalid percent-encoding in query: {s}")))?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| ApiError::bad_request(format!("query is not UTF-8: {s}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(path: &str) -> Target {
        match parse_path(path).expect("parses") {
            ApiPath::Resource(t) => t,
            other => panic!("not a resource path: {other:?}"),
        }
    }

    #[test]
    fn paths_address_namespaced_and_cluster_objects() {
        let t = target("/api/v1/namespaces/default/pods/web/status");
        assert_eq!(
            (
                t.resource.plural,
                t.namespace.as_deref(),
                t.name.as_deref(),
                t.subresource.as_deref()
            ),
            ("pods", Some("default"), Some("web"), Some("status"))
        );
        let t = target("/api/v1/namespaces/kube-system");
        assert_eq!(
            (t.resource.plural, t.name.as_deref()),
            ("namespaces", Some("kube-system"))
        );
        let t = target("/api/v1/namespaces/x/finalize");
        assert_eq!(
            (t.resource.plural, t.name.as_deref(), t.subresource.as_deref()),
            ("namespaces", Some("x"), Some("finalize"))
        );
        let t = target("/apis/apps/v1/deployments");
        assert_eq!((t.resource.kind, t.namespace), ("Deployment", None));
        let t = target("/api/v1/nodes/n1");
        assert_eq!((t.resource.kind, t.name.as_deref()), ("Node", Some("n1")));
    }

    #[test]
    fn unknown_resources_and_subresources_are_not_found() {
        assert_eq!(parse_path("/api/v1/widgets").err().map(|e| e.code), Some(404));
        assert_eq!(
            parse_path("/api/v1/namespaces/d/pods/p/scale").err().map(|e| e.code),
            Some(404)
        );
        assert_eq!(parse_path("/apis/nope/v1").err().map(|e| e.code), Some(404));
    }

    #[test]
    fn query_values_are_percent_decoded() {
        let q = Query::parse(Some("labelSelector=app%3Dweb%2Ctier+in+%28a%29&watch=1")).expect("parses");
        assert_eq!(q.get("labelSelector"), Some("app=web,tier in (a)"));
        assert!(q.flag("watch"));
        assert!(Query::parse(Some("a=%zz")).is_err());
    }
}
