//! A client for a store cluster reached over the peer protocol: it sends writes and reads
//! to any member and follows redirects to the leader. Used by the CLI, tests and benchmarks.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::error::StoreError;
use crate::kv::{RangeRequest, RangeResult, Txn, TxnOutcome};
use crate::rpc::{NodeStatus, Request, Response, TcpTransport, Transport};
use crate::types::WriteBatch;

/// Talks to a store cluster through any of `endpoints`.
#[derive(Clone)]
pub struct StoreClient {
    transport: Arc<dyn Transport>,
    endpoints: Vec<String>,
    /// The endpoint that answered last (usually the leader).
    preferred: Arc<Mutex<String>>,
    timeout: Duration,
}

impl StoreClient {
    pub fn new(endpoints: Vec<String>) -> StoreClient {
        StoreClient::with_transport(Arc::new(TcpTransport::new()), endpoints)
    }

    pub fn with_transport(transport: Arc<dyn Transport>, endpoints: Vec<String>) -> StoreClient {
        let first = endpoints.first().cloned().unwrap_or_default();
        StoreClient {
            transport,
            endpoints,
            preferred: Arc::new(Mutex::new(first)),
            timeout: Duration::from_secs(10),
        }
    }

    pub fn with_timeout(mut self, timeout: Duration) -> StoreClient {
        self.timeout = timeout;
        self
    }

    /// Sends `make()` to the preferred endpoint, then to the leader it names or to the other
    /// endpoints, until one answers with something other than NotLeader or unreachable.
    async fn call<T>(
        &self,
        make: impl Fn() -> Request,
        take: impl Fn(Response) -> Option<Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let mut candidates: Vec<String> = vec![self.preferred.lock().clone()];
        candidates.extend(self.endpoints.iter().cloned());
        let mut last = StoreError::Unreachable {
            addr: self.endpoints.join(","),
            reason: "no endpoint answered".into(),
        };
        let mut tried = 0;
        while let Some(addr) = candidates.first().cloned() {
            candidates.remove(0);
            tried += 1;
            if tried > 3 * self.endpoints.len() + 3 {
                break;
            }
            match self.transport.call(&addr, make(), self.timeout).await {
                Ok(resp) => match take(resp) {
                    Some(Err(StoreError::NotLeader {
                        leader_addr: Some(leader),
                        ..
                    })) => {
                        candidates.insert(0, leader);
                    }
                    Some(Err(e @ StoreError::NotLeader { .. })) => {
                        last = e;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Some(r) => {
                        *self.preferred.lock() = addr;
                        return r;
                    }
                    None => {
                        return Err(StoreError::BadRequest(format!(
                            "{addr} answered with the wrong response type"
                        )));
                    }
                },
                // Unreachable: try the next endpoint. Timeouts are returned: the request may
                // have been carried out.
                Err(e @ crate::rpc::TransportError::Unreachable { .. }) => last = e.into(),
                Err(e) => return Err(e.into()),
            }
        }
        Err(last)
    }

    /// Commits transactions (see [`crate::StoreNode::write_batch`]).
    pub async fn write_batch(&self, txns: Vec<Txn>) -> Result<Vec<TxnOutcome>, StoreError> {
        self.call(
            || Request::Write(WriteBatch { txns: txns.clone() }),
            |r| match r {
                Response::Write(r) => Some(r.map(|w| w.outcomes)),
                _ => None,
            },
        )
        .await
    }

    pub async fn write(&self, txn: Txn) -> Result<TxnOutcome, StoreError> {
        let mut v = self.write_batch(vec![txn]).await?;
        v.pop()
            .ok_or_else(|| StoreError::BadRequest("empty write result".into()))
    }

    pub async fn range(&self, req: RangeRequest, linearizable: bool) -> Result<RangeResult, StoreError> {
        self.call(
            || Request::Range {
                req: req.clone(),
                linearizable,
            },
            |r| match r {
                Response::Range(r) => Some(r),
                _ => None,
            },
        )
        .await
    }

    /// The status of one endpoint (no redirect).
    pub async fn status(&self, addr: &str) -> Result<NodeStatus, StoreError> {
        match self.transport.call(addr, Request::Status, self.timeout).await? {
            Response::Status(s) => Ok(s),
            _ => Err(StoreError::BadRequest(format!(
                "{addr} answered with the wrong response type"
            ))),
        }
    }
}
