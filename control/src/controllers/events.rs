//! Events: what a controller did or could not do, recorded as core/v1 Events about the
//! object concerned (what `kubectl describe` and `kubectl get events` show). Recording never
//! blocks or fails a reconcile: a lost event is only a lost message.

use serde_json::{json, Value};

use super::client::LocalClient;
use crate::apiserver::object;

/// Records an event about `obj` from `component` (e.g. "replicaset-controller").
pub fn record(
    client: &LocalClient,
    component: &'static str,
    obj: &Value,
    kind: &'static str,
    reason: &'static str,
    message: String,
) {
    let ns = object::meta_str(obj, "namespace").unwrap_or("default").to_string();
    let name = object::name(obj).unwrap_or_default().to_string();
    let now = object::now();
    let event = json!({
        "apiVersion": "v1",
        "kind": "Event",
        // Named as Kubernetes names them: the object's name and a hex timestamp.
        "metadata": {"name": format!("{name}.{:x}", chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()), "namespace": ns},
        "involvedObject": {
            "apiVersion": obj.get("apiVersion"),
            "kind": obj.get("kind"),
            "name": name,
            "namespace": ns,
            "uid": object::meta_str(obj, "uid"),
            "resourceVersion": object::meta_str(obj, "resourceVersion"),
        },
        "reason": reason,
        "message": message,
        "type": kind,
        "source": {"component": component},
        "reportingComponent": component,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    });
    let client = client.clone();
    tokio::spawn(async move {
        if let Err(e) = client.create(LocalClient::resource("", "events"), &ns, event).await {
            tracing::debug!(error = %e.message, "could not record an event");
        }
    });
}
