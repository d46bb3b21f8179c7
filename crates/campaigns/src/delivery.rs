//! Delivery: the outbox worker hands queued sends to their channel's adapter. A send is
//! claimed first (a lease, committed), then delivered, then marked sent, so a worker that dies
//! mid-delivery leaves a claim that expires and is retried under the same idempotency key —
//! the receiver sees one key however often it is asked. Failures are retried with backoff,
//! then dead-lettered with the reason.

use crate::channel::Delivery;
use crate::channels;
use crate::error::Result;
use crate::executor::{Touch, insert_touchpoints};
use crate::service::Campaigns;
use chrono::Duration;
use hmac::{Hmac, Mac};
use kernel::{ChannelId, JourneyId, ProfileId, WorkspaceId};
use platform::TenantScope;
use platform::sql::Sql;
use platform::{Backend, metrics::Metrics, work_queue};
use serde_json::Value;
use sha2::Sha256;
use std::collections::HashMap;
use uuid::Uuid;

/// Sends claimed per transaction.
const BATCH: i64 = 200;
/// Attempts before a send is dead-lettered.
pub const MAX_ATTEMPTS: i32 = 5;
/// Deliveries in flight at once per worker.
const CONCURRENCY: usize = 32;

/// What a delivery round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryRound {
    pub sent: usize,
    pub retried: usize,
    pub dead: usize,
}

/// The outcome of one attempt.
enum Attempt {
    Delivered,
    /// Worth trying again later (a timeout, a 5xx, a 429).
    Retry(String),
    /// Will never succeed as it is (a 4xx, a misconfigured channel).
    Fail(String),
}

struct Claimed {
    id: Uuid,
    key: String,
    channel: ChannelId,
    attempts: i32,
    payload: Value,
    journey: Uuid,
    step: String,
    profile: Uuid,
    kind: String,
    variant: Option<String>,
}

impl Campaigns {
    /// Delivers queued sends until `shutdown` turns true.
    /// Each round's outcomes are counted in `metrics`.
    pub async fn run_delivery(self, mut shutdown: tokio::sync::watch::Receiver<bool>, metrics: Metrics) {
        loop {
            match self.deliver_due().await {
                Ok(round) => {
                    let sends = &metrics.journey_sends;
                    sends.with_label_values(&["sent"]).inc_by(round.sent as u64);
                    sends.with_label_values(&["retried"]).inc_by(round.retried as u64);
                    sends.with_label_values(&["dead"]).inc_by(round.dead as u64);
                }
                Err(error) => tracing::error!(error = %error, "delivery round failed"),
            }
            tokio::select! {
                _ = self.sends_ready().notified() => {}
                _ = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }

    /// Delivers every send that is due, in every workspace with journeys.
    pub async fn deliver_due(&self) -> Result<DeliveryRound> {
        let mut total = DeliveryRound::default();
        // Sends exist only where journeys do: the workspaces marked for them.
        let workspaces =
            work_queue::marked(self.db().connection(), crate::journeys::JOURNEYS_WORK, false).await?;
        for workspace in workspaces {
            let scope = self.tenancy().queued_work_scope(workspace).await?;
            loop {
                let (round, claimed) = self.deliver_batch(&scope).await?;
                total.sent += round.sent;
                total.retried += round.retried;
                total.dead += round.dead;
                if claimed < BATCH as usize {
                    break;
                }
            }
        }
        Ok(total)
    }

    async fn deliver_batch(&self, scope: &TenantScope) -> Result<(DeliveryRound, usize)> {
        let tenant = scope.tenant_id().as_uuid();
        let workspace = WorkspaceId::from_uuid(tenant);
        let now = self.now();
        // Claim.
        let txn = scope.begin_write(self.db()).await?;
        let mut select = Sql::new(
            "SELECT id, idempotency_key, channel_id, channel, variant, attempts, payload, journey_id, step, \
             profile_id FROM outbox WHERE tenant_id = ",
        );
        select
            .bind(tenant)
            .push(" AND status IN ('pending', 'sending') AND next_attempt_at <= ")
            .bind(now)
            .push(" ORDER BY next_attempt_at LIMIT ")
            .bind(BATCH);
        if self.db().backend() == Backend::Postgres {
            select.push(" FOR UPDATE SKIP LOCKED");
        }
        let mut claimed = Vec::new();
        for row in select.fetch_all(&txn).await? {
            claimed.push(Claimed {
                id: row.try_get("", "id")?,
                key: row.try_get("", "idempotency_key")?,
                channel: ChannelId::from_uuid(row.try_get("", "channel_id")?),
                attempts: row.try_get("", "attempts")?,
                payload: row.try_get("", "payload")?,
                journey: row.try_get("", "journey_id")?,
                step: row.try_get("", "step")?,
                profile: row.try_get("", "profile_id")?,
                kind: row.try_get("", "channel")?,
                variant: row.try_get("", "variant")?,
            });
        }
        if claimed.is_empty() {
            txn.commit().await?;
            return Ok((DeliveryRound::default(), 0));
        }
        let mut lease = Sql::new("UPDATE outbox SET status = 'sending', next_attempt_at = ");
        lease
            .bind(now + self.delivery_lease())
            .push(" WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND id IN ")
            .bind_list(claimed.iter().map(|c| c.id));
        lease.execute(&txn).await?;
        let mut targets: HashMap<ChannelId, (Delivery, Option<String>)> = HashMap::new();
        for send in &claimed {
            if let std::collections::hash_map::Entry::Vacant(slot) = targets.entry(send.channel) {
                let channel = channels::load(&txn, workspace, send.channel).await?;
                let secret = channels::signing_secret(&txn, workspace, send.channel).await?;
                slot.insert((channel.delivery, secret));
            }
        }
        txn.commit().await?;

        // Deliver, several at once.
        let mut outcomes: Vec<(usize, Attempt)> = Vec::with_capacity(claimed.len());
        for (batch_index, chunk) in claimed.chunks(CONCURRENCY).enumerate() {
            let attempts = chunk.iter().enumerate().map(|(i, send)| {
                let target = targets.get(&send.channel);
                async move {
                    let outcome = match target {
                        Some((delivery, secret)) => self.attempt(delivery, secret.as_deref(), send).await,
                        None => Attempt::Fail("the channel no longer exists".into()),
                    };
                    (batch_index * CONCURRENCY + i, outcome)
                }
            });
            outcomes.extend(futures::future::join_all(attempts).await);
        }

        // Record: the sends delivered in one statement each for the outbox and the
        // touchpoints; failures (rare) one by one, each with its reason.
        let now = self.now();
        let mut round = DeliveryRound::default();
        let txn = scope.begin_write(self.db()).await?;
        let mut delivered: Vec<&Claimed> = Vec::new();
        for (index, outcome) in outcomes {
            let send = &claimed[index];
            let mut update = Sql::new("UPDATE outbox SET attempts = ");
            update.bind(send.attempts + 1);
            match &outcome {
                Attempt::Delivered => {
                    delivered.push(send);
                    continue;
                }
                Attempt::Retry(reason) if send.attempts + 1 < MAX_ATTEMPTS => {
                    round.retried += 1;
                    update
                        .push(", status = 'pending', next_attempt_at = ")
                        .bind(now + backoff(send.attempts + 1))
                        .push(", last_error = ")
                        .bind(reason.clone());
                }
                Attempt::Retry(reason) | Attempt::Fail(reason) => {
                    round.dead += 1;
                    update.push(", status = 'dead', last_error = ").bind(reason.clone());
                }
            }
            update.push(" WHERE tenant_id = ").bind(tenant).push(" AND id = ").bind(send.id);
            update.execute(&txn).await?;
        }
        round.sent = delivered.len();
        for chunk in delivered.chunks(100) {
            let mut sent = Sql::new(
                "UPDATE outbox SET attempts = attempts + 1, status = 'sent', last_error = NULL, sent_at = ",
            );
            sent.bind(now)
                .push(" WHERE tenant_id = ")
                .bind(tenant)
                .push(" AND id IN ")
                .bind_list(chunk.iter().map(|send| send.id));
            sent.execute(&txn).await?;
            let touches = chunk.iter().map(|send| Touch {
                profile: ProfileId::from_uuid(send.profile),
                kind: "accepted",
                channel: send.kind.clone(),
                channel_id: send.channel,
                journey: JourneyId::from_uuid(send.journey),
                step: send.step.clone(),
                variant: send.variant.clone(),
                device: None,
            });
            insert_touchpoints(&txn, tenant, touches, now).await?;
        }
        txn.commit().await?;
        Ok((round, claimed.len()))
    }

    async fn attempt(&self, delivery: &Delivery, secret: Option<&str>, send: &Claimed) -> Attempt {
        match delivery {
            Delivery::Webhook { url } => self.post_webhook(url, secret, send).await,
            Delivery::Smtp { host, port, from, security, credentials } => {
                let relay = crate::smtp::Relay {
                    host,
                    port: *port,
                    security: *security,
                    credentials: credentials.as_ref(),
                };
                match self.relays().send(&relay, from, &send.key, &send.payload).await {
                    crate::smtp::Handover::Accepted => Attempt::Delivered,
                    crate::smtp::Handover::Transient(reason) => Attempt::Retry(reason),
                    crate::smtp::Handover::Permanent(reason) => Attempt::Fail(reason),
                }
            }
            other => Attempt::Fail(format!("the {} adapter does not deliver messages yet", other.adapter())),
        }
    }

    async fn post_webhook(&self, url: &str, secret: Option<&str>, send: &Claimed) -> Attempt {
        if !self.webhooks_to_private_addresses() && crate::egress::private_ip_literal(url) {
            return Attempt::Fail(
                "the webhook URL is a private address, which webhooks may not reach".into(),
            );
        }
        let mut body = send.payload.clone();
        if let Value::Object(fields) = &mut body {
            fields.insert("id".into(), Value::String(send.key.clone()));
        }
        let body = body.to_string();
        let timestamp = self.now().timestamp();
        let mut request = self
            .http()
            .post(url)
            .header("content-type", "application/json")
            .header("idempotency-key", &send.key)
            .body(body.clone());
        if let Some(secret) = secret {
            request = request.header("x-passerelle-signature", signature(secret, timestamp, &body));
        }
        match request.send().await {
            Ok(response) if response.status().is_success() => Attempt::Delivered,
            Ok(response) => {
                let status = response.status();
                let reason = format!("the receiver answered {status}");
                if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
                    Attempt::Retry(reason)
                } else {
                    Attempt::Fail(reason)
                }
            }
            // The error names the URL, never the payload.
            Err(error) if crate::egress::refused(&error) => {
                Attempt::Fail(format!("the receiver's address is private: {error}"))
            }
            Err(error) => Attempt::Retry(format!("the receiver could not be reached: {error}")),
        }
    }
}

/// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`: the receiver recomputes it with
/// the channel's secret and rejects old timestamps, so a captured request cannot be replayed.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(format!("{timestamp}.{body}").as_bytes());
            hex::encode(mac.finalize().into_bytes())
        }
        // HMAC takes keys of any length; this arm cannot happen.
        Err(_) => String::new(),
    };
    format!("t={timestamp},v1={mac}")
}

/// 30 s, 2 min, 8 min, 32 min… with the attempt number.
fn backoff(attempts: i32) -> Duration {
    Duration::seconds(30 * 4_i64.pow(attempts.clamp(1, 6) as u32 - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_depend_on_secret_time_and_body() {
        let a = signature("whsec_1", 1_700_000_000, "{}");
        assert!(a.starts_with("t=1700000000,v1="));
        assert_eq!(a.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(a, signature("whsec_2", 1_700_000_000, "{}"));
        assert_ne!(a, signature("whsec_1", 1_700_000_001, "{}"));
        assert_ne!(a, signature("whsec_1", 1_700_000_000, "{ }"));
    }

    #[test]
    fn backoff_grows() {
        assert_eq!(backoff(1), Duration::seconds(30));
        assert_eq!(backoff(2), Duration::seconds(120));
        assert!(backoff(10) <= Duration::seconds(30 * 4_i64.pow(5)));
    }
}
