//! Patches: JSON merge patch, JSON patch and strategic merge patch, as `kubectl patch` sends them.

mod json;
mod merge;
mod schema;
mod strategic;

use serde_json::{Number, Value};

pub use json::json_patch;
pub use merge::merge_patch;
pub use schema::BuiltinSchema;
pub use strategic::{strategic_merge_patch, FieldMeta, ListStrategy, MergeSchema};

/// The kind of a PATCH request, from its `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PatchType {
    /// RFC 6902, `application/json-patch+json`.
    JsonPatch,
    /// RFC 7386, `application/merge-patch+json`.
    MergePatch,
    /// Kubernetes' strategic merge patch, `application/strategic-merge-patch+json`.
    StrategicMergePatch,
    /// Server-side apply, `application/apply-patch+yaml`: recognised, not supported.
    ApplyPatch,
}

impl PatchType {
    /// Every patch type, in the order the API server advertises them.
    pub const ALL: [PatchType; 4] = [
        PatchType::JsonPatch,
        PatchType::MergePatch,
        PatchType::StrategicMergePatch,
        PatchType::ApplyPatch,
    ];

    /// The patch type of a `Content-Type` header value; parameters such as `charset` are
    /// ignored, and so is case. `None` for any other media type (the server answers 415).
    pub fn from_content_type(ct: &str) -> Option<PatchType> {
        let media_type = ct.split_once(';').map_or(ct, |(media_type, _)| media_type).trim();
        PatchType::ALL
            .into_iter()
            .find(|ty| ty.content_type().eq_ignore_ascii_case(media_type))
    }

    /// The media type of this patch type.
    pub fn content_type(self) -> &'static str {
        match self {
            PatchType::JsonPatch => "application/json-patch+json",
            PatchType::MergePatch => "application/merge-patch+json",
            PatchType::StrategicMergePatch => "application/strategic-merge-patch+json",
            PatchType::ApplyPatch => "application/apply-patch+yaml",
        }
    }
}

/// Why a patch could not be applied. Every message names the place in the object or the patch.
#[derive(thiserror::Error, Debug)]
pub enum PatchError {
    /// The patch is malformed or does not fit the object (a bad pointer, a missing merge key).
    #[error("{reason}")]
    Invalid { reason: String },
    /// A JSON patch `test` operation found another value (or none) at `path`.
    #[error("JSON patch test failed: the value at {path:?} is missing or differs from the expected value")]
    TestFailed { path: String },
    /// A patch type or feature this server does not implement.
    #[error("not supported: {what}")]
    Unsupported { what: String },
    /// The patch exceeds a limit that protects the server (operations, copied data).
    #[error("patch too large: {reason}")]
    TooLarge { reason: String },
}

/// Applies `patch` (the raw request body) of type `ty` to `original`, returning the new object.
///
/// `group` and `kind` (e.g. `("apps", "Deployment")`, `""` for the core group) pick the list
/// merge keys for a strategic merge patch; for kinds not built in, lists are replaced.
pub fn apply_patch(
    ty: PatchType,
    original: &Value,
    patch: &[u8],
    group: &str,
    kind: &str,
) -> Result<Value, PatchError> {
    let parse = |body: &[u8]| {
        serde_json::from_slice::<Value>(body).map_err(|error| PatchError::Invalid {
            reason: format!("the {} body is not valid JSON: {error}", ty.content_type()),
        })
    };
    let patched = match ty {
        PatchType::ApplyPatch => {
            return Err(PatchError::Unsupported {
                what: format!(
                    "server-side apply ({}); use `kubectl apply` without --server-side, or `kubectl patch`",
                    ty.content_type()
                ),
            })
        }
        PatchType::JsonPatch => json_patch(original, &parse(patch)?)?,
        PatchType::MergePatch => {
            let patch = parse(patch)?;
            if !patch.is_object() {
                return Err(PatchError::Invalid {
                    reason: format!("invalid merge patch: expected a JSON object, found {}", kind_of(&patch)),
                });
            }
            merge_patch(original, &patch)
        }
        PatchType::StrategicMergePatch => strategic_merge_patch(
            original,
            &parse(patch)?,
            &BuiltinSchema,
            BuiltinSchema::root_type(group, kind),
        )?,
    };
    if !patched.is_object() {
        return Err(PatchError::Invalid {
            reason: format!("the patched {kind} would be {}, not a JSON object", kind_of(&patched)),
        });
    }
    Ok(patched)
}

/// "an object", "a list", ... for messages about a JSON value.
fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// JSON equality as RFC 6902 defines it: numbers compare by value (`1` equals `1.0`, which
/// `Value`'s `==` denies); objects compare regardless of key order.
fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(a), Value::Number(b)) => numbers_equal(a, b),
        (Value::Array(a), Value::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(a, b)| values_equal(a, b)),
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len() && a.iter().all(|(key, a)| b.get(key).is_some_and(|b| values_equal(a, b)))
        }
        _ => a == b,
    }
}

fn numbers_equal(a: &Number, b: &Number) -> bool {
    if let (Some(a), Some(b)) = (a.as_i64(), b.as_i64()) {
        return a == b;
    }
    if let (Some(a), Some(b)) = (a.as_u64(), b.as_u64()) {
        return a == b;
    }
    matches!((a.as_f64(), b.as_f64()), (Some(a), Some(b)) if a == b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_types_map_to_patch_types_ignoring_parameters_and_case() {
        for ty in PatchType::ALL {
            assert_eq!(PatchType::from_content_type(ty.content_type()), Some(ty));
        }
        assert_eq!(
            PatchType::from_content_type("application/merge-patch+json; charset=utf-8"),
            Some(PatchType::MergePatch)
        );
        assert_eq!(
            PatchType::from_content_type(" Application/Strategic-Merge-Patch+JSON "),
            Some(PatchType::StrategicMergePatch)
        );
        assert_eq!(PatchType::from_content_type("application/json"), None);
        assert_eq!(PatchType::from_content_type(""), None);
    }

    fn deployment() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
               "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "web", "image": "nginx"}]}}}})
    }

    fn apply(ty: PatchType, body: &str) -> Result<Value, PatchError> {
        apply_patch(ty, &deployment(), body.as_bytes(), "apps", "Deployment")
    }

    #[test]
    fn apply_patch_dispatches_on_the_patch_type() {
        let sidecar = r#"{"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "envoy"}]}}}}"#;
        let strategic = apply(PatchType::StrategicMergePatch, sidecar).ok();
        let containers = strategic
            .as_ref()
            .map(|object| &object["spec"]["template"]["spec"]["containers"]);
        assert_eq!(
            containers,
            Some(&json!([{"name": "sidecar", "image": "envoy"}, {"name": "web", "image": "nginx"}]))
        );

        let merged = apply(PatchType::MergePatch, sidecar).ok();
        let containers = merged
            .as_ref()
            .map(|object| &object["spec"]["template"]["spec"]["containers"]);
        assert_eq!(containers, Some(&json!([{"name": "sidecar", "image": "envoy"}])));

        let scaled = apply(
            PatchType::JsonPatch,
            r#"[{"op": "replace", "path": "/spec/replicas", "value": 3}]"#,
        )
        .ok();
        assert_eq!(
            scaled.as_ref().map(|object| &object["spec"]["replicas"]),
            Some(&json!(3))
        );
    }

    #[test]
    fn server_side_apply_is_unsupported() {
        match apply(PatchType::ApplyPatch, "spec: {}") {
            Err(error @ PatchError::Unsupported { .. }) => {
                assert!(error.to_string().contains("server-side apply"), "{error}")
            }
            other => panic!("expected Unsupported, got {other:?}"),
        }
    }

    #[test]
    fn bodies_that_are_not_json_or_of_the_wrong_shape_are_invalid() {
        let cases = [
            (PatchType::MergePatch, "spec: {}", "not valid JSON"),
            (PatchType::StrategicMergePatch, "", "not valid JSON"),
            (PatchType::MergePatch, "[1]", "expected a JSON object"),
            (PatchType::StrategicMergePatch, "\"x\"", "must be a JSON object"),
            (PatchType::JsonPatch, "{}", "expected a list of operations"),
            (
                PatchType::JsonPatch,
                r#"[{"op": "replace", "path": "", "value": 1}]"#,
                "not a JSON object",
            ),
        ];
        for (ty, body, expected) in cases {
            match apply(ty, body) {
                Err(PatchError::Invalid { reason }) => assert!(reason.contains(expected), "{body}: {reason}"),
                other => panic!("{body}: expected an invalid patch, got {other:?}"),
            }
        }
    }

    #[test]
    fn values_equal_compares_numbers_by_value_and_objects_by_content() {
        assert!(values_equal(&json!({"a": 1, "b": [2.0]}), &json!({"b": [2], "a": 1.0})));
        assert!(!values_equal(&json!(1), &json!("1")));
        assert!(!values_equal(&json!({"a": 1}), &json!({"a": 1, "b": null})));
        assert!(!values_equal(&json!(-1), &json!(u64::MAX)));
    }
}
