//! The resource verbs: get, list, create, update, patch, delete, deletecollection, and the
//! status, scale and binding subresources. Every write is a compare-and-swap on the
//! object's mod revision, so concurrent writers never overwrite each other silently.

use gantry_api::patch::{apply_patch, PatchType};
use gantry_api::selector::{FieldSelector, LabelSelector};
use gantry_api::validation;
use gantry_store::{Consistency, KeyValue, Op, RangeRequest, Txn, TxnOutcome};
use serde_json::{json, Value};

use super::object::{self, apply_defaults, meta_mut, meta_str, parse_rv};
use super::registry::{self, Resource};
use super::request::{Query, Target};
use super::services;
use super::status::ApiError;
use super::ApiState;

/// Times a write is retried when it lost a compare-and-swap race that the client did not
/// ask to detect (no resourceVersion given).
const CAS_RETRIES: usize = 8;

/// Namespaces that always exist and cannot be deleted.
pub const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

impl ApiState {
    /// Reads one object (linearizable), with its mod revision.
    pub async fn get_object(&self, r: &Resource, ns: Option<&str>, name: &str) -> Result<(Value, u64), ApiError> {
        let key = r.key(ns, name);
        let kv = self
            .store
            .get(&key, Consistency::Linearizable)
            .await?
            .ok_or_else(|| ApiError::not_found(r, name))?;
        Ok((object::from_kv(&kv)?, kv.mod_revision))
    }

    /// Checks that a namespace exists and accepts new objects.
    async fn check_namespace(&self, ns: &str) -> Result<(), ApiError> {
        let nsr = registry::find("", "v1", "namespaces").expect("namespaces are served");
        let kv = self
            .store
            .get(&nsr.key(None, ns), Consistency::Serializable)
            .await?
            .ok_or_else(|| ApiError::namespace_not_found(ns))?;
        let obj = object::from_kv(&kv)?;
        if obj.pointer("/metadata/deletionTimestamp").is_some_and(|v| !v.is_null()) {
            return Err(ApiError::forbidden(format!(
                "unable to create new content in namespace {ns} because it is being terminated"
            )));
        }
        Ok(())
    }

    /// Lists objects matching the selectors: one page of at most `limit` matches.
    pub async fn list(&self, t: &Target, q: &Query) -> Result<Value, ApiError> {
        let r = t.resource;
        let labels = match q.get("labelSelector") {
            Some(s) => LabelSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?,
            None => LabelSelector::everything(),
        };
        let fields = match q.get("fieldSelector") {
            Some(s) => {
                let f = FieldSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?;
                f.validate_for(r.kind)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
                f
            }
            None => FieldSelector::everything(),
        };
        let limit = q.u64("limit")?.unwrap_or(0) as usize;
        let rv = parse_rv(q.get("resourceVersion"))?;
        let exact = q.get("resourceVersionMatch") == Some("Exact");
        // resourceVersion unset: the latest state, linearizably. "0": any state (this node's).
        // N: at least N (or exactly N with resourceVersionMatch=Exact).
        let (consistency, revision) = match (q.get("resourceVersion"), rv) {
            (Some("0"), _) => (Consistency::Serializable, None),
            (_, Some(n)) if exact => (Consistency::Serializable, Some(n)),
            (_, Some(n)) if self.store.revision() >= n => (Consistency::Serializable, None),
            _ => (Consistency::Linearizable, None),
        };
        // A name field selector narrows the scan to one key.
        let prefix = match (fields.exact("metadata.name"), t.namespace.as_deref()) {
            (Some(name), ns) if r.namespaced == ns.is_some() || !r.namespaced => r.key(ns, name),
            _ => r.prefix(t.namespace.as_deref()),
        };
        let exact_key = prefix.ends_with('/').then_some(()).is_none();
        let mut token = q.get("continue").map(str::to_string);
        let mut items = Vec::new();
        let mut read_revision;
        let mut next = None;
        let mut first = true;
        loop {
            let page = self
                .store
                .range(
                    &RangeRequest {
                        prefix: prefix.clone(),
                        limit: if limit == 0 { 0 } else { (limit - items.len()).max(64) },
                        revision: if token.is_some() { None } else { revision },
                        continue_token: token.clone(),
                    },
                    if first { consistency } else { Consistency::Serializable },
                )
                .await?;
            first = false;
            read_revision = page.revision;
            let mut last_scanned = None;
            for kv in &page.kvs {
                if exact_key && kv.key != prefix {
                    continue;
                }
                last_scanned = Some(kv.key.clone());
                let obj = object::from_kv(kv)?;
                if labels.matches_object(&obj) && fields.matches(&obj) {
                    items.push(obj);
                    if limit != 0 && items.len() == limit {
                        break;
                    }
                }
            }
            let full = limit != 0 && items.len() == limit;
            let scanned_all_of_page = last_scanned.as_deref() == page.kvs.last().map(|kv| kv.key.as_str());
            match (&page.continue_token, full) {
                (Some(t), false) => token = Some(t.clone()),
                (Some(t), true) if scanned_all_of_page => {
                    next = Some(t.clone());
                    break;
                }
                (_, true) if !scanned_all_of_page => {
                    // Stopped inside this page: continue right after the last returned key.
                    let key = last_scanned.expect("a full page returned at least one key");
                    next = Some(gantry_store::mvcc::continue_token(read_revision, &key));
                    break;
                }
                _ => break,
            }
        }
        let mut metadata = json!({"resourceVersion": read_revision.to_string()});
        if let Some(n) = next {
            metadata["continue"] = json!(n);
        }
        Ok(json!({
            "kind": r.list_kind(),
            "apiVersion": r.api_version(),
            "metadata": metadata,
            "items": items,
        }))
    }

    /// Creates an object; returns it as stored.
    pub async fn create(&self, t: &Target, mut obj: Value) -> Result<Value, ApiError> {
        let r = t.resource;
        check_type(r, &mut obj)?;
        let ns = self.namespace_for_write(t, &mut obj)?;
        if let Some(ns) = &ns {
            self.check_namespace(ns).await?;
        }
        let generated = meta_str(&obj, "name").is_none_or(str::is_empty)
            && meta_str(&obj, "generateName").is_some_and(|g| !g.is_empty());
        apply_defaults(r, &mut obj);
        {
            let m = meta_mut(&mut obj);
            m.remove("resourceVersion");
            m.remove("deletionTimestamp");
            m.remove("deletionGracePeriodSeconds");
            m.remove("managedFields");
            m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
            m.insert("creationTimestamp".into(), json!(object::now()));
            if r.has_spec {
                m.insert("generation".into(), json!(1));
            }
        }
        if r.kind == "Pod" {
            let status = obj
                .as_object_mut()
                .expect("objects are JSON objects")
                .entry("status")
                .or_insert_with(|| json!({}));
            if let Some(s) = status.as_object_mut() {
                s.entry("phase").or_insert_with(|| json!("Pending"));
            }
        }
        for attempt in 0.. {
            if generated {
                let base = meta_str(&obj, "generateName").unwrap_or_default().to_string();
                meta_mut(&mut obj).insert("name".into(), json!(format!("{base}{}", object::random_suffix())));
            }
            let name = meta_str(&obj, "name").unwrap_or_default().to_string();
            let causes = validation::validate(r.group, r.kind, &obj);
            if !causes.is_empty() {
                return Err(ApiError::invalid(r, &name, &causes));
            }
            let key = r.key(ns.as_deref(), &name);
            // A Service claims its ClusterIP and NodePorts in the same transaction.
            let mut candidate = obj.clone();
            let claims = if r.kind == "Service" {
                self.allocate_service(&mut candidate)
                    .await
                    .map_err(|causes| ApiError::invalid(r, &name, &causes))?
            } else {
                Vec::new()
            };
            let mut ops = vec![Op::create(key.clone(), object::encode(&candidate))];
            ops.extend(services::claim_ops(&claims, &key));
            match self.store.write(Txn::new(ops)).await? {
                TxnOutcome::Committed { revision, .. } => {
                    meta_mut(&mut candidate).insert("resourceVersion".into(), json!(revision.to_string()));
                    return Ok(candidate);
                }
                TxnOutcome::Failed { op: 0, .. } if generated && attempt < 3 => continue,
                TxnOutcome::Failed { op: 0, .. } => return Err(ApiError::already_exists(r, &name)),
                TxnOutcome::Failed { op, .. } => {
                    let claim = &claims[op - 1];
                    // A picked address raced with another Service's: pick again.
                    if claim.requested || attempt >= 16 {
                        return Err(ApiError::invalid(r, &name, std::slice::from_ref(&claim.cause)));
                    }
                }
            }
        }
        unreachable!("the loop returns")
    }

    /// The namespace a write goes to: the path's, which the body must agree with.
    fn namespace_for_write(&self, t: &Target, obj: &mut Value) -> Result<Option<String>, ApiError> {
        let r = t.resource;
        if !r.namespaced {
            meta_mut(obj).remove("namespace");
            return Ok(None);
        }
        let path_ns = t.namespace.clone().ok_or_else(|| {
            ApiError::bad_request(format!("{} must be written under /namespaces/{{namespace}}", r.plural))
        })?;
        match meta_str(obj, "namespace") {
            Some(ns) if !ns.is_empty() && ns != path_ns => Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            )),
            _ => {
                meta_mut(obj).insert("namespace".into(), json!(path_ns));
                Ok(Some(path_ns))
            }
        }
    }

    /// Replaces an object (PUT), or its status with `subresource = status`.
    pub async fn update(&self, t: &Target, body: Value) -> Result<Value, ApiError> {
        let name = t.name.clone().unwrap_or_default();
        let r = t.resource;
        let mut body = body;
        check_type(r, &mut body)?;
        match meta_str(&body, "name") {
            Some(n) if n != name => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )))
            }
            _ => {}
        }
        self.namespace_for_write(t, &mut body)?;
        let wanted = parse_rv(meta_str(&body, "resourceVersion"))?;
        let sub = t.subresource.as_deref();
        self.modify(t, wanted, |current| Ok(merge_update(r, sub, current, body.clone())))
            .await
    }

    /// Applies a patch (merge, JSON or strategic) to an object or its status.
    pub async fn patch(&self, t: &Target, content_type: &str, patch: &[u8]) -> Result<Value, ApiError> {
        let r = t.resource;
        let ty = PatchType::from_content_type(content_type).ok_or_else(|| {
            ApiError::unsupported_media_type(format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {content_type})"
            ))
        })?;
        let sub = t.subresource.as_deref();
        self.modify(t, None, |current| {
            let patched = apply_patch(ty, current, patch, r.group, r.kind).map_err(|e| match e {
                gantry_api::patch::PatchError::Unsupported { .. } => ApiError::unsupported_media_type(e.to_string()),
                other => ApiError::bad_request(other.to_string()),
            })?;
            // A resourceVersion in the patch is a precondition.
            if let (Some(p), Some(c)) = (
                meta_str(&patched, "resourceVersion"),
                meta_str(current, "resourceVersion"),
            ) {
                if p != c {
                    return Err(ApiError::conflict(r, t.name.as_deref().unwrap_or_default()));
                }
            }
            Ok(merge_update(r, sub, current, patched))
        })
        .await
    }

    /// Read-modify-write with compare-and-swap. `wanted` is the client's resourceVersion
    /// precondition; without one a lost race is retried with a fresh read.
    pub async fn modify(
        &self,
        t: &Target,
        wanted: Option<u64>,
        change: impl Fn(&Value) -> Result<Value, ApiError>,
    ) -> Result<Value, ApiError> {
        let r = t.resource;
        let name = t.name.clone().unwrap_or_default();
        let ns = t.namespace.as_deref().filter(|_| r.namespaced);
        let key = r.key(ns, &name);
        for _ in 0..CAS_RETRIES {
            let (current, rev) = self.get_object(r, ns, &name).await?;
            if wanted.is_some_and(|w| w != rev) {
                return Err(ApiError::conflict(r, &name));
            }
            let mut next = change(&current)?;
            apply_defaults(r, &mut next);
            preserve_server_fields(r, &current, &mut next);
            let causes = validation::validate(r.group, r.kind, &next);
            if !causes.is_empty() {
                return Err(ApiError::invalid(r, &name, &causes));
            }
            // An object being deleted goes once its last finalizer is removed.
            let deleting = next
                .pointer("/metadata/deletionTimestamp")
                .is_some_and(|v| !v.is_null());
            if deleting && pending_finalizers(r, &next).is_empty() {
                match self.store.write(Txn::new(deletion_ops(r, &key, rev, &next))).await? {
                    TxnOutcome::Committed { revision, .. } => {
                        meta_mut(&mut next).insert("resourceVersion".into(), json!(revision.to_string()));
                        return Ok(next);
                    }
                    TxnOutcome::Failed { .. } if wanted.is_none() => continue,
                    TxnOutcome::Failed { .. } => return Err(ApiError::conflict(r, &name)),
                }
            }
            let mut cmp_next = next.clone();
            meta_mut(&mut cmp_next).insert("resourceVersion".into(), json!(rev.to_string()));
            if cmp_next == current {
                // Nothing changed: no write, no new revision (as Kubernetes).
                return Ok(current);
            }
            match self
                .store
                .write(Txn::single(Op::put_if(key.clone(), object::encode(&next), rev)))
                .await?
            {
                TxnOutcome::Committed { revision, .. } => {
                    meta_mut(&mut next).insert("resourceVersion".into(), json!(revision.to_string()));
                    return Ok(next);
                }
                TxnOutcome::Failed { current: None, .. } => return Err(ApiError::not_found(r, &name)),
                TxnOutcome::Failed { .. } if wanted.is_none() => continue,
                TxnOutcome::Failed { .. } => return Err(ApiError::conflict(r, &name)),
            }
        }
        Err(ApiError::conflict(r, &name))
    }

    /// Deletes an object, honouring preconditions, finalizers, propagation policy and pod
    /// grace periods. Returns the object as of its deletion (or pending deletion).
    pub async fn delete(&self, t: &Target, options: &Value, q: &Query) -> Result<Value, ApiError> {
        let r = t.resource;
        let name = t.name.clone().unwrap_or_default();
        let ns = t.namespace.as_deref().filter(|_| r.namespaced);
        if r.kind == "Namespace" && SYSTEM_NAMESPACES.contains(&name.as_str()) {
            return Err(ApiError::forbidden(format!(
                "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
            )));
        }
        let policy = options
            .get("propagationPolicy")
            .and_then(Value::as_str)
            .or(q.get("propagationPolicy"))
            .map(str::to_string);
        let orphan = options.get("orphanDependents").and_then(Value::as_bool);
        let grace = options
            .get("gracePeriodSeconds")
            .and_then(Value::as_i64)
            .or(q.i64("gracePeriodSeconds")?);
        let key = r.key(ns, &name);
        for _ in 0..CAS_RETRIES {
            let (mut obj, rev) = self.get_object(r, ns, &name).await?;
            check_preconditions(r, &name, &obj, rev, options.get("preconditions"))?;
            let mut finalizers = object::finalizers(&obj);
            let add = match (policy.as_deref(), orphan) {
                (Some("Orphan"), _) | (None, Some(true)) => Some("orphan"),
                (Some("Foreground"), _) => Some("foregroundDeletion"),
                (Some("Background"), _) | (None, _) => None,
                (Some(other), _) => {
                    return Err(ApiError::bad_request(format!(
                        "invalid propagationPolicy \"{other}\": must be Orphan, Background or Foreground"
                    )))
                }
            };
            if let Some(f) = add {
                if !finalizers.iter().any(|x| x == f) {
                    finalizers.push(f.to_string());
                }
            }
            let already = obj.pointer("/metadata/deletionTimestamp").is_some_and(|v| !v.is_null());
            let graceful_pod = r.kind == "Pod"
                && obj
                    .pointer("/spec/nodeName")
                    .and_then(Value::as_str)
                    .is_some_and(|n| !n.is_empty())
                && grace != Some(0)
                && !already;
            let pending = !pending_finalizers(r, &obj).is_empty() || add.is_some() || graceful_pod;
            if pending {
                if already && add.is_none() {
                    return Ok(obj);
                }
                let grace_secs = if graceful_pod {
                    grace.unwrap_or_else(|| {
                        obj.pointer("/spec/terminationGracePeriodSeconds")
                            .and_then(Value::as_i64)
                            .unwrap_or(30)
                    })
                } else {
                    0
                };
                {
                    let m = meta_mut(&mut obj);
                    if !already {
                        let at = chrono::Utc::now() + chrono::Duration::seconds(grace_secs);
                        m.insert(
                            "deletionTimestamp".into(),
                            json!(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                        );
                        m.insert("deletionGracePeriodSeconds".into(), json!(grace_secs));
                    }
                    if !finalizers.is_empty() {
                        m.insert("finalizers".into(), json!(finalizers));
                    }
                }
                if r.kind == "Namespace" {
                    obj["status"]["phase"] = json!("Terminating");
                }
                match self
                    .store
                    .write(Txn::single(Op::put_if(key.clone(), object::encode(&obj), rev)))
                    .await?
                {
                    TxnOutcome::Committed { revision, .. } => {
                        meta_mut(&mut obj).insert("resourceVersion".into(), json!(revision.to_string()));
                        return Ok(obj);
                    }
                    TxnOutcome::Failed { .. } => continue,
                }
            }
            match self.store.write(Txn::new(deletion_ops(r, &key, rev, &obj))).await? {
                TxnOutcome::Committed { revision, .. } => {
                    meta_mut(&mut obj).insert("resourceVersion".into(), json!(revision.to_string()));
                    return Ok(obj);
                }
                TxnOutcome::Failed { current: None, .. } => return Err(ApiError::not_found(r, &name)),
                TxnOutcome::Failed { .. } => continue,
            }
        }
        Err(ApiError::conflict(r, &name))
    }

    /// Deletes every object the selectors match; returns them as a list.
    pub async fn delete_collection(&self, t: &Target, options: &Value, q: &Query) -> Result<Value, ApiError> {
        let mut list = self.list(t, q).await?;
        let mut deleted = Vec::new();
        for item in list["items"].as_array().cloned().unwrap_or_default() {
            let target = Target {
                resource: t.resource,
                namespace: meta_str(&item, "namespace").map(str::to_string),
                name: object::name(&item).map(str::to_string),
                subresource: None,
            };
            match self.delete(&target, options, q).await {
                Ok(obj) => deleted.push(obj),
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        list["items"] = json!(deleted);
        Ok(list)
    }

    /// `GET …/scale`: the Scale view of a replicated object.
    pub async fn get_scale(&self, t: &Target) -> Result<Value, ApiError> {
        let r = t.resource;
        let name = t.name.clone().unwrap_or_default();
        let (obj, _) = self.get_object(r, t.namespace.as_deref(), &name).await?;
        Ok(scale_of(r, &obj))
    }

    /// `PUT`/`PATCH …/scale`: sets `spec.replicas`.
    pub async fn update_scale(
        &self,
        t: &Target,
        body: Option<Value>,
        patch: Option<(&str, &[u8])>,
    ) -> Result<Value, ApiError> {
        let r = t.resource;
        let wanted = match &body {
            Some(b) => parse_rv(meta_str(b, "resourceVersion"))?,
            None => None,
        };
        let plain = Target {
            subresource: None,
            ..t.clone()
        };
        let updated = self
            .modify(&plain, wanted, |current| {
                let scale = scale_of(r, current);
                let new_scale = match (&body, patch) {
                    (Some(b), _) => b.clone(),
                    (None, Some((ct, p))) => {
                        let ty = PatchType::from_content_type(ct)
                            .ok_or_else(|| ApiError::unsupported_media_type(format!("unsupported patch type {ct}")))?;
                        apply_patch(ty, &scale, p, "autoscaling", "Scale")
                            .map_err(|e| ApiError::bad_request(e.to_string()))?
                    }
                    (None, None) => scale,
                };
                let replicas = new_scale
                    .pointer("/spec/replicas")
                    .and_then(Value::as_i64)
                    .ok_or_else(|| ApiError::bad_request("Scale.spec.replicas is required and must be an integer"))?;
                if replicas < 0 {
                    let cause = validation::Cause::new(
                        "spec.replicas",
                        validation::CauseType::FieldValueInvalid,
                        format!("Invalid value: {replicas}: must be greater than or equal to 0"),
                    );
                    return Err(ApiError::invalid(r, t.name.as_deref().unwrap_or_default(), &[cause]));
                }
                let mut next = current.clone();
                next["spec"]["replicas"] = json!(replicas);
                Ok(next)
            })
            .await?;
        Ok(scale_of(r, &updated))
    }

    /// `POST pods/{name}/binding`: assigns a pod to a node, once.
    pub async fn bind(&self, t: &Target, binding: Value) -> Result<(), ApiError> {
        let node = binding
            .pointer("/target/name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| ApiError::bad_request("Binding.target.name is required"))?
            .to_string();
        let pod = t.name.clone().unwrap_or_default();
        let plain = Target {
            subresource: None,
            ..t.clone()
        };
        self.modify(&plain, None, |current| {
            if let Some(bound) = current
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
            {
                return Err(ApiError::conflict_msg(
                    t.resource,
                    &pod,
                    &format!("pod {pod} is already assigned to node \"{bound}\""),
                ));
            }
            if current
                .pointer("/metadata/deletionTimestamp")
                .is_some_and(|v| !v.is_null())
            {
                return Err(ApiError::conflict_msg(
                    t.resource,
                    &pod,
                    "pod is being deleted, cannot be assigned to a host",
                ));
            }
            let mut next = current.clone();
            next["spec"]["nodeName"] = json!(node);
            set_condition(&mut next, "PodScheduled", "True", None, None);
            Ok(next)
        })
        .await?;
        Ok(())
    }

    /// Reads a raw key-value (for watch's initial state and tests).
    pub async fn range_raw(&self, prefix: &str, consistency: Consistency) -> Result<(Vec<KeyValue>, u64), ApiError> {
        let page = self
            .store
            .range(
                &RangeRequest {
                    prefix: prefix.to_string(),
                    ..Default::default()
                },
                consistency,
            )
            .await?;
        Ok((page.kvs, page.revision))
    }
}

/// The ops that delete an object: the object itself, and for a Service the address claims
/// it holds.
fn deletion_ops(r: &Resource, key: &str, rev: u64, obj: &Value) -> Vec<Op> {
    let mut ops = vec![Op::delete_if(key.to_string(), rev)];
    if r.kind == "Service" {
        ops.extend(services::held_keys(obj).into_iter().map(Op::delete));
    }
    ops
}

/// Checks the body's apiVersion and kind against the endpoint, filling them when missing.
fn check_type(r: &Resource, obj: &mut Value) -> Result<(), ApiError> {
    let Some(o) = obj.as_object_mut() else {
        return Err(ApiError::bad_request("the request body must be a JSON object"));
    };
    match o.get("kind").and_then(Value::as_str) {
        Some(k) if k != r.kind => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                r.kind
            )))
        }
        _ => {}
    }
    match o.get("apiVersion").and_then(Value::as_str) {
        Some(v) if v != r.api_version() => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({})",
                r.api_version()
            )))
        }
        _ => {}
    }
    // Kubernetes writes apiVersion and kind first.
    let mut ordered = serde_json::Map::new();
    ordered.insert("apiVersion".into(), json!(r.api_version()));
    ordered.insert("kind".into(), json!(r.kind));
    for (k, v) in std::mem::take(o) {
        if k != "apiVersion" && k != "kind" {
            ordered.insert(k, v);
        }
    }
    *o = ordered;
    Ok(())
}

/// Combines the current object with a replacement for the main resource or `status`.
fn merge_update(r: &Resource, sub: Option<&str>, current: &Value, mut body: Value) -> Value {
    match sub {
        Some("status") => {
            // Only status changes through /status.
            let mut next = current.clone();
            next["status"] = body.get("status").cloned().unwrap_or(json!({}));
            next
        }
        Some("finalize") => {
            let mut next = current.clone();
            next["spec"]["finalizers"] = body.pointer("/spec/finalizers").cloned().unwrap_or(json!([]));
            next
        }
        _ => {
            // The main resource cannot change status where status is a subresource.
            if r.has_subresource("status") {
                match current.get("status") {
                    Some(s) => body["status"] = s.clone(),
                    None => {
                        if let Some(o) = body.as_object_mut() {
                            o.remove("status");
                        }
                    }
                }
            }
            body
        }
    }
}

/// Keeps what clients may not change: identity, creation, deletion state; bumps
/// generation when the spec changed.
fn preserve_server_fields(r: &Resource, current: &Value, next: &mut Value) {
    let cm = current.get("metadata").cloned().unwrap_or(json!({}));
    let spec_changed = current.get("spec") != next.get("spec");
    let m = meta_mut(next);
    for field in [
        "uid",
        "creationTimestamp",
        "namespace",
        "name",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        match cm.get(field) {
            Some(v) => {
                m.insert(field.into(), v.clone());
            }
            None => {
                m.remove(field);
            }
        }
    }
    m.remove("resourceVersion");
    if r.has_spec {
        let generation = cm.get("generation").and_then(Value::as_i64).unwrap_or(1);
        m.insert(
            "generation".into(),
            json!(if spec_changed { generation + 1 } else { generation }),
        );
    }
    if r.kind == "Service" {
        // Addresses are allocated on create and kept: ClusterIPs are immutable, and a port
        // keeps its NodePort.
        for f in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
            if let Some(v) = current.pointer(&format!("/spec/{f}")) {
                next["spec"][f] = v.clone();
            }
        }
        let old_ports = current
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if let Some(ports) = next.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
            for p in ports.iter_mut() {
                let same = old_ports
                    .iter()
                    .find(|o| o.get("port") == p.get("port") && o.get("protocol") == p.get("protocol"));
                if let Some(np) = same.and_then(|o| o.get("nodePort")) {
                    p["nodePort"] = np.clone();
                }
            }
        }
    }
}

/// Finalizers still holding an object: `metadata.finalizers`, and for namespaces also
/// `spec.finalizers`.
fn pending_finalizers(r: &Resource, obj: &Value) -> Vec<String> {
    let mut f = object::finalizers(obj);
    if r.kind == "Namespace" {
        if let Some(a) = obj.pointer("/spec/finalizers").and_then(Value::as_array) {
            f.extend(a.iter().filter_map(|v| v.as_str().map(str::to_string)));
        }
    }
    f
}

fn check_preconditions(r: &Resource, name: &str, obj: &Value, rev: u64, pre: Option<&Value>) -> Result<(), ApiError> {
    let Some(pre) = pre else { return Ok(()) };
    if let Some(uid) = pre.get("uid").and_then(Value::as_str) {
        let actual = meta_str(obj, "uid").unwrap_or_default();
        if uid != actual {
            return Err(ApiError::conflict_msg(
                r,
                name,
                &format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"),
            ));
        }
    }
    if let Some(rv) = pre.get("resourceVersion").and_then(Value::as_str) {
        if rv != rev.to_string() {
            return Err(ApiError::conflict_msg(
                r,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {rev}"
                ),
            ));
        }
    }
    Ok(())
}

/// The autoscaling/v1 Scale of a Deployment, ReplicaSet or ReplicationController.
fn scale_of(r: &Resource, obj: &Value) -> Value {
    let selector = match r.kind {
        "ReplicationController" => obj
            .pointer("/spec/selector")
            .and_then(|s| LabelSelector::from_map(s).ok())
            .map(|s| s.to_string()),
        _ => obj
            .pointer("/spec/selector")
            .and_then(|s| LabelSelector::from_label_selector(s).ok())
            .map(|s| s.to_string()),
    };
    let m = obj.get("metadata").cloned().unwrap_or(json!({}));
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m.get("name"),
            "namespace": m.get("namespace"),
            "uid": m.get("uid"),
            "resourceVersion": m.get("resourceVersion"),
            "creationTimestamp": m.get("creationTimestamp"),
        },
        "spec": {"replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(0))},
        "status": {
            "replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector.unwrap_or_default(),
        },
    })
}

/// Sets (or replaces) a condition in `status.conditions`.
pub fn set_condition(obj: &mut Value, kind: &str, status: &str, reason: Option<&str>, message: Option<&str>) {
    if !obj.get("status").is_some_and(Value::is_object) {
        obj["status"] = json!({});
    }
    let conditions = obj["status"]
        .as_object_mut()
        .expect("status was just made an object")
        .entry("conditions")
        .or_insert_with(|| json!([]));
    if !conditions.is_array() {
        *conditions = json!([]);
    }
    let list = conditions.as_array_mut().expect("conditions was just made an array");
    let mut c = json!({"type": kind, "status": status, "lastProbeTime": null, "lastTransitionTime": object::now()});
    if let Some(r) = reason {
        c["reason"] = json!(r);
    }
    if let Some(m) = message {
        c["message"] = json!(m);
    }
    match list
        .iter_mut()
        .find(|x| x.get("type").and_then(Value::as_str) == Some(kind))
    {
        Some(existing) => {
            if existing.get("status").and_then(Value::as_str) == Some(status) {
                c["lastTransitionTime"] = existing.get("lastTransitionTime").cloned().unwrap_or(json!(null));
            }
            *existing = c;
        }
        None => list.push(c),
    }
}
