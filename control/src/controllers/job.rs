//! The Job controller: runs pods until `completions` succeed, at most `parallelism` at a
//! time; counts failures (failed pods, and container restarts under `OnFailure`) against
//! `backoffLimit`, recreating failed pods after an exponential back-off; fails the Job at
//! `activeDeadlineSeconds`. Status and conditions as batch/v1 writes them.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::client::LocalClient;
use super::events;
use super::informer::{key_of, Informer};
use super::queue::WorkQueue;
use crate::apiserver::object;
use crate::apiserver::status::ApiError;

struct Controller {
    client: LocalClient,
    jobs: Informer,
    pods: Informer,
    queue: WorkQueue,
    backoff_base: Duration,
}

pub struct JobController;

impl JobController {
    pub fn start(tasks: &mut tokio::task::JoinSet<()>, client: LocalClient, pods: Informer, backoff_base: Duration) {
        let jobs = Informer::start(tasks, client.clone(), "batch", "jobs");
        let c = Arc::new(Controller {
            client,
            jobs,
            pods,
            queue: WorkQueue::new(),
            backoff_base,
        });
        let mut j = c.jobs.subscribe();
        let mut p = c.pods.subscribe();
        let c1 = c.clone();
        tasks.spawn(async move {
            while let Some(ch) = j.recv().await {
                if let Some(o) = ch.new.as_ref().or(ch.old.as_ref()) {
                    c1.queue.add(key_of(o));
                }
            }
        });
        let c2 = c.clone();
        tasks.spawn(async move {
            while let Some(ch) = p.recv().await {
                let Some(pod) = ch.new.as_ref().or(ch.old.as_ref()) else {
                    continue;
                };
                if let (Some(job), Some(ns)) = (owner_job(pod), object::meta_str(pod, "namespace")) {
                    c2.queue.add(format!("{ns}/{job}"));
                }
            }
        });
        super::spawn_workers(tasks, c);
    }
}

fn owner_job(pod: &Value) -> Option<&str> {
    pod.pointer("/metadata/ownerReferences")?
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true && r["kind"] == "Job")
        .and_then(|r| r["name"].as_str())
}

fn phase(pod: &Value) -> &str {
    pod.pointer("/status/phase").and_then(Value::as_str).unwrap_or("")
}

fn has_condition(job: &Value, kind: &str) -> bool {
    job.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| c.iter().any(|c| c["type"] == kind && c["status"] == "True"))
}

impl super::Reconcile for Controller {
    const NAME: &'static str = "job";

    fn queue(&self) -> &WorkQueue {
        &self.queue
    }

    fn informers(&self) -> Vec<&Informer> {
        vec![&self.jobs, &self.pods]
    }

    fn reconcile<'a>(&'a self, key: &'a str) -> futures::future::BoxFuture<'a, Result<(), ApiError>> {
        Box::pin(Controller::reconcile(self, key))
    }
}

impl Controller {
    async fn reconcile(&self, key: &str) -> Result<(), ApiError> {
        let Some(job) = self.jobs.get(key) else { return Ok(()) };
        if job.pointer("/metadata/deletionTimestamp").is_some_and(|v| !v.is_null()) {
            return Ok(());
        }
        let ns = object::meta_str(&job, "namespace").unwrap_or("default").to_string();
        let uid = object::meta_str(&job, "uid").unwrap_or_default().to_string();
        let pods: Vec<Arc<Value>> = self
            .pods
            .list(Some(&ns))
            .into_iter()
            .filter(|p| {
                p.pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .is_some_and(|r| r.iter().any(|r| r["uid"] == uid.as_str() && r["controller"] == true))
            })
            .collect();
        let terminating = |p: &Value| p.pointer("/metadata/deletionTimestamp").is_some_and(|v| !v.is_null());
        let succeeded = pods.iter().filter(|p| phase(p) == "Succeeded").count() as i64;
        let failed_pods = pods.iter().filter(|p| phase(p) == "Failed").count() as i64;
        let restarts: i64 = pods
            .iter()
            .flat_map(|p| {
                p.pointer("/status/containerStatuses")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            })
            .map(|c| c["restartCount"].as_i64().unwrap_or(0))
            .sum();
        let failures = failed_pods + restarts;
        let active: Vec<&Arc<Value>> = pods
            .iter()
            .filter(|p| !matches!(phase(p), "Succeeded" | "Failed") && !terminating(p))
            .collect();
        let ready = active
            .iter()
            .filter(|p| {
                p.pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
            })
            .count();
        let completions = job.pointer("/spec/completions").and_then(Value::as_i64).unwrap_or(1);
        let parallelism = job.pointer("/spec/parallelism").and_then(Value::as_i64).unwrap_or(1);
        let backoff_limit = job.pointer("/spec/backoffLimit").and_then(Value::as_i64).unwrap_or(6);
        let now = object::now();
        let start = job
            .pointer("/status/startTime")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| now.clone());
        let finished = has_condition(&job, "Complete") || has_condition(&job, "Failed");
        let mut conditions: Vec<Value> = job
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut completion_time = job.pointer("/status/completionTime").cloned();
        let mut terminal = None;
        if !finished {
            let deadline = job.pointer("/spec/activeDeadlineSeconds").and_then(Value::as_i64);
            let elapsed = DateTime::parse_from_rfc3339(&start)
                .map(|t| (Utc::now() - t.with_timezone(&Utc)).num_seconds())
                .unwrap_or(0);
            if succeeded >= completions {
                terminal = Some(("Complete", "", "".to_string()));
                completion_time = Some(json!(now));
            } else if failures > backoff_limit {
                terminal = Some((
                    "Failed",
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit".to_string(),
                ));
            } else if deadline.is_some_and(|d| elapsed >= d) {
                terminal = Some((
                    "Failed",
                    "DeadlineExceeded",
                    "Job was active longer than specified deadline".to_string(),
                ));
            } else if let Some(d) = deadline {
                // Nothing else may happen before the deadline: look again when it passes.
                let left = Duration::from_secs((d - elapsed).max(0) as u64) + Duration::from_millis(10);
                self.queue.add_after(key.to_string(), left);
            }
        }
        if let Some((kind, reason, message)) = &terminal {
            match *kind {
                "Complete" => events::record(
                    &self.client,
                    "job-controller",
                    &job,
                    "Normal",
                    "Completed",
                    "Job completed".into(),
                ),
                _ => events::record(&self.client, "job-controller", &job, "Warning", reason, message.clone()),
            }
            let mut c = json!({"type": kind, "status": "True", "lastProbeTime": now, "lastTransitionTime": now});
            if !reason.is_empty() {
                c["reason"] = json!(reason);
                c["message"] = json!(message);
            }
            if *kind == "Complete" {
                conditions.push(json!({"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached",
                    "message": "Reached expected number of succeeded pods", "lastProbeTime": now, "lastTransitionTime": now}));
            } else {
                conditions.push(
                    json!({"type": "FailureTarget", "status": "True", "reason": reason, "message": message,
                    "lastProbeTime": now, "lastTransitionTime": now}),
                );
            }
            conditions.push(c);
        }
        let done = finished || terminal.is_some();
        let suspended = job.pointer("/spec/suspend") == Some(&json!(true));
        let mut active_count = active.len() as i64;
        if done || suspended {
            // A finished (or suspended) Job runs nothing.
            for p in &active {
                self.stop_pod(&ns, p).await;
            }
            active_count = 0;
        } else {
            let want = parallelism.min(completions - succeeded).max(0);
            if active_count < want {
                // Failed pods come back after a back-off: base doubling per failure, at most 6 min.
                let last_failure = pods
                    .iter()
                    .filter(|p| phase(p) == "Failed")
                    .filter_map(|p| {
                        p.pointer("/status/startTime")
                            .or(p.pointer("/metadata/creationTimestamp"))
                            .and_then(Value::as_str)
                    })
                    .filter_map(|t| DateTime::parse_from_rfc3339(t).ok())
                    .max();
                let delay = if failed_pods > 0 {
                    self.backoff_base
                        .saturating_mul(1 << (failed_pods - 1).min(10))
                        .min(Duration::from_secs(360))
                } else {
                    Duration::ZERO
                };
                let waited = last_failure
                    .map(|t| (Utc::now() - t.with_timezone(&Utc)).to_std().unwrap_or_default())
                    .unwrap_or(Duration::MAX);
                if waited < delay {
                    self.queue.add_after(key.to_string(), delay - waited);
                } else {
                    while active_count < want {
                        self.create_pod(&job, &ns).await?;
                        active_count += 1;
                    }
                }
            } else if active_count > want {
                for p in active.iter().rev().take((active_count - want) as usize) {
                    self.stop_pod(&ns, p).await;
                    active_count -= 1;
                }
            }
        }
        let mut status = json!({
            "startTime": start,
            "active": active_count,
            "ready": ready,
            "succeeded": succeeded,
            "failed": failed_pods,
            "conditions": conditions,
        });
        if let Some(t) = completion_time {
            status["completionTime"] = t;
        }
        if job.get("status") == Some(&status) {
            return Ok(());
        }
        let mut next = (*job).clone();
        next["status"] = status;
        self.client
            .update_status(LocalClient::resource("batch", "jobs"), next)
            .await
            .map(|_| ())
    }

    /// Deletes one of the Job's pods; a pod already gone is no error, and any other
    /// failure shows up as the pod still being there at the next reconcile.
    async fn stop_pod(&self, ns: &str, pod: &Value) {
        let pods = LocalClient::resource("", "pods");
        let _ = self
            .client
            .delete_in(pods, Some(ns), object::name(pod).unwrap_or_default(), false)
            .await;
    }

    async fn create_pod(&self, job: &Value, ns: &str) -> Result<(), ApiError> {
        let name = object::name(job).unwrap_or_default();
        let uid = object::meta_str(job, "uid").unwrap_or_default();
        let template = job.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let mut labels = template.pointer("/metadata/labels").cloned().unwrap_or(json!({}));
        labels["batch.kubernetes.io/job-name"] = json!(name);
        labels["job-name"] = json!(name);
        labels["batch.kubernetes.io/controller-uid"] = json!(uid);
        labels["controller-uid"] = json!(uid);
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"generateName": format!("{name}-"), "namespace": ns, "labels": labels,
                "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": uid, "controller": true, "blockOwnerDeletion": true}]},
            "spec": template.get("spec").cloned().unwrap_or(json!({}))});
        self.client
            .create(LocalClient::resource("", "pods"), ns, pod)
            .await
            .map(|_| ())
    }
}
