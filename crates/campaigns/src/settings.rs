//! A workspace's send policy: its timezone, quiet hours (no message arrives at night in the
//! person's own timezone) and frequency caps across every journey, per channel and window.

use crate::channel::ChannelKind;
use crate::error::{CampaignsError, Result};
use crate::service::Campaigns;
use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use kernel::{ProfileId, WorkspaceId};
use platform::sql::Sql;
use sea_orm::ConnectionTrait;
use serde_json::{Map, Value};
use std::collections::HashMap;
use tenancy::{Actor, Permission};
use uuid::Uuid;

/// At most this many sends on a channel (or on every channel) within a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrequencyCap {
    /// `None`: every channel together.
    pub channel: Option<ChannelKind>,
    pub window_seconds: i64,
    pub max_sends: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendSettings {
    pub timezone: String,
    /// Local times `HH:MM`; the window may wrap midnight (22:00–08:00).
    pub quiet_hours: Option<(String, String)>,
    pub caps: Vec<FrequencyCap>,
}

impl Default for SendSettings {
    fn default() -> Self {
        Self { timezone: "UTC".into(), quiet_hours: None, caps: Vec::new() }
    }
}

const MAX_CAPS: usize = 20;
const MAX_CAP_WINDOW_SECONDS: i64 = 90 * 86_400;

impl Campaigns {
    pub async fn send_settings(&self, actor: &Actor, workspace: WorkspaceId) -> Result<SendSettings> {
        let scope = self.authorize(actor, workspace, Permission::Read).await?;
        let txn = scope.begin(self.db()).await?;
        let settings = load(&txn, workspace.as_uuid()).await?;
        txn.commit().await?;
        Ok(settings)
    }

    /// Replaces the workspace's send policy.
    #[tracing::instrument(skip_all, fields(workspace = %workspace))]
    pub async fn set_send_settings(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        settings: SendSettings,
    ) -> Result<SendSettings> {
        let scope = self.authorize(actor, workspace, Permission::Write).await?;
        parse_timezone(&settings.timezone)?;
        if let Some((start, end)) = &settings.quiet_hours {
            for time in [start, end] {
                parse_time(time)?;
            }
            if start == end {
                return Err(CampaignsError::invalid("quiet hours must start and end at different times"));
            }
        }
        if settings.caps.len() > MAX_CAPS {
            return Err(CampaignsError::invalid(format!("at most {MAX_CAPS} frequency caps")));
        }
        for cap in &settings.caps {
            if !(60..=MAX_CAP_WINDOW_SECONDS).contains(&cap.window_seconds) || cap.max_sends < 0 {
                return Err(CampaignsError::invalid(
                    "a frequency cap needs a window of 1 minute to 90 days and a maximum of 0 or more",
                ));
            }
        }
        let tenant = workspace.as_uuid();
        let now = self.now();
        let txn = scope.begin_write(self.db()).await?;
        for table in ["campaign_settings", "frequency_caps"] {
            let mut delete = Sql::new(&format!("DELETE FROM {table} WHERE tenant_id = "));
            delete.bind(tenant);
            delete.execute(&txn).await?;
        }
        let mut insert = Sql::new(
            "INSERT INTO campaign_settings (tenant_id, timezone, quiet_hours_start, quiet_hours_end, updated_at) VALUES (",
        );
        insert
            .bind(tenant)
            .push(", ")
            .bind(settings.timezone.clone())
            .push(", ")
            .bind(settings.quiet_hours.as_ref().map(|q| q.0.clone()))
            .push(", ")
            .bind(settings.quiet_hours.as_ref().map(|q| q.1.clone()))
            .push(", ")
            .bind(now)
            .push(")");
        insert.execute(&txn).await?;
        for cap in &settings.caps {
            let mut insert = Sql::new(
                "INSERT INTO frequency_caps (tenant_id, channel, window_seconds, max_sends) VALUES (",
            );
            insert
                .bind(tenant)
                .push(", ")
                .bind(cap.channel.map(ChannelKind::as_str).unwrap_or("*"))
                .push(", ")
                .bind(cap.window_seconds)
                .push(", ")
                .bind(cap.max_sends)
                .push(") ON CONFLICT (tenant_id, channel, window_seconds) DO UPDATE SET max_sends = excluded.max_sends");
            insert.execute(&txn).await?;
        }
        txn.commit().await?;
        Ok(settings)
    }
}

async fn load<C: ConnectionTrait>(conn: &C, tenant: Uuid) -> Result<SendSettings> {
    let mut settings = SendSettings::default();
    let mut select = Sql::new(
        "SELECT timezone, quiet_hours_start, quiet_hours_end FROM campaign_settings WHERE tenant_id = ",
    );
    select.bind(tenant);
    if let Some(row) = select.fetch_one(conn).await? {
        settings.timezone = row.try_get("", "timezone")?;
        let start: Option<String> = row.try_get("", "quiet_hours_start")?;
        let end: Option<String> = row.try_get("", "quiet_hours_end")?;
        settings.quiet_hours = start.zip(end);
    }
    let mut caps =
        Sql::new("SELECT channel, window_seconds, max_sends FROM frequency_caps WHERE tenant_id = ");
    caps.bind(tenant).push(" ORDER BY channel, window_seconds");
    for row in caps.fetch_all(conn).await? {
        let channel: String = row.try_get("", "channel")?;
        settings.caps.push(FrequencyCap {
            channel: if channel == "*" { None } else { Some(ChannelKind::parse(&channel)?) },
            window_seconds: row.try_get("", "window_seconds")?,
            max_sends: row.try_get("", "max_sends")?,
        });
    }
    Ok(settings)
}

/// The policy as the executor applies it to one batch: the settings, and the sends each
/// person of the batch already had within the longest cap window.
pub(crate) struct SendPolicy {
    timezone: Tz,
    quiet_hours: Option<(NaiveTime, NaiveTime)>,
    caps: Vec<FrequencyCap>,
    history: SendCounts,
}

/// Sends per person: when, and on which kind of channel.
#[derive(Default)]
pub(crate) struct SendCounts(HashMap<ProfileId, Vec<(ChannelKind, DateTime<Utc>)>>);

impl SendCounts {
    pub(crate) fn add(&mut self, profile: ProfileId, kind: ChannelKind, at: DateTime<Utc>) {
        self.0.entry(profile).or_default().push((kind, at));
    }

    fn count(&self, profile: ProfileId, channel: Option<ChannelKind>, since: DateTime<Utc>) -> usize {
        self.0.get(&profile).map_or(0, |sends| {
            sends.iter().filter(|(kind, at)| *at > since && channel.is_none_or(|c| c == *kind)).count()
        })
    }
}

impl SendPolicy {
    pub(crate) async fn load<C: ConnectionTrait>(
        conn: &C,
        tenant: Uuid,
        now: DateTime<Utc>,
        profiles: &[ProfileId],
    ) -> Result<Self> {
        let settings = load(conn, tenant).await?;
        let timezone = parse_timezone(&settings.timezone).unwrap_or(Tz::UTC);
        let quiet_hours = match &settings.quiet_hours {
            Some((start, end)) => Some((parse_time(start)?, parse_time(end)?)),
            None => None,
        };
        let mut history = SendCounts::default();
        if let Some(longest) = settings.caps.iter().map(|c| c.window_seconds).max()
            && !profiles.is_empty()
        {
            let mut select = Sql::new("SELECT profile_id, channel, at FROM touchpoints WHERE tenant_id = ");
            select
                .bind(tenant)
                .push(" AND profile_id IN ")
                .bind_list(profiles.iter().map(ProfileId::as_uuid))
                .push(" AND kind = 'send' AND at > ")
                .bind(now - Duration::seconds(longest));
            for row in select.fetch_all(conn).await? {
                let channel: String = row.try_get("", "channel")?;
                if let Ok(kind) = ChannelKind::parse(&channel) {
                    history.add(
                        ProfileId::from_uuid(row.try_get("", "profile_id")?),
                        kind,
                        row.try_get("", "at")?,
                    );
                }
            }
        }
        Ok(Self { timezone, quiet_hours, caps: settings.caps, history })
    }

    /// Whether one more send on `kind` would break a cap, counting this round's sends too.
    pub(crate) fn capped(
        &self,
        profile: ProfileId,
        kind: ChannelKind,
        sent_now: &SendCounts,
        now: DateTime<Utc>,
    ) -> bool {
        self.caps.iter().filter(|cap| cap.channel.is_none_or(|c| c == kind)).any(|cap| {
            let since = now - Duration::seconds(cap.window_seconds);
            let sent =
                self.history.count(profile, cap.channel, since) + sent_now.count(profile, cap.channel, since);
            sent >= cap.max_sends.max(0) as usize
        })
    }

    /// The person's own timezone (the `timezone` trait, an IANA name), else the workspace's.
    pub(crate) fn timezone_of(&self, traits: Option<&Map<String, Value>>) -> Tz {
        traits
            .and_then(|t| t.get("timezone"))
            .and_then(Value::as_str)
            .and_then(|name| name.parse::<Tz>().ok())
            .unwrap_or(self.timezone)
    }

    /// When quiet hours are on for this person now, the moment they end.
    pub(crate) fn quiet_until(
        &self,
        traits: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let (start, end) = self.quiet_hours?;
        let timezone = self.timezone_of(Some(traits));
        let local = now.with_timezone(&timezone).time();
        let quiet = if start < end { local >= start && local < end } else { local >= start || local < end };
        quiet.then(|| next_local_time(end, timezone, now))
    }
}

/// The workspace's timezone (UTC until one is set).
pub(crate) async fn workspace_timezone<C: ConnectionTrait>(conn: &C, tenant: Uuid) -> Result<Tz> {
    Ok(parse_timezone(&load(conn, tenant).await?.timezone).unwrap_or(Tz::UTC))
}

/// The next moment after `now` when the clock in `timezone` shows `time` ("HH:MM"); an
/// unreadable time (validation prevents it) means now.
pub(crate) fn next_time_of_day(time: &str, timezone: Tz, now: DateTime<Utc>) -> DateTime<Utc> {
    match parse_time(time) {
        Ok(time) => next_local_time(time, timezone, now),
        Err(_) => now,
    }
}

fn next_local_time(time: NaiveTime, timezone: Tz, now: DateTime<Utc>) -> DateTime<Utc> {
    let today = now.with_timezone(&timezone).date_naive();
    for days in 0..=2 {
        let date = today + Duration::days(days);
        if let Some(at) = resolve_local(timezone, date.and_time(time))
            && at > now
        {
            return at;
        }
    }
    now + Duration::days(1)
}

/// The moment a wall clock in `timezone` shows `local`: the earlier one when the clocks go
/// back, and an hour later when the time does not exist that day (the spring-forward gap).
pub(crate) fn resolve_local(timezone: Tz, local: chrono::NaiveDateTime) -> Option<DateTime<Utc>> {
    timezone
        .from_local_datetime(&local)
        .earliest()
        .or_else(|| timezone.from_local_datetime(&(local + Duration::hours(1))).earliest())
        .map(|moment| moment.with_timezone(&Utc))
}

fn parse_time(text: &str) -> Result<NaiveTime> {
    NaiveTime::parse_from_str(text, "%H:%M")
        .map_err(|_| CampaignsError::invalid(format!("\"{text}\" is not a time of day (HH:MM)")))
}

fn parse_timezone(name: &str) -> Result<Tz> {
    name.parse::<Tz>()
        .map_err(|_| CampaignsError::invalid(format!("\"{name}\" is not a timezone (e.g. Europe/Paris)")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_next_time_of_day_is_in_the_persons_timezone() {
        let paris: Tz = "Europe/Paris".parse().unwrap();
        // 07:00 UTC is 08:00 in Paris in winter: 09:00 Paris is an hour later.
        assert_eq!(next_time_of_day("09:00", paris, at("2026-01-10T07:00:00Z")), at("2026-01-10T08:00:00Z"));
        // Past it: tomorrow.
        assert_eq!(next_time_of_day("09:00", paris, at("2026-01-10T09:00:00Z")), at("2026-01-11T08:00:00Z"));
        // 02:30 does not exist in Paris on 2026-03-29 (clocks go 02:00 → 03:00).
        assert_eq!(next_time_of_day("02:30", paris, at("2026-03-29T00:00:00Z")), at("2026-03-29T01:30:00Z"));
    }

    #[test]
    fn quiet_hours_wrap_midnight_and_end_at_their_end() {
        let policy = SendPolicy {
            timezone: Tz::UTC,
            quiet_hours: Some((parse_time("22:00").unwrap(), parse_time("08:00").unwrap())),
            caps: vec![],
            history: SendCounts::default(),
        };
        let mut traits = Map::new();
        assert_eq!(policy.quiet_until(&traits, at("2026-05-01T23:30:00Z")), Some(at("2026-05-02T08:00:00Z")));
        assert_eq!(policy.quiet_until(&traits, at("2026-05-01T03:00:00Z")), Some(at("2026-05-01T08:00:00Z")));
        assert_eq!(policy.quiet_until(&traits, at("2026-05-01T12:00:00Z")), None);
        // 12:00 UTC is 21:00 in Tokyo: not quiet yet; 14:00 UTC is 23:00 there: quiet.
        traits.insert("timezone".into(), Value::String("Asia/Tokyo".into()));
        assert_eq!(policy.quiet_until(&traits, at("2026-05-01T12:00:00Z")), None);
        assert_eq!(policy.quiet_until(&traits, at("2026-05-01T14:00:00Z")), Some(at("2026-05-01T23:00:00Z")));
    }

    #[test]
    fn caps_count_history_and_this_rounds_sends_per_channel_or_all() {
        let person = ProfileId::new();
        let now = at("2026-05-01T12:00:00Z");
        let mut history = SendCounts::default();
        history.add(person, ChannelKind::Email, now - Duration::hours(2));
        let policy = SendPolicy {
            timezone: Tz::UTC,
            quiet_hours: None,
            caps: vec![
                FrequencyCap { channel: Some(ChannelKind::Email), window_seconds: 86_400, max_sends: 2 },
                FrequencyCap { channel: None, window_seconds: 3_600, max_sends: 1 },
            ],
            history,
        };
        let mut sent_now = SendCounts::default();
        assert!(!policy.capped(person, ChannelKind::Email, &sent_now, now));
        sent_now.add(person, ChannelKind::Sms, now);
        // The all-channel cap: one send within the hour already.
        assert!(policy.capped(person, ChannelKind::Email, &sent_now, now));
        assert!(!policy.capped(
            person,
            ChannelKind::Email,
            &SendCounts::default(),
            now + Duration::hours(23)
        ));
        assert!(!policy.capped(ProfileId::new(), ChannelKind::Email, &sent_now, now));
    }
}
