//! Pre-fetching pushed tags in the background, so the pipeline a push triggers finds the image
//! warm.
//!
//! Bounded twice: a queue of [`QUEUE`] jobs (a burst beyond it is dropped and counted: those
//! tags are fetched on their first lookup instead, never answered wrongly) and [`WORKERS`]
//! fetches at once, so a registry-wide push storm cannot flood the registry with dimsum's own
//! requests. Fetches go through the service's caches, so a lookup of the same image at the same
//! time shares them (single flight). Every pushed tag is fetched, not only recently looked-up
//! repositories: a pipeline's first run would otherwise miss, and what is fetched is what a push
//! announced (one manifest and one config `GET` each), bounded by the cache's size.

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc};

use crate::reload::Live;

/// Jobs waiting at most.
pub const QUEUE: usize = 1024;
/// Fetches at once.
pub const WORKERS: usize = 4;

/// One tag to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The account.
    pub account: String,
    /// The repository.
    pub repository: String,
    /// The pushed tag.
    pub tag: String,
}

/// The handle transports offer jobs to; the workers stop when every handle is dropped.
#[derive(Debug, Clone)]
pub struct Prefetcher {
    queue: mpsc::Sender<Job>,
    live: Arc<Live>,
}

impl Prefetcher {
    /// Starts the dispatcher on the current runtime; each job runs against the service `live`
    /// holds when it starts.
    pub fn start(live: Arc<Live>) -> Prefetcher {
        let (queue, mut jobs) = mpsc::channel::<Job>(QUEUE);
        let workers = Arc::new(Semaphore::new(WORKERS));
        let service = live.clone();
        tokio::spawn(async move {
            while let Some(job) = jobs.recv().await {
                let Ok(permit) = workers.clone().acquire_owned().await else {
                    return;
                };
                let service = service.current();
                tokio::spawn(async move {
                    let result = service
                        .prefetch(&job.account, &job.repository, &job.tag)
                        .await;
                    let outcome = match result {
                        Ok(()) => "ok",
                        Err(e) => {
                            tracing::info!(account = %job.account, repository = %job.repository, tag = %job.tag, error = %e, "pre-fetch failed");
                            "error"
                        }
                    };
                    service.metrics().prefetch(&job.account, outcome);
                    drop(permit);
                });
            }
        });
        Prefetcher { queue, live }
    }

    /// Queues `job` without waiting; a full queue drops it (counted).
    pub fn offer(&self, job: Job) {
        if let Err(mpsc::error::TrySendError::Full(job) | mpsc::error::TrySendError::Closed(job)) =
            self.queue.try_send(job)
        {
            self.live
                .current()
                .metrics()
                .prefetch(&job.account, "dropped");
        }
    }
}
