//! Watches: a bounded window of recent events fed by the apply path, and prefix watchers that
//! read it, woken by a fan-out task that keeps per-watcher work off the apply path.
//!
//! ```text
//!  apply path ── publish ──► window: immutable chunks, one per publish ◄── Watcher::try_next
//!                  │ notify (O(1))                                            ▲ wake
//!                  ▼                                                          │
//!             fan-out task ── new events: which prefix groups match? ── send ─┘
//! ```
//!
//! * `publish` wraps its events in one immutable chunk, appends it and trims old chunks:
//!   O(events), nothing per watcher or per group, and a critical section of a push and a pop.
//! * Readers (watchers and the fan-out) hold the window lock only to binary-search and clone a
//!   bounded number of chunk `Arc`s; they filter outside it. So however many watchers read, and
//!   however far behind they are, `publish` waits for at most a few short critical sections.
//! * Watchers on the same prefix share a *group*. The fan-out task matches new events against
//!   the groups and wakes only the groups that matched; each woken watcher reads the window
//!   itself, so delivery never waits on the fan-out: `try_next` sees an event as soon as
//!   `publish` returns.
//! * A watcher whose cursor falls behind the window's floor has lost events only if an event under
//!   its prefix left the window unread. Each group remembers the revisions at which its prefix
//!   matched, so a watcher idle on a quiet prefix survives the window rolling over on other
//!   prefixes' traffic instead of being told to relist; a watcher that really missed an event gets
//!   [`StoreError::Compacted`]. When the fan-out cannot tell (it lagged a whole window behind,
//!   or after `reset`) the answer is the conservative one, `Compacted`.
//!
//! The fan-out task is spawned by [`WatchHub::new`] when a tokio runtime is current, and otherwise
//! lazily by the first [`Watcher::next`] (which always runs inside a runtime); it is respawned the
//! same way if its runtime shut down. `publish` never needs a runtime. The task stops once the hub
//! and all its watchers are dropped.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::{Mutex, RwLock};
use tokio::runtime::Handle;
use tokio::sync::{watch, Notify};

use crate::error::StoreError;
use crate::kv::{Event, Revision};

/// Up to this many prefix groups the fan-out tests every group against an event's key; above
/// it, it looks up each prefix of the key instead (O(key length), whatever the number of groups).
const SCAN_ALL_GROUPS_UP_TO: usize = 16;

/// A reader clones at most this many chunks per hold of the window lock, bounding how long it
/// can keep `publish` waiting.
const CHUNKS_PER_LOCK: usize = 64;

/// A batch of events for one watcher.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchBatch {
    /// Matching events in revision order (op order within one revision).
    pub events: Vec<Arc<Event>>,
    /// The latest published revision when the batch was taken: once the watcher has drained,
    /// everything up to it has been delivered (for bookmarks).
    pub revision: Revision,
}

/// The event window and the watchers on it. Cheap to clone (the clones share one hub).
#[derive(Clone)]
pub struct WatchHub {
    shared: Arc<Shared>,
}

/// A watch on every key under one prefix. Dropping it ends the watch.
pub struct Watcher {
    shared: Arc<Shared>,
    group: Arc<Group>,
    wake: watch::Receiver<Revision>,
    /// The next revision to deliver: every matching event below it has been delivered.
    cursor: Revision,
    /// Set once the watcher has fallen behind; returned by every later call.
    failed: Option<StoreError>,
    /// Chunks taken from the window, kept to reuse the allocation.
    taken: Vec<Arc<Chunk>>,
}

struct Shared {
    /// Lock order: `window`, then `groups`, then a group's `track`; in practice no code path holds
    /// two of them except a watcher's gap check (window, then track).
    window: RwLock<Window>,
    /// Prefix groups by prefix. Written when a watch starts or ends; read by the fan-out.
    groups: RwLock<HashMap<String, GroupEntry>>,
    /// The fan-out has matched every event with revision <= this against the groups (stored
    /// while `groups` is read-locked, after the groups' tracks were updated).
    examined: AtomicU64,
    watchers: AtomicUsize,
    fan_out: Arc<FanOutSignal>,
    /// Serializes fan-out passes (a respawned task may briefly overlap the one it replaces).
    pass: Mutex<PassState>,
}

/// The events of one `publish`, never changed once in the window.
struct Chunk {
    /// Non-empty, in revision order.
    events: Vec<Arc<Event>>,
    /// The revision of the last event.
    last: Revision,
}

/// The window of recent events.
///
/// Invariant: `chunks` holds exactly the published events with revision in (floor, latest], in
/// order, at most `capacity` of them; a revision's events are never split across chunks (see
/// `publish`), so trimming whole chunks drops whole revisions.
struct Window {
    chunks: VecDeque<Arc<Chunk>>,
    /// Events in `chunks`.
    len: usize,
    capacity: usize,
    /// The newest revision whose events are no longer (all) in the window.
    floor: Revision,
    latest: Revision,
    /// The revision of the last `reset` (or the start revision): history at or below it is gone
    /// for every watcher, whatever its prefix.
    reset_floor: Revision,
    /// Counts resets, so the fan-out notices one even if revisions did not move forward.
    resets: u64,
}

/// What a reader took from the window in one hold of its lock.
struct Taken {
    /// Every event up to this revision is in the chunks taken (or was below the cursor).
    upto: Revision,
    /// Whether the reader reached the end of the window.
    complete: bool,
    floor: Revision,
}

struct FanOutSignal {
    notify: Notify,
    /// Whether a fan-out task is alive (cleared by the task's guard when it ends or its runtime
    /// drops it).
    running: AtomicBool,
    spawning: Mutex<()>,
}

#[derive(Default)]
struct PassState {
    resets_seen: u64,
    passes: u64,
}

struct GroupEntry {
    group: Arc<Group>,
    watchers: usize,
}

/// The watchers on one prefix.
struct Group {
    prefix: String,
    /// Bumped (to the latest examined revision) when a published event matches the prefix.
    wake: watch::Sender<Revision>,
    track: Mutex<MatchTrack>,
}

/// Which revisions had events under a group's prefix, so a watcher behind the window's floor can
/// tell whether it actually missed one.
///
/// Covers revisions in (`known_after`, `Shared::examined`]: the group did not exist before.
struct MatchTrack {
    known_after: Revision,
    /// Matching revisions above the window's floor as of the last update, ascending.
    matched: VecDeque<Revision>,
    /// The newest matching revision known (or, after a gap the fan-out could not see, assumed)
    /// to have left the window.
    lost: Revision,
    /// The fan-out pass that last queued this group for a wake-up.
    queued_in_pass: u64,
}

impl MatchTrack {
    fn prune(&mut self, floor: Revision) {
        while let Some(&rev) = self.matched.front() {
            if rev > floor {
                break;
            }
            self.lost = self.lost.max(rev);
            self.matched.pop_front();
        }
    }

    fn record(&mut self, rev: Revision, floor: Revision) {
        self.prune(floor);
        if self.matched.back() != Some(&rev) {
            self.matched.push_back(rev);
        }
    }

    /// Events up to `floor` left the window without being matched: assume one matched.
    fn lose_through(&mut self, floor: Revision) {
        self.prune(floor);
        self.lost = self.lost.max(floor);
    }

    fn newest_match_at_or_below(&self, floor: Revision) -> Revision {
        let upto = self.matched.partition_point(|&rev| rev <= floor);
        let newest_kept = upto.checked_sub(1).map_or(0, |i| self.matched[i]);
        self.lost.max(newest_kept)
    }
}

impl WatchHub {
    /// A hub keeping at most `capacity` events (at least 1), for a state now at
    /// `start_revision`: events after it will be published, and watches must start after it.
    ///
    /// Spawns the fan-out task if a tokio runtime is current; otherwise the first
    /// [`Watcher::next`] does.
    pub fn new(capacity: usize, start_revision: Revision) -> WatchHub {
        let shared = Arc::new(Shared {
            window: RwLock::new(Window {
                chunks: VecDeque::new(),
                len: 0,
                capacity: capacity.max(1),
                floor: start_revision,
                latest: start_revision,
                reset_floor: start_revision,
                resets: 0,
            }),
            groups: RwLock::new(HashMap::new()),
            examined: AtomicU64::new(start_revision),
            watchers: AtomicUsize::new(0),
            fan_out: Arc::new(FanOutSignal {
                notify: Notify::new(),
                running: AtomicBool::new(false),
                spawning: Mutex::new(()),
            }),
            pass: Mutex::new(PassState::default()),
        });
        if let Ok(runtime) = Handle::try_current() {
            spawn_fan_out(&shared, &runtime);
        }
        WatchHub { shared }
    }

    /// Appends committed events and records that the latest revision is now `revision`, even if
    /// `events` is empty. The caller guarantees revision order, and that each call carries every
    /// event of its revisions: events at or below the previous `latest()` are dropped (and
    /// assert in debug builds).
    ///
    /// Called on the apply path: O(events), never blocks on watchers beyond a few short critical
    /// sections, and needs no runtime. The fan-out task is signalled and wakes matching watchers
    /// on its own time.
    pub fn publish(&self, revision: Revision, events: Vec<Event>) {
        let mut events: Vec<Arc<Event>> = events.into_iter().map(Arc::new).collect();
        let sorted = events.is_sorted_by_key(|e| e.revision());
        debug_assert!(sorted, "events published out of revision order");
        if !sorted {
            // Readers binary-search by revision; keep op order within a revision.
            events.sort_by_key(|e| e.revision());
        }
        let trimmed;
        let appended;
        {
            let mut w = self.shared.window.write();
            // A reader that has read up to `latest` counts every revision up to it as complete, so
            // later events at or below it would bypass readers: they are a caller bug, dropped.
            let stale = events.partition_point(|e| e.revision() <= w.latest);
            debug_assert_eq!(stale, 0, "events at or below revision {} published late", w.latest);
            events.drain(..stale);
            appended = !events.is_empty();
            if let Some(last) = events.last().map(|e| e.revision()) {
                w.latest = w.latest.max(last);
                w.len += events.len();
                w.chunks.push_back(Arc::new(Chunk { events, last }));
            }
            w.latest = w.latest.max(revision);
            trimmed = w.trim();
        }
        // Freed outside the lock.
        drop(trimmed);
        if appended {
            self.shared.fan_out.notify.notify_one();
        }
    }

    /// After a snapshot install the history is gone: drops the window and sets floor and latest
    /// to `revision`. Watchers whose cursor is at or below it get `Compacted` on their next poll
    /// (they are woken for it).
    pub fn reset(&self, revision: Revision) {
        let dropped = {
            let mut w = self.shared.window.write();
            w.floor = revision;
            w.latest = revision;
            w.reset_floor = revision;
            w.resets += 1;
            w.len = 0;
            std::mem::take(&mut w.chunks)
        };
        drop(dropped);
        self.shared.fan_out.notify.notify_one();
    }

    /// Watches keys under `prefix` from revision `start` (inclusive): every matching event with
    /// revision >= `start`, in order, with no gaps or duplicates. `start == 0` means from the
    /// next revision. Fails with `Compacted` if `start <= floor()`: relist, then watch from the
    /// list's revision + 1.
    pub fn watch(&self, prefix: &str, start: Revision) -> Result<Watcher, StoreError> {
        let cursor = {
            let w = self.shared.window.read();
            if start == 0 {
                w.latest + 1
            } else if start <= w.floor {
                return Err(StoreError::Compacted {
                    requested: start,
                    oldest: w.floor + 1,
                });
            } else {
                start
            }
        };
        let group = {
            let mut groups = self.shared.groups.write();
            let entry = groups.entry(prefix.to_owned()).or_insert_with(|| GroupEntry {
                group: Arc::new(Group {
                    prefix: prefix.to_owned(),
                    wake: watch::Sender::new(0),
                    // Read under the groups lock, which the fan-out holds while it advances
                    // `examined`: every later pass sees this group.
                    track: Mutex::new(MatchTrack {
                        known_after: self.shared.examined.load(Ordering::Acquire),
                        matched: VecDeque::new(),
                        lost: 0,
                        queued_in_pass: 0,
                    }),
                }),
                watchers: 0,
            });
            entry.watchers += 1;
            Arc::clone(&entry.group)
        };
        self.shared.watchers.fetch_add(1, Ordering::Relaxed);
        Ok(Watcher {
            shared: Arc::clone(&self.shared),
            wake: group.wake.subscribe(),
            group,
            cursor,
            failed: None,
            taken: Vec::new(),
        })
    }

    /// Number of live watchers.
    pub fn watcher_count(&self) -> usize {
        self.shared.watchers.load(Ordering::Relaxed)
    }

    /// The latest published revision.
    pub fn latest(&self) -> Revision {
        self.shared.window.read().latest
    }

    /// The newest revision whose events are no longer all in the window; watches must start
    /// after it.
    pub fn floor(&self) -> Revision {
        self.shared.window.read().floor
    }
}

impl fmt::Debug for WatchHub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = self.shared.window.read();
        f.debug_struct("WatchHub")
            .field("floor", &w.floor)
            .field("latest", &w.latest)
            .field("events", &w.len)
            .field("capacity", &w.capacity)
            .field("watchers", &self.watcher_count())
            .finish()
    }
}

impl Window {
    /// Drops the oldest chunks until at most `capacity` events remain; returns them so that the
    /// caller frees them outside the lock.
    fn trim(&mut self) -> Vec<Arc<Chunk>> {
        let mut dropped = Vec::new();
        while self.len > self.capacity {
            let Some(chunk) = self.chunks.pop_front() else {
                break;
            };
            self.len -= chunk.events.len();
            self.floor = self.floor.max(chunk.last);
            dropped.push(chunk);
        }
        dropped
    }

    /// Clones into `out` up to [`CHUNKS_PER_LOCK`] chunks holding events at or above `from`.
    fn take_from(&self, from: Revision, out: &mut Vec<Arc<Chunk>>) -> Taken {
        let start = self.chunks.partition_point(|c| c.last < from);
        let end = (start + CHUNKS_PER_LOCK).min(self.chunks.len());
        out.extend(self.chunks.range(start..end).cloned());
        let complete = end == self.chunks.len();
        Taken {
            upto: if complete {
                self.latest
            } else {
                self.chunks[end - 1].last
            },
            complete,
            floor: self.floor,
        }
    }
}

impl Watcher {
    /// Waits for the next non-empty batch of matching events.
    ///
    /// Fails with `Compacted` when events under this prefix left the window before this watcher
    /// read them (it fell behind): relist and watch again. Cancel-safe: dropping the future
    /// loses nothing. Must be polled inside a tokio runtime (else `Stopped`).
    pub async fn next(&mut self) -> Result<WatchBatch, StoreError> {
        ensure_fan_out(&self.shared)?;
        loop {
            // Mark wake-ups seen before looking, so that one arriving after the look is not lost.
            self.wake.borrow_and_update();
            if let Some(batch) = self.try_next()? {
                return Ok(batch);
            }
            if self.wake.changed().await.is_err() {
                // Unreachable while we hold the group, which owns the sender; fail rather than spin.
                return Err(StoreError::Stopped("the watch hub is gone".into()));
            }
        }
    }

    /// Takes whatever matching events are in the window now without waiting: `Ok(None)` if
    /// there are none.
    pub fn try_next(&mut self) -> Result<Option<WatchBatch>, StoreError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let mut events = Vec::new();
        loop {
            let taken = {
                let w = self.shared.window.read();
                if self.cursor <= w.floor {
                    let examined = self.shared.examined.load(Ordering::Acquire);
                    match skip_quiet_gap(self.cursor, &self.group, examined, &w) {
                        Ok(cursor) => self.cursor = cursor,
                        Err(err) => {
                            self.failed = Some(err.clone());
                            return Err(err);
                        }
                    }
                }
                w.take_from(self.cursor, &mut self.taken)
            };
            let prefix = self.group.prefix.as_str();
            for chunk in self.taken.drain(..) {
                events.extend(
                    chunk
                        .events
                        .iter()
                        .filter(|e| e.revision() >= self.cursor && e.kv.key.starts_with(prefix))
                        .cloned(),
                );
            }
            // Everything up to `upto` has been looked at (a watch from a future revision keeps
            // its cursor).
            self.cursor = self.cursor.max(taken.upto + 1);
            if taken.complete {
                return Ok((!events.is_empty()).then_some(WatchBatch {
                    events,
                    revision: taken.upto,
                }));
            }
        }
    }

    /// The latest published revision (for bookmarks: once the watcher has drained, everything up
    /// to it has been delivered).
    pub fn progress(&self) -> Revision {
        self.shared.window.read().latest
    }

    /// The prefix this watcher watches.
    pub fn prefix(&self) -> &str {
        &self.group.prefix
    }
}

/// A watcher's `cursor` is at or below the window's floor: returns the cursor moved up past the
/// floor if no event under the group's prefix left the window in between, else `Compacted`.
/// `examined` is `Shared::examined`, loaded before the group's track is locked.
fn skip_quiet_gap(cursor: Revision, group: &Group, examined: Revision, w: &Window) -> Result<Revision, StoreError> {
    let compacted = StoreError::Compacted {
        requested: cursor,
        oldest: w.floor + 1,
    };
    if cursor <= w.reset_floor {
        return Err(compacted);
    }
    // The group's record covers (known_after, examined]; it must cover [cursor, floor]. When the
    // fan-out has not examined up to the floor, events it never saw left the window, and it will
    // itself count them as lost: failing now gives the same answer sooner.
    if examined < w.floor {
        return Err(compacted);
    }
    let track = group.track.lock();
    if cursor <= track.known_after || track.newest_match_at_or_below(w.floor) >= cursor {
        return Err(compacted);
    }
    Ok(w.floor + 1)
}

impl fmt::Debug for Watcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watcher")
            .field("prefix", &self.group.prefix)
            .field("cursor", &self.cursor)
            .field("failed", &self.failed)
            .finish()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let mut groups = self.shared.groups.write();
        if let Some(entry) = groups.get_mut(&self.group.prefix) {
            if Arc::ptr_eq(&entry.group, &self.group) {
                entry.watchers -= 1;
                if entry.watchers == 0 {
                    groups.remove(&self.group.prefix);
                }
            }
        }
        self.shared.watchers.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Let the fan-out task see that the hub is gone and end.
        self.fan_out.notify.notify_one();
    }
}

impl Shared {
    /// Matches events published since the last pass (up to [`CHUNKS_PER_LOCK`] chunks; it
    /// re-signals itself for the rest) against the groups and wakes the groups that matched, or
    /// all of them after a gap it could not see or a reset.
    fn fan_out_pass(&self) {
        let mut state = self.pass.lock();
        let examined = self.examined.load(Ordering::Acquire);
        let mut chunks = Vec::new();
        let (taken, gap) = {
            let w = self.window.read();
            let gap = w.resets != state.resets_seen || examined < w.floor;
            if !gap && w.latest == examined {
                return;
            }
            state.resets_seen = w.resets;
            let from = if gap { w.floor } else { examined };
            (w.take_from(from + 1, &mut chunks), gap)
        };
        if !taken.complete {
            self.fan_out.notify.notify_one();
        }
        state.passes += 1;
        let pass = state.passes;
        let floor = taken.floor;
        let from = if gap { floor } else { examined };

        let mut to_wake: Vec<Arc<Group>> = Vec::new();
        {
            let groups = self.groups.read();
            let mut queue = |group: &Arc<Group>, track: &mut MatchTrack| {
                if track.queued_in_pass != pass {
                    track.queued_in_pass = pass;
                    to_wake.push(Arc::clone(group));
                }
            };
            if gap {
                for entry in groups.values() {
                    let mut track = entry.group.track.lock();
                    track.lose_through(floor);
                    queue(&entry.group, &mut track);
                }
            }
            let new_events = chunks
                .iter()
                .flat_map(|c| c.events.iter())
                .filter(|e| e.revision() > from);
            for event in new_events {
                let key = event.kv.key.as_str();
                let rev = event.revision();
                let mut hit = |group: &Arc<Group>| {
                    let mut track = group.track.lock();
                    track.record(rev, floor);
                    queue(group, &mut track);
                };
                if groups.len() <= SCAN_ALL_GROUPS_UP_TO {
                    for entry in groups.values() {
                        if key.starts_with(entry.group.prefix.as_str()) {
                            hit(&entry.group);
                        }
                    }
                } else {
                    let prefix_ends = key.char_indices().map(|(i, _)| i);
                    for end in prefix_ends.chain(std::iter::once(key.len())) {
                        if let Some(entry) = groups.get(&key[..end]) {
                            hit(&entry.group);
                        }
                    }
                }
            }
            self.examined.store(taken.upto, Ordering::Release);
        }
        for group in to_wake {
            group.wake.send_replace(taken.upto);
        }
    }
}

/// Ends a fan-out task's claim on running when the task ends or its runtime drops it.
struct RunningGuard(Arc<FanOutSignal>);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::Release);
    }
}

fn ensure_fan_out(shared: &Arc<Shared>) -> Result<(), StoreError> {
    if shared.fan_out.running.load(Ordering::Acquire) {
        return Ok(());
    }
    let runtime = Handle::try_current().map_err(|_| {
        StoreError::Stopped("watch fan-out needs a tokio runtime: poll Watcher::next inside one".into())
    })?;
    spawn_fan_out(shared, &runtime);
    Ok(())
}

fn spawn_fan_out(shared: &Arc<Shared>, runtime: &Handle) {
    let signal = &shared.fan_out;
    let _one_spawner = signal.spawning.lock();
    if signal.running.load(Ordering::Acquire) {
        return;
    }
    signal.running.store(true, Ordering::Release);
    let guard = RunningGuard(Arc::clone(signal));
    runtime.spawn(fan_out_task(Arc::downgrade(shared), Arc::clone(signal), guard));
}

/// Holds only a weak reference, so that dropping the hub and its watchers ends the task.
async fn fan_out_task(shared: Weak<Shared>, signal: Arc<FanOutSignal>, _running: RunningGuard) {
    loop {
        // A first pass catches up on anything published while no task ran.
        match shared.upgrade() {
            Some(shared) => shared.fan_out_pass(),
            None => return,
        }
        signal.notify.notified().await;
        // One pass takes a bounded amount of work; yield so a busy apply path cannot pin a worker.
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::{EventKind, KeyValue};
    use bytes::Bytes;
    use futures::FutureExt;

    fn put(key: &str, rev: Revision) -> Event {
        Event {
            kind: EventKind::Put,
            kv: KeyValue {
                key: key.to_owned(),
                value: Bytes::from_static(b"v"),
                create_revision: rev,
                mod_revision: rev,
                version: 1,
            },
            prev: None,
        }
    }

    /// Publishes one put per key, each at the next revision; returns the last revision.
    fn publish_puts(hub: &WatchHub, keys: &[&str]) -> Revision {
        let mut rev = hub.latest();
        for key in keys {
            rev += 1;
            hub.publish(rev, vec![put(key, rev)]);
        }
        rev
    }

    fn revs(batch: &WatchBatch) -> Vec<Revision> {
        batch.events.iter().map(|e| e.revision()).collect()
    }

    fn keys(batch: &WatchBatch) -> Vec<&str> {
        batch.events.iter().map(|e| e.kv.key.as_str()).collect()
    }

    /// Yields until the fan-out task has examined everything published.
    async fn fan_out_caught_up(hub: &WatchHub) {
        while hub.shared.examined.load(Ordering::Acquire) < hub.latest() {
            tokio::task::yield_now().await;
        }
    }

    /// Drains the watcher until it has delivered `up_to`.
    async fn collect(w: &mut Watcher, up_to: Revision) -> Vec<Revision> {
        let mut seen = Vec::new();
        while seen.last().is_none_or(|&rev| rev < up_to) {
            let batch = w.next().await.expect("watcher kept up");
            seen.extend(revs(&batch));
        }
        seen
    }

    #[test]
    fn the_hub_is_shareable_and_watchers_move_into_tasks() {
        fn send_sync<T: Send + Sync>(_: &T) {}
        fn send<T: Send>(_: &T) {}
        let hub = WatchHub::new(10, 1);
        send_sync(&hub);
        let mut w = hub.watch("/", 0).expect("from now");
        send(&w);
        send(&w.next());
    }

    #[tokio::test]
    async fn a_watch_from_a_past_revision_in_the_window_gets_every_event_in_order() {
        let hub = WatchHub::new(100, 10);
        publish_puts(&hub, &["/a/1", "/a/2", "/a/3"]);
        // One revision with several events, in op order.
        hub.publish(14, vec![put("/a/4", 14), put("/a/5", 14)]);
        // A revision that changed nothing under watch still moves `latest`.
        hub.publish(15, vec![]);

        let mut w = hub.watch("/a/", 12).expect("12 is in the window");
        let batch = w.next().await.expect("events");
        assert_eq!(revs(&batch), [12, 13, 14, 14]);
        assert_eq!(keys(&batch), ["/a/2", "/a/3", "/a/4", "/a/5"]);
        assert_eq!(batch.revision, 15);
        assert_eq!(w.try_next(), Ok(None));

        publish_puts(&hub, &["/a/6", "/a/7"]);
        assert_eq!(collect(&mut w, 17).await, [16, 17]);
        assert_eq!(w.progress(), 17);
        assert_eq!(w.try_next(), Ok(None));
    }

    #[tokio::test]
    async fn a_watcher_far_behind_gets_everything_in_one_batch_across_several_lock_holds() {
        let hub = WatchHub::new(10_000, 1);
        let mut w = hub.watch("/a/", 2).expect("in window");
        let keys: Vec<String> = (0..3 * CHUNKS_PER_LOCK + 5)
            .map(|i| format!("/{}/{i}", if i % 2 == 0 { "a" } else { "b" }))
            .collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let last = publish_puts(&hub, &keys);
        let batch = w.try_next().expect("in window").expect("events");
        let expected: Vec<Revision> = (2..=last).step_by(2).collect();
        assert_eq!(revs(&batch), expected);
        assert_eq!(batch.revision, last);
        assert_eq!(w.try_next(), Ok(None));
    }

    #[tokio::test]
    async fn a_watch_from_a_future_revision_starts_there() {
        let hub = WatchHub::new(100, 1);
        let mut w = hub.watch("/", 4).expect("future is fine");
        publish_puts(&hub, &["/a", "/b"]);
        assert_eq!(w.try_next(), Ok(None));
        publish_puts(&hub, &["/c", "/d"]);
        assert_eq!(collect(&mut w, 5).await, [4, 5]);
    }

    #[tokio::test]
    async fn a_watch_from_zero_starts_at_the_next_revision() {
        let hub = WatchHub::new(100, 1);
        publish_puts(&hub, &["/a", "/b"]);
        let mut w = hub.watch("/", 0).expect("from now");
        assert_eq!(w.try_next(), Ok(None));
        publish_puts(&hub, &["/c"]);
        assert_eq!(collect(&mut w, 4).await, [4]);
    }

    #[tokio::test]
    async fn a_watch_gets_only_keys_under_its_prefix() {
        let hub = WatchHub::new(100, 1);
        let mut pods = hub.watch("/registry/pods/", 2).expect("in window");
        let mut all = hub.watch("", 2).expect("in window");
        let last = publish_puts(
            &hub,
            &[
                "/registry/pods/a",
                "/registry/nodes/n1",
                "/registry/podsecurity",
                "/registry/pods/b",
            ],
        );
        let batch = pods.next().await.expect("events");
        assert_eq!(keys(&batch), ["/registry/pods/a", "/registry/pods/b"]);
        assert_eq!(collect(&mut all, last).await, [2, 3, 4, 5]);
    }

    #[test]
    fn a_watch_from_a_compacted_revision_is_refused() {
        let hub = WatchHub::new(3, 10);
        assert_eq!(
            hub.watch("/", 10).err(),
            Some(StoreError::Compacted {
                requested: 10,
                oldest: 11
            })
        );
        publish_puts(&hub, &["/a", "/b", "/c", "/d", "/e"]); // 11..=15, keeps 13..=15
        assert_eq!(hub.floor(), 12);
        assert_eq!(
            hub.watch("/", 12).err(),
            Some(StoreError::Compacted {
                requested: 12,
                oldest: 13
            })
        );
        let w = hub.watch("/", 13).expect("13 is in the window");
        assert_eq!(hub.watcher_count(), 1);
        drop(w);
        assert_eq!(hub.watcher_count(), 0);
    }

    #[test]
    fn the_window_trims_whole_revisions() {
        let hub = WatchHub::new(3, 1);
        hub.publish(2, vec![put("/a", 2), put("/b", 2)]);
        hub.publish(3, vec![put("/a", 3), put("/b", 3)]);
        // 4 events > 3: revision 2 goes entirely, although one of its events would fit.
        assert_eq!(hub.floor(), 2);
        let mut w = hub.watch("/", 3).expect("3 is whole");
        let batch = w.try_next().expect("in window").expect("events");
        assert_eq!(revs(&batch), [3, 3]);
        // A revision bigger than the whole window goes too.
        hub.publish(4, (0..5).map(|_| put("/c", 4)).collect());
        assert_eq!((hub.floor(), hub.latest()), (4, 4));
    }

    #[tokio::test]
    async fn a_slow_watcher_that_falls_behind_the_window_gets_compacted() {
        let hub = WatchHub::new(4, 1);
        let mut slow = hub.watch("/a/", 0).expect("from now");
        let mut fast = hub.watch("/a/", 0).expect("from now");
        for i in 0..3 {
            let last = publish_puts(&hub, &[&format!("/a/{i}")]);
            assert_eq!(collect(&mut fast, last).await, [last]);
        }
        let last = publish_puts(&hub, &["/a/3", "/a/4", "/a/5", "/a/6"]);
        assert_eq!(collect(&mut fast, last).await, [5, 6, 7, 8]);

        let expected = StoreError::Compacted {
            requested: 2,
            oldest: 5,
        };
        assert_eq!(slow.next().await, Err(expected.clone()));
        // It stays failed: the client must relist.
        assert_eq!(slow.try_next(), Err(expected));
    }

    #[tokio::test]
    async fn an_idle_watcher_on_a_quiet_prefix_survives_the_window_rolling_over() {
        let hub = WatchHub::new(4, 1);
        let mut quiet = hub.watch("/quiet/", 0).expect("from now");
        let mut busy = hub.watch("/busy/", 0).expect("from now");
        for i in 0..20 {
            let rev = publish_puts(&hub, &[&format!("/busy/{i}")]);
            assert_eq!(collect(&mut busy, rev).await, [rev]);
            // In production the fan-out runs alongside; here it needs the test task to yield.
            fan_out_caught_up(&hub).await;
        }
        assert!(hub.floor() > 2, "the window rolled over");

        let rev = publish_puts(&hub, &["/quiet/x"]);
        let batch = quiet.next().await.expect("nothing under /quiet/ was lost");
        assert_eq!(revs(&batch), [rev]);
    }

    #[tokio::test]
    async fn a_watcher_on_one_prefix_is_not_woken_by_other_prefixes() {
        let hub = WatchHub::new(100, 1);
        let mut a = hub.watch("/a/", 0).expect("from now");
        let mut b = hub.watch("/b/", 0).expect("from now");
        publish_puts(&hub, &["/b/1", "/b/2"]);
        fan_out_caught_up(&hub).await;

        assert!(b.wake.has_changed().expect("group alive"));
        assert!(!a.wake.has_changed().expect("group alive"));
        assert_eq!(a.try_next(), Ok(None));
        assert!(a.next().now_or_never().is_none(), "nothing pending for /a/");
        let batch = b.try_next().expect("in window").expect("events");
        assert_eq!(revs(&batch), [2, 3]);
    }

    #[tokio::test]
    async fn reset_compacts_watchers_behind_it_and_later_watches_continue() {
        let hub = WatchHub::new(100, 1);
        let mut behind = hub.watch("/", 0).expect("from now");
        publish_puts(&hub, &["/a", "/b"]);
        hub.reset(50);
        assert_eq!((hub.floor(), hub.latest()), (50, 50));
        assert_eq!(
            behind.next().await,
            Err(StoreError::Compacted {
                requested: 2,
                oldest: 51
            })
        );
        assert!(hub.watch("/", 50).is_err());
        let mut after = hub.watch("/", 51).expect("after the reset");
        let last = publish_puts(&hub, &["/c"]);
        assert_eq!(collect(&mut after, last).await, [51]);
    }

    #[test]
    fn publish_needs_no_runtime_and_next_starts_the_fan_out_lazily() {
        let hub = WatchHub::new(100, 1);
        let mut w = hub.watch("/", 0).expect("from now");
        let publisher = hub.clone();
        std::thread::spawn(move || publish_puts(&publisher, &["/a", "/b"]))
            .join()
            .expect("publisher thread");
        assert!(!hub.shared.fan_out.running.load(Ordering::Acquire));

        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            assert_eq!(collect(&mut w, 3).await, [2, 3]);
            // Woken by the lazily started fan-out, not found by the first look.
            let waiting = tokio::spawn(async move { collect(&mut w, 4).await });
            tokio::task::yield_now().await;
            publish_puts(&hub, &["/c"]);
            assert_eq!(waiting.await.expect("watcher task"), [4]);
        });
        drop(runtime);
    }

    #[tokio::test]
    async fn dropping_watchers_removes_their_groups() {
        let hub = WatchHub::new(100, 1);
        let a1 = hub.watch("/a", 0).expect("from now");
        let a2 = hub.watch("/a", 0).expect("from now");
        let b = hub.watch("/b", 0).expect("from now");
        assert_eq!(hub.watcher_count(), 3);
        assert_eq!(hub.shared.groups.read().len(), 2);
        drop(a1);
        assert_eq!(hub.shared.groups.read().len(), 2);
        drop(a2);
        drop(b);
        assert_eq!(hub.watcher_count(), 0);
        assert!(hub.shared.groups.read().is_empty());
    }

    #[tokio::test]
    async fn many_prefix_groups_are_matched_by_key_prefix_lookup() {
        let hub = WatchHub::new(1000, 1);
        let mut watchers: Vec<Watcher> = (0..40)
            .map(|i| hub.watch(&format!("/n/{i}/"), 0).expect("from now"))
            .collect();
        assert!(hub.shared.groups.read().len() > SCAN_ALL_GROUPS_UP_TO);
        let keys: Vec<String> = (0..40).map(|i| format!("/n/{i}/pod")).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        publish_puts(&hub, &keys);
        for (i, w) in watchers.iter_mut().enumerate() {
            let batch = w.next().await.expect("events");
            assert_eq!(keys_of(&batch), [format!("/n/{i}/pod")]);
        }

        fn keys_of(batch: &WatchBatch) -> Vec<String> {
            batch.events.iter().map(|e| e.kv.key.clone()).collect()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_thousand_watchers_each_receive_every_event() {
        const WATCHERS: usize = 2_000;
        const EVENTS: u64 = 300;
        let hub = WatchHub::new(EVENTS as usize, 1);
        let prefixes = ["", "/", "/registry/", "/registry/pods/"];
        let tasks: Vec<_> = (0..WATCHERS)
            .map(|i| {
                let mut w = hub.watch(prefixes[i % prefixes.len()], 2).expect("from 2");
                tokio::spawn(async move { collect(&mut w, EVENTS + 1).await })
            })
            .collect();
        // Publish from a plain thread, as an apply path outside the runtime would.
        let publisher = hub.clone();
        let published = std::thread::spawn(move || {
            for rev in 2..=EVENTS + 1 {
                let key = format!("/registry/pods/p{rev}");
                publisher.publish(rev, vec![put(&key, rev)]);
            }
        });
        let expected: Vec<Revision> = (2..=EVENTS + 1).collect();
        for task in tasks {
            assert_eq!(task.await.expect("watcher task"), expected);
        }
        published.join().expect("publisher thread");
        assert_eq!(hub.watcher_count(), 0);
    }
}
