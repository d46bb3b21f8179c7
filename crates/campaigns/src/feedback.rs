//! What happens after a send: providers report deliveries, opens, clicks, bounces, complaints
//! and unsubscribes by the idempotency key they received. Each becomes a touchpoint with the
//! send's channel, journey, step and variant, for measurement; an unsubscribe or a complaint
//! also withdraws the person's consent for that channel, so nothing more is sent there.

use crate::error::{CampaignsError, Result};
use crate::executor::PURPOSE;
use crate::executor::{Touch, insert_touchpoints};
use crate::service::Campaigns;
use kernel::{ChannelId, JourneyId, ProfileId, WorkspaceId};
use platform::sql::Sql;
use tenancy::{Actor, Permission};

/// What a provider reports about a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feedback {
    Delivery,
    Open,
    Click,
    Bounce,
    Complaint,
    Unsubscribe,
}

impl Feedback {
    pub fn as_str(self) -> &'static str {
        match self {
            Feedback::Delivery => "delivery",
            Feedback::Open => "open",
            Feedback::Click => "click",
            Feedback::Bounce => "bounce",
            Feedback::Complaint => "complaint",
            Feedback::Unsubscribe => "unsubscribe",
        }
    }

    /// Whether the person asked, in effect, for no more messages on this channel.
    fn withdraws_consent(self) -> bool {
        matches!(self, Feedback::Unsubscribe | Feedback::Complaint)
    }
}

impl Campaigns {
    /// Records what a provider reports about the send it received under `key`. Returns the
    /// profile the send was for.
    #[tracing::instrument(skip_all, fields(workspace = %workspace, feedback = feedback.as_str()))]
    pub async fn record_feedback(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        key: &str,
        feedback: Feedback,
        device: Option<&str>,
    ) -> Result<ProfileId> {
        let scope = self.authorize(actor, workspace, Permission::Write).await?;
        if key.len() > 200 || device.is_some_and(|d| d.len() > 64 || d.chars().any(char::is_control)) {
            return Err(CampaignsError::invalid("the key or the device is too long"));
        }
        let tenant = workspace.as_uuid();
        let now = self.now();
        let txn = scope.begin_write(self.db()).await?;
        let mut send = Sql::new(
            "SELECT profile_id, journey_id, step, channel_id, channel, variant FROM outbox WHERE tenant_id = ",
        );
        send.bind(tenant).push(" AND idempotency_key = ").bind(key.to_owned());
        let row = send.fetch_one(&txn).await?.ok_or(CampaignsError::NotFound)?;
        let profile = ProfileId::from_uuid(row.try_get("", "profile_id")?);
        let channel: String = row.try_get("", "channel")?;
        let touch = Touch {
            profile,
            kind: feedback.as_str(),
            channel: channel.clone(),
            channel_id: ChannelId::from_uuid(row.try_get("", "channel_id")?),
            journey: JourneyId::from_uuid(row.try_get("", "journey_id")?),
            step: row.try_get("", "step")?,
            variant: row.try_get("", "variant")?,
            device: device.map(str::to_owned),
        };
        insert_touchpoints(&txn, tenant, [touch], now).await?;
        txn.commit().await?;
        if feedback.withdraws_consent() {
            let input = profiles::consent::ConsentInput {
                purpose: PURPOSE.to_owned(),
                channel,
                granted: false,
                source: feedback.as_str().to_owned(),
            };
            self.profiles().set_consent(actor, workspace, profile, input).await?;
        }
        Ok(profile)
    }
}
