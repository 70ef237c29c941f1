//! Validation of objects as the Kubernetes API server does it on create and update: one
//! [`Cause`] per problem, naming the field (`spec.containers[0].image`) and saying what is
//! wrong in Kubernetes' own words, so that `kubectl` users read the messages they know.
//!
//! Objects may arrive before or after defaulting: a field the server defaults (a port's
//! protocol, a pod's restartPolicy) is accepted when absent and checked when present. JSON
//! null counts as absent, as it does when Kubernetes decodes an object. Objects are not
//! decoded into typed structs first, so a wrongly typed field (a number where a string
//! belongs) is reported here as an invalid value.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use crate::selector::LabelSelector;

// ---- Causes ----

/// One problem with one field, as `metav1.StatusCause`: `field` is the path of the bad field
/// (`spec.ports[1].name`, `metadata.labels`), `message` what is wrong with it (`Required
/// value`, `Invalid value: "Foo": a lowercase RFC 1123 subdomain must ...`). `Display`
/// prints `field: message`, the form `kubectl` shows; `Serialize` gives the StatusCause JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cause {
    pub field: String,
    pub reason: CauseType,
    pub message: String,
}

impl Cause {
    pub fn new(field: impl Into<String>, reason: CauseType, message: impl Into<String>) -> Cause {
        Cause {
            field: field.into(),
            reason,
            message: message.into(),
        }
    }

    /// The StatusCause `message`: what is wrong, without the field path.
    pub fn message_text(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

/// The kind of a [`Cause`]: `metav1.CauseType` values for field errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CauseType {
    /// A required field is absent or empty.
    FieldValueRequired,
    /// The value is malformed or out of range.
    FieldValueInvalid,
    /// The value is not one of a fixed set.
    FieldValueNotSupported,
    /// The value repeats one that must be unique.
    FieldValueDuplicate,
    /// The value (or a set of values together) is longer than allowed.
    FieldValueTooLong,
    /// The field may not be set here.
    FieldValueForbidden,
    /// The value refers to something that does not exist (a volume mount's volume).
    FieldValueNotFound,
}

impl CauseType {
    /// The wire name: `FieldValueRequired`, ...
    pub fn as_str(&self) -> &'static str {
        match self {
            CauseType::FieldValueRequired => "FieldValueRequired",
            CauseType::FieldValueInvalid => "FieldValueInvalid",
            CauseType::FieldValueNotSupported => "FieldValueNotSupported",
            CauseType::FieldValueDuplicate => "FieldValueDuplicate",
            CauseType::FieldValueTooLong => "FieldValueTooLong",
            CauseType::FieldValueForbidden => "FieldValueForbidden",
            CauseType::FieldValueNotFound => "FieldValueNotFound",
        }
    }
}

impl fmt::Display for CauseType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for CauseType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A bad value as Kubernetes prints it in a message: strings quoted as Go's `%q` does,
/// numbers and booleans bare, anything else as compact JSON.
enum Bad<'a> {
    Str(&'a str),
    Int(i64),
    Json(&'a Value),
}

impl<'a> From<&'a str> for Bad<'a> {
    fn from(s: &'a str) -> Self {
        Bad::Str(s)
    }
}

impl<'a> From<&'a String> for Bad<'a> {
    fn from(s: &'a String) -> Self {
        Bad::Str(s)
    }
}

impl From<i64> for Bad<'_> {
    fn from(n: i64) -> Self {
        Bad::Int(n)
    }
}

impl<'a> From<&'a Value> for Bad<'a> {
    fn from(v: &'a Value) -> Self {
        Bad::Json(v)
    }
}

impl fmt::Display for Bad<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bad::Str(s) => f.write_str(&go_quote(s)),
            Bad::Int(n) => write!(f, "{n}"),
            Bad::Json(Value::String(s)) => f.write_str(&go_quote(s)),
            Bad::Json(v) => write!(f, "{v}"),
        }
    }
}

/// A string quoted as Go's `strconv.Quote` does, which Kubernetes uses for bad values.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if c.is_control() && (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn with_detail(head: String, detail: &str) -> String {
    if detail.is_empty() {
        head
    } else {
        format!("{head}: {detail}")
    }
}

fn required(field: impl Into<String>, detail: &str) -> Cause {
    Cause::new(
        field,
        CauseType::FieldValueRequired,
        with_detail("Required value".into(), detail),
    )
}

fn invalid<'v>(field: impl Into<String>, value: impl Into<Bad<'v>>, detail: &str) -> Cause {
    let head = format!("Invalid value: {}", value.into());
    Cause::new(field, CauseType::FieldValueInvalid, with_detail(head, detail))
}

fn not_supported<'v>(field: impl Into<String>, value: impl Into<Bad<'v>>, supported: &[&str]) -> Cause {
    let list: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
    let message = format!(
        "Unsupported value: {}: supported values: {}",
        value.into(),
        list.join(", ")
    );
    Cause::new(field, CauseType::FieldValueNotSupported, message)
}

fn duplicate<'v>(field: impl Into<String>, value: impl Into<Bad<'v>>) -> Cause {
    Cause::new(
        field,
        CauseType::FieldValueDuplicate,
        format!("Duplicate value: {}", value.into()),
    )
}

fn forbidden(field: impl Into<String>, detail: &str) -> Cause {
    Cause::new(
        field,
        CauseType::FieldValueForbidden,
        with_detail("Forbidden".into(), detail),
    )
}

fn too_long(field: impl Into<String>, max_bytes: usize) -> Cause {
    Cause::new(
        field,
        CauseType::FieldValueTooLong,
        format!("Too long: may not be more than {max_bytes} bytes"),
    )
}

fn not_found<'v>(field: impl Into<String>, value: impl Into<Bad<'v>>) -> Cause {
    Cause::new(
        field,
        CauseType::FieldValueNotFound,
        format!("Not found: {}", value.into()),
    )
}

// ---- Field paths and typed reads ----

fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

fn key(path: &str, k: &str) -> String {
    format!("{path}[{k}]")
}

static NULL: Value = Value::Null;

/// `v[name]`, with JSON null as absent.
fn get<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v.get(name).filter(|x| !x.is_null())
}

/// `v[name]` as a string; a value of another type is reported (at `path.name`) and read as absent.
fn string<'a>(v: &'a Value, name: &str, path: &str, out: &mut Vec<Cause>) -> Option<&'a str> {
    match get(v, name)? {
        Value::String(s) => Some(s),
        other => {
            out.push(invalid(child(path, name), other, "must be a string"));
            None
        }
    }
}

/// `v[name]` as an integer; a value of another type is reported and read as absent.
fn int(v: &Value, name: &str, path: &str, out: &mut Vec<Cause>) -> Option<i64> {
    let x = get(v, name)?;
    match x.as_i64() {
        Some(n) => Some(n),
        None => {
            out.push(invalid(child(path, name), x, "must be an integer"));
            None
        }
    }
}

/// `v[name]` as a list; absent is empty, a value of another type is reported and read as empty.
fn list<'a>(v: &'a Value, name: &str, path: &str, out: &mut Vec<Cause>) -> &'a [Value] {
    match get(v, name) {
        None => &[],
        Some(Value::Array(items)) => items,
        Some(other) => {
            out.push(invalid(child(path, name), other, "must be a list"));
            &[]
        }
    }
}

/// `v[name]` as an object; a value of another type is reported and read as absent.
fn object<'a>(v: &'a Value, name: &str, path: &str, out: &mut Vec<Cause>) -> Option<&'a Map<String, Value>> {
    match get(v, name)? {
        Value::Object(m) => Some(m),
        other => {
            out.push(invalid(child(path, name), other, "must be an object"));
            None
        }
    }
}

/// `v[name]` when it is an object or absent (read as null); anything else is reported.
fn object_or_null<'a>(v: &'a Value, name: &str, path: &str, out: &mut Vec<Cause>) -> &'a Value {
    match get(v, name) {
        None => &NULL,
        Some(x) if x.is_object() => x,
        Some(other) => {
            out.push(invalid(child(path, name), other, "must be an object"));
            &NULL
        }
    }
}

/// Reports a negative `v[name]`.
fn non_negative(v: &Value, name: &str, path: &str, out: &mut Vec<Cause>) {
    if let Some(n) = int(v, name, path, out).filter(|n| *n < 0) {
        out.push(invalid(child(path, name), n, "must be greater than or equal to 0"));
    }
}

/// Reports `v[name]` when present and not one of `supported`.
fn one_of(v: &Value, name: &str, path: &str, supported: &[&str], out: &mut Vec<Cause>) {
    if let Some(s) = string(v, name, path, out) {
        if !supported.contains(&s) {
            out.push(not_supported(child(path, name), s, supported));
        }
    }
}

// ---- Names, keys and values, after apimachinery's util/validation ----

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const DNS1035_LABEL_ERR: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR: &str =
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const ENV_VAR_NAME_FMT: &str = "[-._a-zA-Z][-._a-zA-Z0-9]*";
const ENV_VAR_NAME_ERR: &str = "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit";
const CONFIG_KEY_FMT: &str = "[-._a-zA-Z0-9]+";
const CONFIG_KEY_ERR: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'";
const PERCENT_FMT: &str = "[0-9]+%";
const PERCENT_ERR: &str = "a valid percent string must be a numeric string followed by an ending '%'";

/// Longest DNS-1123 label, DNS-1035 label, qualified name part and label value.
const LABEL_MAX: usize = 63;
/// Longest DNS-1123 subdomain (and config key).
const SUBDOMAIN_MAX: usize = 253;
/// Most bytes all annotations of an object may hold together.
const ANNOTATIONS_MAX: usize = 256 * 1024;
/// Most bytes the data of a ConfigMap or Secret may hold together.
const DATA_MAX: usize = 1024 * 1024;

const PORT_RANGE_ERR: &str = "must be between 1 and 65535, inclusive";
const IP_ERR: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";
const CIDR_ERR: &str = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

/// Kubernetes' `RegexError`: the message, examples and the pattern. (The doubled space
/// after each example's comma is Kubernetes' too; messages are kept identical.)
fn regex_error(msg: &str, pattern: &str, examples: &[&str]) -> String {
    let mut s = msg.to_string();
    if examples.is_empty() {
        s.push_str(&format!(" (regex used for validation is '{pattern}')"));
        return s;
    }
    s.push_str(" (e.g. ");
    for (i, e) in examples.iter().enumerate() {
        if i > 0 {
            s.push_str(" or ");
        }
        s.push_str(&format!("'{e}', "));
    }
    s.push_str(&format!("regex used for validation is '{pattern}')"));
    s
}

fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

fn lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn matches_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(&first), Some(&last)) => {
            lower_alnum(first) && lower_alnum(last) && b.iter().all(|&c| lower_alnum(c) || c == b'-')
        }
        _ => false,
    }
}

fn matches_dns1123_subdomain(s: &str) -> bool {
    s.split('.').all(matches_dns1123_label)
}

fn matches_dns1035_label(s: &str) -> bool {
    matches_dns1123_label(s) && s.as_bytes()[0].is_ascii_lowercase()
}

fn matches_qualified_name(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && b.iter()
                    .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// Problems with `s` as a DNS-1123 subdomain (`example.com`): what most objects are named.
pub fn is_dns1123_subdomain(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > SUBDOMAIN_MAX {
        errs.push(max_len_error(SUBDOMAIN_MAX));
    }
    if !matches_dns1123_subdomain(s) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// Problems with `s` as a DNS-1123 label (`my-name`): namespaces, container and port names.
pub fn is_dns1123_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > LABEL_MAX {
        errs.push(max_len_error(LABEL_MAX));
    }
    if !matches_dns1123_label(s) {
        if matches_dns1123_subdomain(s) {
            // A valid subdomain but not a label: the length was checked, so it is the dots.
            errs.push("must not contain dots".to_string());
        } else {
            errs.push(regex_error(
                DNS1123_LABEL_ERR,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

/// Problems with `s` as a DNS-1035 label (a DNS-1123 label starting with a letter): services.
pub fn is_dns1035_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > LABEL_MAX {
        errs.push(max_len_error(LABEL_MAX));
    }
    if !matches_dns1035_label(s) {
        errs.push(regex_error(
            DNS1035_LABEL_ERR,
            DNS1035_LABEL_FMT,
            &["my-name", "abc-123"],
        ));
    }
    errs
}

/// Problems with `s` as a qualified name (`example.com/MyName`, `my.name`): label and
/// annotation keys, finalizers.
pub fn is_qualified_name(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = s.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                errs.extend(
                    is_dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            let shape = regex_error(
                QUALIFIED_NAME_ERR,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"],
            );
            errs.push(format!(
                "a qualified name {shape} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > LABEL_MAX {
        errs.push(format!("name part {}", max_len_error(LABEL_MAX)));
    }
    if !matches_qualified_name(name) {
        let shape = regex_error(
            QUALIFIED_NAME_ERR,
            QUALIFIED_NAME_FMT,
            &["MyName", "my.name", "123-abc"],
        );
        errs.push(format!("name part {shape}"));
    }
    errs
}

/// Problems with `s` as a label value: empty, or a qualified name part of at most 63 characters.
pub fn is_valid_label_value(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > LABEL_MAX {
        errs.push(max_len_error(LABEL_MAX));
    }
    if !s.is_empty() && !matches_qualified_name(s) {
        errs.push(regex_error(
            LABEL_VALUE_ERR,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// `.`, `..` and `..x` would escape the directory a key or name becomes a file in.
fn chdir_prefix_errors(s: &str) -> Vec<String> {
    match s {
        "." => vec!["must not be '.'".to_string()],
        ".." => vec!["must not be '..'".to_string()],
        _ if s.starts_with("..") => vec!["must not start with '..'".to_string()],
        _ => Vec::new(),
    }
}

fn is_env_var_name(s: &str) -> Vec<String> {
    let b = s.as_bytes();
    let ok_char = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_');
    let mut errs = Vec::new();
    if b.is_empty() || b[0].is_ascii_digit() || !b.iter().all(|&c| ok_char(c)) {
        errs.push(regex_error(
            ENV_VAR_NAME_ERR,
            ENV_VAR_NAME_FMT,
            &["my.env-name", "MY_ENV.NAME", "MyEnvName1"],
        ));
    }
    errs.extend(chdir_prefix_errors(s));
    errs
}

/// Problems with `s` as a ConfigMap or Secret key (it becomes a file name in volumes).
fn is_config_map_key(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > SUBDOMAIN_MAX {
        errs.push(max_len_error(SUBDOMAIN_MAX));
    }
    if s.is_empty()
        || !s
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'))
    {
        errs.push(regex_error(
            CONFIG_KEY_ERR,
            CONFIG_KEY_FMT,
            &["key.name", "KEY_NAME", "key-name"],
        ));
    }
    errs.extend(chdir_prefix_errors(s));
    errs
}

/// Problems with `s` as an IANA service name (a named port): at most 15 characters of
/// `[-a-z0-9]`, at least one letter, no leading, trailing or doubled hyphen.
fn is_valid_port_name(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 15 {
        errs.push(max_len_error(15));
    }
    if s.is_empty() || !s.bytes().all(|c| lower_alnum(c) || c == b'-') {
        errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string());
    }
    if !s.bytes().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".to_string());
    }
    if s.contains("--") {
        errs.push("must not contain consecutive hyphens".to_string());
    }
    if s.starts_with('-') || s.ends_with('-') {
        errs.push("must not begin or end with a hyphen".to_string());
    }
    errs
}

fn is_valid_port_num(n: i64) -> bool {
    (1..=65535).contains(&n)
}

fn is_valid_cidr(s: &str) -> bool {
    let Some((ip, bits)) = s.split_once('/') else {
        return false;
    };
    let Ok(ip) = ip.parse::<IpAddr>() else { return false };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    !bits.is_empty() && bits.bytes().all(|b| b.is_ascii_digit()) && bits.parse::<u8>().is_ok_and(|b| b <= max)
}

// ---- Quantities ----

/// Why a quantity (`100m`, `1Gi`, `2`, `1e3`) could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("quantity {quantity:?} must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")]
    Malformed { quantity: String },
    #[error(
        "quantity {quantity:?} has an unknown suffix (use one of n u m k M G T P E Ki Mi Gi Ti Pi Ei, or e<exponent>)"
    )]
    Suffix { quantity: String },
    #[error("quantity {quantity:?} is too large (at most about 1.7e35)")]
    TooLarge { quantity: String },
}

impl QuantityError {
    /// Kubernetes' wording, without the quantity itself (which a cause prints already).
    fn detail(&self) -> &'static str {
        match self {
            QuantityError::Malformed { .. } => {
                "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
            }
            QuantityError::Suffix { .. } => "unable to parse quantity's suffix",
            QuantityError::TooLarge { .. } => "quantity is too large",
        }
    }
}

/// Parses a Kubernetes quantity into thousandths ("millis") of its unit: `100m` is 100, `2`
/// is 2000, `1Ki` is 1_024_000, `1e3` is 1_000_000, `500Mi` is 524_288_000_000. A value finer
/// than a thousandth rounds away from zero, as `Quantity.MilliValue()` does (`1n` is 1), so
/// CPU is compared in millicores and memory in bytes × 1000 without floating point.
pub fn parse_quantity(s: &str) -> Result<i128, QuantityError> {
    let malformed = || QuantityError::Malformed {
        quantity: s.to_string(),
    };
    let b = s.as_bytes();
    let mut i = 0;
    let negative = match b.first() {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let digits_from = |mut j: usize| {
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        j
    };
    let int_end = digits_from(i);
    let whole = &s[i..int_end];
    i = int_end;
    let mut fraction = "";
    if b.get(i) == Some(&b'.') {
        let end = digits_from(i + 1);
        fraction = &s[i + 1..end];
        i = end;
    }
    if whole.is_empty() && fraction.is_empty() {
        return Err(malformed());
    }
    let suffix = &s[i..];
    let (exp10, exp2): (i64, u32) = match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        _ => {
            // The shape Kubernetes accepts before it interprets the suffix.
            let letters = suffix.trim_start_matches(|c| "eEinumkKMGTP".contains(c));
            let sign_less = letters.strip_prefix(['+', '-']).unwrap_or(letters);
            if !sign_less.bytes().all(|c| c.is_ascii_digit()) {
                return Err(malformed());
            }
            match suffix.strip_prefix(['e', 'E']).and_then(|e| e.parse::<i64>().ok()) {
                Some(e) if e.unsigned_abs() < 1 << 32 => (e, 0),
                _ => {
                    return Err(QuantityError::Suffix {
                        quantity: s.to_string(),
                    })
                }
            }
        }
    };
    let too_large = || QuantityError::TooLarge {
        quantity: s.to_string(),
    };
    let mut digits = format!("{whole}{fraction}");
    let mut scale = exp10 + 3 - fraction.len() as i64;
    let trimmed = digits.trim_start_matches('0');
    if trimmed.is_empty() {
        return Ok(0);
    }
    digits = trimmed.to_string();
    while digits.len() > 38 && digits.ends_with('0') {
        digits.pop();
        scale += 1;
    }
    let mut n: i128 = digits.parse().map_err(|_| too_large())?;
    n = n.checked_mul(1i128 << exp2).ok_or_else(too_large)?;
    if scale >= 0 {
        let factor = u32::try_from(scale)
            .ok()
            .and_then(|e| 10i128.checked_pow(e))
            .ok_or_else(too_large)?;
        n = n.checked_mul(factor).ok_or_else(too_large)?;
    } else {
        // Round up: any nonzero remainder makes one more thousandth.
        n = match u32::try_from(-scale).ok().and_then(|e| 10i128.checked_pow(e)) {
            Some(divisor) => n / divisor + i128::from(n % divisor != 0),
            None => 1,
        };
    }
    Ok(if negative { -n } else { n })
}

/// A resource quantity as written: a string (`"500m"`) or a bare JSON number (`0.5`).
fn quantity_text(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        _ => None,
    }
}

/// Reads the quantity at `path`, reporting a malformed or negative one.
fn quantity(v: &Value, path: &str, out: &mut Vec<Cause>) -> Option<i128> {
    let Some(text) = quantity_text(v) else {
        out.push(invalid(path, v, "must be a quantity such as \"500m\" or \"1Gi\""));
        return None;
    };
    match parse_quantity(&text) {
        Ok(n) if n < 0 => {
            out.push(invalid(path, text.as_ref(), "must be greater than or equal to 0"));
            None
        }
        Ok(n) => Some(n),
        Err(e) => {
            out.push(invalid(path, text.as_ref(), e.detail()));
            None
        }
    }
}

// ---- Object metadata ----

/// The rule an object's name must follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// A DNS-1123 subdomain (at most 253 characters, dots allowed): most kinds.
    Subdomain,
    /// A DNS-1123 label (at most 63 characters, no dots): namespaces.
    Label,
    /// A DNS-1035 label (a DNS-1123 label that starts with a letter): services.
    Dns1035Label,
}

impl NameRule {
    /// Problems with `name`; a `generateName` prefix may end in `-`.
    fn check(self, name: &str, prefix: bool) -> Vec<String> {
        let name = if prefix && name.len() > 1 && name.ends_with('-') {
            // As Kubernetes' maskTrailingDash: the prefix will be followed by a suffix.
            let mut masked = name[..name.len() - 1].to_string();
            masked.pop();
            masked.push('a');
            Cow::Owned(masked)
        } else {
            Cow::Borrowed(name)
        };
        match self {
            NameRule::Subdomain => is_dns1123_subdomain(&name),
            NameRule::Label => is_dns1123_label(&name),
            NameRule::Dns1035Label => is_dns1035_label(&name),
        }
    }
}

/// Checks `metadata` as Kubernetes' `ValidateObjectMeta`: a name or generateName that
/// follows `name_rule`; for a `namespaced` kind a namespace, when set, that is a DNS label
/// (the server takes it from the request path when absent), for a cluster-scoped one no
/// namespace; non-negative generation; label keys and values; annotation keys and their
/// total size (at most 256 KiB); each owner reference's apiVersion, kind, name and uid, and
/// at most one controller; finalizer names. `meta` may be null (no metadata).
pub fn validate_object_meta(meta: &Value, namespaced: bool, name_rule: NameRule, causes: &mut Vec<Cause>) {
    let out = causes;
    let path = "metadata";
    if !meta.is_object() && !meta.is_null() {
        out.push(invalid(path, meta, "must be an object"));
        return;
    }
    let generate_name = string(meta, "generateName", path, out).unwrap_or("");
    if !generate_name.is_empty() {
        for m in name_rule.check(generate_name, true) {
            out.push(invalid("metadata.generateName", generate_name, &m));
        }
    }
    match string(meta, "name", path, out).unwrap_or("") {
        "" if generate_name.is_empty() => out.push(required("metadata.name", "name or generateName is required")),
        "" => {}
        name => {
            for m in name_rule.check(name, false) {
                out.push(invalid("metadata.name", name, &m));
            }
        }
    }
    match string(meta, "namespace", path, out).unwrap_or("") {
        "" => {}
        ns if namespaced => {
            for m in is_dns1123_label(ns) {
                out.push(invalid("metadata.namespace", ns, &m));
            }
        }
        _ => out.push(forbidden("metadata.namespace", "not allowed on this type")),
    }
    non_negative(meta, "generation", path, out);
    validate_labels(get(meta, "labels").unwrap_or(&NULL), "metadata.labels", out);
    validate_annotations(get(meta, "annotations").unwrap_or(&NULL), "metadata.annotations", out);
    validate_owner_references(meta, out);
    let finalizers_path = "metadata.finalizers";
    for (i, f) in list(meta, "finalizers", path, out).iter().enumerate() {
        match f.as_str() {
            Some(name) => {
                for m in is_qualified_name(name) {
                    out.push(invalid(finalizers_path, name, &m));
                }
            }
            None => out.push(invalid(index(finalizers_path, i), f, "must be a string")),
        }
    }
}

/// Checks a labels map (also a node selector or a plain selector): keys are qualified names,
/// values label values. Problems are reported at `path` itself, as Kubernetes does.
fn validate_labels(labels: &Value, path: &str, out: &mut Vec<Cause>) {
    let map = match labels {
        Value::Null => return,
        Value::Object(map) => map,
        other => {
            out.push(invalid(
                path,
                other,
                "must be an object of string keys to string values",
            ));
            return;
        }
    };
    for (k, v) in map {
        for m in is_qualified_name(k) {
            out.push(invalid(path, k, &m));
        }
        match v {
            Value::String(s) => {
                for m in is_valid_label_value(s) {
                    out.push(invalid(path, s, &m));
                }
            }
            Value::Null => {}
            other => out.push(invalid(key(path, k), other, "must be a string")),
        }
    }
}

fn validate_annotations(annotations: &Value, path: &str, out: &mut Vec<Cause>) {
    let map = match annotations {
        Value::Null => return,
        Value::Object(map) => map,
        other => {
            out.push(invalid(
                path,
                other,
                "must be an object of string keys to string values",
            ));
            return;
        }
    };
    let mut total = 0;
    for (k, v) in map {
        for m in is_qualified_name(&k.to_ascii_lowercase()) {
            out.push(invalid(path, k, &m));
        }
        match v {
            Value::String(s) => total += k.len() + s.len(),
            Value::Null => total += k.len(),
            other => out.push(invalid(key(path, k), other, "must be a string")),
        }
    }
    if total > ANNOTATIONS_MAX {
        out.push(too_long(path, ANNOTATIONS_MAX));
    }
}

fn validate_owner_references(meta: &Value, out: &mut Vec<Cause>) {
    let path = "metadata.ownerReferences";
    let refs = list(meta, "ownerReferences", "metadata", out);
    let mut controller: Option<String> = None;
    for (i, r) in refs.iter().enumerate() {
        let p = index(path, i);
        if !r.is_object() {
            out.push(invalid(&p, r, "must be an object"));
            continue;
        }
        let api_version = string(r, "apiVersion", &p, out).unwrap_or("");
        if api_version.rsplit('/').next().unwrap_or("").is_empty() {
            out.push(invalid(
                child(&p, "apiVersion"),
                api_version,
                "version must not be empty",
            ));
        }
        let kind = string(r, "kind", &p, out).unwrap_or("");
        let name = string(r, "name", &p, out).unwrap_or("");
        for (field, value) in [("kind", kind), ("name", name)] {
            if value.is_empty() {
                out.push(invalid(child(&p, field), value, &format!("{field} must not be empty")));
            }
        }
        if string(r, "uid", &p, out).unwrap_or("").is_empty() {
            out.push(invalid(child(&p, "uid"), "", "uid must not be empty"));
        }
        if get(r, "controller") == Some(&Value::Bool(true)) {
            let this = format!("{kind}/{name}");
            match &controller {
                Some(first) => out.push(invalid(
                    path,
                    get(meta, "ownerReferences").unwrap_or(&NULL),
                    &format!(
                        "Only one reference can have Controller set to true. Found \"true\" in references for {first} and {this}"
                    ),
                )),
                None => controller = Some(this),
            }
        }
    }
}

// ---- Dispatch ----

type KindRule = fn(&Value, &mut Vec<Cause>);

/// Checks an object of `kind` in API group `group` ("" or "core" for the core group): its
/// metadata, then the fields of its kind. Kinds without rules of their own get metadata
/// checks only; since whether they are namespaced is not known here, a namespace is checked
/// when present and never required or forbidden. No causes means the object is valid.
pub fn validate(group: &str, kind: &str, obj: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    if !obj.is_object() {
        out.push(invalid("", obj, "an object must be a JSON object"));
        return out;
    }
    let group = if group == "core" { "" } else { group };
    let (namespaced, name_rule, rule): (bool, NameRule, Option<KindRule>) = match (group, kind) {
        ("", "Pod") => (true, NameRule::Subdomain, Some(validate_pod)),
        ("", "Service") => (true, NameRule::Dns1035Label, Some(validate_service)),
        ("", "ReplicationController") => (true, NameRule::Subdomain, Some(validate_replication_controller)),
        ("apps", "Deployment") => (true, NameRule::Subdomain, Some(validate_deployment)),
        ("apps", "ReplicaSet") => (true, NameRule::Subdomain, Some(validate_replica_set)),
        ("batch", "Job") => (true, NameRule::Subdomain, Some(validate_job)),
        ("", "Namespace") => (false, NameRule::Label, Some(validate_namespace)),
        ("", "Node") => (false, NameRule::Subdomain, Some(validate_node)),
        ("", "ConfigMap") => (true, NameRule::Subdomain, Some(validate_config_map)),
        ("", "Secret") => (true, NameRule::Subdomain, Some(validate_secret)),
        ("", "Endpoints") => (true, NameRule::Subdomain, Some(validate_endpoints)),
        ("discovery.k8s.io", "EndpointSlice") => (true, NameRule::Subdomain, Some(validate_endpoint_slice)),
        ("coordination.k8s.io", "Lease") => (true, NameRule::Subdomain, Some(validate_lease)),
        ("", "Event") => (true, NameRule::Subdomain, Some(validate_event)),
        _ => (true, NameRule::Subdomain, None),
    };
    validate_object_meta(get(obj, "metadata").unwrap_or(&NULL), namespaced, name_rule, &mut out);
    if let Some(rule) = rule {
        rule(obj, &mut out);
    }
    out
}

// ---- Pods ----

fn validate_pod(obj: &Value, out: &mut Vec<Cause>) {
    let spec = object_or_null(obj, "spec", "", out);
    validate_pod_spec(spec, "spec", out);
}

/// The volume source fields of a pod volume, in the order Kubernetes checks them.
const VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "emptyDir",
    "gitRepo",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "quobyte",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

/// Checks a pod spec at `path` (`spec`, `spec.template.spec`). `spec` may be null.
fn validate_pod_spec(spec: &Value, path: &str, out: &mut Vec<Cause>) {
    let volumes = validate_volumes(spec, path, out);
    let restart_policy = string(spec, "restartPolicy", path, out);

    let containers_path = child(path, "containers");
    let containers = list(spec, "containers", path, out);
    if containers.is_empty() {
        out.push(required(&containers_path, ""));
    }
    // Names are unique across containers and init containers together.
    let mut names: HashSet<&str> = HashSet::new();
    for (i, c) in containers.iter().enumerate() {
        let p = index(&containers_path, i);
        if let Some(name) = validate_container(c, &p, &volumes, out) {
            if !names.insert(name) {
                out.push(duplicate(child(&p, "name"), name));
            }
        }
        for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
            if let Some(v) = get(c, probe) {
                validate_probe(v, &child(&p, probe), probe != "readinessProbe", out);
            }
        }
        if let Some(lifecycle) = object(c, "lifecycle", &p, out) {
            for hook in ["postStart", "preStop"] {
                if let Some(h) = lifecycle.get(hook).filter(|h| !h.is_null()) {
                    validate_handler(h, &child(&child(&p, "lifecycle"), hook), true, out);
                }
            }
        }
        if get(c, "restartPolicy").is_some() {
            out.push(forbidden(
                child(&p, "restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
    }
    check_host_ports(containers, &containers_path, out);

    let init_path = child(path, "initContainers");
    let init_containers = list(spec, "initContainers", path, out);
    for (i, c) in init_containers.iter().enumerate() {
        let p = index(&init_path, i);
        if let Some(name) = validate_container(c, &p, &volumes, out) {
            if !names.insert(name) {
                out.push(duplicate(child(&p, "name"), name));
            }
        }
        // An init container with restartPolicy Always is a sidecar: it may have probes and hooks.
        let sidecar = match string(c, "restartPolicy", &p, out) {
            None => false,
            Some("Always") => true,
            Some(other) => {
                out.push(not_supported(child(&p, "restartPolicy"), other, &["Always"]));
                false
            }
        };
        for field in ["lifecycle", "livenessProbe", "readinessProbe", "startupProbe"] {
            let Some(v) = get(c, field) else { continue };
            if !sidecar {
                out.push(forbidden(
                    child(&p, field),
                    "may not be set for init containers without restartPolicy=Always",
                ));
            } else if field == "lifecycle" {
                for hook in ["postStart", "preStop"] {
                    if let Some(h) = get(v, hook) {
                        validate_handler(h, &child(&child(&p, field), hook), true, out);
                    }
                }
            } else {
                validate_probe(v, &child(&p, field), field != "readinessProbe", out);
            }
        }
    }
    check_host_ports(init_containers, &init_path, out);

    if let Some(policy) = restart_policy {
        if !["Always", "OnFailure", "Never"].contains(&policy) {
            out.push(not_supported(
                child(path, "restartPolicy"),
                policy,
                &["Always", "OnFailure", "Never"],
            ));
        }
    }
    one_of(
        spec,
        "dnsPolicy",
        path,
        &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        out,
    );
    validate_labels(
        get(spec, "nodeSelector").unwrap_or(&NULL),
        &child(path, "nodeSelector"),
        out,
    );
    for field in ["serviceAccountName", "nodeName"] {
        if let Some(name) = string(spec, field, path, out).filter(|s| !s.is_empty()) {
            for m in is_dns1123_subdomain(name) {
                out.push(invalid(child(path, field), name, &m));
            }
        }
    }
    for field in ["hostname", "subdomain"] {
        if let Some(name) = string(spec, field, path, out).filter(|s| !s.is_empty()) {
            for m in is_dns1123_label(name) {
                out.push(invalid(child(path, field), name, &m));
            }
        }
    }
    if let Some(n) = int(spec, "activeDeadlineSeconds", path, out) {
        if !(1..=i64::from(i32::MAX)).contains(&n) {
            out.push(invalid(
                child(path, "activeDeadlineSeconds"),
                n,
                "must be between 1 and 2147483647, inclusive",
            ));
        }
    }
    validate_tolerations(spec, path, out);
}

/// Checks `spec.volumes`; returns the names of the valid volumes, which mounts may refer to.
fn validate_volumes<'a>(spec: &'a Value, path: &str, out: &mut Vec<Cause>) -> HashSet<&'a str> {
    let volumes_path = child(path, "volumes");
    let mut valid = HashSet::new();
    let mut seen = HashSet::new();
    for (i, v) in list(spec, "volumes", path, out).iter().enumerate() {
        let p = index(&volumes_path, i);
        if !v.is_object() {
            out.push(invalid(&p, v, "must be an object"));
            continue;
        }
        let before = out.len();
        let name = string(v, "name", &p, out).unwrap_or("");
        if name.is_empty() {
            out.push(required(child(&p, "name"), ""));
        } else {
            for m in is_dns1123_label(name) {
                out.push(invalid(child(&p, "name"), name, &m));
            }
        }
        if !name.is_empty() && !seen.insert(name) {
            out.push(duplicate(child(&p, "name"), name));
        }
        // No source at all is allowed: Kubernetes defaults it to an emptyDir.
        let mut sources = VOLUME_SOURCES.iter().filter(|s| get(v, s).is_some());
        let first = sources.next();
        for extra in sources {
            out.push(forbidden(child(&p, extra), "may not specify more than 1 volume type"));
        }
        let source_required = |source: &str, field: &str, out: &mut Vec<Cause>| {
            if let Some(s) = get(v, source) {
                let sp = child(&p, source);
                if string(s, field, &sp, out).unwrap_or("").is_empty() {
                    out.push(required(child(&sp, field), ""));
                }
            }
        };
        match first.copied() {
            Some("hostPath") => source_required("hostPath", "path", out),
            Some("secret") => source_required("secret", "secretName", out),
            Some("configMap") => source_required("configMap", "name", out),
            Some("persistentVolumeClaim") => source_required("persistentVolumeClaim", "claimName", out),
            Some("emptyDir") => {
                let ep = child(&p, "emptyDir");
                if let Some(limit) = get(v, "emptyDir").and_then(|e| get(e, "sizeLimit")) {
                    quantity(limit, &child(&ep, "sizeLimit"), out);
                }
            }
            _ => {}
        }
        if out.len() == before {
            valid.insert(name);
        }
    }
    valid
}

/// Checks what every container (regular or init) must satisfy; returns its name when it has one.
fn validate_container<'a>(c: &'a Value, path: &str, volumes: &HashSet<&str>, out: &mut Vec<Cause>) -> Option<&'a str> {
    if !c.is_object() {
        out.push(invalid(path, c, "must be an object"));
        return None;
    }
    let name = string(c, "name", path, out).unwrap_or("");
    if name.is_empty() {
        out.push(required(child(path, "name"), ""));
    } else {
        for m in is_dns1123_label(name) {
            out.push(invalid(child(path, "name"), name, &m));
        }
    }
    if string(c, "image", path, out).unwrap_or("").is_empty() {
        out.push(required(child(path, "image"), ""));
    }
    validate_container_ports(c, path, out);
    validate_env(c, path, out);
    validate_env_from(c, path, out);
    validate_volume_mounts(c, path, volumes, out);
    one_of(c, "imagePullPolicy", path, &["Always", "IfNotPresent", "Never"], out);
    one_of(
        c,
        "terminationMessagePolicy",
        path,
        &["File", "FallbackToLogsOnError"],
        out,
    );
    validate_resources(c, path, out);
    (!name.is_empty()).then_some(name)
}

fn validate_container_ports(c: &Value, path: &str, out: &mut Vec<Cause>) {
    let ports_path = child(path, "ports");
    let mut names = HashSet::new();
    for (i, port) in list(c, "ports", path, out).iter().enumerate() {
        let p = index(&ports_path, i);
        if !port.is_object() {
            out.push(invalid(&p, port, "must be an object"));
            continue;
        }
        if let Some(name) = string(port, "name", &p, out).filter(|n| !n.is_empty()) {
            let msgs = is_valid_port_name(name);
            if !msgs.is_empty() {
                for m in msgs {
                    out.push(invalid(child(&p, "name"), name, &m));
                }
            } else if !names.insert(name) {
                out.push(duplicate(child(&p, "name"), name));
            }
        }
        match int(port, "containerPort", &p, out) {
            None | Some(0) => out.push(required(child(&p, "containerPort"), "")),
            Some(n) if !is_valid_port_num(n) => out.push(invalid(child(&p, "containerPort"), n, PORT_RANGE_ERR)),
            Some(_) => {}
        }
        if let Some(n) = int(port, "hostPort", &p, out).filter(|n| *n != 0 && !is_valid_port_num(*n)) {
            out.push(invalid(child(&p, "hostPort"), n, PORT_RANGE_ERR));
        }
        one_of(port, "protocol", &p, PROTOCOLS, out);
        if let Some(ip) = string(port, "hostIP", &p, out).filter(|s| !s.is_empty()) {
            if ip.parse::<IpAddr>().is_err() {
                out.push(invalid(child(&p, "hostIP"), ip, IP_ERR));
            }
        }
    }
}

/// Host ports must not collide between the containers of one list (per host IP and protocol).
fn check_host_ports(containers: &[Value], path: &str, out: &mut Vec<Cause>) {
    let mut taken = HashSet::new();
    for (ci, c) in containers.iter().enumerate() {
        let Some(ports) = get(c, "ports").and_then(Value::as_array) else {
            continue;
        };
        for (pi, port) in ports.iter().enumerate() {
            let Some(host_port) = get(port, "hostPort").and_then(Value::as_i64).filter(|n| *n != 0) else {
                continue;
            };
            let ip = get(port, "hostIP").and_then(Value::as_str).unwrap_or("");
            let protocol = get(port, "protocol").and_then(Value::as_str).unwrap_or("TCP");
            let slot = format!("{ip}/{protocol}/{host_port}");
            if !taken.insert(slot.clone()) {
                out.push(duplicate(format!("{path}[{ci}].ports[{pi}].hostPort"), &slot));
            }
        }
    }
}

fn validate_env(c: &Value, path: &str, out: &mut Vec<Cause>) {
    let env_path = child(path, "env");
    for (i, ev) in list(c, "env", path, out).iter().enumerate() {
        let p = index(&env_path, i);
        if !ev.is_object() {
            out.push(invalid(&p, ev, "must be an object"));
            continue;
        }
        match string(ev, "name", &p, out).unwrap_or("") {
            "" => out.push(required(child(&p, "name"), "")),
            name => {
                for m in is_env_var_name(name) {
                    out.push(invalid(child(&p, "name"), name, &m));
                }
            }
        }
        let value = string(ev, "value", &p, out).unwrap_or("");
        if object(ev, "valueFrom", &p, out).is_none() {
            continue;
        }
        let fp = child(&p, "valueFrom");
        let from = get(ev, "valueFrom").unwrap_or(&NULL);
        let sources: Vec<&str> = ["fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef"]
            .into_iter()
            .filter(|s| get(from, s).is_some())
            .collect();
        match sources.len() {
            0 => out.push(invalid(
                &fp,
                "",
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            )),
            1 => {}
            _ => out.push(invalid(&fp, "", "may not have more than one field specified at a time")),
        }
        if !value.is_empty() && !sources.is_empty() {
            out.push(invalid(&fp, "", "may not be specified when `value` is not empty"));
        }
        for source in sources {
            let Some(s) = get(from, source) else { continue };
            let sp = child(&fp, source);
            let need = |field: &str, out: &mut Vec<Cause>| -> Option<&str> {
                let v = string(s, field, &sp, out).filter(|v| !v.is_empty());
                if v.is_none() {
                    out.push(required(child(&sp, field), ""));
                }
                v
            };
            match source {
                "fieldRef" => {
                    need("fieldPath", out);
                }
                "resourceFieldRef" => {
                    need("resource", out);
                }
                _ => {
                    need("name", out);
                    if let Some(k) = need("key", out) {
                        for m in is_config_map_key(k) {
                            out.push(invalid(child(&sp, "key"), k, &m));
                        }
                    }
                }
            }
        }
    }
}

fn validate_env_from(c: &Value, path: &str, out: &mut Vec<Cause>) {
    let from_path = child(path, "envFrom");
    for (i, ef) in list(c, "envFrom", path, out).iter().enumerate() {
        let p = index(&from_path, i);
        if !ef.is_object() {
            out.push(invalid(&p, ef, "must be an object"));
            continue;
        }
        let refs: Vec<&str> = ["configMapRef", "secretRef"]
            .into_iter()
            .filter(|r| get(ef, r).is_some())
            .collect();
        match refs.len() {
            0 => out.push(invalid(&p, "", "must specify one of: `configMapRef` or `secretRef`")),
            1 => {}
            _ => out.push(invalid(&p, "", "may not have more than one field specified at a time")),
        }
        for r in refs {
            let rp = child(&p, r);
            let source = get(ef, r).unwrap_or(&NULL);
            match string(source, "name", &rp, out).unwrap_or("") {
                "" => out.push(required(child(&rp, "name"), "")),
                name => {
                    for m in is_dns1123_subdomain(name) {
                        out.push(invalid(child(&rp, "name"), name, &m));
                    }
                }
            }
        }
        if let Some(prefix) = string(ef, "prefix", &p, out).filter(|s| !s.is_empty()) {
            for m in is_env_var_name(prefix) {
                out.push(invalid(child(&p, "prefix"), prefix, &m));
            }
        }
    }
}

fn validate_volume_mounts(c: &Value, path: &str, volumes: &HashSet<&str>, out: &mut Vec<Cause>) {
    let mounts_path = child(path, "volumeMounts");
    let mut mount_points = HashSet::new();
    for (i, m) in list(c, "volumeMounts", path, out).iter().enumerate() {
        let p = index(&mounts_path, i);
        if !m.is_object() {
            out.push(invalid(&p, m, "must be an object"));
            continue;
        }
        match string(m, "name", &p, out).unwrap_or("") {
            "" => out.push(required(child(&p, "name"), "")),
            name if !volumes.contains(name) => out.push(not_found(child(&p, "name"), name)),
            _ => {}
        }
        let mount_path = string(m, "mountPath", &p, out).unwrap_or("");
        if mount_path.is_empty() {
            out.push(required(child(&p, "mountPath"), ""));
        } else if !mount_points.insert(mount_path) {
            out.push(invalid(child(&p, "mountPath"), mount_path, "must be unique"));
        }
        if let Some(sub) = string(m, "subPath", &p, out).filter(|s| !s.is_empty()) {
            let sp = child(&p, "subPath");
            if sub.starts_with('/') {
                out.push(invalid(&sp, sub, "must be a relative path"));
            }
            if sub.split('/').any(|part| part == "..") {
                out.push(invalid(&sp, sub, "must not contain '..'"));
            }
        }
    }
}

/// Resources every container may name without a domain; anything else needs one
/// (`example.com/gpu`, an extended resource).
fn is_standard_container_resource(name: &str) -> bool {
    matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-")
}

/// Whether a request may be below its limit: yes for native resources except huge pages;
/// extended resources cannot be overcommitted.
fn overcommit_allowed(name: &str) -> bool {
    let native = !name.contains('/') || name.contains("kubernetes.io/");
    native && !name.starts_with("hugepages-")
}

fn validate_resources(c: &Value, path: &str, out: &mut Vec<Cause>) {
    let rp = child(path, "resources");
    let resources = object_or_null(c, "resources", path, out);
    let limits_path = child(&rp, "limits");
    let requests_path = child(&rp, "requests");
    let limits = object(resources, "limits", &rp, out);
    let requests = object(resources, "requests", &rp, out);
    let check_name = |name: &str, p: &str, out: &mut Vec<Cause>| {
        if name.contains('/') {
            for m in is_qualified_name(name) {
                out.push(invalid(p, name, &m));
            }
        } else if !is_standard_container_resource(name) {
            out.push(invalid(p, name, "must be a standard resource for containers"));
        }
    };
    let mut limit_values = Vec::new();
    for (name, v) in limits.into_iter().flatten() {
        let p = key(&limits_path, name);
        check_name(name, &p, out);
        if let Some(n) = quantity(v, &p, out) {
            limit_values.push((name.as_str(), n, quantity_text(v).unwrap_or_default()));
        }
    }
    for (name, v) in requests.into_iter().flatten() {
        let p = key(&requests_path, name);
        check_name(name, &p, out);
        let Some(request) = quantity(v, &p, out) else { continue };
        let text = quantity_text(v).unwrap_or_default();
        match limit_values.iter().find(|(n, _, _)| *n == name) {
            Some((_, limit, limit_text)) if request != *limit && !overcommit_allowed(name) => out.push(invalid(
                &requests_path,
                text.as_ref(),
                &format!("must be equal to {name} limit of {limit_text}"),
            )),
            Some((_, limit, limit_text)) if request > *limit => out.push(invalid(
                &requests_path,
                text.as_ref(),
                &format!("must be less than or equal to {name} limit of {limit_text}"),
            )),
            Some(_) => {}
            None if !overcommit_allowed(name) && limits.is_none_or(|l| !l.contains_key(name)) => out.push(required(
                &limits_path,
                "Limit must be set for non overcommitable resources",
            )),
            None => {}
        }
    }
}

/// Checks a probe: exactly one handler, non-negative timings; liveness and startup probes
/// (`success_is_one`) must have successThreshold 1.
fn validate_probe(probe: &Value, path: &str, success_is_one: bool, out: &mut Vec<Cause>) {
    if !probe.is_object() {
        out.push(invalid(path, probe, "must be an object"));
        return;
    }
    validate_handler(probe, path, false, out);
    for field in [
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ] {
        non_negative(probe, field, path, out);
    }
    if success_is_one {
        if let Some(n) = get(probe, "successThreshold")
            .and_then(Value::as_i64)
            .filter(|n| *n != 1)
        {
            out.push(invalid(child(path, "successThreshold"), n, "must be 1"));
        }
    }
}

/// Checks the handler of a probe or lifecycle hook (`hook` allows `sleep`, forbids `grpc`):
/// exactly one of exec, httpGet, tcpSocket, grpc.
fn validate_handler(handler: &Value, path: &str, hook: bool, out: &mut Vec<Cause>) {
    let kinds: &[&str] = if hook {
        &["exec", "httpGet", "tcpSocket", "sleep"]
    } else {
        &["exec", "httpGet", "tcpSocket", "grpc"]
    };
    let mut count = 0;
    for kind in kinds {
        let Some(h) = get(handler, kind) else { continue };
        let hp = child(path, kind);
        count += 1;
        if count > 1 {
            out.push(forbidden(&hp, "may not specify more than 1 handler type"));
            continue;
        }
        match *kind {
            "exec" => {
                if list(h, "command", &hp, out).is_empty() {
                    out.push(required(child(&hp, "command"), ""));
                }
            }
            "httpGet" | "tcpSocket" => {
                match get(h, "port") {
                    None => out.push(required(child(&hp, "port"), "")),
                    Some(port) => port_num_or_name(port, &child(&hp, "port"), out),
                }
                if *kind == "httpGet" {
                    one_of(h, "scheme", &hp, &["HTTP", "HTTPS"], out);
                }
            }
            "grpc" => match int(h, "port", &hp, out) {
                None => out.push(required(child(&hp, "port"), "")),
                Some(n) if !is_valid_port_num(n) => out.push(invalid(child(&hp, "port"), n, PORT_RANGE_ERR)),
                Some(_) => {}
            },
            _ => non_negative(h, "seconds", &hp, out),
        }
    }
    if count == 0 {
        out.push(required(path, "must specify a handler type"));
    }
}

/// An IntOrString port: a number in 1..65535 or an IANA service name.
fn port_num_or_name(port: &Value, path: &str, out: &mut Vec<Cause>) {
    match port {
        Value::String(name) => {
            for m in is_valid_port_name(name) {
                out.push(invalid(path, name, &m));
            }
        }
        Value::Number(_) => match port.as_i64() {
            Some(n) if is_valid_port_num(n) => {}
            Some(n) => out.push(invalid(path, n, PORT_RANGE_ERR)),
            None => out.push(invalid(path, port, PORT_RANGE_ERR)),
        },
        other => out.push(invalid(path, other, "must be a port number or name")),
    }
}

const TAINT_EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];

fn validate_tolerations(spec: &Value, path: &str, out: &mut Vec<Cause>) {
    let tp = child(path, "tolerations");
    for (i, t) in list(spec, "tolerations", path, out).iter().enumerate() {
        let p = index(&tp, i);
        if !t.is_object() {
            out.push(invalid(&p, t, "must be an object"));
            continue;
        }
        let key_name = string(t, "key", &p, out).unwrap_or("");
        if !key_name.is_empty() {
            for m in is_qualified_name(key_name) {
                out.push(invalid(child(&p, "key"), key_name, &m));
            }
        }
        let operator = string(t, "operator", &p, out).unwrap_or("");
        if key_name.is_empty() && operator != "Exists" {
            out.push(invalid(
                child(&p, "operator"),
                operator,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        let effect = string(t, "effect", &p, out).unwrap_or("");
        if get(t, "tolerationSeconds").is_some() && effect != "NoExecute" {
            out.push(invalid(
                child(&p, "effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        let value = string(t, "value", &p, out).unwrap_or("");
        match operator {
            "" | "Equal" => {
                let msgs = is_valid_label_value(value);
                if !msgs.is_empty() {
                    out.push(invalid(child(&p, "value"), value, &msgs.join(";")));
                }
            }
            "Exists" if !value.is_empty() => out.push(invalid(
                child(&p, "value"),
                value,
                "value must be empty when `operator` is 'Exists'",
            )),
            "Exists" => {}
            other => out.push(not_supported(child(&p, "operator"), other, &["Equal", "Exists"])),
        }
        if !effect.is_empty() && !TAINT_EFFECTS.contains(&effect) {
            out.push(not_supported(child(&p, "effect"), effect, TAINT_EFFECTS));
        }
    }
}

// ---- Workloads: templates and selectors ----

/// The labels of a pod template, as a map a selector can match.
fn template_labels(template: &Value) -> Map<String, Value> {
    template
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// Checks a pod template at `path` (`spec.template`): its labels, annotations and pod spec.
fn validate_pod_template(template: &Value, path: &str, out: &mut Vec<Cause>) {
    let meta = object_or_null(template, "metadata", path, out);
    let meta_path = child(path, "metadata");
    validate_labels(get(meta, "labels").unwrap_or(&NULL), &child(&meta_path, "labels"), out);
    validate_annotations(
        get(meta, "annotations").unwrap_or(&NULL),
        &child(&meta_path, "annotations"),
        out,
    );
    let spec = object_or_null(template, "spec", path, out);
    validate_pod_spec(spec, &child(path, "spec"), out);
}

/// Checks a `metav1.LabelSelector` at `path` field by field; true when it is well formed.
fn validate_label_selector(selector: &Value, path: &str, out: &mut Vec<Cause>) -> bool {
    let before = out.len();
    if !selector.is_object() {
        out.push(invalid(
            path,
            selector,
            "must be an object with matchLabels and/or matchExpressions",
        ));
        return false;
    }
    validate_labels(
        get(selector, "matchLabels").unwrap_or(&NULL),
        &child(path, "matchLabels"),
        out,
    );
    let ep = child(path, "matchExpressions");
    for (i, e) in list(selector, "matchExpressions", path, out).iter().enumerate() {
        let p = index(&ep, i);
        if !e.is_object() {
            out.push(invalid(&p, e, "must be an object"));
            continue;
        }
        let values = list(e, "values", &p, out);
        match string(e, "operator", &p, out).unwrap_or("") {
            "In" | "NotIn" if values.is_empty() => out.push(required(
                child(&p, "values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            "Exists" | "DoesNotExist" if !values.is_empty() => out.push(forbidden(
                child(&p, "values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => out.push(invalid(child(&p, "operator"), other, "not a valid selector operator")),
        }
        let key_name = string(e, "key", &p, out).unwrap_or("");
        for m in is_qualified_name(key_name) {
            out.push(invalid(child(&p, "key"), key_name, &m));
        }
        for (j, v) in values.iter().enumerate() {
            let vp = index(&child(&p, "values"), j);
            match v.as_str() {
                Some(s) => {
                    for m in is_valid_label_value(s) {
                        out.push(invalid(&vp, s, &m));
                    }
                }
                None => out.push(invalid(&vp, v, "must be a string")),
            }
        }
    }
    out.len() == before
}

/// Reports template labels that `selector` (when non-empty) does not select.
fn check_selector_matches_template(selector: &LabelSelector, template: &Value, path: &str, out: &mut Vec<Cause>) {
    let labels = template_labels(template);
    if !selector.is_empty() && !selector.matches(&labels) {
        out.push(invalid(
            format!("{path}.metadata.labels"),
            &Value::Object(labels),
            "`selector` does not match template `labels`",
        ));
    }
}

/// What Deployments and ReplicaSets share: replicas, minReadySeconds, a required non-empty
/// selector that selects the template, a template whose pods restart Always.
fn validate_replica_set_spec(obj: &Value, kind: &str, out: &mut Vec<Cause>) {
    let spec = object_or_null(obj, "spec", "", out);
    let path = "spec";
    non_negative(spec, "replicas", path, out);
    non_negative(spec, "minReadySeconds", path, out);
    let template = object_or_null(spec, "template", path, out);
    match get(spec, "selector") {
        None => out.push(required("spec.selector", "")),
        Some(selector) => {
            if validate_label_selector(selector, "spec.selector", out) {
                match LabelSelector::from_label_selector(selector) {
                    Ok(s) if s.is_empty() => out.push(invalid(
                        "spec.selector",
                        selector,
                        &format!("empty selector is invalid for {}", kind.to_ascii_lowercase()),
                    )),
                    Ok(s) => check_selector_matches_template(&s, template, "spec.template", out),
                    Err(_) => out.push(invalid("spec.selector", selector, "invalid label selector")),
                }
            }
        }
    }
    validate_pod_template(template, "spec.template", out);
    check_template_restart_policy(template, kind, out);
}

/// Pods of ReplicaSets, Deployments and ReplicationControllers are replaced, not restarted
/// by policy: restartPolicy must be Always and there is no deadline.
fn check_template_restart_policy(template: &Value, kind: &str, out: &mut Vec<Cause>) {
    let spec = get(template, "spec").unwrap_or(&NULL);
    if let Some(policy) = get(spec, "restartPolicy")
        .and_then(Value::as_str)
        .filter(|p| *p != "Always")
    {
        out.push(not_supported("spec.template.spec.restartPolicy", policy, &["Always"]));
    }
    if let Some(deadline) = get(spec, "activeDeadlineSeconds") {
        let what = if kind == "ReplicationController" {
            "ReplicationController"
        } else {
            "ReplicaSet"
        };
        out.push(invalid(
            "spec.template.spec.activeDeadlineSeconds",
            deadline,
            &format!("activeDeadlineSeconds in {what} is not Supported"),
        ));
    }
}

fn validate_replica_set(obj: &Value, out: &mut Vec<Cause>) {
    validate_replica_set_spec(obj, "ReplicaSet", out);
}

fn validate_deployment(obj: &Value, out: &mut Vec<Cause>) {
    validate_replica_set_spec(obj, "Deployment", out);
    let spec = get(obj, "spec").filter(|s| s.is_object()).unwrap_or(&NULL);
    non_negative(spec, "revisionHistoryLimit", "spec", out);
    if let Some(deadline) = int(spec, "progressDeadlineSeconds", "spec", out) {
        let min_ready = get(spec, "minReadySeconds").and_then(Value::as_i64).unwrap_or(0);
        if deadline < 0 {
            out.push(invalid(
                "spec.progressDeadlineSeconds",
                deadline,
                "must be greater than or equal to 0",
            ));
        } else if deadline <= min_ready {
            out.push(invalid(
                "spec.progressDeadlineSeconds",
                deadline,
                "must be greater than minReadySeconds",
            ));
        }
    }
    let strategy = object_or_null(spec, "strategy", "spec", out);
    let sp = "spec.strategy";
    let rolling = get(strategy, "rollingUpdate");
    match string(strategy, "type", sp, out).unwrap_or("RollingUpdate") {
        "Recreate" => {
            if rolling.is_some() {
                out.push(forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => {
            let ru = rolling.unwrap_or(&NULL);
            let rp = "spec.strategy.rollingUpdate";
            // Absent values default to 25%.
            let unavailable = int_or_percent(ru, "maxUnavailable", rp, out);
            let surge = int_or_percent(ru, "maxSurge", rp, out);
            if unavailable == Some(0) && surge == Some(0) {
                out.push(invalid(
                    "spec.strategy.rollingUpdate.maxUnavailable",
                    get(ru, "maxUnavailable").unwrap_or(&NULL),
                    "may not be 0 when `maxSurge` is 0",
                ));
            }
            if let Some(Value::String(s)) = get(ru, "maxUnavailable") {
                if unavailable.is_some_and(|p| p > 100) {
                    out.push(invalid(
                        "spec.strategy.rollingUpdate.maxUnavailable",
                        s,
                        "must not be greater than 100%",
                    ));
                }
            }
        }
        other => out.push(not_supported(
            "spec.strategy.type",
            other,
            &["Recreate", "RollingUpdate"],
        )),
    }
}

/// Reads a non-negative int or percentage (`1`, `"25%"`) at `v[name]`, reporting a bad one.
/// Absent reads as 25 (the default); the number is returned without its `%`.
fn int_or_percent(v: &Value, name: &str, path: &str, out: &mut Vec<Cause>) -> Option<i64> {
    let p = child(path, name);
    match get(v, name) {
        None => Some(25),
        Some(Value::String(s)) => {
            let digits = s
                .strip_suffix('%')
                .filter(|d| !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit()));
            match digits {
                Some(d) => Some(d.parse().unwrap_or(i64::MAX)),
                None => {
                    out.push(invalid(&p, s, &regex_error(PERCENT_ERR, PERCENT_FMT, &["1%", "93%"])));
                    None
                }
            }
        }
        Some(x) => match x.as_i64() {
            Some(n) if n < 0 => {
                out.push(invalid(&p, n, "must be greater than or equal to 0"));
                None
            }
            Some(n) => Some(n),
            None => {
                out.push(invalid(&p, x, "must be an integer or a percentage"));
                None
            }
        },
    }
}

fn validate_replication_controller(obj: &Value, out: &mut Vec<Cause>) {
    let spec = object_or_null(obj, "spec", "", out);
    let path = "spec";
    non_negative(spec, "replicas", path, out);
    non_negative(spec, "minReadySeconds", path, out);
    let template = match get(spec, "template") {
        None => {
            out.push(required("spec.template", ""));
            None
        }
        Some(t) if !t.is_object() => {
            out.push(invalid("spec.template", t, "must be an object"));
            None
        }
        Some(t) => Some(t),
    };
    let selector = get(spec, "selector").unwrap_or(&NULL);
    validate_labels(selector, "spec.selector", out);
    let empty = selector.as_object().is_none_or(Map::is_empty);
    // An absent selector defaults to the template's labels; only with neither is it missing.
    if empty && template.is_none_or(|t| template_labels(t).is_empty()) {
        out.push(required("spec.selector", ""));
    }
    let Some(template) = template else { return };
    if let Ok(s) = LabelSelector::from_map(selector) {
        check_selector_matches_template(&s, template, "spec.template", out);
    }
    validate_pod_template(template, "spec.template", out);
    check_template_restart_policy(template, "ReplicationController", out);
}

fn validate_job(obj: &Value, out: &mut Vec<Cause>) {
    let spec = object_or_null(obj, "spec", "", out);
    let path = "spec";
    for field in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
    ] {
        non_negative(spec, field, path, out);
    }
    match string(spec, "completionMode", path, out) {
        None | Some("NonIndexed") => {}
        Some("Indexed") => {
            if get(spec, "completions").is_none() {
                out.push(required("spec.completions", "when completion mode is Indexed"));
            }
        }
        Some(other) => out.push(not_supported("spec.completionMode", other, &["NonIndexed", "Indexed"])),
    }
    let template = object_or_null(spec, "template", path, out);
    // The selector is usually generated by the server; one given must select the template.
    if let Some(selector) = get(spec, "selector") {
        if validate_label_selector(selector, "spec.selector", out) {
            if let Ok(s) = LabelSelector::from_label_selector(selector) {
                check_selector_matches_template(&s, template, "spec.template", out);
            }
        }
    }
    validate_pod_template(template, "spec.template", out);
    // Unset, the pod default (Always) would apply, which a Job cannot use.
    let policy = template
        .pointer("/spec/restartPolicy")
        .and_then(Value::as_str)
        .unwrap_or("Always");
    if policy != "OnFailure" && policy != "Never" {
        out.push(not_supported(
            "spec.template.spec.restartPolicy",
            policy,
            &["OnFailure", "Never"],
        ));
    }
}

// ---- Services and endpoints ----

fn validate_service(obj: &Value, out: &mut Vec<Cause>) {
    let spec = object_or_null(obj, "spec", "", out);
    let path = "spec";
    let ty = string(spec, "type", path, out).unwrap_or("ClusterIP");
    let cluster_ip = string(spec, "clusterIP", path, out).unwrap_or("");
    let headless = cluster_ip == "None";
    let ports = list(spec, "ports", path, out);
    if ports.is_empty() && !headless && ty != "ExternalName" {
        out.push(required("spec.ports", ""));
    }
    match ty {
        "ClusterIP" => {}
        "NodePort" | "LoadBalancer" => {
            if headless {
                out.push(invalid(
                    "spec.clusterIP",
                    cluster_ip,
                    &format!("may not be set to 'None' for {ty} services"),
                ));
            }
        }
        "ExternalName" => {
            if !cluster_ip.is_empty() {
                out.push(forbidden("spec.clusterIP", "may not be set for ExternalName services"));
            }
            // A trailing dot marks the name as fully qualified.
            let name = string(spec, "externalName", path, out).unwrap_or("");
            let cname = name.strip_suffix('.').unwrap_or(name);
            if cname.is_empty() {
                out.push(required("spec.externalName", ""));
            } else {
                for m in is_dns1123_subdomain(cname) {
                    out.push(invalid("spec.externalName", cname, &m));
                }
            }
        }
        other => out.push(not_supported(
            "spec.type",
            other,
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        )),
    }
    if !cluster_ip.is_empty() && !headless && cluster_ip.parse::<IpAddr>().is_err() {
        out.push(invalid("spec.clusterIP", cluster_ip, IP_ERR));
    }
    for (i, ip) in list(spec, "clusterIPs", path, out).iter().enumerate() {
        match ip.as_str() {
            Some("None") if i == 0 => {}
            Some(s) if s.parse::<IpAddr>().is_ok() => {}
            _ => out.push(invalid(index("spec.clusterIPs", i), ip, IP_ERR)),
        }
    }

    let mut names = HashSet::new();
    let mut node_ports = HashSet::new();
    let mut port_keys = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let p = index("spec.ports", i);
        if !port.is_object() {
            out.push(invalid(&p, port, "must be an object"));
            continue;
        }
        match string(port, "name", &p, out).unwrap_or("") {
            "" if ports.len() > 1 => out.push(required(child(&p, "name"), "")),
            "" => {}
            name => {
                for m in is_dns1123_label(name) {
                    out.push(invalid(child(&p, "name"), name, &m));
                }
                if !names.insert(name) {
                    out.push(duplicate(child(&p, "name"), name));
                }
            }
        }
        let number = int(port, "port", &p, out);
        match number {
            None => out.push(required(child(&p, "port"), "")),
            Some(n) if !is_valid_port_num(n) => out.push(invalid(child(&p, "port"), n, PORT_RANGE_ERR)),
            Some(_) => {}
        }
        one_of(port, "protocol", &p, PROTOCOLS, out);
        let protocol = get(port, "protocol").and_then(Value::as_str).unwrap_or("TCP");
        // 0 and "" mean "the same as port", which is the default.
        match get(port, "targetPort") {
            None => {}
            Some(Value::Number(n)) if n.as_i64() == Some(0) => {}
            Some(Value::String(s)) if s.is_empty() => {}
            Some(target) => port_num_or_name(target, &child(&p, "targetPort"), out),
        }
        if let Some(node_port) = int(port, "nodePort", &p, out).filter(|n| *n != 0) {
            if !is_valid_port_num(node_port) {
                out.push(invalid(child(&p, "nodePort"), node_port, PORT_RANGE_ERR));
            }
            if ty == "ClusterIP" {
                out.push(forbidden(
                    child(&p, "nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
            if !node_ports.insert((protocol, node_port)) {
                out.push(duplicate(child(&p, "nodePort"), node_port));
            }
        }
        if let Some(n) = number {
            if !port_keys.insert((protocol, n)) {
                out.push(duplicate(&p, format!("{n}/{protocol}").as_str()));
            }
        }
        if let Some(app) = string(port, "appProtocol", &p, out) {
            for m in is_qualified_name(app) {
                out.push(invalid(child(&p, "appProtocol"), app, &m));
            }
        }
    }

    validate_labels(get(spec, "selector").unwrap_or(&NULL), "spec.selector", out);
    let affinity = string(spec, "sessionAffinity", path, out).unwrap_or("None");
    match affinity {
        "None" => {
            if get(spec, "sessionAffinityConfig").is_some() {
                out.push(forbidden(
                    "spec.sessionAffinityConfig",
                    "must not be set when session affinity is None",
                ));
            }
        }
        "ClientIP" => {
            let timeout = get(spec, "sessionAffinityConfig").and_then(|c| get(c, "clientIP"));
            let tp = "spec.sessionAffinityConfig.clientIP";
            if let Some(n) = timeout.and_then(|c| int(c, "timeoutSeconds", tp, out)) {
                if !(1..=86400).contains(&n) {
                    out.push(invalid(
                        child(tp, "timeoutSeconds"),
                        n,
                        "must be greater than 0 and less than or equal to 86400",
                    ));
                }
            }
        }
        other => out.push(not_supported("spec.sessionAffinity", other, &["ClientIP", "None"])),
    }
    for (i, ip) in list(spec, "externalIPs", path, out).iter().enumerate() {
        if ip.as_str().is_none_or(|s| s.parse::<IpAddr>().is_err()) {
            out.push(invalid(index("spec.externalIPs", i), ip, IP_ERR));
        }
    }
    if let Some(policy) = string(spec, "externalTrafficPolicy", path, out).filter(|p| !p.is_empty()) {
        if !["Cluster", "Local"].contains(&policy) {
            out.push(not_supported(
                "spec.externalTrafficPolicy",
                policy,
                &["Cluster", "Local"],
            ));
        } else if !matches!(ty, "NodePort" | "LoadBalancer")
            && get(spec, "externalIPs")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty)
        {
            out.push(invalid(
                "spec.externalTrafficPolicy",
                policy,
                "may only be set for externally-accessible services",
            ));
        }
    }
    one_of(spec, "internalTrafficPolicy", path, &["Cluster", "Local"], out);
}

/// Checks an endpoint address: a valid IP that is not unspecified, loopback or link-local
/// (nonsensical or node-centric as a backend).
fn validate_endpoint_ip(ip: &str, path: &str, out: &mut Vec<Cause>) {
    let Ok(addr) = ip.parse::<IpAddr>() else {
        out.push(invalid(path, ip, IP_ERR));
        return;
    };
    if addr.is_unspecified() {
        out.push(invalid(path, ip, &format!("may not be unspecified ({ip})")));
    }
    if addr.is_loopback() {
        out.push(invalid(
            path,
            ip,
            "may not be in the loopback range (127.0.0.0/8, ::1/128)",
        ));
    }
    let (link_local, link_local_multicast) = match addr {
        IpAddr::V4(a) => (a.is_link_local(), a.octets()[..3] == [224, 0, 0]),
        IpAddr::V6(a) => {
            let s = a.segments();
            (s[0] & 0xffc0 == 0xfe80, s[0] & 0xff0f == 0xff02)
        }
    };
    if link_local {
        out.push(invalid(
            path,
            ip,
            "may not be in the link-local range (169.254.0.0/16, fe80::/10)",
        ));
    }
    if link_local_multicast {
        out.push(invalid(
            path,
            ip,
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
        ));
    }
}

/// Which object endpoint ports belong to: their rules differ slightly.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PortsOf {
    /// Endpoints subsets: names required when there are several, a port number required.
    Endpoints,
    /// EndpointSlices: names optional but unique (one unnamed port at most), numbers optional.
    EndpointSlice,
}

fn validate_endpoint_ports(ports: &[Value], path: &str, of: PortsOf, out: &mut Vec<Cause>) {
    let mut names = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let p = index(path, i);
        if !port.is_object() {
            out.push(invalid(&p, port, "must be an object"));
            continue;
        }
        let name = string(port, "name", &p, out).unwrap_or("");
        if name.is_empty() && of == PortsOf::Endpoints && ports.len() > 1 {
            out.push(required(child(&p, "name"), ""));
        } else if !name.is_empty() {
            for m in is_dns1123_label(name) {
                out.push(invalid(child(&p, "name"), name, &m));
            }
        }
        if of == PortsOf::EndpointSlice && !names.insert(name) {
            out.push(duplicate(child(&p, "name"), name));
        }
        match int(port, "port", &p, out) {
            None if of == PortsOf::Endpoints => out.push(required(child(&p, "port"), "")),
            Some(n) if !is_valid_port_num(n) => out.push(invalid(child(&p, "port"), n, PORT_RANGE_ERR)),
            _ => {}
        }
        one_of(port, "protocol", &p, PROTOCOLS, out);
    }
}

fn validate_endpoints(obj: &Value, out: &mut Vec<Cause>) {
    for (i, subset) in list(obj, "subsets", "", out).iter().enumerate() {
        let sp = index("subsets", i);
        if !subset.is_object() {
            out.push(invalid(&sp, subset, "must be an object"));
            continue;
        }
        let no_addresses = ["addresses", "notReadyAddresses"]
            .iter()
            .all(|f| get(subset, f).and_then(Value::as_array).is_none_or(Vec::is_empty));
        if no_addresses {
            out.push(required(&sp, "must specify `addresses` or `notReadyAddresses`"));
        }
        for field in ["addresses", "notReadyAddresses"] {
            let ap = child(&sp, field);
            for (j, a) in list(subset, field, &sp, out).iter().enumerate() {
                let p = index(&ap, j);
                if !a.is_object() {
                    out.push(invalid(&p, a, "must be an object"));
                    continue;
                }
                validate_endpoint_ip(string(a, "ip", &p, out).unwrap_or(""), &child(&p, "ip"), out);
                if let Some(h) = string(a, "hostname", &p, out).filter(|h| !h.is_empty()) {
                    for m in is_dns1123_label(h) {
                        out.push(invalid(child(&p, "hostname"), h, &m));
                    }
                }
                if let Some(n) = string(a, "nodeName", &p, out) {
                    for m in is_dns1123_subdomain(n) {
                        out.push(invalid(child(&p, "nodeName"), n, &m));
                    }
                }
            }
        }
        let ports = list(subset, "ports", &sp, out);
        validate_endpoint_ports(ports, &child(&sp, "ports"), PortsOf::Endpoints, out);
    }
}

fn validate_endpoint_slice(obj: &Value, out: &mut Vec<Cause>) {
    const TYPES: &[&str] = &["FQDN", "IPv4", "IPv6"];
    let address_type = string(obj, "addressType", "", out).unwrap_or("");
    if address_type.is_empty() {
        out.push(required("addressType", ""));
    } else if !TYPES.contains(&address_type) {
        out.push(not_supported("addressType", address_type, TYPES));
    }
    for (i, e) in list(obj, "endpoints", "", out).iter().enumerate() {
        let ep = index("endpoints", i);
        if !e.is_object() {
            out.push(invalid(&ep, e, "must be an object"));
            continue;
        }
        let ap = child(&ep, "addresses");
        let addresses = list(e, "addresses", &ep, out);
        if addresses.is_empty() {
            out.push(required(&ap, "must contain at least 1 address"));
        }
        for (j, a) in addresses.iter().enumerate() {
            let p = index(&ap, j);
            let Some(a) = a.as_str() else {
                out.push(invalid(&p, a, "must be a string"));
                continue;
            };
            match address_type {
                "IPv4" if a.parse::<std::net::Ipv4Addr>().is_err() => {
                    out.push(invalid(&p, a, "must be a valid IPv4 address"))
                }
                "IPv6" if a.parse::<std::net::Ipv6Addr>().is_err() => {
                    out.push(invalid(&p, a, "must be a valid IPv6 address"))
                }
                "IPv4" | "IPv6" => validate_endpoint_ip(a, &p, out),
                "FQDN" => {
                    for m in is_dns1123_subdomain(a) {
                        out.push(invalid(&p, a, &m));
                    }
                }
                _ => {}
            }
        }
        if let Some(n) = string(e, "nodeName", &ep, out) {
            for m in is_dns1123_subdomain(n) {
                out.push(invalid(child(&ep, "nodeName"), n, &m));
            }
        }
        if let Some(h) = string(e, "hostname", &ep, out) {
            for m in is_dns1123_label(h) {
                out.push(invalid(child(&ep, "hostname"), h, &m));
            }
        }
    }
    let ports = list(obj, "ports", "", out);
    validate_endpoint_ports(ports, "ports", PortsOf::EndpointSlice, out);
}

// ---- Cluster objects, configuration and coordination ----

fn validate_namespace(obj: &Value, out: &mut Vec<Cause>) {
    let spec = object_or_null(obj, "spec", "", out);
    for (i, f) in list(spec, "finalizers", "spec", out).iter().enumerate() {
        match f.as_str() {
            Some(name) => {
                for m in is_qualified_name(name) {
                    out.push(invalid("spec.finalizers", name, &m));
                }
            }
            None => out.push(invalid(index("spec.finalizers", i), f, "must be a string")),
        }
    }
}

fn validate_node(obj: &Value, out: &mut Vec<Cause>) {
    let spec = object_or_null(obj, "spec", "", out);
    let path = "spec";
    if let Some(cidr) = string(spec, "podCIDR", path, out).filter(|c| !c.is_empty()) {
        if !is_valid_cidr(cidr) {
            out.push(invalid("spec.podCIDR", cidr, CIDR_ERR));
        }
    }
    let cidrs = list(spec, "podCIDRs", path, out);
    for (i, c) in cidrs.iter().enumerate() {
        if c.as_str().is_none_or(|c| !is_valid_cidr(c)) {
            out.push(invalid(index("spec.podCIDRs", i), c, CIDR_ERR));
        }
    }
    if cidrs.len() > 2 {
        out.push(invalid(
            "spec.podCIDRs",
            get(spec, "podCIDRs").unwrap_or(&NULL),
            "may specify no more than one CIDR for each IP family",
        ));
    }
    let mut seen = HashSet::new();
    for (i, t) in list(spec, "taints", path, out).iter().enumerate() {
        let p = index("spec.taints", i);
        if !t.is_object() {
            out.push(invalid(&p, t, "must be an object"));
            continue;
        }
        let key_name = string(t, "key", &p, out).unwrap_or("");
        for m in is_qualified_name(key_name) {
            out.push(invalid(child(&p, "key"), key_name, &m));
        }
        let value = string(t, "value", &p, out).unwrap_or("");
        let msgs = is_valid_label_value(value);
        if !msgs.is_empty() {
            out.push(invalid(child(&p, "value"), value, &msgs.join(";")));
        }
        let effect = string(t, "effect", &p, out).unwrap_or("");
        if effect.is_empty() {
            out.push(required(child(&p, "effect"), ""));
        } else if !TAINT_EFFECTS.contains(&effect) {
            out.push(not_supported(child(&p, "effect"), effect, TAINT_EFFECTS));
        }
        if !seen.insert((key_name, effect)) {
            let mut c = duplicate(&p, t);
            c.message.push_str(": taints must be unique by key and effect pair");
            out.push(c);
        }
    }
}

/// Checks the keys of a `data`-like map (`data`, `binaryData`, `stringData`); returns the
/// bytes its values hold (decoded, for base64 maps).
fn validate_data_map(obj: &Value, field: &str, base64: bool, redact: bool, out: &mut Vec<Cause>) -> usize {
    let Some(map) = object(obj, field, "", out) else {
        return 0;
    };
    let mut size = 0;
    for (k, v) in map {
        let p = key(field, k);
        for m in is_config_map_key(k) {
            out.push(invalid(&p, k, &m));
        }
        match (v, base64) {
            (Value::String(s), true) => match decode_base64(s) {
                Ok(bytes) => size += bytes.len(),
                Err(e) => {
                    let shown = if redact {
                        "<secret contents redacted>"
                    } else {
                        s.as_str()
                    };
                    out.push(invalid(&p, shown, &e));
                }
            },
            (Value::String(s), false) => size += s.len(),
            (Value::Null, _) => {}
            (_, true) => out.push(invalid(
                &p,
                if redact { &NULL } else { v },
                "must be a base64-encoded string",
            )),
            (_, false) => out.push(invalid(&p, v, "must be a string")),
        }
    }
    size
}

fn validate_config_map(obj: &Value, out: &mut Vec<Cause>) {
    let mut size = validate_data_map(obj, "data", false, false, out);
    size += validate_data_map(obj, "binaryData", true, false, out);
    if let (Some(data), Some(binary)) = (
        obj.get("data").and_then(Value::as_object),
        obj.get("binaryData").and_then(Value::as_object),
    ) {
        for k in data.keys().filter(|k| binary.contains_key(*k)) {
            out.push(invalid(key("data", k), k, "duplicate of key present in binaryData"));
        }
    }
    if size > DATA_MAX {
        out.push(too_long("data", DATA_MAX));
    }
}

fn validate_secret(obj: &Value, out: &mut Vec<Cause>) {
    let mut size = validate_data_map(obj, "data", true, true, out);
    size += validate_data_map(obj, "stringData", false, true, out);
    if size > DATA_MAX {
        out.push(too_long("data", DATA_MAX));
    }
    // `stringData` is merged into `data` on write, so either provides a required key.
    let has = |k: &str| {
        ["data", "stringData"]
            .iter()
            .any(|m| obj.get(m).and_then(Value::as_object).is_some_and(|m| m.contains_key(k)))
    };
    match string(obj, "type", "", out).unwrap_or("Opaque") {
        "kubernetes.io/service-account-token" => {
            let name = obj
                .pointer("/metadata/annotations/kubernetes.io~1service-account.name")
                .and_then(Value::as_str);
            if name.is_none_or(str::is_empty) {
                out.push(required("metadata.annotations[kubernetes.io/service-account.name]", ""));
            }
        }
        ty @ ("kubernetes.io/dockercfg" | "kubernetes.io/dockerconfigjson") => {
            let k = if ty == "kubernetes.io/dockercfg" {
                ".dockercfg"
            } else {
                ".dockerconfigjson"
            };
            if !has(k) {
                out.push(required(key("data", k), ""));
            } else if let Some(text) = secret_text(obj, k) {
                if let Err(e) = serde_json::from_slice::<Map<String, Value>>(&text) {
                    out.push(invalid(key("data", k), "<secret contents redacted>", &e.to_string()));
                }
            }
        }
        // Either may be empty, but one must be there.
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            out.push(required("data[username]", ""));
            out.push(required("data[password]", ""));
        }
        "kubernetes.io/ssh-auth" if secret_text(obj, "ssh-privatekey").is_none_or(|k| k.is_empty()) => {
            out.push(required("data[ssh-privatekey]", ""))
        }
        "kubernetes.io/tls" => {
            for k in ["tls.crt", "tls.key"] {
                if !has(k) {
                    out.push(required(key("data", k), ""));
                }
            }
        }
        _ => {}
    }
}

/// The bytes of a secret key, from `stringData` (which wins) or decoded `data`.
fn secret_text(obj: &Value, k: &str) -> Option<Vec<u8>> {
    if let Some(s) = obj.get("stringData").and_then(|d| d.get(k)).and_then(Value::as_str) {
        return Some(s.as_bytes().to_vec());
    }
    obj.get("data")
        .and_then(|d| d.get(k))
        .and_then(Value::as_str)
        .and_then(|s| decode_base64(s).ok())
}

/// Decodes standard padded base64 as Go's `encoding/json` reads `[]byte` fields (line breaks
/// ignored); the error names the first bad byte as Go's does.
fn decode_base64(s: &str) -> Result<Vec<u8>, String> {
    fn sextet(c: u8) -> Option<u8> {
        match c {
            b'A'..=b'Z' => Some(c - b'A'),
            b'a'..=b'z' => Some(c - b'a' + 26),
            b'0'..=b'9' => Some(c - b'0' + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let bad = |at: usize| format!("illegal base64 data at input byte {at}");
    let chars: Vec<(usize, u8)> = s
        .bytes()
        .enumerate()
        .filter(|(_, c)| *c != b'\r' && *c != b'\n')
        .collect();
    let mut out = Vec::with_capacity(chars.len() / 4 * 3);
    for (g, group) in chars.chunks(4).enumerate() {
        if group.len() < 4 {
            return Err(bad(s.len()));
        }
        let last_group = (g + 1) * 4 == chars.len();
        let padding = group.iter().rev().take_while(|(_, c)| *c == b'=').count();
        if padding > 2 || (padding > 0 && !last_group) {
            return Err(bad(group[4 - padding].0));
        }
        let mut acc: u32 = 0;
        for &(at, c) in &group[..4 - padding] {
            acc = (acc << 6) | u32::from(sextet(c).ok_or_else(|| bad(at))?);
        }
        acc <<= 6 * padding as u32;
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - padding]);
    }
    Ok(out)
}

fn validate_lease(obj: &Value, out: &mut Vec<Cause>) {
    let spec = object_or_null(obj, "spec", "", out);
    if let Some(n) = int(spec, "leaseDurationSeconds", "spec", out).filter(|n| *n <= 0) {
        out.push(invalid("spec.leaseDurationSeconds", n, "must be greater than 0"));
    }
    non_negative(spec, "leaseTransitions", "spec", out);
}

fn validate_event(obj: &Value, out: &mut Vec<Cause>) {
    let involved = object_or_null(obj, "involvedObject", "", out);
    let involved_ns = string(involved, "namespace", "involvedObject", out).unwrap_or("");
    let event_ns = obj.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("");
    // An event lives in its object's namespace (the default one for cluster-scoped objects).
    let consistent = if involved_ns.is_empty() {
        event_ns.is_empty() || event_ns == "default"
    } else {
        event_ns.is_empty() || event_ns == involved_ns
    };
    if !consistent {
        out.push(invalid(
            "involvedObject.namespace",
            involved_ns,
            "does not match event.namespace",
        ));
    }
    one_of(obj, "type", "", &["Normal", "Warning"], out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The fields of the causes, in order.
    fn fields(causes: &[Cause]) -> Vec<&str> {
        causes.iter().map(|c| c.field.as_str()).collect()
    }

    fn one(causes: Vec<Cause>) -> Cause {
        assert_eq!(causes.len(), 1, "expected exactly one cause, got {causes:#?}");
        causes.into_iter().next().expect("one cause")
    }

    fn pod(spec: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec})
    }

    fn deployment(spec: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": spec})
    }

    fn web_template() -> Value {
        json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}})
    }

    // The walk-through's manifests (/work/shared/examples), converted from YAML by hand.

    fn mysql_rc() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "ReplicationController",
            "metadata": {"name": "mysql"},
            "spec": {
                "replicas": 1,
                "selector": {"app": "mysql"},
                "template": {
                    "metadata": {"labels": {"app": "mysql"}},
                    "spec": {"containers": [{
                        "name": "mysql",
                        "image": "mysql",
                        "ports": [{"containerPort": 3306}],
                        "env": [{"name": "MYSQL_ROOT_PASSWORD", "value": "123456"}]
                    }]}
                }
            }
        })
    }

    fn mysql_svc() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "mysql"},
            "spec": {"ports": [{"port": 3306}], "selector": {"app": "mysql"}}
        })
    }

    fn myweb_rc() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "ReplicationController",
            "metadata": {"name": "myweb"},
            "spec": {
                "replicas": 2,
                "selector": {"app": "myweb"},
                "template": {
                    "metadata": {"labels": {"app": "myweb"}},
                    "spec": {"containers": [{
                        "name": "myweb",
                        "image": "kubeguide/tomcat-app:v1",
                        "ports": [{"containerPort": 8080}]
                    }]}
                }
            }
        })
    }

    fn myweb_svc() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "myweb"},
            "spec": {"type": "NodePort", "ports": [{"port": 8080, "nodePort": 30001}], "selector": {"app": "myweb"}}
        })
    }

    fn twocontainers_pod() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "twocontainers",
                "namespace": "default",
                "labels": {"app": "twocontainers"},
                "annotations": {"version": "v0.5.0", "releasedBy": "david", "purpose": "demo"}
            },
            "spec": {"containers": [
                {"name": "sise", "image": "quay.io/openshiftlabs/simpleservice:0.5.0", "ports": [{"containerPort": 9876}]},
                {"name": "shell", "image": "centos:7", "command": ["bin/bash", "-c", "sleep 10000"]}
            ]}
        })
    }

    fn myservice() -> Value {
        json!({
            "kind": "Service",
            "apiVersion": "v1",
            "metadata": {"name": "my-service"},
            "spec": {"selector": {"app": "MyApp"}, "ports": [{"protocol": "TCP", "port": 80, "targetPort": 9376}]}
        })
    }

    #[test]
    fn seed_manifests_produce_no_causes() {
        for (kind, obj) in [
            ("ReplicationController", mysql_rc()),
            ("Service", mysql_svc()),
            ("ReplicationController", myweb_rc()),
            ("Service", myweb_svc()),
            ("Pod", twocontainers_pod()),
            ("Service", myservice()),
        ] {
            assert_eq!(validate("", kind, &obj), vec![], "{kind} {}", obj["metadata"]["name"]);
        }
    }

    #[test]
    fn seed_manifests_still_pass_once_the_server_has_defaulted_them() {
        let mut rc = mysql_rc();
        rc["metadata"]["namespace"] = json!("default");
        rc["metadata"]["uid"] = json!("6a1c");
        rc["metadata"]["generation"] = json!(1);
        let pod_spec = &mut rc["spec"]["template"]["spec"];
        pod_spec["restartPolicy"] = json!("Always");
        pod_spec["dnsPolicy"] = json!("ClusterFirst");
        pod_spec["schedulerName"] = json!("default-scheduler");
        pod_spec["terminationGracePeriodSeconds"] = json!(30);
        pod_spec["securityContext"] = json!({});
        let c = &mut pod_spec["containers"][0];
        c["imagePullPolicy"] = json!("Always");
        c["terminationMessagePath"] = json!("/dev/termination-log");
        c["terminationMessagePolicy"] = json!("File");
        c["resources"] = json!({});
        c["ports"][0]["protocol"] = json!("TCP");
        assert_eq!(validate("", "ReplicationController", &rc), vec![]);

        let mut svc = myweb_svc();
        svc["spec"]["sessionAffinity"] = json!("None");
        svc["spec"]["clusterIP"] = json!("10.96.0.12");
        svc["spec"]["ports"][0]["protocol"] = json!("TCP");
        svc["spec"]["ports"][0]["targetPort"] = json!(8080);
        svc["spec"]["externalTrafficPolicy"] = json!("Cluster");
        assert_eq!(validate("core", "Service", &svc), vec![]);
    }

    #[test]
    fn causes_print_as_kubectl_shows_them_and_serialize_as_status_causes() {
        let c = one(validate("", "Pod", &pod(json!({"containers": [{"image": "nginx"}]}))));
        assert_eq!(c.to_string(), "spec.containers[0].name: Required value");
        assert_eq!(c.reason, CauseType::FieldValueRequired);
        assert_eq!(c.message_text(), "Required value");
        assert_eq!(
            serde_json::to_value(&c).expect("serializes"),
            json!({"field": "spec.containers[0].name", "reason": "FieldValueRequired", "message": "Required value"})
        );
        let c = one(validate("", "ConfigMap", &json!({"metadata": {"name": "Foo"}})));
        assert_eq!(
            c.to_string(),
            "metadata.name: Invalid value: \"Foo\": a lowercase RFC 1123 subdomain must consist of lower case \
             alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. \
             'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        );
        assert_eq!(c.reason.as_str(), "FieldValueInvalid");
    }

    #[test]
    fn name_checks_give_kubernetes_messages() {
        assert_eq!(is_dns1123_subdomain("a.b-c"), Vec::<String>::new());
        assert_eq!(is_dns1123_label("a.b"), vec!["must not contain dots"]);
        assert_eq!(
            is_dns1123_label("-a"),
            vec![
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start \
                 and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is \
                 '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
            ]
        );
        assert_eq!(
            is_dns1123_label(&"a".repeat(64)),
            vec!["must be no more than 63 characters"]
        );
        assert!(is_dns1035_label("1abc")[0].starts_with("a DNS-1035 label must consist of"));
        assert!(is_dns1035_label("abc-1").is_empty());
        assert!(is_qualified_name("example.com/My_Name.1").is_empty());
        assert_eq!(is_qualified_name("/a"), vec!["prefix part must be non-empty"]);
        assert_eq!(is_qualified_name("a/").len(), 2, "empty name part: non-empty and shape");
        assert!(is_valid_label_value("").is_empty());
        assert!(is_valid_label_value("v1.2_x-Y").is_empty());
        assert!(is_valid_label_value("-x")[0].starts_with("a valid label must be an empty string"));
        assert_eq!(
            is_valid_label_value(&"x".repeat(64)),
            vec!["must be no more than 63 characters"]
        );
    }

    #[test]
    fn quantities_parse_to_thousandths() {
        let cases: &[(&str, i128)] = &[
            ("100m", 100),
            ("2", 2000),
            ("0.5", 500),
            (".5", 500),
            ("1.", 1000),
            ("1e3", 1_000_000),
            ("1E3", 1_000_000),
            ("1e-3", 1),
            ("1k", 1_000_000),
            ("1Ki", 1_024_000),
            ("500Mi", 524_288_000_000),
            ("1Gi", 1_073_741_824_000),
            ("1n", 1),
            ("-1n", -1),
            ("1500u", 2),
            ("+3M", 3_000_000_000),
            ("0", 0),
            ("000", 0),
            ("1E", 1_000_000_000_000_000_000_000),
            ("8Ei", 9_223_372_036_854_775_808_000),
        ];
        for &(s, want) in cases {
            assert_eq!(parse_quantity(s), Ok(want), "{s}");
        }
        for s in ["", "m", "abc", "1x", "1.2.3", "1 Gi", "--1", "1Kb"] {
            assert!(matches!(parse_quantity(s), Err(QuantityError::Malformed { .. })), "{s}");
        }
        for s in ["1e", "1mi", "1ee3", "1Mm"] {
            assert!(matches!(parse_quantity(s), Err(QuantityError::Suffix { .. })), "{s}");
        }
        assert!(matches!(parse_quantity("1e40"), Err(QuantityError::TooLarge { .. })));
    }

    #[test]
    fn pods_need_containers_with_names_and_images() {
        let c = one(validate("", "Pod", &pod(json!({}))));
        assert_eq!(c.to_string(), "spec.containers: Required value");
        let causes = validate("", "Pod", &json!({"metadata": {"name": "p"}}));
        assert_eq!(fields(&causes), ["spec.containers"]);
        let causes = validate("", "Pod", &pod(json!({"containers": [{"name": "Web"}]})));
        assert_eq!(fields(&causes), ["spec.containers[0].name", "spec.containers[0].image"]);
        assert!(causes[0]
            .message
            .starts_with("Invalid value: \"Web\": a lowercase RFC 1123 label"));
        assert_eq!(causes[1].to_string(), "spec.containers[0].image: Required value");
    }

    #[test]
    fn container_names_are_unique_across_containers_and_init_containers() {
        let causes = validate(
            "",
            "Pod",
            &pod(json!({
                "containers": [{"name": "a", "image": "x"}, {"name": "a", "image": "x"}],
                "initContainers": [{"name": "a", "image": "x"}]
            })),
        );
        assert_eq!(
            causes.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "spec.containers[1].name: Duplicate value: \"a\"",
                "spec.initContainers[0].name: Duplicate value: \"a\""
            ]
        );
    }

    #[test]
    fn container_ports_are_checked_for_range_protocol_and_names() {
        let causes = validate(
            "",
            "Pod",
            &pod(json!({"containers": [{"name": "a", "image": "x", "ports": [
                {"containerPort": 70000, "protocol": "HTTP"},
                {"name": "http", "containerPort": 80},
                {"name": "http", "containerPort": 81},
                {"name": "8080", "containerPort": 82},
                {"name": "my-very-long-port-name", "containerPort": 83},
                {"hostPort": 0},
            ]}]})),
        );
        let text: Vec<String> = causes.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
                "spec.containers[0].ports[0].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
                "spec.containers[0].ports[2].name: Duplicate value: \"http\"",
                "spec.containers[0].ports[3].name: Invalid value: \"8080\": must contain at least one letter (a-z)",
                "spec.containers[0].ports[4].name: Invalid value: \"my-very-long-port-name\": must be no more than 15 characters",
                "spec.containers[0].ports[5].containerPort: Required value",
            ]
        );
    }

    #[test]
    fn host_ports_may_not_collide_between_containers() {
        let causes = validate(
            "",
            "Pod",
            &pod(json!({"containers": [
                {"name": "a", "image": "x", "ports": [{"containerPort": 80, "hostPort": 8080}]},
                {"name": "b", "image": "x", "ports": [{"containerPort": 81, "hostPort": 8080, "protocol": "TCP"}]},
                {"name": "c", "image": "x", "ports": [{"containerPort": 82, "hostPort": 8080, "protocol": "UDP"}]},
            ]})),
        );
        assert_eq!(
            one(causes).to_string(),
            "spec.containers[1].ports[0].hostPort: Duplicate value: \"/TCP/8080\""
        );
    }

    #[test]
    fn env_names_and_sources_are_checked() {
        let causes = validate(
            "",
            "Pod",
            &pod(json!({"containers": [{"name": "a", "image": "x", "env": [
                {"name": "1ABC", "value": "x"},
                {"name": "OK.name-1"},
                {"value": "x"},
                {"name": "FROM", "value": "x", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                {"name": "NONE", "valueFrom": {}},
                {"name": "KEY", "valueFrom": {"configMapKeyRef": {"name": "cm"}}},
            ]}]})),
        );
        assert_eq!(
            fields(&causes),
            [
                "spec.containers[0].env[0].name",
                "spec.containers[0].env[2].name",
                "spec.containers[0].env[3].valueFrom",
                "spec.containers[0].env[4].valueFrom",
                "spec.containers[0].env[5].valueFrom.configMapKeyRef.key",
            ]
        );
        assert!(causes[0]
            .message
            .contains("a valid environment variable name must consist of alphabetic characters"));
        assert!(causes[2]
            .message
            .ends_with("may not be specified when `value` is not empty"));
        assert!(causes[3].message.contains("must specify one of: `fieldRef`"));
    }

    #[test]
    fn requests_may_not_exceed_limits() {
        let causes = validate(
            "",
            "Pod",
            &pod(json!({"containers": [{"name": "a", "image": "x", "resources": {
                "limits": {"cpu": "500m", "memory": "1Gi", "example.com/gpu": 1},
                "requests": {"cpu": "1", "memory": "512Mi", "example.com/gpu": 2, "example.com/fpga": 1},
            }}]})),
        );
        let text: Vec<String> = causes.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "spec.containers[0].resources.requests: Invalid value: \"1\": must be less than or equal to cpu limit of 500m",
                "spec.containers[0].resources.requests: Invalid value: \"2\": must be equal to example.com/gpu limit of 1",
                "spec.containers[0].resources.limits: Required value: Limit must be set for non overcommitable resources",
            ]
        );
    }

    #[test]
    fn resource_quantities_and_names_are_checked() {
        let causes = validate(
            "",
            "Pod",
            &pod(json!({"containers": [{"name": "a", "image": "x", "resources": {
                "limits": {"cpu": "lots", "gpu": "1"},
                "requests": {"memory": "-1Gi"},
            }}]})),
        );
        assert_eq!(
            fields(&causes),
            [
                "spec.containers[0].resources.limits[cpu]",
                "spec.containers[0].resources.limits[gpu]",
                "spec.containers[0].resources.requests[memory]",
            ]
        );
        assert!(causes[0]
            .message
            .starts_with("Invalid value: \"lots\": quantities must match the regular expression"));
        assert!(causes[1]
            .message
            .ends_with("must be a standard resource for containers"));
        assert!(causes[2].message.ends_with("must be greater than or equal to 0"));
    }

    #[test]
    fn restart_and_dns_policies_must_be_known() {
        let causes = validate(
            "",
            "Pod",
            &pod(
                json!({"restartPolicy": "Sometimes", "dnsPolicy": "Google", "containers": [{"name": "a", "image": "x"}]}),
            ),
        );
        let text: Vec<String> = causes.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
                "spec.dnsPolicy: Unsupported value: \"Google\": supported values: \"ClusterFirstWithHostNet\", \
                 \"ClusterFirst\", \"Default\", \"None\"",
            ]
        );
    }

    #[test]
    fn volumes_are_unique_labels_and_mounts_refer_to_them() {
        let causes = validate(
            "",
            "Pod",
            &pod(json!({
                "volumes": [
                    {"name": "data", "emptyDir": {}},
                    {"name": "data", "emptyDir": {}},
                    {"name": "cfg", "configMap": {"name": "c"}, "secret": {"secretName": "s"}},
                    {"name": "plain"},
                ],
                "containers": [{"name": "a", "image": "x", "volumeMounts": [
                    {"name": "data", "mountPath": "/data"},
                    {"name": "logs", "mountPath": "/logs"},
                    {"name": "plain", "mountPath": "/data"},
                    {"name": "plain", "mountPath": "/p", "subPath": "../etc"},
                ]}]
            })),
        );
        let text: Vec<String> = causes.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "spec.volumes[1].name: Duplicate value: \"data\"",
                "spec.volumes[2].configMap: Forbidden: may not specify more than 1 volume type",
                "spec.containers[0].volumeMounts[1].name: Not found: \"logs\"",
                "spec.containers[0].volumeMounts[2].mountPath: Invalid value: \"/data\": must be unique",
                "spec.containers[0].volumeMounts[3].subPath: Invalid value: \"../etc\": must not contain '..'",
            ]
        );
        assert_eq!(causes[2].reason, CauseType::FieldValueNotFound);
    }

    #[test]
    fn probes_need_exactly_one_handler() {
        let causes = validate(
            "",
            "Pod",
            &pod(json!({"containers": [{
                "name": "a",
                "image": "x",
                "livenessProbe": {"exec": {"command": ["true"]}, "httpGet": {"port": 80}, "successThreshold": 2},
                "readinessProbe": {"periodSeconds": -1},
                "startupProbe": {"tcpSocket": {"port": "http"}},
            }]})),
        );
        let text: Vec<String> = causes.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "spec.containers[0].livenessProbe.httpGet: Forbidden: may not specify more than 1 handler type",
                "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
                "spec.containers[0].readinessProbe: Required value: must specify a handler type",
                "spec.containers[0].readinessProbe.periodSeconds: Invalid value: -1: must be greater than or equal to 0",
            ]
        );
    }

    #[test]
    fn init_containers_may_not_have_probes_unless_they_are_sidecars() {
        let causes = validate(
            "",
            "Pod",
            &pod(json!({
                "containers": [{"name": "a", "image": "x"}],
                "initContainers": [
                    {"name": "init", "image": "x", "readinessProbe": {"exec": {"command": ["true"]}}},
                    {"name": "side", "image": "x", "restartPolicy": "Always", "readinessProbe": {"exec": {"command": ["true"]}}},
                ]
            })),
        );
        assert_eq!(
            one(causes).to_string(),
            "spec.initContainers[0].readinessProbe: Forbidden: may not be set for init containers without restartPolicy=Always"
        );
    }

    #[test]
    fn tolerations_and_node_selectors_are_checked() {
        let causes = validate(
            "",
            "Pod",
            &pod(json!({
                "containers": [{"name": "a", "image": "x"}],
                "nodeSelector": {"disk": "ssd", "bad key": "x"},
                "tolerations": [
                    {"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"},
                    {"operator": "Exists"},
                    {"key": "k", "operator": "Exists", "value": "v"},
                    {"key": "k", "effect": "Sometimes"},
                    {"effect": "NoSchedule"},
                ]
            })),
        );
        assert_eq!(
            fields(&causes),
            [
                "spec.nodeSelector",
                "spec.tolerations[2].value",
                "spec.tolerations[3].effect",
                "spec.tolerations[4].operator"
            ]
        );
    }

    #[test]
    fn metadata_needs_a_name_or_generate_name() {
        let c = one(validate("", "ConfigMap", &json!({"metadata": {}})));
        assert_eq!(
            c.to_string(),
            "metadata.name: Required value: name or generateName is required"
        );
        assert_eq!(
            validate("", "ConfigMap", &json!({"metadata": {"generateName": "web-"}})),
            vec![]
        );
        let c = one(validate(
            "",
            "ConfigMap",
            &json!({"metadata": {"generateName": "Web-"}}),
        ));
        assert_eq!(c.field, "metadata.generateName");
        let c = one(validate("", "ConfigMap", &json!({})));
        assert_eq!(c.field, "metadata.name");
    }

    #[test]
    fn namespaces_are_checked_on_namespaced_kinds_and_forbidden_on_cluster_ones() {
        let c = one(validate(
            "",
            "ConfigMap",
            &json!({"metadata": {"name": "c", "namespace": "My.Ns"}}),
        ));
        assert_eq!(c.field, "metadata.namespace");
        let c = one(validate(
            "",
            "Node",
            &json!({"metadata": {"name": "n", "namespace": "default"}}),
        ));
        assert_eq!(c.to_string(), "metadata.namespace: Forbidden: not allowed on this type");
    }

    #[test]
    fn labels_annotations_owner_references_and_finalizers_are_checked() {
        let big = "x".repeat(ANNOTATIONS_MAX);
        let causes = validate(
            "",
            "ConfigMap",
            &json!({"metadata": {
                "name": "c",
                "generation": -1,
                "labels": {"app": "web", "-bad": "x", "ok": "not ok", "n": 5},
                "annotations": {"Example.com/Note": "fine", "big": big},
                "ownerReferences": [
                    {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "1", "controller": true},
                    {"apiVersion": "apps/", "kind": "ReplicaSet", "name": "rs2", "controller": true},
                ],
                "finalizers": ["example.com/cleanup", "bad finalizer"],
            }}),
        );
        let text: Vec<String> = causes.iter().map(ToString::to_string).collect();
        assert_eq!(
            fields(&causes),
            [
                "metadata.generation",
                "metadata.labels",
                "metadata.labels",
                "metadata.labels[n]",
                "metadata.annotations",
                "metadata.ownerReferences[1].apiVersion",
                "metadata.ownerReferences[1].uid",
                "metadata.ownerReferences",
                "metadata.finalizers",
            ],
            "{text:#?}"
        );
        assert!(text[1].starts_with("metadata.labels: Invalid value: \"-bad\": name part must consist of"));
        assert!(text[2].starts_with("metadata.labels: Invalid value: \"not ok\": a valid label must be"));
        assert_eq!(
            text[4],
            "metadata.annotations: Too long: may not be more than 262144 bytes"
        );
        assert_eq!(causes[4].reason, CauseType::FieldValueTooLong);
        assert_eq!(
            text[5],
            "metadata.ownerReferences[1].apiVersion: Invalid value: \"apps/\": version must not be empty"
        );
        assert_eq!(
            text[6],
            "metadata.ownerReferences[1].uid: Invalid value: \"\": uid must not be empty"
        );
        assert!(text[7].ends_with("Found \"true\" in references for ReplicaSet/rs and ReplicaSet/rs2"));
    }

    #[test]
    fn services_need_ports_unless_headless_or_external_names() {
        let svc = |spec: Value| json!({"metadata": {"name": "s"}, "spec": spec});
        assert_eq!(
            one(validate("", "Service", &svc(json!({})))).to_string(),
            "spec.ports: Required value"
        );
        assert_eq!(validate("", "Service", &svc(json!({"clusterIP": "None"}))), vec![]);
        assert_eq!(
            validate(
                "",
                "Service",
                &svc(json!({"type": "ExternalName", "externalName": "db.example.com."}))
            ),
            vec![]
        );
        let c = one(validate("", "Service", &svc(json!({"type": "ExternalName"}))));
        assert_eq!(c.to_string(), "spec.externalName: Required value");
    }

    #[test]
    fn service_names_must_start_with_a_letter() {
        let c = one(validate(
            "",
            "Service",
            &json!({"metadata": {"name": "1web"}, "spec": {"ports": [{"port": 80}]}}),
        ));
        assert_eq!(c.field, "metadata.name");
        assert!(c
            .message
            .contains("a DNS-1035 label must consist of lower case alphanumeric characters"));
    }

    #[test]
    fn service_ports_are_named_unique_and_in_range() {
        let causes = validate(
            "",
            "Service",
            &json!({"metadata": {"name": "s"}, "spec": {
                "type": "ClusterIP",
                "sessionAffinity": "Sticky",
                "ports": [
                    {"port": 80},
                    {"name": "web", "port": 0, "protocol": "HTTP"},
                    {"name": "web", "port": 443, "targetPort": "HTTPS-port"},
                    {"name": "dup", "port": 443, "nodePort": 30080},
                ]
            }}),
        );
        let text: Vec<String> = causes.iter().map(ToString::to_string).collect();
        assert_eq!(
            fields(&causes),
            [
                "spec.ports[0].name",
                "spec.ports[1].port",
                "spec.ports[1].protocol",
                "spec.ports[2].name",
                "spec.ports[2].targetPort",
                "spec.ports[3].nodePort",
                "spec.ports[3]",
                "spec.sessionAffinity",
            ],
            "{text:#?}"
        );
        assert_eq!(text[0], "spec.ports[0].name: Required value");
        assert_eq!(
            text[2],
            "spec.ports[1].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\""
        );
        assert_eq!(
            text[5],
            "spec.ports[3].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"
        );
        assert_eq!(text[6], "spec.ports[3]: Duplicate value: \"443/TCP\"");
        assert_eq!(
            text[7],
            "spec.sessionAffinity: Unsupported value: \"Sticky\": supported values: \"ClientIP\", \"None\""
        );
    }

    #[test]
    fn service_types_and_addresses_are_checked() {
        let svc = |spec: Value| json!({"metadata": {"name": "s"}, "spec": spec});
        let c = one(validate(
            "",
            "Service",
            &svc(json!({"type": "Ingress", "ports": [{"port": 80}]})),
        ));
        assert_eq!(
            c.to_string(),
            "spec.type: Unsupported value: \"Ingress\": supported values: \"ClusterIP\", \"ExternalName\", \
             \"LoadBalancer\", \"NodePort\""
        );
        let c = one(validate(
            "",
            "Service",
            &svc(json!({"type": "NodePort", "clusterIP": "None", "ports": [{"port": 80}]})),
        ));
        assert_eq!(
            c.to_string(),
            "spec.clusterIP: Invalid value: \"None\": may not be set to 'None' for NodePort services"
        );
        let c = one(validate(
            "",
            "Service",
            &svc(json!({"clusterIP": "10.0.0.300", "ports": [{"port": 80}]})),
        ));
        assert_eq!(c.field, "spec.clusterIP");
        let c = one(validate(
            "",
            "Service",
            &svc(json!({"externalTrafficPolicy": "Local", "ports": [{"port": 80}]})),
        ));
        assert_eq!(c.field, "spec.externalTrafficPolicy");
    }

    #[test]
    fn deployment_selector_must_match_template_labels() {
        let ok = deployment(json!({"selector": {"matchLabels": {"app": "web"}}, "template": web_template()}));
        assert_eq!(validate("apps", "Deployment", &ok), vec![]);
        let bad = deployment(json!({"selector": {"matchLabels": {"app": "api"}}, "template": web_template()}));
        assert_eq!(
            one(validate("apps", "Deployment", &bad)).to_string(),
            "spec.template.metadata.labels: Invalid value: {\"app\":\"web\"}: `selector` does not match template `labels`"
        );
        let set_based = deployment(json!({
            "selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]}]},
            "template": web_template()
        }));
        assert_eq!(validate("apps", "Deployment", &set_based), vec![]);
    }

    #[test]
    fn deployment_selector_is_required_non_empty_and_well_formed() {
        let missing = deployment(json!({"template": web_template()}));
        assert_eq!(
            one(validate("apps", "Deployment", &missing)).to_string(),
            "spec.selector: Required value"
        );
        let empty = deployment(json!({"selector": {}, "template": web_template()}));
        assert_eq!(
            one(validate("apps", "Deployment", &empty)).to_string(),
            "spec.selector: Invalid value: {}: empty selector is invalid for deployment"
        );
        let malformed = deployment(json!({
            "selector": {"matchExpressions": [
                {"key": "app", "operator": "Equals", "values": ["web"]},
                {"key": "tier", "operator": "In"},
                {"key": "x", "operator": "Exists", "values": ["y"]},
            ]},
            "template": web_template()
        }));
        let causes = validate("apps", "Deployment", &malformed);
        assert_eq!(
            fields(&causes),
            [
                "spec.selector.matchExpressions[0].operator",
                "spec.selector.matchExpressions[1].values",
                "spec.selector.matchExpressions[2].values",
            ]
        );
    }

    #[test]
    fn deployment_replicas_strategy_and_template_are_checked() {
        let d = deployment(json!({
            "replicas": -1,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "web"}]}
            }
        }));
        let text: Vec<String> = validate("apps", "Deployment", &d)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            text,
            [
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
                "spec.template.spec.containers[0].image: Required value",
                "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
                "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: \"0%\": may not be 0 when `maxSurge` is 0",
            ]
        );
        let d = deployment(json!({
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "Canary", "rollingUpdate": {"maxSurge": "1"}},
            "template": web_template()
        }));
        let text: Vec<String> = validate("apps", "Deployment", &d)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            text,
            ["spec.strategy.type: Unsupported value: \"Canary\": supported values: \"Recreate\", \"RollingUpdate\""]
        );
        let d = deployment(json!({
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"rollingUpdate": {"maxSurge": "1", "maxUnavailable": "150%"}},
            "template": web_template()
        }));
        let text: Vec<String> = validate("apps", "Deployment", &d)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            text,
            [
                "spec.strategy.rollingUpdate.maxSurge: Invalid value: \"1\": a valid percent string must be a numeric \
                 string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
                "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: \"150%\": must not be greater than 100%",
            ]
        );
        let d = deployment(json!({
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "Recreate", "rollingUpdate": {}},
            "template": web_template()
        }));
        assert_eq!(
            one(validate("apps", "Deployment", &d)).to_string(),
            "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"
        );
    }

    #[test]
    fn replica_sets_are_checked_like_deployments() {
        let rs = json!({"metadata": {"name": "rs"}, "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web", "tier": "front"}},
            "template": web_template()
        }});
        let c = one(validate("apps", "ReplicaSet", &rs));
        assert_eq!(c.field, "spec.template.metadata.labels");
        // Outside the apps group a ReplicaSet is an unknown kind: metadata only.
        assert_eq!(validate("example.com", "ReplicaSet", &rs), vec![]);
    }

    #[test]
    fn replication_controller_selector_must_match_template_labels_when_present() {
        let mut rc = mysql_rc();
        rc["spec"]["selector"] = json!({"app": "postgres"});
        assert_eq!(
            one(validate("", "ReplicationController", &rc)).to_string(),
            "spec.template.metadata.labels: Invalid value: {\"app\":\"mysql\"}: `selector` does not match template `labels`"
        );
        let mut rc = mysql_rc();
        rc["spec"].as_object_mut().expect("spec").remove("selector");
        assert_eq!(
            validate("", "ReplicationController", &rc),
            vec![],
            "the selector defaults to the template labels"
        );
        let mut rc = mysql_rc();
        rc["spec"].as_object_mut().expect("spec").remove("selector");
        rc["spec"]["template"]["metadata"] = json!({});
        assert_eq!(fields(&validate("", "ReplicationController", &rc)), ["spec.selector"]);
        let rc = json!({"metadata": {"name": "r"}, "spec": {"replicas": -2, "selector": {"app": "x"}}});
        assert_eq!(
            fields(&validate("", "ReplicationController", &rc)),
            ["spec.replicas", "spec.template"]
        );
    }

    #[test]
    fn jobs_must_restart_on_failure_or_never() {
        let job = |template_spec: Value| json!({"metadata": {"name": "pi"}, "spec": {"completions": -1, "template": {"spec": template_spec}}});
        let causes = validate(
            "batch",
            "Job",
            &job(json!({"containers": [{"name": "pi", "image": "perl"}]})),
        );
        let text: Vec<String> = causes.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "spec.completions: Invalid value: -1: must be greater than or equal to 0",
                "spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\"",
            ]
        );
        let ok = json!({"metadata": {"name": "pi"}, "spec": {"backoffLimit": 4, "template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "pi", "image": "perl", "command": ["perl", "-e", "print 1"]}]
        }}}});
        assert_eq!(validate("batch", "Job", &ok), vec![]);
    }

    #[test]
    fn namespaces_are_dns_labels() {
        let c = one(validate("", "Namespace", &json!({"metadata": {"name": "team.a"}})));
        assert_eq!(
            c.to_string(),
            "metadata.name: Invalid value: \"team.a\": must not contain dots"
        );
        let ns = json!({"metadata": {"name": "team-a"}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
        assert_eq!(validate("", "Namespace", &ns), vec![]);
    }

    #[test]
    fn nodes_check_taints_and_pod_cidrs() {
        let node = json!({"metadata": {"name": "node-1.example.com"}, "spec": {
            "podCIDR": "10.244.1.0/33",
            "taints": [
                {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
                {"key": "dedicated", "value": "other", "effect": "NoSchedule"},
                {"key": "k", "effect": "Never"},
            ]
        }});
        let causes = validate("", "Node", &node);
        assert_eq!(
            fields(&causes),
            ["spec.podCIDR", "spec.taints[1]", "spec.taints[2].effect"]
        );
        assert!(causes[1]
            .message
            .ends_with("taints must be unique by key and effect pair"));
        let ok = json!({"metadata": {"name": "n"}, "spec": {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24", "fd00::/64"]}});
        assert_eq!(validate("", "Node", &ok), vec![]);
    }

    #[test]
    fn config_map_keys_must_be_valid_and_data_fit_one_mebibyte() {
        let causes = validate(
            "",
            "ConfigMap",
            &json!({"metadata": {"name": "c"}, "data": {"app.properties": "a=b", "bad/key": "x", "..": "y", "n": 1}}),
        );
        assert_eq!(fields(&causes), ["data[bad/key]", "data[..]", "data[n]"]);
        assert!(causes[0]
            .message
            .contains("a valid config key must consist of alphanumeric characters"));
        assert_eq!(causes[1].message, "Invalid value: \"..\": must not be '..'");
        let big = json!({"metadata": {"name": "c"}, "data": {"a": "x".repeat(DATA_MAX), "b": "y"}});
        assert_eq!(
            one(validate("", "ConfigMap", &big)).to_string(),
            "data: Too long: may not be more than 1048576 bytes"
        );
        let both = json!({"metadata": {"name": "c"}, "data": {"a": "x"}, "binaryData": {"a": "eA=="}});
        assert_eq!(one(validate("", "ConfigMap", &both)).field, "data[a]");
    }

    #[test]
    fn secret_data_must_be_base64_without_revealing_it() {
        let secret = json!({"metadata": {"name": "s"}, "type": "Opaque", "data": {"password": "MTIz!NDU2"}});
        assert_eq!(
            one(validate("", "Secret", &secret)).to_string(),
            "data[password]: Invalid value: \"<secret contents redacted>\": illegal base64 data at input byte 4"
        );
        let ok = json!({"metadata": {"name": "s"}, "data": {"password": "MTIzNDU2", "k": "YQ==\n", "e": ""}, "stringData": {"user": "root"}});
        assert_eq!(validate("", "Secret", &ok), vec![]);
        assert_eq!(decode_base64("MTIzNDU2"), Ok(b"123456".to_vec()));
        assert_eq!(decode_base64("YWI="), Ok(b"ab".to_vec()));
        assert!(decode_base64("YWI").is_err());
        assert!(decode_base64("YQ==YQ==").is_err());
    }

    #[test]
    fn typed_secrets_need_their_keys() {
        let tls = json!({"metadata": {"name": "s"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "Y2VydA=="}});
        assert_eq!(
            one(validate("", "Secret", &tls)).to_string(),
            "data[tls.key]: Required value"
        );
        let auth =
            json!({"metadata": {"name": "s"}, "type": "kubernetes.io/basic-auth", "stringData": {"username": "u"}});
        assert_eq!(validate("", "Secret", &auth), vec![]);
        let docker = json!({"metadata": {"name": "s"}, "type": "kubernetes.io/dockerconfigjson", "stringData": {".dockerconfigjson": "{"}});
        assert_eq!(one(validate("", "Secret", &docker)).field, "data[.dockerconfigjson]");
        let token = json!({"metadata": {"name": "s"}, "type": "kubernetes.io/service-account-token"});
        assert_eq!(
            one(validate("", "Secret", &token)).field,
            "metadata.annotations[kubernetes.io/service-account.name]"
        );
    }

    #[test]
    fn endpoints_need_routable_addresses_and_named_ports() {
        let ep = json!({"metadata": {"name": "web"}, "subsets": [{
            "addresses": [{"ip": "10.244.1.5"}, {"ip": "127.0.0.1"}, {"ip": "nope"}],
            "ports": [{"port": 80}, {"port": 443, "protocol": "TCP"}]
        }, {
            "ports": [{"port": 80}]
        }]});
        let text: Vec<String> = validate("", "Endpoints", &ep).iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "subsets[0].addresses[1].ip: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)",
                "subsets[0].addresses[2].ip: Invalid value: \"nope\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                "subsets[0].ports[0].name: Required value",
                "subsets[0].ports[1].name: Required value",
                "subsets[1]: Required value: must specify `addresses` or `notReadyAddresses`",
            ]
        );
        let ok = json!({"metadata": {"name": "mysql"}, "subsets": [{
            "addresses": [{"ip": "10.244.1.5", "nodeName": "node-1", "targetRef": {"kind": "Pod", "name": "mysql-x"}}],
            "notReadyAddresses": [{"ip": "fd00::5"}],
            "ports": [{"port": 3306, "protocol": "TCP"}]
        }]});
        assert_eq!(validate("", "Endpoints", &ok), vec![]);
    }

    #[test]
    fn endpoint_slices_need_a_known_address_type_and_matching_addresses() {
        let slice = |ty: &str, addr: &str| {
            json!({"metadata": {"name": "web-abc"}, "addressType": ty,
                   "endpoints": [{"addresses": [addr], "conditions": {"ready": true}}],
                   "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]})
        };
        assert_eq!(
            validate("discovery.k8s.io", "EndpointSlice", &slice("IPv4", "10.244.1.5")),
            vec![]
        );
        assert_eq!(
            validate("discovery.k8s.io", "EndpointSlice", &slice("FQDN", "db.example.com")),
            vec![]
        );
        let c = one(validate("discovery.k8s.io", "EndpointSlice", &slice("IPv4", "fd00::1")));
        assert_eq!(
            c.to_string(),
            "endpoints[0].addresses[0]: Invalid value: \"fd00::1\": must be a valid IPv4 address"
        );
        let c = one(validate("discovery.k8s.io", "EndpointSlice", &slice("IP", "10.0.0.1")));
        assert_eq!(
            c.to_string(),
            "addressType: Unsupported value: \"IP\": supported values: \"FQDN\", \"IPv4\", \"IPv6\""
        );
        let unnamed = json!({"metadata": {"name": "e"}, "addressType": "IPv4", "ports": [{"port": 80}, {"port": 81}]});
        assert_eq!(
            one(validate("discovery.k8s.io", "EndpointSlice", &unnamed)).to_string(),
            "ports[1].name: Duplicate value: \"\""
        );
        let empty = json!({"metadata": {"name": "e"}, "addressType": "IPv4", "endpoints": [{"addresses": []}]});
        assert_eq!(
            one(validate("discovery.k8s.io", "EndpointSlice", &empty)).to_string(),
            "endpoints[0].addresses: Required value: must contain at least 1 address"
        );
    }

    #[test]
    fn leases_and_events_are_checked_for_the_obvious() {
        let lease = json!({"metadata": {"name": "node-1", "namespace": "kube-node-lease"},
                           "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 0}});
        assert_eq!(
            one(validate("coordination.k8s.io", "Lease", &lease)).to_string(),
            "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"
        );
        let event = json!({"metadata": {"name": "web.1", "namespace": "default"},
                           "involvedObject": {"kind": "Pod", "name": "web", "namespace": "prod"},
                           "reason": "Scheduled", "type": "Info"});
        assert_eq!(
            fields(&validate("", "Event", &event)),
            ["involvedObject.namespace", "type"]
        );
        let node_event = json!({"metadata": {"name": "n.1", "namespace": "default"},
                                "involvedObject": {"kind": "Node", "name": "n"}, "type": "Normal"});
        assert_eq!(validate("", "Event", &node_event), vec![]);
    }

    #[test]
    fn unknown_kinds_get_metadata_checks_only() {
        let obj = json!({"metadata": {"name": "x", "namespace": "ns"}, "spec": {"containers": "anything"}});
        assert_eq!(validate("example.com", "Widget", &obj), vec![]);
        let bad = json!({"metadata": {"name": "X"}});
        assert_eq!(fields(&validate("example.com", "Widget", &bad)), ["metadata.name"]);
        assert_eq!(fields(&validate("", "Pod", &json!("not an object"))), [""]);
    }

    #[test]
    fn wrongly_typed_fields_are_invalid_values_not_panics() {
        let causes = validate(
            "",
            "Pod",
            &pod(json!({"containers": [{"name": 5, "image": ["x"], "ports": "80", "env": [1]}], "volumes": {}})),
        );
        let text: Vec<String> = causes.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "spec.volumes: Invalid value: {}: must be a list",
                "spec.containers[0].name: Invalid value: 5: must be a string",
                "spec.containers[0].name: Required value",
                "spec.containers[0].image: Invalid value: [\"x\"]: must be a string",
                "spec.containers[0].image: Required value",
                "spec.containers[0].ports: Invalid value: \"80\": must be a list",
                "spec.containers[0].env[0]: Invalid value: 1: must be an object",
            ]
        );
    }

    #[test]
    fn go_quoting_escapes_like_kubernetes() {
        assert_eq!(go_quote("a\"b\\c\n\u{1}é"), "\"a\\\"b\\\\c\\n\\x01é\"");
    }
}
