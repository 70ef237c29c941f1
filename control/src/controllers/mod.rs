//! The controller manager: level-triggered controllers fed by shared informers and a
//! de-duplicating work queue with per-key backoff. They run next to the API server (on the
//! store's leader) and go through the same API operations remote clients use — list-watch
//! and compare-and-swap writes — so they could run out of process too.

pub mod client;
pub mod deployment;
pub mod endpoints;
pub mod events;
pub mod gc;
pub mod informer;
pub mod job;
pub mod namespace;
pub mod node_lifecycle;
pub mod queue;
pub mod replicaset;

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use crate::apiserver::ApiState;

/// Workers per controller (Kubernetes runs 5 for ReplicaSets and Deployments).
pub const WORKERS: usize = 8;

/// A level-triggered controller, as its workers see it: a queue of keys and
/// `reconcile(key)`, which brings that one object's world to what it declares.
pub(crate) trait Reconcile: Send + Sync + 'static {
    const NAME: &'static str;
    fn queue(&self) -> &queue::WorkQueue;
    /// The caches that must be filled before the first reconcile.
    fn informers(&self) -> Vec<&informer::Informer>;
    fn reconcile<'a>(
        &'a self,
        key: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<(), crate::apiserver::status::ApiError>>;
}

/// Runs `WORKERS` workers over a controller's queue. The queue never hands one key to two
/// workers; a failed key comes back after its backoff.
pub(crate) fn spawn_workers<C: Reconcile>(tasks: &mut JoinSet<()>, c: Arc<C>) {
    for _ in 0..WORKERS {
        let c = c.clone();
        tasks.spawn(async move {
            for i in c.informers() {
                i.wait_synced().await;
            }
            loop {
                let key = c.queue().get().await;
                match c.reconcile(&key).await {
                    Ok(()) => c.queue().forget(&key),
                    Err(e) => {
                        tracing::debug!(controller = C::NAME, %key, error = %e.message, "reconcile failed; backing off");
                        c.queue().add_rate_limited(&key);
                    }
                }
                c.queue().done(&key);
            }
        });
    }
}

/// Settings of the controllers.
#[derive(Clone, Debug, Default)]
pub struct ControllerConfig {
    pub node_lifecycle: node_lifecycle::NodeLifecycleConfig,
    /// First delay before a Job recreates a failed pod (doubling per failure); 10 s if zero.
    pub job_backoff: Duration,
    /// Run the scheduler with the controllers (on the leader).
    pub scheduler: bool,
}

/// Starts the controllers (and, if asked, the scheduler) against the API state. Every task
/// they run lives in the returned set: dropping it stops them all.
pub fn start(api: Arc<ApiState>, cfg: &ControllerConfig) -> JoinSet<()> {
    let mut tasks = JoinSet::new();
    if cfg.scheduler {
        let store = api.store.clone();
        tasks.spawn(async move {
            // The scheduler rebuilds its view from list-watch each time it starts, so a new
            // leader neither loses a reservation that was never bound nor binds a pod twice
            // (bindings are compare-and-swap on the pod's revision).
            if let Err(e) = gantry_scheduler::run(store, gantry_scheduler::SchedulerOptions::default()).await {
                tracing::error!(error = %e, "the scheduler stopped");
            }
        });
    }
    let client = client::LocalClient::new(api);
    let pods = informer::Informer::start(&mut tasks, client.clone(), "", "pods");
    let replicasets = informer::Informer::start(&mut tasks, client.clone(), "apps", "replicasets");
    let rcs = informer::Informer::start(&mut tasks, client.clone(), "", "replicationcontrollers");
    for sets in [replicasets.clone(), rcs] {
        replicaset::ReplicaSetController::start(&mut tasks, client.clone(), pods.clone(), sets);
    }
    deployment::DeploymentController::start(&mut tasks, client.clone(), replicasets.clone());
    endpoints::EndpointsController::start(&mut tasks, client.clone(), pods.clone());
    gc::GarbageCollector::start(&mut tasks, client.clone(), &[pods.clone(), replicasets]);
    namespace::NamespaceController::start(&mut tasks, client.clone());
    let backoff = if cfg.job_backoff.is_zero() {
        Duration::from_secs(10)
    } else {
        cfg.job_backoff
    };
    job::JobController::start(&mut tasks, client.clone(), pods.clone(), backoff);
    node_lifecycle::NodeLifecycleController::start(&mut tasks, client, pods, cfg.node_lifecycle.clone());
    tasks
}

/// Runs the controllers while this member leads the store, stopping them when it does not:
/// only one controller manager acts at a time, and it fails over with the leader.
pub async fn run_while_leader(api: Arc<ApiState>, cfg: ControllerConfig) {
    loop {
        while !api.store.is_leader() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tracing::info!("this member leads: starting the controllers");
        let tasks = start(api.clone(), &cfg);
        while api.store.is_leader() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tracing::info!("leadership lost: stopping the controllers");
        drop(tasks);
    }
}
