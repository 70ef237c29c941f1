//! Strategic merge patch: Kubernetes' merge patch in which lists can merge element by element.
//!
//! Semantics follow apimachinery's `strategicpatch` as the API server applies it: maps merge key
//! by key and `null` deletes; a list merges only where the schema gives it a patch strategy
//! (by a merge key, or as a set of scalars), otherwise the patch's list replaces it. Directives:
//!
//! - `$patch: replace | delete | merge` in a map; in a list element `replace` replaces the list
//!   and `delete` removes the element with the same merge key;
//! - `$retainKeys: [..]` keeps only the listed keys of the stored map, then merges;
//! - `$setElementOrder/<list>: [..]` orders the merged list;
//! - `$deleteFromPrimitiveList/<list>: [..]` removes values from a list of scalars.
//!
//! Where apimachinery would store a directive or a `null` verbatim (in a value new to the
//! object, which its typed decoding then drops), this module processes them: objects here are
//! stored as JSON, so nothing of the patch syntax may reach the store. For the same reason
//! `$patch: delete` in a map removes the map from its parent, where apimachinery leaves `{}`.

use std::fmt;
use std::mem;

use serde_json::{Map, Value};

use super::{kind_of, values_equal, PatchError};

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";

/// Where lists merge: the patch metadata of the fields of named types (Kubernetes'
/// `patchStrategy` and `patchMergeKey` struct tags).
pub trait MergeSchema {
    /// How `field` of a value of type `ty` merges, or `None` when the schema does not know it;
    /// then maps merge key by key and lists are replaced whole.
    fn field(&self, ty: &str, field: &str) -> Option<FieldMeta<'_>>;
}

/// The patch metadata of one field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldMeta<'a> {
    /// The type of the field's value (of each element, for a list) to look its fields up in.
    pub ty: Option<&'a str>,
    /// How a list in this field merges; ignored when the value is not a list.
    pub list: ListStrategy<'a>,
}

/// How a list merges with the list stored in the same field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListStrategy<'a> {
    /// No patch strategy: the patch's list replaces the stored one (an atomic list).
    Replace,
    /// `patchStrategy: merge` with a `patchMergeKey`: elements are objects matched by this key;
    /// matches merge recursively, the others are added.
    MergeByKey(&'a str),
    /// `patchStrategy: merge` on a list of scalars: the union of both lists.
    MergeSet,
}

/// What the defaults say about a field the schema does not know.
const UNKNOWN: FieldMeta<'static> = FieldMeta {
    ty: None,
    list: ListStrategy::Replace,
};

/// Applies the strategic merge patch `patch` to `original`.
///
/// `root` is the schema type of the object (`BuiltinSchema::root_type`); with `None` nothing
/// is known and every list is replaced, like a JSON merge patch that still honours directives.
pub fn strategic_merge_patch(
    original: &Value,
    patch: &Value,
    schema: &dyn MergeSchema,
    root: Option<&str>,
) -> Result<Value, PatchError> {
    let Value::Object(patch) = patch else {
        return Err(invalid(
            &Loc::Root,
            format_args!("the patch must be a JSON object, found {}", kind_of(patch)),
        ));
    };
    // Objects from the store are always JSON objects; anything else merges as if empty.
    let mut target = match original {
        Value::Object(fields) => fields.clone(),
        _ => Map::new(),
    };
    match (Merger { schema }).merge_map(&mut target, patch, root, &Loc::Root)? {
        Outcome::Keep => Ok(Value::Object(target)),
        Outcome::Delete => Err(invalid(
            &Loc::Root,
            "\"$patch\": \"delete\" cannot delete the whole object; use `kubectl delete` instead",
        )),
    }
}

/// What became of a map after its patch: `$patch: delete` removes it from its parent.
enum Outcome {
    Keep,
    Delete,
}

/// Where in the object a merge is, for error messages; built on the stack as the merge recurses
/// and only formatted when something is wrong.
enum Loc<'a> {
    Root,
    Field(&'a Loc<'a>, &'a str),
    Index(&'a Loc<'a>, usize),
    /// A list element named by its merge key and that key's value.
    Element(&'a Loc<'a>, &'a str, &'a Value),
}

impl fmt::Display for Loc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Loc::Root => f.write_str("the object root"),
            Loc::Field(Loc::Root, name) => f.write_str(name),
            Loc::Field(parent, name) => write!(f, "{parent}.{name}"),
            Loc::Index(parent, index) => write!(f, "{parent}[{index}]"),
            Loc::Element(parent, key, value) => write!(f, "{parent}[{key}={value}]"),
        }
    }
}

fn invalid(loc: &Loc<'_>, what: impl fmt::Display) -> PatchError {
    PatchError::Invalid {
        reason: format!("invalid strategic merge patch at {loc}: {what}"),
    }
}

/// The `$patch` directive of a list element, if it has one.
fn directive_of(item: &Value) -> Option<&Value> {
    item.as_object()?.get(DIRECTIVE)
}

/// What identifies an element of a merging list: its merge key's value, or (scalars) itself.
#[derive(Clone, Copy)]
enum Identity<'k> {
    Key(&'k str),
    Value,
}

impl Identity<'_> {
    fn of(self, item: &Value) -> Option<&Value> {
        match self {
            Identity::Key(key) => item.as_object()?.get(key),
            Identity::Value => Some(item),
        }
    }

    fn position(self, items: &[Value], id: &Value) -> Option<usize> {
        items
            .iter()
            .position(|item| self.of(item).is_some_and(|other| values_equal(other, id)))
    }
}

struct Merger<'s> {
    schema: &'s dyn MergeSchema,
}

impl<'s> Merger<'s> {
    fn meta(&self, ty: Option<&str>, field: &str) -> FieldMeta<'s> {
        ty.and_then(|ty| self.schema.field(ty, field)).unwrap_or(UNKNOWN)
    }

    /// Merges `patch` into the map `original`, honouring a `$patch` directive of the map itself.
    fn merge_map(
        &self,
        original: &mut Map<String, Value>,
        patch: &Map<String, Value>,
        ty: Option<&'s str>,
        loc: &Loc<'_>,
    ) -> Result<Outcome, PatchError> {
        if let Some(directive) = patch.get(DIRECTIVE) {
            match directive.as_str() {
                Some("replace") => original.clear(),
                Some("delete") => return Ok(Outcome::Delete),
                Some("merge") => {}
                _ => {
                    return Err(invalid(
                        loc,
                        format_args!("unknown {DIRECTIVE} {directive}; use \"replace\", \"delete\" or \"merge\""),
                    ))
                }
            }
        }
        self.merge_fields(original, patch, ty, loc)?;
        Ok(Outcome::Keep)
    }

    /// Merges the fields of `patch` into `original`; the map's own `$patch` is the caller's.
    fn merge_fields(
        &self,
        original: &mut Map<String, Value>,
        patch: &Map<String, Value>,
        ty: Option<&'s str>,
        loc: &Loc<'_>,
    ) -> Result<(), PatchError> {
        retain_keys(original, patch, loc)?;
        let ordered = self.set_element_orders(original, patch, ty, loc)?;
        for (key, value) in patch {
            if key.starts_with('$') {
                if let Some(field) = key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
                    delete_from_list(original, field, value, &Loc::Field(loc, key))?;
                } else if !(key == DIRECTIVE || key == RETAIN_KEYS || key.starts_with(SET_ELEMENT_ORDER)) {
                    return Err(invalid(
                        &Loc::Field(loc, key),
                        format_args!(
                            "unknown directive; the directives are {DIRECTIVE}, {RETAIN_KEYS}, \
                             {SET_ELEMENT_ORDER}<list> and {DELETE_FROM_PRIMITIVE_LIST}<list>"
                        ),
                    ));
                }
                continue;
            }
            if ordered.contains(&key.as_str()) {
                continue;
            }
            if value.is_null() {
                original.shift_remove(key);
                continue;
            }
            let here = Loc::Field(loc, key);
            let meta = self.meta(ty, key);
            match (original.get_mut(key), value) {
                (Some(Value::Object(stored)), Value::Object(patch)) => {
                    if let Outcome::Delete = self.merge_map(stored, patch, meta.ty, &here)? {
                        original.shift_remove(key);
                    }
                }
                (Some(Value::Array(stored)), Value::Array(patch)) => self.merge_list(stored, patch, meta, &here)?,
                // Missing, or of another JSON type: the patch's value (processed) replaces it.
                _ => match self.fresh(value, meta, &here)? {
                    Some(fresh) => {
                        original.insert(key.clone(), fresh);
                    }
                    None => {
                        original.shift_remove(key);
                    }
                },
            }
        }
        Ok(())
    }

    /// The stored form of a patch value that has nothing to merge with: directives applied to
    /// an empty value, `null`s in maps dropped. `None` when it deletes itself (`$patch: delete`).
    fn fresh(&self, value: &Value, meta: FieldMeta<'s>, loc: &Loc<'_>) -> Result<Option<Value>, PatchError> {
        Ok(match value {
            Value::Object(patch) => {
                let mut fields = Map::new();
                match self.merge_map(&mut fields, patch, meta.ty, loc)? {
                    Outcome::Keep => Some(Value::Object(fields)),
                    Outcome::Delete => None,
                }
            }
            Value::Array(items) => Some(Value::Array(self.fresh_list(items, meta, loc)?)),
            scalar => Some(scalar.clone()),
        })
    }

    fn fresh_list(&self, items: &[Value], meta: FieldMeta<'s>, loc: &Loc<'_>) -> Result<Vec<Value>, PatchError> {
        let mut list = Vec::new();
        self.merge_list(&mut list, items, meta, loc)?;
        Ok(list)
    }

    fn merge_list(
        &self,
        original: &mut Vec<Value>,
        patch: &[Value],
        meta: FieldMeta<'s>,
        loc: &Loc<'_>,
    ) -> Result<(), PatchError> {
        match meta.list {
            ListStrategy::Replace => *original = self.replacement(patch, meta, loc)?,
            ListStrategy::MergeByKey(key) => self.merge_keyed(original, patch, key, meta.ty, loc)?,
            ListStrategy::MergeSet => merge_set(original, patch, loc)?,
        }
        Ok(())
    }

    /// The elements of a list that replaces the stored one.
    fn replacement(&self, patch: &[Value], meta: FieldMeta<'s>, loc: &Loc<'_>) -> Result<Vec<Value>, PatchError> {
        let element = FieldMeta {
            ty: meta.ty,
            list: ListStrategy::Replace,
        };
        let mut list = Vec::with_capacity(patch.len());
        for (index, item) in patch.iter().enumerate() {
            let here = Loc::Index(loc, index);
            match directive_of(item) {
                // Replacing is what happens to this list anyway.
                Some(directive) if directive == "replace" => continue,
                Some(directive) => {
                    return Err(invalid(
                        &here,
                        format_args!(
                            "this list has no merge key and is replaced whole, so an element cannot carry \
                             {DIRECTIVE}: {directive}; send the complete list instead"
                        ),
                    ))
                }
                None => {}
            }
            if let Some(value) = self.fresh(item, element, &here)? {
                list.push(value);
            }
        }
        Ok(list)
    }

    /// Merges a list of objects by `key`, in apimachinery's order: the patch's elements in the
    /// patch's order, with the stored-only elements kept where they stood relative to them.
    fn merge_keyed(
        &self,
        original: &mut Vec<Value>,
        patch: &[Value],
        key: &str,
        ty: Option<&'s str>,
        loc: &Loc<'_>,
    ) -> Result<(), PatchError> {
        let identity = Identity::Key(key);
        let mut replace = false;
        let mut plain = Vec::with_capacity(patch.len());
        for (index, item) in patch.iter().enumerate() {
            let Value::Object(fields) = item else {
                return Err(invalid(
                    &Loc::Index(loc, index),
                    format_args!(
                        "this list merges by {key:?}, so each element must be an object; found {}",
                        kind_of(item)
                    ),
                ));
            };
            let Some(directive) = fields.get(DIRECTIVE) else {
                plain.push((index, fields));
                continue;
            };
            match directive.as_str() {
                Some("delete") => {
                    let Some(id) = fields.get(key) else {
                        return Err(invalid(
                            &Loc::Index(loc, index),
                            format_args!(
                                "a {DIRECTIVE}: delete element needs the merge key {key:?} to say what to delete"
                            ),
                        ));
                    };
                    original.retain(|stored| !identity.of(stored).is_some_and(|other| values_equal(other, id)));
                }
                // Continue to pick up the list's other elements, which become the whole list.
                Some("replace") => replace = true,
                Some("merge") => {
                    return Err(invalid(
                        &Loc::Index(loc, index),
                        format_args!(
                        "{DIRECTIVE}: merge is not supported in list elements; lists with a merge key merge by default"
                    ),
                    ))
                }
                _ => {
                    return Err(invalid(
                        &Loc::Index(loc, index),
                        format_args!(
                            "unknown {DIRECTIVE} {directive} in a list element; use \"replace\" or \"delete\""
                        ),
                    ))
                }
            }
        }
        if replace {
            original.clear();
        }
        if let Some(index) = original.iter().position(|stored| !stored.is_object()) {
            return Err(invalid(
                &Loc::Index(loc, index),
                format_args!(
                    "the stored list holds {} where it should hold objects merged by {key:?}; \
                     replace the whole list with a {{\"{DIRECTIVE}\": \"replace\"}} element",
                    kind_of(&original[index])
                ),
            ));
        }

        // For each element, the index in `plain` of the first patch element that touched it.
        let stored_len = original.len();
        let mut touched_by: Vec<Option<usize>> = vec![None; stored_len];
        for (rank, (index, fields)) in plain.iter().enumerate() {
            let Some(id) = fields.get(key) else {
                return Err(invalid(
                    &Loc::Index(loc, *index),
                    format_args!("the element has no merge key {key:?}; each element of this list needs one"),
                ));
            };
            let here = Loc::Element(loc, key, id);
            match identity.position(original, id) {
                Some(at) => {
                    if let Value::Object(stored) = &mut original[at] {
                        self.merge_fields(stored, fields, ty, &here)?;
                    }
                    touched_by[at].get_or_insert(rank);
                }
                None => {
                    let mut added = Map::new();
                    self.merge_fields(&mut added, fields, ty, &here)?;
                    original.push(Value::Object(added));
                    touched_by.push(Some(rank));
                }
            }
        }

        let mut stored_only = Vec::new();
        let mut patched = Vec::new();
        for (at, (item, rank)) in mem::take(original).into_iter().zip(touched_by).enumerate() {
            let stored_at = (at < stored_len).then_some(at);
            match rank {
                Some(rank) => patched.push((rank, stored_at, item)),
                None => stored_only.push((stored_at, item)),
            }
        }
        patched.sort_by_key(|(rank, _, _)| *rank);
        *original = interleave(
            stored_only,
            patched.into_iter().map(|(_, at, item)| (at, item)).collect(),
        );
        Ok(())
    }

    /// Applies every `$setElementOrder/<list>` of `patch`: merges that list (with the patch's
    /// list of the same name, if any) and orders it. Returns the lists done, which the rest of
    /// the merge skips.
    fn set_element_orders<'p>(
        &self,
        original: &mut Map<String, Value>,
        patch: &'p Map<String, Value>,
        ty: Option<&'s str>,
        loc: &Loc<'_>,
    ) -> Result<Vec<&'p str>, PatchError> {
        let mut ordered = Vec::new();
        for (directive, order) in patch {
            let Some(field) = directive.strip_prefix(SET_ELEMENT_ORDER) else {
                continue;
            };
            let meta = self.meta(ty, field);
            let identity = match meta.list {
                ListStrategy::MergeByKey(key) => Identity::Key(key),
                ListStrategy::MergeSet => Identity::Value,
                // A list replaced whole comes in the patch's order already.
                ListStrategy::Replace => continue,
            };
            let directive_loc = Loc::Field(loc, directive);
            let Value::Array(order) = order else {
                return Err(invalid(
                    &directive_loc,
                    format_args!("must be a list, found {}", kind_of(order)),
                ));
            };
            if let Identity::Key(key) = identity {
                if let Some(index) = order.iter().position(|item| identity.of(item).is_none()) {
                    return Err(invalid(
                        &Loc::Index(&directive_loc, index),
                        format_args!("each element must be an object holding the merge key {key:?}"),
                    ));
                }
            }
            let field_loc = Loc::Field(loc, field);
            let patch_list = match patch.get(field) {
                None => None,
                Some(Value::Array(items)) => Some(items.as_slice()),
                Some(other) => {
                    return Err(invalid(
                        &field_loc,
                        format_args!(
                            "must be a list since the patch sets {directive}; found {}",
                            kind_of(other)
                        ),
                    ))
                }
            };
            if let Some(items) = patch_list {
                check_order(items, order, identity, &field_loc, directive)?;
            }
            // Where each element stood before this patch: ordering keeps stored-only elements there.
            let stored_ids: Vec<Value> = match original.get(field) {
                Some(Value::Array(items)) => items.iter().filter_map(|item| identity.of(item)).cloned().collect(),
                _ => Vec::new(),
            };
            if let Some(items) = patch_list {
                if let Some(Value::Array(stored)) = original.get_mut(field) {
                    self.merge_list(stored, items, meta, &field_loc)?;
                } else {
                    let fresh = self.fresh_list(items, meta, &field_loc)?;
                    original.insert(field.to_owned(), Value::Array(fresh));
                }
            }
            if let Some(Value::Array(list)) = original.get_mut(field) {
                reorder(list, order, identity, &stored_ids);
            }
            ordered.push(field);
        }
        Ok(ordered)
    }
}

/// Applies `$retainKeys`: checks that every field the patch sets is listed, then drops the
/// stored fields that are not.
fn retain_keys(original: &mut Map<String, Value>, patch: &Map<String, Value>, loc: &Loc<'_>) -> Result<(), PatchError> {
    let Some(retained) = patch.get(RETAIN_KEYS) else {
        return Ok(());
    };
    let here = Loc::Field(loc, RETAIN_KEYS);
    let Value::Array(retained) = retained else {
        return Err(invalid(
            &here,
            format_args!("must be a list of field names, found {}", kind_of(retained)),
        ));
    };
    let mut keep = Vec::with_capacity(retained.len());
    for name in retained {
        match name.as_str() {
            Some(name) => keep.push(name),
            None => return Err(invalid(&here, format_args!("must list field names, found {name}"))),
        }
    }
    for (key, value) in patch {
        if !key.starts_with('$') && !value.is_null() && !keep.contains(&key.as_str()) {
            return Err(invalid(
                loc,
                format_args!("the patch sets {key:?} but {RETAIN_KEYS} does not list it; add it to {RETAIN_KEYS}"),
            ));
        }
    }
    original.retain(|key, _| keep.contains(&key.as_str()));
    Ok(())
}

/// Applies `$deleteFromPrimitiveList/<field>`: removes the listed values from the stored list.
fn delete_from_list(
    original: &mut Map<String, Value>,
    field: &str,
    values: &Value,
    loc: &Loc<'_>,
) -> Result<(), PatchError> {
    let Value::Array(values) = values else {
        return Err(invalid(
            loc,
            format_args!("must be a list of the values to remove, found {}", kind_of(values)),
        ));
    };
    if let Some(Value::Array(list)) = original.get_mut(field) {
        list.retain(|item| !values.iter().any(|value| values_equal(value, item)));
    }
    Ok(())
}

/// Merges a list of scalars as a set: the patch's values in the patch's order, with the
/// stored-only values kept where they stood relative to them; no value twice.
fn merge_set(original: &mut Vec<Value>, patch: &[Value], loc: &Loc<'_>) -> Result<(), PatchError> {
    let scalar = |item: &Value| !(item.is_object() || item.is_array());
    if let Some(index) = original.iter().position(|item| !scalar(item)) {
        return Err(invalid(
            &Loc::Index(loc, index),
            format_args!(
                "the stored list should hold scalars but holds {}",
                kind_of(&original[index])
            ),
        ));
    }
    if let Some(index) = patch.iter().position(|item| !scalar(item)) {
        return Err(invalid(
            &Loc::Index(loc, index),
            format_args!("this list is a set of scalars; found {}", kind_of(&patch[index])),
        ));
    }
    let stored: &[Value] = original;
    let mut patched: Vec<(Option<usize>, Value)> = Vec::new();
    for value in patch {
        if !patched.iter().any(|(_, seen)| values_equal(seen, value)) {
            patched.push((Identity::Value.position(stored, value), value.clone()));
        }
    }
    let mut stored_only: Vec<(Option<usize>, Value)> = Vec::new();
    for (at, value) in stored.iter().enumerate() {
        let seen = |list: &[(Option<usize>, Value)]| list.iter().any(|(_, other)| values_equal(other, value));
        if !seen(&patched) && !seen(&stored_only) {
            stored_only.push((Some(at), value.clone()));
        }
    }
    *original = interleave(stored_only, patched);
    Ok(())
}

/// Checks that the patch's elements appear in `$setElementOrder` in the same relative order
/// (directive elements aside), as apimachinery requires.
fn check_order(
    items: &[Value],
    order: &[Value],
    identity: Identity<'_>,
    loc: &Loc<'_>,
    directive: &str,
) -> Result<(), PatchError> {
    if order.is_empty() {
        return Ok(());
    }
    let mut next = 0;
    for (index, item) in items.iter().enumerate() {
        if directive_of(item).is_some() {
            continue;
        }
        let Some(id) = identity.of(item) else {
            return Err(invalid(
                &Loc::Index(loc, index),
                "the element has no merge key; each element of this list needs one",
            ));
        };
        loop {
            let Some(listed) = order.get(next) else {
                return Err(invalid(
                    &Loc::Index(loc, index),
                    format_args!(
                        "{id} is missing from {directive} or out of its order; \
                         list every element of the patch there, in the same order"
                    ),
                ));
            };
            next += 1;
            if identity.of(listed).is_some_and(|other| values_equal(other, id)) {
                break;
            }
        }
    }
    Ok(())
}

/// Orders `list` by `$setElementOrder`: the elements it lists in its order, the others kept
/// where they stood in the stored list (`stored_ids`, before the patch) relative to them.
fn reorder(list: &mut Vec<Value>, order: &[Value], identity: Identity<'_>, stored_ids: &[Value]) {
    let mut listed = Vec::new();
    let mut unlisted = Vec::new();
    for item in mem::take(list) {
        let (rank, stored_at) = match identity.of(&item) {
            Some(id) => (
                identity.position(order, id),
                stored_ids.iter().position(|stored| values_equal(stored, id)),
            ),
            None => (None, None),
        };
        match rank {
            Some(rank) => listed.push((rank, stored_at, item)),
            None => unlisted.push((stored_at, item)),
        }
    }
    listed.sort_by_key(|(rank, _, _)| *rank);
    *list = interleave(unlisted, listed.into_iter().map(|(_, at, item)| (at, item)).collect());
}

/// Merges the stored-only elements (`left`) into the patch's (`right`), each side already in
/// its own order, each element with its position in the stored list if it had one. A stored-only
/// element goes first only when it stood before the next patch element in the stored list, so
/// elements new to the list come before the remaining stored-only ones (apimachinery's
/// `mergeSortedSlice`; `kubectl patch` shows an added container first).
fn interleave(left: Vec<(Option<usize>, Value)>, right: Vec<(Option<usize>, Value)>) -> Vec<Value> {
    let mut merged = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (Some((Some(l), _)), Some((Some(r), _))) => l < r,
            (Some(_), Some(_)) => false,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let next = if take_left { left.next() } else { right.next() };
        merged.extend(next.map(|(_, item)| item));
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::BuiltinSchema;
    use serde_json::json;

    fn patch_kind(kind: &str, original: Value, patch: Value) -> Result<Value, PatchError> {
        let root = BuiltinSchema::root_type(if kind == "Deployment" { "apps" } else { "" }, kind);
        strategic_merge_patch(&original, &patch, &BuiltinSchema, root)
    }

    fn patched(kind: &str, original: Value, patch: Value) -> Value {
        match patch_kind(kind, original, patch.clone()) {
            Ok(value) => value,
            Err(error) => panic!("patch {patch} failed: {error}"),
        }
    }

    fn invalid_reason(kind: &str, original: Value, patch: Value) -> String {
        match patch_kind(kind, original, patch) {
            Err(PatchError::Invalid { reason }) => reason,
            other => panic!("expected an invalid patch, got {other:?}"),
        }
    }

    fn deployment(pod_spec: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "patch-demo"},
               "spec": {"replicas": 2, "template": {"metadata": {"labels": {"app": "nginx"}}, "spec": pod_spec}}})
    }

    fn pod_spec_of(object: &Value) -> &Value {
        &object["spec"]["template"]["spec"]
    }

    fn names(list: &Value) -> Vec<&str> {
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| item["name"].as_str())
            .collect()
    }

    #[test]
    fn containers_merge_by_name_and_an_added_container_comes_first() {
        // "Update API Objects in Place Using kubectl patch": the patch adds patch-demo-ctr-2
        // and the result lists it before the existing container, which keeps its fields.
        let original = deployment(json!({"containers": [
            {"name": "patch-demo-ctr", "image": "nginx", "imagePullPolicy": "Always"}
        ]}));
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "patch-demo-ctr-2", "image": "redis"}
        ]}}}});
        let result = patched("Deployment", original, patch);
        assert_eq!(
            pod_spec_of(&result)["containers"],
            json!([
                {"name": "patch-demo-ctr-2", "image": "redis"},
                {"name": "patch-demo-ctr", "image": "nginx", "imagePullPolicy": "Always"}
            ])
        );
        assert_eq!(result["spec"]["replicas"], 2);
    }

    #[test]
    fn a_patched_container_merges_its_fields_and_its_env_by_name() {
        let original = json!({"spec": {"containers": [
            {"name": "web", "image": "nginx:1.0", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
            {"name": "sidecar", "image": "envoy"}
        ]}});
        let patch = json!({"spec": {"containers": [
            {"name": "web", "image": "nginx:1.1", "env": [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}]}
        ]}});
        let result = patched("Pod", original, patch);
        assert_eq!(
            result["spec"]["containers"],
            json!([
                {"name": "web", "image": "nginx:1.1",
                 "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "20"}, {"name": "C", "value": "3"}]},
                {"name": "sidecar", "image": "envoy"}
            ])
        );
    }

    #[test]
    fn tolerations_are_replaced_not_merged() {
        // The same kubectl patch page: tolerations have no patch strategy, so the list is replaced.
        let original = deployment(json!({
            "containers": [{"name": "patch-demo-ctr", "image": "nginx"}],
            "tolerations": [{"effect": "NoSchedule", "key": "dedicated", "value": "test-team"}]
        }));
        let patch = json!({"spec": {"template": {"spec": {
            "tolerations": [{"effect": "NoSchedule", "key": "disktype", "value": "ssd"}]
        }}}});
        let result = patched("Deployment", original, patch);
        assert_eq!(
            pod_spec_of(&result)["tolerations"],
            json!([{"effect": "NoSchedule", "key": "disktype", "value": "ssd"}])
        );
        assert_eq!(names(&pod_spec_of(&result)["containers"]), ["patch-demo-ctr"]);
    }

    #[test]
    fn patch_replace_in_a_list_replaces_the_whole_list() {
        let original = json!({"spec": {"containers": [
            {"name": "nginx", "image": "nginx"}, {"name": "log-tailer", "image": "log-tailer"}
        ]}});
        let patch = json!({"spec": {"containers": [{"name": "nginx", "image": "nginx-1.0"}, {"$patch": "replace"}]}});
        assert_eq!(
            patched("Pod", original, patch)["spec"]["containers"],
            json!([{"name": "nginx", "image": "nginx-1.0"}])
        );
    }

    #[test]
    fn patch_replace_in_a_map_replaces_the_whole_map() {
        let original =
            json!({"spec": {"containers": [{"name": "nginx", "image": "nginx"}], "restartPolicy": "Always"}});
        let patch = json!({"spec": {"$patch": "replace", "containers": [{"name": "nginx", "image": "nginx-1.0"}]}});
        assert_eq!(
            patched("Pod", original, patch)["spec"],
            json!({"containers": [{"name": "nginx", "image": "nginx-1.0"}]})
        );
    }

    #[test]
    fn patch_delete_in_a_list_element_deletes_the_element_with_that_key() {
        let original = json!({"spec": {"containers": [
            {"name": "nginx", "image": "nginx"}, {"name": "log-tailer", "image": "log-tailer"}
        ]}});
        let patch = json!({"spec": {"containers": [
            {"name": "nginx", "image": "nginx-1.0"}, {"$patch": "delete", "name": "log-tailer"}
        ]}});
        assert_eq!(
            patched("Pod", original, patch)["spec"]["containers"],
            json!([{"name": "nginx", "image": "nginx-1.0"}])
        );
    }

    #[test]
    fn patch_delete_in_a_map_deletes_the_map() {
        let original = deployment(json!({"containers": []}));
        let mut original = original;
        original["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}});
        let patch = json!({"spec": {"strategy": {"rollingUpdate": {"$patch": "delete"}}}});
        assert_eq!(
            patched("Deployment", original, patch)["spec"]["strategy"],
            json!({"type": "RollingUpdate"})
        );
    }

    #[test]
    fn set_element_order_orders_a_list_merged_by_key() {
        let original = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}});
        let patch = json!({"spec": {
            "$setElementOrder/containers": [{"name": "a"}, {"name": "d"}, {"name": "b"}, {"name": "c"}],
            "containers": [{"name": "d", "image": "redis"}]
        }});
        assert_eq!(
            names(&patched("Pod", original, patch)["spec"]["containers"]),
            ["a", "d", "b", "c"]
        );
    }

    #[test]
    fn set_element_order_alone_reorders_the_stored_list() {
        let original = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b"}, {"name": "c"}]}});
        let patch = json!({"spec": {"$setElementOrder/containers": [{"name": "c"}, {"name": "a"}, {"name": "b"}]}});
        let result = patched("Pod", original, patch);
        assert_eq!(names(&result["spec"]["containers"]), ["c", "a", "b"]);
        assert_eq!(result["spec"]["containers"][1]["image"], "x");
    }

    #[test]
    fn set_element_order_orders_a_list_of_scalars() {
        let original = json!({"metadata": {"finalizers": ["a", "b", "c"]}});
        let patch = json!({"metadata": {"$setElementOrder/finalizers": ["a", "b", "c", "d"], "finalizers": ["d"]}});
        assert_eq!(
            patched("Pod", original, patch)["metadata"]["finalizers"],
            json!(["a", "b", "c", "d"])
        );
    }

    #[test]
    fn set_element_order_that_contradicts_the_patch_is_rejected() {
        let original = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        let patch = json!({"spec": {
            "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
            "containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]
        }});
        let reason = invalid_reason("Pod", original, patch);
        assert!(
            reason.contains("spec.containers[1]") && reason.contains("$setElementOrder/containers"),
            "{reason}"
        );
    }

    #[test]
    fn retain_keys_clears_the_fields_it_does_not_list() {
        // kubectl patch docs: switch a Deployment to Recreate, dropping rollingUpdate.
        let mut original = deployment(json!({"containers": [{"name": "retainkeys-demo-ctr", "image": "nginx"}]}));
        original["spec"]["strategy"] =
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}});
        let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}});
        assert_eq!(
            patched("Deployment", original, patch)["spec"]["strategy"],
            json!({"type": "Recreate"})
        );
    }

    #[test]
    fn retain_keys_rejects_a_patched_field_it_does_not_list() {
        let original = json!({"spec": {"strategy": {"type": "RollingUpdate"}}});
        let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 1}}}});
        let reason = invalid_reason("Deployment", original, patch);
        assert!(
            reason.contains("at spec.strategy") && reason.contains("\"rollingUpdate\""),
            "{reason}"
        );
    }

    #[test]
    fn delete_from_primitive_list_removes_the_values() {
        let original = json!({"metadata": {"finalizers": ["a", "b", "c"]}});
        let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "z"]}});
        assert_eq!(
            patched("Pod", original, patch)["metadata"]["finalizers"],
            json!(["a", "c"])
        );
    }

    #[test]
    fn finalizers_merge_as_a_set_without_duplicates() {
        let original = json!({"metadata": {"finalizers": ["a", "b"]}});
        let patch = json!({"metadata": {"finalizers": ["b", "c", "c"]}});
        assert_eq!(
            patched("Pod", original.clone(), patch)["metadata"]["finalizers"],
            json!(["a", "b", "c"])
        );
        // A value new to the list goes before the stored-only ones, as in apimachinery.
        let patch = json!({"metadata": {"finalizers": ["c"]}});
        assert_eq!(
            patched("Pod", original, patch)["metadata"]["finalizers"],
            json!(["c", "a", "b"])
        );
    }

    #[test]
    fn null_deletes_a_key_and_is_not_stored_in_new_maps() {
        let original = json!({"metadata": {"labels": {"app": "web", "tier": "front"}}});
        let patch = json!({"metadata": {"labels": {"tier": null}, "annotations": {"a": "1", "b": null}}});
        assert_eq!(
            patched("Pod", original, patch)["metadata"],
            json!({"labels": {"app": "web"}, "annotations": {"a": "1"}})
        );
    }

    #[test]
    fn directives_in_values_new_to_the_object_are_applied_not_stored() {
        let original = json!({"spec": {"containers": [{"name": "web"}]}});
        let patch = json!({"spec": {
            "securityContext": {"$patch": "replace", "runAsUser": 1000},
            "affinity": {"$patch": "delete"},
            "initContainers": [{"name": "init", "env": [
                {"name": "A", "value": "1"}, {"name": "B", "$patch": "delete"}
            ]}]
        }});
        assert_eq!(
            patched("Pod", original, patch)["spec"],
            json!({
                "containers": [{"name": "web"}],
                "securityContext": {"runAsUser": 1000},
                "initContainers": [{"name": "init", "env": [{"name": "A", "value": "1"}]}]
            })
        );
    }

    #[test]
    fn container_ports_match_their_numeric_key_by_value() {
        let original =
            json!({"spec": {"containers": [{"name": "web", "ports": [{"containerPort": 80, "name": "http"}]}]}});
        let patch =
            json!({"spec": {"containers": [{"name": "web", "ports": [{"containerPort": 80.0, "protocol": "TCP"}]}]}});
        let ports = &patched("Pod", original, patch)["spec"]["containers"][0]["ports"];
        assert!(
            values_equal(
                ports,
                &json!([{"containerPort": 80, "name": "http", "protocol": "TCP"}])
            ),
            "{ports}"
        );
    }

    #[test]
    fn service_ports_merge_by_port() {
        let original =
            json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443, "targetPort": 8443}]}});
        let patch = json!({"spec": {"ports": [{"port": 443, "targetPort": 9443}]}});
        assert_eq!(
            patched("Service", original, patch)["spec"]["ports"],
            json!([{"port": 80, "targetPort": 8080}, {"port": 443, "targetPort": 9443}])
        );
    }

    #[test]
    fn pod_conditions_merge_by_type() {
        let original = json!({"status": {"conditions": [
            {"type": "Ready", "status": "False"}, {"type": "PodScheduled", "status": "True"}
        ]}});
        let patch = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        assert_eq!(
            patched("Pod", original, patch)["status"]["conditions"],
            json!([{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}])
        );
    }

    #[test]
    fn lists_of_unknown_kinds_are_replaced() {
        let original = json!({"spec": {"containers": [{"name": "a"}]}, "metadata": {"finalizers": ["x"]}});
        let patch = json!({"spec": {"containers": [{"name": "b"}]}, "metadata": {"finalizers": ["y"]}});
        let result = strategic_merge_patch(&original, &patch, &BuiltinSchema, None);
        assert_eq!(
            result.ok(),
            Some(json!({"spec": {"containers": [{"name": "b"}]}, "metadata": {"finalizers": ["y"]}}))
        );
    }

    #[test]
    fn an_element_without_its_merge_key_is_rejected_with_its_path() {
        let original = deployment(json!({"containers": [{"name": "a"}]}));
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"image": "nginx"}]}}}});
        let reason = invalid_reason("Deployment", original, patch);
        assert!(
            reason.contains("spec.template.spec.containers[0]") && reason.contains("no merge key \"name\""),
            "{reason}"
        );
    }

    #[test]
    fn errors_inside_a_merged_element_name_it_by_its_key() {
        let original = json!({"spec": {"containers": [{"name": "web", "env": []}]}});
        let patch = json!({"spec": {"containers": [{"name": "web", "env": [{"value": "1"}]}]}});
        let reason = invalid_reason("Pod", original, patch);
        assert!(reason.contains("spec.containers[name=\"web\"].env[0]"), "{reason}");
    }

    #[test]
    fn a_delete_directive_in_a_replaced_list_is_rejected() {
        let original = json!({"spec": {"tolerations": [{"key": "a"}]}});
        let patch = json!({"spec": {"tolerations": [{"key": "a", "$patch": "delete"}]}});
        let reason = invalid_reason("Pod", original, patch);
        assert!(
            reason.contains("spec.tolerations[0]") && reason.contains("replaced whole"),
            "{reason}"
        );
    }

    #[test]
    fn unknown_directives_are_rejected() {
        let reason = invalid_reason("Pod", json!({}), json!({"spec": {"$patch": "frobnicate"}}));
        assert!(reason.contains("unknown $patch \"frobnicate\""), "{reason}");
        let reason = invalid_reason("Pod", json!({}), json!({"metadata": {"$retainKey": ["name"]}}));
        assert!(reason.contains("metadata.$retainKey: unknown directive"), "{reason}");
    }

    #[test]
    fn deleting_the_whole_object_is_rejected() {
        let reason = invalid_reason("Pod", json!({"metadata": {"name": "web"}}), json!({"$patch": "delete"}));
        assert!(reason.contains("kubectl delete"), "{reason}");
    }

    #[test]
    fn merging_keeps_the_order_of_stored_keys() {
        let original = json!({"metadata": {"name": "web", "labels": {"b": "1", "a": "2"}}, "spec": {}});
        let result = patched("Pod", original, json!({"metadata": {"labels": {"b": null, "c": "3"}}}));
        let keys: Vec<&String> = result["metadata"]["labels"]
            .as_object()
            .into_iter()
            .flat_map(|m| m.keys())
            .collect();
        assert_eq!(keys, ["a", "c"]);
        let keys: Vec<&String> = result.as_object().into_iter().flat_map(|m| m.keys()).collect();
        assert_eq!(keys, ["metadata", "spec"]);
    }
}
