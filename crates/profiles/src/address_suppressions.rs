//! Addresses that must never be contacted again, whoever holds them: hard bounces, spam
//! complaints and the do-not-contact lists an agency imports. The list holds HMAC hashes keyed
//! by the workspace's suppression salt (as the erasure list does), never the addresses, so it
//! cannot be read back into a mailing list. [`crate::contact::contact_sheets`] leaves suppressed
//! addresses out, so every sender (journeys, audience files) honours the list at the moment of
//! use without a check of its own.

use crate::privacy::identity_hash;
use crate::{Identity, IdentityKind, Profiles, ProfilesError, service::Result, settings, sql::Sql};
use chrono::{DateTime, Utc};
use kernel::WorkspaceId;
use platform::TenantScope;
use sea_orm::ConnectionTrait;
use std::collections::HashSet;
use tenancy::{Actor, Permission};

/// Addresses one call may suppress: a large list is imported in several calls.
pub const MAX_ADDRESSES_PER_CALL: usize = 10_000;

/// Why an address is suppressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuppressionReason {
    /// The provider said the address does not exist.
    HardBounce,
    /// The recipient marked a message as spam.
    Complaint,
    /// Staff or an integration put it on the list (a do-not-contact list, a legal request).
    Manual,
}

impl SuppressionReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HardBounce => "hard_bounce",
            Self::Complaint => "complaint",
            Self::Manual => "manual",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "hard_bounce" => Self::HardBounce,
            "complaint" => Self::Complaint,
            _ => Self::Manual,
        }
    }
}

/// One entry of the list, as staff see it (the address itself is not stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressSuppression {
    pub reason: SuppressionReason,
    /// Who or what added it: a channel's feedback, an API key, a staff member's import.
    pub source: String,
    pub created_at: DateTime<Utc>,
}

/// What an import did. `rejected` holds the position (0-based) and the reason of each address
/// that could not be read; the others were added or already there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SuppressionImport {
    pub added: usize,
    pub already_suppressed: usize,
    pub rejected: Vec<(usize, String)>,
}

/// Only addresses something is sent to can be suppressed.
fn check_kind(kind: &IdentityKind) -> Result<()> {
    match kind {
        IdentityKind::Email | IdentityKind::Phone => Ok(()),
        _ => Err(ProfilesError::invalid("only email and phone addresses can be suppressed")),
    }
}

/// Puts an already normalised address on the list inside the caller's transaction (the
/// campaigns feedback records a hard bounce and suppresses its address in one transaction).
/// Returns whether it was new.
pub async fn suppress<C: ConnectionTrait>(
    conn: &C,
    scope: &TenantScope,
    identity: &Identity,
    reason: SuppressionReason,
    source: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    check_kind(&identity.kind)?;
    let tenant = scope.tenant_id().as_uuid();
    let salt = settings::ensure_row(conn, tenant, now).await?;
    Ok(insert(conn, tenant, &salt, std::slice::from_ref(identity), reason, source, now).await? > 0)
}

/// Adds `identities` in multi-row inserts; returns how many were not on the list yet.
async fn insert<C: ConnectionTrait>(
    conn: &C,
    tenant: uuid::Uuid,
    salt: &str,
    identities: &[Identity],
    reason: SuppressionReason,
    source: &str,
    now: DateTime<Utc>,
) -> Result<u64> {
    let mut added = 0;
    for chunk in identities.chunks(500) {
        let mut insert = Sql::new(
            "INSERT INTO address_suppressions (tenant_id, kind, address_hash, reason, source, created_at) VALUES ",
        );
        insert
            .values(chunk.iter().map(|identity| {
                [
                    tenant.into(),
                    identity.kind.as_str().to_owned().into(),
                    identity_hash(salt, identity).into(),
                    reason.as_str().into(),
                    source.to_owned().into(),
                    now.into(),
                ]
            }))
            .push(" ON CONFLICT (tenant_id, kind, address_hash) DO NOTHING");
        added += insert.execute(conn).await?;
    }
    Ok(added)
}

/// Which of a batch of addresses are on the list, for contact sheets.
pub(crate) struct SuppressedAddresses {
    salt: String,
    hashes: HashSet<String>,
}

impl SuppressedAddresses {
    /// Looks up every address of `identities` in one query per thousand.
    pub(crate) async fn among<C: ConnectionTrait>(
        conn: &C,
        tenant: uuid::Uuid,
        identities: &[Identity],
    ) -> Result<Self> {
        let mut none = Self { salt: String::new(), hashes: HashSet::new() };
        if identities.is_empty() {
            return Ok(none);
        }
        // No salt yet means nothing can have been suppressed.
        let Some(salt) = settings::suppression_salt(conn, tenant).await? else { return Ok(none) };
        none.salt = salt;
        let hashes: Vec<String> =
            identities.iter().map(|identity| identity_hash(&none.salt, identity)).collect();
        for chunk in hashes.chunks(1000) {
            let mut select = Sql::new("SELECT address_hash FROM address_suppressions WHERE tenant_id = ");
            select.bind(tenant).push(" AND address_hash IN ").bind_list(chunk.iter().cloned());
            for row in select.fetch_all(conn).await? {
                none.hashes.insert(row.try_get::<String>("", "address_hash")?);
            }
        }
        Ok(none)
    }

    pub(crate) fn contains(&self, identity: &Identity) -> bool {
        !self.hashes.is_empty() && self.hashes.contains(&identity_hash(&self.salt, identity))
    }
}

impl Profiles {
    /// Adds addresses to the list (a do-not-contact list, a legal request). Each address is
    /// normalised as an identity of `kind` is, so `Ann@Example.com` and `ann@example.com` are one
    /// entry; unreadable addresses are reported, not fatal.
    #[tracing::instrument(skip_all, fields(workspace = %workspace, count = addresses.len()))]
    pub async fn suppress_addresses(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        kind: IdentityKind,
        addresses: &[String],
    ) -> Result<SuppressionImport> {
        let scope = self.tenancy().authorize(actor, workspace, Permission::Write).await?;
        check_kind(&kind)?;
        if addresses.len() > MAX_ADDRESSES_PER_CALL {
            return Err(ProfilesError::invalid(format!(
                "at most {MAX_ADDRESSES_PER_CALL} addresses per call; import a longer list in parts"
            )));
        }
        let tenant = workspace.as_uuid();
        let now = self.now();
        let source = actor.label();
        let txn = scope.begin_write(self.db()).await?;
        let workspace_settings = settings::load(&txn, tenant).await?;
        let salt = settings::ensure_row(&txn, tenant, now).await?;
        let mut outcome = SuppressionImport::default();
        let mut identities = Vec::with_capacity(addresses.len());
        for (position, raw) in addresses.iter().enumerate() {
            match Identity::parse(kind.clone(), raw, &workspace_settings.normalization) {
                Ok(identity) => identities.push(identity),
                Err(error) => outcome.rejected.push((position, error.to_string())),
            }
        }
        let added = insert(&txn, tenant, &salt, &identities, SuppressionReason::Manual, &source, now).await?;
        txn.commit().await?;
        // An address written twice in the list counts as already suppressed the second time.
        outcome.added = usize::try_from(added).unwrap_or(usize::MAX);
        outcome.already_suppressed = identities.len().saturating_sub(outcome.added);
        Ok(outcome)
    }

    /// Takes an address off the list (the person asked to hear from the workspace again).
    /// Administrators only: lifting a suppression is how mail reaches a complaining address.
    pub async fn lift_address_suppression(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        kind: IdentityKind,
        address: &str,
    ) -> Result<bool> {
        let scope = self.tenancy().authorize(actor, workspace, Permission::Administer).await?;
        check_kind(&kind)?;
        let tenant = workspace.as_uuid();
        let txn = scope.begin_write(self.db()).await?;
        let workspace_settings = settings::load(&txn, tenant).await?;
        let identity = Identity::parse(kind, address, &workspace_settings.normalization)?;
        let mut delete = Sql::new("DELETE FROM address_suppressions WHERE tenant_id = ");
        delete
            .bind(tenant)
            .push(" AND kind = ")
            .bind(identity.kind.as_str().to_owned())
            .push(" AND address_hash = ")
            .bind(identity_hash(&workspace_settings.suppression_salt, &identity));
        let removed = delete.execute(&txn).await? > 0;
        txn.commit().await?;
        Ok(removed)
    }

    /// Whether an address is on the list, and why.
    pub async fn address_suppression(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        kind: IdentityKind,
        address: &str,
    ) -> Result<Option<AddressSuppression>> {
        let scope = self.tenancy().authorize(actor, workspace, Permission::Read).await?;
        check_kind(&kind)?;
        let tenant = workspace.as_uuid();
        let txn = scope.begin(self.db()).await?;
        let workspace_settings = settings::load(&txn, tenant).await?;
        let identity = Identity::parse(kind, address, &workspace_settings.normalization)?;
        let mut select =
            Sql::new("SELECT reason, source, created_at FROM address_suppressions WHERE tenant_id = ");
        select
            .bind(tenant)
            .push(" AND kind = ")
            .bind(identity.kind.as_str().to_owned())
            .push(" AND address_hash = ")
            .bind(identity_hash(&workspace_settings.suppression_salt, &identity));
        let row = select.fetch_one(&txn).await?;
        txn.commit().await?;
        row.map(|row| {
            Ok(AddressSuppression {
                reason: SuppressionReason::parse(&row.try_get::<String>("", "reason")?),
                source: row.try_get("", "source")?,
                created_at: row.try_get("", "created_at")?,
            })
        })
        .transpose()
    }
}
