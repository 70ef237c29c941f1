//! Label and field selectors: parsing, canonical printing and matching, with the grammar,
//! messages and semantics of Kubernetes' apimachinery `labels` and `fields` packages.
//!
//! A [`LabelSelector`] is a conjunction of [`Requirement`]s on an object's labels; a
//! [`FieldSelector`] a conjunction of (in)equalities on a few well-known fields of an object.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};

use crate::validation::{go_quote, is_qualified_name, is_valid_label_value};

/// Why a selector could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// The selector is malformed; `reason` says what is wrong and, for query strings, at which
    /// (0-based, in characters) position.
    #[error("invalid selector {selector:?}: {reason}")]
    Invalid {
        /// The selector as given: the query string, or the JSON of a selector object.
        selector: String,
        reason: String,
    },
    /// A field selector names a field objects of the kind cannot be selected by.
    #[error("field label not supported: {field}")]
    UnsupportedField { field: String },
}

/// The operator of one label requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `key=value`
    Equals,
    /// `key==value` (same meaning as `=`, kept so the selector prints back as written)
    DoubleEquals,
    /// `key!=value`: also true when the label is absent.
    NotEquals,
    /// `key in (a,b)`
    In,
    /// `key notin (a,b)`: also true when the label is absent.
    NotIn,
    /// `key`
    Exists,
    /// `!key`
    DoesNotExist,
    /// `key>5`: the label's value, read as an integer, is greater.
    GreaterThan,
    /// `key<5`: the label's value, read as an integer, is smaller.
    LessThan,
}

/// One condition on one label key, validated as Kubernetes' `labels.NewRequirement` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    operator: Operator,
    /// As given; printed sorted. One value for the equality and integer operators, at least
    /// one for the set operators, none for (not) exists.
    values: Vec<String>,
}

impl Requirement {
    /// A requirement after checking the key (a qualified name), the values (label values)
    /// and the number of values the operator takes.
    pub fn new(key: impl Into<String>, operator: Operator, values: Vec<String>) -> Result<Requirement, SelectorError> {
        let r = Requirement {
            key: key.into(),
            operator,
            values,
        };
        match r.problems() {
            None => Ok(r),
            Some(reason) => Err(SelectorError::Invalid {
                selector: r.to_string(),
                reason,
            }),
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn operator(&self) -> Operator {
        self.operator
    }

    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether a labels map satisfies this requirement.
    pub fn matches(&self, labels: &Map<String, Value>) -> bool {
        // A label whose value is not a string (which validation rejects) reads as "", as
        // JSON null does when Kubernetes decodes it.
        let value = labels.get(&self.key).map(|v| v.as_str().unwrap_or(""));
        match self.operator {
            Operator::Equals | Operator::DoubleEquals | Operator::In => value.is_some_and(|v| self.has_value(v)),
            Operator::NotEquals | Operator::NotIn => value.is_none_or(|v| !self.has_value(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(have), [want]) = (value.and_then(|v| v.parse::<i64>().ok()), self.values.as_slice()) else {
                    return false;
                };
                let Ok(want) = want.parse::<i64>() else { return false };
                if self.operator == Operator::GreaterThan {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }

    fn has_value(&self, v: &str) -> bool {
        self.values.iter().any(|x| x == v)
    }

    /// Every problem with this requirement, in Kubernetes' aggregate form (`a` or `[a, b]`).
    fn problems(&self) -> Option<String> {
        let mut errs: Vec<String> = key_problem(&self.key).into_iter().collect();
        let n = self.values.len();
        let list = || Value::from(self.values.clone()).to_string();
        match self.operator {
            Operator::In | Operator::NotIn if n == 0 => errs.push(format!(
                "values: Invalid value: {}: for 'in', 'notin' operators, values set can't be empty",
                list()
            )),
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals if n != 1 => errs.push(format!(
                "values: Invalid value: {}: exact-match compatibility requires one single value",
                list()
            )),
            Operator::Exists | Operator::DoesNotExist if n != 0 => errs.push(format!(
                "values: Invalid value: {}: values set must be empty for exists and does not exist",
                list()
            )),
            Operator::GreaterThan | Operator::LessThan => {
                if n != 1 {
                    errs.push(format!(
                        "values: Invalid value: {}: for 'Gt', 'Lt' operators, exactly one value is required",
                        list()
                    ));
                }
                for (i, v) in self.values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errs.push(format!(
                            "values[{i}]: Invalid value: {}: for 'Gt', 'Lt' operators, the value must be an integer",
                            go_quote(v)
                        ));
                    }
                }
            }
            _ => {}
        }
        for (i, v) in self.values.iter().enumerate() {
            let msgs = is_valid_label_value(v);
            if !msgs.is_empty() {
                errs.push(format!(
                    "values[{i}][{}]: Invalid value: {}: {}",
                    self.key,
                    go_quote(v),
                    msgs.join("; ")
                ));
            }
        }
        match errs.len() {
            0 => None,
            1 => errs.pop(),
            _ => Some(format!("[{}]", errs.join(", "))),
        }
    }
}

/// What is wrong with a label key, as Kubernetes words it.
fn key_problem(key: &str) -> Option<String> {
    let msgs = is_qualified_name(key);
    (!msgs.is_empty()).then(|| format!("key: Invalid value: {}: {}", go_quote(key), msgs.join("; ")))
}

/// The canonical form, as `labels.Requirement.String()`: `a=b`, `a in (x,y)`, `!a`.
impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let (op, set) = match self.operator {
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
            Operator::Equals => ("=", false),
            Operator::DoubleEquals => ("==", false),
            Operator::NotEquals => ("!=", false),
            Operator::In => (" in ", true),
            Operator::NotIn => (" notin ", true),
            Operator::GreaterThan => (">", false),
            Operator::LessThan => ("<", false),
        };
        let mut values: Vec<&str> = self.values.iter().map(String::as_str).collect();
        values.sort_unstable();
        let values = values.join(",");
        if set {
            write!(f, "{op}({values})")
        } else {
            write!(f, "{op}{values}")
        }
    }
}

/// A label selector: requirements that must all hold, or `nothing()`, which matches no object.
///
/// `Default` is [`LabelSelector::everything`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    /// Sorted by key (stably, so equal keys keep their written order).
    requirements: Vec<Requirement>,
    /// Set only by `nothing()`; `requirements` is then empty.
    nothing: bool,
}

impl LabelSelector {
    /// Parses the query syntax of `?labelSelector=` and `kubectl -l`: `a=b`, `a==b`, `a!=b`,
    /// `a in (x,y)`, `a notin (x)`, `a`, `!a`, `a>1`, `a<1`, comma-separated (all must hold).
    /// Whitespace between tokens is ignored; keys and values are validated. The empty string
    /// selects everything. Errors say what was found, what was expected and at which position.
    pub fn parse(s: &str) -> Result<LabelSelector, SelectorError> {
        let mut parser = Parser {
            input: s,
            tokens: lex(s),
            at: 0,
        };
        let requirements = parser.parse()?;
        Ok(LabelSelector::from_requirements(requirements))
    }

    /// Builds a selector from a `metav1.LabelSelector` object, `{matchLabels: {k: v},
    /// matchExpressions: [{key, operator: In|NotIn|Exists|DoesNotExist, values}]}`, as the
    /// specs of Deployments, ReplicaSets and Jobs carry. JSON null selects nothing, and an
    /// object with neither part everything, as `metav1.LabelSelectorAsSelector` has it.
    pub fn from_label_selector(v: &Value) -> Result<LabelSelector, SelectorError> {
        let invalid = |reason: String| SelectorError::Invalid {
            selector: v.to_string(),
            reason,
        };
        let obj = match v {
            Value::Null => return Ok(LabelSelector::nothing()),
            Value::Object(obj) => obj,
            _ => {
                return Err(invalid(
                    "a label selector must be an object with matchLabels and/or matchExpressions".into(),
                ))
            }
        };
        let mut requirements = Vec::new();
        match obj.get("matchLabels") {
            None | Some(Value::Null) => {}
            Some(Value::Object(labels)) => {
                for (k, val) in labels {
                    let Some(val) = val.as_str() else {
                        return Err(invalid(format!("matchLabels[{k}]: the value must be a string")));
                    };
                    let r = Requirement {
                        key: k.clone(),
                        operator: Operator::Equals,
                        values: vec![val.to_string()],
                    };
                    if let Some(p) = r.problems() {
                        return Err(invalid(format!("matchLabels: {p}")));
                    }
                    requirements.push(r);
                }
            }
            Some(_) => return Err(invalid("matchLabels: must be an object of label keys to values".into())),
        }
        match obj.get("matchExpressions") {
            None | Some(Value::Null) => {}
            Some(Value::Array(exprs)) => {
                for (i, e) in exprs.iter().enumerate() {
                    let Some(key) = e.get("key").and_then(Value::as_str) else {
                        return Err(invalid(format!("matchExpressions[{i}].key: must be a string")));
                    };
                    let operator = match e.get("operator").and_then(Value::as_str) {
                        Some("In") => Operator::In,
                        Some("NotIn") => Operator::NotIn,
                        Some("Exists") => Operator::Exists,
                        Some("DoesNotExist") => Operator::DoesNotExist,
                        other => {
                            return Err(invalid(format!(
                                "matchExpressions[{i}].operator: {} is not a valid label selector operator",
                                go_quote(other.unwrap_or(""))
                            )))
                        }
                    };
                    let values = match e.get("values") {
                        None | Some(Value::Null) => Vec::new(),
                        Some(Value::Array(vals)) => {
                            let strings: Option<Vec<String>> =
                                vals.iter().map(|x| x.as_str().map(str::to_string)).collect();
                            strings.ok_or_else(|| invalid(format!("matchExpressions[{i}].values: must be strings")))?
                        }
                        Some(_) => return Err(invalid(format!("matchExpressions[{i}].values: must be a list"))),
                    };
                    let r = Requirement {
                        key: key.to_string(),
                        operator,
                        values,
                    };
                    if let Some(p) = r.problems() {
                        return Err(invalid(format!("matchExpressions[{i}]: {p}")));
                    }
                    requirements.push(r);
                }
            }
            Some(_) => return Err(invalid("matchExpressions: must be a list".into())),
        }
        Ok(LabelSelector::from_requirements(requirements))
    }

    /// Builds a selector from a plain map (a ReplicationController's or Service's `selector`):
    /// equality on each pair. Null or an empty map selects everything, as
    /// `labels.SelectorFromSet` has it; whether "everything" makes sense is the caller's call.
    pub fn from_map(v: &Value) -> Result<LabelSelector, SelectorError> {
        let invalid = |reason: String| SelectorError::Invalid {
            selector: v.to_string(),
            reason,
        };
        let map = match v {
            Value::Null => return Ok(LabelSelector::everything()),
            Value::Object(map) => map,
            _ => return Err(invalid("a selector must be an object of label keys to values".into())),
        };
        let mut requirements = Vec::with_capacity(map.len());
        for (k, val) in map {
            let Some(val) = val.as_str() else {
                return Err(invalid(format!("[{k}]: the value must be a string")));
            };
            let r = Requirement {
                key: k.clone(),
                operator: Operator::Equals,
                values: vec![val.to_string()],
            };
            if let Some(p) = r.problems() {
                return Err(invalid(p));
            }
            requirements.push(r);
        }
        Ok(LabelSelector::from_requirements(requirements))
    }

    /// A selector of already validated requirements (see [`Requirement::new`]).
    pub fn from_requirements(mut requirements: Vec<Requirement>) -> LabelSelector {
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        LabelSelector {
            requirements,
            nothing: false,
        }
    }

    /// Matches every object.
    pub fn everything() -> LabelSelector {
        LabelSelector::default()
    }

    /// Matches no object.
    pub fn nothing() -> LabelSelector {
        LabelSelector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// The requirements, sorted by key; empty for both `everything()` and `nothing()`.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether this selector matches everything (it has no requirements and is not `nothing()`).
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// Whether a labels map (`metadata.labels` of an object) satisfies every requirement.
    pub fn matches(&self, labels: &Map<String, Value>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Whether an object's `metadata.labels` satisfies every requirement; absent labels are
    /// an empty map.
    pub fn matches_object(&self, obj: &Value) -> bool {
        match obj.pointer("/metadata/labels").and_then(Value::as_object) {
            Some(labels) => self.matches(labels),
            None => self.matches(&Map::new()),
        }
    }
}

/// The canonical form, as Kubernetes prints it: requirements sorted by key, joined by `,`,
/// set values sorted (`a in (x,y),b!=c,!d`). Both `everything()` and `nothing()` print as "".
impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl FromStr for LabelSelector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LabelSelector::parse(s)
    }
}

// ---- The label selector lexer and parser, after apimachinery's labels/selector.go. ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    End,
    Identifier,
    In,
    NotIn,
    OpenPar,
    ClosedPar,
    Comma,
    Bang,
    Equals,
    DoubleEquals,
    NotEquals,
    GreaterThan,
    LessThan,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    lit: String,
    /// Position of the token's first character, counted in characters from 0.
    pos: usize,
}

/// Where a token is read: `in` and `notin` are operators only right after a key; elsewhere
/// (as keys and values) they are plain identifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    KeyAndOperator,
    Values,
}

fn is_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_special(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '>' | '<')
}

/// Splits the input into tokens, ending with `End`. Every character either separates
/// (whitespace), is an operator or parenthesis, or belongs to an identifier, so lexing cannot
/// fail; the parser judges the sequence.
fn lex(s: &str) -> Vec<Token> {
    let chars: Vec<char> = s.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if is_whitespace(c) {
            i += 1;
            continue;
        }
        let pos = i;
        if is_special(c) {
            // The longest operator spelled here: `!=` and `==` are one token each; every
            // other special character stands alone (`)(` is two).
            let two = (c == '!' || c == '=') && chars.get(i + 1) == Some(&'=');
            let (tok, len) = match (c, two) {
                ('!', true) => (Tok::NotEquals, 2),
                ('=', true) => (Tok::DoubleEquals, 2),
                ('!', _) => (Tok::Bang, 1),
                ('=', _) => (Tok::Equals, 1),
                ('(', _) => (Tok::OpenPar, 1),
                (')', _) => (Tok::ClosedPar, 1),
                (',', _) => (Tok::Comma, 1),
                ('>', _) => (Tok::GreaterThan, 1),
                _ => (Tok::LessThan, 1),
            };
            tokens.push(Token {
                tok,
                lit: chars[i..i + len].iter().collect(),
                pos,
            });
            i += len;
            continue;
        }
        while i < chars.len() && !is_whitespace(chars[i]) && !is_special(chars[i]) {
            i += 1;
        }
        let lit: String = chars[pos..i].iter().collect();
        let tok = match lit.as_str() {
            "in" => Tok::In,
            "notin" => Tok::NotIn,
            _ => Tok::Identifier,
        };
        tokens.push(Token { tok, lit, pos });
    }
    tokens.push(Token {
        tok: Tok::End,
        lit: String::new(),
        pos: chars.len(),
    });
    tokens
}

struct Parser<'a> {
    input: &'a str,
    /// Ends with `End`, which `next` never moves past.
    tokens: Vec<Token>,
    at: usize,
}

impl Parser<'_> {
    fn peek(&self, ctx: Ctx) -> Token {
        let mut t = self.tokens[self.at].clone();
        if ctx == Ctx::Values && matches!(t.tok, Tok::In | Tok::NotIn) {
            t.tok = Tok::Identifier;
        }
        t
    }

    fn next(&mut self, ctx: Ctx) -> Token {
        let t = self.peek(ctx);
        if self.at + 1 < self.tokens.len() {
            self.at += 1;
        }
        t
    }

    fn fail_at(&self, pos: usize, reason: impl fmt::Display) -> SelectorError {
        SelectorError::Invalid {
            selector: self.input.to_string(),
            reason: format!("position {pos}: {reason}"),
        }
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, SelectorError> {
        let mut requirements = Vec::new();
        loop {
            let t = self.peek(Ctx::Values);
            match t.tok {
                Tok::Identifier | Tok::Bang => {
                    requirements.push(self.requirement()?);
                    let t = self.next(Ctx::Values);
                    match t.tok {
                        Tok::End => return Ok(requirements),
                        Tok::Comma => {
                            let after = self.peek(Ctx::Values);
                            if !matches!(after.tok, Tok::Identifier | Tok::Bang) {
                                return Err(self.unexpected_token(&after, "identifier after ','"));
                            }
                        }
                        _ => return Err(self.unexpected_token(&t, "',' or end of string")),
                    }
                }
                Tok::End => return Ok(requirements),
                _ => return Err(self.unexpected_token(&t, "!, identifier, or end of string")),
            }
        }
    }

    fn unexpected_token(&self, found: &Token, expected: &str) -> SelectorError {
        let what = match found.tok {
            Tok::End => "end of string".to_string(),
            _ => format!("'{}'", found.lit),
        };
        self.fail_at(found.pos, format!("found {what}, expected: {expected}"))
    }

    fn requirement(&mut self) -> Result<Requirement, SelectorError> {
        let mut operator = None;
        let mut t = self.next(Ctx::Values);
        if t.tok == Tok::Bang {
            operator = Some(Operator::DoesNotExist);
            t = self.next(Ctx::Values);
        }
        if t.tok != Tok::Identifier {
            return Err(self.unexpected_token(&t, "identifier"));
        }
        let (key, key_pos) = (t.lit, t.pos);
        if let Some(p) = key_problem(&key) {
            return Err(self.fail_at(key_pos, p));
        }
        if operator.is_none() && matches!(self.peek(Ctx::Values).tok, Tok::End | Tok::Comma) {
            operator = Some(Operator::Exists);
        }
        let (operator, values) = match operator {
            // `!key` followed by anything but `,` or the end is left for the caller to reject.
            Some(op) => (op, Vec::new()),
            None => {
                let t = self.next(Ctx::KeyAndOperator);
                let op = match t.tok {
                    Tok::In => Operator::In,
                    Tok::NotIn => Operator::NotIn,
                    Tok::Equals => Operator::Equals,
                    Tok::DoubleEquals => Operator::DoubleEquals,
                    Tok::NotEquals => Operator::NotEquals,
                    Tok::GreaterThan => Operator::GreaterThan,
                    Tok::LessThan => Operator::LessThan,
                    _ => return Err(self.unexpected_token(&t, "in, notin, =, ==, !=, gt, lt")),
                };
                let values = match op {
                    Operator::In | Operator::NotIn => self.set_values()?,
                    _ => self.exact_value()?,
                };
                (op, values)
            }
        };
        let r = Requirement { key, operator, values };
        match r.problems() {
            Some(p) => Err(self.fail_at(key_pos, p)),
            None => Ok(r),
        }
    }

    /// `(a,b,c)`: a set, sorted and without duplicates. `()` is the set holding "".
    fn set_values(&mut self) -> Result<Vec<String>, SelectorError> {
        let t = self.next(Ctx::Values);
        if t.tok != Tok::OpenPar {
            return Err(self.unexpected_token(&t, "'('"));
        }
        let t = self.peek(Ctx::Values);
        match t.tok {
            Tok::Identifier | Tok::Comma => {
                let set = self.identifiers()?;
                let t = self.next(Ctx::Values);
                if t.tok != Tok::ClosedPar {
                    return Err(self.unexpected_token(&t, "')'"));
                }
                Ok(set.into_iter().collect())
            }
            Tok::ClosedPar => {
                self.next(Ctx::Values);
                Ok(vec![String::new()])
            }
            _ => Err(self.unexpected_token(&t, "',', ')' or identifier")),
        }
    }

    /// A comma-separated list of possibly empty identifiers (`a,,b` holds "", `a,` too).
    fn identifiers(&mut self) -> Result<BTreeSet<String>, SelectorError> {
        let mut set = BTreeSet::new();
        loop {
            let t = self.next(Ctx::Values);
            match t.tok {
                Tok::Identifier => {
                    set.insert(t.lit);
                    let after = self.peek(Ctx::Values);
                    match after.tok {
                        Tok::Comma => continue,
                        Tok::ClosedPar => return Ok(set),
                        _ => return Err(self.unexpected_token(&after, "',' or ')'")),
                    }
                }
                Tok::Comma => {
                    if set.is_empty() {
                        set.insert(String::new());
                    }
                    let after = self.peek(Ctx::Values);
                    if after.tok == Tok::ClosedPar {
                        set.insert(String::new());
                        return Ok(set);
                    }
                    if after.tok == Tok::Comma {
                        self.next(Ctx::Values);
                        set.insert(String::new());
                    }
                }
                _ => return Err(self.unexpected_token(&t, "',', or identifier")),
            }
        }
    }

    /// The one value after `=`, `==`, `!=`, `>` or `<`; nothing before `,` or the end is "".
    fn exact_value(&mut self) -> Result<Vec<String>, SelectorError> {
        if matches!(self.peek(Ctx::Values).tok, Tok::End | Tok::Comma) {
            return Ok(vec![String::new()]);
        }
        let t = self.next(Ctx::Values);
        if t.tok == Tok::Identifier {
            Ok(vec![t.lit])
        } else {
            Err(self.unexpected_token(&t, "identifier"))
        }
    }
}

// ---- Field selectors, after apimachinery's fields/selector.go. ----

/// A field selector: `field=value`, `field==value` and `field!=value` terms that must all
/// hold, read from an object as strings.
///
/// `Default` is [`FieldSelector::everything`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    /// In the order Kubernetes sorts them: by the text of each term as written.
    terms: Vec<FieldTerm>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldTerm {
    field: String,
    /// `=`/`==` when true, `!=` when false.
    equals: bool,
    /// Unescaped.
    value: String,
}

/// Every kind can be selected by these.
const COMMON_FIELDS: &[&str] = &["metadata.name", "metadata.namespace"];

/// The fields a kind can be selected by beyond `COMMON_FIELDS`, as Kubernetes' registries
/// declare them. `kind` is a Kind (`Pod`) or its resource name (`pods`), in any case.
fn kind_fields(kind: &str) -> &'static [&'static str] {
    match kind.to_ascii_lowercase().as_str() {
        "pod" | "pods" => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        "event" | "events" => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        "node" | "nodes" => &["spec.unschedulable"],
        "secret" | "secrets" => &["type"],
        "namespace" | "namespaces" => &["status.phase"],
        "replicaset" | "replicasets" | "replicationcontroller" | "replicationcontrollers" => &["status.replicas"],
        "job" | "jobs" => &["status.successful"],
        _ => &[],
    }
}

impl FieldSelector {
    /// Parses `?fieldSelector=`: comma-separated `field=value`, `field==value`,
    /// `field!=value`. In values, `\,`, `\=` and `\\` stand for `,`, `=` and `\`; any other
    /// escape, or an unescaped `,` or `=`, is an error. Field names are not checked here (see
    /// [`FieldSelector::validate_for`]). The empty string selects everything.
    pub fn parse(s: &str) -> Result<FieldSelector, SelectorError> {
        let invalid = |reason: String| SelectorError::Invalid {
            selector: s.to_string(),
            reason,
        };
        let mut parts = split_terms(s);
        parts.sort_by(|a, b| a.1.cmp(b.1));
        let mut terms = Vec::with_capacity(parts.len());
        for (pos, part) in parts {
            if part.is_empty() {
                continue;
            }
            let Some((field, op, raw)) = split_term(part) else {
                return Err(invalid(format!("position {pos}: can't understand '{part}'")));
            };
            let value_pos = pos + field.chars().count() + op.len();
            let value =
                unescape_value(raw).map_err(|(at, why)| invalid(format!("position {}: {why}", value_pos + at)))?;
            terms.push(FieldTerm {
                field: field.to_string(),
                equals: op != "!=",
                value,
            });
        }
        Ok(FieldSelector { terms })
    }

    /// Matches every object.
    pub fn everything() -> FieldSelector {
        FieldSelector::default()
    }

    /// Checks the field names against those objects of `kind` can be selected by: every kind
    /// `metadata.name` and `metadata.namespace`; pods `spec.nodeName`, `spec.restartPolicy`,
    /// `spec.schedulerName`, `spec.serviceAccountName`, `spec.hostNetwork`, `status.phase`,
    /// `status.podIP`, `status.nominatedNodeName`; events `involvedObject.{kind, namespace,
    /// name, uid, apiVersion, resourceVersion, fieldPath}`, `reason`, `reportingComponent`,
    /// `source`, `type`; nodes `spec.unschedulable`; secrets `type`; namespaces
    /// `status.phase`; replicasets and replicationcontrollers `status.replicas`; jobs
    /// `status.successful`. `kind` is a Kind (`Pod`) or resource name (`pods`).
    pub fn validate_for(&self, kind: &str) -> Result<(), SelectorError> {
        let extra = kind_fields(kind);
        match self
            .terms
            .iter()
            .find(|t| !COMMON_FIELDS.contains(&t.field.as_str()) && !extra.contains(&t.field.as_str()))
        {
            Some(t) => Err(SelectorError::UnsupportedField { field: t.field.clone() }),
            None => Ok(()),
        }
    }

    /// Whether the object satisfies every term. A field is read from the object's JSON by
    /// its dotted path, as a string (numbers and booleans in their JSON spelling; absent is
    /// ""), except where Kubernetes' field set differs from the path: `status.successful` is
    /// a Job's `status.succeeded`, `source` an Event's `source.component` (or, if empty, its
    /// `reportingComponent`), and absent `status.replicas`, `status.successful`,
    /// `spec.unschedulable` and `spec.hostNetwork` read as their Go zero values ("0",
    /// "false") so that `spec.unschedulable=false` selects schedulable nodes.
    pub fn matches(&self, obj: &Value) -> bool {
        self.terms
            .iter()
            .all(|t| (field_value(obj, &t.field) == t.value.as_str()) == t.equals)
    }

    /// Whether this selector matches everything.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The value `field` is pinned to by an `=`/`==` term, if any: lets a list of
    /// `metadata.name=x` or `spec.nodeName=n` use an index instead of a scan.
    pub fn exact(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.equals && t.field == field)
            .map(|t| t.value.as_str())
    }
}

/// The canonical form: terms in Kubernetes' order, `==` printed as `=`, values escaped.
impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let op = if t.equals { "=" } else { "!=" };
            write!(f, "{}{op}{}", t.field, escape_value(&t.value))?;
        }
        Ok(())
    }
}

impl FromStr for FieldSelector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FieldSelector::parse(s)
    }
}

/// The comma-separated terms with the (character) position each starts at; `\,` is data.
fn split_terms(s: &str) -> Vec<(usize, &str)> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let (mut start_byte, mut start_char) = (0, 0);
    let mut escaped = false;
    for (n, (i, c)) in s.char_indices().enumerate() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            terms.push((start_char, &s[start_byte..i]));
            (start_byte, start_char) = (i + 1, n + 1);
        }
    }
    terms.push((start_char, &s[start_byte..]));
    terms
}

/// Splits a term at its first operator: field names cannot be escaped, so the first `!=`,
/// `==` or `=` is the operator (`!=` and `==` tried first so no `=` is left on the value).
fn split_term(term: &str) -> Option<(&str, &'static str, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for op in ["!=", "==", "="] {
            if let Some(value) = rest.strip_prefix(op) {
                return Some((&term[..i], op, value));
            }
        }
    }
    None
}

/// The literal value of an escaped one; on error, the character offset of the problem and
/// what it is.
fn unescape_value(s: &str) -> Result<String, (usize, String)> {
    if !s.contains(['\\', ',', '=']) {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut escape_at = None;
    for (n, c) in s.chars().enumerate() {
        if let Some(at) = escape_at.take() {
            match c {
                '\\' | ',' | '=' => out.push(c),
                _ => return Err((at, format!("invalid escape sequence: \\{c}"))),
            }
            continue;
        }
        match c {
            '\\' => escape_at = Some(n),
            ',' | '=' => return Err((n, format!("unescaped character in value: '{c}' (write it as \\{c})"))),
            _ => out.push(c),
        }
    }
    match escape_at {
        Some(at) => Err((at, "invalid escape sequence: \\ at the end of the value".to_string())),
        None => Ok(out),
    }
}

/// Escapes `\`, `,` and `=` so a value prints back into a selector that parses to it.
fn escape_value(s: &str) -> Cow<'_, str> {
    if !s.contains(['\\', ',', '=']) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    Cow::Owned(out)
}

/// A field of an object as a field selector sees it (see [`FieldSelector::matches`]).
fn field_value<'a>(obj: &'a Value, field: &str) -> Cow<'a, str> {
    let read = |path: &str| path.split('.').try_fold(obj, |v, k| v.get(k)).and_then(scalar);
    match field {
        "source" => read("source.component")
            .filter(|s| !s.is_empty())
            .or_else(|| read("reportingComponent"))
            .unwrap_or_default(),
        "status.successful" => read("status.succeeded").unwrap_or(Cow::Borrowed("0")),
        "status.replicas" => read(field).unwrap_or(Cow::Borrowed("0")),
        "spec.unschedulable" | "spec.hostNetwork" => read(field).unwrap_or(Cow::Borrowed("false")),
        _ => read(field).unwrap_or_default(),
    }
}

/// A JSON scalar as text; null, objects and arrays have none.
fn scalar(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(v: Value) -> Map<String, Value> {
        v.as_object().expect("test labels are an object").clone()
    }

    fn sel(s: &str) -> LabelSelector {
        LabelSelector::parse(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
    }

    fn parse_error(s: &str) -> String {
        match LabelSelector::parse(s) {
            Ok(v) => panic!("{s:?} should not parse, got {v:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn empty_and_blank_selectors_select_everything() {
        for s in ["", "   ", "\t\n"] {
            let s = sel(s);
            assert!(s.is_empty());
            assert!(s.matches(&Map::new()));
            assert_eq!(s.to_string(), "");
        }
        assert_eq!(LabelSelector::everything(), LabelSelector::default());
    }

    #[test]
    fn nothing_matches_no_object_and_is_not_empty() {
        let n = LabelSelector::nothing();
        assert!(!n.is_empty());
        assert!(!n.matches(&Map::new()));
        assert!(!n.matches_object(&json!({"metadata": {"labels": {"a": "b"}}})));
    }

    #[test]
    fn equality_operators_match_present_labels_and_inequality_also_absent_ones() {
        let l = labels(json!({"app": "web", "tier": "front"}));
        assert!(sel("app=web").matches(&l));
        assert!(sel("app==web").matches(&l));
        assert!(!sel("app=db").matches(&l));
        assert!(!sel("app!=web").matches(&l));
        assert!(sel("app!=db").matches(&l));
        assert!(sel("missing!=x").matches(&l), "!= holds when the label is absent");
        assert!(!sel("missing=x").matches(&l));
        assert_eq!(sel("app==web").to_string(), "app==web");
        assert_eq!(sel("app!=web").to_string(), "app!=web");
    }

    #[test]
    fn set_operators_in_and_notin_match_and_print_sorted() {
        let l = labels(json!({"env": "prod"}));
        assert!(sel("env in (prod,qa)").matches(&l));
        assert!(!sel("env in (dev,qa)").matches(&l));
        assert!(sel("env notin (dev,qa)").matches(&l));
        assert!(!sel("env notin (prod)").matches(&l));
        assert!(
            sel("other notin (x)").matches(&l),
            "notin holds when the label is absent"
        );
        assert!(!sel("other in (x)").matches(&l));
        assert_eq!(sel("env in (qa, prod ,dev)").to_string(), "env in (dev,prod,qa)");
        assert_eq!(sel("env notin (b,a,b)").to_string(), "env notin (a,b)");
    }

    #[test]
    fn exists_and_does_not_exist_look_only_at_the_key() {
        let l = labels(json!({"gpu": ""}));
        assert!(sel("gpu").matches(&l));
        assert!(!sel("!gpu").matches(&l));
        assert!(sel("!ssd").matches(&l));
        assert!(!sel("ssd").matches(&l));
        assert_eq!(sel("!ssd").to_string(), "!ssd");
        assert_eq!(sel(" ! ssd ").to_string(), "!ssd");
    }

    #[test]
    fn greater_and_less_than_compare_integer_values() {
        let l = labels(json!({"gen": "5", "name": "x"}));
        assert!(sel("gen>4").matches(&l));
        assert!(!sel("gen>5").matches(&l));
        assert!(sel("gen<6").matches(&l));
        assert!(!sel("name<6").matches(&l), "a non-integer label never compares");
        assert!(!sel("absent>1").matches(&l));
        assert!(parse_error("gen>x").contains("for 'Gt', 'Lt' operators, the value must be an integer"));
    }

    #[test]
    fn requirements_are_anded_and_printed_sorted_by_key() {
        let s = sel(" tier = front , app in (web) , !canary ");
        assert_eq!(s.to_string(), "app in (web),!canary,tier=front");
        assert_eq!(s.requirements().len(), 3);
        assert!(s.matches(&labels(json!({"app": "web", "tier": "front"}))));
        assert!(!s.matches(&labels(json!({"app": "web", "tier": "front", "canary": "1"}))));
        assert!(!s.matches(&labels(json!({"app": "web"}))));
        // The canonical form parses back to the same selector.
        assert_eq!(sel(&s.to_string()), s);
    }

    #[test]
    fn keywords_are_plain_identifiers_as_keys_and_values() {
        let s = sel("in in (in,notin),notin=in");
        assert_eq!(s.to_string(), "in in (in,notin),notin=in");
        assert!(s.matches(&labels(json!({"in": "notin", "notin": "in"}))));
    }

    #[test]
    fn empty_values_are_allowed_where_kubernetes_allows_them() {
        assert_eq!(sel("a=").requirements()[0].values(), [""]);
        assert_eq!(sel("a in ()").requirements()[0].values(), [""]);
        assert_eq!(sel("a in (,x)").requirements()[0].values(), ["", "x"]);
        assert_eq!(sel("a in (x,)").requirements()[0].values(), ["", "x"]);
        assert!(sel("a=").matches(&labels(json!({"a": ""}))));
    }

    #[test]
    fn prefixed_keys_and_dotted_values_parse() {
        let s = sel("app.kubernetes.io/name=my.app-1_x");
        assert!(s.matches(&labels(json!({"app.kubernetes.io/name": "my.app-1_x"}))));
    }

    #[test]
    fn parse_errors_say_what_was_found_and_where() {
        let cases = [
            (
                "a in x",
                r#"invalid selector "a in x": position 5: found 'x', expected: '('"#,
            ),
            (
                "a in (x",
                r#"invalid selector "a in (x": position 7: found end of string, expected: ',' or ')'"#,
            ),
            (
                "a b",
                r#"invalid selector "a b": position 2: found 'b', expected: in, notin, =, ==, !=, gt, lt"#,
            ),
            (
                "a=b,",
                r#"invalid selector "a=b,": position 4: found end of string, expected: identifier after ','"#,
            ),
            (
                "a=b c",
                r#"invalid selector "a=b c": position 4: found 'c', expected: ',' or end of string"#,
            ),
            (
                ",a",
                r#"invalid selector ",a": position 0: found ',', expected: !, identifier, or end of string"#,
            ),
            (
                "a=(b)",
                r#"invalid selector "a=(b)": position 2: found '(', expected: identifier"#,
            ),
            (
                "!a=b",
                r#"invalid selector "!a=b": position 2: found '=', expected: ',' or end of string"#,
            ),
            (
                "!",
                r#"invalid selector "!": position 1: found end of string, expected: identifier"#,
            ),
            (
                "a in (b c)",
                r#"invalid selector "a in (b c)": position 8: found 'c', expected: ',' or ')'"#,
            ),
            (
                "a in (=)",
                r#"invalid selector "a in (=)": position 6: found '=', expected: ',', ')' or identifier"#,
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse_error(input), want, "for {input:?}");
        }
    }

    #[test]
    fn invalid_keys_and_values_are_rejected_with_kubernetes_messages() {
        assert_eq!(
            parse_error("x=1,-bad=1"),
            "invalid selector \"x=1,-bad=1\": position 4: key: Invalid value: \"-bad\": name part must consist of \
             alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character \
             (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is \
             '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        );
        assert!(parse_error("a/b/c").contains("a qualified name must consist of"));
        assert!(parse_error("Example.com/a").contains("prefix part a lowercase RFC 1123 subdomain"));
        let long = "k".repeat(64);
        assert!(parse_error(&long).contains("name part must be no more than 63 characters"));
        let e = parse_error("a=-x");
        assert!(
            e.contains("values[0][a]: Invalid value: \"-x\": a valid label must be an empty string"),
            "{e}"
        );
        let e = parse_error("a in (ok,b@d)");
        assert!(e.contains("position 0: values[0][a]: Invalid value: \"b@d\""), "{e}");
    }

    #[test]
    fn positions_count_characters_not_bytes() {
        let e = parse_error("a in (é,b c)");
        assert!(
            e.starts_with("invalid selector \"a in (é,b c)\": position 10: found 'c'"),
            "{e}"
        );
    }

    #[test]
    fn match_labels_and_expressions_build_a_set_based_selector() {
        let s = LabelSelector::from_label_selector(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["front", "cache"]},
                {"key": "env", "operator": "NotIn", "values": ["dev"]},
                {"key": "gpu", "operator": "Exists"},
                {"key": "legacy", "operator": "DoesNotExist", "values": null},
            ]
        }))
        .expect("valid selector");
        assert_eq!(
            s.to_string(),
            "app=web,env notin (dev),gpu,!legacy,tier in (cache,front)"
        );
        assert!(s.matches(&labels(json!({"app": "web", "tier": "cache", "gpu": "1"}))));
        assert!(!s.matches(&labels(
            json!({"app": "web", "tier": "cache", "gpu": "1", "env": "dev"})
        )));
        assert!(!s.matches(&labels(json!({"app": "web", "tier": "back", "gpu": "1"}))));
        assert!(!s.matches(&labels(
            json!({"app": "web", "tier": "cache", "gpu": "1", "legacy": "y"})
        )));
    }

    #[test]
    fn label_selector_objects_null_selects_nothing_and_empty_everything() {
        assert_eq!(
            LabelSelector::from_label_selector(&Value::Null),
            Ok(LabelSelector::nothing())
        );
        let empty = LabelSelector::from_label_selector(&json!({})).expect("empty is valid");
        assert!(empty.is_empty());
        let empty = LabelSelector::from_label_selector(&json!({"matchLabels": {}, "matchExpressions": []}));
        assert!(empty.expect("empty parts are valid").is_empty());
    }

    #[test]
    fn label_selector_objects_report_bad_operators_and_value_counts() {
        let err = |v: Value| {
            LabelSelector::from_label_selector(&v)
                .expect_err("should be rejected")
                .to_string()
        };
        let e = err(json!({"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["x"]}]}));
        assert!(
            e.ends_with("matchExpressions[0].operator: \"Equals\" is not a valid label selector operator"),
            "{e}"
        );
        let e = err(json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}));
        assert!(
            e.contains("for 'in', 'notin' operators, values set can't be empty"),
            "{e}"
        );
        let e = err(json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}));
        assert!(
            e.contains("values set must be empty for exists and does not exist"),
            "{e}"
        );
        let e = err(json!({"matchLabels": {"a": 1}}));
        assert!(e.contains("matchLabels[a]: the value must be a string"), "{e}");
        let e = err(json!({"matchLabels": {"a b": "x"}}));
        assert!(e.contains("matchLabels: key: Invalid value: \"a b\""), "{e}");
        assert!(err(json!(["a"])).contains("must be an object"));
    }

    #[test]
    fn from_map_is_equality_on_each_pair() {
        let s = LabelSelector::from_map(&json!({"tier": "db", "app": "mysql"})).expect("valid map");
        assert_eq!(s.to_string(), "app=mysql,tier=db");
        assert!(s.matches(&labels(json!({"app": "mysql", "tier": "db", "x": "y"}))));
        assert!(!s.matches(&labels(json!({"app": "mysql"}))));
        assert!(LabelSelector::from_map(&json!({})).expect("empty map").is_empty());
        assert!(LabelSelector::from_map(&Value::Null).expect("null").is_empty());
        assert!(LabelSelector::from_map(&json!({"app": "a b"})).is_err());
        assert!(LabelSelector::from_map(&json!("app=x")).is_err());
    }

    #[test]
    fn matches_object_reads_metadata_labels_and_absent_labels_are_empty() {
        let s = sel("!app");
        assert!(s.matches_object(&json!({"metadata": {"name": "x"}})));
        assert!(s.matches_object(&json!({})));
        assert!(!sel("app").matches_object(&json!({"metadata": {"labels": null}})));
        assert!(sel("app=web").matches_object(&json!({"metadata": {"labels": {"app": "web"}}})));
    }

    #[test]
    fn requirement_new_validates_like_kubernetes() {
        let r = Requirement::new("zone", Operator::In, vec!["b".into(), "a".into()]).expect("valid");
        assert_eq!(r.to_string(), "zone in (a,b)");
        assert!(Requirement::new("zone", Operator::Equals, vec![]).is_err());
        assert!(Requirement::new("zone", Operator::GreaterThan, vec!["1".into()]).is_ok());
        let s =
            LabelSelector::from_requirements(vec![r, Requirement::new("a", Operator::Exists, vec![]).expect("valid")]);
        assert_eq!(s.to_string(), "a,zone in (a,b)");
    }

    #[test]
    fn field_selectors_match_equality_and_inequality_as_strings() {
        let pod = json!({
            "metadata": {"name": "web-1", "namespace": "default"},
            "spec": {"nodeName": "node-a", "hostNetwork": true},
            "status": {"phase": "Running"}
        });
        let f = |s: &str| FieldSelector::parse(s).expect("valid field selector");
        assert!(f("spec.nodeName=node-a").matches(&pod));
        assert!(f("spec.nodeName==node-a,status.phase!=Failed").matches(&pod));
        assert!(!f("spec.nodeName!=node-a").matches(&pod));
        assert!(f("spec.hostNetwork=true").matches(&pod));
        assert!(
            f("status.podIP=").matches(&pod),
            "a missing field reads as the empty string"
        );
        assert!(f("").is_empty());
        assert!(FieldSelector::everything().matches(&pod));
        assert_eq!(
            f("status.phase!=Failed,metadata.name==web-1").to_string(),
            "metadata.name=web-1,status.phase!=Failed"
        );
    }

    #[test]
    fn field_selectors_read_kubernetes_names_and_zero_values() {
        let f = |s: &str| FieldSelector::parse(s).expect("valid field selector");
        assert!(f("spec.unschedulable=false").matches(&json!({"spec": {}})));
        assert!(f("spec.unschedulable=true").matches(&json!({"spec": {"unschedulable": true}})));
        assert!(f("status.successful=2").matches(&json!({"status": {"succeeded": 2}})));
        assert!(f("status.replicas=0").matches(&json!({"status": {}})));
        assert!(f("source=kubelet").matches(&json!({"source": {"component": "kubelet"}})));
        assert!(f("source=gantry-scheduler").matches(&json!({"reportingComponent": "gantry-scheduler"})));
        assert!(f("involvedObject.name=web").matches(&json!({"involvedObject": {"name": "web"}})));
    }

    #[test]
    fn field_selector_values_unescape_and_print_escaped() {
        let f = FieldSelector::parse(r"metadata.name=a\,b\=c\\d,spec.nodeName!=x").expect("valid escapes");
        assert_eq!(f.exact("metadata.name"), Some(r"a,b=c\d"));
        assert!(f.matches(&json!({"metadata": {"name": r"a,b=c\d"}, "spec": {"nodeName": "y"}})));
        assert_eq!(f.to_string(), r"metadata.name=a\,b\=c\\d,spec.nodeName!=x");
        assert_eq!(FieldSelector::parse(&f.to_string()), Ok(f));
    }

    #[test]
    fn field_selector_parse_errors_name_the_problem_and_position() {
        let err = |s: &str| FieldSelector::parse(s).expect_err("should be rejected").to_string();
        assert_eq!(
            err("a=b,c"),
            r#"invalid selector "a=b,c": position 4: can't understand 'c'"#
        );
        assert_eq!(
            err(r"a=b\x"),
            r#"invalid selector "a=b\\x": position 3: invalid escape sequence: \x"#
        );
        assert_eq!(
            err("a=b=c"),
            r#"invalid selector "a=b=c": position 3: unescaped character in value: '=' (write it as \=)"#
        );
        assert!(err(r"a=b\").contains("position 3: invalid escape sequence: \\ at the end of the value"));
    }

    #[test]
    fn unsupported_fields_give_the_kubernetes_message() {
        let f = FieldSelector::parse("metadata.name=x,spec.nodeName=n").expect("valid");
        assert_eq!(f.validate_for("Pod"), Ok(()));
        assert_eq!(f.validate_for("pods"), Ok(()));
        let e = f
            .validate_for("Service")
            .expect_err("services have no spec.nodeName field");
        assert_eq!(
            e,
            SelectorError::UnsupportedField {
                field: "spec.nodeName".into()
            }
        );
        assert_eq!(e.to_string(), "field label not supported: spec.nodeName");
        let f = FieldSelector::parse("metadata.namespace=default").expect("valid");
        assert_eq!(f.validate_for("ConfigMap"), Ok(()));
        for (kind, field) in [
            ("Event", "involvedObject.uid"),
            ("Event", "source"),
            ("Node", "spec.unschedulable"),
            ("Secret", "type"),
            ("Namespace", "status.phase"),
            ("ReplicaSet", "status.replicas"),
            ("ReplicationController", "status.replicas"),
            ("Job", "status.successful"),
        ] {
            let f = FieldSelector::parse(&format!("{field}=x")).expect("valid");
            assert_eq!(f.validate_for(kind), Ok(()), "{kind} {field}");
            assert!(f.validate_for("ConfigMap").is_err(), "{field} on ConfigMap");
        }
    }

    #[test]
    fn exact_returns_only_values_pinned_with_equals() {
        let f = FieldSelector::parse("spec.nodeName!=a,metadata.name==web").expect("valid");
        assert_eq!(f.exact("metadata.name"), Some("web"));
        assert_eq!(f.exact("spec.nodeName"), None);
        assert_eq!(f.exact("status.phase"), None);
    }
}
