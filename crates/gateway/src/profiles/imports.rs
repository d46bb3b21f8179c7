//! CSV imports on GraphQL: create a job (then `PUT` its file to `uploadPath`), follow its
//! progress, list past imports.

use crate::{
    connection::{into_connection, page_request},
    context::{ContextExt, parse_id},
    error::GqlResult,
};
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject, connection::Connection};
use chrono::{DateTime, Utc};
use profiles::imports::{self as domain, ColumnTarget};

// `remote` derives the conversions to and from the domain's enums, variant by variant.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "ImportKind", remote = "domain::ImportKind")]
pub enum ImportKindGql {
    /// CRM records: create and update profiles through their identifiers.
    Crm,
    /// Third-party attributes keyed by one identifier, for profiles that already exist.
    Enrichment,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "ImportValueType", remote = "domain::ValueType")]
pub enum ValueTypeGql {
    String,
    Number,
    Boolean,
    /// An ISO date, `2024-03-01`.
    Date,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "ImportStatus", remote = "domain::ImportStatus")]
pub enum ImportStatusGql {
    AwaitingUpload,
    Uploading,
    Processing,
    Completed,
    Failed,
}

#[derive(InputObject)]
pub struct ImportColumnInput {
    /// The column's header in the file.
    pub column: String,
    /// `identity:<kind>` (email, phone, user_id, maid, a custom kind…), `trait:<name>`
    /// (`trait:address.city` nests), `timestamp` (when the record was true) or `ignore`.
    pub to: String,
    #[graphql(default_with = "ValueTypeGql::String")]
    pub value_type: ValueTypeGql,
}

#[derive(InputObject)]
pub struct CreateImportInput {
    /// Shown in trait sources (`import:<name>:<id>`); 1 to 64 characters, without `:`.
    pub name: String,
    pub kind: ImportKindGql,
    /// `,` (default), `;`, `|` or a tab (`\t` or `tab`).
    #[graphql(default = ",")]
    pub delimiter: String,
    /// Omit to map columns by their header (`email`, `phone`, `customer_id`, `first_name`,
    /// `zip`…; other columns become traits named as their header).
    pub columns: Option<Vec<ImportColumnInput>>,
}

#[derive(SimpleObject)]
pub struct ImportColumn {
    pub column: String,
    pub to: String,
    pub value_type: ValueTypeGql,
}

/// A row that was not imported. Messages name the column, never the value.
#[derive(SimpleObject)]
pub struct ImportRowError {
    /// As a spreadsheet numbers rows: the header is row 1.
    pub row: u64,
    pub column: Option<String>,
    /// `WRONG_FIELD_COUNT`, `INVALID_IDENTIFIER`, `INVALID_VALUE`, `NO_IDENTIFIER`,
    /// `ROW_TOO_LONG` or `INVALID_ENCODING`.
    pub code: String,
    pub message: String,
}

pub struct ImportJob(pub domain::ImportJob);

#[Object]
impl ImportJob {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn kind(&self) -> ImportKindGql {
        self.0.kind.into()
    }
    async fn status(&self) -> ImportStatusGql {
        self.0.status.into()
    }
    /// Where to `PUT` the CSV file (with the same `Authorization` header as for GraphQL).
    async fn upload_path(&self) -> String {
        format!("/imports/{}/{}", self.0.workspace_id, self.0.id)
    }
    async fn delimiter(&self) -> String {
        self.0.delimiter.to_string()
    }
    /// The mapping asked for, or once the upload started, the one in effect.
    async fn columns(&self) -> Option<Vec<ImportColumn>> {
        self.0.columns.as_ref().map(|columns| {
            columns
                .iter()
                .map(|c| ImportColumn {
                    column: c.column.clone(),
                    to: c.target.to_string(),
                    value_type: c.value_type.into(),
                })
                .collect()
        })
    }
    async fn rows_read(&self) -> i64 {
        self.0.rows_read
    }
    /// Rows stored, by this upload or an earlier attempt of the same job.
    async fn rows_imported(&self) -> i64 {
        self.0.rows_imported
    }
    /// Rows of the last upload that an earlier attempt had already stored.
    async fn rows_already_imported(&self) -> i64 {
        self.0.rows_already_imported
    }
    async fn rows_rejected(&self) -> i64 {
        self.0.rows_rejected
    }
    /// Rows linked to a profile so far.
    async fn rows_processed(&self) -> i64 {
        self.0.rows_processed
    }
    /// Rows that matched nobody (enrichment keys of unknown people; their data is not kept).
    async fn rows_unmatched(&self) -> i64 {
        self.0.rows_unmatched
    }
    /// Rows of erased people, dropped.
    async fn rows_suppressed(&self) -> i64 {
        self.0.rows_suppressed
    }
    async fn bytes_read(&self) -> i64 {
        self.0.bytes_read
    }
    /// The first row errors (at most 100; `rowsRejected` counts them all).
    async fn errors(&self) -> Vec<ImportRowError> {
        self.0
            .errors
            .iter()
            .map(|e| ImportRowError {
                row: e.row,
                column: e.column.clone(),
                code: e.code.clone(),
                message: e.message.clone(),
            })
            .collect()
    }
    /// Why the job failed, when it did.
    async fn failure(&self) -> Option<&str> {
        self.0.failure.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn uploaded_at(&self) -> Option<DateTime<Utc>> {
        self.0.uploaded_at
    }
    async fn completed_at(&self) -> Option<DateTime<Utc>> {
        self.0.completed_at
    }
}

fn column_spec(input: ImportColumnInput) -> async_graphql::Result<domain::ColumnSpec> {
    Ok(domain::ColumnSpec {
        column: input.column,
        target: ColumnTarget::parse(&input.to).gql()?,
        value_type: input.value_type.into(),
    })
}

#[derive(Default)]
pub struct ImportsQuery;

#[Object]
impl ImportsQuery {
    async fn import_job(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        id: ID,
    ) -> async_graphql::Result<ImportJob> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let id = parse_id(&id)?;
        ctx.profiles().import_job(ctx.actor()?, workspace, id).await.gql().map(ImportJob)
    }

    /// The workspace's imports, newest first.
    async fn import_jobs(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, ImportJob>> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let page = page_request(first, after)?;
        let found = ctx.profiles().import_jobs(ctx.actor()?, workspace, page).await.gql()?;
        Ok(into_connection(found, ImportJob))
    }
}

#[derive(Default)]
pub struct ImportsMutation;

#[Object]
impl ImportsMutation {
    /// Creates an import; send the CSV file to its `uploadPath` next.
    async fn create_import(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        input: CreateImportInput,
    ) -> async_graphql::Result<ImportJob> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let columns = input.columns.map(|c| c.into_iter().map(column_spec).collect()).transpose()?;
        let new = domain::NewImport {
            name: input.name,
            kind: input.kind.into(),
            delimiter: input.delimiter,
            columns,
        };
        ctx.profiles().create_import(ctx.actor()?, workspace, new).await.gql().map(ImportJob)
    }
}
