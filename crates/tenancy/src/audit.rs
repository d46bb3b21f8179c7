//! The audit log of security-relevant actions. Entries hold ids and action names only.

use crate::{Actor, Permission, Result, Role, Tenancy, TenancyError};
use chrono::{DateTime, Utc};
use entity::audit_entry;
use kernel::{AgencyId, ApiKeyId, AuditEntryId, AuditTargetId, Page, PageRequest, UserId, WorkspaceId};
use platform::paging::{Order, keyset};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    LoginSucceeded,
    LoginFailed,
    WorkspaceCreated,
    UserCreated,
    UserInvited,
    InvitationAccepted,
    UserDeactivated,
    RoleGranted,
    RoleRevoked,
    ApiKeyCreated,
    ApiKeyRevoked,
    /// A person's data was exported (GDPR access request).
    ProfileExported,
    /// A person was erased (GDPR erasure request).
    ProfileErased,
    /// A segment's people were exported as an audience file (the target is the segment).
    AudienceExported,
}

impl AuditAction {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::LoginSucceeded => "login.succeeded",
            Self::LoginFailed => "login.failed",
            Self::WorkspaceCreated => "workspace.created",
            Self::UserCreated => "user.created",
            Self::UserInvited => "user.invited",
            Self::InvitationAccepted => "user.invitation_accepted",
            Self::UserDeactivated => "user.deactivated",
            Self::RoleGranted => "role.granted",
            Self::RoleRevoked => "role.revoked",
            Self::ApiKeyCreated => "api_key.created",
            Self::ApiKeyRevoked => "api_key.revoked",
            Self::ProfileExported => "profile.exported",
            Self::ProfileErased => "profile.erased",
            Self::AudienceExported => "audience.exported",
        }
    }
}

#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub id: AuditEntryId,
    pub workspace_id: Option<WorkspaceId>,
    pub actor_user_id: Option<UserId>,
    pub actor_api_key_id: Option<ApiKeyId>,
    pub action: String,
    pub target_id: Option<AuditTargetId>,
    pub details: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

pub(crate) struct AuditRecord {
    agency: AgencyId,
    workspace: Option<WorkspaceId>,
    user: Option<UserId>,
    key: Option<ApiKeyId>,
    action: AuditAction,
    target: Option<uuid::Uuid>,
    details: serde_json::Value,
}

impl AuditRecord {
    pub(crate) fn by_user(agency: AgencyId, user: UserId, action: AuditAction) -> Self {
        Self {
            agency,
            workspace: None,
            user: Some(user),
            key: None,
            action,
            target: None,
            details: serde_json::json!({}),
        }
    }

    pub(crate) fn by_actor(agency: AgencyId, actor: &Actor, action: AuditAction) -> Self {
        let mut record = Self {
            agency,
            workspace: None,
            user: None,
            key: None,
            action,
            target: None,
            details: serde_json::json!({}),
        };
        match actor {
            Actor::Staff(s) => record.user = Some(s.user_id),
            Actor::ApiKey(k) => {
                record.key = Some(k.key_id);
                record.workspace = Some(k.workspace_id);
            }
        }
        record
    }

    pub(crate) fn workspace(mut self, workspace: Option<WorkspaceId>) -> Self {
        self.workspace = workspace.or(self.workspace);
        self
    }

    pub(crate) fn target(mut self, target: uuid::Uuid) -> Self {
        self.target = Some(target);
        self
    }

    pub(crate) fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

impl Tenancy {
    /// Records an action on a person's data in a workspace (export, erasure), within the
    /// caller's transaction so the entry commits with the action or not at all. The target is
    /// the profile id; never an identifier or any other personal data.
    pub async fn audit_data_access<C: sea_orm::ConnectionTrait>(
        &self,
        conn: &C,
        actor: &Actor,
        workspace: WorkspaceId,
        action: AuditAction,
        target: uuid::Uuid,
    ) -> Result<()> {
        let agency = match actor {
            Actor::Staff(staff) => staff.agency_id,
            Actor::ApiKey(_) => self.workspace_agency(workspace).await?.ok_or(TenancyError::NotFound)?,
        };
        let record = AuditRecord::by_actor(agency, actor, action).workspace(Some(workspace)).target(target);
        self.audit_with(conn, record).await
    }

    pub(crate) async fn audit(&self, record: AuditRecord) -> Result<()> {
        self.audit_with(self.db().connection(), record).await
    }

    pub(crate) async fn audit_with<C: sea_orm::ConnectionTrait>(
        &self,
        conn: &C,
        record: AuditRecord,
    ) -> Result<()> {
        audit_entry::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            agency_id: Set(record.agency.as_uuid()),
            workspace_id: Set(record.workspace.map(|w| w.as_uuid())),
            actor_user_id: Set(record.user.map(|u| u.as_uuid())),
            actor_api_key_id: Set(record.key.map(|k| k.as_uuid())),
            action: Set(record.action.as_str().to_owned()),
            target_id: Set(record.target),
            details: Set(record.details),
            created_at: Set(self.now()),
        }
        .insert(conn)
        .await?;
        Ok(())
    }

    /// Newest first. Agency admins see the whole agency's log, optionally narrowed to one
    /// workspace; a workspace admin (or an API key with the `admin` scope) sees that
    /// workspace's entries only.
    #[tracing::instrument(skip_all)]
    pub async fn audit_log(
        &self,
        actor: &Actor,
        workspace: Option<WorkspaceId>,
        page: PageRequest,
    ) -> Result<Page<AuditEntry>> {
        let (agency, only_workspace) = match (actor, workspace) {
            (Actor::Staff(staff), None) => {
                staff.require_agency_role(Role::Admin)?;
                (staff.agency_id, None)
            }
            (actor, Some(workspace)) => {
                self.authorize(actor, workspace, Permission::Administer).await?;
                let agency = self.workspace_agency(workspace).await?.ok_or(TenancyError::NotFound)?;
                (agency, Some(workspace))
            }
            (Actor::ApiKey(key), None) => {
                self.authorize(actor, key.workspace_id, Permission::Administer).await?;
                let agency = self.workspace_agency(key.workspace_id).await?.ok_or(TenancyError::NotFound)?;
                (agency, Some(key.workspace_id))
            }
        };
        let mut query =
            audit_entry::Entity::find().filter(audit_entry::Column::AgencyId.eq(agency.as_uuid()));
        if let Some(w) = only_workspace {
            query = query.filter(audit_entry::Column::WorkspaceId.eq(w.as_uuid()));
        }
        let rows = keyset(query, audit_entry::Column::Id, page, Order::NewestFirst)
            .all(self.db().connection())
            .await?;
        Ok(Page::from_overfetched(rows, page, |r| r.id).map(|r| AuditEntry {
            id: AuditEntryId::from_uuid(r.id),
            workspace_id: r.workspace_id.map(WorkspaceId::from_uuid),
            actor_user_id: r.actor_user_id.map(UserId::from_uuid),
            actor_api_key_id: r.actor_api_key_id.map(ApiKeyId::from_uuid),
            action: r.action,
            target_id: r.target_id.map(AuditTargetId::from_uuid),
            details: r.details,
            created_at: r.created_at,
        }))
    }
}
