//! Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`) decoded into
//! the JSON objects the rest of the server handles.
//!
//! A body is the magic `k8s\0` followed by a `runtime.Unknown` message whose `typeMeta` names
//! the kind and whose `raw` field holds the object, encoded as Kubernetes' generated
//! `generated.proto` files describe. No `.proto` compiler runs here: a static table (below)
//! gives, for each message the supported kinds reach, the JSON name and shape of each field
//! number. Fields the table does not name are skipped, so a newer client's additions are
//! dropped, not refused.
//!
//! Kubernetes marshals every non-pointer Go field, zero or not (an empty `generateName`, a
//! `generation` of 0, an empty `creationTimestamp`). Such a zero means "not set" and is left
//! out of the JSON, as Go's `omitempty` would; a pointer field (`replicas`, `backoffLimit`,
//! `terminationGracePeriodSeconds`, …) is only marshalled when set, so its zero is kept.
//! Nothing absent is filled in: defaulting stays with the server.

use serde_json::{Map, Value};

/// Why a protobuf body could not be turned into JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtobufError {
    /// The body lacks the 4-byte prefix every Kubernetes protobuf object starts with.
    #[error("the body does not start with the Kubernetes protobuf magic \"k8s\\x00\"")]
    MissingMagic,
    /// The envelope's `typeMeta.kind` is empty.
    #[error("the protobuf envelope names no kind (typeMeta.kind is empty); send the object as application/json")]
    MissingKind,
    /// The kind (at that apiVersion) has no entry in the schema table.
    #[error("protobuf bodies of kind {kind} ({api_version}) are not supported; send the object as application/json")]
    UnsupportedKind { api_version: String, kind: String },
    /// The envelope says its payload is compressed or otherwise transformed.
    #[error("protobuf content encoding {encoding:?} is not supported; send the object unencoded")]
    UnsupportedEncoding { encoding: String },
    /// The envelope says its payload is not protobuf.
    #[error("an envelope holding {content_type:?} is not supported; send the object as application/json")]
    UnsupportedContentType { content_type: String },
    /// The bytes break the wire format, or a field has the wrong wire type for its schema.
    /// `path` is the JSON path of the field (`Deployment.spec.template.spec.containers[0].image`),
    /// or `envelope` outside the object.
    #[error("malformed protobuf at {path}: {reason}")]
    Malformed { path: String, reason: String },
}

impl ProtobufError {
    fn malformed(reason: impl Into<String>) -> ProtobufError {
        ProtobufError::Malformed {
            path: String::new(),
            reason: reason.into(),
        }
    }

    /// Prefixes the path of a malformed-field error with the enclosing field's JSON name (or,
    /// starting with `[`, an index); an empty segment (an inlined message) adds nothing.
    fn within(self, segment: &str) -> ProtobufError {
        match self {
            ProtobufError::Malformed { path, reason } if !segment.is_empty() => {
                let path = if path.is_empty() {
                    segment.to_string()
                } else if path.starts_with('[') {
                    format!("{segment}{path}")
                } else {
                    format!("{segment}.{path}")
                };
                ProtobufError::Malformed { path, reason }
            }
            other => other,
        }
    }
}

/// Prefix of every Kubernetes protobuf-encoded object.
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// Decodes a Kubernetes protobuf body (magic, then `runtime.Unknown`) into the JSON object it
/// stands for, with `apiVersion` and `kind` first.
pub fn decode(body: &[u8]) -> Result<Value, ProtobufError> {
    let envelope = body.strip_prefix(MAGIC).ok_or(ProtobufError::MissingMagic)?;
    let unknown = Envelope::parse(envelope).map_err(|e| e.within("envelope"))?;
    if unknown.kind.is_empty() {
        return Err(ProtobufError::MissingKind);
    }
    if !unknown.content_encoding.is_empty() {
        return Err(ProtobufError::UnsupportedEncoding {
            encoding: unknown.content_encoding,
        });
    }
    if !unknown.content_type.is_empty() && unknown.content_type != "application/vnd.kubernetes.protobuf" {
        return Err(ProtobufError::UnsupportedContentType {
            content_type: unknown.content_type,
        });
    }
    let message = root_message(&unknown.api_version, &unknown.kind).ok_or_else(|| ProtobufError::UnsupportedKind {
        api_version: unknown.api_version.clone(),
        kind: unknown.kind.clone(),
    })?;
    let mut object = Map::new();
    object.insert("apiVersion".into(), Value::String(unknown.api_version));
    object.insert("kind".into(), Value::String(unknown.kind.clone()));
    decode_message(message, unknown.raw, &mut object).map_err(|e| e.within(&unknown.kind))?;
    Ok(Value::Object(object))
}

/// The fields of `runtime.Unknown` (and its `runtime.TypeMeta`) this decoder reads.
#[derive(Default)]
struct Envelope<'a> {
    api_version: String,
    kind: String,
    raw: &'a [u8],
    content_encoding: String,
    content_type: String,
}

impl<'a> Envelope<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Envelope<'a>, ProtobufError> {
        let mut envelope = Envelope::default();
        let mut r = Reader::new(bytes);
        while let Some((number, wire)) = r.tag()? {
            match number {
                1 => {
                    let mut t = Reader::new(r.length_delimited(wire).map_err(|e| e.within("typeMeta"))?);
                    while let Some((number, wire)) = t.tag().map_err(|e| e.within("typeMeta"))? {
                        match number {
                            1 => envelope.api_version = t.string(wire).map_err(|e| e.within("typeMeta.apiVersion"))?,
                            2 => envelope.kind = t.string(wire).map_err(|e| e.within("typeMeta.kind"))?,
                            _ => t.skip(wire).map_err(|e| e.within("typeMeta"))?,
                        }
                    }
                }
                2 => envelope.raw = r.length_delimited(wire).map_err(|e| e.within("raw"))?,
                3 => envelope.content_encoding = r.string(wire).map_err(|e| e.within("contentEncoding"))?,
                4 => envelope.content_type = r.string(wire).map_err(|e| e.within("contentType"))?,
                _ => r.skip(wire)?,
            }
        }
        Ok(envelope)
    }
}

// ---------------------------------------------------------------------------------------
// The wire format

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LENGTH_DELIMITED: u8 = 2;
const FIXED32: u8 = 5;

fn wire_name(wire: u8) -> &'static str {
    match wire {
        VARINT => "varint",
        FIXED64 => "64-bit",
        LENGTH_DELIMITED => "length-delimited",
        3 => "start-group",
        4 => "end-group",
        FIXED32 => "32-bit",
        _ => "invalid",
    }
}

/// A cursor over one message's bytes.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    /// The next field's number and wire type, or `None` at the end of the message.
    fn tag(&mut self) -> Result<Option<(u32, u8)>, ProtobufError> {
        if self.pos == self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = key >> 3;
        if number == 0 || number > u64::from(u32::MAX >> 3) {
            return Err(ProtobufError::malformed(format!("invalid field number {number}")));
        }
        // Both conversions are in range: checked just above, and masked to 3 bits.
        Ok(Some((number as u32, (key & 7) as u8)))
    }

    fn varint(&mut self) -> Result<u64, ProtobufError> {
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(ProtobufError::malformed("the message ends inside a varint"));
            };
            self.pos += 1;
            if shift == 63 && byte > 1 {
                return Err(ProtobufError::malformed("a varint overflows 64 bits"));
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(ProtobufError::malformed("a varint is longer than 10 bytes"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtobufError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.buf.len())
            .ok_or_else(|| {
                ProtobufError::malformed(format!(
                    "a field of {n} bytes runs past the end of its message ({} bytes left)",
                    self.buf.len() - self.pos
                ))
            })?;
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn expect_wire(wire: u8, expected: u8) -> Result<(), ProtobufError> {
        if wire == expected {
            Ok(())
        } else {
            Err(ProtobufError::malformed(format!(
                "wire type {} where {} was expected",
                wire_name(wire),
                wire_name(expected)
            )))
        }
    }

    fn length_delimited(&mut self, wire: u8) -> Result<&'a [u8], ProtobufError> {
        Self::expect_wire(wire, LENGTH_DELIMITED)?;
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| ProtobufError::malformed(format!("length {len} is too large")))?;
        self.take(len)
    }

    fn string(&mut self, wire: u8) -> Result<String, ProtobufError> {
        let bytes = self.length_delimited(wire)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| ProtobufError::malformed("a string is not valid UTF-8"))
    }

    fn varint_field(&mut self, wire: u8) -> Result<u64, ProtobufError> {
        Self::expect_wire(wire, VARINT)?;
        self.varint()
    }

    /// Steps over a field no schema entry names.
    fn skip(&mut self, wire: u8) -> Result<(), ProtobufError> {
        match wire {
            VARINT => self.varint().map(drop),
            FIXED64 => self.take(8).map(drop),
            LENGTH_DELIMITED => self.length_delimited(wire).map(drop),
            FIXED32 => self.take(4).map(drop),
            other => Err(ProtobufError::malformed(format!(
                "wire type {} is not supported",
                wire_name(other)
            ))),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Decoding against the schema

/// Reads the fields of one `message` from `bytes` into `out`, in the order they arrive.
///
/// Recursion follows the schema table, which has no cycles, so nesting depth is bounded by
/// the table and not by the input.
fn decode_message(message: &Message, bytes: &[u8], out: &mut Map<String, Value>) -> Result<(), ProtobufError> {
    let mut r = Reader::new(bytes);
    while let Some((number, wire)) = r.tag()? {
        match message.fields.iter().find(|f| f.number == number) {
            Some(field) => decode_field(field, wire, &mut r, out).map_err(|e| e.within(field.json))?,
            None => r.skip(wire)?,
        }
    }
    Ok(())
}

fn decode_field(field: &Field, wire: u8, r: &mut Reader, out: &mut Map<String, Value>) -> Result<(), ProtobufError> {
    let name = field.json;
    match field.kind {
        Kind::Scalar(scalar, presence) => {
            let value = scalar_value(scalar, wire, r)?;
            if presence == Presence::Pointer || !is_zero(&value) {
                out.insert(name.into(), value);
            }
        }
        Kind::Repeated(scalar) => {
            let mut values = Vec::new();
            if wire == LENGTH_DELIMITED && matches!(scalar, Scalar::Int | Scalar::Bool) {
                // Packed: one length-delimited run of varints.
                let mut packed = Reader::new(r.length_delimited(wire)?);
                while packed.pos < packed.buf.len() {
                    values.push(scalar_value(scalar, VARINT, &mut packed)?);
                }
            } else {
                values.push(scalar_value(scalar, wire, r)?);
            }
            array_at(out, name)?.extend(values);
        }
        Kind::Message(message) => {
            let bytes = r.length_delimited(wire)?;
            // A message that arrives twice is merged, as protobuf does.
            let slot = out.entry(name).or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            let object = slot.as_object_mut().expect("made an object just above");
            decode_message(message, bytes, object)?;
        }
        Kind::Messages(message) => {
            let bytes = r.length_delimited(wire)?;
            let array = array_at(out, name)?;
            let mut object = Map::new();
            decode_message(message, bytes, &mut object).map_err(|e| e.within(&format!("[{}]", array.len())))?;
            array.push(Value::Object(object));
        }
        Kind::Inline(message) => decode_message(message, r.length_delimited(wire)?, out)?,
        Kind::Map(value_kind) => {
            let (key, value) = map_entry(value_kind, r.length_delimited(wire)?)?;
            let slot = out.entry(name).or_insert_with(|| Value::Object(Map::new()));
            match slot.as_object_mut() {
                Some(map) => {
                    map.insert(key, value);
                }
                None => {
                    return Err(ProtobufError::malformed(
                        "a map field is also used as another kind of field",
                    ))
                }
            }
        }
        Kind::Quantity => {
            let value = quantity(r.length_delimited(wire)?)?;
            out.insert(name.into(), value);
        }
        Kind::IntOrString(presence) => {
            let value = int_or_string(r.length_delimited(wire)?)?;
            if presence == Presence::Pointer || !is_zero(&value) {
                out.insert(name.into(), value);
            }
        }
        Kind::Time => {
            if let Some(value) = time(r.length_delimited(wire)?)? {
                out.insert(name.into(), value);
            }
        }
    }
    Ok(())
}

/// The array under `name`, created empty if absent.
fn array_at<'m>(out: &'m mut Map<String, Value>, name: &str) -> Result<&'m mut Vec<Value>, ProtobufError> {
    out.entry(name)
        .or_insert_with(|| Value::Array(Vec::new()))
        .as_array_mut()
        .ok_or_else(|| ProtobufError::malformed("a repeated field is also used as another kind of field"))
}

fn scalar_value(scalar: Scalar, wire: u8, r: &mut Reader) -> Result<Value, ProtobufError> {
    Ok(match scalar {
        Scalar::String => Value::String(r.string(wire)?),
        Scalar::Bytes => Value::String(base64(r.length_delimited(wire)?)),
        // int32 and int64 alike: a negative int32 is sign-extended to 64 bits on the wire.
        Scalar::Int => Value::from(r.varint_field(wire)? as i64),
        Scalar::Bool => Value::Bool(r.varint_field(wire)? != 0),
    })
}

/// Whether `value` is the zero value of its Go type, which stands for "not set".
fn is_zero(value: &Value) -> bool {
    match value {
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_i64() == Some(0),
        Value::Bool(b) => !b,
        _ => false,
    }
}

/// One entry of a `map<string, V>`: a message with the key as field 1 and the value as 2.
fn map_entry(value_kind: MapValue, bytes: &[u8]) -> Result<(String, Value), ProtobufError> {
    let mut r = Reader::new(bytes);
    let mut key = String::new();
    let mut value = None;
    while let Some((number, wire)) = r.tag()? {
        match number {
            1 => key = r.string(wire).map_err(|e| e.within("<key>"))?,
            2 => {
                let decoded = match value_kind {
                    MapValue::String => scalar_value(Scalar::String, wire, &mut r),
                    MapValue::Bytes => scalar_value(Scalar::Bytes, wire, &mut r),
                    MapValue::Quantity => r.length_delimited(wire).and_then(quantity),
                };
                value = Some(decoded.map_err(|e| e.within(&format!("[{key:?}]")))?);
            }
            _ => r.skip(wire)?,
        }
    }
    // An absent value is the value type's zero.
    let value = value.unwrap_or_else(|| match value_kind {
        MapValue::String | MapValue::Bytes => Value::String(String::new()),
        MapValue::Quantity => Value::String("0".into()),
    });
    Ok((key, value))
}

/// `resource.Quantity`: its canonical string in field 1; JSON is that string.
fn quantity(bytes: &[u8]) -> Result<Value, ProtobufError> {
    let mut r = Reader::new(bytes);
    let mut s = String::new();
    while let Some((number, wire)) = r.tag()? {
        match number {
            1 => s = r.string(wire)?,
            _ => r.skip(wire)?,
        }
    }
    if s.is_empty() {
        s.push('0');
    }
    Ok(Value::String(s))
}

/// `intstr.IntOrString`: type (0 int, 1 string) = 1, intVal = 2, strVal = 3; JSON is a
/// number or a string.
fn int_or_string(bytes: &[u8]) -> Result<Value, ProtobufError> {
    let mut r = Reader::new(bytes);
    let (mut kind, mut int_val, mut str_val) = (0, 0i64, String::new());
    while let Some((number, wire)) = r.tag()? {
        match number {
            1 => kind = r.varint_field(wire)?,
            2 => int_val = r.varint_field(wire)? as i64,
            3 => str_val = r.string(wire)?,
            _ => r.skip(wire)?,
        }
    }
    match kind {
        0 => Ok(Value::from(int_val)),
        1 => Ok(Value::String(str_val)),
        other => Err(ProtobufError::malformed(format!(
            "IntOrString type {other} is neither 0 (int) nor 1 (string)"
        ))),
    }
}

/// `metav1.Time`: seconds = 1 (nanos = 2, which Kubernetes drops too); JSON is RFC 3339 in
/// UTC at second precision. An empty message is the zero time, JSON `null`: left out.
fn time(bytes: &[u8]) -> Result<Option<Value>, ProtobufError> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let mut r = Reader::new(bytes);
    let mut seconds = 0i64;
    while let Some((number, wire)) = r.tag()? {
        match number {
            1 => seconds = r.varint_field(wire)? as i64,
            _ => r.skip(wire)?,
        }
    }
    Ok(Some(Value::String(rfc3339(seconds))))
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian, days-from-civil inverted).
fn rfc3339(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3_600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Standard base64 with padding, as Go's `encoding/json` writes `[]byte`.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// The schema table
//
// Field numbers are those of Kubernetes' generated.proto files (k8s.io/api core/v1, apps/v1,
// batch/v1, autoscaling/v1; k8s.io/apimachinery meta/v1, util/intstr, api/resource).
// `Presence::Pointer` marks fields that are pointers in Go (`*int32`, `*bool`, `*string`,
// `*IntOrString`), whose zero is a real value.

/// One protobuf message: its fields by number.
struct Message {
    fields: &'static [Field],
}

struct Field {
    number: u32,
    /// The JSON name; empty for an inlined (embedded) message.
    json: &'static str,
    kind: Kind,
}

#[derive(Clone, Copy)]
enum Kind {
    Scalar(Scalar, Presence),
    /// `repeated` scalars; varints may come packed or one per field.
    Repeated(Scalar),
    Message(&'static Message),
    Messages(&'static Message),
    /// A Go embedded struct: its own message on the wire, its fields flattened in JSON.
    Inline(&'static Message),
    Map(MapValue),
    Quantity,
    IntOrString(Presence),
    Time,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scalar {
    String,
    /// int32 or int64 (varint, two's complement).
    Int,
    Bool,
    /// base64 in JSON.
    Bytes,
}

/// Whether a zero value on the wire means "not set" (a Go value field) or is a value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Presence {
    Value,
    Pointer,
}

#[derive(Clone, Copy)]
enum MapValue {
    String,
    Bytes,
    Quantity,
}

const fn field(number: u32, json: &'static str, kind: Kind) -> Field {
    Field { number, json, kind }
}
const fn string(number: u32, json: &'static str) -> Field {
    field(number, json, Kind::Scalar(Scalar::String, Presence::Value))
}
const fn opt_string(number: u32, json: &'static str) -> Field {
    field(number, json, Kind::Scalar(Scalar::String, Presence::Pointer))
}
const fn int(number: u32, json: &'static str) -> Field {
    field(number, json, Kind::Scalar(Scalar::Int, Presence::Value))
}
const fn opt_int(number: u32, json: &'static str) -> Field {
    field(number, json, Kind::Scalar(Scalar::Int, Presence::Pointer))
}
const fn boolean(number: u32, json: &'static str) -> Field {
    field(number, json, Kind::Scalar(Scalar::Bool, Presence::Value))
}
const fn opt_bool(number: u32, json: &'static str) -> Field {
    field(number, json, Kind::Scalar(Scalar::Bool, Presence::Pointer))
}
const fn strings(number: u32, json: &'static str) -> Field {
    field(number, json, Kind::Repeated(Scalar::String))
}
const fn ints(number: u32, json: &'static str) -> Field {
    field(number, json, Kind::Repeated(Scalar::Int))
}
const fn message(number: u32, json: &'static str, message: &'static Message) -> Field {
    field(number, json, Kind::Message(message))
}
const fn messages(number: u32, json: &'static str, message: &'static Message) -> Field {
    field(number, json, Kind::Messages(message))
}
const fn inline(number: u32, message: &'static Message) -> Field {
    field(number, "", Kind::Inline(message))
}
const fn string_map(number: u32, json: &'static str) -> Field {
    field(number, json, Kind::Map(MapValue::String))
}
const fn bytes_map(number: u32, json: &'static str) -> Field {
    field(number, json, Kind::Map(MapValue::Bytes))
}
const fn quantity_map(number: u32, json: &'static str) -> Field {
    field(number, json, Kind::Map(MapValue::Quantity))
}

/// The message of a top-level object, by its envelope's apiVersion and kind.
fn root_message(api_version: &str, kind: &str) -> Option<&'static Message> {
    const ROOTS: &[(&str, &str, &Message)] = &[
        ("v1", "ConfigMap", &CONFIG_MAP),
        ("v1", "Secret", &SECRET),
        ("v1", "Namespace", &NAMESPACE),
        ("v1", "Service", &SERVICE),
        ("v1", "Pod", &POD),
        ("v1", "ReplicationController", &REPLICATION_CONTROLLER),
        ("v1", "Binding", &BINDING),
        ("apps/v1", "Deployment", &DEPLOYMENT),
        ("apps/v1", "ReplicaSet", &REPLICA_SET),
        ("batch/v1", "Job", &JOB),
        ("autoscaling/v1", "Scale", &SCALE),
    ];
    // DeleteOptions is registered in every group version.
    if kind == "DeleteOptions" {
        return Some(&DELETE_OPTIONS);
    }
    ROOTS
        .iter()
        .find(|(v, k, _)| *v == api_version && *k == kind)
        .map(|(_, _, m)| *m)
}

// meta/v1

static OBJECT_META: Message = Message {
    fields: &[
        string(1, "name"),
        string(2, "generateName"),
        string(3, "namespace"),
        string(4, "selfLink"),
        string(5, "uid"),
        string(6, "resourceVersion"),
        int(7, "generation"),
        field(8, "creationTimestamp", Kind::Time),
        field(9, "deletionTimestamp", Kind::Time),
        opt_int(10, "deletionGracePeriodSeconds"),
        string_map(11, "labels"),
        string_map(12, "annotations"),
        messages(13, "ownerReferences", &OWNER_REFERENCE),
        strings(14, "finalizers"),
    ],
};

static OWNER_REFERENCE: Message = Message {
    fields: &[
        string(5, "apiVersion"),
        string(1, "kind"),
        string(3, "name"),
        string(4, "uid"),
        opt_bool(6, "controller"),
        opt_bool(7, "blockOwnerDeletion"),
    ],
};

static LABEL_SELECTOR: Message = Message {
    fields: &[
        string_map(1, "matchLabels"),
        messages(2, "matchExpressions", &LABEL_SELECTOR_REQUIREMENT),
    ],
};

static LABEL_SELECTOR_REQUIREMENT: Message = Message {
    fields: &[string(1, "key"), string(2, "operator"), strings(3, "values")],
};

static DELETE_OPTIONS: Message = Message {
    fields: &[
        opt_int(1, "gracePeriodSeconds"),
        message(2, "preconditions", &PRECONDITIONS),
        opt_bool(3, "orphanDependents"),
        opt_string(4, "propagationPolicy"),
        strings(5, "dryRun"),
    ],
};

static PRECONDITIONS: Message = Message {
    fields: &[opt_string(1, "uid"), opt_string(2, "resourceVersion")],
};

// core/v1: configuration and namespaces

static CONFIG_MAP: Message = Message {
    fields: &[
        message(1, "metadata", &OBJECT_META),
        opt_bool(4, "immutable"),
        string_map(2, "data"),
        bytes_map(3, "binaryData"),
    ],
};

static SECRET: Message = Message {
    fields: &[
        message(1, "metadata", &OBJECT_META),
        opt_bool(5, "immutable"),
        bytes_map(2, "data"),
        string_map(4, "stringData"),
        string(3, "type"),
    ],
};

static NAMESPACE: Message = Message {
    fields: &[
        message(1, "metadata", &OBJECT_META),
        message(2, "spec", &NAMESPACE_SPEC),
        message(3, "status", &NAMESPACE_STATUS),
    ],
};

static NAMESPACE_SPEC: Message = Message {
    fields: &[strings(1, "finalizers")],
};

static NAMESPACE_STATUS: Message = Message {
    fields: &[string(1, "phase")],
};

// core/v1: services

static SERVICE: Message = Message {
    fields: &[message(1, "metadata", &OBJECT_META), message(2, "spec", &SERVICE_SPEC)],
};

static SERVICE_SPEC: Message = Message {
    fields: &[
        messages(1, "ports", &SERVICE_PORT),
        string_map(2, "selector"),
        string(3, "clusterIP"),
        strings(18, "clusterIPs"),
        string(4, "type"),
        strings(5, "externalIPs"),
        string(7, "sessionAffinity"),
        string(8, "loadBalancerIP"),
        strings(9, "loadBalancerSourceRanges"),
        string(10, "externalName"),
        string(11, "externalTrafficPolicy"),
        int(12, "healthCheckNodePort"),
        boolean(13, "publishNotReadyAddresses"),
        message(14, "sessionAffinityConfig", &SESSION_AFFINITY_CONFIG),
        strings(19, "ipFamilies"),
        opt_string(17, "ipFamilyPolicy"),
        opt_bool(20, "allocateLoadBalancerNodePorts"),
        opt_string(21, "loadBalancerClass"),
        opt_string(22, "internalTrafficPolicy"),
        opt_string(23, "trafficDistribution"),
    ],
};

static SERVICE_PORT: Message = Message {
    fields: &[
        string(1, "name"),
        string(2, "protocol"),
        opt_string(6, "appProtocol"),
        int(3, "port"),
        field(4, "targetPort", Kind::IntOrString(Presence::Value)),
        int(5, "nodePort"),
    ],
};

static SESSION_AFFINITY_CONFIG: Message = Message {
    fields: &[message(1, "clientIP", &CLIENT_IP_CONFIG)],
};

static CLIENT_IP_CONFIG: Message = Message {
    fields: &[opt_int(1, "timeoutSeconds")],
};

// core/v1: pods

static POD: Message = Message {
    fields: &[message(1, "metadata", &OBJECT_META), message(2, "spec", &POD_SPEC)],
};

static POD_TEMPLATE_SPEC: Message = Message {
    fields: &[message(1, "metadata", &OBJECT_META), message(2, "spec", &POD_SPEC)],
};

static POD_SPEC: Message = Message {
    fields: &[
        messages(1, "volumes", &VOLUME),
        messages(20, "initContainers", &CONTAINER),
        messages(2, "containers", &CONTAINER),
        string(3, "restartPolicy"),
        opt_int(4, "terminationGracePeriodSeconds"),
        opt_int(5, "activeDeadlineSeconds"),
        string(6, "dnsPolicy"),
        string_map(7, "nodeSelector"),
        string(8, "serviceAccountName"),
        string(9, "serviceAccount"),
        opt_bool(21, "automountServiceAccountToken"),
        string(10, "nodeName"),
        boolean(11, "hostNetwork"),
        boolean(12, "hostPID"),
        boolean(13, "hostIPC"),
        opt_bool(27, "shareProcessNamespace"),
        message(14, "securityContext", &POD_SECURITY_CONTEXT),
        messages(15, "imagePullSecrets", &LOCAL_OBJECT_REFERENCE),
        string(16, "hostname"),
        string(17, "subdomain"),
        string(19, "schedulerName"),
        messages(22, "tolerations", &TOLERATION),
        messages(23, "hostAliases", &HOST_ALIAS),
        string(24, "priorityClassName"),
        opt_int(25, "priority"),
        opt_string(29, "runtimeClassName"),
        opt_bool(30, "enableServiceLinks"),
        opt_string(31, "preemptionPolicy"),
        opt_bool(35, "setHostnameAsFQDN"),
        opt_bool(37, "hostUsers"),
    ],
};

static POD_SECURITY_CONTEXT: Message = Message {
    fields: &[
        opt_int(2, "runAsUser"),
        opt_int(6, "runAsGroup"),
        opt_bool(3, "runAsNonRoot"),
        ints(4, "supplementalGroups"),
        opt_int(5, "fsGroup"),
    ],
};

static TOLERATION: Message = Message {
    fields: &[
        string(1, "key"),
        string(2, "operator"),
        string(3, "value"),
        string(4, "effect"),
        opt_int(5, "tolerationSeconds"),
    ],
};

static HOST_ALIAS: Message = Message {
    fields: &[string(1, "ip"), strings(2, "hostnames")],
};

static LOCAL_OBJECT_REFERENCE: Message = Message {
    fields: &[string(1, "name")],
};

static CONTAINER: Message = Message {
    fields: &[
        string(1, "name"),
        string(2, "image"),
        strings(3, "command"),
        strings(4, "args"),
        string(5, "workingDir"),
        messages(6, "ports", &CONTAINER_PORT),
        messages(19, "envFrom", &ENV_FROM_SOURCE),
        messages(7, "env", &ENV_VAR),
        message(8, "resources", &RESOURCE_REQUIREMENTS),
        opt_string(24, "restartPolicy"),
        messages(9, "volumeMounts", &VOLUME_MOUNT),
        message(10, "livenessProbe", &PROBE),
        message(11, "readinessProbe", &PROBE),
        message(22, "startupProbe", &PROBE),
        string(13, "terminationMessagePath"),
        string(20, "terminationMessagePolicy"),
        string(14, "imagePullPolicy"),
        message(15, "securityContext", &SECURITY_CONTEXT),
        boolean(16, "stdin"),
        boolean(17, "stdinOnce"),
        boolean(18, "tty"),
    ],
};

static CONTAINER_PORT: Message = Message {
    fields: &[
        string(1, "name"),
        int(2, "hostPort"),
        int(3, "containerPort"),
        string(4, "protocol"),
        string(5, "hostIP"),
    ],
};

static ENV_VAR: Message = Message {
    fields: &[
        string(1, "name"),
        string(2, "value"),
        message(3, "valueFrom", &ENV_VAR_SOURCE),
    ],
};

static ENV_VAR_SOURCE: Message = Message {
    fields: &[
        message(1, "fieldRef", &OBJECT_FIELD_SELECTOR),
        message(2, "resourceFieldRef", &RESOURCE_FIELD_SELECTOR),
        message(3, "configMapKeyRef", &KEY_SELECTOR),
        message(4, "secretKeyRef", &KEY_SELECTOR),
    ],
};

static OBJECT_FIELD_SELECTOR: Message = Message {
    fields: &[string(1, "apiVersion"), string(2, "fieldPath")],
};

static RESOURCE_FIELD_SELECTOR: Message = Message {
    fields: &[
        string(1, "containerName"),
        string(2, "resource"),
        field(3, "divisor", Kind::Quantity),
    ],
};

/// `ConfigMapKeySelector` and `SecretKeySelector`, which share their layout.
static KEY_SELECTOR: Message = Message {
    fields: &[
        inline(1, &LOCAL_OBJECT_REFERENCE),
        string(2, "key"),
        opt_bool(3, "optional"),
    ],
};

static ENV_FROM_SOURCE: Message = Message {
    fields: &[
        string(1, "prefix"),
        message(2, "configMapRef", &ENV_SOURCE),
        message(3, "secretRef", &ENV_SOURCE),
    ],
};

/// `ConfigMapEnvSource` and `SecretEnvSource`, which share their layout.
static ENV_SOURCE: Message = Message {
    fields: &[inline(1, &LOCAL_OBJECT_REFERENCE), opt_bool(2, "optional")],
};

static RESOURCE_REQUIREMENTS: Message = Message {
    fields: &[quantity_map(1, "limits"), quantity_map(2, "requests")],
};

static VOLUME_MOUNT: Message = Message {
    fields: &[
        string(1, "name"),
        boolean(2, "readOnly"),
        opt_string(7, "recursiveReadOnly"),
        string(3, "mountPath"),
        string(4, "subPath"),
        opt_string(5, "mountPropagation"),
        string(6, "subPathExpr"),
    ],
};

static VOLUME: Message = Message {
    fields: &[string(1, "name"), inline(2, &VOLUME_SOURCE)],
};

static VOLUME_SOURCE: Message = Message {
    fields: &[
        message(1, "hostPath", &HOST_PATH_VOLUME_SOURCE),
        message(2, "emptyDir", &EMPTY_DIR_VOLUME_SOURCE),
        message(6, "secret", &SECRET_VOLUME_SOURCE),
        message(10, "persistentVolumeClaim", &PERSISTENT_VOLUME_CLAIM_VOLUME_SOURCE),
        message(19, "configMap", &CONFIG_MAP_VOLUME_SOURCE),
    ],
};

static HOST_PATH_VOLUME_SOURCE: Message = Message {
    fields: &[string(1, "path"), opt_string(2, "type")],
};

static EMPTY_DIR_VOLUME_SOURCE: Message = Message {
    fields: &[string(1, "medium"), field(2, "sizeLimit", Kind::Quantity)],
};

static SECRET_VOLUME_SOURCE: Message = Message {
    fields: &[
        string(1, "secretName"),
        messages(2, "items", &KEY_TO_PATH),
        opt_int(3, "defaultMode"),
        opt_bool(4, "optional"),
    ],
};

static CONFIG_MAP_VOLUME_SOURCE: Message = Message {
    fields: &[
        inline(1, &LOCAL_OBJECT_REFERENCE),
        messages(2, "items", &KEY_TO_PATH),
        opt_int(3, "defaultMode"),
        opt_bool(4, "optional"),
    ],
};

static KEY_TO_PATH: Message = Message {
    fields: &[string(1, "key"), string(2, "path"), opt_int(3, "mode")],
};

static PERSISTENT_VOLUME_CLAIM_VOLUME_SOURCE: Message = Message {
    fields: &[string(1, "claimName"), boolean(2, "readOnly")],
};

static PROBE: Message = Message {
    fields: &[
        inline(1, &PROBE_HANDLER),
        int(2, "initialDelaySeconds"),
        int(3, "timeoutSeconds"),
        int(4, "periodSeconds"),
        int(5, "successThreshold"),
        int(6, "failureThreshold"),
        opt_int(7, "terminationGracePeriodSeconds"),
    ],
};

static PROBE_HANDLER: Message = Message {
    fields: &[
        message(1, "exec", &EXEC_ACTION),
        message(2, "httpGet", &HTTP_GET_ACTION),
        message(3, "tcpSocket", &TCP_SOCKET_ACTION),
        message(4, "grpc", &GRPC_ACTION),
    ],
};

static EXEC_ACTION: Message = Message {
    fields: &[strings(1, "command")],
};

static HTTP_GET_ACTION: Message = Message {
    fields: &[
        string(1, "path"),
        field(2, "port", Kind::IntOrString(Presence::Value)),
        string(3, "host"),
        string(4, "scheme"),
        messages(5, "httpHeaders", &HTTP_HEADER),
    ],
};

static HTTP_HEADER: Message = Message {
    fields: &[string(1, "name"), string(2, "value")],
};

static TCP_SOCKET_ACTION: Message = Message {
    fields: &[field(1, "port", Kind::IntOrString(Presence::Value)), string(2, "host")],
};

static GRPC_ACTION: Message = Message {
    fields: &[int(1, "port"), opt_string(2, "service")],
};

static SECURITY_CONTEXT: Message = Message {
    fields: &[
        message(1, "capabilities", &CAPABILITIES),
        opt_bool(2, "privileged"),
        opt_int(4, "runAsUser"),
        opt_int(8, "runAsGroup"),
        opt_bool(5, "runAsNonRoot"),
        opt_bool(6, "readOnlyRootFilesystem"),
        opt_bool(7, "allowPrivilegeEscalation"),
        opt_string(9, "procMount"),
    ],
};

static CAPABILITIES: Message = Message {
    fields: &[strings(1, "add"), strings(2, "drop")],
};

static BINDING: Message = Message {
    fields: &[
        message(1, "metadata", &OBJECT_META),
        message(2, "target", &OBJECT_REFERENCE),
    ],
};

static OBJECT_REFERENCE: Message = Message {
    fields: &[
        string(1, "kind"),
        string(2, "namespace"),
        string(3, "name"),
        string(4, "uid"),
        string(5, "apiVersion"),
        string(6, "resourceVersion"),
        string(7, "fieldPath"),
    ],
};

static REPLICATION_CONTROLLER: Message = Message {
    fields: &[
        message(1, "metadata", &OBJECT_META),
        message(2, "spec", &REPLICATION_CONTROLLER_SPEC),
    ],
};

static REPLICATION_CONTROLLER_SPEC: Message = Message {
    fields: &[
        opt_int(1, "replicas"),
        int(4, "minReadySeconds"),
        string_map(2, "selector"),
        message(3, "template", &POD_TEMPLATE_SPEC),
    ],
};

// apps/v1

static DEPLOYMENT: Message = Message {
    fields: &[
        message(1, "metadata", &OBJECT_META),
        message(2, "spec", &DEPLOYMENT_SPEC),
    ],
};

static DEPLOYMENT_SPEC: Message = Message {
    fields: &[
        opt_int(1, "replicas"),
        message(2, "selector", &LABEL_SELECTOR),
        message(3, "template", &POD_TEMPLATE_SPEC),
        message(4, "strategy", &DEPLOYMENT_STRATEGY),
        int(5, "minReadySeconds"),
        opt_int(6, "revisionHistoryLimit"),
        boolean(7, "paused"),
        opt_int(9, "progressDeadlineSeconds"),
    ],
};

static DEPLOYMENT_STRATEGY: Message = Message {
    fields: &[
        string(1, "type"),
        message(2, "rollingUpdate", &ROLLING_UPDATE_DEPLOYMENT),
    ],
};

static ROLLING_UPDATE_DEPLOYMENT: Message = Message {
    fields: &[
        field(1, "maxUnavailable", Kind::IntOrString(Presence::Pointer)),
        field(2, "maxSurge", Kind::IntOrString(Presence::Pointer)),
    ],
};

static REPLICA_SET: Message = Message {
    fields: &[
        message(1, "metadata", &OBJECT_META),
        message(2, "spec", &REPLICA_SET_SPEC),
    ],
};

static REPLICA_SET_SPEC: Message = Message {
    fields: &[
        opt_int(1, "replicas"),
        int(4, "minReadySeconds"),
        message(2, "selector", &LABEL_SELECTOR),
        message(3, "template", &POD_TEMPLATE_SPEC),
    ],
};

// batch/v1

static JOB: Message = Message {
    fields: &[message(1, "metadata", &OBJECT_META), message(2, "spec", &JOB_SPEC)],
};

static JOB_SPEC: Message = Message {
    fields: &[
        opt_int(1, "parallelism"),
        opt_int(2, "completions"),
        opt_int(3, "activeDeadlineSeconds"),
        opt_int(7, "backoffLimit"),
        opt_int(12, "backoffLimitPerIndex"),
        opt_int(13, "maxFailedIndexes"),
        message(4, "selector", &LABEL_SELECTOR),
        opt_bool(5, "manualSelector"),
        message(6, "template", &POD_TEMPLATE_SPEC),
        opt_int(8, "ttlSecondsAfterFinished"),
        opt_string(9, "completionMode"),
        opt_bool(10, "suspend"),
        opt_string(14, "podReplacementPolicy"),
        opt_string(15, "managedBy"),
    ],
};

// autoscaling/v1

static SCALE: Message = Message {
    fields: &[
        message(1, "metadata", &OBJECT_META),
        message(2, "spec", &SCALE_SPEC),
        message(3, "status", &SCALE_STATUS),
    ],
};

static SCALE_SPEC: Message = Message {
    // A value field in Go, but a Scale always states its replicas: 0 is "scale to zero".
    fields: &[opt_int(1, "replicas")],
};

static SCALE_STATUS: Message = Message {
    fields: &[int(1, "replicas"), string(2, "selector")],
};

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{base64, decode, rfc3339, ProtobufError, MAGIC};

    // A minimal encoder, to build bodies no kubectl command sends.

    fn varint(mut v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
        out
    }

    fn key(number: u32, wire: u8) -> Vec<u8> {
        varint((u64::from(number) << 3) | u64::from(wire))
    }

    fn int(number: u32, v: i64) -> Vec<u8> {
        [key(number, 0), varint(v as u64)].concat()
    }

    fn bytes(number: u32, b: &[u8]) -> Vec<u8> {
        [key(number, 2), varint(b.len() as u64), b.to_vec()].concat()
    }

    fn string(number: u32, s: &str) -> Vec<u8> {
        bytes(number, s.as_bytes())
    }

    fn msg(number: u32, fields: &[Vec<u8>]) -> Vec<u8> {
        bytes(number, &fields.concat())
    }

    fn entry(number: u32, k: &str, v: &str) -> Vec<u8> {
        msg(number, &[string(1, k), string(2, v)])
    }

    fn quantity(number: u32, q: &str) -> Vec<u8> {
        msg(number, &[string(1, q)])
    }

    fn quantity_entry(number: u32, k: &str, q: &str) -> Vec<u8> {
        msg(number, &[string(1, k), quantity(2, q)])
    }

    fn int_or_string_int(number: u32, v: i64) -> Vec<u8> {
        msg(number, &[int(1, 0), int(2, v), string(3, "")])
    }

    fn int_or_string_str(number: u32, s: &str) -> Vec<u8> {
        msg(number, &[int(1, 1), int(2, 0), string(3, s)])
    }

    /// The magic and `runtime.Unknown` around `raw`, as kubectl writes them.
    fn body(api_version: &str, kind: &str, raw: &[Vec<u8>]) -> Vec<u8> {
        [
            MAGIC.to_vec(),
            msg(1, &[string(1, api_version), string(2, kind)]),
            bytes(2, &raw.concat()),
            string(3, ""),
            string(4, ""),
        ]
        .concat()
    }

    fn malformed_path(err: ProtobufError) -> String {
        match err {
            ProtobufError::Malformed { path, .. } => path,
            other => panic!("expected a malformed-field error, got {other:?}"),
        }
    }

    #[test]
    fn pod_with_env_resources_volumes_and_probes_decodes_to_its_json() {
        let container = [
            string(1, "app"),
            string(2, "busybox:1.36"),
            string(3, "sh"),
            string(3, "-c"),
            string(4, "sleep 10"),
            string(5, ""),
            msg(
                6,
                &[
                    string(1, "http"),
                    int(2, 0),
                    int(3, 8080),
                    string(4, "TCP"),
                    string(5, ""),
                ],
            ),
            msg(7, &[string(1, "K"), string(2, "V")]),
            msg(
                7,
                &[
                    string(1, "PASSWORD"),
                    string(2, ""),
                    msg(3, &[msg(4, &[msg(1, &[string(1, "db")]), string(2, "pw"), int(3, 1)])]),
                ],
            ),
            msg(
                7,
                &[
                    string(1, "NODE"),
                    msg(3, &[msg(1, &[string(1, "v1"), string(2, "spec.nodeName")])]),
                ],
            ),
            msg(
                8,
                &[
                    quantity_entry(1, "cpu", "500m"),
                    quantity_entry(1, "memory", "128Mi"),
                    quantity_entry(2, "cpu", "250m"),
                ],
            ),
            msg(9, &[string(1, "cache"), int(2, 0), string(3, "/cache"), string(4, "")]),
            msg(9, &[string(1, "config"), int(2, 1), string(3, "/etc/app")]),
            msg(
                10,
                &[
                    msg(
                        1,
                        &[msg(
                            2,
                            &[string(1, "/healthz"), int_or_string_str(2, "http"), string(4, "HTTP")],
                        )],
                    ),
                    int(2, 3),
                    int(3, 0),
                    int(4, 10),
                ],
            ),
            msg(11, &[msg(1, &[msg(3, &[int_or_string_int(1, 8080)])]), int(6, 3)]),
            string(13, "/dev/termination-log"),
            string(20, "File"),
            string(14, "IfNotPresent"),
            int(16, 0),
            int(18, 1),
        ];
        let spec = [
            msg(
                1,
                &[
                    string(1, "cache"),
                    msg(2, &[msg(2, &[string(1, "Memory"), quantity(2, "64Mi")])]),
                ],
            ),
            msg(
                1,
                &[
                    string(1, "config"),
                    msg(2, &[msg(19, &[msg(1, &[string(1, "app-config")]), int(3, 0o644)])]),
                ],
            ),
            msg(
                1,
                &[
                    string(1, "host"),
                    msg(2, &[msg(1, &[string(1, "/var/log"), string(2, "Directory")])]),
                ],
            ),
            msg(
                1,
                &[string(1, "creds"), msg(2, &[msg(6, &[string(1, "db"), int(4, 0)])])],
            ),
            msg(20, &[string(1, "init"), string(2, "busybox")]),
            msg(2, &container),
            string(3, "Always"),
            int(4, 0),
            string(6, "ClusterFirst"),
            entry(7, "disk", "ssd"),
            string(8, "runner"),
            string(10, "node-1"),
            int(11, 1),
            int(12, 0),
            msg(
                14,
                &[int(2, 1000), bytes(4, &[varint(1), varint(2)].concat()), int(4, 3)],
            ),
            msg(
                22,
                &[
                    string(1, "dedicated"),
                    string(2, "Equal"),
                    string(3, "gpu"),
                    string(4, "NoSchedule"),
                ],
            ),
            msg(22, &[string(2, "Exists"), string(4, "NoExecute"), int(5, 30)]),
        ];
        let metadata = [
            string(1, "p"),
            string(2, ""),
            string(3, "team-a"),
            string(5, ""),
            string(6, ""),
            int(7, 0),
            msg(8, &[int(1, 1_700_000_000), int(2, 123)]),
            entry(11, "app", "web"),
            entry(11, "tier", "front"),
            entry(12, "note", "x"),
            msg(
                13,
                &[
                    string(5, "apps/v1"),
                    string(1, "ReplicaSet"),
                    string(3, "web-1"),
                    string(4, "u-1"),
                    int(6, 1),
                    int(7, 0),
                ],
            ),
            string(14, "example.com/guard"),
        ];
        let body = body(
            "v1",
            "Pod",
            &[msg(1, &metadata), msg(2, &spec), msg(3, &[string(1, "Pending")])],
        );

        let expected = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "p",
                "namespace": "team-a",
                "creationTimestamp": "2023-11-14T22:13:20Z",
                "labels": {"app": "web", "tier": "front"},
                "annotations": {"note": "x"},
                "ownerReferences": [{
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "web-1",
                    "uid": "u-1",
                    "controller": true,
                    "blockOwnerDeletion": false
                }],
                "finalizers": ["example.com/guard"]
            },
            "spec": {
                "volumes": [
                    {"name": "cache", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
                    {"name": "config", "configMap": {"name": "app-config", "defaultMode": 420}},
                    {"name": "host", "hostPath": {"path": "/var/log", "type": "Directory"}},
                    {"name": "creds", "secret": {"secretName": "db", "optional": false}}
                ],
                "initContainers": [{"name": "init", "image": "busybox"}],
                "containers": [{
                    "name": "app",
                    "image": "busybox:1.36",
                    "command": ["sh", "-c"],
                    "args": ["sleep 10"],
                    "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                    "env": [
                        {"name": "K", "value": "V"},
                        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw", "optional": true}}},
                        {"name": "NODE", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}}}
                    ],
                    "resources": {
                        "limits": {"cpu": "500m", "memory": "128Mi"},
                        "requests": {"cpu": "250m"}
                    },
                    "volumeMounts": [
                        {"name": "cache", "mountPath": "/cache"},
                        {"name": "config", "readOnly": true, "mountPath": "/etc/app"}
                    ],
                    "livenessProbe": {
                        "httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"},
                        "initialDelaySeconds": 3,
                        "periodSeconds": 10
                    },
                    "readinessProbe": {"tcpSocket": {"port": 8080}, "failureThreshold": 3},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                    "imagePullPolicy": "IfNotPresent",
                    "tty": true
                }],
                "restartPolicy": "Always",
                "terminationGracePeriodSeconds": 0,
                "dnsPolicy": "ClusterFirst",
                "nodeSelector": {"disk": "ssd"},
                "serviceAccountName": "runner",
                "nodeName": "node-1",
                "hostNetwork": true,
                "securityContext": {"runAsUser": 1000, "supplementalGroups": [1, 2, 3]},
                "tolerations": [
                    {"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"},
                    {"operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30}
                ]
            }
        });
        assert_eq!(decode(&body).expect("a valid pod"), expected);
    }

    #[test]
    fn zero_values_are_left_out_but_zero_pointers_are_kept() {
        let spec = [
            int(1, 0),
            msg(2, &[entry(1, "app", "web")]),
            msg(
                4,
                &[
                    string(1, "RollingUpdate"),
                    msg(2, &[int_or_string_int(1, 0), int_or_string_str(2, "25%")]),
                ],
            ),
            int(5, 0),
            int(7, 0),
        ];
        let body = body(
            "apps/v1",
            "Deployment",
            &[msg(1, &[string(1, "web"), msg(8, &[])]), msg(2, &spec)],
        );
        assert_eq!(
            decode(&body).expect("a valid deployment"),
            json!({
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "web"},
                "spec": {
                    "replicas": 0,
                    "selector": {"matchLabels": {"app": "web"}},
                    "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}}
                }
            })
        );
    }

    #[test]
    fn a_zero_int_or_string_value_field_is_left_out() {
        let port = msg(1, &[string(1, "web"), int(3, 80), int_or_string_int(4, 0), int(5, 0)]);
        let body = body("v1", "Service", &[msg(1, &[string(1, "s")]), msg(2, &[port])]);
        let object = decode(&body).expect("a valid service");
        assert_eq!(object["spec"]["ports"], json!([{"name": "web", "port": 80}]));
    }

    #[test]
    fn job_pointer_fields_keep_their_zeros() {
        let spec = [
            int(1, 0),
            int(2, 3),
            int(3, 600),
            int(7, 0),
            msg(6, &[msg(2, &[string(3, "Never")])]),
        ];
        let body = body("batch/v1", "Job", &[msg(1, &[string(1, "j")]), msg(2, &spec)]);
        let object = decode(&body).expect("a valid job");
        assert_eq!(
            object["spec"],
            json!({
                "parallelism": 0,
                "completions": 3,
                "activeDeadlineSeconds": 600,
                "backoffLimit": 0,
                "template": {"spec": {"restartPolicy": "Never"}}
            })
        );
    }

    #[test]
    fn packed_and_unpacked_repeated_ints_decode_alike() {
        let packed = body(
            "v1",
            "Pod",
            &[msg(2, &[msg(14, &[bytes(4, &[varint(5), varint(300)].concat())])])],
        );
        let unpacked = body("v1", "Pod", &[msg(2, &[msg(14, &[int(4, 5), int(4, 300)])])]);
        let expected = json!([5, 300]);
        assert_eq!(
            decode(&packed).expect("packed")["spec"]["securityContext"]["supplementalGroups"],
            expected
        );
        assert_eq!(
            decode(&unpacked).expect("unpacked")["spec"]["securityContext"]["supplementalGroups"],
            expected
        );
    }

    #[test]
    fn a_negative_int32_sign_extended_to_ten_bytes_decodes_negative() {
        let body = body("v1", "Pod", &[msg(2, &[int(25, -5)])]);
        let encoded_len = int(25, -5).len();
        assert_eq!(
            encoded_len, 12,
            "a negative varint takes ten bytes after its two-byte key"
        );
        assert_eq!(decode(&body).expect("a valid pod")["spec"]["priority"], -5);
    }

    #[test]
    fn unknown_fields_of_every_wire_type_are_skipped() {
        let unknown = [
            int(99, 7),
            [key(98, 1), vec![0; 8]].concat(),
            string(97, "ignored"),
            [key(96, 5), vec![0; 4]].concat(),
        ]
        .concat();
        let body = body(
            "v1",
            "ConfigMap",
            &[
                unknown.clone(),
                msg(1, &[unknown.clone(), string(1, "c")]),
                entry(2, "k", "v"),
                unknown,
            ],
        );
        assert_eq!(
            decode(&body).expect("a valid configmap"),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}})
        );
    }

    #[test]
    fn secret_bytes_become_base64_and_string_data_stays_text() {
        let body = body(
            "v1",
            "Secret",
            &[
                msg(1, &[string(1, "s")]),
                msg(2, &[string(1, "bin"), bytes(2, &[0, 255, 16])]),
                entry(4, "plain", "text"),
                string(3, "Opaque"),
                int(5, 0),
            ],
        );
        assert_eq!(
            decode(&body).expect("a valid secret"),
            json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "s"},
                "data": {"bin": "AP8Q"},
                "stringData": {"plain": "text"},
                "type": "Opaque",
                "immutable": false
            })
        );
    }

    #[test]
    fn delete_options_decode_under_any_api_version() {
        let body = body(
            "apps/v1",
            "DeleteOptions",
            &[
                int(1, 0),
                msg(2, &[string(1, "u-1")]),
                string(4, "Foreground"),
                string(5, "All"),
            ],
        );
        assert_eq!(
            decode(&body).expect("valid delete options"),
            json!({
                "apiVersion": "apps/v1",
                "kind": "DeleteOptions",
                "gracePeriodSeconds": 0,
                "preconditions": {"uid": "u-1"},
                "propagationPolicy": "Foreground",
                "dryRun": ["All"]
            })
        );
    }

    #[test]
    fn scale_to_zero_and_binding_decode() {
        let scale = body(
            "autoscaling/v1",
            "Scale",
            &[
                msg(1, &[string(1, "web"), string(3, "default")]),
                msg(2, &[int(1, 0)]),
                msg(3, &[int(1, 0), string(2, "")]),
            ],
        );
        assert_eq!(
            decode(&scale).expect("a valid scale"),
            json!({
                "apiVersion": "autoscaling/v1",
                "kind": "Scale",
                "metadata": {"name": "web", "namespace": "default"},
                "spec": {"replicas": 0},
                "status": {}
            })
        );
        let binding = body(
            "v1",
            "Binding",
            &[
                msg(1, &[string(1, "p")]),
                msg(2, &[string(1, "Node"), string(3, "node-1")]),
            ],
        );
        assert_eq!(
            decode(&binding).expect("a valid binding"),
            json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"}, "target": {"kind": "Node", "name": "node-1"}})
        );
    }

    #[test]
    fn a_body_without_the_magic_is_refused() {
        assert_eq!(decode(b"{\"kind\":\"Pod\"}"), Err(ProtobufError::MissingMagic));
        assert_eq!(decode(b"k8s"), Err(ProtobufError::MissingMagic));
    }

    #[test]
    fn an_unsupported_kind_is_named() {
        let err = decode(&body("v1", "PersistentVolume", &[])).expect_err("not in the table");
        assert_eq!(
            err,
            ProtobufError::UnsupportedKind {
                api_version: "v1".into(),
                kind: "PersistentVolume".into()
            }
        );
        assert!(err.to_string().contains("send the object as application/json"), "{err}");
        let err = decode(&body("extensions/v1beta1", "Deployment", &[])).expect_err("another group version");
        assert!(matches!(err, ProtobufError::UnsupportedKind { .. }), "{err:?}");
        assert_eq!(decode(&body("v1", "", &[])), Err(ProtobufError::MissingKind));
    }

    #[test]
    fn a_compressed_or_json_payload_is_refused() {
        let gzip = [
            MAGIC.to_vec(),
            msg(1, &[string(1, "v1"), string(2, "Pod")]),
            string(3, "gzip"),
        ]
        .concat();
        assert_eq!(
            decode(&gzip),
            Err(ProtobufError::UnsupportedEncoding {
                encoding: "gzip".into()
            })
        );
        let json = [
            MAGIC.to_vec(),
            msg(1, &[string(1, "v1"), string(2, "Pod")]),
            string(4, "application/json"),
        ]
        .concat();
        assert!(matches!(
            decode(&json),
            Err(ProtobufError::UnsupportedContentType { .. })
        ));
    }

    #[test]
    fn a_truncated_field_is_reported_at_its_json_path() {
        let mut body = body(
            "apps/v1",
            "Deployment",
            &[msg(
                2,
                &[msg(3, &[msg(2, &[msg(2, &[string(1, "web"), string(2, "nginx")])])])],
            )],
        );
        // Make the image's length claim more bytes than its container holds; the envelope's
        // two empty strings (4 bytes) follow the object.
        let image = body.len() - b"nginx".len() - 1 - 4;
        body[image] = 40;
        let err = decode(&body).expect_err("truncated");
        assert_eq!(malformed_path(err), "Deployment.spec.template.spec.containers[0].image");
    }

    #[test]
    fn a_wrong_wire_type_is_reported_at_its_json_path() {
        let body = body(
            "v1",
            "Pod",
            &[msg(2, &[msg(2, &[string(1, "c"), msg(6, &[string(3, "80")])])])],
        );
        let err = decode(&body).expect_err("containerPort is a varint");
        assert!(
            err.to_string()
                .contains("wire type length-delimited where varint was expected"),
            "{err}"
        );
        assert_eq!(malformed_path(err), "Pod.spec.containers[0].ports[0].containerPort");
    }

    #[test]
    fn invalid_utf8_and_bad_envelopes_are_malformed() {
        let body = body("v1", "ConfigMap", &[msg(1, &[bytes(1, &[0xff, 0xfe])])]);
        let err = decode(&body).expect_err("not UTF-8");
        assert!(err.to_string().contains("not valid UTF-8"), "{err}");
        assert_eq!(malformed_path(err), "ConfigMap.metadata.name");

        let err = decode(&[MAGIC.as_slice(), &[0x0a, 0x05, 0x0a]].concat()).expect_err("short envelope");
        assert_eq!(malformed_path(err), "envelope.typeMeta");

        let err = decode(&[MAGIC.as_slice(), &[0x28, 0xff, 0xff]].concat()).expect_err("unterminated varint");
        assert!(err.to_string().contains("ends inside a varint"), "{err}");

        let err = decode(&[MAGIC.as_slice(), &[0x0b]].concat()).expect_err("a group");
        assert!(err.to_string().contains("start-group"), "{err}");
    }

    #[test]
    fn an_int_or_string_of_unknown_type_is_malformed() {
        let port = msg(1, &[int(3, 80), msg(4, &[int(1, 2)])]);
        let err = decode(&body("v1", "Service", &[msg(2, &[port])])).expect_err("type 2");
        assert!(err.to_string().contains("IntOrString type 2"), "{err}");
        assert_eq!(malformed_path(err), "Service.spec.ports[0].targetPort");
    }

    #[test]
    fn times_print_as_rfc3339_in_utc_at_second_precision() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
        assert_eq!(rfc3339(253_402_300_799), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn base64_pads_like_go() {
        for (input, output) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), output, "{input:?}");
        }
    }
}
