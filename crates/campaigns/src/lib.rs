//! Campaigns: the channel catalogue ([`channel`]) and a workspace's channels ([`channels`]),
//! content with per-channel variants rendered through a template engine ([`content`],
//! [`contents`]), journeys as versioned graphs of steps ([`graph`], [`journeys`]), the executor
//! that moves people through them ([`executor`]), the outbox every send goes through and its
//! delivery adapters ([`delivery`]), experiment assignment ([`assignment`]), and what happened
//! to whom ([`reports`]).

pub mod assignment;
pub mod audiences;
pub mod channel;
pub mod channels;
pub mod content;
pub mod contents;
pub mod decisions;
pub mod delivery;
mod egress;
mod error;
mod events;
pub mod executor;
pub mod feedback;
pub mod graph;
pub mod journeys;
pub(crate) mod machine;
pub mod reports;
mod schedule;
mod service;
pub mod settings;
pub mod simulation;
mod smtp;

pub use error::{CampaignsError, Problem, Result};
pub use service::{Campaigns, CampaignsConfig};

/// Names of channels, contents and journeys: what staff read in lists.
pub(crate) fn check_name(name: &str, what: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(CampaignsError::invalid(format!(
            "a {what} name must be 1 to 200 characters without control characters"
        )));
    }
    Ok(name.to_owned())
}

/// Names are unique per workspace among channels, contents and journeys (`table`): a clear
/// conflict rather than the unique index's error. `except` is the object being renamed.
pub(crate) async fn ensure_name_free<C: sea_orm::ConnectionTrait>(
    conn: &C,
    table: Named,
    workspace: kernel::WorkspaceId,
    name: &str,
    except: Option<uuid::Uuid>,
) -> Result<()> {
    let (table, what) = match table {
        Named::Channel => ("channels", "channel"),
        Named::Content => ("contents", "content"),
        Named::Journey => ("journeys", "journey"),
    };
    let mut select = platform::sql::Sql::new(&format!("SELECT id FROM {table} WHERE tenant_id = "));
    select.bind(workspace.as_uuid()).push(" AND name = ").bind(name.to_owned());
    if let Some(row) = select.fetch_one(conn).await?
        && Some(row.try_get::<uuid::Uuid>("", "id")?) != except
    {
        return Err(CampaignsError::Conflict(format!("a {what} is already named \"{name}\"")));
    }
    Ok(())
}

/// What [`ensure_name_free`] looks at.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Named {
    Channel,
    Content,
    Journey,
}
