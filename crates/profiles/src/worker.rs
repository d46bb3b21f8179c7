//! The ingestion worker: runs in `serve` (by default) and in `passerelle worker`. It wakes when
//! this process commits events, polls the `pending_work` queue for events committed by other
//! replicas, and sweeps every workspace now and then so nothing waits forever on a lost mark.

use crate::{Profiles, ingest::INGEST_WORK, service::Result, sql::Sql};
use kernel::WorkspaceId;
use std::time::Duration;
use tokio::sync::watch;

const POLL: Duration = Duration::from_millis(200);
const SWEEP_EVERY: u32 = 50;

impl Profiles {
    /// Runs until `shutdown` turns true. Errors are logged and retried on the next round.
    pub async fn run_ingestion_worker(self, mut shutdown: watch::Receiver<bool>) {
        let mut round: u32 = 0;
        loop {
            let sweep = round.is_multiple_of(SWEEP_EVERY);
            round = round.wrapping_add(1);
            if let Err(error) = self.process_queued_until(sweep, &shutdown).await {
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
    /// each drained completely.
    pub async fn process_queued(&self, sweep: bool) -> Result<usize> {
        let (_never, running) = watch::channel(false);
        self.process_queued_until(sweep, &running).await
    }

    /// Like [`Profiles::process_queued`], stopping between chunks once `shutdown` is true, so
    /// a pod asked to stop with a large backlog stops within one chunk. Work left behind is
    /// found again by the next sweep of any worker.
    async fn process_queued_until(&self, sweep: bool, shutdown: &watch::Receiver<bool>) -> Result<usize> {
        let conn = self.db().connection();
        let mut workspaces: Vec<WorkspaceId> = Vec::new();
        let query = if sweep {
            Sql::new("SELECT id AS tenant_id FROM workspaces")
        } else {
            let mut query = Sql::new("SELECT tenant_id FROM pending_work WHERE kind = ");
            query.bind(INGEST_WORK);
            query
        };
        for row in query.fetch_all(conn).await? {
            workspaces.push(WorkspaceId::from_uuid(row.try_get("", "tenant_id")?));
        }
        let mut processed = 0;
        for workspace in workspaces {
            // The mark goes first: events committed from now on set it again.
            let mut clear = Sql::new("DELETE FROM pending_work WHERE kind = ");
            clear.bind(INGEST_WORK).push(" AND tenant_id = ").bind(workspace.as_uuid());
            clear.execute(conn).await?;
            let scope = self.tenancy().queued_work_scope(workspace).await?;
            let outcome = self.process_pending_until(&scope, shutdown).await?;
            processed += outcome.processed;
            if outcome.processed + outcome.suppressed > 0 {
                tracing::debug!(
                    workspace = %workspace,
                    processed = outcome.processed,
                    suppressed = outcome.suppressed,
                    merges = outcome.merges,
                    "events processed"
                );
            }
        }
        Ok(processed)
    }
}
