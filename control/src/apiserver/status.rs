//! API errors and their wire form: a `kind: Status` object with Kubernetes' reason and code.
//! Every error the server returns goes through [`ApiError`], so "could not reach the store"
//! (503/504) stays apart from "refused" (4xx).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use gantry_api::validation::Cause;
use gantry_store::StoreError;
use serde_json::{json, Value};

use super::registry::Resource;

/// An error answered to a client.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    /// `details`: name, group, kind and causes.
    pub details: Option<Box<Value>>,
    pub retry_after: Option<u64>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    fn with_details(mut self, r: &Resource, name: &str) -> ApiError {
        self.details = Some(Box::new(json!({"name": name, "group": r.group, "kind": r.plural})));
        self
    }

    pub fn not_found(r: &Resource, name: &str) -> ApiError {
        ApiError::new(404, "NotFound", format!("{} \"{name}\" not found", r.qualified())).with_details(r, name)
    }

    pub fn namespace_not_found(ns: &str) -> ApiError {
        ApiError::new(404, "NotFound", format!("namespaces \"{ns}\" not found")).with_details(
            super::registry::find("", "v1", "namespaces").expect("namespaces are served"),
            ns,
        )
    }

    pub fn already_exists(r: &Resource, name: &str) -> ApiError {
        ApiError::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", r.qualified()),
        )
        .with_details(r, name)
    }

    pub fn conflict(r: &Resource, name: &str) -> ApiError {
        ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                r.qualified()
            ),
        )
        .with_details(r, name)
    }

    pub fn conflict_msg(r: &Resource, name: &str, why: &str) -> ApiError {
        ApiError::new(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {} \"{name}\": {why}", r.qualified()),
        )
        .with_details(r, name)
    }

    pub fn invalid(r: &Resource, name: &str, causes: &[Cause]) -> ApiError {
        let list: Vec<String> = causes.iter().map(|c| c.to_string()).collect();
        let summary = if list.len() == 1 {
            list[0].clone()
        } else {
            format!("[{}]", list.join(", "))
        };
        let mut e = ApiError::new(422, "Invalid", format!("{} \"{name}\" is invalid: {summary}", r.kind));
        e.details = Some(Box::new(json!({
            "name": name,
            "group": r.group,
            "kind": r.kind,
            "causes": causes.iter().map(|c| json!({
                "reason": c.reason.as_str(),
                "message": c.message_text(),
                "field": c.field,
            })).collect::<Vec<_>>(),
        })));
        e
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest", message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(403, "Forbidden", message)
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn method_not_allowed(message: impl Into<String>) -> ApiError {
        ApiError::new(405, "MethodNotAllowed", message)
    }

    pub fn not_acceptable(message: impl Into<String>) -> ApiError {
        ApiError::new(406, "NotAcceptable", message)
    }

    pub fn unsupported_media_type(message: impl Into<String>) -> ApiError {
        ApiError::new(415, "UnsupportedMediaType", message)
    }

    pub fn too_large(limit: usize) -> ApiError {
        ApiError::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit} bytes"),
        )
    }

    pub fn too_many_requests() -> ApiError {
        let mut e = ApiError::new(429, "TooManyRequests", "Too many requests, please try again later.");
        e.retry_after = Some(1);
        e
    }

    pub fn gone(message: impl Into<String>) -> ApiError {
        ApiError::new(410, "Expired", message)
    }

    pub fn not_found_path(path: &str) -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({path})"),
        )
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(500, "InternalError", message)
    }

    pub fn unavailable(message: impl Into<String>) -> ApiError {
        let mut e = ApiError::new(503, "ServiceUnavailable", message);
        e.retry_after = Some(1);
        e
    }

    pub fn timeout(message: impl Into<String>) -> ApiError {
        let mut e = ApiError::new(504, "Timeout", message);
        e.retry_after = Some(1);
        e
    }

    /// The `kind: Status` body.
    pub fn to_status(&self) -> Value {
        let mut v = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            v["details"] = (**d).clone();
        }
        if let Some(secs) = self.retry_after {
            if v.get("details").is_none() {
                v["details"] = json!({});
            }
            v["details"]["retryAfterSeconds"] = json!(secs);
        }
        v
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({} {})", self.message, self.code, self.reason)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (code, super::json_body(&self.to_status())).into_response();
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert("retry-after", v);
            }
        }
        resp
    }
}

/// The one conversion from store errors to the wire.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Compacted { requested, oldest } => ApiError::gone(format!(
                "too old resource version: {} ({})",
                requested.saturating_sub(1),
                oldest.saturating_sub(1)
            )),
            StoreError::FutureRevision { requested, latest } => {
                let mut e = ApiError::timeout(format!("Too large resource version: {requested}, current: {latest}"));
                e.reason = "Timeout";
                e
            }
            StoreError::InvalidContinue { reason } => {
                ApiError::bad_request(format!("invalid continue token: {reason}"))
            }
            StoreError::BadRequest(m) => ApiError::bad_request(m),
            StoreError::NotLeader { .. } | StoreError::Unreachable { .. } | StoreError::Stopped(_) => {
                ApiError::unavailable(format!("the store is unavailable: {e}"))
            }
            StoreError::Timeout { .. } => ApiError::timeout(format!("the store did not answer in time: {e}")),
            StoreError::Storage(m) => ApiError::internal(format!("the store failed to write: {m}")),
        }
    }
}

/// A `kind: Status` success body (deletes of some resources, bindings).
pub fn success(r: &Resource, name: &str, code: u16) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "code": code,
        "details": {"name": name, "group": r.group, "kind": r.plural},
    })
}
