//! The garbage collector: objects whose owners are all gone are deleted (background
//! propagation); an owner deleted with `propagationPolicy: Foreground` keeps its
//! `foregroundDeletion` finalizer until its dependents are gone; one deleted with `Orphan`
//! keeps its `orphan` finalizer until its dependents no longer point at it.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::client::LocalClient;
use super::informer::{key_of, Change, Informer};
use super::queue::WorkQueue;
use crate::apiserver::object;
use crate::apiserver::registry::{self, Resource};
use crate::apiserver::status::ApiError;

/// Kinds whose objects have owners.
const DEPENDENTS: &[(&str, &str)] = &[
    ("", "pods"),
    ("apps", "replicasets"),
    ("discovery.k8s.io", "endpointslices"),
    ("batch", "jobs"),
];
/// Kinds that own objects.
const OWNERS: &[(&str, &str)] = &[
    ("apps", "deployments"),
    ("apps", "replicasets"),
    ("", "replicationcontrollers"),
    ("", "services"),
    ("batch", "jobs"),
];

struct Gc {
    client: LocalClient,
    dependents: Vec<Informer>,
    owners: Vec<Informer>,
    queue: WorkQueue,
}

pub struct GarbageCollector;

fn owner_refs(obj: &Value) -> Vec<Value> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn group_of(api_version: &str) -> &str {
    api_version.split_once('/').map_or("", |(g, _)| g)
}

impl GarbageCollector {
    pub fn start(tasks: &mut tokio::task::JoinSet<()>, client: LocalClient, shared: &[Informer]) {
        let pick = |tasks: &mut tokio::task::JoinSet<()>, (g, p): (&str, &str)| {
            shared
                .iter()
                .find(|i| i.resource().group == g && i.resource().plural == p)
                .cloned()
                .unwrap_or_else(|| Informer::start(tasks, client.clone(), g, p))
        };
        let dependents: Vec<Informer> = DEPENDENTS.iter().map(|d| pick(tasks, *d)).collect();
        let owners: Vec<Informer> = OWNERS.iter().map(|o| pick(tasks, *o)).collect();
        let gc = Arc::new(Gc {
            client,
            dependents,
            owners,
            queue: WorkQueue::new(),
        });
        for (i, inf) in gc.dependents.iter().enumerate() {
            let mut rx = inf.subscribe();
            let g = gc.clone();
            tasks.spawn(async move {
                while let Some(ch) = rx.recv().await {
                    if let Some(o) = &ch.new {
                        if !owner_refs(o).is_empty() {
                            g.queue.add(format!("dep/{i}/{}", key_of(o)));
                        }
                    }
                }
            });
        }
        for (i, inf) in gc.owners.iter().enumerate() {
            let mut rx = inf.subscribe();
            let g = gc.clone();
            tasks.spawn(async move {
                while let Some(ch) = rx.recv().await {
                    g.owner_changed(i, &ch);
                }
            });
        }
        tasks.spawn(async move {
            for i in gc.dependents.iter().chain(gc.owners.iter()) {
                i.wait_synced().await;
            }
            loop {
                let key = gc.queue.get().await;
                match gc.reconcile(&key).await {
                    Ok(()) => gc.queue.forget(&key),
                    Err(e) => {
                        tracing::debug!(%key, error = %e.message, "garbage collection failed; backing off");
                        gc.queue.add_rate_limited(&key);
                    }
                }
                gc.queue.done(&key);
            }
        });
    }
}

impl Gc {
    /// Dependents that point at `uid`, as (dependent informer index, key).
    fn dependents_of(&self, uid: &str) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        for (i, inf) in self.dependents.iter().enumerate() {
            for o in inf.list(None) {
                if owner_refs(&o).iter().any(|r| r["uid"] == uid) {
                    out.push((i, key_of(&o)));
                }
            }
        }
        out
    }

    fn owner_changed(&self, i: usize, ch: &Change) {
        match (&ch.old, &ch.new) {
            (Some(old), None) => {
                // An owner is gone: its dependents may now be garbage.
                let uid = object::meta_str(old, "uid").unwrap_or_default();
                for (d, key) in self.dependents_of(uid) {
                    self.queue.add(format!("dep/{d}/{key}"));
                }
            }
            (_, Some(new)) => {
                let f = object::finalizers(new);
                if f.iter().any(|x| x == "foregroundDeletion" || x == "orphan") {
                    self.queue.add(format!("owner/{i}/{}", key_of(new)));
                }
            }
            _ => {}
        }
    }

    async fn reconcile(&self, key: &str) -> Result<(), ApiError> {
        let mut parts = key.splitn(3, '/');
        let (what, idx, rest) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        let idx: usize = idx.parse().unwrap_or(usize::MAX);
        match what {
            "dep" => match self.dependents.get(idx) {
                Some(inf) => self.check_dependent(inf, rest).await,
                None => Ok(()),
            },
            "owner" => match self.owners.get(idx) {
                Some(inf) => self.finish_owner(idx, inf, rest).await,
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }

    /// Whether the owner a reference names still exists (same uid), and whether it is being
    /// deleted in the foreground.
    async fn owner_state(&self, ns: Option<&str>, r: &Value) -> Result<(bool, bool), ApiError> {
        let api_version = r["apiVersion"].as_str().unwrap_or("");
        let Some(res) = registry::find_kind(group_of(api_version), r["kind"].as_str().unwrap_or("")) else {
            // An owner of a kind this server does not serve: leave the dependent alone.
            return Ok((true, false));
        };
        let ns = if res.namespaced { ns } else { None };
        match self.client.get_in(res, ns, r["name"].as_str().unwrap_or("")).await {
            Ok(owner) if object::meta_str(&owner, "uid") == r["uid"].as_str() => {
                let foreground = object::finalizers(&owner).iter().any(|f| f == "foregroundDeletion")
                    && owner
                        .pointer("/metadata/deletionTimestamp")
                        .is_some_and(|v| !v.is_null());
                Ok((true, foreground))
            }
            Ok(_) => Ok((false, false)),
            Err(e) if e.code == 404 => Ok((false, false)),
            Err(e) => Err(e),
        }
    }

    async fn check_dependent(&self, inf: &Informer, key: &str) -> Result<(), ApiError> {
        let Some(obj) = inf.get(key) else { return Ok(()) };
        let refs = owner_refs(&obj);
        if refs.is_empty() || obj.pointer("/metadata/deletionTimestamp").is_some_and(|v| !v.is_null()) {
            return Ok(());
        }
        let ns = object::meta_str(&obj, "namespace");
        // Garbage once no owner is alive, counting an owner deleted in the foreground as gone.
        let mut any_alive = false;
        for r in &refs {
            let (alive, foreground) = self.owner_state(ns, r).await?;
            any_alive |= alive && !foreground;
        }
        if !any_alive {
            let res = inf.resource();
            // Dependents go in the background: an owner waiting in the foreground only needs
            // them gone, and their own dependents follow them.
            match self
                .client
                .delete_in(res, ns, object::name(&obj).unwrap_or_default(), false)
                .await
            {
                Ok(_) => {}
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Completes a foreground or orphan deletion of an owner.
    async fn finish_owner(&self, idx: usize, inf: &Informer, key: &str) -> Result<(), ApiError> {
        let Some(owner) = inf.get(key) else { return Ok(()) };
        if owner.pointer("/metadata/deletionTimestamp").is_none_or(Value::is_null) {
            return Ok(());
        }
        let uid = object::meta_str(&owner, "uid").unwrap_or_default().to_string();
        let finalizers = object::finalizers(&owner);
        let deps = self.dependents_of(&uid);
        if finalizers.iter().any(|f| f == "orphan") {
            for (d, dkey) in &deps {
                let inf = &self.dependents[*d];
                let Some(dep) = inf.get(dkey) else { continue };
                let mut next = (*dep).clone();
                let refs: Vec<Value> = owner_refs(&dep)
                    .into_iter()
                    .filter(|r| r["uid"] != uid.as_str())
                    .collect();
                object::meta_mut(&mut next).insert("ownerReferences".into(), json!(refs));
                self.client.update(inf.resource(), next).await?;
            }
            return self.drop_finalizer(inf.resource(), &owner, "orphan").await;
        }
        if finalizers.iter().any(|f| f == "foregroundDeletion") {
            if deps.is_empty() {
                return self.drop_finalizer(inf.resource(), &owner, "foregroundDeletion").await;
            }
            for (d, dkey) in &deps {
                self.queue.add(format!("dep/{d}/{dkey}"));
            }
            // Check again once the dependents have had time to go.
            self.queue
                .add_after(format!("owner/{idx}/{key}"), Duration::from_millis(200));
        }
        Ok(())
    }

    async fn drop_finalizer(&self, r: &'static Resource, owner: &Value, f: &str) -> Result<(), ApiError> {
        let mut next = owner.clone();
        let rest: Vec<String> = object::finalizers(owner).into_iter().filter(|x| x != f).collect();
        object::meta_mut(&mut next).insert("finalizers".into(), json!(rest));
        match self.client.update(r, next).await {
            Ok(_) => Ok(()),
            Err(e) if e.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }
}
