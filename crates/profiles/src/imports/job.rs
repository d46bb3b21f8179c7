//! Import jobs: creating one, reading its progress, listing them.

use super::mapping::{ColumnSpec, ImportKind, RowError, columns_from_json, columns_to_json};
use crate::{
    Profiles, ProfilesError,
    service::Result,
    sql::{Sql, json},
};
use chrono::{DateTime, Utc};
use kernel::{ImportId, Page, PageRequest, WorkspaceId};
use platform::paging::Order;
use sea_orm::{ConnectionTrait, QueryResult};
use serde_json::Value;
use tenancy::{Actor, Permission};
use uuid::Uuid;

const MAX_NAME_CHARS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportStatus {
    /// Created; the file has not been sent yet.
    AwaitingUpload,
    Uploading,
    /// The file is in; its rows are being linked to profiles.
    Processing,
    Completed,
    /// The upload broke off or the file could not be read; it may be sent again.
    Failed,
}

impl ImportStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AwaitingUpload => "awaiting_upload",
            Self::Uploading => "uploading",
            Self::Processing => "processing",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }

    fn parse(raw: &str) -> Self {
        match raw {
            "awaiting_upload" => Self::AwaitingUpload,
            "uploading" => Self::Uploading,
            "processing" => Self::Processing,
            "completed" => Self::Completed,
            _ => Self::Failed,
        }
    }
}

/// What a caller asks for when creating an import.
#[derive(Debug, Clone)]
pub struct NewImport {
    pub name: String,
    pub kind: ImportKind,
    /// `,`, `;` (European spreadsheets), `|`, or a tab (`\t` or `tab`).
    pub delimiter: String,
    /// `None` maps the columns by their header.
    pub columns: Option<Vec<ColumnSpec>>,
}

#[derive(Debug, Clone)]
pub struct ImportJob {
    pub id: ImportId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub kind: ImportKind,
    pub status: ImportStatus,
    pub delimiter: char,
    /// The mapping given, or after the upload started, the one in effect.
    pub columns: Option<Vec<ColumnSpec>>,
    pub rows_read: i64,
    /// Rows stored by any upload attempt of this job.
    pub rows_imported: i64,
    /// Rows of this attempt already stored by an earlier one (a retried upload).
    pub rows_already_imported: i64,
    pub rows_rejected: i64,
    /// Rows linked to a profile.
    pub rows_processed: i64,
    /// Enrichment rows whose key matched no profile (their data is not kept).
    pub rows_unmatched: i64,
    /// Rows of erased people, dropped.
    pub rows_suppressed: i64,
    pub bytes_read: i64,
    /// The first row errors (all are counted in `rows_rejected`).
    pub errors: Vec<RowError>,
    pub failure: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub uploaded_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// The `events.source` of a job's rows, which is also the trait source they write:
/// `import:<name>:<id>` or `enrichment:<name>:<id>`.
pub(crate) fn source_of(kind: ImportKind, name: &str, id: ImportId) -> String {
    format!("{}:{name}:{id}", kind.source_family())
}

/// The job a row's `events.source` belongs to, if it came from an import.
pub(crate) fn job_of_source(source: &str) -> Option<(ImportKind, ImportId)> {
    let (family, rest) = source.split_once(':')?;
    let kind = match family {
        crate::traits::source::IMPORT => ImportKind::Crm,
        crate::traits::source::ENRICHMENT => ImportKind::Enrichment,
        _ => return None,
    };
    let (_, id) = rest.rsplit_once(':')?;
    Some((kind, id.parse().ok()?))
}

pub(crate) const JOB_COLUMNS: &str = "tenant_id, id, name, kind, status, delimiter, columns, rows_read, rows_imported, \
    rows_already_imported, rows_rejected, rows_processed, rows_unmatched, rows_suppressed, bytes_read, errors, \
    failure, created_by, created_at, uploaded_at, completed_at";

pub(crate) fn job_from_row(row: &QueryResult) -> Result<ImportJob> {
    let kind: String = row.try_get("", "kind")?;
    let status: String = row.try_get("", "status")?;
    let delimiter: String = row.try_get("", "delimiter")?;
    let columns: Option<Value> = row.try_get("", "columns")?;
    let errors: Value = row.try_get("", "errors")?;
    Ok(ImportJob {
        id: ImportId::from_uuid(row.try_get("", "id")?),
        workspace_id: WorkspaceId::from_uuid(row.try_get("", "tenant_id")?),
        name: row.try_get("", "name")?,
        kind: ImportKind::parse(&kind)
            .ok_or_else(|| ProfilesError::Internal("unknown import kind".into()))?,
        status: ImportStatus::parse(&status),
        delimiter: delimiter.chars().next().unwrap_or(','),
        columns: columns.as_ref().and_then(columns_from_json),
        rows_read: row.try_get("", "rows_read")?,
        rows_imported: row.try_get("", "rows_imported")?,
        rows_already_imported: row.try_get("", "rows_already_imported")?,
        rows_rejected: row.try_get("", "rows_rejected")?,
        rows_processed: row.try_get("", "rows_processed")?,
        rows_unmatched: row.try_get("", "rows_unmatched")?,
        rows_suppressed: row.try_get("", "rows_suppressed")?,
        bytes_read: row.try_get("", "bytes_read")?,
        errors: serde_json::from_value(errors).unwrap_or_default(),
        failure: row.try_get("", "failure")?,
        created_by: row.try_get("", "created_by")?,
        created_at: row.try_get("", "created_at")?,
        uploaded_at: row.try_get("", "uploaded_at")?,
        completed_at: row.try_get("", "completed_at")?,
    })
}

pub(crate) async fn load<C: ConnectionTrait>(txn: &C, tenant: Uuid, id: ImportId) -> Result<ImportJob> {
    let mut select = Sql::new(&format!("SELECT {JOB_COLUMNS} FROM import_jobs WHERE tenant_id = "));
    select.bind(tenant).push(" AND id = ").bind(id.as_uuid());
    let row = select.fetch_one(txn).await?.ok_or(ProfilesError::NotFound)?;
    job_from_row(&row)
}

/// Appends the `status` and `completed_at` assignments that complete a job once every
/// imported row is accounted for, counting `added` rows this same statement accounts for.
/// The end of an upload and the processor both use it, so whichever comes last completes the
/// job: `upload_ending` for the former; otherwise only a job past its upload can complete.
pub(crate) fn push_completion(sql: &mut Sql, now: DateTime<Utc>, added: i64, upload_ending: bool) {
    let (from, otherwise) =
        if upload_ending { ("TRUE", "'processing'") } else { ("status = 'processing'", "status") };
    let accounted = "rows_processed + rows_unmatched + rows_suppressed + ";
    sql.push(&format!("status = CASE WHEN {from} AND {accounted}"))
        .bind(added)
        .push(&format!(" >= rows_imported THEN 'completed' ELSE {otherwise} END"))
        .push(&format!(", completed_at = CASE WHEN {from} AND {accounted}"))
        .bind(added)
        .push(" >= rows_imported THEN ")
        .bind(now)
        .push(" ELSE completed_at END");
}

/// `UPDATE import_jobs SET <set> WHERE` this job: `set` appends the assignments.
pub(crate) fn job_update(tenant: Uuid, id: ImportId, set: impl FnOnce(&mut Sql)) -> Sql {
    let mut update = Sql::new("UPDATE import_jobs SET ");
    set(&mut update);
    update.push(" WHERE tenant_id = ").bind(tenant).push(" AND id = ").bind(id.as_uuid());
    update
}

impl Profiles {
    /// Creates an import job; the file follows with `PUT /imports/{workspace}/{import}`.
    #[tracing::instrument(skip_all, fields(workspace = %workspace))]
    pub async fn create_import(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        input: NewImport,
    ) -> Result<ImportJob> {
        let scope = self.tenancy().authorize(actor, workspace, Permission::Write).await?;
        let name = input.name.trim().to_owned();
        if name.is_empty()
            || name.chars().count() > MAX_NAME_CHARS
            || name.contains(':')
            || name.chars().any(char::is_control)
        {
            return Err(ProfilesError::invalid(format!(
                "an import name is 1 to {MAX_NAME_CHARS} characters, without `:`"
            )));
        }
        let delimiter = match input.delimiter.as_str() {
            "," | ";" | "|" | "\t" => input.delimiter.clone(),
            "\\t" | "tab" => "\t".to_owned(),
            _ => return Err(ProfilesError::invalid("the delimiter must be `,`, `;`, `|` or a tab")),
        };
        if let Some(columns) = &input.columns
            && columns.is_empty()
        {
            return Err(ProfilesError::invalid(
                "give at least one column mapping, or none to map the columns by their header",
            ));
        }
        let now = self.now();
        let id = ImportId::new();
        let txn = scope.begin(self.db()).await?;
        let mut insert = Sql::new(
            "INSERT INTO import_jobs (tenant_id, id, name, kind, status, delimiter, columns, errors, created_by, \
             created_at) VALUES (",
        );
        insert
            .bind(scope.tenant_id().as_uuid())
            .push(", ")
            .bind(id.as_uuid())
            .push(", ")
            .bind(name)
            .push(", ")
            .bind(input.kind.as_str())
            .push(", ")
            .bind(ImportStatus::AwaitingUpload.as_str())
            .push(", ")
            .bind(delimiter)
            .push(", ")
            .bind(
                input
                    .columns
                    .as_deref()
                    .map(|c| json(&columns_to_json(c)))
                    .unwrap_or(sea_orm::Value::Json(None)),
            )
            .push(", ")
            .bind(json(&Value::Array(Vec::new())))
            .push(", ")
            .bind(actor.label())
            .push(", ")
            .bind(now)
            .push(")");
        insert.execute(&txn).await?;
        let job = load(&txn, scope.tenant_id().as_uuid(), id).await?;
        txn.commit().await?;
        Ok(job)
    }

    pub async fn import_job(&self, actor: &Actor, workspace: WorkspaceId, id: ImportId) -> Result<ImportJob> {
        let scope = self.tenancy().authorize(actor, workspace, Permission::Read).await?;
        let txn = scope.begin(self.db()).await?;
        let job = load(&txn, scope.tenant_id().as_uuid(), id).await?;
        txn.commit().await?;
        Ok(job)
    }

    /// The workspace's imports, newest first.
    pub async fn import_jobs(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        page: PageRequest,
    ) -> Result<Page<ImportJob>> {
        let scope = self.tenancy().authorize(actor, workspace, Permission::Read).await?;
        let txn = scope.begin(self.db()).await?;
        let mut select = Sql::new(&format!("SELECT {JOB_COLUMNS} FROM import_jobs WHERE tenant_id = "));
        select.bind(scope.tenant_id().as_uuid());
        select.keyset("id", &page, Order::NewestFirst);
        let rows = select.fetch_all(&txn).await?;
        txn.commit().await?;
        let jobs = rows.iter().map(job_from_row).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetched(jobs, page, |job| job.id.as_uuid()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_name_their_job() {
        let id = ImportId::new();
        let source = source_of(ImportKind::Enrichment, "acme demographics", id);
        assert_eq!(source, format!("enrichment:acme demographics:{id}"));
        assert_eq!(job_of_source(&source), Some((ImportKind::Enrichment, id)));
        assert_eq!(job_of_source(&source_of(ImportKind::Crm, "crm", id)), Some((ImportKind::Crm, id)));
        assert_eq!(job_of_source("key:0190"), None);
        assert_eq!(job_of_source("graphql"), None);
        assert_eq!(job_of_source("import:broken"), None);
    }
}
