//! An in-process API client for controllers: the API server's own operations (defaults,
//! validation, compare-and-swap, finalizers) without HTTP in between.

use std::sync::Arc;

use gantry_store::watch::Watcher;
use serde_json::Value;

use crate::apiserver::registry::{self, Resource};
use crate::apiserver::request::{Query, Target};
use crate::apiserver::status::ApiError;
use crate::apiserver::{object, ApiState};

#[derive(Clone)]
pub struct LocalClient {
    api: Arc<ApiState>,
}

fn target(r: &'static Resource, ns: Option<&str>, name: Option<&str>, sub: Option<&str>) -> Target {
    Target {
        resource: r,
        namespace: ns.map(str::to_string),
        name: name.map(str::to_string),
        subresource: sub.map(str::to_string),
    }
}

impl LocalClient {
    pub fn new(api: Arc<ApiState>) -> LocalClient {
        LocalClient { api }
    }

    pub fn resource(group: &str, plural: &str) -> &'static Resource {
        registry::find(group, "v1", plural).expect("controllers only use served resources")
    }

    /// Lists every object of a resource; returns them and the list's revision.
    pub async fn list(&self, r: &'static Resource) -> Result<(Vec<Value>, u64), ApiError> {
        let list = self.api.list(&target(r, None, None, None), &Query::default()).await?;
        let rv = object::parse_rv(list["metadata"]["resourceVersion"].as_str())?.unwrap_or(0);
        Ok((list["items"].as_array().cloned().unwrap_or_default(), rv))
    }

    /// Watches a resource's keys from `revision` (exclusive), as store events.
    pub fn watch(&self, r: &'static Resource, revision: u64) -> Result<Watcher, ApiError> {
        Ok(self.api.store.watch(&r.prefix(None), revision + 1)?)
    }

    pub async fn get(&self, r: &'static Resource, ns: &str, name: &str) -> Result<Value, ApiError> {
        Ok(self.api.get_object(r, Some(ns), name).await?.0)
    }

    /// Reads an object of a namespaced or cluster-scoped resource.
    pub async fn get_in(&self, r: &'static Resource, ns: Option<&str>, name: &str) -> Result<Value, ApiError> {
        Ok(self.api.get_object(r, ns.filter(|_| r.namespaced), name).await?.0)
    }

    /// Every object of a resource in one namespace.
    pub async fn list_in(&self, r: &'static Resource, ns: &str) -> Result<Vec<Value>, ApiError> {
        let list = self
            .api
            .list(&target(r, Some(ns), None, None), &Query::default())
            .await?;
        Ok(list["items"].as_array().cloned().unwrap_or_default())
    }

    /// Deletes with no grace period, in the foreground when asked.
    pub async fn delete_in(
        &self,
        r: &'static Resource,
        ns: Option<&str>,
        name: &str,
        foreground: bool,
    ) -> Result<Value, ApiError> {
        let mut opts = serde_json::json!({"gracePeriodSeconds": 0});
        if foreground {
            opts["propagationPolicy"] = serde_json::json!("Foreground");
        }
        self.api
            .delete(
                &target(r, ns.filter(|_| r.namespaced), Some(name), None),
                &opts,
                &Query::default(),
            )
            .await
    }

    /// `PUT namespaces/{name}/finalize`.
    pub async fn finalize_namespace(&self, ns: Value) -> Result<Value, ApiError> {
        let name = object::name(&ns).unwrap_or_default().to_string();
        self.api
            .update(
                &target(
                    LocalClient::resource("", "namespaces"),
                    None,
                    Some(&name),
                    Some("finalize"),
                ),
                ns,
            )
            .await
    }

    pub async fn create(&self, r: &'static Resource, ns: &str, obj: Value) -> Result<Value, ApiError> {
        self.api.create(&target(r, Some(ns), None, None), obj).await
    }

    /// Replaces an object, guarded by the resourceVersion it carries.
    pub async fn update(&self, r: &'static Resource, obj: Value) -> Result<Value, ApiError> {
        let (ns, name) = ns_name(&obj);
        self.api.update(&target(r, ns.as_deref(), Some(&name), None), obj).await
    }

    /// Replaces an object's status, guarded by the resourceVersion it carries.
    pub async fn update_status(&self, r: &'static Resource, obj: Value) -> Result<Value, ApiError> {
        let (ns, name) = ns_name(&obj);
        self.api
            .update(&target(r, ns.as_deref(), Some(&name), Some("status")), obj)
            .await
    }

    pub async fn delete(&self, r: &'static Resource, ns: &str, name: &str) -> Result<Value, ApiError> {
        self.api
            .delete(
                &target(r, Some(ns), Some(name), None),
                &serde_json::json!({}),
                &Query::default(),
            )
            .await
    }
}

fn ns_name(obj: &Value) -> (Option<String>, String) {
    (
        object::meta_str(obj, "namespace").map(str::to_string),
        object::name(obj).unwrap_or_default().to_string(),
    )
}
