//! JSON patch (RFC 6902): a list of add, remove, replace, move, copy and test operations at JSON pointers.

use serde_json::Value;

use super::{kind_of, values_equal, PatchError};

/// The most operations one patch may hold (the limit of the Kubernetes API server).
const MAX_OPERATIONS: usize = 10_000;

/// The most JSON values (every object, list and scalar counts one) that the `copy` operations of
/// one patch may duplicate in total: each copy can double the document, so without a budget a
/// few dozen operations would exhaust memory. A megabyte object holds about 100,000 values.
const MAX_COPIED_VALUES: usize = 1 << 18;

/// Applies the JSON patch `patch` (a list of operations) to `original`.
///
/// Operations apply in order to a copy; the first that fails fails the patch and `original` is
/// untouched. A failed `test` is [`PatchError::TestFailed`].
pub fn json_patch(original: &Value, patch: &Value) -> Result<Value, PatchError> {
    let Value::Array(operations) = patch else {
        return Err(PatchError::Invalid {
            reason: format!(
                "invalid JSON patch: expected a list of operations such as \
                 [{{\"op\": \"replace\", \"path\": \"/spec/replicas\", \"value\": 3}}], found {}",
                kind_of(patch)
            ),
        });
    };
    if operations.len() > MAX_OPERATIONS {
        return Err(PatchError::TooLarge {
            reason: format!(
                "a JSON patch may hold at most {MAX_OPERATIONS} operations, this one holds {}",
                operations.len()
            ),
        });
    }
    let mut doc = original.clone();
    let mut copied = 0;
    for (index, raw) in operations.iter().enumerate() {
        let operation = Operation::parse(raw).map_err(|reason| PatchError::Invalid {
            reason: format!("invalid JSON patch: operation {index}: {reason}"),
        })?;
        operation.apply(&mut doc, &mut copied).map_err(|error| match error {
            OpError::Invalid(reason) => PatchError::Invalid {
                reason: format!(
                    "invalid JSON patch: operation {index} ({} {:?}): {reason}",
                    operation.name(),
                    operation.path.text
                ),
            },
            OpError::TestFailed => PatchError::TestFailed {
                path: operation.path.text.to_owned(),
            },
            OpError::TooLarge(reason) => PatchError::TooLarge { reason },
        })?;
    }
    Ok(doc)
}

enum OpError {
    Invalid(String),
    TestFailed,
    TooLarge(String),
}

impl From<String> for OpError {
    fn from(reason: String) -> Self {
        OpError::Invalid(reason)
    }
}

/// A parsed JSON pointer (RFC 6901): `""` is the whole document, `/a/0` is element 0 of `a`.
struct Pointer<'a> {
    text: &'a str,
    /// Reference tokens with `~1` and `~0` already decoded.
    tokens: Vec<String>,
}

impl<'a> Pointer<'a> {
    fn parse(text: &'a str) -> Result<Self, String> {
        if text.is_empty() {
            return Ok(Pointer {
                text,
                tokens: Vec::new(),
            });
        }
        let Some(rest) = text.strip_prefix('/') else {
            return Err(format!("the pointer {text:?} must be empty or start with \"/\""));
        };
        let tokens = rest
            .split('/')
            .map(|token| unescape(text, token))
            .collect::<Result<_, _>>()?;
        Ok(Pointer { text, tokens })
    }
}

fn unescape(pointer: &str, token: &str) -> Result<String, String> {
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c != '~' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('0') => out.push('~'),
            Some('1') => out.push('/'),
            _ => {
                return Err(format!(
                    "the pointer {pointer:?} has a \"~\" not followed by 0 or 1; \
                     write \"~0\" for \"~\" and \"~1\" for \"/\""
                ))
            }
        }
    }
    Ok(out)
}

/// The pointer text of the first `tokens`, for messages.
fn pointer_text(tokens: &[String]) -> String {
    tokens
        .iter()
        .map(|token| format!("/{}", token.replace('~', "~0").replace('/', "~1")))
        .collect()
}

enum Op<'a> {
    Add { value: &'a Value },
    Remove,
    Replace { value: &'a Value },
    Move { from: Pointer<'a> },
    Copy { from: Pointer<'a> },
    Test { value: &'a Value },
}

struct Operation<'a> {
    op: Op<'a>,
    path: Pointer<'a>,
}

impl<'a> Operation<'a> {
    fn parse(raw: &'a Value) -> Result<Self, String> {
        let Value::Object(fields) = raw else {
            return Err(format!(
                "expected an object such as \
                 {{\"op\": \"add\", \"path\": \"/metadata/labels/app\", \"value\": \"web\"}}, found {}",
                kind_of(raw)
            ));
        };
        let string = |name: &str| match fields.get(name) {
            Some(Value::String(s)) => Ok(s.as_str()),
            Some(other) => Err(format!("\"{name}\" must be a string, found {}", kind_of(other))),
            None => Err(format!("\"{name}\" is missing")),
        };
        // "value" may be null, so presence is what counts.
        let value = || fields.get("value").ok_or_else(|| "\"value\" is missing".to_owned());
        let name = string("op")?;
        let path = Pointer::parse(string("path")?)?;
        let op = match name {
            "add" => Op::Add { value: value()? },
            "remove" => Op::Remove,
            "replace" => Op::Replace { value: value()? },
            "move" => Op::Move {
                from: Pointer::parse(string("from")?)?,
            },
            "copy" => Op::Copy {
                from: Pointer::parse(string("from")?)?,
            },
            "test" => Op::Test { value: value()? },
            other => {
                return Err(format!(
                    "unknown op {other:?}; use one of add, remove, replace, move, copy, test"
                ))
            }
        };
        Ok(Operation { op, path })
    }

    fn name(&self) -> &'static str {
        match self.op {
            Op::Add { .. } => "add",
            Op::Remove => "remove",
            Op::Replace { .. } => "replace",
            Op::Move { .. } => "move",
            Op::Copy { .. } => "copy",
            Op::Test { .. } => "test",
        }
    }

    fn apply(&self, doc: &mut Value, copied: &mut usize) -> Result<(), OpError> {
        match &self.op {
            Op::Add { value } => add(doc, &self.path.tokens, (*value).clone())?,
            Op::Remove => {
                remove(doc, &self.path.tokens)?;
            }
            Op::Replace { value } => *walk_mut(doc, &self.path.tokens)? = (*value).clone(),
            Op::Move { from } => {
                if from.tokens == self.path.tokens {
                    walk_mut(doc, &from.tokens)?;
                    return Ok(());
                }
                if self.path.tokens.starts_with(&from.tokens) {
                    return Err(OpError::Invalid(format!(
                        "cannot move {:?} into its own child {:?}",
                        from.text, self.path.text
                    )));
                }
                let value = remove(doc, &from.tokens)?;
                add(doc, &self.path.tokens, value)?;
            }
            Op::Copy { from } => {
                let value = walk_mut(doc, &from.tokens)?;
                *copied = copied.saturating_add(count_values(value));
                if *copied > MAX_COPIED_VALUES {
                    return Err(OpError::TooLarge(format!(
                        "the copy operations of this JSON patch duplicate more than {MAX_COPIED_VALUES} \
                         JSON values; copy less, or send the values themselves with \"add\""
                    )));
                }
                let value = value.clone();
                add(doc, &self.path.tokens, value)?;
            }
            Op::Test { value } => match walk_mut(doc, &self.path.tokens) {
                Ok(found) if values_equal(found, value) => {}
                _ => return Err(OpError::TestFailed),
            },
        }
        Ok(())
    }
}

fn count_values(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(count_values).sum::<usize>(),
        Value::Object(fields) => 1 + fields.values().map(count_values).sum::<usize>(),
        _ => 1,
    }
}

/// Parses an array index token: `0` or digits without a leading zero, below `bound`.
fn parse_index(token: &str, bound: usize, tokens: &[String]) -> Result<usize, String> {
    let well_formed = token == "0" || (!token.starts_with('0') && token.bytes().all(|b| b.is_ascii_digit()));
    let index = if well_formed && !token.is_empty() {
        token.parse::<usize>().ok()
    } else {
        None
    };
    match index {
        Some(index) if index < bound => Ok(index),
        Some(_) => Err(format!(
            "index {token} is out of range for the list at {:?}",
            pointer_text(tokens)
        )),
        None if token == "-" => Err(format!(
            "\"-\" (the end of the list at {:?}) can only be the target of add",
            pointer_text(tokens)
        )),
        None => Err(format!(
            "{token:?} is not a list index (a number without leading zeros) in the list at {:?}",
            pointer_text(tokens)
        )),
    }
}

/// The value at `tokens`, which must exist.
fn walk_mut<'v>(doc: &'v mut Value, tokens: &[String]) -> Result<&'v mut Value, String> {
    let mut current = doc;
    for (depth, token) in tokens.iter().enumerate() {
        let here = &tokens[..depth];
        current = match current {
            Value::Object(fields) => fields
                .get_mut(token)
                .ok_or_else(|| format!("{:?} does not exist", pointer_text(&tokens[..=depth])))?,
            Value::Array(items) => {
                let index = parse_index(token, items.len(), here)?;
                &mut items[index]
            }
            other => {
                return Err(format!(
                    "{:?} does not exist: {:?} is {}",
                    pointer_text(&tokens[..=depth]),
                    pointer_text(here),
                    kind_of(other)
                ))
            }
        };
    }
    Ok(current)
}

fn add(doc: &mut Value, tokens: &[String], value: Value) -> Result<(), String> {
    let Some((last, parent_tokens)) = tokens.split_last() else {
        *doc = value;
        return Ok(());
    };
    match walk_mut(doc, parent_tokens)? {
        Value::Object(fields) => {
            fields.insert(last.clone(), value);
        }
        Value::Array(items) => {
            let index = if last == "-" {
                items.len()
            } else {
                parse_index(last, items.len() + 1, parent_tokens)?
            };
            items.insert(index, value);
        }
        other => {
            return Err(format!(
                "cannot add inside {:?}: it is {}, not an object or a list",
                pointer_text(parent_tokens),
                kind_of(other)
            ))
        }
    }
    Ok(())
}

fn remove(doc: &mut Value, tokens: &[String]) -> Result<Value, String> {
    let Some((last, parent_tokens)) = tokens.split_last() else {
        return Err("the whole document cannot be removed".to_owned());
    };
    match walk_mut(doc, parent_tokens)? {
        Value::Object(fields) => fields
            .shift_remove(last)
            .ok_or_else(|| format!("{:?} does not exist", pointer_text(tokens))),
        Value::Array(items) => {
            let index = parse_index(last, items.len(), parent_tokens)?;
            Ok(items.remove(index))
        }
        other => Err(format!(
            "{:?} does not exist: {:?} is {}",
            pointer_text(tokens),
            pointer_text(parent_tokens),
            kind_of(other)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patched(original: Value, patch: Value) -> Value {
        match json_patch(&original, &patch) {
            Ok(value) => value,
            Err(error) => panic!("patch {patch} failed: {error}"),
        }
    }

    fn invalid_reason(original: Value, patch: Value) -> String {
        match json_patch(&original, &patch) {
            Err(PatchError::Invalid { reason }) => reason,
            other => panic!("expected an invalid patch, got {other:?}"),
        }
    }

    #[test]
    fn add_sets_an_object_member() {
        assert_eq!(
            patched(
                json!({"foo": "bar"}),
                json!([{"op": "add", "path": "/baz", "value": "qux"}])
            ),
            json!({"foo": "bar", "baz": "qux"})
        );
    }

    #[test]
    fn add_inserts_into_a_list_at_the_index() {
        assert_eq!(
            patched(
                json!({"foo": ["bar", "baz"]}),
                json!([{"op": "add", "path": "/foo/1", "value": "qux"}])
            ),
            json!({"foo": ["bar", "qux", "baz"]})
        );
    }

    #[test]
    fn add_at_dash_appends_to_a_list() {
        assert_eq!(
            patched(
                json!({"foo": [1]}),
                json!([{"op": "add", "path": "/foo/-", "value": [2]}])
            ),
            json!({"foo": [1, [2]]})
        );
    }

    #[test]
    fn add_replaces_an_existing_member_and_can_set_the_whole_document() {
        assert_eq!(
            patched(
                json!({"foo": 1}),
                json!([{"op": "add", "path": "/foo", "value": {"a": null}}])
            ),
            json!({"foo": {"a": null}})
        );
        assert_eq!(
            patched(json!({"foo": 1}), json!([{"op": "add", "path": "", "value": [1]}])),
            json!([1])
        );
    }

    #[test]
    fn add_to_a_nonexistent_parent_fails() {
        let reason = invalid_reason(
            json!({"foo": "bar"}),
            json!([{"op": "add", "path": "/baz/bat", "value": "qux"}]),
        );
        assert!(reason.contains("\"/baz\" does not exist"), "{reason}");
    }

    #[test]
    fn remove_deletes_a_member_and_a_list_element() {
        assert_eq!(
            patched(
                json!({"baz": "qux", "foo": "bar"}),
                json!([{"op": "remove", "path": "/baz"}])
            ),
            json!({"foo": "bar"})
        );
        assert_eq!(
            patched(
                json!({"foo": ["bar", "qux", "baz"]}),
                json!([{"op": "remove", "path": "/foo/1"}])
            ),
            json!({"foo": ["bar", "baz"]})
        );
    }

    #[test]
    fn remove_of_a_missing_member_or_the_root_fails() {
        let reason = invalid_reason(json!({"a": 1}), json!([{"op": "remove", "path": "/b"}]));
        assert!(reason.contains("operation 0 (remove \"/b\")"), "{reason}");
        let reason = invalid_reason(json!({"a": 1}), json!([{"op": "remove", "path": ""}]));
        assert!(reason.contains("whole document"), "{reason}");
    }

    #[test]
    fn replace_swaps_a_value_that_exists() {
        assert_eq!(
            patched(
                json!({"baz": "qux", "foo": "bar"}),
                json!([{"op": "replace", "path": "/baz", "value": "boo"}])
            ),
            json!({"baz": "boo", "foo": "bar"})
        );
        let reason = invalid_reason(
            json!({}),
            json!([{"op": "replace", "path": "/spec/replicas", "value": 3}]),
        );
        assert!(reason.contains("\"/spec\" does not exist"), "{reason}");
    }

    #[test]
    fn move_relocates_a_value_and_reorders_a_list() {
        assert_eq!(
            patched(
                json!({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}}),
                json!([{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}])
            ),
            json!({"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}})
        );
        assert_eq!(
            patched(
                json!({"foo": ["all", "grass", "cows", "eat"]}),
                json!([{"op": "move", "from": "/foo/1", "path": "/foo/3"}])
            ),
            json!({"foo": ["all", "cows", "eat", "grass"]})
        );
    }

    #[test]
    fn move_into_its_own_child_fails() {
        let reason = invalid_reason(
            json!({"a": {"b": 1}}),
            json!([{"op": "move", "from": "/a", "path": "/a/c"}]),
        );
        assert!(reason.contains("own child"), "{reason}");
    }

    #[test]
    fn copy_duplicates_a_value() {
        assert_eq!(
            patched(
                json!({"spec": {"containers": [{"name": "web", "image": "nginx"}]}}),
                json!([{"op": "copy", "from": "/spec/containers/0", "path": "/spec/containers/-"},
                       {"op": "replace", "path": "/spec/containers/1/name", "value": "web-2"}])
            ),
            json!({"spec": {"containers": [{"name": "web", "image": "nginx"}, {"name": "web-2", "image": "nginx"}]}})
        );
    }

    #[test]
    fn copies_that_double_the_document_hit_the_budget() {
        let doubling: Vec<Value> = (0..40)
            .map(|_| json!({"op": "copy", "from": "/a", "path": "/a/-"}))
            .collect();
        match json_patch(&json!({"a": [1]}), &Value::Array(doubling)) {
            Err(PatchError::TooLarge { reason }) => assert!(reason.contains("copy"), "{reason}"),
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }

    #[test]
    fn test_passes_on_equal_values_comparing_numbers_by_value() {
        let doc = json!({"baz": "qux", "foo": ["a", 2, "c"], "n": 1.0});
        assert_eq!(
            patched(
                doc.clone(),
                json!([{"op": "test", "path": "/baz", "value": "qux"},
                       {"op": "test", "path": "/foo/1", "value": 2},
                       {"op": "test", "path": "/n", "value": 1}])
            ),
            doc
        );
    }

    #[test]
    fn failed_test_names_the_path_and_aborts_the_patch() {
        let patch = json!([{"op": "replace", "path": "/baz", "value": "x"},
                           {"op": "test", "path": "/baz", "value": "bar"}]);
        match json_patch(&json!({"baz": "qux"}), &patch) {
            Err(PatchError::TestFailed { path }) => assert_eq!(path, "/baz"),
            other => panic!("expected TestFailed, got {other:?}"),
        }
        // RFC 6902 A.15: a string is never equal to a number.
        let patch = json!([{"op": "test", "path": "/~01", "value": "10"}]);
        assert!(matches!(
            json_patch(&json!({"~1": 10}), &patch),
            Err(PatchError::TestFailed { .. })
        ));
        let patch = json!([{"op": "test", "path": "/missing", "value": null}]);
        assert!(matches!(
            json_patch(&json!({}), &patch),
            Err(PatchError::TestFailed { .. })
        ));
    }

    #[test]
    fn pointer_escapes_decode_tilde_one_before_tilde_zero() {
        let doc = json!({"/": 9, "~1": 10, "a/b": 1, "m~n": 2});
        assert_eq!(
            patched(
                doc,
                json!([{"op": "test", "path": "/~01", "value": 10},
                       {"op": "replace", "path": "/a~1b", "value": 3},
                       {"op": "remove", "path": "/m~0n"},
                       {"op": "test", "path": "/~1", "value": 9}])
            ),
            json!({"/": 9, "~1": 10, "a/b": 3})
        );
    }

    #[test]
    fn unrecognized_members_of_an_operation_are_ignored() {
        assert_eq!(
            patched(
                json!({"foo": "bar"}),
                json!([{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}])
            ),
            json!({"foo": "bar", "baz": "qux"})
        );
    }

    #[test]
    fn bad_pointers_are_rejected_with_the_reason() {
        let cases = [
            (
                json!([{"op": "add", "path": "spec/replicas", "value": 1}]),
                "must be empty or start with \"/\"",
            ),
            (
                json!([{"op": "add", "path": "/a~2b", "value": 1}]),
                "not followed by 0 or 1",
            ),
            (
                json!([{"op": "replace", "path": "/list/01", "value": 1}]),
                "not a list index",
            ),
            (
                json!([{"op": "replace", "path": "/list/5", "value": 1}]),
                "out of range",
            ),
            (
                json!([{"op": "remove", "path": "/list/-"}]),
                "can only be the target of add",
            ),
            (json!([{"op": "add", "path": "/name/x", "value": 1}]), "it is a string"),
        ];
        for (patch, expected) in cases {
            let reason = invalid_reason(json!({"list": [1, 2], "name": "web"}), patch.clone());
            assert!(reason.contains(expected), "{patch}: {reason}");
        }
    }

    #[test]
    fn malformed_operations_are_rejected() {
        let cases = [
            (json!({"op": "add"}), "expected a list of operations"),
            (json!([{"op": "frobnicate", "path": "/a"}]), "unknown op \"frobnicate\""),
            (json!([{"path": "/a", "value": 1}]), "\"op\" is missing"),
            (json!([{"op": "add", "path": "/a"}]), "\"value\" is missing"),
            (json!([{"op": "move", "path": "/a"}]), "\"from\" is missing"),
            (
                json!([{"op": "add", "path": 3, "value": 1}]),
                "\"path\" must be a string",
            ),
            (json!(["add"]), "expected an object"),
        ];
        for (patch, expected) in cases {
            let reason = invalid_reason(json!({"a": 1}), patch.clone());
            assert!(reason.contains(expected), "{patch}: {reason}");
        }
    }

    #[test]
    fn too_many_operations_are_refused() {
        let operations: Vec<Value> = (0..=MAX_OPERATIONS)
            .map(|_| json!({"op": "test", "path": "", "value": {}}))
            .collect();
        assert!(matches!(
            json_patch(&json!({}), &Value::Array(operations)),
            Err(PatchError::TooLarge { .. })
        ));
    }
}
