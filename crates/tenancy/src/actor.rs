//! Who is calling, and what they may do. An [`Actor`] exists only after a credential was
//! verified; [`Actor::authorize`] is the single place that turns it into a `TenantScope`.

use crate::{Result, Role, StaffUser, Tenancy, TenancyError, api_keys::ApiKeyKind, api_keys::ApiKeyScope};
use kernel::{AgencyId, ApiKeyId, SessionId, TenantId, UserId, WorkspaceId};
use platform::TenantScope;
use sea_orm::EntityTrait;
use std::time::Duration;

/// What an operation needs. Staff need the matching role; API keys the matching scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// See the workspace and its data.
    Read,
    /// Reports and analysis.
    Analyze,
    /// Change marketing objects (profiles, segments, journeys).
    Write,
    /// Manage the workspace: API keys, staff access, audit log.
    Administer,
}

impl Permission {
    fn minimum_role(self) -> Role {
        match self {
            Self::Read => Role::Viewer,
            Self::Analyze => Role::Analyst,
            Self::Write => Role::Marketer,
            Self::Administer => Role::Admin,
        }
    }

    /// Reading needs any scope (a key that may write or administer may also look); writing
    /// and administering need their own scope.
    fn allowed_by(self, scopes: &[ApiKeyScope]) -> bool {
        match self {
            Self::Read | Self::Analyze => !scopes.is_empty(),
            Self::Write => scopes.contains(&ApiKeyScope::Write),
            Self::Administer => scopes.contains(&ApiKeyScope::Admin),
        }
    }
}

#[derive(Debug, Clone)]
pub enum Actor {
    Staff(StaffActor),
    ApiKey(ApiKeyActor),
}

/// A signed-in staff user with their roles as they are now (not as they were at login).
#[derive(Debug, Clone)]
pub struct StaffActor {
    pub user_id: UserId,
    pub agency_id: AgencyId,
    pub session_id: SessionId,
    pub agency_role: Option<Role>,
    pub workspace_roles: Vec<(WorkspaceId, Role)>,
    /// The user's profile when the cache had it at authentication, so `me` needs no query.
    pub(crate) profile: Option<StaffUser>,
}

#[derive(Debug, Clone)]
pub struct ApiKeyActor {
    pub key_id: ApiKeyId,
    pub workspace_id: WorkspaceId,
    pub kind: ApiKeyKind,
    pub scopes: Vec<ApiKeyScope>,
}

impl StaffActor {
    /// The strongest role the user holds in a workspace of their own agency.
    pub fn role_in(&self, workspace: WorkspaceId) -> Option<Role> {
        let direct = self.workspace_roles.iter().filter(|(w, _)| *w == workspace).map(|(_, r)| *r).max();
        direct.max(self.agency_role)
    }

    pub fn require_agency_role(&self, minimum: Role) -> Result<()> {
        match self.agency_role {
            Some(role) if role >= minimum => Ok(()),
            _ => Err(TenancyError::Forbidden),
        }
    }
}

impl Actor {
    /// Who acted, as records that keep it say it: `staff:<user id>` or `key:<API key id>`.
    /// Ids only, never an email.
    pub fn label(&self) -> String {
        match self {
            Self::Staff(staff) => format!("staff:{}", staff.user_id),
            Self::ApiKey(key) => format!("key:{}", key.key_id),
        }
    }

    pub fn staff(&self) -> Result<&StaffActor> {
        match self {
            Self::Staff(staff) => Ok(staff),
            Self::ApiKey(_) => Err(TenancyError::Forbidden),
        }
    }
}

impl Tenancy {
    /// Checks that `actor` may act on `workspace` with `permission` and returns the scope that
    /// opens its data. A workspace the actor cannot see at all is `NotFound`, exactly like one
    /// that does not exist; one they can see but not change is `Forbidden`.
    #[tracing::instrument(skip_all, fields(workspace = %workspace))]
    pub async fn authorize(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        permission: Permission,
    ) -> Result<TenantScope> {
        match actor {
            Actor::ApiKey(key) => {
                if key.workspace_id != workspace {
                    return Err(TenancyError::NotFound);
                }
                if key.kind != ApiKeyKind::Secret || !permission.allowed_by(&key.scopes) {
                    return Err(TenancyError::Forbidden);
                }
            }
            Actor::Staff(staff) => {
                let role = staff.role_in(workspace).ok_or(TenancyError::NotFound)?;
                if staff.workspace_roles.iter().all(|(w, _)| *w != workspace)
                    && self.workspace_agency(workspace).await? != Some(staff.agency_id)
                {
                    return Err(TenancyError::NotFound);
                }
                if role < permission.minimum_role() {
                    return Err(TenancyError::Forbidden);
                }
            }
        }
        Ok(verified_scope(workspace))
    }

    /// Which agency owns a workspace. The mapping never changes, so it is cached for an hour.
    pub(crate) async fn workspace_agency(&self, workspace: WorkspaceId) -> Result<Option<AgencyId>> {
        let key = format!("ws-agency:{workspace}");
        if let Some(bytes) = self.inner.cache.get(&key).await? {
            return Ok(std::str::from_utf8(&bytes).ok().and_then(|s| s.parse().ok()));
        }
        let Some(row) =
            entity::workspace::Entity::find_by_id(workspace.as_uuid()).one(self.db().connection()).await?
        else {
            return Ok(None);
        };
        let agency = AgencyId::from_uuid(row.agency_id);
        self.inner.cache.set(&key, agency.to_string().as_bytes(), Duration::from_secs(3600)).await?;
        Ok(Some(agency))
    }
}

/// The one place a `TenantScope` is made: only after `authorize` or API-key verification.
#[allow(clippy::disallowed_methods)]
pub(crate) fn verified_scope(workspace: WorkspaceId) -> TenantScope {
    TenantScope::from_verified_credentials(TenantId::from(workspace))
}

impl Tenancy {
    /// The scope for the tracking API: a write key, or a secret key with the `write` scope.
    /// Returns the key too, so ingestion can rate-limit and label by it.
    #[tracing::instrument(skip_all)]
    pub async fn ingestion_scope(&self, raw_key: &str) -> Result<(TenantScope, ApiKeyActor)> {
        let key = self.authenticate_api_key(raw_key).await?;
        let allowed = match key.kind {
            ApiKeyKind::Write => true,
            ApiKeyKind::Secret => key.scopes.contains(&ApiKeyScope::Write),
        };
        if !allowed {
            return Err(TenancyError::Forbidden);
        }
        Ok((verified_scope(key.workspace_id), key))
    }

    /// The scope in which a background worker processes work queued for `workspace`. Workers
    /// hold no credential of their own: every queued item was accepted under a credential
    /// that [`Tenancy::ingestion_scope`] or [`Tenancy::authorize`] verified, and the queue
    /// records only which workspace it belongs to. Only worker code calls this.
    pub async fn queued_work_scope(&self, workspace: WorkspaceId) -> Result<TenantScope> {
        if self.workspace_agency(workspace).await?.is_none() {
            return Err(TenancyError::NotFound);
        }
        Ok(verified_scope(workspace))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_ids_only() {
        let key = ApiKeyActor {
            key_id: ApiKeyId::new(),
            workspace_id: WorkspaceId::new(),
            kind: ApiKeyKind::Secret,
            scopes: Vec::new(),
        };
        assert_eq!(Actor::ApiKey(key.clone()).label(), format!("key:{}", key.key_id));
        let staff = StaffActor {
            user_id: UserId::new(),
            agency_id: AgencyId::new(),
            session_id: SessionId::new(),
            agency_role: Some(Role::Owner),
            workspace_roles: Vec::new(),
            profile: None,
        };
        assert_eq!(Actor::Staff(staff.clone()).label(), format!("staff:{}", staff.user_id));
    }
}
