//! Workspace API keys. A key reads `pss_<workspace>_<secret>` (secret keys) or
//! `psw_<workspace>_<secret>` (write keys): the workspace part lets authentication open the
//! right tenant before looking the key up, under row-level security like any tenant data.
//! Only a SHA-256 of the whole key is stored, with a short visible prefix for recognition.

use crate::{
    Actor, ApiKeyActor, Name, Permission, Result, Tenancy, TenancyError,
    actor::verified_scope,
    audit::{AuditAction, AuditRecord},
    secrets::{digests_match, random_token, sha256_hex},
};
use chrono::{DateTime, Utc};
use entity::api_key;
use kernel::{ApiKeyId, Page, PageRequest, WorkspaceId};
use platform::TenantScope;
use platform::paging::{Order, keyset};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

const SECRET_PREFIX: &str = "pss_";
const WRITE_PREFIX: &str = "psw_";
const VISIBLE_SECRET_CHARS: usize = 8;
/// `last_used_at` is written at most this often per key, so a busy key does not turn every
/// request into a write.
const LAST_USED_RESOLUTION_SECS: i64 = 60;
const MAX_KEY_BYTES: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKeyKind {
    /// Event ingestion only; safe to ship in a browser or an app.
    Write,
    /// Server-side integrations, limited by scopes.
    Secret,
}

impl ApiKeyKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Write => "write",
            Self::Secret => "secret",
        }
    }
    fn parse(s: &str) -> Result<Self> {
        match s {
            "write" => Ok(Self::Write),
            "secret" => Ok(Self::Secret),
            _ => Err(TenancyError::Internal(format!("stored API key kind `{s}`").into())),
        }
    }
    const fn key_prefix(self) -> &'static str {
        match self {
            Self::Write => WRITE_PREFIX,
            Self::Secret => SECRET_PREFIX,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ApiKeyScope {
    Read,
    Write,
    Admin,
}

impl ApiKeyScope {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Admin => "admin",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        match s {
            "read" => Some(Self::Read),
            "write" => Some(Self::Write),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub kind: ApiKeyKind,
    pub scopes: Vec<ApiKeyScope>,
}

#[derive(Debug, Clone)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub kind: ApiKeyKind,
    pub scopes: Vec<ApiKeyScope>,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The key as created: `secret` is the only time the full key is ever returned.
#[derive(Debug, Clone)]
pub struct CreatedApiKey {
    pub secret: String,
    pub key: ApiKey,
}

impl TryFrom<api_key::Model> for ApiKey {
    type Error = TenancyError;
    fn try_from(m: api_key::Model) -> Result<Self> {
        let scopes = m
            .scopes
            .as_array()
            .map(|values| values.iter().filter_map(|v| v.as_str().and_then(ApiKeyScope::parse)).collect())
            .unwrap_or_default();
        Ok(Self {
            id: ApiKeyId::from_uuid(m.id),
            workspace_id: WorkspaceId::from_uuid(m.tenant_id),
            name: m.name,
            kind: ApiKeyKind::parse(&m.kind)?,
            scopes,
            prefix: m.prefix,
            created_at: m.created_at,
            last_used_at: m.last_used_at,
            revoked_at: m.revoked_at,
        })
    }
}

pub(crate) fn looks_like_api_key(credential: &str) -> bool {
    credential.starts_with(SECRET_PREFIX) || credential.starts_with(WRITE_PREFIX)
}

/// The rate-limit bucket of a presented key, from its workspace and visible prefix (so it
/// can be limited before it is verified).
pub(crate) fn rate_limit_key(raw: &str) -> Option<String> {
    let parsed = parse_key(raw)?;
    Some(format!("key:{}:{}", parsed.workspace, visible_prefix(parsed.kind, parsed.secret)))
}

struct ParsedKey<'a> {
    kind: ApiKeyKind,
    workspace: WorkspaceId,
    secret: &'a str,
}

fn parse_key(raw: &str) -> Option<ParsedKey<'_>> {
    if raw.len() > MAX_KEY_BYTES {
        return None;
    }
    let (kind, rest) = if let Some(rest) = raw.strip_prefix(SECRET_PREFIX) {
        (ApiKeyKind::Secret, rest)
    } else {
        (ApiKeyKind::Write, raw.strip_prefix(WRITE_PREFIX)?)
    };
    let (workspace, secret) = rest.split_once('_')?;
    let workspace = uuid::Uuid::try_parse(workspace).ok().map(WorkspaceId::from_uuid)?;
    // Keys are base64url; anything else is not one of ours (and slicing the visible prefix
    // below relies on single-byte characters).
    let well_formed = secret.len() > VISIBLE_SECRET_CHARS
        && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    well_formed.then_some(ParsedKey { kind, workspace, secret })
}

fn visible_prefix(kind: ApiKeyKind, secret: &str) -> String {
    format!("{}{}", kind.key_prefix(), &secret[..VISIBLE_SECRET_CHARS.min(secret.len())])
}

impl Tenancy {
    /// Creates a key; needs admin on the workspace (a staff member, not another key).
    #[tracing::instrument(skip_all)]
    pub async fn create_api_key(&self, actor: &Actor, input: NewApiKey) -> Result<CreatedApiKey> {
        let staff = actor.staff()?;
        let scope = self.authorize(actor, input.workspace_id, Permission::Administer).await?;
        let name = Name::parse("key name", &input.name)?.into_inner();
        let mut scopes = input.scopes.clone();
        scopes.sort();
        scopes.dedup();
        match input.kind {
            ApiKeyKind::Write if !scopes.is_empty() => {
                return Err(TenancyError::invalid("write keys ingest events only and take no scopes"));
            }
            ApiKeyKind::Secret if scopes.is_empty() => {
                return Err(TenancyError::invalid("a secret key needs at least one scope"));
            }
            _ => {}
        }
        let secret_part = random_token();
        let secret =
            format!("{}{}_{}", input.kind.key_prefix(), input.workspace_id.as_uuid().simple(), secret_part);
        let txn = scope.begin_write(self.db()).await?;
        let model = api_key::ActiveModel {
            tenant_id: Set(scope.tenant_id().as_uuid()),
            id: Set(ApiKeyId::new().as_uuid()),
            name: Set(name),
            kind: Set(input.kind.as_str().to_owned()),
            scopes: Set(serde_json::json!(scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>())),
            prefix: Set(visible_prefix(input.kind, &secret_part)),
            secret_hash: Set(sha256_hex(&secret)),
            created_by: Set(Some(staff.user_id.as_uuid())),
            created_at: Set(self.now()),
            last_used_at: Set(None),
            revoked_at: Set(None),
        }
        .insert(&txn)
        .await?;
        self.audit_with(
            &txn,
            AuditRecord::by_actor(staff.agency_id, actor, AuditAction::ApiKeyCreated)
                .workspace(Some(input.workspace_id))
                .target(model.id)
                .details(serde_json::json!({ "kind": input.kind.as_str(), "prefix": model.prefix })),
        )
        .await?;
        txn.commit().await?;
        Ok(CreatedApiKey { secret, key: ApiKey::try_from(model)? })
    }

    #[tracing::instrument(skip_all)]
    pub async fn revoke_api_key(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        id: ApiKeyId,
    ) -> Result<ApiKey> {
        let staff = actor.staff()?;
        let scope = self.authorize(actor, workspace, Permission::Administer).await?;
        let txn = scope.begin_write(self.db()).await?;
        let found = api_key::Entity::find_by_id((scope.tenant_id().as_uuid(), id.as_uuid()))
            .one(&txn)
            .await?
            .ok_or(TenancyError::NotFound)?;
        let model = if found.revoked_at.is_some() {
            found
        } else {
            let revoked = api_key::ActiveModel {
                tenant_id: Set(found.tenant_id),
                id: Set(found.id),
                revoked_at: Set(Some(self.now())),
                ..Default::default()
            }
            .update(&txn)
            .await?;
            self.audit_with(
                &txn,
                AuditRecord::by_actor(staff.agency_id, actor, AuditAction::ApiKeyRevoked)
                    .workspace(Some(workspace))
                    .target(revoked.id),
            )
            .await?;
            revoked
        };
        txn.commit().await?;
        ApiKey::try_from(model)
    }

    #[tracing::instrument(skip_all)]
    pub async fn api_keys(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        page: PageRequest,
    ) -> Result<Page<ApiKey>> {
        let scope = self.authorize(actor, workspace, Permission::Administer).await?;
        let txn = scope.begin(self.db()).await?;
        let query = api_key::Entity::find().filter(api_key::Column::TenantId.eq(scope.tenant_id().as_uuid()));
        let rows = keyset(query, api_key::Column::Id, page, Order::OldestFirst).all(&txn).await?;
        txn.commit().await?;
        Page::from_overfetched(rows, page, |r| r.id).try_map(ApiKey::try_from)
    }

    /// Verifies a presented key. Unknown, malformed, wrong and revoked keys are all the same
    /// `Unauthenticated`.
    #[tracing::instrument(skip_all)]
    pub async fn authenticate_api_key(&self, raw: &str) -> Result<ApiKeyActor> {
        let parsed = parse_key(raw.trim()).ok_or(TenancyError::Unauthenticated)?;
        let scope: TenantScope = verified_scope(parsed.workspace);
        let txn = scope.begin(self.db()).await?;
        let found = api_key::Entity::find()
            .filter(api_key::Column::TenantId.eq(scope.tenant_id().as_uuid()))
            .filter(api_key::Column::Prefix.eq(visible_prefix(parsed.kind, parsed.secret)))
            .one(&txn)
            .await?;
        let Some(found) = found else {
            return Err(TenancyError::Unauthenticated);
        };
        if !digests_match(&found.secret_hash, &sha256_hex(raw.trim())) || found.revoked_at.is_some() {
            return Err(TenancyError::Unauthenticated);
        }
        txn.commit().await?;
        let now = self.now();
        if found.last_used_at.is_none_or(|at| (now - at).num_seconds() >= LAST_USED_RESOLUTION_SECS) {
            // Its own short write transaction: a read transaction that turns into a writer can
            // fail on SQLite when another writer committed in between, and a missed
            // `lastUsedAt` must never refuse a valid key.
            if let Err(error) = self.touch_api_key(&scope, &found, now).await {
                tracing::warn!(error = %error, "could not record the API key's last use");
            }
        }
        let key = ApiKey::try_from(found)?;
        Ok(ApiKeyActor { key_id: key.id, workspace_id: key.workspace_id, kind: key.kind, scopes: key.scopes })
    }
}

impl Tenancy {
    async fn touch_api_key(
        &self,
        scope: &TenantScope,
        key: &api_key::Model,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let txn = scope.begin_write(self.db()).await?;
        api_key::ActiveModel {
            tenant_id: Set(key.tenant_id),
            id: Set(key.id),
            last_used_at: Set(Some(now)),
            ..Default::default()
        }
        .update(&txn)
        .await?;
        txn.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_their_workspace_and_kind() {
        let ws = WorkspaceId::new();
        let raw = format!("pss_{}_{}", ws.as_uuid().simple(), random_token());
        let parsed = parse_key(&raw).unwrap();
        assert_eq!(parsed.workspace, ws);
        assert_eq!(parsed.kind, ApiKeyKind::Secret);
        assert!(parse_key("pss_nothex_abcdefghijk").is_none());
        assert!(parse_key(&format!("psw_{}_short", ws.as_uuid().simple())).is_none());
        assert!(parse_key(&"pss_".repeat(100)).is_none());
        let multibyte = format!("pss_{}_ééééééééééé", ws.as_uuid().simple());
        assert!(parse_key(&multibyte).is_none());
        assert!(rate_limit_key(&multibyte).is_none());
    }
}
