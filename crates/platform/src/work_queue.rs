//! The `pending_work` marks: "this workspace has work of this kind". Producers set a mark in
//! the transaction that creates the work; workers list the marked workspaces (or all of them
//! when sweeping, so a lost mark delays work, never loses it) and take a mark before draining,
//! so work committed meanwhile sets it again. Marks hold no tenant data, only which workspaces
//! have work, so workers read them without a tenant scope.

use crate::sql::Sql;
use chrono::{DateTime, Utc};
use kernel::WorkspaceId;
use sea_orm::{ConnectionTrait, DbErr};

/// Marks `workspace` as having work of `kind`, within the caller's transaction.
pub async fn mark<C: ConnectionTrait>(
    conn: &C,
    kind: &str,
    workspace: uuid::Uuid,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let mut mark = Sql::new("INSERT INTO pending_work (kind, tenant_id, since) VALUES (");
    mark.bind(kind.to_owned())
        .push(", ")
        .bind(workspace)
        .push(", ")
        .bind(now)
        .push(") ON CONFLICT (kind, tenant_id) DO NOTHING");
    mark.execute(conn).await?;
    Ok(())
}

/// The workspaces marked for `kind`, or every workspace when sweeping.
pub async fn marked<C: ConnectionTrait>(
    conn: &C,
    kind: &str,
    sweep: bool,
) -> Result<Vec<WorkspaceId>, DbErr> {
    if sweep {
        return every_workspace(conn).await;
    }
    let mut query = Sql::new("SELECT tenant_id FROM pending_work WHERE kind = ");
    query.bind(kind.to_owned());
    workspaces(conn, query).await
}

/// Every workspace, for work done on a schedule rather than on a mark.
pub async fn every_workspace<C: ConnectionTrait>(conn: &C) -> Result<Vec<WorkspaceId>, DbErr> {
    workspaces(conn, Sql::new("SELECT id AS tenant_id FROM workspaces")).await
}

async fn workspaces<C: ConnectionTrait>(conn: &C, query: Sql) -> Result<Vec<WorkspaceId>, DbErr> {
    let mut workspaces = Vec::new();
    for row in query.fetch_all(conn).await? {
        workspaces.push(WorkspaceId::from_uuid(row.try_get("", "tenant_id")?));
    }
    Ok(workspaces)
}

/// Takes `workspace`'s mark for `kind` before its work is drained.
pub async fn take<C: ConnectionTrait>(conn: &C, kind: &str, workspace: WorkspaceId) -> Result<(), DbErr> {
    let mut clear = Sql::new("DELETE FROM pending_work WHERE kind = ");
    clear.bind(kind.to_owned()).push(" AND tenant_id = ").bind(workspace.as_uuid());
    clear.execute(conn).await?;
    Ok(())
}
