//! Agency staff: creation and invitation, deactivation, and the roles they hold.

use crate::{
    Actor, EmailAddress, Name, Result, Role, StaffActor, Tenancy, TenancyError, TokenPair,
    audit::{AuditAction, AuditRecord},
    secrets::{random_token, sha256_hex},
};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use entity::{membership, user};
use kernel::{AgencyId, MembershipId, Page, PageRequest, UserId, WorkspaceId};
use platform::paging::{Order, keyset};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect,
};

const INVITATION_TTL_DAYS: i64 = 7;

/// Serialises changes to an agency's owners (`SELECT … FOR UPDATE` on PostgreSQL; SQLite
/// allows one writer at a time anyway).
async fn lock_agency<C: sea_orm::ConnectionTrait>(conn: &C, agency: AgencyId) -> Result<()> {
    entity::agency::Entity::find_by_id(agency.as_uuid())
        .lock_exclusive()
        .one(conn)
        .await?
        .ok_or(TenancyError::NotFound)?;
    Ok(())
}

pub(crate) fn profile_cache_key(user: UserId) -> String {
    format!("{{user:{user}}}:profile")
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct StaffUser {
    pub id: UserId,
    pub agency_id: AgencyId,
    pub email: String,
    pub display_name: String,
    pub active: bool,
    pub invitation_pending: bool,
    pub created_at: DateTime<Utc>,
}

/// Debug output leaves the email out: actors and users may end up in a log line.
impl std::fmt::Debug for StaffUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaffUser")
            .field("id", &self.id)
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

impl From<user::Model> for StaffUser {
    fn from(m: user::Model) -> Self {
        Self {
            id: UserId::from_uuid(m.id),
            agency_id: AgencyId::from_uuid(m.agency_id),
            invitation_pending: m.password_hash.is_none() && m.invitation_hash.is_some(),
            email: m.email,
            display_name: m.display_name,
            active: m.active,
            created_at: m.created_at,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Membership {
    pub id: MembershipId,
    pub user_id: UserId,
    pub workspace_id: Option<WorkspaceId>,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<membership::Model> for Membership {
    type Error = TenancyError;
    fn try_from(m: membership::Model) -> Result<Self> {
        Ok(Self {
            id: MembershipId::from_uuid(m.id),
            user_id: UserId::from_uuid(m.user_id),
            workspace_id: m.workspace_id.map(WorkspaceId::from_uuid),
            role: m.role.parse()?,
            created_at: m.created_at,
        })
    }
}

/// A new staff member: with a password they can log in at once; without one they get an
/// invitation token to choose it themselves.
#[derive(Debug, Clone)]
pub struct NewStaff {
    pub email: String,
    pub display_name: Option<String>,
    pub password: Option<String>,
    pub role: Role,
    pub workspace_id: Option<WorkspaceId>,
}

#[derive(Debug, Clone)]
pub struct CreatedInvitation {
    pub user: StaffUser,
    /// Shown once; only its hash is stored.
    pub invitation_token: Option<String>,
}

impl Tenancy {
    /// Who may grant `role` at `workspace` (agency-wide when `None`): someone whose own role
    /// there may grant it.
    async fn require_may_grant(
        &self,
        staff: &StaffActor,
        workspace: Option<WorkspaceId>,
        role: Role,
    ) -> Result<()> {
        let granter_role = match workspace {
            None => staff.agency_role,
            Some(w) => {
                if self.workspace_agency(w).await? != Some(staff.agency_id) {
                    return Err(TenancyError::NotFound);
                }
                staff.role_in(w)
            }
        };
        match granter_role {
            Some(r) if r.may_grant(role) => Ok(()),
            Some(_) => Err(TenancyError::Forbidden),
            None if workspace.is_some() => Err(TenancyError::NotFound),
            None => Err(TenancyError::Forbidden),
        }
    }

    /// Creates a staff user with a first role; returns an invitation token when no password
    /// was given.
    #[tracing::instrument(skip_all)]
    pub async fn create_staff(&self, actor: &Actor, input: NewStaff) -> Result<CreatedInvitation> {
        let staff = actor.staff()?;
        self.require_may_grant(staff, input.workspace_id, input.role).await?;
        let email = EmailAddress::parse(&input.email)?.into_inner();
        let display_name = match input.display_name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
            Some(name) => Name::parse("display name", name)?.into_inner(),
            None => String::new(),
        };
        let (password_hash, invitation) = match &input.password {
            Some(password) => {
                Self::check_new_password(password)?;
                (Some(self.inner.passwords.hash(password).await?), None)
            }
            None => (None, Some(format!("pin_{}", random_token()))),
        };
        let now = self.now();
        let txn = self.db().begin_write().await?;
        if user::Entity::find().filter(user::Column::Email.eq(&email)).one(&txn).await?.is_some() {
            return Err(TenancyError::Conflict("a user with this email already exists".into()));
        }
        let model = user::ActiveModel {
            id: Set(UserId::new().as_uuid()),
            agency_id: Set(staff.agency_id.as_uuid()),
            email: Set(email),
            display_name: Set(display_name),
            password_hash: Set(password_hash),
            invitation_hash: Set(invitation.as_deref().map(sha256_hex)),
            invitation_expires_at: Set(invitation
                .as_ref()
                .map(|_| now + ChronoDuration::days(INVITATION_TTL_DAYS))),
            active: Set(true),
            created_at: Set(now),
        }
        .insert(&txn)
        .await?;
        let membership =
            self.insert_membership(&txn, staff.agency_id, model.id, input.workspace_id, input.role).await?;
        let action = if invitation.is_some() { AuditAction::UserInvited } else { AuditAction::UserCreated };
        self.audit_with(
            &txn,
            AuditRecord::by_actor(staff.agency_id, actor, action)
                .workspace(input.workspace_id)
                .target(model.id)
                .details(serde_json::json!({ "role": input.role.as_str(), "membership_id": membership })),
        )
        .await?;
        txn.commit().await?;
        Ok(CreatedInvitation { user: StaffUser::from(model), invitation_token: invitation })
    }

    /// An invited user chooses a password with their one-time token and is signed in.
    #[tracing::instrument(skip_all)]
    pub async fn accept_invitation(&self, token: &str, password: &str) -> Result<TokenPair> {
        Self::check_new_password(password)?;
        let found = user::Entity::find()
            .filter(user::Column::InvitationHash.eq(sha256_hex(token.trim())))
            .one(self.db().connection())
            .await?;
        let account = match found {
            Some(u) if u.active && u.invitation_expires_at.is_some_and(|at| at > self.now()) => u,
            _ => return Err(TenancyError::Unauthenticated),
        };
        let hash = self.inner.passwords.hash(password).await?;
        let user_id = UserId::from_uuid(account.id);
        let agency_id = AgencyId::from_uuid(account.agency_id);
        user::ActiveModel {
            id: Set(account.id),
            password_hash: Set(Some(hash)),
            invitation_hash: Set(None),
            invitation_expires_at: Set(None),
            ..Default::default()
        }
        .update(self.db().connection())
        .await?;
        self.forget_authz(user_id).await?;
        self.audit(
            AuditRecord::by_user(agency_id, user_id, AuditAction::InvitationAccepted).target(account.id),
        )
        .await?;
        self.start_session(user_id, agency_id).await
    }

    async fn insert_membership<C: sea_orm::ConnectionTrait>(
        &self,
        conn: &C,
        agency: AgencyId,
        user: uuid::Uuid,
        workspace: Option<WorkspaceId>,
        role: Role,
    ) -> Result<uuid::Uuid> {
        let id = MembershipId::new().as_uuid();
        membership::ActiveModel {
            id: Set(id),
            agency_id: Set(agency.as_uuid()),
            user_id: Set(user),
            workspace_id: Set(workspace.map(|w| w.as_uuid())),
            role: Set(role.as_str().to_owned()),
            created_at: Set(self.now()),
        }
        .insert(conn)
        .await?;
        Ok(id)
    }

    /// Gives `user` the role at `workspace` (agency-wide when `None`), replacing the role they
    /// had at that same level.
    #[tracing::instrument(skip_all)]
    pub async fn grant_role(
        &self,
        actor: &Actor,
        user_id: UserId,
        workspace: Option<WorkspaceId>,
        role: Role,
    ) -> Result<Membership> {
        let staff = actor.staff()?;
        let target = self.agency_user(staff.agency_id, user_id).await?;
        self.require_may_grant(staff, workspace, role).await?;
        let txn = self.db().begin_write().await?;
        lock_agency(&txn, staff.agency_id).await?;
        let existing = membership::Entity::find()
            .filter(membership::Column::UserId.eq(target.id))
            .filter(match workspace {
                Some(w) => membership::Column::WorkspaceId.eq(w.as_uuid()),
                None => membership::Column::WorkspaceId.is_null(),
            })
            .all(&txn)
            .await?;
        for old in &existing {
            let old_role: Role = old.role.parse()?;
            if !self.may_change(staff, workspace, old_role) {
                return Err(TenancyError::Forbidden);
            }
            if old_role == Role::Owner && workspace.is_none() && role != Role::Owner {
                self.ensure_another_owner(&txn, staff.agency_id, target.id).await?;
            }
            membership::Entity::delete_by_id(old.id).exec(&txn).await?;
        }
        let id = self.insert_membership(&txn, staff.agency_id, target.id, workspace, role).await?;
        self.audit_with(
            &txn,
            AuditRecord::by_actor(staff.agency_id, actor, AuditAction::RoleGranted)
                .workspace(workspace)
                .target(target.id)
                .details(serde_json::json!({
                    "role": role.as_str(),
                    "previous": existing.iter().map(|m| m.role.clone()).collect::<Vec<_>>(),
                })),
        )
        .await?;
        let created = membership::Entity::find_by_id(id).one(&txn).await?.ok_or(TenancyError::NotFound)?;
        txn.commit().await?;
        self.forget_authz(user_id).await?;
        Membership::try_from(created)
    }

    fn may_change(&self, staff: &StaffActor, workspace: Option<WorkspaceId>, held: Role) -> bool {
        let granter = match workspace {
            None => staff.agency_role,
            Some(w) => staff.role_in(w),
        };
        granter.is_some_and(|g| g.may_grant(held))
    }

    /// Refuses a change that would leave the agency without an active agency-wide owner. Call
    /// it inside a transaction that first ran [`lock_agency`], so two owners cannot demote
    /// each other at the same moment.
    async fn ensure_another_owner<C: sea_orm::ConnectionTrait>(
        &self,
        conn: &C,
        agency: AgencyId,
        leaving: uuid::Uuid,
    ) -> Result<()> {
        let owners: Vec<uuid::Uuid> = membership::Entity::find()
            .filter(membership::Column::AgencyId.eq(agency.as_uuid()))
            .filter(membership::Column::WorkspaceId.is_null())
            .filter(membership::Column::Role.eq(Role::Owner.as_str()))
            .filter(membership::Column::UserId.ne(leaving))
            .all(conn)
            .await?
            .into_iter()
            .map(|m| m.user_id)
            .collect();
        let others = user::Entity::find()
            .filter(user::Column::Id.is_in(owners))
            .filter(user::Column::Active.eq(true))
            .count(conn)
            .await?;
        if others == 0 {
            return Err(TenancyError::Conflict("the agency must keep at least one owner".into()));
        }
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    pub async fn revoke_role(&self, actor: &Actor, membership_id: MembershipId) -> Result<Membership> {
        let staff = actor.staff()?;
        let txn = self.db().begin_write().await?;
        lock_agency(&txn, staff.agency_id).await?;
        let found = membership::Entity::find_by_id(membership_id.as_uuid())
            .filter(membership::Column::AgencyId.eq(staff.agency_id.as_uuid()))
            .one(&txn)
            .await?
            .ok_or(TenancyError::NotFound)?;
        let revoked = Membership::try_from(found.clone())?;
        if !self.may_change(staff, revoked.workspace_id, revoked.role) {
            return Err(if revoked.workspace_id.is_some_and(|w| staff.role_in(w).is_none()) {
                TenancyError::NotFound
            } else {
                TenancyError::Forbidden
            });
        }
        if revoked.role == Role::Owner && revoked.workspace_id.is_none() {
            self.ensure_another_owner(&txn, staff.agency_id, found.user_id).await?;
        }
        membership::Entity::delete_by_id(found.id).exec(&txn).await?;
        self.audit_with(
            &txn,
            AuditRecord::by_actor(staff.agency_id, actor, AuditAction::RoleRevoked)
                .workspace(revoked.workspace_id)
                .target(found.user_id)
                .details(serde_json::json!({ "role": revoked.role.as_str() })),
        )
        .await?;
        txn.commit().await?;
        self.forget_authz(revoked.user_id).await?;
        Ok(revoked)
    }

    /// Deactivation ends every session at once and blocks future logins; the account and its
    /// history stay for the audit trail.
    #[tracing::instrument(skip_all)]
    pub async fn deactivate_user(&self, actor: &Actor, user_id: UserId) -> Result<StaffUser> {
        let staff = actor.staff()?;
        staff.require_agency_role(Role::Admin)?;
        let target = self.agency_user(staff.agency_id, user_id).await?;
        if user_id == staff.user_id {
            return Err(TenancyError::Conflict("you cannot deactivate yourself".into()));
        }
        let txn = self.db().begin_write().await?;
        lock_agency(&txn, staff.agency_id).await?;
        let memberships =
            membership::Entity::find().filter(membership::Column::UserId.eq(target.id)).all(&txn).await?;
        for m in &memberships {
            let role: Role = m.role.parse()?;
            if role == Role::Owner && staff.agency_role != Some(Role::Owner) {
                return Err(TenancyError::Forbidden);
            }
            if role == Role::Owner && m.workspace_id.is_none() {
                self.ensure_another_owner(&txn, staff.agency_id, target.id).await?;
            }
        }
        let updated = user::ActiveModel { id: Set(target.id), active: Set(false), ..Default::default() }
            .update(&txn)
            .await?;
        self.audit_with(
            &txn,
            AuditRecord::by_actor(staff.agency_id, actor, AuditAction::UserDeactivated).target(target.id),
        )
        .await?;
        txn.commit().await?;
        self.forget_authz(user_id).await?;
        self.revoke_all_refresh_tokens(user_id).await?;
        Ok(StaffUser::from(updated))
    }

    async fn agency_user(&self, agency: AgencyId, user_id: UserId) -> Result<user::Model> {
        user::Entity::find_by_id(user_id.as_uuid())
            .filter(user::Column::AgencyId.eq(agency.as_uuid()))
            .one(self.db().connection())
            .await?
            .ok_or(TenancyError::NotFound)
    }

    /// The caller's own account. Front ends ask for it on every page, so it is served from
    /// the cache next to the user's roles and dropped with them whenever the account changes.
    pub async fn me(&self, actor: &Actor) -> Result<StaffUser> {
        let staff = actor.staff()?;
        if let Some(cached) = &staff.profile {
            return Ok(cached.clone());
        }
        let key = profile_cache_key(staff.user_id);
        let user = StaffUser::from(self.agency_user(staff.agency_id, staff.user_id).await?);
        self.inner.cache.set(&key, &serde_json::to_vec(&user)?, crate::auth::AUTHZ_CACHE_TTL).await?;
        Ok(user)
    }

    /// A user of the caller's agency. Anyone may see themselves; agency-wide admins see
    /// everyone. (A workspace's admin does not see the agency's whole staff: names, emails and
    /// roles in other clients' workspaces are beyond their scope.)
    pub async fn staff_user(&self, actor: &Actor, user_id: UserId) -> Result<StaffUser> {
        let staff = actor.staff()?;
        if user_id != staff.user_id && staff.agency_role.is_none_or(|r| r < Role::Admin) {
            return Err(TenancyError::NotFound);
        }
        Ok(StaffUser::from(self.agency_user(staff.agency_id, user_id).await?))
    }

    /// The agency's staff, for agency-wide admins.
    #[tracing::instrument(skip_all)]
    pub async fn staff_users(&self, actor: &Actor, page: PageRequest) -> Result<Page<StaffUser>> {
        let staff = actor.staff()?;
        staff.require_agency_role(Role::Admin)?;
        let query = user::Entity::find().filter(user::Column::AgencyId.eq(staff.agency_id.as_uuid()));
        let rows =
            keyset(query, user::Column::Id, page, Order::OldestFirst).all(self.db().connection()).await?;
        Ok(Page::from_overfetched(rows, page, |r| r.id).map(StaffUser::from))
    }

    /// Roles held by a user the caller may see, oldest first.
    pub async fn memberships(
        &self,
        actor: &Actor,
        user_id: UserId,
        page: PageRequest,
    ) -> Result<Page<Membership>> {
        let visible = self.staff_user(actor, user_id).await?;
        let query = membership::Entity::find().filter(membership::Column::UserId.eq(visible.id.as_uuid()));
        let rows = keyset(query, membership::Column::Id, page, Order::OldestFirst)
            .all(self.db().connection())
            .await?;
        Page::from_overfetched(rows, page, |r| r.id).try_map(Membership::try_from)
    }
}
