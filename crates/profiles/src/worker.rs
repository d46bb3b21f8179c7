//! The ingestion worker: runs in `serve` (by default) and in `passerelle worker`. It wakes when
//! this process commits events, polls the `pending_work` queue for events committed by other
//! replicas, and sweeps every workspace now and then so nothing waits forever on a lost mark.

use crate::{ProcessOutcome, Profiles, ingest::INGEST_WORK, service::Result};
use kernel::WorkspaceId;
use platform::{metrics::Metrics, work_queue};
use std::time::Duration;
use tokio::{sync::watch, task::JoinSet};

const POLL: Duration = Duration::from_millis(200);
const SWEEP_EVERY: u32 = 50;

impl Profiles {
    /// Runs until `shutdown` turns true, processing up to `concurrency` workspaces at a time.
    /// Errors are logged and retried on the next round.
    /// Each round's work is reported into `metrics`.
    pub async fn run_ingestion_worker(
        self,
        concurrency: usize,
        mut shutdown: watch::Receiver<bool>,
        metrics: Metrics,
    ) {
        let mut round: u32 = 0;
        loop {
            let sweep = round.is_multiple_of(SWEEP_EVERY);
            round = round.wrapping_add(1);
            match self.process_queued_until(sweep, concurrency, &shutdown, Some(&metrics)).await {
                // Chunks report as they go; a round that found nothing means nothing waits.
                Ok(outcome) if outcome.processed + outcome.suppressed == 0 => metrics.ingestion_lag.set(0.0),
                Ok(_) => {}
                Err(error) => tracing::error!(error = %error, "ingestion worker round failed"),
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
        Ok(self.process_queued_until(sweep, concurrency, &running, None).await?.processed)
    }

    /// What a chunk did, into the metrics: counted at once, so a long drain shows progress,
    /// and the lag is the wait of the chunk's oldest event (chunks are taken oldest first).
    pub(crate) fn report_chunk(&self, outcome: &ProcessOutcome, metrics: &Metrics) {
        metrics.events_processed.with_label_values(&["processed"]).inc_by(outcome.processed as u64);
        metrics.events_processed.with_label_values(&["suppressed"]).inc_by(outcome.suppressed as u64);
        if let Some(at) = outcome.oldest_received_at {
            let wait = (self.now() - at).to_std().map_or(0.0, |wait| wait.as_secs_f64());
            metrics.ingestion_lag.set(wait);
        }
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
        metrics: Option<&Metrics>,
    ) -> Result<ProcessOutcome> {
        let workspaces = work_queue::marked(self.db().connection(), INGEST_WORK, sweep).await?;
        let mut workspaces = workspaces.into_iter();
        let mut running = JoinSet::new();
        let mut total = ProcessOutcome::default();
        let mut first_error = None;
        loop {
            while running.len() < concurrency.max(1) {
                let Some(workspace) = workspaces.next() else { break };
                let (this, shutdown, metrics) = (self.clone(), shutdown.clone(), metrics.cloned());
                running.spawn(async move {
                    (workspace, this.drain_workspace(workspace, &shutdown, metrics.as_ref()).await)
                });
            }
            let error = match running.join_next().await {
                None => break,
                Some(Ok((_, Ok(outcome)))) => {
                    total += outcome;
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
            None => Ok(total),
        }
    }

    async fn drain_workspace(
        &self,
        workspace: WorkspaceId,
        shutdown: &watch::Receiver<bool>,
        metrics: Option<&Metrics>,
    ) -> Result<ProcessOutcome> {
        // The mark goes first: events committed from now on set it again.
        work_queue::take(self.db().connection(), INGEST_WORK, workspace).await?;
        let scope = self.tenancy().queued_work_scope(workspace).await?;
        let outcome = self.process_pending_until(&scope, shutdown, metrics).await?;
        if outcome.processed + outcome.suppressed > 0 {
            tracing::debug!(
                workspace = %workspace,
                processed = outcome.processed,
                suppressed = outcome.suppressed,
                merges = outcome.merges,
                "events processed"
            );
        }
        Ok(outcome)
    }
}
