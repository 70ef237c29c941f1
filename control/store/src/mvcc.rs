//! The store's state machine: an etcd-style multi-version key-value map (pure, synchronous, no I/O).
//!
//! Every key keeps its versions in revision order, so a read at an older revision sees the
//! state as it was then, until [`MvccState::compact`] forgets that history. A delete is kept as
//! a tombstone version so that reads at revisions between the delete and a re-create see the
//! key as absent.
//!
//! Revision rules (as etcd): an empty store is at revision 1; every transaction that changes
//! something takes the next revision, shared by all of its ops; a transaction that changes
//! nothing (only deletes of absent keys) leaves the revision where it was.

use std::collections::BTreeMap;
use std::ops::Bound;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::kv::{Event, EventKind, KeyValue, Op, Precondition, RangeRequest, RangeResult, Revision, Txn, TxnOutcome};

/// One version of one key.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Version {
    mod_revision: Revision,
    /// 0 for a tombstone.
    create_revision: Revision,
    /// 0 for a tombstone.
    version: u64,
    /// `None` marks a tombstone: the key was deleted at `mod_revision`.
    value: Option<Bytes>,
}

impl Version {
    fn is_live(&self) -> bool {
        self.value.is_some()
    }

    /// The key-value a reader sees; only called on live versions.
    fn to_kv(&self, key: &str) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: self.value.clone().unwrap_or_default(),
            create_revision: self.create_revision,
            mod_revision: self.mod_revision,
            version: self.version,
        }
    }
}

/// The versions of one key.
///
/// Invariant: `versions` is sorted by strictly increasing `mod_revision` (ops of one txn that
/// touch the same key overwrite that txn's version in place), and is never empty while the
/// key is in the map.
#[derive(Clone, Debug, Default)]
struct KeyHistory {
    versions: Vec<Version>,
}

impl KeyHistory {
    /// The key's live version at the latest revision.
    fn latest(&self) -> Option<&Version> {
        self.versions.last().filter(|v| v.is_live())
    }

    /// The key's live version as of `revision`: the newest version at or below it, unless that
    /// is a tombstone.
    fn at(&self, revision: Revision) -> Option<&Version> {
        let newer = self.versions.partition_point(|v| v.mod_revision <= revision);
        newer.checked_sub(1).map(|i| &self.versions[i]).filter(|v| v.is_live())
    }

    /// Writes `v` as the key's newest version. A second write in the same txn (same revision)
    /// replaces the first, keeping `mod_revision` strictly increasing.
    fn record(&mut self, v: Version) {
        match self.versions.last_mut() {
            Some(last) if last.mod_revision == v.mod_revision => *last = v,
            _ => self.versions.push(v),
        }
    }

    /// Drops every version that no read above `revision` can see: all but the newest version
    /// at or below it, and that one too if it is a tombstone.
    fn compact(&mut self, revision: Revision) {
        let newer = self.versions.partition_point(|v| v.mod_revision <= revision);
        let Some(newest_old) = newer.checked_sub(1) else {
            return;
        };
        let keep_from = if self.versions[newest_old].is_live() {
            newest_old
        } else {
            newer
        };
        self.versions.drain(..keep_from);
    }
}

/// Serializable image of the latest state: live keys only, in key order. History is not kept;
/// a state restored from it has `compacted() == revision`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MvccSnapshot {
    /// The revision of the state.
    pub revision: Revision,
    /// Every live key at `revision`, in key order.
    pub kvs: Vec<KeyValue>,
}

/// An etcd-style multi-version key-value map. See the module docs for the revision rules.
#[derive(Clone, Debug)]
pub struct MvccState {
    keys: BTreeMap<String, KeyHistory>,
    /// Latest committed revision; >= 1.
    revision: Revision,
    /// Reads at or below this revision fail (except at the latest revision, which is always
    /// whole); invariant: `compacted <= revision`.
    compacted: Revision,
    /// Number of keys live at the latest revision.
    live: usize,
}

impl Default for MvccState {
    fn default() -> Self {
        MvccState::new()
    }
}

impl MvccState {
    /// An empty store at revision 1, as etcd.
    pub fn new() -> MvccState {
        MvccState {
            keys: BTreeMap::new(),
            revision: 1,
            compacted: 0,
            live: 0,
        }
    }

    /// The latest committed revision.
    pub fn revision(&self) -> Revision {
        self.revision
    }

    /// Reads at revisions at or below this fail with [`StoreError::Compacted`], except a read
    /// at the latest revision, which is always served (after a snapshot install or a compaction
    /// to the latest revision `compacted() == revision()`, and paged reads must still work).
    pub fn compacted(&self) -> Revision {
        self.compacted
    }

    /// Number of live keys.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether no key is live.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Applies one transaction atomically.
    ///
    /// Every op's guard is checked against the state before the transaction; if one fails the
    /// outcome is `Failed` for the first such op and nothing changes. Otherwise every op is
    /// applied under `revision() + 1`, in order (a later op on a key sees an earlier op's
    /// effect), one event per change is pushed to `events` in op order, and the outcome is
    /// `Committed` with each op's key as it was before the transaction. When nothing changed
    /// (only deletes of absent keys) the revision does not advance and no events are pushed.
    pub fn apply(&mut self, txn: &Txn, events: &mut Vec<Event>) -> TxnOutcome {
        // Check every guard before writing anything: that is what makes the txn atomic
        // without an undo log.
        for (i, op) in txn.ops.iter().enumerate() {
            let Some(guard) = op.guard() else { continue };
            let current = self.keys.get(op.key()).and_then(KeyHistory::latest);
            let holds = match guard {
                Precondition::Absent | Precondition::ModRevision(0) => current.is_none(),
                Precondition::Exists => current.is_some(),
                Precondition::ModRevision(rev) => current.is_some_and(|v| v.mod_revision == *rev),
            };
            if !holds {
                return TxnOutcome::Failed {
                    op: i,
                    current: current.map(|v| v.to_kv(op.key())),
                    revision: self.revision,
                };
            }
        }

        let before = self.revision;
        let rev = before + 1;
        let first_event = events.len();
        let mut prev = Vec::with_capacity(txn.ops.len());
        for op in &txn.ops {
            match op {
                Op::Put { key, value, .. } => {
                    let hist = match self.keys.get_mut(key.as_str()) {
                        Some(hist) => hist,
                        None => self.keys.entry(key.clone()).or_default(),
                    };
                    let txn_prev = hist.at(before).map(|v| v.to_kv(key));
                    // The key as the previous op left it: differs from `txn_prev` only when an
                    // earlier op of this txn touched the key.
                    let touched = hist.versions.last().is_some_and(|v| v.mod_revision == rev);
                    let op_prev = if touched {
                        hist.latest().map(|v| v.to_kv(key))
                    } else {
                        txn_prev.clone()
                    };
                    let (create_revision, version) = match hist.latest() {
                        Some(v) => (v.create_revision, v.version + 1),
                        // A new key, or a new incarnation after a delete.
                        None => {
                            self.live += 1;
                            (rev, 1)
                        }
                    };
                    hist.record(Version {
                        mod_revision: rev,
                        create_revision,
                        version,
                        value: Some(value.clone()),
                    });
                    events.push(Event {
                        kind: EventKind::Put,
                        kv: KeyValue {
                            key: key.clone(),
                            value: value.clone(),
                            create_revision,
                            mod_revision: rev,
                            version,
                        },
                        prev: op_prev,
                    });
                    prev.push(txn_prev);
                }
                Op::Delete { key, .. } => {
                    let Some(hist) = self.keys.get_mut(key.as_str()) else {
                        prev.push(None);
                        continue;
                    };
                    let txn_prev = hist.at(before).map(|v| v.to_kv(key));
                    if let Some(op_prev) = hist.latest().map(|v| v.to_kv(key)) {
                        hist.record(Version {
                            mod_revision: rev,
                            create_revision: 0,
                            version: 0,
                            value: None,
                        });
                        self.live -= 1;
                        events.push(Event {
                            kind: EventKind::Delete,
                            kv: KeyValue {
                                key: key.clone(),
                                value: Bytes::new(),
                                create_revision: 0,
                                mod_revision: rev,
                                version: 0,
                            },
                            prev: Some(op_prev),
                        });
                    }
                    prev.push(txn_prev);
                }
            }
        }

        let revision = if events.len() > first_event {
            self.revision = rev;
            rev
        } else {
            before
        };
        TxnOutcome::Committed { revision, prev }
    }

    /// The key at `revision` (the latest if `None` or `Some(0)`, as etcd), or `None` if it did
    /// not exist then.
    pub fn get(&self, key: &str, revision: Option<Revision>) -> Result<Option<KeyValue>, StoreError> {
        let at = self.read_revision(revision)?;
        Ok(self.keys.get(key).and_then(|hist| hist.at(at)).map(|v| v.to_kv(key)))
    }

    /// The keys under `req.prefix` at `req.revision` (the latest if `None` or `Some(0)`), in key
    /// order, at most `req.limit` of them (0 = all).
    ///
    /// When more keys remain, the result carries a continue token; passing it back reads the
    /// next page at the same revision, so the pages of one read form one consistent list even
    /// if writes land in between (until that revision is compacted).
    pub fn range(&self, req: &RangeRequest) -> Result<RangeResult, StoreError> {
        let (at, after) = match &req.continue_token {
            Some(token) => {
                let (rev, key) = decode_continue(token)?;
                if !key.starts_with(&req.prefix) {
                    return Err(StoreError::InvalidContinue {
                        reason: format!(
                            "the token resumes after {key:?}, which is not under the prefix {:?} \
                             of this request; pass the token with the request that returned it",
                            req.prefix
                        ),
                    });
                }
                (self.read_revision(Some(rev))?, Some(key))
            }
            None => (self.read_revision(req.revision)?, None),
        };

        let lower = match &after {
            Some(key) => Bound::Excluded(key.as_str()),
            None => Bound::Included(req.prefix.as_str()),
        };
        let matching = self
            .keys
            .range::<str, _>((lower, Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(&req.prefix))
            .filter_map(|(key, hist)| hist.at(at).map(|v| (key, v)));

        let mut kvs = Vec::new();
        let mut remaining = 0u64;
        for (key, v) in matching {
            if req.limit == 0 || kvs.len() < req.limit {
                kvs.push(v.to_kv(key));
            } else {
                remaining += 1;
            }
        }
        let continue_token = match kvs.last() {
            Some(last) if remaining > 0 => Some(encode_continue(at, &last.key)),
            _ => None,
        };
        Ok(RangeResult {
            kvs,
            revision: at,
            continue_token,
            remaining,
        })
    }

    /// Number of live keys under `prefix` at the latest revision. Walks those keys: cheap
    /// enough for metrics, not for a hot path.
    pub fn count(&self, prefix: &str) -> usize {
        self.keys
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(prefix))
            .filter(|(_, hist)| hist.latest().is_some())
            .count()
    }

    /// Forgets history at or below `revision`: each key keeps its newest version at or below
    /// it (so the state at `revision` stays readable internally) unless that is a tombstone;
    /// older versions go. Clamped to the latest revision; compacting backwards does nothing.
    pub fn compact(&mut self, revision: Revision) {
        let target = revision.min(self.revision);
        if target <= self.compacted {
            return;
        }
        self.keys.retain(|_, hist| {
            hist.compact(target);
            !hist.versions.is_empty()
        });
        self.compacted = target;
    }

    /// An image of the latest state (live keys only).
    pub fn snapshot(&self) -> MvccSnapshot {
        MvccSnapshot {
            revision: self.revision,
            kvs: self
                .keys
                .iter()
                .filter_map(|(key, hist)| hist.latest().map(|v| v.to_kv(key)))
                .collect(),
        }
    }

    /// The state a snapshot describes, with no history: `compacted() == revision()`.
    ///
    /// A snapshot arrives from disk or a peer, so it is not trusted to be tidy: a repeated key
    /// keeps its last entry, and the revision is raised to cover every entry's mod revision
    /// (and to at least 1).
    pub fn from_snapshot(s: MvccSnapshot) -> MvccState {
        let mut revision = s.revision.max(1);
        let mut keys = BTreeMap::new();
        for kv in s.kvs {
            revision = revision.max(kv.mod_revision);
            let version = Version {
                mod_revision: kv.mod_revision,
                create_revision: kv.create_revision,
                version: kv.version,
                value: Some(kv.value),
            };
            keys.insert(
                kv.key,
                KeyHistory {
                    versions: vec![version],
                },
            );
        }
        MvccState {
            live: keys.len(),
            keys,
            revision,
            compacted: revision,
        }
    }

    /// The revision a read is served at, or why it cannot be.
    fn read_revision(&self, requested: Option<Revision>) -> Result<Revision, StoreError> {
        match requested {
            None | Some(0) => Ok(self.revision),
            Some(r) if r > self.revision => Err(StoreError::FutureRevision {
                requested: r,
                latest: self.revision,
            }),
            Some(r) if r <= self.compacted && r != self.revision => Err(StoreError::Compacted {
                requested: r,
                // The latest revision is always readable, even when compacted == revision.
                oldest: (self.compacted + 1).min(self.revision),
            }),
            Some(r) => Ok(r),
        }
    }
}

/// A continue token that resumes a read at `revision` strictly after `last_key`, for callers
/// that stop inside a page (e.g. after filtering).
pub fn continue_token(revision: Revision, last_key: &str) -> String {
    encode_continue(revision, last_key)
}

/// A continue token: hex of the read's revision (8 bytes big-endian) followed by the last key
/// returned. Opaque to callers; the next page resumes strictly after that key.
fn encode_continue(revision: Revision, last_key: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut token = String::with_capacity(2 * (8 + last_key.len()));
    for byte in revision.to_be_bytes().iter().chain(last_key.as_bytes()) {
        token.push(char::from(HEX[usize::from(byte >> 4)]));
        token.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    token
}

fn decode_continue(token: &str) -> Result<(Revision, String), StoreError> {
    let invalid = |reason: &str| StoreError::InvalidContinue {
        reason: format!("{reason}; pass back the continue token of the previous page unchanged"),
    };
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let hex = token.as_bytes();
    if !hex.len().is_multiple_of(2) {
        return Err(invalid("the token has an odd number of hex digits"));
    }
    let bytes = hex
        .chunks_exact(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| invalid("the token is not hex"))?;
    if bytes.len() < 8 {
        return Err(invalid("the token is too short to hold a revision"));
    }
    let (rev, key) = bytes.split_at(8);
    let mut rev_be = [0u8; 8];
    rev_be.copy_from_slice(rev);
    let revision = Revision::from_be_bytes(rev_be);
    if revision == 0 {
        return Err(invalid("the token's revision is 0"));
    }
    let key = String::from_utf8(key.to_vec()).map_err(|_| invalid("the token's key is not UTF-8"))?;
    Ok((revision, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(s: &mut MvccState, key: &str, value: &str) -> Revision {
        let outcome = s.apply(&Txn::single(Op::put(key, value.to_owned())), &mut Vec::new());
        assert!(outcome.is_committed(), "{outcome:?}");
        outcome.revision()
    }

    fn del(s: &mut MvccState, key: &str) -> Revision {
        s.apply(&Txn::single(Op::delete(key)), &mut Vec::new()).revision()
    }

    fn value(s: &MvccState, key: &str, at: Option<Revision>) -> Option<String> {
        s.get(key, at)
            .expect("readable revision")
            .map(|kv| String::from_utf8(kv.value.to_vec()).expect("utf-8 test value"))
    }

    fn keys(r: &RangeResult) -> Vec<&str> {
        r.kvs.iter().map(|kv| kv.key.as_str()).collect()
    }

    #[test]
    fn an_empty_store_is_at_revision_one() {
        let s = MvccState::new();
        assert_eq!(s.revision(), 1);
        assert_eq!(s.compacted(), 0);
        assert!(s.is_empty());
        assert_eq!(s.get("/a", Some(1)), Ok(None));
    }

    #[test]
    fn revisions_advance_once_per_txn_and_ops_in_a_txn_share_one() {
        let mut s = MvccState::new();
        assert_eq!(put(&mut s, "/a", "1"), 2);
        let mut events = Vec::new();
        let outcome = s.apply(
            &Txn::new(vec![Op::put("/b", "2"), Op::put("/c", "3"), Op::delete("/a")]),
            &mut events,
        );
        assert_eq!(outcome.revision(), 3);
        assert_eq!(s.revision(), 3);
        let kinds: Vec<_> = events
            .iter()
            .map(|e| (e.kind, e.kv.key.as_str(), e.revision()))
            .collect();
        assert_eq!(
            kinds,
            [
                (EventKind::Put, "/b", 3),
                (EventKind::Put, "/c", 3),
                (EventKind::Delete, "/a", 3)
            ]
        );
        let deleted = &events[2];
        assert_eq!(deleted.kv.create_revision, 0);
        assert_eq!(deleted.kv.version, 0);
        assert!(deleted.kv.value.is_empty());
        assert_eq!(deleted.prev.as_ref().map(|kv| kv.mod_revision), Some(2));
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn deleting_absent_keys_changes_nothing_and_keeps_the_revision() {
        let mut s = MvccState::new();
        put(&mut s, "/a", "1");
        let mut events = Vec::new();
        let outcome = s.apply(
            &Txn::new(vec![Op::delete("/nope"), Op::delete("/nope/either")]),
            &mut events,
        );
        assert_eq!(
            outcome,
            TxnOutcome::Committed {
                revision: 2,
                prev: vec![None, None]
            }
        );
        assert!(events.is_empty());
        assert_eq!(s.revision(), 2);
    }

    #[test]
    fn create_if_absent_fails_on_an_existing_key_and_reports_its_current_state() {
        let mut s = MvccState::new();
        let created = s.apply(&Txn::single(Op::create("/a", "1")), &mut Vec::new());
        assert!(created.is_committed());
        put(&mut s, "/b", "x");

        let mut events = Vec::new();
        let outcome = s.apply(&Txn::single(Op::create("/a", "2")), &mut events);
        let TxnOutcome::Failed { op, current, revision } = outcome else {
            panic!("create of an existing key committed: {outcome:?}");
        };
        assert_eq!(op, 0);
        assert_eq!(revision, 3);
        let current = current.expect("the existing key");
        assert_eq!(current.value, Bytes::from_static(b"1"));
        assert_eq!(current.mod_revision, 2);
        assert!(events.is_empty());
        assert_eq!(value(&s, "/a", None).as_deref(), Some("1"));
    }

    #[test]
    fn cas_with_a_stale_mod_revision_fails_and_writes_nothing() {
        let mut s = MvccState::new();
        let first = put(&mut s, "/a", "1");
        let second = put(&mut s, "/a", "2");

        let stale = s.apply(&Txn::single(Op::put_if("/a", "3", first)), &mut Vec::new());
        assert!(matches!(
            stale,
            TxnOutcome::Failed { op: 0, current: Some(ref kv), revision: 3 } if kv.mod_revision == second
        ));
        assert_eq!(s.revision(), 3);
        assert_eq!(value(&s, "/a", None).as_deref(), Some("2"));

        let fresh = s.apply(&Txn::single(Op::put_if("/a", "3", second)), &mut Vec::new());
        assert_eq!(fresh.revision(), 4);
        let kv = s.get("/a", None).expect("latest").expect("present");
        assert_eq!((kv.version, kv.create_revision, kv.mod_revision), (3, 2, 4));
    }

    #[test]
    fn mod_revision_zero_guard_means_absent_and_exists_guard_needs_the_key() {
        let mut s = MvccState::new();
        let create = Txn::single(Op::put_if("/a", "1", 0));
        assert!(s.apply(&create, &mut Vec::new()).is_committed());
        assert!(!s.apply(&create, &mut Vec::new()).is_committed());

        let must_exist = |key: &str| {
            Txn::single(Op::Put {
                key: key.to_owned(),
                value: Bytes::from_static(b"2"),
                guard: Some(Precondition::Exists),
            })
        };
        assert!(s.apply(&must_exist("/a"), &mut Vec::new()).is_committed());
        assert_eq!(
            s.apply(&must_exist("/b"), &mut Vec::new()),
            TxnOutcome::Failed {
                op: 0,
                current: None,
                revision: 3
            }
        );
    }

    #[test]
    fn delete_if_mod_revision_deletes_only_at_that_revision() {
        let mut s = MvccState::new();
        let first = put(&mut s, "/a", "1");
        let second = put(&mut s, "/a", "2");

        let stale = s.apply(&Txn::single(Op::delete_if("/a", first)), &mut Vec::new());
        assert!(!stale.is_committed());
        assert_eq!(value(&s, "/a", None).as_deref(), Some("2"));

        let mut events = Vec::new();
        let fresh = s.apply(&Txn::single(Op::delete_if("/a", second)), &mut events);
        let TxnOutcome::Committed { revision, prev } = fresh else {
            panic!("delete at the current mod revision failed: {fresh:?}");
        };
        assert_eq!(revision, 4);
        assert_eq!(prev[0].as_ref().map(|kv| kv.mod_revision), Some(second));
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, EventKind::Delete);
        assert_eq!(value(&s, "/a", None), None);
        assert!(s.is_empty());

        let gone = s.apply(&Txn::single(Op::delete_if("/a", second)), &mut Vec::new());
        assert!(matches!(gone, TxnOutcome::Failed { current: None, .. }));
    }

    #[test]
    fn a_txn_is_atomic_when_a_later_guard_fails() {
        let mut s = MvccState::new();
        put(&mut s, "/taken", "x");
        let mut events = Vec::new();
        let outcome = s.apply(
            &Txn::new(vec![
                Op::put("/a", "1"),
                Op::delete("/taken"),
                Op::create("/taken", "y"),
            ]),
            &mut events,
        );
        assert!(matches!(outcome, TxnOutcome::Failed { op: 2, .. }));
        assert!(events.is_empty());
        assert_eq!(s.revision(), 2);
        assert_eq!(value(&s, "/a", None), None);
        assert_eq!(value(&s, "/taken", None).as_deref(), Some("x"));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn later_ops_on_a_key_in_one_txn_see_the_earlier_ones() {
        let mut s = MvccState::new();
        put(&mut s, "/a", "0");
        let mut events = Vec::new();
        let outcome = s.apply(
            &Txn::new(vec![
                Op::put("/a", "1"),
                Op::put("/a", "2"),
                Op::delete("/b"),
                Op::put("/b", "new"),
                Op::delete("/b"),
            ]),
            &mut events,
        );
        let TxnOutcome::Committed { revision, prev } = outcome else {
            panic!("unguarded txn failed: {outcome:?}");
        };
        assert_eq!(revision, 3);
        // `prev` is the state before the txn for every op ...
        assert_eq!(prev[0].as_ref().map(|kv| kv.version), Some(1));
        assert_eq!(prev[1].as_ref().map(|kv| kv.version), Some(1));
        assert_eq!(prev[3], None);
        // ... while each event's prev is the state the previous op left.
        assert_eq!(events.len(), 4);
        assert_eq!(events[1].prev.as_ref().map(|kv| kv.version), Some(2));
        assert_eq!(events[1].kv.version, 3);
        assert_eq!(events[3].kind, EventKind::Delete);
        assert_eq!(
            events[3].prev.as_ref().map(|kv| kv.value.clone()),
            Some(Bytes::from_static(b"new"))
        );

        let a = s.get("/a", None).expect("latest").expect("present");
        assert_eq!((a.version, a.create_revision, a.mod_revision), (3, 2, 3));
        assert_eq!(value(&s, "/a", None).as_deref(), Some("2"));
        assert_eq!(value(&s, "/a", Some(2)).as_deref(), Some("0"));
        assert_eq!(value(&s, "/b", None), None);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn recreate_after_delete_has_a_new_create_revision_and_version_one() {
        let mut s = MvccState::new();
        put(&mut s, "/a", "1");
        put(&mut s, "/a", "2");
        let deleted_at = del(&mut s, "/a");
        let recreated_at = put(&mut s, "/a", "3");

        let kv = s.get("/a", None).expect("latest").expect("present");
        assert_eq!(kv.create_revision, recreated_at);
        assert_eq!(kv.version, 1);
        assert_eq!(value(&s, "/a", Some(deleted_at)), None);
        let old = s.get("/a", Some(deleted_at - 1)).expect("readable").expect("present");
        assert_eq!((old.create_revision, old.version), (2, 2));
    }

    #[test]
    fn get_and_range_at_an_old_revision_see_the_old_state() {
        let mut s = MvccState::new();
        put(&mut s, "/p/a", "a1");
        let old = put(&mut s, "/p/b", "b1");
        put(&mut s, "/p/a", "a2");
        del(&mut s, "/p/b");
        put(&mut s, "/p/c", "c1");

        assert_eq!(value(&s, "/p/a", Some(old)).as_deref(), Some("a1"));
        assert_eq!(value(&s, "/p/b", Some(old)).as_deref(), Some("b1"));
        assert_eq!(value(&s, "/p/c", Some(old)), None);

        let then = s
            .range(&RangeRequest {
                prefix: "/p/".into(),
                revision: Some(old),
                ..RangeRequest::default()
            })
            .expect("readable");
        assert_eq!(keys(&then), ["/p/a", "/p/b"]);
        assert_eq!(then.revision, old);
        assert_eq!(then.kvs[0].value, Bytes::from_static(b"a1"));

        let now = s
            .range(&RangeRequest {
                prefix: "/p/".into(),
                ..RangeRequest::default()
            })
            .expect("readable");
        assert_eq!(keys(&now), ["/p/a", "/p/c"]);
        assert_eq!(now.revision, s.revision());
        assert_eq!((now.remaining, now.continue_token.as_ref()), (0, None));
    }

    #[test]
    fn range_matches_by_prefix_only() {
        let mut s = MvccState::new();
        for key in ["/a", "/a/x", "/a/y", "/ab", "/b", "/"] {
            put(&mut s, key, "v");
        }
        let under = |prefix: &str| {
            let r = s
                .range(&RangeRequest {
                    prefix: prefix.into(),
                    ..RangeRequest::default()
                })
                .expect("readable");
            keys(&r).into_iter().map(str::to_owned).collect::<Vec<_>>()
        };
        assert_eq!(under("/a/"), ["/a/x", "/a/y"]);
        assert_eq!(under("/a"), ["/a", "/a/x", "/a/y", "/ab"]);
        assert_eq!(under("").len(), 6);
        assert!(under("/c").is_empty());
        assert_eq!(s.count("/a"), 4);
        assert_eq!(s.count(""), 6);
    }

    #[test]
    fn range_limit_and_continue_page_through_everything_exactly_once_at_one_revision() {
        let mut s = MvccState::new();
        for i in 0..25 {
            put(&mut s, &format!("/p/{i:02}"), "v1");
        }
        put(&mut s, "/q/outside", "v");
        let listed_at = s.revision();

        let mut seen = Vec::new();
        let mut req = RangeRequest {
            prefix: "/p/".into(),
            limit: 7,
            ..RangeRequest::default()
        };
        let mut pages = 0;
        loop {
            let page = s.range(&req).expect("readable");
            pages += 1;
            assert_eq!(page.revision, listed_at);
            assert!(page.kvs.len() <= 7);
            assert_eq!(page.remaining as usize, 25 - seen.len() - page.kvs.len());
            seen.extend(page.kvs.iter().map(|kv| {
                assert_eq!(kv.value, Bytes::from_static(b"v1"), "a later write leaked in");
                kv.key.clone()
            }));
            let Some(token) = page.continue_token else {
                break;
            };
            // Writes between pages must not show: new keys, changed values, deletes.
            put(&mut s, "/p/00a", "new");
            put(&mut s, "/p/99", "new");
            for kv in &page.kvs {
                put(&mut s, &kv.key, "v2");
            }
            del(&mut s, "/p/24");
            req.continue_token = Some(token);
            req.revision = Some(1); // ignored when a token is given
        }
        assert_eq!(pages, 4);
        let expected: Vec<String> = (0..25).map(|i| format!("/p/{i:02}")).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn bad_continue_tokens_are_rejected() {
        let mut s = MvccState::new();
        put(&mut s, "/p/a", "1");
        put(&mut s, "/p/b", "2");
        let first = s
            .range(&RangeRequest {
                prefix: "/p/".into(),
                limit: 1,
                ..RangeRequest::default()
            })
            .expect("readable");
        let good = first.continue_token.expect("one key remains");
        for bad in [
            "zz".to_owned(),
            "abc".to_owned(),
            "00ff".to_owned(),
            "0000000000000000".to_owned(),
            encode_continue(2, "/elsewhere"),
            format!("{}ff", &good[..16]),
        ] {
            let result = s.range(&RangeRequest {
                prefix: "/p/".into(),
                continue_token: Some(bad.clone()),
                ..RangeRequest::default()
            });
            assert!(
                matches!(result, Err(StoreError::InvalidContinue { .. })),
                "{bad}: {result:?}"
            );
        }
        let future = s.range(&RangeRequest {
            prefix: "/p/".into(),
            continue_token: Some(encode_continue(99, "/p/a")),
            ..RangeRequest::default()
        });
        assert!(matches!(future, Err(StoreError::FutureRevision { .. })));
    }

    #[test]
    fn reading_a_compacted_revision_fails_and_names_the_oldest_available() {
        let mut s = MvccState::new();
        put(&mut s, "/a", "1"); // 2
        put(&mut s, "/a", "2"); // 3
        put(&mut s, "/b", "x"); // 4
        del(&mut s, "/b"); // 5
        put(&mut s, "/a", "3"); // 6

        // A paged read that started before the compaction cannot continue past it.
        let page = s
            .range(&RangeRequest {
                prefix: "/".into(),
                limit: 1,
                revision: Some(4),
                ..RangeRequest::default()
            })
            .expect("readable");
        assert!(page.continue_token.is_some());

        s.compact(4);
        assert_eq!(s.compacted(), 4);
        let compacted = |requested| Some(StoreError::Compacted { requested, oldest: 5 });
        assert_eq!(s.get("/a", Some(3)).err(), compacted(3));
        assert_eq!(s.get("/a", Some(4)).err(), compacted(4));
        assert_eq!(
            s.range(&RangeRequest {
                prefix: "/".into(),
                revision: Some(2),
                ..RangeRequest::default()
            })
            .err(),
            compacted(2)
        );
        assert_eq!(
            s.range(&RangeRequest {
                prefix: "/".into(),
                continue_token: page.continue_token,
                ..RangeRequest::default()
            })
            .err(),
            compacted(4)
        );
        // Reads above the compaction still see the right history.
        assert_eq!(value(&s, "/a", Some(5)).as_deref(), Some("2"));
        assert_eq!(value(&s, "/a", Some(6)).as_deref(), Some("3"));
        assert_eq!(value(&s, "/b", Some(5)), None);

        // Compacting past the latest revision is clamped; the latest state stays readable,
        // and /b, deleted at or below the compaction, is gone entirely.
        s.compact(100);
        assert_eq!(s.compacted(), s.revision());
        assert_eq!(value(&s, "/a", Some(s.revision())).as_deref(), Some("3"));
        assert_eq!(
            s.get("/a", Some(5)),
            Err(StoreError::Compacted {
                requested: 5,
                oldest: 6
            })
        );
        assert!(!s.keys.contains_key("/b"));
        assert_eq!(s.keys.get("/a").map(|h| h.versions.len()), Some(1));
    }

    #[test]
    fn compaction_keeps_versions_readable_above_it() {
        let mut s = MvccState::new();
        put(&mut s, "/a", "1"); // 2
        put(&mut s, "/b", "1"); // 3
        del(&mut s, "/a"); // 4
        put(&mut s, "/a", "2"); // 5
        put(&mut s, "/b", "2"); // 6
        s.compact(3);
        assert_eq!(value(&s, "/a", Some(4)), None);
        assert_eq!(value(&s, "/a", Some(5)).as_deref(), Some("2"));
        assert_eq!(value(&s, "/b", Some(4)).as_deref(), Some("1"));
        s.compact(4);
        assert_eq!(value(&s, "/a", Some(5)).as_deref(), Some("2"));
        assert_eq!(value(&s, "/b", Some(5)).as_deref(), Some("1"));
        assert_eq!(s.keys["/a"].versions.len(), 1);
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn reading_a_future_revision_fails() {
        let mut s = MvccState::new();
        put(&mut s, "/a", "1");
        let future = Some(StoreError::FutureRevision {
            requested: 3,
            latest: 2,
        });
        assert_eq!(s.get("/a", Some(3)).err(), future);
        assert_eq!(
            s.range(&RangeRequest {
                revision: Some(3),
                ..RangeRequest::default()
            })
            .err(),
            future
        );
        assert_eq!(value(&s, "/a", Some(0)).as_deref(), Some("1"));
    }

    #[test]
    fn snapshot_round_trip_keeps_live_keys_and_revision_but_no_history() {
        let mut s = MvccState::new();
        put(&mut s, "/a", "1");
        put(&mut s, "/a", "2");
        put(&mut s, "/b", "1");
        put(&mut s, "/c", "1");
        del(&mut s, "/c");

        let snap = s.snapshot();
        assert_eq!(snap.revision, 6);
        let bytes = bincode::serialize(&snap).expect("serializable");
        let decoded: MvccSnapshot = bincode::deserialize(&bytes).expect("decodable");
        assert_eq!(decoded, snap);

        let r = MvccState::from_snapshot(decoded);
        assert_eq!(r.revision(), 6);
        assert_eq!(r.compacted(), 6);
        assert_eq!(r.len(), 2);
        assert_eq!(r.get("/a", None), s.get("/a", None));
        assert_eq!(r.get("/b", None), s.get("/b", None));
        assert_eq!(r.get("/c", None), Ok(None));
        assert!(matches!(r.get("/a", Some(3)), Err(StoreError::Compacted { .. })));
        assert_eq!(r.snapshot(), snap);

        // A paged read at the restored revision works: its pages are at the latest revision.
        let page = r
            .range(&RangeRequest {
                limit: 1,
                ..RangeRequest::default()
            })
            .expect("readable");
        let rest = r
            .range(&RangeRequest {
                continue_token: page.continue_token,
                ..RangeRequest::default()
            })
            .expect("the latest revision stays readable");
        assert_eq!(keys(&rest), ["/b"]);

        // Writes continue from the restored revision, keeping each key's counters.
        let mut r = r;
        assert_eq!(put(&mut r, "/a", "3"), 7);
        let a = r.get("/a", None).expect("latest").expect("present");
        assert_eq!((a.create_revision, a.version), (2, 3));
    }

    #[test]
    fn an_untidy_snapshot_restores_without_panicking() {
        let kv = |key: &str, rev| KeyValue {
            key: key.into(),
            value: Bytes::from_static(b"v"),
            create_revision: rev,
            mod_revision: rev,
            version: 1,
        };
        let r = MvccState::from_snapshot(MvccSnapshot {
            revision: 0,
            kvs: vec![kv("/b", 9), kv("/a", 3), kv("/b", 4)],
        });
        assert_eq!(r.revision(), 9);
        assert_eq!(r.len(), 2);
        assert_eq!(r.get("/b", None).expect("latest").map(|kv| kv.mod_revision), Some(4));
    }

    #[test]
    fn len_and_count_follow_live_keys() {
        let mut s = MvccState::new();
        put(&mut s, "/p/a", "1");
        put(&mut s, "/p/b", "1");
        put(&mut s, "/p/a", "2");
        put(&mut s, "/q", "1");
        assert_eq!((s.len(), s.count("/p/"), s.count("/q")), (3, 2, 1));
        del(&mut s, "/p/a");
        assert_eq!((s.len(), s.count("/p/")), (2, 1));
        put(&mut s, "/p/a", "3");
        assert_eq!((s.len(), s.count("/p/")), (3, 2));
        s.compact(s.revision());
        assert_eq!((s.len(), s.count("/p/")), (3, 2));
    }
}
