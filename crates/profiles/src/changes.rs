//! The change feed: every profile whose data changed is recorded in `profile_changes` in the
//! transaction that changed it, and the workspace is marked in `pending_work`, so consumers
//! (real-time segments) see exactly the committed changes, even those of other replicas. A
//! profile changed again before a consumer took it keeps one row with a new `change_id`.

use crate::sql::Sql;
use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use std::collections::BTreeSet;
use uuid::Uuid;

/// What changed about a profile, as consumers of the feed match it against what they read:
/// `traits`, `identities`, `consent`, `event:<name>` for each event (its name, or its type when
/// it has none, such as `event:identify`), or everything (`*`: merges, unmerges, erasure).
/// Stored as one text, `|traits|event:Order Completed|`, or `*`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topics {
    everything: bool,
    topics: BTreeSet<String>,
}

impl Topics {
    pub const TRAITS: &'static str = "traits";
    pub const IDENTITIES: &'static str = "identities";
    pub const CONSENT: &'static str = "consent";

    pub fn everything() -> Self {
        Self { everything: true, topics: BTreeSet::new() }
    }

    pub fn add(&mut self, topic: &str) {
        if !self.everything {
            self.topics.insert(topic.to_owned());
        }
    }

    pub fn add_event(&mut self, name: &str) {
        self.add(&format!("event:{name}"));
    }

    pub fn encode(&self) -> String {
        if self.everything {
            return "*".to_owned();
        }
        let mut text = String::from("|");
        for topic in &self.topics {
            text.push_str(topic);
            text.push('|');
        }
        text
    }

    pub fn decode(text: &str) -> Self {
        if text == "*" {
            return Self::everything();
        }
        Self {
            everything: false,
            topics: text.split('|').filter(|t| !t.is_empty()).map(str::to_owned).collect(),
        }
    }

    /// Whether a change on these topics can affect a reader of `topic`; `event:*` reads every
    /// event.
    pub fn touches(&self, topic: &str) -> bool {
        if self.everything {
            return true;
        }
        match topic.strip_suffix('*') {
            Some(prefix) => self.topics.iter().any(|t| t.starts_with(prefix)),
            None => self.topics.contains(topic),
        }
    }
}

/// The queue name of the change feed in `pending_work`.
pub const CHANGES_WORK: &str = "profile_changes";

/// Rows per statement.
const BATCH: usize = 1000;

/// Records that `profiles` changed at `now` on `topics`, if anyone has subscribed to the
/// workspace's feed.
pub(crate) async fn record<C: ConnectionTrait>(
    conn: &C,
    tenant: Uuid,
    profiles: &[Uuid],
    topics: &Topics,
    now: DateTime<Utc>,
) -> Result<(), sea_orm::DbErr> {
    if profiles.is_empty() {
        return Ok(());
    }
    let mut subscribed = Sql::new("SELECT 1 AS one FROM change_feed_subscriptions WHERE tenant_id = ");
    subscribed.bind(tenant).push(" LIMIT 1");
    if subscribed.fetch_one(conn).await?.is_none() {
        return Ok(());
    }
    let topics = topics.encode();
    for chunk in profiles.chunks(BATCH) {
        let mut insert = Sql::new(
            "INSERT INTO profile_changes (tenant_id, profile_id, change_id, changed_at, topics) VALUES ",
        );
        for (i, profile) in chunk.iter().enumerate() {
            if i > 0 {
                insert.push(", ");
            }
            insert
                .push("(")
                .bind(tenant)
                .push(", ")
                .bind(*profile)
                .push(", ")
                .bind(Uuid::now_v7())
                .push(", ")
                .bind(now)
                .push(", ")
                .bind(topics.clone())
                .push(")");
        }
        // A profile changed again before it was taken: the topics of both changes, kept
        // simple and safe as "everything" when they differ.
        insert.push(
            " ON CONFLICT (tenant_id, profile_id) DO UPDATE SET change_id = excluded.change_id, \
             changed_at = excluded.changed_at, topics = CASE WHEN profile_changes.topics = excluded.topics \
             THEN excluded.topics ELSE '*' END",
        );
        insert.execute(conn).await?;
    }
    platform::work_queue::mark(conn, CHANGES_WORK, tenant, now).await
}

impl crate::Profiles {
    /// Subscribes `consumer` to the workspace's change feed: from this commit on, every change
    /// to a profile of the workspace is recorded. Subscribe before reading the data in full, so
    /// no change falls between the two.
    pub async fn subscribe_to_changes(
        &self,
        scope: &platform::TenantScope,
        consumer: &str,
    ) -> crate::Result<()> {
        let txn = scope.begin_write(self.db()).await?;
        let mut insert =
            Sql::new("INSERT INTO change_feed_subscriptions (tenant_id, consumer, created_at) VALUES (");
        insert
            .bind(scope.tenant_id().as_uuid())
            .push(", ")
            .bind(consumer.to_owned())
            .push(", ")
            .bind(self.now())
            .push(") ON CONFLICT (tenant_id, consumer) DO NOTHING");
        insert.execute(&txn).await?;
        txn.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Topics;

    #[test]
    fn topics_round_trip_and_match() {
        let mut topics = Topics::default();
        topics.add(Topics::TRAITS);
        topics.add_event("Order Completed");
        let text = topics.encode();
        assert_eq!(text, "|event:Order Completed|traits|");
        let read = Topics::decode(&text);
        assert_eq!(read, topics);
        assert!(read.touches("traits"));
        assert!(read.touches("event:Order Completed"));
        assert!(read.touches("event:*"));
        assert!(!read.touches("event:Page Viewed"));
        assert!(!read.touches("consent"));
        let everything = Topics::decode("*");
        assert!(everything.touches("consent") && everything.touches("event:*"));
        let mut everything = Topics::everything();
        everything.add("traits");
        assert_eq!(everything.encode(), "*");
    }
}
