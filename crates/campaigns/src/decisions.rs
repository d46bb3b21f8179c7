//! Decision channels: a website, kiosk, ATM, POS or call centre asks what to show a person now
//! and gets the offer their journey last chose for that channel (a `send` step on a decision
//! channel sets it, consent checked as for any send). Each answer that shows something is an
//! impression touchpoint.

use crate::channel::DeliveryMode;
use crate::channels;
use crate::error::{CampaignsError, Result};
use crate::executor::{PURPOSE, Touch, insert_touchpoints};
use crate::machine::Offer;
use crate::service::Campaigns;
use chrono::{DateTime, Utc};
use kernel::{ChannelId, JourneyId, ProfileId, WorkspaceId};
use platform::sql::{Sql, json};
use profiles::consent::ContactDecision;
use sea_orm::ConnectionTrait;
use std::collections::BTreeMap;
use tenancy::{Actor, Permission};
use uuid::Uuid;

/// What to show a person on a decision channel.
#[derive(Debug, Clone)]
pub struct Decision {
    pub profile_id: ProfileId,
    pub journey_id: JourneyId,
    pub step: String,
    pub variant: Option<String>,
    /// The rendered `web` (or `call_center`) variant: field → text.
    pub content: BTreeMap<String, String>,
    pub decided_at: DateTime<Utc>,
}

impl Campaigns {
    /// The offer for `profile` on `channel` now, or `None` (show the default). Consent is
    /// checked again at this moment; a shown offer is recorded as an impression.
    #[tracing::instrument(skip_all, fields(workspace = %workspace, channel = %channel))]
    pub async fn decide(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        channel: ChannelId,
        profile: ProfileId,
        device: Option<&str>,
    ) -> Result<Option<Decision>> {
        let scope = self.authorize(actor, workspace, Permission::Write).await?;
        if device.is_some_and(|d| d.len() > 64 || d.chars().any(char::is_control)) {
            return Err(CampaignsError::invalid("the device is longer than 64 characters"));
        }
        let tenant = workspace.as_uuid();
        let now = self.now();
        let txn = scope.begin_write(self.db()).await?;
        let configured = channels::load(&txn, workspace, channel).await?;
        if configured.delivery.mode() != DeliveryMode::Decision {
            return Err(CampaignsError::invalid(format!(
                "\"{}\" is not a decision channel",
                configured.name
            )));
        }
        let sheets = profiles::contact::contact_sheets(&txn, &scope, &[profile]).await?;
        let Some(sheet) = sheets.get(&profile) else { return Err(CampaignsError::NotFound) };
        let mut select =
            Sql::new("SELECT journey_id, step, variant, content, decided_at FROM offers WHERE tenant_id = ");
        select
            .bind(tenant)
            .push(" AND channel_id = ")
            .bind(channel.as_uuid())
            .push(" AND profile_id = ")
            .bind(sheet.id.as_uuid());
        let Some(row) = select.fetch_one(&txn).await? else {
            txn.commit().await?;
            return Ok(None);
        };
        if sheet.decision(PURPOSE, configured.kind.as_str(), now) != ContactDecision::Allowed {
            txn.commit().await?;
            return Ok(None);
        }
        let decision = Decision {
            profile_id: sheet.id,
            journey_id: JourneyId::from_uuid(row.try_get("", "journey_id")?),
            step: row.try_get("", "step")?,
            variant: row.try_get("", "variant")?,
            content: serde_json::from_value(row.try_get("", "content")?)?,
            decided_at: row.try_get("", "decided_at")?,
        };
        let impression = Touch {
            profile: sheet.id,
            kind: "impression",
            channel: configured.kind.as_str().to_owned(),
            channel_id: channel,
            journey: decision.journey_id,
            step: decision.step.clone(),
            variant: decision.variant.clone(),
            device: device.map(str::to_owned),
        };
        insert_touchpoints(&txn, tenant, [impression], now).await?;
        txn.commit().await?;
        Ok(Some(decision))
    }
}

/// Sets each person's current offer per decision channel (the latest journey step wins).
pub(crate) async fn write_offers<C: ConnectionTrait>(
    conn: &C,
    tenant: Uuid,
    offers: &[Offer],
    now: DateTime<Utc>,
) -> Result<()> {
    // One row per (channel, person), the round's last: PostgreSQL refuses to update a row twice
    // in one statement.
    let mut latest: std::collections::HashMap<(Uuid, Uuid), &Offer> = std::collections::HashMap::new();
    for offer in offers {
        latest.insert((offer.channel.as_uuid(), offer.profile.as_uuid()), offer);
    }
    let latest: Vec<&Offer> = latest.into_values().collect();
    // 8 parameters a row: within both backends' limits.
    for chunk in latest.chunks(1_000) {
        let mut upsert = Sql::new(
            "INSERT INTO offers (tenant_id, channel_id, profile_id, journey_id, step, variant, content, decided_at) VALUES ",
        );
        upsert.values(chunk.iter().map(|offer| -> Vec<sea_orm::Value> {
            vec![
                tenant.into(),
                offer.channel.as_uuid().into(),
                offer.profile.as_uuid().into(),
                offer.journey.as_uuid().into(),
                offer.step.clone().into(),
                offer.variant.clone().into(),
                json(&offer.content),
                now.into(),
            ]
        }));
        upsert.push(
            " ON CONFLICT (tenant_id, channel_id, profile_id) DO UPDATE SET journey_id = excluded.journey_id, \
             step = excluded.step, variant = excluded.variant, content = excluded.content, \
             decided_at = excluded.decided_at",
        );
        upsert.execute(conn).await?;
    }
    Ok(())
}
