//! Watches over HTTP: newline-delimited `{"type","object"}` events on a chunked response,
//! translated from store events with selector transitions (an object that stops matching
//! is DELETED for the watcher, one that starts matching is ADDED), bookmarks, timeouts, and
//! a 410 ERROR event when the requested revision has been compacted away.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use futures::channel::mpsc;
use futures::{SinkExt, StreamExt};
use gantry_api::selector::{FieldSelector, LabelSelector};
use gantry_store::{Consistency, Event, EventKind, StoreError};
use parking_lot::Mutex;
use serde_json::{json, Value};

use super::object::{self, parse_rv};
use super::registry::Resource;
use super::request::{Query, Target};
use super::status::ApiError;
use super::table;
use super::ApiState;

/// How a watch renders objects.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Render {
    Object,
    /// One-row tables (`kubectl get -w`).
    Table,
}

struct Filter {
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    fn matches(&self, obj: &Value) -> bool {
        self.labels.matches_object(obj) && self.fields.matches(obj)
    }
}

fn line(kind: &str, object: Value) -> Bytes {
    let mut v = serde_json::to_vec(&json!({"type": kind, "object": object})).expect("JSON values always serialize");
    v.push(b'\n');
    Bytes::from(v)
}

fn render(r: &Resource, obj: Value, how: Render) -> Value {
    match how {
        Render::Object => obj,
        Render::Table => {
            let rv = object::meta_str(&obj, "resourceVersion")
                .unwrap_or_default()
                .to_string();
            table::table(r, &[obj], &rv, None, "Metadata")
        }
    }
}

/// An event decoded once and shared by every watcher that sees it: with many watchers on
/// one resource, each event is parsed once and each distinct line encoded once, not once
/// per watcher.
pub struct Decoded {
    obj: Option<Value>,
    prev: Option<Value>,
    lines: Mutex<Vec<(&'static str, Render, Bytes)>>,
}

impl Decoded {
    fn line(&self, r: &Resource, ty: &'static str, how: Render) -> Bytes {
        let mut lines = self.lines.lock();
        if let Some((_, _, b)) = lines.iter().find(|(t, h, _)| *t == ty && *h == how) {
            return b.clone();
        }
        let obj = if ty == "DELETED" && self.obj.is_none() {
            &self.prev
        } else {
            &self.obj
        };
        let b = line(ty, render(r, obj.clone().unwrap_or(Value::Null), how));
        lines.push((ty, how, b.clone()));
        b
    }
}

type EventId = (u64, String);

#[derive(Default)]
struct CacheEntries {
    by_id: HashMap<EventId, Arc<Decoded>>,
    order: VecDeque<EventId>,
}

/// Recently decoded events, keyed by (revision, key), evicted oldest first.
#[derive(Default)]
pub struct EventCache {
    entries: Mutex<CacheEntries>,
}

const EVENT_CACHE_ENTRIES: usize = 8192;

impl EventCache {
    fn get(&self, e: &Event) -> Result<Arc<Decoded>, ApiError> {
        let id = (e.kv.mod_revision, e.kv.key.clone());
        if let Some(d) = self.entries.lock().by_id.get(&id) {
            return Ok(d.clone());
        }
        let rev = e.kv.mod_revision;
        let prev = match &e.prev {
            Some(p) => Some(object::decode_at(&p.value, rev, &p.key)?),
            None => None,
        };
        let obj = match e.kind {
            EventKind::Put => Some(object::decode_at(&e.kv.value, rev, &e.kv.key)?),
            EventKind::Delete => None,
        };
        let d = Arc::new(Decoded {
            obj,
            prev,
            lines: Mutex::new(Vec::new()),
        });
        let mut entries = self.entries.lock();
        if entries.by_id.insert(id.clone(), d.clone()).is_none() {
            entries.order.push_back(id);
            while entries.order.len() > EVENT_CACHE_ENTRIES {
                if let Some(old) = entries.order.pop_front() {
                    entries.by_id.remove(&old);
                }
            }
        }
        Ok(d)
    }
}

/// What a watcher sees of one store event: its type, or None when it should not see it.
fn translate(filter: &Filter, d: &Decoded) -> Option<&'static str> {
    let was = d.prev.as_ref().is_some_and(|p| filter.matches(p));
    match &d.obj {
        None => was.then_some("DELETED"),
        Some(obj) => match (was, filter.matches(obj)) {
            (true, true) => Some("MODIFIED"),
            (false, true) => Some("ADDED"),
            // Left the selection: gone, as far as this watcher is concerned.
            (true, false) => Some("DELETED"),
            (false, false) => None,
        },
    }
}

impl ApiState {
    /// Serves `?watch=true`.
    pub async fn watch(&self, t: &Target, q: &Query, how: Render) -> Result<Response, ApiError> {
        let r = t.resource;
        let filter = Filter {
            labels: match q.get("labelSelector") {
                Some(s) => LabelSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?,
                None => LabelSelector::everything(),
            },
            fields: match q.get("fieldSelector") {
                Some(s) => {
                    let f = FieldSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?;
                    f.validate_for(r.kind)
                        .map_err(|e| ApiError::bad_request(e.to_string()))?;
                    f
                }
                None => FieldSelector::everything(),
            },
        };
        let bookmarks = q.flag("allowWatchBookmarks");
        let timeout = Duration::from_secs(q.u64("timeoutSeconds")?.unwrap_or(1800));
        let prefix = r.prefix(t.namespace.as_deref());
        let rv_param = q.get("resourceVersion").unwrap_or("");
        let rv = parse_rv(Some(rv_param))?;
        let (tx, rx) = mpsc::channel::<Bytes>(256);

        // Without a resourceVersion (or "0"), the watch starts with the current state as
        // ADDED events, then follows from there.
        let (initial, start) = match rv {
            Some(n) if rv_param != "0" => (Vec::new(), n + 1),
            _ => {
                let consistency = if rv_param == "0" {
                    Consistency::Serializable
                } else {
                    Consistency::Linearizable
                };
                let (kvs, at) = self.range_raw(&prefix, consistency).await?;
                let mut lines = Vec::new();
                for kv in &kvs {
                    let obj = object::from_kv(kv)?;
                    if filter.matches(&obj) {
                        lines.push(line("ADDED", render(r, obj, how)));
                    }
                }
                (lines, at + 1)
            }
        };
        let watcher = self.store.watch(&prefix, start);
        let metrics = self.metrics.clone();
        let cache = self.events.clone();
        let bookmark_every = self.bookmark_interval;
        let kind = r.kind;
        let api_version = r.api_version();
        tokio::spawn(async move {
            let mut tx = tx;
            let _open = metrics.watch_opened(r.plural);
            for l in initial {
                if tx.send(l).await.is_err() {
                    return;
                }
            }
            let mut watcher = match watcher {
                Ok(w) => w,
                Err(e) => {
                    let _ = tx.send(line("ERROR", ApiError::from(e).to_status())).await;
                    return;
                }
            };
            let deadline = tokio::time::Instant::now() + timeout;
            let mut delivered = start.saturating_sub(1);
            loop {
                let next = tokio::time::timeout_at(
                    deadline.min(tokio::time::Instant::now() + bookmark_every),
                    watcher.next(),
                )
                .await;
                match next {
                    Ok(Ok(batch)) => {
                        // One chunk per batch: one write (and one TLS record) for many events.
                        let mut chunk = Vec::new();
                        for e in &batch.events {
                            let decoded = match cache.get(e) {
                                Ok(d) => d,
                                Err(err) => {
                                    let _ = tx.send(line("ERROR", err.to_status())).await;
                                    return;
                                }
                            };
                            if let Some(ty) = translate(&filter, &decoded) {
                                chunk.extend_from_slice(&decoded.line(r, ty, how));
                            }
                        }
                        if !chunk.is_empty() && tx.send(Bytes::from(chunk)).await.is_err() {
                            return;
                        }
                        delivered = delivered.max(batch.revision);
                    }
                    Ok(Err(e)) => {
                        // Fell behind the window, or the store stopped: the client relists.
                        let status = match e {
                            StoreError::Compacted { .. } => ApiError::from(e).to_status(),
                            other => ApiError::from(other).to_status(),
                        };
                        let _ = tx.send(line("ERROR", status)).await;
                        return;
                    }
                    Err(_) if tokio::time::Instant::now() >= deadline => return,
                    Err(_) => {
                        if bookmarks {
                            let b = json!({
                                "kind": kind,
                                "apiVersion": api_version,
                                "metadata": {"resourceVersion": delivered.to_string()},
                            });
                            if tx.send(line("BOOKMARK", b)).await.is_err() {
                                return;
                            }
                        } else if tx.is_closed() {
                            return;
                        }
                    }
                }
            }
        });
        let body = Body::from_stream(rx.map(Ok::<_, std::convert::Infallible>));
        Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .header("cache-control", "no-cache, private")
            .body(body)
            .map_err(|e| ApiError::internal(format!("building the watch response: {e}")))
    }
}
