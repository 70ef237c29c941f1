//! Kubernetes-compatible wire types, selectors, validation and patches (no server code).
//!
//! Objects travel as JSON (`serde_json::Value`, key order preserved) so that fields this
//! crate does not model survive every round trip; typed views exist where logic needs them.

pub mod patch;
pub mod protobuf;
pub mod selector;
pub mod validation;
