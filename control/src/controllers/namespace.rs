//! The namespace controller: a namespace being deleted has everything in it deleted, then
//! its `kubernetes` finalizer removed, after which the API removes it. Creates in it are
//! refused by the API meanwhile.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::client::LocalClient;
use super::informer::{key_of, Informer};
use super::queue::WorkQueue;
use crate::apiserver::object;
use crate::apiserver::registry::RESOURCES;
use crate::apiserver::status::ApiError;

pub struct NamespaceController;

impl NamespaceController {
    pub fn start(tasks: &mut tokio::task::JoinSet<()>, client: LocalClient) {
        let namespaces = Informer::start(tasks, client.clone(), "", "namespaces");
        let queue = WorkQueue::new();
        let mut rx = namespaces.subscribe();
        let q = queue.clone();
        tasks.spawn(async move {
            while let Some(ch) = rx.recv().await {
                if let Some(ns) = &ch.new {
                    if ns.pointer("/metadata/deletionTimestamp").is_some_and(|v| !v.is_null()) {
                        q.add(key_of(ns));
                    }
                }
            }
        });
        let namespaces = Arc::new(namespaces);
        tasks.spawn(async move {
            namespaces.wait_synced().await;
            loop {
                let key = queue.get().await;
                match drain(&client, &namespaces, &key).await {
                    Ok(true) => queue.forget(&key),
                    Ok(false) => queue.add_after(key.clone(), Duration::from_millis(200)),
                    Err(e) => {
                        tracing::debug!(namespace = %key, error = %e.message, "namespace cleanup failed; backing off");
                        queue.add_rate_limited(&key);
                    }
                }
                queue.done(&key);
            }
        });
    }
}

/// Deletes what is left in the namespace; finalizes it when nothing is. Returns whether it
/// is done.
async fn drain(client: &LocalClient, namespaces: &Informer, name: &str) -> Result<bool, ApiError> {
    let Some(ns) = namespaces.get(name) else {
        return Ok(true);
    };
    let mut remaining = 0;
    for r in RESOURCES.iter().filter(|r| r.namespaced) {
        for obj in client.list_in(r, name).await? {
            remaining += 1;
            if obj.pointer("/metadata/deletionTimestamp").is_some_and(|v| !v.is_null()) {
                continue;
            }
            match client
                .delete_in(r, Some(name), object::name(&obj).unwrap_or_default(), false)
                .await
            {
                Ok(_) => {}
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
    }
    if remaining > 0 {
        return Ok(false);
    }
    let mut next = (*ns).clone();
    let rest: Vec<Value> = next
        .pointer("/spec/finalizers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|f| f != "kubernetes")
        .collect();
    next["spec"]["finalizers"] = json!(rest);
    client.finalize_namespace(next).await?;
    Ok(true)
}
