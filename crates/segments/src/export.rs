//! Audience exports: a segment's people as a CSV file for one channel, streamed in batches.
//! Each person is checked at the moment of export — consent for the purpose on that channel,
//! the minors rule — and people without the identifier the format needs are left out.
//!
//! - `hashed`: SHA-256 of the normalised email and phone (E.164), the form ad platforms and
//!   walled gardens match on; the plain identifiers never leave.
//! - `postal`: name and address, for direct mail.
//! - `phone`: phone (E.164) and name, for call centres.

use crate::error::{Result, SegmentsError};
use crate::service::Segments;
use chrono::{DateTime, Utc};
use kernel::{ProfileId, SegmentId, WorkspaceId};
use platform::TenantScope;
use platform::sql::Sql;
use profiles::PostalAddress;
use profiles::consent::{self, Consent, ContactDecision};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use tenancy::{Actor, AuditAction, Permission};
use uuid::Uuid;

/// Members read per batch.
const BATCH: i64 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudienceFormat {
    Hashed,
    Postal,
    Phone,
}

impl AudienceFormat {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "hashed" => Ok(Self::Hashed),
            "postal" => Ok(Self::Postal),
            "phone" => Ok(Self::Phone),
            other => Err(SegmentsError::invalid(format!(
                "`{other}` is not an audience format: hashed (ad platforms), postal (direct mail) or phone (call centres)"
            ))),
        }
    }

    fn header(self) -> &'static [&'static str] {
        match self {
            Self::Hashed => &["email_sha256", "phone_sha256"],
            Self::Postal => &["name", "street", "postal_code", "city", "country"],
            Self::Phone => &["phone", "name"],
        }
    }
}

/// What to export: the format, and the channel and purpose consent is checked for.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    pub format: AudienceFormat,
    pub channel: String,
    pub purpose: String,
}

/// An export in progress: [`AudienceExport::next_chunk`] gives the file piece by piece.
pub struct AudienceExport {
    segments: Segments,
    scope: TenantScope,
    segment: SegmentId,
    request: ExportRequest,
    now: DateTime<Utc>,
    after: Option<Uuid>,
    header_written: bool,
    finished: bool,
    /// People written and left out so far, for the log line at the end.
    written: u64,
    skipped: u64,
}

impl Segments {
    /// Starts an export of a segment's current members. Marketers and above; recorded in the
    /// audit log, since the file holds personal data.
    #[tracing::instrument(skip_all, fields(workspace = %workspace, segment = %segment))]
    pub async fn start_export(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        segment: SegmentId,
        request: ExportRequest,
    ) -> Result<AudienceExport> {
        let scope = self.tenancy().authorize(actor, workspace, Permission::Write).await?;
        crate::ast::check_word("channel", &request.channel)?;
        crate::ast::check_word("purpose", &request.purpose)?;
        // The audit entry is a write: on SQLite the transaction must say so from the start.
        let txn = scope.begin_write(self.db()).await?;
        crate::service::load(&txn, workspace, segment).await?;
        self.tenancy()
            .audit_data_access(&txn, actor, workspace, AuditAction::AudienceExported, segment.as_uuid())
            .await?;
        txn.commit().await?;
        Ok(AudienceExport {
            segments: self.clone(),
            scope,
            segment,
            request,
            now: self.now(),
            after: None,
            header_written: false,
            finished: false,
            written: 0,
            skipped: 0,
        })
    }
}

impl AudienceExport {
    /// The next piece of the CSV file, or `None` once it is complete.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>> {
        if self.finished {
            return Ok(None);
        }
        let mut out = csv::Writer::from_writer(Vec::new());
        if !self.header_written {
            out.write_record(self.request.format.header()).map_err(internal)?;
            self.header_written = true;
        }
        let people = self.next_people().await?;
        if (people.len() as i64) < BATCH {
            self.finished = true;
        }
        for person in &people {
            match self.row(person) {
                Some(row) => {
                    out.write_record(&row).map_err(internal)?;
                    self.written += 1;
                }
                None => self.skipped += 1,
            }
        }
        if self.finished {
            tracing::info!(written = self.written, skipped = self.skipped, "audience exported");
        }
        out.into_inner().map(Some).map_err(|e| internal(e.into_error()))
    }

    /// The next batch of members with what the rows need.
    async fn next_people(&mut self) -> Result<Vec<Person>> {
        let db = self.segments.db().clone();
        let tenant = self.scope.tenant_id().as_uuid();
        let txn = self.scope.begin(&db).await?;
        let mut members = Sql::new(
            "SELECT m.profile_id, p.traits FROM segment_members m JOIN profiles p ON p.tenant_id = m.tenant_id \
             AND p.id = m.profile_id WHERE m.tenant_id = ",
        );
        members.bind(tenant).push(" AND m.segment_id = ").bind(self.segment.as_uuid());
        if let Some(after) = self.after {
            members.push(" AND m.profile_id > ").bind(after);
        }
        members.push(" ORDER BY m.profile_id LIMIT ").bind(BATCH);
        let mut people: Vec<Person> = Vec::new();
        for row in members.fetch_all(&txn).await? {
            let id: Uuid = row.try_get("", "profile_id")?;
            let traits: Value = row.try_get("", "traits")?;
            let traits = traits.as_object().map(profiles::traits::values).unwrap_or_default();
            people.push(Person {
                id: ProfileId::from_uuid(id),
                traits,
                emails: vec![],
                phones: vec![],
                consents: vec![],
            });
        }
        if let Some(last) = people.last() {
            self.after = Some(last.id.as_uuid());
        }
        if people.is_empty() {
            txn.commit().await?;
            return Ok(people);
        }
        let index: HashMap<Uuid, usize> =
            people.iter().enumerate().map(|(i, p)| (p.id.as_uuid(), i)).collect();
        let ids: Vec<Uuid> = people.iter().map(|p| p.id.as_uuid()).collect();
        let mut identities = Sql::new("SELECT profile_id, kind, value FROM identities WHERE tenant_id = ");
        identities
            .bind(tenant)
            .push(" AND kind IN ('email', 'phone') AND profile_id IN ")
            .bind_list(ids.iter().copied())
            .push(" ORDER BY value");
        for row in identities.fetch_all(&txn).await? {
            let Some(&i) = index.get(&row.try_get::<Uuid>("", "profile_id")?) else { continue };
            let kind: String = row.try_get("", "kind")?;
            let value: String = row.try_get("", "value")?;
            if kind == "email" { people[i].emails.push(value) } else { people[i].phones.push(value) }
        }
        let mut consents = Sql::new(
            "SELECT profile_id, purpose, channel, granted, source, recorded_at FROM consents WHERE tenant_id = ",
        );
        consents
            .bind(tenant)
            .push(" AND purpose = ")
            .bind(self.request.purpose.clone())
            .push(" AND profile_id IN ")
            .bind_list(ids.iter().copied())
            .push(" ORDER BY id DESC");
        for row in consents.fetch_all(&txn).await? {
            let Some(&i) = index.get(&row.try_get::<Uuid>("", "profile_id")?) else { continue };
            people[i].consents.push(Consent {
                purpose: row.try_get("", "purpose")?,
                channel: row.try_get("", "channel")?,
                granted: row.try_get("", "granted")?,
                source: row.try_get("", "source")?,
                recorded_at: row.try_get("", "recorded_at")?,
            });
        }
        txn.commit().await?;
        Ok(people)
    }

    /// The person's row, or `None` when they may not be contacted or lack what the format needs.
    fn row(&self, person: &Person) -> Option<Vec<String>> {
        let decision = consent::decide(&person.consents, &self.request.purpose, &self.request.channel);
        if decision != ContactDecision::Allowed || consent::is_minor(&person.traits, self.now) {
            return None;
        }
        let name = profiles::traits::display_name(&person.traits);
        match self.request.format {
            AudienceFormat::Hashed => {
                let (email, phone) = (person.emails.first(), person.phones.first());
                if email.is_none() && phone.is_none() {
                    return None;
                }
                Some(vec![
                    email.map(|e| sha256(e)).unwrap_or_default(),
                    phone.map(|p| sha256(p)).unwrap_or_default(),
                ])
            }
            AudienceFormat::Phone => {
                let phone = person.phones.first()?;
                Some(vec![phone.clone(), name])
            }
            AudienceFormat::Postal => {
                let address = PostalAddress::from_traits(&person.traits)?;
                // A letter needs a name, a street, a city and a country.
                if [&address.name, &address.line1, &address.city, &address.country]
                    .iter()
                    .any(|f| f.is_empty())
                {
                    return None;
                }
                Some(vec![address.name, address.line1, address.postal_code, address.city, address.country])
            }
        }
    }
}

struct Person {
    id: ProfileId,
    traits: Map<String, Value>,
    emails: Vec<String>,
    phones: Vec<String>,
    /// This purpose's consent records, newest first.
    consents: Vec<Consent>,
}

/// Hex SHA-256 of an identifier as stored: emails trimmed and lower-cased, phones in E.164.
fn sha256(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

fn internal(error: impl std::error::Error + Send + Sync + 'static) -> SegmentsError {
    SegmentsError::Internal(Box::new(error))
}
