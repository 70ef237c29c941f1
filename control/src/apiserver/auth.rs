//! Authentication by bearer token and authorization by role.
//!
//! Tokens live in `<data-dir>/auth/` (created on first start, mode 0600):
//! - `admin.token`: the `admin` user, allowed everything;
//! - `readonly.token`: the `viewer` user: get, list and watch of everything but secrets;
//! - `join.token`: agents join with `<join-token>.<node-name>` and act as
//!   `system:node:<node-name>`: they read what an agent needs and write only their own
//!   Node, their Lease, events, and pods bound to them (their status, their deletion).

use std::path::Path;

use rand::RngCore;

use super::request::Target;
use super::status::ApiError;
use super::tls::{write_private, TlsError};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    Admin,
    ReadOnly,
    Node { name: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub role: Role,
}

/// What authorization decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Allowed only if the pod addressed is bound to this node; the handler checks.
    IfPodBoundTo(String),
}

#[derive(Clone)]
pub struct Auth {
    pub admin_token: String,
    pub readonly_token: String,
    pub join_token: String,
}

fn new_token() -> String {
    let mut b = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn load_or_create(path: &Path) -> Result<String, TlsError> {
    match std::fs::read_to_string(path) {
        Ok(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        Ok(_) | Err(_) => {
            let t = new_token();
            write_private(path, &format!("{t}\n"))?;
            Ok(t)
        }
    }
}

/// Compares without leaking where two tokens differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Auth {
    pub fn load_or_create(dir: &Path) -> Result<Auth, TlsError> {
        Ok(Auth {
            admin_token: load_or_create(&dir.join("admin.token"))?,
            readonly_token: load_or_create(&dir.join("readonly.token"))?,
            join_token: load_or_create(&dir.join("join.token"))?,
        })
    }

    /// The user a bearer token stands for.
    pub fn authenticate(&self, token: &str) -> Option<User> {
        if same(token, &self.admin_token) {
            return Some(User {
                name: "admin".into(),
                role: Role::Admin,
            });
        }
        if same(token, &self.readonly_token) {
            return Some(User {
                name: "viewer".into(),
                role: Role::ReadOnly,
            });
        }
        let (secret, node) = token.split_once('.')?;
        if same(secret, &self.join_token) && !node.is_empty() {
            return Some(User {
                name: format!("system:node:{node}"),
                role: Role::Node { name: node.to_string() },
            });
        }
        None
    }
}

/// Decides whether `user` may do `verb` on `target`.
pub fn authorize(user: &User, verb: &str, t: &Target) -> Result<Decision, ApiError> {
    let read = matches!(verb, "get" | "list" | "watch");
    let r = t.resource;
    let deny = || {
        let scope = match &t.namespace {
            Some(ns) => format!(" in the namespace \"{ns}\""),
            None => " at the cluster scope".to_string(),
        };
        let res = match &t.subresource {
            Some(s) => format!("{}/{s}", r.plural),
            None => r.plural.to_string(),
        };
        ApiError::forbidden(format!(
            "{} \"{}\" is forbidden: User \"{}\" cannot {verb} resource \"{res}\" in API group \"{}\"{scope}",
            r.qualified(),
            t.name.as_deref().unwrap_or(""),
            user.name,
            r.group
        ))
    };
    match &user.role {
        Role::Admin => Ok(Decision::Allow),
        Role::ReadOnly if read && r.kind != "Secret" => Ok(Decision::Allow),
        Role::ReadOnly => Err(deny()),
        Role::Node { name } => {
            let own = t.name.as_deref() == Some(name.as_str());
            match (r.kind, read) {
                (_, true) => Ok(Decision::Allow),
                ("Node", false) if own || (verb == "create" && t.name.is_none()) => Ok(Decision::Allow),
                ("Lease", false) if t.namespace.as_deref() == Some("kube-node-lease") && (own || t.name.is_none()) => {
                    Ok(Decision::Allow)
                }
                ("Event", false) if matches!(verb, "create" | "update" | "patch") => Ok(Decision::Allow),
                // Mirror pods of static manifests are created bound to the node.
                ("Pod", false) if verb == "create" && t.subresource.is_none() => {
                    Ok(Decision::IfPodBoundTo(name.clone()))
                }
                ("Pod", false)
                    if (t.subresource.as_deref() == Some("status") && matches!(verb, "update" | "patch"))
                        || (t.subresource.is_none() && verb == "delete") =>
                {
                    Ok(Decision::IfPodBoundTo(name.clone()))
                }
                _ => Err(deny()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::registry::find;

    fn target(plural: &str, ns: Option<&str>, name: Option<&str>, sub: Option<&str>) -> Target {
        let resource = find("", "v1", plural)
            .or_else(|| find("coordination.k8s.io", "v1", plural))
            .expect("known resource");
        Target {
            resource,
            namespace: ns.map(str::to_string),
            name: name.map(str::to_string),
            subresource: sub.map(str::to_string),
        }
    }

    #[test]
    fn tokens_map_to_roles_and_nodes_carry_their_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let auth = Auth::load_or_create(dir.path()).expect("create");
        let again = Auth::load_or_create(dir.path()).expect("reload");
        assert_eq!(auth.admin_token, again.admin_token, "tokens persist");
        assert_eq!(auth.authenticate(&auth.admin_token).map(|u| u.role), Some(Role::Admin));
        assert_eq!(
            auth.authenticate(&auth.readonly_token).map(|u| u.role),
            Some(Role::ReadOnly)
        );
        let node = auth
            .authenticate(&format!("{}.worker-1", auth.join_token))
            .expect("node");
        assert_eq!(
            node.role,
            Role::Node {
                name: "worker-1".into()
            }
        );
        assert!(auth.authenticate("nope").is_none());
        assert!(auth.authenticate(&format!("{}.", auth.join_token)).is_none());
    }

    #[test]
    fn nodes_write_only_their_own_objects() {
        let node = User {
            name: "system:node:n1".into(),
            role: Role::Node { name: "n1".into() },
        };
        assert_eq!(
            authorize(&node, "update", &target("nodes", None, Some("n1"), Some("status"))).ok(),
            Some(Decision::Allow)
        );
        assert!(authorize(&node, "update", &target("nodes", None, Some("n2"), Some("status"))).is_err());
        assert_eq!(
            authorize(
                &node,
                "patch",
                &target("pods", Some("default"), Some("p"), Some("status"))
            )
            .ok(),
            Some(Decision::IfPodBoundTo("n1".into()))
        );
        assert!(authorize(&node, "create", &target("services", Some("default"), None, None)).is_err());
        assert_eq!(
            authorize(
                &node,
                "update",
                &target("leases", Some("kube-node-lease"), Some("n1"), None)
            )
            .ok(),
            Some(Decision::Allow)
        );
        assert!(authorize(
            &node,
            "update",
            &target("leases", Some("kube-node-lease"), Some("n2"), None)
        )
        .is_err());
        assert_eq!(
            authorize(&node, "list", &target("secrets", Some("default"), None, None)).ok(),
            Some(Decision::Allow)
        );
    }

    #[test]
    fn viewers_read_everything_but_secrets_and_write_nothing() {
        let viewer = User {
            name: "viewer".into(),
            role: Role::ReadOnly,
        };
        assert!(authorize(&viewer, "list", &target("pods", None, None, None)).is_ok());
        let err = authorize(&viewer, "get", &target("secrets", Some("default"), Some("s"), None)).expect_err("denied");
        assert_eq!(err.code, 403);
        assert!(err.message.contains("cannot get resource \"secrets\""));
        assert!(authorize(&viewer, "delete", &target("pods", Some("default"), Some("p"), None)).is_err());
    }
}
