//! Onboarding an agency: the operator's `passerelle bootstrap`.

use crate::{EmailAddress, Name, Result, Role, Tenancy, TenancyError};
use entity::{agency, membership, user};
use kernel::{AgencyId, UserId};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

#[derive(Debug, Clone)]
pub struct Bootstrapped {
    pub agency_id: AgencyId,
    pub owner_id: UserId,
}

impl Tenancy {
    /// Creates an agency and its first owner. Runs again for every new agency; an email that
    /// already has an account is a conflict (logins are by email alone).
    #[tracing::instrument(skip_all)]
    pub async fn bootstrap_agency(
        &self,
        agency_name: &str,
        owner_email: &str,
        password: &str,
    ) -> Result<Bootstrapped> {
        let name = Name::parse("agency name", agency_name)?.into_inner();
        let email = EmailAddress::parse(owner_email)?.into_inner();
        Self::check_new_password(password)?;
        let hash = self.inner.passwords.hash(password).await?;
        let now = self.now();
        let txn = self.db().begin_write().await?;
        if user::Entity::find().filter(user::Column::Email.eq(&email)).one(&txn).await?.is_some() {
            return Err(TenancyError::Conflict("a user with this email already exists".into()));
        }
        let agency_id = AgencyId::new();
        let owner_id = UserId::new();
        agency::ActiveModel { id: Set(agency_id.as_uuid()), name: Set(name), created_at: Set(now) }
            .insert(&txn)
            .await?;
        user::ActiveModel {
            id: Set(owner_id.as_uuid()),
            agency_id: Set(agency_id.as_uuid()),
            email: Set(email),
            display_name: Set("Owner".into()),
            password_hash: Set(Some(hash)),
            invitation_hash: Set(None),
            invitation_expires_at: Set(None),
            active: Set(true),
            created_at: Set(now),
        }
        .insert(&txn)
        .await?;
        membership::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            agency_id: Set(agency_id.as_uuid()),
            user_id: Set(owner_id.as_uuid()),
            workspace_id: Set(None),
            role: Set(Role::Owner.as_str().into()),
            created_at: Set(now),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        tracing::info!(agency_id = %agency_id, "agency bootstrapped");
        Ok(Bootstrapped { agency_id, owner_id })
    }
}
