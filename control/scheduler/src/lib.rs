//! Gantry's scheduler: kube-scheduler's default profile (filters, scores, percentage of nodes
//! to score, unschedulable messages) on a core built for speed: nodes in struct-of-arrays form
//! with free resources in atomics, reservation by compare-and-swap, pending pods in lock-free
//! queues by priority, and bindings committed to the store in batches.
//!
//! ```text
//!  store ──list/watch──▶ run.rs ──▶ cache.rs (nodes: snapshot.rs, placed pods)
//!                          │            ▲ reserve (CAS)   │ read
//!                          ▼            │                 ▼
//!                       queue.rs ──▶ workers ──decide──▶ plugins/
//!                                        │
//!                                        ▼
//!                                  binder ──write_batch(put_if…)──▶ store
//! ```

pub mod cache;
pub mod error;
pub mod hollow;
pub mod plugins;
pub mod pod;
pub mod queue;
pub mod run;
pub mod snapshot;
#[cfg(test)]
mod testing;
mod time;

pub use error::SchedulerError;
pub use hollow::{hollow_node, register_hollow_nodes, renew_hollow_leases, run_hollow_heartbeats, HollowNode};
pub use pod::PodInfo;
pub use run::{run, SchedulerMetrics, SchedulerOptions, DEFAULT_SCHEDULER_NAME};
pub use snapshot::{NodeInfo, Snapshot, Taint, TaintEffect};

/// Where the store keeps pods: `{PODS_PREFIX}{namespace}/{name}`.
pub const PODS_PREFIX: &str = "/registry/core/pods/";
/// Where the store keeps nodes: `{NODES_PREFIX}{name}`.
pub const NODES_PREFIX: &str = "/registry/core/nodes/";
