//! Gantry's control plane: the replicated store (`gantry-store`), the Kubernetes-shaped API
//! server, and — as they land — the scheduler and the controllers, all driven through the
//! store's list-watch contract.

pub mod apiserver;
pub mod controllers;

pub use gantry_store as store;
