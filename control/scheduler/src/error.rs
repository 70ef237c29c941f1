//! The scheduler's errors. An expected rejection (no node fits) is not an error: it is a
//! [`crate::plugins::Status`] and, for the pod, a PodScheduled=False condition.

use gantry_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// The store refused or could not serve a read, watch or write.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// An object in the store is not valid JSON or lacks what the scheduler needs.
    #[error("object at {key} is malformed: {reason}")]
    Malformed { key: String, reason: String },
    /// The options cannot work (e.g. zero workers).
    #[error("invalid scheduler options: {0}")]
    InvalidOptions(String),
    /// One of the scheduler's tasks panicked or was cancelled.
    #[error("scheduler task {task} failed: {reason}")]
    TaskFailed { task: String, reason: String },
}
