//! Consent per purpose and channel, with its source and full history, and the check later
//! issues make at the moment of use: consent, and the minors rule.

use crate::{Profiles, ProfilesError, read::live_profile, service::Result, sql::Sql, traits};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use kernel::{ProfileId, WorkspaceId};
use platform::TenantScope;
use serde_json::{Map, Value};
use tenancy::{Actor, Permission};
use uuid::Uuid;

/// A consent record. `channel` is `*` for consent given for a purpose on every channel.
#[derive(Debug, Clone)]
pub struct Consent {
    pub purpose: String,
    pub channel: String,
    pub granted: bool,
    pub source: String,
    pub recorded_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct ConsentInput {
    pub purpose: String,
    pub channel: String,
    pub granted: bool,
    pub source: String,
}

/// Below this age a person is a minor and excluded from marketing (GDPR art. 8 upper bound;
/// it also covers COPPA's 13).
pub const MINIMUM_MARKETING_AGE: i32 = 16;

/// Why someone may or may not be contacted for a purpose on a channel now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactDecision {
    Allowed,
    NoConsent,
    ConsentWithdrawn,
    Minor,
}

fn check_name(what: &str, raw: &str, allow_any: bool) -> Result<String> {
    let name = raw.trim().to_lowercase();
    let ok = (allow_any && name == "*")
        || (name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && name.len() <= 32
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
    if !ok {
        return Err(ProfilesError::invalid(format!(
            "the {what} must be lower-case letters, digits and _ (at most 32){}",
            if allow_any { ", or * for every channel" } else { "" }
        )));
    }
    Ok(name)
}

impl Profiles {
    /// Records a consent decision; earlier ones stay in the history.
    #[tracing::instrument(skip_all, fields(workspace = %workspace))]
    pub async fn set_consent(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        profile: ProfileId,
        input: ConsentInput,
    ) -> Result<Consent> {
        let scope = self.tenancy().authorize(actor, workspace, Permission::Write).await?;
        let purpose = check_name("purpose", &input.purpose, false)?;
        let channel = check_name("channel", &input.channel, true)?;
        let source = input.source.trim().to_owned();
        if source.is_empty() || source.len() > 64 {
            return Err(ProfilesError::invalid("the consent source has 1 to 64 bytes"));
        }
        let graph = self.graph_transaction(&scope).await?;
        let row = live_profile(&graph.txn, &scope, profile).await?;
        let now = self.now();
        let mut insert = Sql::new(
            "INSERT INTO consents (tenant_id, id, profile_id, first_profile_id, purpose, channel, granted, source, \
             recorded_at) VALUES (",
        );
        insert
            .bind(scope.tenant_id().as_uuid())
            .push(", ")
            .bind(Uuid::now_v7())
            .push(", ")
            .bind(row.id.as_uuid())
            .push(", ")
            .bind(row.id.as_uuid())
            .push(", ")
            .bind(purpose.clone())
            .push(", ")
            .bind(channel.clone())
            .push(", ")
            .bind(input.granted)
            .push(", ")
            .bind(source.clone())
            .push(", ")
            .bind(now)
            .push(")");
        insert.execute(&graph.txn).await?;
        let topics = {
            let mut topics = crate::changes::Topics::default();
            topics.add(crate::changes::Topics::CONSENT);
            topics
        };
        crate::changes::record(&graph.txn, scope.tenant_id().as_uuid(), &[row.id.as_uuid()], &topics, now)
            .await?;
        graph.commit().await?;
        Ok(Consent { purpose, channel, granted: input.granted, source, recorded_at: now })
    }

    /// Every consent record of a profile, newest first.
    pub async fn consent_history(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        profile: ProfileId,
    ) -> Result<Vec<Consent>> {
        let scope = self.tenancy().authorize(actor, workspace, Permission::Read).await?;
        let txn = scope.begin(self.db()).await?;
        let row = live_profile(&txn, &scope, profile).await?;
        let history = history(&txn, &scope, row.id).await?;
        txn.commit().await?;
        Ok(history)
    }

    /// The consent in force per purpose and channel: the latest record of each.
    pub async fn consents(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        profile: ProfileId,
    ) -> Result<Vec<Consent>> {
        let mut current: Vec<Consent> = Vec::new();
        for record in self.consent_history(actor, workspace, profile).await? {
            if !current.iter().any(|c| c.purpose == record.purpose && c.channel == record.channel) {
                current.push(record);
            }
        }
        Ok(current)
    }

    /// Whether a profile may be contacted for `purpose` on `channel` now. Later issues
    /// (segments, campaigns) call this at the moment of use, with the scope they hold.
    pub async fn contact_decision(
        &self,
        scope: &TenantScope,
        profile: ProfileId,
        purpose: &str,
        channel: &str,
    ) -> Result<ContactDecision> {
        let txn = scope.begin(self.db()).await?;
        let row = live_profile(&txn, scope, profile).await?;
        let history = history(&txn, scope, row.id).await?;
        txn.commit().await?;
        if is_minor(&traits::values(&row.traits), self.now()) {
            return Ok(ContactDecision::Minor);
        }
        Ok(decide(&history, purpose, channel))
    }
}

async fn history<C: sea_orm::ConnectionTrait>(
    conn: &C,
    scope: &TenantScope,
    profile: ProfileId,
) -> Result<Vec<Consent>> {
    let mut select =
        Sql::new("SELECT purpose, channel, granted, source, recorded_at FROM consents WHERE tenant_id = ");
    select
        .bind(scope.tenant_id().as_uuid())
        .push(" AND profile_id = ")
        .bind(profile.as_uuid())
        .push(" ORDER BY id DESC");
    select
        .fetch_all(conn)
        .await?
        .iter()
        .map(|r| {
            Ok(Consent {
                purpose: r.try_get("", "purpose")?,
                channel: r.try_get("", "channel")?,
                granted: r.try_get("", "granted")?,
                source: r.try_get("", "source")?,
                recorded_at: r.try_get("", "recorded_at")?,
            })
        })
        .collect()
}

/// The most specific record wins: one for this channel over one for every channel (`*`);
/// within each, the latest. No record means no consent.
pub fn decide(history_newest_first: &[Consent], purpose: &str, channel: &str) -> ContactDecision {
    let latest = |ch: &str| history_newest_first.iter().find(|c| c.purpose == purpose && c.channel == ch);
    match latest(channel).or_else(|| latest("*")) {
        Some(c) if c.granted => ContactDecision::Allowed,
        Some(_) => ContactDecision::ConsentWithdrawn,
        None => ContactDecision::NoConsent,
    }
}

/// A minor by declared flag, age, or date of birth.
pub fn is_minor(traits: &Map<String, Value>, now: DateTime<Utc>) -> bool {
    for flag in ["isMinor", "is_minor", "minor"] {
        if traits.get(flag).and_then(Value::as_bool) == Some(true) {
            return true;
        }
    }
    if let Some(age) = traits.get("age").and_then(Value::as_f64) {
        return age < f64::from(MINIMUM_MARKETING_AGE);
    }
    for field in ["birthday", "dateOfBirth", "date_of_birth", "birthdate"] {
        let born = traits
            .get(field)
            .and_then(Value::as_str)
            .and_then(|s| NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d").ok());
        if let Some(born) = born {
            let today = now.date_naive();
            let mut age = today.year() - born.year();
            if (today.month(), today.day()) < (born.month(), born.day()) {
                age -= 1;
            }
            return age < MINIMUM_MARKETING_AGE;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn consent(channel: &str, granted: bool) -> Consent {
        Consent {
            purpose: "marketing".into(),
            channel: channel.into(),
            granted,
            source: "t".into(),
            recorded_at: Utc::now(),
        }
    }

    #[test]
    fn the_most_specific_latest_record_decides() {
        assert_eq!(decide(&[], "marketing", "email"), ContactDecision::NoConsent);
        let history = [consent("email", false), consent("*", true)];
        assert_eq!(decide(&history, "marketing", "email"), ContactDecision::ConsentWithdrawn);
        assert_eq!(decide(&history, "marketing", "sms"), ContactDecision::Allowed);
        assert_eq!(decide(&history, "analytics", "sms"), ContactDecision::NoConsent);
    }

    #[test]
    fn minors_by_flag_age_or_birthday() {
        let now = crate::message::parse_time("2026-11-23T00:00:00Z").unwrap();
        let traits = |v: Value| v.as_object().cloned().unwrap();
        assert!(is_minor(&traits(json!({"age": 12})), now));
        assert!(!is_minor(&traits(json!({"age": 30})), now));
        assert!(is_minor(&traits(json!({"birthday": "2010-11-24"})), now));
        assert!(!is_minor(&traits(json!({"birthday": "2010-11-23"})), now));
        assert!(is_minor(&traits(json!({"isMinor": true})), now));
        assert!(!is_minor(&traits(json!({})), now));
    }
}
