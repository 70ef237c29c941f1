//! Shared informers: one list-watch per resource keeps a cache that every controller reads
//! (one writer, many readers) and tells subscribers what changed. A watch that falls behind
//! the store's window relists and reports the differences, so nothing is missed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gantry_store::EventKind;
use parking_lot::{Mutex, RwLock};
use serde_json::Value;
use tokio::sync::{mpsc, watch};

use super::client::LocalClient;
use crate::apiserver::object;
use crate::apiserver::registry::Resource;

/// One change to one object: `old` absent for an addition, `new` absent for a removal.
#[derive(Clone, Debug)]
pub struct Change {
    pub old: Option<Arc<Value>>,
    pub new: Option<Arc<Value>>,
}

struct Inner {
    resource: &'static Resource,
    cache: RwLock<HashMap<String, Arc<Value>>>,
    subscribers: Mutex<Vec<mpsc::UnboundedSender<Change>>>,
    synced: watch::Sender<bool>,
    /// The store revision the cache reflects.
    revision: AtomicU64,
}

/// A shared informer. Cheap to clone.
#[derive(Clone)]
pub struct Informer {
    inner: Arc<Inner>,
}

/// `namespace/name`, or `name` for cluster-scoped objects.
pub fn key_of(obj: &Value) -> String {
    match object::meta_str(obj, "namespace") {
        Some(ns) if !ns.is_empty() => format!("{ns}/{}", object::name(obj).unwrap_or_default()),
        _ => object::name(obj).unwrap_or_default().to_string(),
    }
}

impl Informer {
    /// Starts the list-watch loop of `group/plural`.
    pub fn start(tasks: &mut tokio::task::JoinSet<()>, client: LocalClient, group: &str, plural: &str) -> Informer {
        let (synced, _) = watch::channel(false);
        let informer = Informer {
            inner: Arc::new(Inner {
                resource: LocalClient::resource(group, plural),
                cache: RwLock::default(),
                subscribers: Mutex::default(),
                synced,
                revision: AtomicU64::new(0),
            }),
        };
        let me = informer.clone();
        tasks.spawn(async move { me.run(client).await });
        informer
    }

    pub fn resource(&self) -> &'static Resource {
        self.inner.resource
    }

    /// Receives every change from now on.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<Change> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.inner.subscribers.lock().push(tx);
        rx
    }

    pub fn get(&self, key: &str) -> Option<Arc<Value>> {
        self.inner.cache.read().get(key).cloned()
    }

    /// Every cached object, optionally only those in `namespace`.
    pub fn list(&self, namespace: Option<&str>) -> Vec<Arc<Value>> {
        self.inner
            .cache
            .read()
            .values()
            .filter(|o| namespace.is_none_or(|ns| object::meta_str(o, "namespace") == Some(ns)))
            .cloned()
            .collect()
    }

    /// The store revision the cache reflects: every write at or below it has been seen.
    pub fn revision(&self) -> u64 {
        self.inner.revision.load(Ordering::Acquire)
    }

    /// Waits until the first list has filled the cache.
    pub async fn wait_synced(&self) {
        let mut rx = self.inner.synced.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    fn emit(&self, change: Change) {
        self.inner.subscribers.lock().retain(|s| s.send(change.clone()).is_ok());
    }

    async fn run(&self, client: LocalClient) {
        let r = self.inner.resource;
        loop {
            let (items, revision) = match client.list(r).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(resource = r.plural, error = %e.message, "informer list failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            // Replace the cache, reporting what differs from what subscribers last saw.
            let fresh: HashMap<String, Arc<Value>> = items.into_iter().map(|o| (key_of(&o), Arc::new(o))).collect();
            let old = std::mem::replace(&mut *self.inner.cache.write(), fresh.clone());
            for (k, new) in &fresh {
                let before = old.get(k).cloned();
                if before
                    .as_ref()
                    .map(|b| b.get("metadata").and_then(|m| m.get("resourceVersion")))
                    != Some(new.get("metadata").and_then(|m| m.get("resourceVersion")))
                {
                    self.emit(Change {
                        old: before,
                        new: Some(new.clone()),
                    });
                }
            }
            for (k, gone) in old {
                if !fresh.contains_key(&k) {
                    self.emit(Change {
                        old: Some(gone),
                        new: None,
                    });
                }
            }
            self.inner.revision.store(revision, Ordering::Release);
            self.inner.synced.send_replace(true);
            let mut watcher = match client.watch(r, revision) {
                Ok(w) => w,
                Err(_) => continue,
            };
            while let Ok(batch) = watcher.next().await {
                for e in &batch.events {
                    let rev = e.kv.mod_revision;
                    let change = match e.kind {
                        EventKind::Put => match object::decode_at(&e.kv.value, rev, &e.kv.key) {
                            Ok(obj) => {
                                let obj = Arc::new(obj);
                                let old = self.inner.cache.write().insert(key_of(&obj), obj.clone());
                                Change { old, new: Some(obj) }
                            }
                            Err(_) => continue,
                        },
                        EventKind::Delete => {
                            let Some(prev) = &e.prev else { continue };
                            let Ok(obj) = object::decode_at(&prev.value, rev, &prev.key) else {
                                continue;
                            };
                            let old = self.inner.cache.write().remove(&key_of(&obj));
                            Change {
                                old: old.or(Some(Arc::new(obj))),
                                new: None,
                            }
                        }
                    };
                    self.emit(change);
                }
                self.inner.revision.fetch_max(batch.revision, Ordering::AcqRel);
            }
            // The watch fell behind the window (or the store stopped): relist.
        }
    }
}
