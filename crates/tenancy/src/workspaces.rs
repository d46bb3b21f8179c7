//! Client workspaces: the unit of data isolation.

use crate::{
    Actor, Name, Permission, Result, Role, Tenancy, TenancyError,
    audit::{AuditAction, AuditRecord},
};
use chrono::{DateTime, Utc};
use entity::workspace;
use kernel::{AgencyId, Page, PageRequest, WorkspaceId};
use platform::paging::{Order, keyset};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

#[derive(Debug, Clone)]
pub struct Workspace {
    pub id: WorkspaceId,
    pub agency_id: AgencyId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

impl From<workspace::Model> for Workspace {
    fn from(m: workspace::Model) -> Self {
        Self {
            id: WorkspaceId::from_uuid(m.id),
            agency_id: AgencyId::from_uuid(m.agency_id),
            name: m.name,
            created_at: m.created_at,
        }
    }
}

fn parse_name(name: &str) -> Result<String> {
    Ok(Name::parse("workspace name", name)?.into_inner())
}

impl Tenancy {
    /// Agency admins and owners create workspaces in their own agency.
    #[tracing::instrument(skip_all)]
    pub async fn create_workspace(&self, actor: &Actor, name: &str) -> Result<Workspace> {
        let staff = actor.staff()?;
        staff.require_agency_role(Role::Admin)?;
        let name = parse_name(name)?;
        let model = workspace::ActiveModel {
            id: Set(WorkspaceId::new().as_uuid()),
            agency_id: Set(staff.agency_id.as_uuid()),
            name: Set(name),
            created_at: Set(self.now()),
        }
        .insert(self.db().connection())
        .await?;
        let created = Workspace::from(model);
        self.audit(
            AuditRecord::by_actor(staff.agency_id, actor, AuditAction::WorkspaceCreated)
                .workspace(Some(created.id))
                .target(created.id.as_uuid()),
        )
        .await?;
        Ok(created)
    }

    /// Renames a workspace; needs admin on it.
    #[tracing::instrument(skip_all)]
    pub async fn rename_workspace(&self, actor: &Actor, id: WorkspaceId, name: &str) -> Result<Workspace> {
        self.authorize(actor, id, Permission::Administer).await?;
        let name = parse_name(name)?;
        let model = workspace::ActiveModel { id: Set(id.as_uuid()), name: Set(name), ..Default::default() }
            .update(self.db().connection())
            .await?;
        Ok(Workspace::from(model))
    }

    #[tracing::instrument(skip_all)]
    pub async fn workspace(&self, actor: &Actor, id: WorkspaceId) -> Result<Workspace> {
        self.authorize(actor, id, Permission::Read).await?;
        workspace::Entity::find_by_id(id.as_uuid())
            .one(self.db().connection())
            .await?
            .map(Workspace::from)
            .ok_or(TenancyError::NotFound)
    }

    /// The workspaces the actor can see: all of the agency's for an agency-wide role, the ones
    /// with a membership otherwise, and its own for an API key.
    #[tracing::instrument(skip_all)]
    pub async fn workspaces(&self, actor: &Actor, page: PageRequest) -> Result<Page<Workspace>> {
        let mut query = workspace::Entity::find();
        match actor {
            Actor::Staff(staff) => {
                query = query.filter(workspace::Column::AgencyId.eq(staff.agency_id.as_uuid()));
                if staff.agency_role.is_none() {
                    let ids: Vec<uuid::Uuid> =
                        staff.workspace_roles.iter().map(|(w, _)| w.as_uuid()).collect();
                    query = query.filter(workspace::Column::Id.is_in(ids));
                }
            }
            Actor::ApiKey(key) => {
                self.authorize(actor, key.workspace_id, Permission::Read).await?;
                query = query.filter(workspace::Column::Id.eq(key.workspace_id.as_uuid()));
            }
        }
        let rows = keyset(query, workspace::Column::Id, page, Order::OldestFirst)
            .all(self.db().connection())
            .await?;
        Ok(Page::from_overfetched(rows, page, |r| r.id).map(Workspace::from))
    }
}
