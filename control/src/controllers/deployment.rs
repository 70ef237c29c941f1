//! The Deployment controller: one ReplicaSet per pod template (named and labelled with the
//! template's hash), rolled with RollingUpdate (maxSurge / maxUnavailable, numbers or
//! percentages) or Recreate; revision history trimmed to revisionHistoryLimit; paused
//! deployments left alone; status with the Available and Progressing conditions, including
//! ProgressDeadlineExceeded. `kubectl rollout status` and `kubectl rollout undo` read and
//! write exactly these fields.
//!
//! A rollout never takes the available pods below `replicas - maxUnavailable`: old
//! ReplicaSets are only scaled down by as many pods as are available above that floor.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::client::LocalClient;
use super::events;
use super::informer::{key_of, Informer};
use super::queue::WorkQueue;
use crate::apiserver::object;
use crate::apiserver::status::ApiError;

const HASH_LABEL: &str = "pod-template-hash";
const REVISION: &str = "deployment.kubernetes.io/revision";

struct Controller {
    client: LocalClient,
    deployments: Informer,
    sets: Informer,
    queue: WorkQueue,
}

pub struct DeploymentController;

impl DeploymentController {
    pub fn start(tasks: &mut tokio::task::JoinSet<()>, client: LocalClient, sets: Informer) {
        let deployments = Informer::start(tasks, client.clone(), "apps", "deployments");
        let c = Arc::new(Controller {
            client,
            deployments,
            sets,
            queue: WorkQueue::new(),
        });
        let mut d_changes = c.deployments.subscribe();
        let mut s_changes = c.sets.subscribe();
        let c1 = c.clone();
        tasks.spawn(async move {
            while let Some(ch) = d_changes.recv().await {
                if let Some(o) = ch.new.as_ref().or(ch.old.as_ref()) {
                    c1.queue.add(key_of(o));
                }
            }
        });
        let c2 = c.clone();
        tasks.spawn(async move {
            while let Some(ch) = s_changes.recv().await {
                let Some(rs) = ch.new.as_ref().or(ch.old.as_ref()) else {
                    continue;
                };
                let owner = rs
                    .pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .and_then(|refs| {
                        refs.iter()
                            .find(|r| r["controller"] == true && r["kind"] == "Deployment")
                    })
                    .and_then(|r| r["name"].as_str());
                if let (Some(name), Some(ns)) = (owner, object::meta_str(rs, "namespace")) {
                    c2.queue.add(format!("{ns}/{name}"));
                }
            }
        });
        super::spawn_workers(tasks, c);
    }
}

/// A stable short hash of a pod template (FNV-1a over its JSON), in Kubernetes' alphabet.
pub fn template_hash(template: &Value) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in serde_json::to_vec(template).unwrap_or_default() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut out = String::new();
    let mut v = h;
    for _ in 0..10 {
        out.push(ALPHABET[(v % ALPHABET.len() as u32) as usize] as char);
        v /= ALPHABET.len() as u32;
        if v == 0 {
            break;
        }
    }
    out
}

/// Resolves maxSurge / maxUnavailable: a number, or a percentage of `replicas` (surge
/// rounds up, unavailable down). Both zero would deadlock, so unavailable becomes 1.
pub fn resolve_rolling(replicas: i64, surge: &Value, unavailable: &Value) -> (i64, i64) {
    let value = |v: &Value, up: bool| -> i64 {
        match v {
            Value::Number(n) => n.as_i64().unwrap_or(0),
            Value::String(s) => match s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) {
                Some(p) if up => (replicas * p + 99) / 100,
                Some(p) => replicas * p / 100,
                None => s.parse().unwrap_or(0),
            },
            _ => 0,
        }
    };
    let (s, u) = (value(surge, true), value(unavailable, false));
    if s == 0 && u == 0 {
        (0, 1)
    } else {
        (s, u)
    }
}

fn replicas_of(rs: &Value) -> i64 {
    rs.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0)
}

fn status_of(rs: &Value, field: &str) -> i64 {
    rs.pointer(&format!("/status/{field}"))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

fn revision_of(rs: &Value) -> i64 {
    rs.pointer(&format!("/metadata/annotations/{}", REVISION.replace('/', "~1")))
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The template of a ReplicaSet without the hash label, to compare with a Deployment's.
fn unhashed_template(rs: &Value) -> Value {
    let mut t = rs.pointer("/spec/template").cloned().unwrap_or(json!({}));
    if let Some(labels) = t.pointer_mut("/metadata/labels").and_then(Value::as_object_mut) {
        labels.remove(HASH_LABEL);
    }
    t
}

impl super::Reconcile for Controller {
    const NAME: &'static str = "deployment";

    fn queue(&self) -> &WorkQueue {
        &self.queue
    }

    fn informers(&self) -> Vec<&Informer> {
        vec![&self.deployments, &self.sets]
    }

    fn reconcile<'a>(&'a self, key: &'a str) -> futures::future::BoxFuture<'a, Result<(), ApiError>> {
        Box::pin(Controller::reconcile(self, key))
    }
}

impl Controller {
    async fn scale(&self, rs: &Value, to: i64) -> Result<(), ApiError> {
        let from = replicas_of(rs);
        if from == to {
            return Ok(());
        }
        let owner = rs
            .pointer("/metadata/ownerReferences/0/name")
            .and_then(Value::as_str)
            .and_then(|n| {
                self.deployments.get(&format!(
                    "{}/{n}",
                    object::meta_str(rs, "namespace").unwrap_or("default")
                ))
            });
        if let Some(d) = owner {
            let verb = if to > from { "up" } else { "down" };
            let name = object::name(rs).unwrap_or_default();
            events::record(
                &self.client,
                "deployment-controller",
                &d,
                "Normal",
                "ScalingReplicaSet",
                format!("Scaled {verb} replica set {name} from {from} to {to}"),
            );
        }
        let mut next = rs.clone();
        next["spec"]["replicas"] = json!(to);
        self.client
            .update(LocalClient::resource("apps", "replicasets"), next)
            .await
            .map(|_| ())
    }

    async fn reconcile(&self, key: &str) -> Result<(), ApiError> {
        let Some(d) = self.deployments.get(key) else {
            return Ok(());
        };
        if d.pointer("/metadata/deletionTimestamp").is_some_and(|v| !v.is_null()) {
            return Ok(());
        }
        let rs_r = LocalClient::resource("apps", "replicasets");
        let ns = object::meta_str(&d, "namespace").unwrap_or("default").to_string();
        let name = object::name(&d).unwrap_or_default().to_string();
        let uid = object::meta_str(&d, "uid").unwrap_or_default().to_string();
        let replicas = d.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
        let template = d.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let mut sets: Vec<Value> = self
            .sets
            .list(Some(&ns))
            .into_iter()
            .filter(|rs| {
                rs.pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .is_some_and(|r| r.iter().any(|r| r["uid"] == uid.as_str() && r["controller"] == true))
            })
            .map(|rs| (*rs).clone())
            .collect();
        sets.sort_by_key(revision_of);
        let new_pos = sets.iter().position(|rs| unhashed_template(rs) == template);
        let paused = d.pointer("/spec/paused") == Some(&json!(true));
        let strategy = d
            .pointer("/spec/strategy/type")
            .and_then(Value::as_str)
            .unwrap_or("RollingUpdate")
            .to_string();
        let (surge, unavailable) = resolve_rolling(
            replicas,
            d.pointer("/spec/strategy/rollingUpdate/maxSurge")
                .unwrap_or(&json!("25%")),
            d.pointer("/spec/strategy/rollingUpdate/maxUnavailable")
                .unwrap_or(&json!("25%")),
        );
        let max_revision = sets.iter().map(revision_of).max().unwrap_or(0);
        let new_rs = match new_pos {
            Some(i) => sets.remove(i),
            None if paused => {
                // Paused: no rollout, but a scale still applies, to the newest set.
                if let Some(newest) = sets.last() {
                    let others: i64 = sets[..sets.len() - 1].iter().map(replicas_of).sum();
                    self.scale(newest, (replicas - others).max(0)).await?;
                }
                return self.sync_status(&d, None, &sets, replicas, unavailable, true).await;
            }
            None => {
                let hash = template_hash(&template);
                let mut t = template.clone();
                t["metadata"]["labels"][HASH_LABEL] = json!(hash);
                let mut selector = d.pointer("/spec/selector").cloned().unwrap_or(json!({}));
                selector["matchLabels"][HASH_LABEL] = json!(hash);
                // Recreate starts the new set at zero; a rolling update within the surge.
                let total: i64 = sets.iter().map(replicas_of).sum();
                let start = if strategy == "Recreate" {
                    0
                } else {
                    (replicas + surge - total).clamp(0, replicas)
                };
                let mut labels = template.pointer("/metadata/labels").cloned().unwrap_or(json!({}));
                labels[HASH_LABEL] = json!(hash);
                let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "metadata": {"name": format!("{name}-{hash}"), "namespace": ns, "labels": labels,
                        "annotations": {REVISION: (max_revision + 1).to_string(), "deployment.kubernetes.io/desired-replicas": replicas.to_string()},
                        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "uid": uid, "controller": true, "blockOwnerDeletion": true}]},
                    "spec": {"replicas": start, "selector": selector, "template": t}});
                match self.client.create(rs_r, &ns, rs).await {
                    Ok(created) => created,
                    Err(e) if e.code == 409 => return Err(e),
                    Err(e) => return Err(e),
                }
            }
        };
        // A rollback to an old template makes its set the newest revision again.
        if revision_of(&new_rs) < max_revision {
            let mut next = new_rs.clone();
            next["metadata"]["annotations"][REVISION] = json!((max_revision + 1).to_string());
            self.client.update(rs_r, next).await?;
            return Ok(());
        }
        let olds = sets;
        if paused {
            // No rollout while paused; a scale goes to the current set.
            let others: i64 = olds.iter().map(replicas_of).sum();
            self.scale(&new_rs, (replicas - others).max(0)).await?;
        } else {
            if strategy == "Recreate" {
                for old in &olds {
                    self.scale(old, 0).await?;
                }
                let old_pods: i64 = olds.iter().map(|o| status_of(o, "replicas")).sum();
                if old_pods == 0 {
                    self.scale(&new_rs, replicas).await?;
                }
            } else {
                self.roll(&new_rs, &olds, replicas, surge, unavailable).await?;
            }
            self.cleanup(&d, &olds).await?;
        }
        self.sync_status(&d, Some(&new_rs), &olds, replicas, unavailable, paused)
            .await
    }

    async fn roll(
        &self,
        new_rs: &Value,
        olds: &[Value],
        replicas: i64,
        surge: i64,
        unavailable: i64,
    ) -> Result<(), ApiError> {
        // Scale up the new set within the surge.
        let total: i64 = olds.iter().map(replicas_of).sum::<i64>() + replicas_of(new_rs);
        let new_replicas = replicas_of(new_rs);
        if new_replicas < replicas {
            let room = replicas + surge - total;
            if room > 0 {
                self.scale(new_rs, (new_replicas + room).min(replicas)).await?;
            }
        } else if new_replicas > replicas {
            self.scale(new_rs, replicas).await?;
        }
        // Scale down old sets, never below the availability floor. Availability is read from
        // the sets' status, so only act once every set's controller has caught up with its
        // spec: a stale status would count pods that are already gone.
        let settled = |rs: &Value| {
            rs.pointer("/status/observedGeneration") == rs.pointer("/metadata/generation")
                && status_of(rs, "replicas") == replicas_of(rs)
        };
        if !olds.iter().all(settled) || !settled(new_rs) {
            return Ok(());
        }
        // Unavailable old pods go first: removing them costs no availability.
        let available: i64 = olds.iter().map(|o| status_of(o, "availableReplicas")).sum::<i64>()
            + status_of(new_rs, "availableReplicas");
        let mut budget = (available - (replicas - unavailable)).max(0);
        for old in olds {
            let current = replicas_of(old);
            if current == 0 {
                continue;
            }
            let unhealthy = (current - status_of(old, "availableReplicas")).max(0);
            let take = (unhealthy + budget).min(current);
            if take > 0 {
                budget -= (take - unhealthy).max(0);
                self.scale(old, current - take).await?;
            }
        }
        Ok(())
    }

    /// Deletes old, empty sets beyond revisionHistoryLimit (oldest first).
    async fn cleanup(&self, d: &Value, olds: &[Value]) -> Result<(), ApiError> {
        let limit = d
            .pointer("/spec/revisionHistoryLimit")
            .and_then(Value::as_i64)
            .unwrap_or(10)
            .max(0) as usize;
        let empty: Vec<&Value> = olds
            .iter()
            .filter(|o| replicas_of(o) == 0 && status_of(o, "replicas") == 0)
            .collect();
        if empty.len() <= limit {
            return Ok(());
        }
        for old in &empty[..empty.len() - limit] {
            let ns = object::meta_str(old, "namespace").unwrap_or("default");
            match self
                .client
                .delete(
                    LocalClient::resource("apps", "replicasets"),
                    ns,
                    object::name(old).unwrap_or_default(),
                )
                .await
            {
                Ok(_) => {}
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn sync_status(
        &self,
        d: &Value,
        new_rs: Option<&Value>,
        olds: &[Value],
        replicas: i64,
        unavailable: i64,
        paused: bool,
    ) -> Result<(), ApiError> {
        let all: Vec<&Value> = olds.iter().chain(new_rs).collect();
        let sum = |f: &str| all.iter().map(|r| status_of(r, f)).sum::<i64>();
        let updated = new_rs.map_or(0, |r| status_of(r, "replicas"));
        let available = sum("availableReplicas");
        let total = sum("replicas");
        let now = object::now();
        let complete = new_rs.is_some() && updated == replicas && total == replicas && available == replicas;
        let previous: Vec<Value> = d
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let old_cond = |t: &str| previous.iter().find(|c| c["type"] == t).cloned();
        let cond = |t: &str, status: &str, reason: &str, message: String| {
            let prev = old_cond(t);
            let same = prev
                .as_ref()
                .is_some_and(|p| p["status"] == status && p["reason"] == reason);
            json!({
                "type": t, "status": status, "reason": reason, "message": message,
                "lastUpdateTime": if same { prev.as_ref().map_or(json!(now), |p| p["lastUpdateTime"].clone()) } else { json!(now) },
                "lastTransitionTime": if prev.as_ref().is_some_and(|p| p["status"] == status) { prev.as_ref().map_or(json!(now), |p| p["lastTransitionTime"].clone()) } else { json!(now) },
            })
        };
        let rs_name = new_rs.and_then(|r| object::name(r)).unwrap_or("").to_string();
        let available_ok = available >= replicas - unavailable;
        let available_cond = if available_ok {
            cond(
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.".into(),
            )
        } else {
            cond(
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.".into(),
            )
        };
        let deadline = d
            .pointer("/spec/progressDeadlineSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(600);
        let progressing = if paused {
            cond(
                "Progressing",
                "Unknown",
                "DeploymentPaused",
                "Deployment is paused".into(),
            )
        } else if complete {
            cond(
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
            )
        } else {
            // Progress is any change in what the rollout has reached; none for longer than
            // the deadline means it is stuck.
            let prev = old_cond("Progressing");
            let stuck = prev.as_ref().is_some_and(|p| {
                p["reason"] == "ReplicaSetUpdated"
                    && p["lastUpdateTime"]
                        .as_str()
                        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                        .is_some_and(|t| (Utc::now() - t.with_timezone(&Utc)).num_seconds() > deadline)
                    && d.pointer("/status/updatedReplicas").and_then(Value::as_i64) == Some(updated)
                    && d.pointer("/status/availableReplicas").and_then(Value::as_i64) == Some(available)
            }) || prev.as_ref().is_some_and(|p| p["reason"] == "ProgressDeadlineExceeded");
            if stuck {
                cond(
                    "Progressing",
                    "False",
                    "ProgressDeadlineExceeded",
                    format!("ReplicaSet \"{rs_name}\" has timed out progressing."),
                )
            } else {
                let c = cond(
                    "Progressing",
                    "True",
                    "ReplicaSetUpdated",
                    format!("ReplicaSet \"{rs_name}\" is progressing."),
                );
                // Record progress: the update time moves whenever counts change.
                let moved = d.pointer("/status/updatedReplicas").and_then(Value::as_i64) != Some(updated)
                    || d.pointer("/status/availableReplicas").and_then(Value::as_i64) != Some(available);
                let mut c = c;
                if moved {
                    c["lastUpdateTime"] = json!(now);
                }
                c
            }
        };
        let status = json!({
            "observedGeneration": d.pointer("/metadata/generation").cloned().unwrap_or(json!(1)),
            "replicas": total,
            "updatedReplicas": updated,
            "readyReplicas": sum("readyReplicas"),
            "availableReplicas": available,
            "unavailableReplicas": (replicas - available).max(0),
            "conditions": [available_cond, progressing],
        });
        let current = d.get("status").cloned().unwrap_or(json!({}));
        let strip = |s: &Value| {
            let mut s = s.clone();
            for c in s
                .get_mut("conditions")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if let Some(o) = c.as_object_mut() {
                    o.remove("lastUpdateTime");
                    o.remove("lastTransitionTime");
                }
            }
            s
        };
        let revision = new_rs.map(revision_of).unwrap_or(0);
        let annotated = d
            .pointer(&format!("/metadata/annotations/{}", REVISION.replace('/', "~1")))
            .and_then(Value::as_str)
            == Some(&revision.to_string());
        let dr = LocalClient::resource("apps", "deployments");
        if revision > 0 && !annotated {
            let mut next = d.clone();
            object::meta_mut(&mut next)
                .entry("annotations")
                .or_insert_with(|| json!({}));
            next["metadata"]["annotations"][REVISION] = json!(revision.to_string());
            self.client.update(dr, next).await?;
            return Ok(());
        }
        if strip(&current) == strip(&status) && current.get("conditions").is_some() {
            return Ok(());
        }
        let mut next = d.clone();
        next["status"] = status;
        self.client.update_status(dr, next).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surge_rounds_up_and_unavailable_down() {
        assert_eq!(resolve_rolling(10, &json!("25%"), &json!("25%")), (3, 2));
        assert_eq!(resolve_rolling(10, &json!(1), &json!(1)), (1, 1));
        assert_eq!(
            resolve_rolling(3, &json!("0%"), &json!("0%")),
            (0, 1),
            "both zero would never progress"
        );
        assert_eq!(resolve_rolling(4, &json!(0), &json!("50%")), (0, 2));
    }

    #[test]
    fn template_hashes_are_stable_and_differ_by_template() {
        let a = json!({"spec": {"containers": [{"image": "a"}]}});
        let b = json!({"spec": {"containers": [{"image": "b"}]}});
        assert_eq!(template_hash(&a), template_hash(&a));
        assert_ne!(template_hash(&a), template_hash(&b));
        assert!(template_hash(&a)
            .chars()
            .all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
    }
}
