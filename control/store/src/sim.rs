//! An in-process network between store nodes, for tests: it can delay and drop messages and
//! partition nodes one way or both ways. Messages go through the same encoding as on TCP,
//! so what crosses it is what would cross the wire.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use parking_lot::{Mutex, RwLock};
use rand::Rng;

use crate::rpc::{Handler, Request, Response, Transport, TransportError};

#[derive(Default)]
struct Faults {
    /// (from, to): messages from `from` to `to` are lost.
    blocked: HashSet<(String, String)>,
    delay: Duration,
    /// Probability that any one message is lost.
    drop_rate: f64,
}

#[derive(Default)]
struct SimInner {
    handlers: RwLock<HashMap<String, Arc<dyn Handler>>>,
    faults: Mutex<Faults>,
}

/// The simulated network. Clone to share.
#[derive(Clone, Default)]
pub struct SimNetwork {
    inner: Arc<SimInner>,
}

impl SimNetwork {
    pub fn new() -> SimNetwork {
        SimNetwork::default()
    }

    /// The transport a node at `from` sends with.
    pub fn transport(&self, from: &str) -> Arc<dyn Transport> {
        Arc::new(SimTransport {
            from: from.to_string(),
            net: self.clone(),
        })
    }

    /// Makes `addr` reachable, served by `handler`.
    pub fn register(&self, addr: &str, handler: Arc<dyn Handler>) {
        self.inner.handlers.write().insert(addr.to_string(), handler);
    }

    /// Makes `addr` unreachable, as if its process died.
    pub fn unregister(&self, addr: &str) {
        self.inner.handlers.write().remove(addr);
    }

    /// Loses every message from `from` to `to` (one way).
    pub fn block(&self, from: &str, to: &str) {
        self.inner
            .faults
            .lock()
            .blocked
            .insert((from.to_string(), to.to_string()));
    }

    /// Cuts `addr` off from `others` in both directions.
    pub fn isolate(&self, addr: &str, others: &[&str]) {
        for other in others {
            self.block(addr, other);
            self.block(other, addr);
        }
    }

    /// Removes every partition.
    pub fn heal(&self) {
        self.inner.faults.lock().blocked.clear();
    }

    pub fn set_delay(&self, delay: Duration) {
        self.inner.faults.lock().delay = delay;
    }

    pub fn set_drop_rate(&self, rate: f64) {
        self.inner.faults.lock().drop_rate = rate.clamp(0.0, 1.0);
    }

    /// Whether a message from `from` to `to` gets through, and after how long.
    fn route(&self, from: &str, to: &str) -> (bool, Duration) {
        let f = self.inner.faults.lock();
        let blocked = f.blocked.contains(&(from.to_string(), to.to_string()));
        let dropped = f.drop_rate > 0.0 && rand::thread_rng().gen_bool(f.drop_rate);
        (!(blocked || dropped), f.delay)
    }
}

struct SimTransport {
    from: String,
    net: SimNetwork,
}

/// A lost message looks like a timeout to the sender; wait at most this long for it so that
/// tests with partitions stay quick.
const LOST_MESSAGE_WAIT: Duration = Duration::from_millis(100);

impl Transport for SimTransport {
    fn call(
        &self,
        addr: &str,
        req: Request,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Response, TransportError>> {
        let net = self.net.clone();
        let from = self.from.clone();
        let to = addr.to_string();
        Box::pin(async move {
            let lost = || TransportError::Timeout {
                addr: to.clone(),
                millis: timeout.as_millis() as u64,
            };
            let (delivered, delay) = net.route(&from, &to);
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if !delivered {
                tokio::time::sleep(timeout.min(LOST_MESSAGE_WAIT)).await;
                return Err(lost());
            }
            let handler = net.inner.handlers.read().get(&to).cloned();
            let Some(handler) = handler else {
                return Err(TransportError::Unreachable {
                    addr: to.clone(),
                    reason: "connection refused".into(),
                });
            };
            // Through the wire encoding, as on TCP.
            let bytes = bincode::serialize(&req).expect("requests serialize");
            let req: Request = bincode::deserialize(&bytes).map_err(|e| TransportError::Unreachable {
                addr: to.clone(),
                reason: format!("undecodable request: {e}"),
            })?;
            let resp = match tokio::time::timeout(timeout, handler.handle(req)).await {
                Ok(r) => r,
                Err(_) => return Err(lost()),
            };
            let (back, _) = net.route(&to, &from);
            if !back {
                return Err(lost());
            }
            let bytes = bincode::serialize(&resp).expect("responses serialize");
            bincode::deserialize(&bytes).map_err(|e| TransportError::Unreachable {
                addr: to.clone(),
                reason: format!("undecodable response: {e}"),
            })
        })
    }
}
