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
use profiles::PostalAddress;
use profiles::consent::ContactDecision;
use profiles::contact::ContactSheet;
use sha2::{Digest, Sha256};
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
    /// People written and left out so far, for the log line at the end and [`Self::written`].
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
    /// Rows written so far (the header not counted).
    pub fn written(&self) -> u64 {
        self.written
    }

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

    /// The next batch of members with what the rows need, read as profiles gives them to
    /// anyone who contacts people ([`profiles::contact::contact_sheets`]).
    async fn next_people(&mut self) -> Result<Vec<ContactSheet>> {
        let db = self.segments.db().clone();
        let txn = self.scope.begin(&db).await?;
        let after = self.after.map(ProfileId::from_uuid);
        let ids = crate::journeys::members_page(&txn, &self.scope, self.segment, after, BATCH as u64).await?;
        if let Some(last) = ids.last() {
            self.after = Some(last.as_uuid());
        }
        let mut sheets = profiles::contact::contact_sheets(&txn, &self.scope, &ids).await?;
        txn.commit().await?;
        // In member order; members are live profiles, so each sheet is its own.
        let people: Vec<ContactSheet> = ids.iter().filter_map(|id| sheets.remove(id)).collect();
        if people.len() < ids.len() {
            self.skipped += (ids.len() - people.len()) as u64;
        }
        // A short batch was the last one.
        self.finished = (ids.len() as i64) < BATCH;
        Ok(people)
    }

    /// The person's row, or `None` when they may not be contacted or lack what the format needs.
    fn row(&self, person: &ContactSheet) -> Option<Vec<String>> {
        if person.decision(&self.request.purpose, &self.request.channel, self.now) != ContactDecision::Allowed
        {
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

/// Hex SHA-256 of an identifier as stored: emails trimmed and lower-cased, phones in E.164.
fn sha256(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

fn internal(error: impl std::error::Error + Send + Sync + 'static) -> SegmentsError {
    SegmentsError::Internal(Box::new(error))
}
