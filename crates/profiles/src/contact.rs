//! What campaigns need to reach people, read for many people at once inside the caller's
//! transaction (the journey executor decides for a batch of enrollments in one transaction),
//! and the trait updates journeys make, written under the workspace's graph lock like every
//! other change to a profile.

use crate::address_suppressions::SuppressedAddresses;
use crate::consent::{self, Consent, ContactDecision};
use crate::profile_row::{self, ProfileRow};
use crate::service::{Profiles, Result};
use crate::sql::Sql;
use crate::{Identity, IdentityKind};
use crate::{changes::Topics, settings, traits};
use chrono::{DateTime, Utc};
use kernel::ProfileId;
use platform::TenantScope;
use sea_orm::ConnectionTrait;
use serde_json::{Map, Value};
use std::collections::HashMap;
use uuid::Uuid;

/// Where a merged profile's data lives now is followed at most this many merges deep.
const MAX_MERGE_HOPS: usize = 8;

/// One person as a sender sees them: trait values, reachable addresses and consent history.
#[derive(Debug, Clone)]
pub struct ContactSheet {
    /// The live profile (the survivor when the id asked for was merged).
    pub id: ProfileId,
    pub traits: Map<String, Value>,
    /// Addresses that may be used: those on the suppression list are left out (and counted
    /// below, so a sender can tell "suppressed" from "no address").
    pub emails: Vec<String>,
    pub phones: Vec<String>,
    pub suppressed_emails: usize,
    pub suppressed_phones: usize,
    /// Every consent record, newest first.
    pub consents: Vec<Consent>,
}

impl ContactSheet {
    /// The usable addresses of `kind` (email or phone; none for other kinds) and how many of
    /// that kind are on the suppression list.
    pub fn addresses(&self, kind: &IdentityKind) -> (&[String], usize) {
        match kind {
            IdentityKind::Email => (&self.emails, self.suppressed_emails),
            IdentityKind::Phone => (&self.phones, self.suppressed_phones),
            _ => (&[], 0),
        }
    }

    /// Whether this person may be contacted for `purpose` on `channel` at `now`: minors never
    /// for marketing, then the most specific, latest consent record.
    pub fn decision(&self, purpose: &str, channel: &str, now: DateTime<Utc>) -> ContactDecision {
        if consent::is_minor(&self.traits, now) {
            return ContactDecision::Minor;
        }
        consent::decide(&self.consents, purpose, channel)
    }
}

/// Contact sheets for `ids`, keyed by the id asked for. Erased profiles are left out.
pub async fn contact_sheets<C: ConnectionTrait>(
    conn: &C,
    scope: &TenantScope,
    ids: &[ProfileId],
) -> Result<HashMap<ProfileId, ContactSheet>> {
    let tenant = scope.tenant_id().as_uuid();
    // Asked id → live id, following merges.
    let mut live: HashMap<ProfileId, ProfileId> = HashMap::new();
    let mut rows: HashMap<ProfileId, ProfileRow> = HashMap::new();
    let mut wanted: Vec<ProfileId> = ids.to_vec();
    let mut pointing: HashMap<ProfileId, Vec<ProfileId>> = ids.iter().map(|id| (*id, vec![*id])).collect();
    for _ in 0..MAX_MERGE_HOPS {
        if wanted.is_empty() {
            break;
        }
        let mut next = Vec::new();
        let mut next_pointing: HashMap<ProfileId, Vec<ProfileId>> = HashMap::new();
        for row in profile_row::load(conn, tenant, &wanted).await? {
            let askers = pointing.remove(&row.id).unwrap_or_default();
            match row.merged_into {
                Some(survivor) => {
                    next.push(survivor);
                    next_pointing.entry(survivor).or_default().extend(askers);
                }
                None => {
                    for asker in askers {
                        live.insert(asker, row.id);
                    }
                    rows.insert(row.id, row);
                }
            }
        }
        wanted = next;
        pointing = next_pointing;
    }
    let mut sheets: HashMap<ProfileId, ContactSheet> = rows
        .into_values()
        .map(|row| {
            let sheet = ContactSheet {
                id: row.id,
                traits: traits::values(&row.traits),
                emails: Vec::new(),
                phones: Vec::new(),
                suppressed_emails: 0,
                suppressed_phones: 0,
                consents: Vec::new(),
            };
            (row.id, sheet)
        })
        .collect();
    if !sheets.is_empty() {
        let live_ids: Vec<Uuid> = sheets.keys().map(ProfileId::as_uuid).collect();
        let mut identities = Sql::new("SELECT profile_id, kind, value FROM identities WHERE tenant_id = ");
        identities
            .bind(tenant)
            .push(" AND kind IN ('email', 'phone') AND profile_id IN ")
            .bind_list(live_ids.iter().copied())
            .push(" ORDER BY created_at, value");
        let mut addresses: Vec<(ProfileId, Identity)> = Vec::new();
        for row in identities.fetch_all(conn).await? {
            let profile = ProfileId::from_uuid(row.try_get("", "profile_id")?);
            let kind: IdentityKind = row.try_get::<String>("", "kind")?.parse()?;
            addresses.push((profile, Identity { kind, value: row.try_get("", "value")? }));
        }
        let identities: Vec<Identity> = addresses.iter().map(|(_, identity)| identity.clone()).collect();
        let suppressed = SuppressedAddresses::among(conn, tenant, &identities).await?;
        for (profile, identity) in addresses {
            let Some(sheet) = sheets.get_mut(&profile) else { continue };
            let is_email = identity.kind == IdentityKind::Email;
            match (suppressed.contains(&identity), is_email) {
                (false, true) => sheet.emails.push(identity.value),
                (false, false) => sheet.phones.push(identity.value),
                (true, true) => sheet.suppressed_emails += 1,
                (true, false) => sheet.suppressed_phones += 1,
            }
        }
        let mut consents = Sql::new(
            "SELECT profile_id, purpose, channel, granted, source, recorded_at FROM consents WHERE tenant_id = ",
        );
        consents.bind(tenant).push(" AND profile_id IN ").bind_list(live_ids).push(" ORDER BY id DESC");
        for row in consents.fetch_all(conn).await? {
            let profile = ProfileId::from_uuid(row.try_get("", "profile_id")?);
            let Some(sheet) = sheets.get_mut(&profile) else { continue };
            sheet.consents.push(Consent {
                purpose: row.try_get("", "purpose")?,
                channel: row.try_get("", "channel")?,
                granted: row.try_get("", "granted")?,
                source: row.try_get("", "source")?,
                recorded_at: row.try_get("", "recorded_at")?,
            });
        }
    }
    Ok(live
        .into_iter()
        .filter_map(|(asked, id)| sheets.get(&id).map(|sheet| (asked, sheet.clone())))
        .collect())
}

impl Profiles {
    /// Sets traits on several profiles from `source` (a journey's "update trait" step), under
    /// the workspace's graph lock so a concurrent chunk of events cannot overwrite them, with
    /// the workspace's source precedence, and records the change for real-time segments.
    pub async fn set_traits(
        &self,
        scope: &TenantScope,
        updates: &[(ProfileId, Map<String, Value>)],
        source: &str,
    ) -> Result<()> {
        if updates.is_empty() {
            return Ok(());
        }
        let tenant = scope.tenant_id().as_uuid();
        let graph = self.graph_transaction(scope).await?;
        let now = self.now();
        let precedence = settings::load(&graph.txn, tenant).await?.precedence;
        let ids: Vec<ProfileId> = updates.iter().map(|(id, _)| *id).collect();
        let mut rows: HashMap<ProfileId, ProfileRow> = profile_row::load(&graph.txn, tenant, &ids)
            .await?
            .into_iter()
            .filter(|row| row.merged_into.is_none())
            .map(|row| (row.id, row))
            .collect();
        for (id, values) in updates {
            if let Some(row) = rows.get_mut(id)
                && traits::apply(&mut row.traits, values, source, now, &precedence)
            {
                row.updated_at = now;
            }
        }
        let changed: Vec<&ProfileRow> = rows.values().filter(|row| row.updated_at == now).collect();
        let mut topics = Topics::default();
        topics.add(Topics::TRAITS);
        profile_row::save_and_record(&graph.txn, tenant, &changed, &topics).await?;
        graph.commit().await
    }
}
