//! Gantry's control plane: the replicated store (`gantry-store`), and — as they land — the
//! Kubernetes-shaped API server, the scheduler and the controllers, all driven through the
//! store's list-watch contract.

pub use gantry_store as store;
