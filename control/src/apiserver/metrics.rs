//! The API server's Prometheus metrics: requests by verb, resource and code, request
//! latency histograms, store commit latency, and open watches.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default, Clone)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS.len()];
        }
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += secs;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, b) in BUCKETS.iter().enumerate() {
            let c = self.counts.get(i).copied().unwrap_or(0);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {c}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<(String, String), Histogram>,
    commit: Histogram,
    watches: BTreeMap<String, i64>,
}

/// Shared metrics. Cheap to clone.
#[derive(Clone, Default)]
pub struct Metrics {
    inner: Arc<Mutex<Inner>>,
}

/// Counts an open watch until dropped.
pub struct WatchGuard {
    metrics: Metrics,
    resource: &'static str,
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        *self
            .metrics
            .inner
            .lock()
            .watches
            .entry(self.resource.to_string())
            .or_default() -= 1;
    }
}

impl Metrics {
    pub fn request(&self, verb: &str, resource: &str, code: u16, took: Duration) {
        let mut m = self.inner.lock();
        *m.requests
            .entry((verb.to_string(), resource.to_string(), code))
            .or_default() += 1;
        m.latency
            .entry((verb.to_string(), resource.to_string()))
            .or_default()
            .observe(took.as_secs_f64());
    }

    pub fn commit(&self, took: Duration) {
        self.inner.lock().commit.observe(took.as_secs_f64());
    }

    pub fn watch_opened(&self, resource: &'static str) -> WatchGuard {
        *self.inner.lock().watches.entry(resource.to_string()).or_default() += 1;
        WatchGuard {
            metrics: self.clone(),
            resource,
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self, store_revision: u64) -> String {
        let m = self.inner.lock();
        let mut out = String::new();
        out.push_str("# HELP apiserver_request_total Requests by verb, resource and HTTP code.\n# TYPE apiserver_request_total counter\n");
        for ((verb, resource, code), n) in &m.requests {
            let _ = writeln!(
                out,
                "apiserver_request_total{{verb=\"{verb}\",resource=\"{resource}\",code=\"{code}\"}} {n}"
            );
        }
        out.push_str("# HELP apiserver_request_duration_seconds Request latency by verb and resource.\n# TYPE apiserver_request_duration_seconds histogram\n");
        for ((verb, resource), h) in &m.latency {
            h.render(
                &mut out,
                "apiserver_request_duration_seconds",
                &format!("verb=\"{verb}\",resource=\"{resource}\""),
            );
        }
        out.push_str("# HELP gantry_store_commit_duration_seconds Time for a write to commit through Raft.\n# TYPE gantry_store_commit_duration_seconds histogram\n");
        m.commit.render(&mut out, "gantry_store_commit_duration_seconds", "");
        out.push_str("# HELP apiserver_registered_watchers Open watches by resource.\n# TYPE apiserver_registered_watchers gauge\n");
        for (resource, n) in &m.watches {
            let _ = writeln!(out, "apiserver_registered_watchers{{resource=\"{resource}\"}} {n}");
        }
        out.push_str(
            "# HELP gantry_store_revision The store's latest applied revision.\n# TYPE gantry_store_revision gauge\n",
        );
        let _ = writeln!(out, "gantry_store_revision {store_revision}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_counters_histograms_and_gauges() {
        let m = Metrics::default();
        m.request("get", "pods", 200, Duration::from_millis(3));
        m.request("get", "pods", 404, Duration::from_millis(1));
        m.commit(Duration::from_millis(2));
        let w = m.watch_opened("pods");
        let text = m.render(17);
        assert!(text.contains("apiserver_request_total{verb=\"get\",resource=\"pods\",code=\"200\"} 1"));
        assert!(
            text.contains("apiserver_request_duration_seconds_bucket{verb=\"get\",resource=\"pods\",le=\"0.005\"} 2")
        );
        assert!(text.contains("gantry_store_commit_duration_seconds_count{} 1"));
        assert!(text.contains("apiserver_registered_watchers{resource=\"pods\"} 1"));
        assert!(text.contains("gantry_store_revision 17"));
        drop(w);
        assert!(m
            .render(17)
            .contains("apiserver_registered_watchers{resource=\"pods\"} 0"));
    }
}
