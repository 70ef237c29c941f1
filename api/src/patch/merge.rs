//! JSON merge patch (RFC 7386): objects merge key by key, `null` deletes a key, anything else replaces.

use serde_json::{Map, Value};

/// Applies the JSON merge patch `patch` to `original` (RFC 7386).
///
/// Lists are never merged: a list in the patch replaces the stored list whole. A patch that is
/// not an object replaces the document; `apply_patch` refuses such bodies before they get here.
pub fn merge_patch(original: &Value, patch: &Value) -> Value {
    let mut target = original.clone();
    merge_into(&mut target, patch);
    target
}

fn merge_into(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(fields) = target {
        for (key, value) in patch {
            if value.is_null() {
                // `shift_remove` keeps the order of the remaining keys (`swap_remove` would not).
                fields.shift_remove(key);
            } else {
                merge_into(fields.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc_7386_appendix_a_examples_all_hold() {
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "b"}), json!({"b": "c"}), json!({"a": "b", "b": "c"})),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (json!({"a": "b", "b": "c"}), json!({"a": null}), json!({"b": "c"})),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (json!({"a": [{"b": "c"}]}), json!({"a": [1]}), json!({"a": [1]})),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a": "b"}), json!(["c"]), json!(["c"])),
            (json!({"a": "foo"}), json!(null), json!(null)),
            (json!({"a": "foo"}), json!("bar"), json!("bar")),
            (json!({"e": null}), json!({"a": 1}), json!({"e": null, "a": 1})),
            (json!([1, 2]), json!({"a": "b", "c": null}), json!({"a": "b"})),
            (json!({}), json!({"a": {"bb": {"ccc": null}}}), json!({"a": {"bb": {}}})),
        ];
        for (original, patch, expected) in cases {
            assert_eq!(merge_patch(&original, &patch), expected, "patch {patch} on {original}");
        }
    }

    #[test]
    fn rfc_7386_section_3_example_merges_nested_objects_and_replaces_lists() {
        let original = json!({
            "title": "Goodbye!",
            "author": {"givenName": "John", "familyName": "Doe"},
            "tags": ["example", "sample"],
            "content": "This will be unchanged"
        });
        let patch = json!({
            "title": "Hello!",
            "phoneNumber": "+01-123-456-7890",
            "author": {"familyName": null},
            "tags": ["example"]
        });
        assert_eq!(
            merge_patch(&original, &patch),
            json!({
                "title": "Hello!",
                "author": {"givenName": "John"},
                "tags": ["example"],
                "content": "This will be unchanged",
                "phoneNumber": "+01-123-456-7890"
            })
        );
    }

    #[test]
    fn merge_patch_replaces_the_container_list_whole() {
        // "Update API Objects in Place Using kubectl patch": `--type merge` with one container
        // leaves only that container.
        let deployment = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "patch-demo-ctr", "image": "nginx"},
            {"name": "patch-demo-ctr-2", "image": "redis"}
        ]}}}});
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "patch-demo-ctr-3", "image": "gcr.io/google-samples/hello-app:2.0"}
        ]}}}});
        assert_eq!(
            merge_patch(&deployment, &patch),
            json!({"spec": {"template": {"spec": {"containers": [
                {"name": "patch-demo-ctr-3", "image": "gcr.io/google-samples/hello-app:2.0"}
            ]}}}})
        );
    }

    #[test]
    fn merge_patch_keeps_the_order_of_existing_keys() {
        let original = json!({"a": 1, "b": 2, "c": 3});
        let merged = merge_patch(&original, &json!({"a": null, "b": 20, "d": 4}));
        let keys: Vec<&str> = merged
            .as_object()
            .into_iter()
            .flat_map(|m| m.keys())
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["b", "c", "d"]);
    }
}
