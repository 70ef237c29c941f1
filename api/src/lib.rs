//! Kubernetes-compatible wire types, selectors, validation, and the HTTP client and watch stream (no server code).
