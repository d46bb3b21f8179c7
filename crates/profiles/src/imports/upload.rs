//! Receiving an import's file: bytes are parsed as they arrive, rows are mapped and committed to
//! the inbox a thousand at a time with the job's progress, so memory stays flat whatever the
//! file's size and a broken upload keeps what was committed. Each row's message id is the job
//! and row number, so sending the same file again after a failure skips rows already in.

use super::{
    csv_stream::{CsvRecord, CsvStream},
    job::{self, ImportJob, ImportStatus, job_update, push_completion, source_of},
    mapping::{ColumnSpec, ImportKind, Mapping, RowError},
};
use crate::{
    NormalizationContext, Profiles, ProfilesError,
    message::{EventType, IncomingEvent},
    service::Result,
    settings,
    sql::{Sql, json},
};
use chrono::{DateTime, Duration, Utc};
use kernel::{ImportId, WorkspaceId};
use platform::TenantScope;
use tenancy::{Actor, Permission};

/// Rows per inbox transaction.
const FLUSH_ROWS: usize = 1000;
/// Row errors kept on the job; the rest are only counted.
const MAX_KEPT_ERRORS: usize = 100;
/// An upload that made no progress for this long is taken as abandoned and may be restarted.
const STALE_UPLOAD: Duration = Duration::minutes(2);
/// How far in the future a row's timestamp may claim to be.
const MAX_FUTURE_SKEW: Duration = Duration::minutes(5);

/// One upload in progress. Feed it the body's chunks, then [`ImportUpload::finish`] it, or
/// [`ImportUpload::abort`] it if the body broke off.
pub struct ImportUpload {
    profiles: Profiles,
    scope: TenantScope,
    id: ImportId,
    kind: ImportKind,
    source: String,
    requested_columns: Option<Vec<ColumnSpec>>,
    normalization: NormalizationContext,
    started_at: DateTime<Utc>,
    parser: CsvStream,
    mapping: Option<Mapping>,
    records: Vec<CsvRecord>,
    rows: Vec<IncomingEvent>,
    progress: Progress,
}

#[derive(Default)]
struct Progress {
    rows_read: i64,
    rows_rejected: i64,
    bytes_read: i64,
    errors: Vec<RowError>,
    errors_dirty: bool,
}

impl Profiles {
    /// Starts receiving the file of an import created with [`Profiles::create_import`]. A job
    /// that failed (or whose upload was abandoned) may be sent again; one that is uploading or
    /// done may not.
    #[tracing::instrument(skip_all, fields(workspace = %workspace, import = %id))]
    pub async fn start_import_upload(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        id: ImportId,
    ) -> Result<ImportUpload> {
        let scope = self.tenancy().authorize(actor, workspace, Permission::Write).await?;
        let tenant = scope.tenant_id().as_uuid();
        let now = self.now();
        let txn = scope.begin_write(self.db()).await?;
        let found = job::load(&txn, tenant, id).await?;
        let mut claim = Sql::new(
            "UPDATE import_jobs SET status = 'uploading', rows_read = 0, rows_rejected = 0, \
             rows_already_imported = 0, bytes_read = 0, failure = NULL, heartbeat_at = ",
        );
        claim
            .bind(now)
            .push(", errors = ")
            .bind(json(&serde_json::Value::Array(Vec::new())))
            .push(" WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND id = ")
            .bind(id.as_uuid())
            .push(
                " AND (status IN ('awaiting_upload', 'failed') OR (status = 'uploading' AND heartbeat_at < ",
            )
            .bind(now - STALE_UPLOAD)
            .push("))");
        if claim.execute(&txn).await? == 0 {
            return Err(ProfilesError::Conflict(match found.status {
                ImportStatus::Uploading => "this import's file is being uploaded right now".into(),
                _ => "this import's file was already received; create a new import for another file".into(),
            }));
        }
        settings::ensure_row(&txn, tenant, now).await?;
        let normalization = settings::load(&txn, tenant).await?.normalization;
        txn.commit().await?;
        let delimiter = u8::try_from(found.delimiter).unwrap_or(b',');
        Ok(ImportUpload {
            profiles: self.clone(),
            scope,
            id,
            kind: found.kind,
            source: source_of(found.kind, &found.name, id),
            requested_columns: found.columns,
            normalization,
            started_at: now,
            parser: CsvStream::new(delimiter),
            mapping: None,
            records: Vec::new(),
            rows: Vec::with_capacity(FLUSH_ROWS),
            progress: Progress::default(),
        })
    }
}

impl ImportUpload {
    /// Takes the next piece of the file. An error means the file cannot be imported (a bad
    /// header or mapping); the job is then marked failed with the reason.
    pub async fn feed(&mut self, chunk: &[u8]) -> Result<()> {
        self.progress.bytes_read += chunk.len() as i64;
        let records = &mut self.records;
        self.parser.feed(chunk, &mut |record| records.push(record));
        self.take_records().await
    }

    /// The file is complete: the last rows are committed and the job moves on to processing.
    pub async fn finish(mut self) -> Result<ImportJob> {
        let records = &mut self.records;
        self.parser.finish(&mut |record| records.push(record));
        self.take_records().await?;
        if self.mapping.is_none() {
            return Err(self.fail("the file is empty: it needs a header row").await);
        }
        self.flush().await?;
        let tenant = self.scope.tenant_id().as_uuid();
        let now = self.profiles.now();
        let txn = self.scope.begin_write(self.profiles.db()).await?;
        // Every row may already be processed (or there were none): then it completes now.
        let done = job_update(tenant, self.id, |set| {
            set.push("uploaded_at = ").bind(now).push(", ");
            push_completion(set, now, 0, true);
        });
        done.execute(&txn).await?;
        let job = job::load(&txn, tenant, self.id).await?;
        txn.commit().await?;
        Ok(job)
    }

    /// The body broke off: what was committed stays, and the job can be sent again.
    pub async fn abort(mut self, reason: &str) -> ProfilesError {
        if let Err(error) = self.flush().await {
            return error;
        }
        self.fail(reason).await
    }

    async fn take_records(&mut self) -> Result<()> {
        for record in std::mem::take(&mut self.records) {
            match record {
                CsvRecord::Fields { fields, .. } if self.mapping.is_none() => {
                    match Mapping::resolve(self.kind, &fields, self.requested_columns.as_deref()) {
                        Ok((mapping, effective)) => {
                            self.mapping = Some(mapping);
                            self.save_columns(&effective).await?;
                        }
                        Err(error) => return Err(self.fail(&error.to_string()).await),
                    }
                }
                CsvRecord::TooLong { .. } | CsvRecord::NotUtf8 { .. } if self.mapping.is_none() => {
                    return Err(self.fail("the header row could not be read as UTF-8 text").await);
                }
                CsvRecord::Fields { row, fields } => {
                    self.progress.rows_read += 1;
                    let Some(mapping) = &self.mapping else { continue };
                    match mapping.map_row(row, &fields, &self.normalization) {
                        Ok(mapped) => {
                            let received_at = self.started_at;
                            let occurred_at = mapped
                                .occurred_at
                                .map(|t| if t > received_at + MAX_FUTURE_SKEW { received_at } else { t })
                                .unwrap_or(received_at);
                            self.rows.push(IncomingEvent {
                                message_id: format!("import:{}:{row}", self.id),
                                event_type: EventType::Identify,
                                name: None,
                                occurred_at,
                                received_at,
                                channel: None,
                                // CRM rows are records, not marketing contacts.
                                marketing: Default::default(),
                                body: mapped.body,
                            });
                        }
                        Err(error) => self.reject(error),
                    }
                }
                CsvRecord::TooLong { row } => {
                    self.progress.rows_read += 1;
                    let message = format!(
                        "the row is longer than {} KB or has more than {} fields",
                        super::csv_stream::MAX_RECORD_BYTES / 1024,
                        super::csv_stream::MAX_FIELDS
                    );
                    self.reject(RowError::new(row, None, "ROW_TOO_LONG", message));
                }
                CsvRecord::NotUtf8 { row } => {
                    self.progress.rows_read += 1;
                    self.reject(RowError::new(row, None, "INVALID_ENCODING", "the row is not UTF-8 text"));
                }
            }
            if self.rows.len() >= FLUSH_ROWS {
                self.flush().await?;
            }
        }
        Ok(())
    }

    fn reject(&mut self, error: RowError) {
        self.progress.rows_rejected += 1;
        if self.progress.errors.len() < MAX_KEPT_ERRORS {
            self.progress.errors.push(error);
            self.progress.errors_dirty = true;
        }
    }

    /// Commits the buffered rows with the job's progress, in one transaction.
    async fn flush(&mut self) -> Result<()> {
        let tenant = self.scope.tenant_id().as_uuid();
        let txn = self.scope.begin(self.profiles.db()).await?;
        let stored = self.profiles.store_events(&txn, &self.scope, &self.source, &self.rows).await? as i64;
        let already = self.rows.len() as i64 - stored;
        let progress = &mut self.progress;
        let errors = if progress.errors_dirty { Some(serde_json::to_value(&progress.errors)?) } else { None };
        let update = job_update(tenant, self.id, |set| {
            set.push("rows_imported = rows_imported + ")
                .bind(stored)
                .push(", rows_already_imported = rows_already_imported + ")
                .bind(already)
                .push(", heartbeat_at = ")
                .bind(self.profiles.now());
            push_progress(set, progress);
            if let Some(errors) = &errors {
                set.push(", errors = ").bind(json(errors));
            }
        });
        update.execute(&txn).await?;
        txn.commit().await?;
        progress.errors_dirty = false;
        self.rows.clear();
        if stored > 0 {
            self.profiles.inner.work_ready.notify_one();
        }
        Ok(())
    }

    async fn save_columns(&self, columns: &[ColumnSpec]) -> Result<()> {
        let txn = self.scope.begin(self.profiles.db()).await?;
        let update = job_update(self.scope.tenant_id().as_uuid(), self.id, |set| {
            set.push("columns = ").bind(json(&super::mapping::columns_to_json(columns)));
        });
        update.execute(&txn).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Marks the job failed with `reason` and returns the error to answer with.
    async fn fail(&self, reason: &str) -> ProfilesError {
        let result = async {
            let txn = self.scope.begin(self.profiles.db()).await?;
            let update = job_update(self.scope.tenant_id().as_uuid(), self.id, |set| {
                set.push("status = 'failed', failure = ").bind(reason.to_owned());
                push_progress(set, &self.progress);
            });
            update.execute(&txn).await?;
            txn.commit().await?;
            Ok::<_, ProfilesError>(())
        }
        .await;
        match result {
            Ok(()) => ProfilesError::invalid(reason),
            Err(error) => error,
        }
    }
}

/// The progress of the current attempt, as assignments after a first one.
fn push_progress(set: &mut Sql, progress: &Progress) {
    set.push(", rows_read = ")
        .bind(progress.rows_read)
        .push(", rows_rejected = ")
        .bind(progress.rows_rejected)
        .push(", bytes_read = ")
        .bind(progress.bytes_read);
}
