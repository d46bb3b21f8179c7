//! A workspace's channels: which kind, how it delivers, where to. A webhook channel gets a
//! signing secret, returned once at creation and never again.

use crate::channel::{ChannelKind, Delivery};
use crate::error::{CampaignsError, Result};
use crate::service::Campaigns;
use chrono::{DateTime, Utc};
use kernel::{ChannelId, WorkspaceId};
use platform::sql::{Sql, json};
use rand::RngCore;
use sea_orm::{ConnectionTrait, QueryResult};
use tenancy::{Actor, Permission};

#[derive(Debug, Clone)]
pub struct Channel {
    pub id: ChannelId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub kind: ChannelKind,
    pub delivery: Delivery,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewChannel {
    pub name: String,
    pub kind: String,
    pub delivery: serde_json::Value,
}

/// A channel just created, with its webhook signing secret (shown this once).
#[derive(Debug, Clone)]
pub struct CreatedChannel {
    pub channel: Channel,
    pub signing_secret: Option<String>,
}

impl Campaigns {
    #[tracing::instrument(skip_all, fields(workspace = %workspace))]
    pub async fn create_channel(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        input: NewChannel,
    ) -> Result<CreatedChannel> {
        let scope = self.authorize(actor, workspace, Permission::Administer).await?;
        let name = crate::check_name(&input.name, "channel")?;
        let kind = ChannelKind::parse(&input.kind)?;
        let delivery: Delivery = serde_json::from_value(input.delivery)
            .map_err(|e| CampaignsError::invalid(format!("the delivery settings are not valid: {e}")))?;
        delivery.validate_for(kind)?;
        if let Delivery::Webhook { url } = &delivery
            && !self.webhooks_to_private_addresses()
            && crate::egress::private_ip_literal(url)
        {
            return Err(CampaignsError::invalid(
                "the webhook URL is a private address; this deployment lets webhooks reach public addresses only",
            ));
        }
        let signing_secret = matches!(delivery, Delivery::Webhook { .. }).then(new_secret);
        let channel = Channel {
            id: ChannelId::new(),
            workspace_id: workspace,
            name,
            kind,
            delivery,
            created_at: self.now(),
        };
        let txn = scope.begin_write(self.db()).await?;
        crate::ensure_name_free(&txn, crate::Named::Channel, workspace, &channel.name, None).await?;
        let mut insert = Sql::new(
            "INSERT INTO channels (tenant_id, id, name, kind, mode, adapter, config, secret, created_at, updated_at) VALUES (",
        );
        insert
            .bind(workspace.as_uuid())
            .push(", ")
            .bind(channel.id.as_uuid())
            .push(", ")
            .bind(channel.name.clone())
            .push(", ")
            .bind(kind.as_str())
            .push(", ")
            .bind(channel.delivery.mode().as_str())
            .push(", ")
            .bind(channel.delivery.adapter())
            .push(", ")
            .bind(json(&serde_json::to_value(&channel.delivery)?))
            .push(", ")
            .bind(signing_secret.clone())
            .push(", ")
            .bind(channel.created_at)
            .push(", ")
            .bind(channel.created_at)
            .push(")");
        insert.execute(&txn).await?;
        txn.commit().await?;
        Ok(CreatedChannel { channel, signing_secret })
    }

    pub async fn channels(&self, actor: &Actor, workspace: WorkspaceId) -> Result<Vec<Channel>> {
        let scope = self.authorize(actor, workspace, Permission::Read).await?;
        let txn = scope.begin(self.db()).await?;
        let mut select = Sql::new(&format!("SELECT {COLUMNS} FROM channels WHERE tenant_id = "));
        select.bind(workspace.as_uuid()).push(" ORDER BY name");
        let channels = select.fetch_all(&txn).await?.iter().map(channel_from).collect::<Result<Vec<_>>>()?;
        txn.commit().await?;
        Ok(channels)
    }

    pub async fn channel(&self, actor: &Actor, workspace: WorkspaceId, id: ChannelId) -> Result<Channel> {
        let scope = self.authorize(actor, workspace, Permission::Read).await?;
        let txn = scope.begin(self.db()).await?;
        let channel = load(&txn, workspace, id).await?;
        txn.commit().await?;
        Ok(channel)
    }
}

const COLUMNS: &str = "tenant_id, id, name, kind, config, created_at";

pub(crate) async fn load<C: ConnectionTrait>(
    conn: &C,
    workspace: WorkspaceId,
    id: ChannelId,
) -> Result<Channel> {
    let mut select = Sql::new(&format!("SELECT {COLUMNS} FROM channels WHERE tenant_id = "));
    select.bind(workspace.as_uuid()).push(" AND id = ").bind(id.as_uuid());
    match select.fetch_one(conn).await? {
        Some(row) => channel_from(&row),
        None => Err(CampaignsError::NotFound),
    }
}

/// The channels `ids` name, in one query; `NotFound` when one of them does not exist.
pub(crate) async fn load_many<C: ConnectionTrait>(
    conn: &C,
    workspace: WorkspaceId,
    ids: impl IntoIterator<Item = ChannelId>,
) -> Result<std::collections::HashMap<ChannelId, Channel>> {
    let ids: std::collections::HashSet<ChannelId> = ids.into_iter().collect();
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let mut select = Sql::new(&format!("SELECT {COLUMNS} FROM channels WHERE tenant_id = "));
    select.bind(workspace.as_uuid()).push(" AND id IN ").bind_list(ids.iter().map(|id| id.as_uuid()));
    let mut found = std::collections::HashMap::with_capacity(ids.len());
    for row in select.fetch_all(conn).await? {
        let channel = channel_from(&row)?;
        found.insert(channel.id, channel);
    }
    if found.len() < ids.len() {
        return Err(CampaignsError::NotFound);
    }
    Ok(found)
}

/// The signing secret of a webhook channel, for the delivery worker only.
pub(crate) async fn signing_secret<C: ConnectionTrait>(
    conn: &C,
    workspace: WorkspaceId,
    id: ChannelId,
) -> Result<Option<String>> {
    let mut select = Sql::new("SELECT secret FROM channels WHERE tenant_id = ");
    select.bind(workspace.as_uuid()).push(" AND id = ").bind(id.as_uuid());
    match select.fetch_one(conn).await? {
        Some(row) => Ok(row.try_get("", "secret")?),
        None => Err(CampaignsError::NotFound),
    }
}

fn channel_from(row: &QueryResult) -> Result<Channel> {
    let kind: String = row.try_get("", "kind")?;
    let config: serde_json::Value = row.try_get("", "config")?;
    Ok(Channel {
        id: ChannelId::from_uuid(row.try_get("", "id")?),
        workspace_id: WorkspaceId::from_uuid(row.try_get("", "tenant_id")?),
        name: row.try_get("", "name")?,
        kind: ChannelKind::parse(&kind)?,
        delivery: serde_json::from_value(config)?,
        created_at: row.try_get("", "created_at")?,
    })
}

fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("whsec_{}", hex::encode(bytes))
}
