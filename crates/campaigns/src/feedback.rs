//! What happens after a send: providers report deliveries, opens, clicks, bounces, complaints
//! and unsubscribes by the idempotency key they received. Each becomes a touchpoint with the
//! send's channel, journey, step and variant, for measurement; an unsubscribe or a complaint
//! also withdraws the person's consent for that channel, so nothing more is sent there; a hard
//! bounce or a complaint puts the address the message went to on the suppression list, so no
//! journey sends to it again whoever holds it.

use crate::channel::ChannelKind;
use crate::error::{CampaignsError, Result};
use crate::executor::PURPOSE;
use crate::executor::{Touch, insert_touchpoints};
use crate::service::Campaigns;
use kernel::{ChannelId, JourneyId, ProfileId, WorkspaceId};
use platform::sql::Sql;
use profiles::Identity;
use profiles::address_suppressions::{self, SuppressionReason};
use tenancy::{Actor, Permission};

/// What a provider reports about a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feedback {
    Delivery,
    Open,
    Click,
    /// A bounce the provider may retry or that may not last (a full mailbox).
    Bounce,
    /// The address does not exist: it is suppressed.
    HardBounce,
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
            Feedback::HardBounce => "hard_bounce",
            Feedback::Complaint => "complaint",
            Feedback::Unsubscribe => "unsubscribe",
        }
    }

    /// The touchpoint it becomes: measurement counts bounces, whatever their kind.
    fn touchpoint_kind(self) -> &'static str {
        match self {
            Feedback::HardBounce => "bounce",
            other => other.as_str(),
        }
    }

    /// Whether the person asked, in effect, for no more messages on this channel.
    fn withdraws_consent(self) -> bool {
        matches!(self, Feedback::Unsubscribe | Feedback::Complaint)
    }

    /// Why the address the message went to must not be used again, if it must not.
    fn suppresses_address(self) -> Option<SuppressionReason> {
        match self {
            Feedback::HardBounce => Some(SuppressionReason::HardBounce),
            Feedback::Complaint => Some(SuppressionReason::Complaint),
            _ => None,
        }
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
            "SELECT profile_id, journey_id, step, channel_id, channel, variant, payload FROM outbox WHERE tenant_id = ",
        );
        send.bind(tenant).push(" AND idempotency_key = ").bind(key.to_owned());
        let row = send.fetch_one(&txn).await?.ok_or(CampaignsError::NotFound)?;
        let profile = ProfileId::from_uuid(row.try_get("", "profile_id")?);
        let channel: String = row.try_get("", "channel")?;
        let touch = Touch {
            profile,
            kind: feedback.touchpoint_kind(),
            channel: channel.clone(),
            channel_id: ChannelId::from_uuid(row.try_get("", "channel_id")?),
            journey: JourneyId::from_uuid(row.try_get("", "journey_id")?),
            step: row.try_get("", "step")?,
            variant: row.try_get("", "variant")?,
            device: device.map(str::to_owned),
        };
        insert_touchpoints(&txn, tenant, [touch], now).await?;
        if let Some(reason) = feedback.suppresses_address() {
            let payload: serde_json::Value = row.try_get("", "payload")?;
            if let Some(address) = sent_to(&channel, &payload) {
                let source = format!("feedback:{key}");
                address_suppressions::suppress(&txn, &scope, &address, reason, &source, now).await?;
            }
        }
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

/// The address a send went to, as the adapter received it (`profile.email` or `profile.phone`
/// of the payload, named after the channel's address kind), already normalised when it was
/// read from the identity graph.
fn sent_to(channel: &str, payload: &serde_json::Value) -> Option<Identity> {
    let kind = ChannelKind::parse(channel).ok()?.address_kind()?;
    let value = payload.get("profile")?.get(kind.as_str())?.as_str()?;
    Some(Identity { kind, value: value.to_owned() })
}
