//! The ingestion worker: runs in `serve` (by default) and in `passerelle worker`. It wakes when
//! this process commits events, polls the `pending_work` queue for events committed by other
//! replicas, and sweeps every workspace now and then so nothing waits forever on a lost mark.

use crate::{Profiles, ingest::INGEST_WORK, service::Result};
use kernel::WorkspaceId;
use platform::work_queue;
use std::time::Duration;
use tokio::{sync::watch, task::JoinSet};

const POLL: Duration = Duration::from_millis(200);
const SWEEP_EVERY: u32 = 50;

impl Profiles {
    /// Runs until `shutdown` turns true, processing up to `concurrency` workspaces at a time.
    /// Errors are logged and retried on the next round.
    pub async fn run_ingestion_worker(self, concurrency: usize, mut shutdown: watch::Receiver<bool>) {
        let mut round: u32 = 0;
        loop {
            let sweep = round.is_multiple_of(SWEEP_EVERY);
            round = round.wrapping_add(1);
            if let Err(error) = self.process_queued_until(sweep, concurrency, &shutdown).await {
                tracing::error!(error = %error, "ingestion worker round failed");
            }
            tokio::select! {
                _ = self.inner.work_ready.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }

    /// One round: every workspace with queued work (or every workspace when sweeping),
    /// each drained completely, `concurrency` at a time.
    pub async fn process_queued(&self, sweep: bool, concurrency: usize) -> Result<usize> {
        let (_never, running) = watch::channel(false);
        self.process_queued_until(sweep, concurrency, &running).await
    }

    /// Like [`Profiles::process_queued`], `concurrency` workspaces at a time, each on its own
    /// task (so the parsing and resolving of several workspaces use several cores), stopping
    /// between chunks once `shutdown` is true, so a pod asked to stop with a large backlog
    /// stops within one chunk. Work left behind is found again by the next sweep of any worker.
    /// A workspace that fails is logged and does not stop the others; the round then returns
    /// the first failure.
    async fn process_queued_until(
        &self,
        sweep: bool,
        concurrency: usize,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<usize> {
        let workspaces = work_queue::marked(self.db().connection(), INGEST_WORK, sweep).await?;
        let mut workspaces = workspaces.into_iter();
        let mut running = JoinSet::new();
        let mut processed = 0;
        let mut first_error = None;
        loop {
            while running.len() < concurrency.max(1) {
                let Some(workspace) = workspaces.next() else { break };
                let (this, shutdown) = (self.clone(), shutdown.clone());
                running.spawn(async move { (workspace, this.drain_workspace(workspace, &shutdown).await) });
            }
            let error = match running.join_next().await {
                None => break,
                Some(Ok((_, Ok(n)))) => {
                    processed += n;
                    continue;
                }
                Some(Ok((workspace, Err(error)))) => {
                    tracing::error!(workspace = %workspace, error = %error, "processing a workspace failed");
                    error
                }
                Some(Err(error)) => crate::ProfilesError::Internal(Box::new(error)),
            };
            first_error.get_or_insert(error);
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(processed),
        }
    }

    async fn drain_workspace(
        &self,
        workspace: WorkspaceId,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<usize> {
        // The mark goes first: events committed from now on set it again.
        work_queue::take(self.db().connection(), INGEST_WORK, workspace).await?;
        let scope = self.tenancy().queued_work_scope(workspace).await?;
        let outcome = self.process_pending_until(&scope, shutdown).await?;
        if outcome.processed + outcome.suppressed > 0 {
            tracing::debug!(
                workspace = %workspace,
                processed = outcome.processed,
                suppressed = outcome.suppressed,
                merges = outcome.merges,
                "events processed"
            );
        }
        Ok(outcome.processed)
    }
}
