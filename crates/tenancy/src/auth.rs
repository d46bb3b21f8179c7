//! Login, token refresh with rotation and reuse detection, logout, and turning a bearer
//! credential into an [`Actor`].

use crate::{
    Actor, EmailAddress, Result, Role, StaffActor, Tenancy, TenancyError,
    audit::{AuditAction, AuditRecord},
    passwords::{PasswordPolicy, Verified},
    secrets::{random_token, sha256_hex},
    tokens::AccessClaims,
};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use entity::{membership, refresh_token, user};
use kernel::{AgencyId, SessionId, UserId, WorkspaceId};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use std::time::Duration;

/// How long the computed roles of a user are cached. Role changes and deactivation delete the
/// entry, so this bounds staleness only if that deletion is lost.
/// How long one login attempt may hold its email's lease (it is released when the attempt
/// ends; the expiry only matters if the process dies mid-attempt).
const LOGIN_ATTEMPT_LEASE: Duration = Duration::from_secs(15);

pub(crate) const AUTHZ_CACHE_TTL: Duration = Duration::from_secs(60);

/// A bearer credential checked locally, not yet against the database or cache.
pub struct Credential(CredentialKind);

enum CredentialKind {
    Staff(AccessClaims),
    ApiKey { raw: String, rate_key: String },
}

impl Credential {
    /// The rate-limit bucket of the principal: one per staff user or per API key.
    pub fn rate_limit_key(&self) -> String {
        match &self.0 {
            CredentialKind::Staff(claims) => format!("user:{}", claims.sub),
            CredentialKind::ApiKey { rate_key, .. } => rate_key.clone(),
        }
    }
}

/// Never prints the key or the token.
impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            CredentialKind::Staff(claims) => write!(f, "Credential(staff {})", claims.sub),
            CredentialKind::ApiKey { rate_key, .. } => write!(f, "Credential({rate_key})"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct LoginInput {
    pub email: String,
    pub password: String,
}

/// What `login` and `refreshToken` return. The refresh token is shown once.
#[derive(Debug, Clone)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_at: DateTime<Utc>,
}

impl Tenancy {
    /// Checks the password. Failures count per email (whether or not it exists, so the lockout
    /// itself reveals nothing) and lock the email out for a time that doubles per failure.
    #[tracing::instrument(skip_all)]
    pub async fn login(&self, input: LoginInput) -> Result<TokenPair> {
        let email =
            EmailAddress::parse(&input.email).map_err(|_| TenancyError::InvalidCredentials)?.into_inner();
        if input.password.len() > crate::passwords::MAX_PASSWORD_BYTES {
            return Err(TenancyError::InvalidCredentials);
        }
        let lock_key = format!("login-lock:{}", sha256_hex(&email));
        self.refuse_if_locked(&lock_key).await?;
        // One attempt per email at a time: without this lease, attempts sent in parallel would
        // all pass the lock check above before the first failure is counted.
        let lease_key = format!("{lock_key}:attempt");
        if !self.inner.cache.set_if_absent(&lease_key, b"1", LOGIN_ATTEMPT_LEASE).await? {
            return Err(TenancyError::RateLimited { retry_after: Duration::from_secs(1) });
        }
        let outcome = self.check_password(&email, &input.password, &lock_key).await;
        self.inner.cache.delete(&lease_key).await?;
        outcome
    }

    async fn check_password(&self, email: &str, password: &str, lock_key: &str) -> Result<TokenPair> {
        let found =
            user::Entity::find().filter(user::Column::Email.eq(email)).one(self.db().connection()).await?;
        let outcome = match (&found, found.as_ref().and_then(|u| u.password_hash.as_deref())) {
            (Some(account), Some(stored)) if account.active => {
                self.inner.passwords.verify(password, stored).await?
            }
            _ => {
                self.inner.passwords.burn_equal_time(password).await;
                Verified::Invalid
            }
        };
        match (found, outcome) {
            (Some(account), Verified::Valid { rehash }) => {
                self.inner.cache.delete(&format!("{lock_key}:failures")).await?;
                if let Some(hash) = rehash {
                    user::ActiveModel {
                        id: Set(account.id),
                        password_hash: Set(Some(hash)),
                        ..Default::default()
                    }
                    .update(self.db().connection())
                    .await?;
                }
                let user_id = UserId::from_uuid(account.id);
                let agency_id = AgencyId::from_uuid(account.agency_id);
                self.audit(AuditRecord::by_user(agency_id, user_id, AuditAction::LoginSucceeded)).await?;
                tracing::info!(user_id = %user_id, "login succeeded");
                self.start_session(user_id, agency_id).await
            }
            (account, _) => {
                self.count_failure(lock_key).await?;
                if let Some(account) = account {
                    let user_id = UserId::from_uuid(account.id);
                    let agency_id = AgencyId::from_uuid(account.agency_id);
                    self.audit(AuditRecord::by_user(agency_id, user_id, AuditAction::LoginFailed)).await?;
                }
                tracing::info!("login failed");
                Err(TenancyError::InvalidCredentials)
            }
        }
    }

    async fn refuse_if_locked(&self, lock_key: &str) -> Result<()> {
        if let Some(until) = self.inner.cache.get(lock_key).await? {
            let until: i64 = std::str::from_utf8(&until).ok().and_then(|s| s.parse().ok()).unwrap_or(0);
            let remaining = until - self.now().timestamp_millis();
            if remaining > 0 {
                return Err(TenancyError::RateLimited {
                    retry_after: Duration::from_millis(remaining as u64),
                });
            }
        }
        Ok(())
    }

    async fn count_failure(&self, lock_key: &str) -> Result<()> {
        let settings = &self.inner.settings;
        let window = Duration::from_secs(settings.lockout_max_secs.max(60) * 4);
        let failures = self.inner.cache.increment(&format!("{lock_key}:failures"), window).await?;
        let over = failures - i64::from(settings.lockout_threshold);
        if over >= 0 {
            let exponent = u32::try_from(over.min(20)).unwrap_or(20);
            let seconds =
                settings.lockout_base_secs.saturating_mul(1u64 << exponent).min(settings.lockout_max_secs);
            let until = self.now().timestamp_millis() + (seconds as i64) * 1000;
            self.inner
                .cache
                .set(lock_key, until.to_string().as_bytes(), Duration::from_secs(seconds.max(1)))
                .await?;
        }
        Ok(())
    }

    pub(crate) async fn start_session(&self, user_id: UserId, agency_id: AgencyId) -> Result<TokenPair> {
        let session = SessionId::new();
        let refresh = self.issue_refresh_token(self.db().connection(), user_id, session).await?;
        self.token_pair(user_id, agency_id, session, refresh)
    }

    fn token_pair(
        &self,
        user: UserId,
        agency: AgencyId,
        session: SessionId,
        refresh: String,
    ) -> Result<TokenPair> {
        let now = self.now();
        let settings = &self.inner.settings;
        let expires_at = now + ChronoDuration::seconds(settings.access_token_ttl_secs);
        let claims = AccessClaims {
            sub: user,
            agency,
            sid: session,
            iss: settings.issuer.clone(),
            aud: settings.audience.clone(),
            iat: now.timestamp(),
            nbf: now.timestamp(),
            exp: expires_at.timestamp(),
        };
        Ok(TokenPair { access_token: self.inner.keys.sign(&claims)?, refresh_token: refresh, expires_at })
    }

    async fn issue_refresh_token<C: sea_orm::ConnectionTrait>(
        &self,
        conn: &C,
        user: UserId,
        session: SessionId,
    ) -> Result<String> {
        let token = format!("prt_{}", random_token());
        let now = self.now();
        refresh_token::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            user_id: Set(user.as_uuid()),
            session_id: Set(session.as_uuid()),
            token_hash: Set(sha256_hex(&token)),
            expires_at: Set(now + ChronoDuration::seconds(self.inner.settings.refresh_token_ttl_secs)),
            used_at: Set(None),
            revoked_at: Set(None),
            created_at: Set(now),
        }
        .insert(conn)
        .await?;
        Ok(token)
    }

    /// Trades a refresh token for a new pair. Each token works once: presenting one that was
    /// already used means it was stolen or replayed, so the whole family is revoked.
    #[tracing::instrument(skip_all)]
    pub async fn refresh(&self, presented: &str) -> Result<TokenPair> {
        let now = self.now();
        let txn = self.db().begin_write().await?;
        let Some(stored) = refresh_token::Entity::find()
            .filter(refresh_token::Column::TokenHash.eq(sha256_hex(presented.trim())))
            .one(&txn)
            .await?
        else {
            return Err(TenancyError::Unauthenticated);
        };
        let session = SessionId::from_uuid(stored.session_id);
        if stored.used_at.is_some() {
            txn.rollback().await?;
            self.revoke_session(UserId::from_uuid(stored.user_id), session).await?;
            tracing::warn!(session_id = %session, "refresh token reuse: session family revoked");
            return Err(TenancyError::Unauthenticated);
        }
        if stored.revoked_at.is_some() || stored.expires_at <= now {
            return Err(TenancyError::Unauthenticated);
        }
        // Marking it used only if still unused makes two concurrent refreshes with one token
        // produce one winner; the loser is treated as reuse.
        let marked = refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::UsedAt, Expr::value(now))
            .filter(refresh_token::Column::Id.eq(stored.id))
            .filter(refresh_token::Column::UsedAt.is_null())
            .exec(&txn)
            .await?;
        if marked.rows_affected != 1 {
            txn.rollback().await?;
            self.revoke_session(UserId::from_uuid(stored.user_id), session).await?;
            return Err(TenancyError::Unauthenticated);
        }
        let account =
            user::Entity::find_by_id(stored.user_id).one(&txn).await?.ok_or(TenancyError::Unauthenticated)?;
        if !account.active {
            return Err(TenancyError::Unauthenticated);
        }
        let user_id = UserId::from_uuid(account.id);
        let refresh = self.issue_refresh_token(&txn, user_id, session).await?;
        txn.commit().await?;
        if self.inner.cache.get(&revoked_session_cache_key(user_id, session)).await?.is_some() {
            // Logged out while we were rotating: the token just issued must not outlive it.
            self.revoke_session(user_id, session).await?;
            return Err(TenancyError::Unauthenticated);
        }
        self.token_pair(user_id, AgencyId::from_uuid(account.agency_id), session, refresh)
    }

    /// Ends the session the refresh token belongs to, and with it every access token issued
    /// in that session.
    #[tracing::instrument(skip_all)]
    pub async fn logout(&self, actor: &Actor, refresh: Option<&str>) -> Result<()> {
        let staff = actor.staff()?;
        if let Some(presented) = refresh {
            let stored = refresh_token::Entity::find()
                .filter(refresh_token::Column::TokenHash.eq(sha256_hex(presented.trim())))
                .one(self.db().connection())
                .await?;
            if let Some(stored) = stored.filter(|t| t.user_id == staff.user_id.as_uuid()) {
                self.revoke_session(staff.user_id, SessionId::from_uuid(stored.session_id)).await?;
            }
        }
        self.revoke_session(staff.user_id, staff.session_id).await
    }

    /// Revokes a session: first the marker every request and refresh checks, then the stored
    /// refresh tokens. In that order, a refresh racing this call either sees the marker or
    /// has committed its new token before the update below revokes it.
    pub(crate) async fn revoke_session(&self, user: UserId, session: SessionId) -> Result<()> {
        let ttl = Duration::from_secs(self.inner.settings.access_token_ttl_secs.max(1) as u64 + 60);
        self.inner.cache.set(&revoked_session_cache_key(user, session), b"1", ttl).await?;
        refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::RevokedAt, Expr::value(self.now()))
            .filter(refresh_token::Column::SessionId.eq(session.as_uuid()))
            .filter(refresh_token::Column::RevokedAt.is_null())
            .exec(self.db().connection())
            .await?;
        Ok(())
    }

    /// Revokes every refresh token of a deactivated user in one statement. Their access tokens
    /// need no per-session marker: authentication re-reads the user, who is now inactive.
    pub(crate) async fn revoke_all_refresh_tokens(&self, user: UserId) -> Result<()> {
        refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::RevokedAt, Expr::value(self.now()))
            .filter(refresh_token::Column::UserId.eq(user.as_uuid()))
            .filter(refresh_token::Column::RevokedAt.is_null())
            .exec(self.db().connection())
            .await?;
        Ok(())
    }

    /// Checks a bearer credential as far as can be done without I/O: a staff JWT's signature
    /// and claims, or an API key's shape. What it returns names the principal for rate
    /// limiting before any database or cache work is spent on the request.
    pub fn identify(&self, raw: &str) -> Result<Credential> {
        let raw = raw.trim();
        if crate::api_keys::looks_like_api_key(raw) {
            let rate_key = crate::api_keys::rate_limit_key(raw).ok_or(TenancyError::Unauthenticated)?;
            return Ok(Credential(CredentialKind::ApiKey { raw: raw.to_owned(), rate_key }));
        }
        self.inner.keys.verify(raw).map(|claims| Credential(CredentialKind::Staff(claims)))
    }

    /// Finishes what [`Tenancy::identify`] started: the API key against its stored hash, or
    /// the staff session and roles as they are now (so a role change or deactivation takes
    /// effect on the next request).
    #[tracing::instrument(skip_all)]
    pub async fn authenticate(&self, credential: Credential) -> Result<Actor> {
        let claims = match credential.0 {
            CredentialKind::ApiKey { raw, .. } => {
                return self.authenticate_api_key(&raw).await.map(Actor::ApiKey);
            }
            CredentialKind::Staff(claims) => claims,
        };
        // One cache round trip for everything a staff request needs: whether the session was
        // revoked, the user's current roles, and their profile (for `me`).
        let revoked_key = revoked_session_cache_key(claims.sub, claims.sid);
        let authz_key = authz_cache_key(claims.sub);
        let profile_key = crate::users::profile_cache_key(claims.sub);
        let [revoked, authz, profile]: [Option<Vec<u8>>; 3] = self
            .inner
            .cache
            .get_many(&[&revoked_key, &authz_key, &profile_key])
            .await?
            .try_into()
            .map_err(|_| TenancyError::Internal("the cache answered MGET with the wrong arity".into()))?;
        if revoked.is_some() {
            return Err(TenancyError::Unauthenticated);
        }
        let cached = authz.and_then(|bytes| serde_json::from_slice::<Option<CachedAuthz>>(&bytes).ok());
        let authz = match cached {
            Some(authz) => authz,
            None => self.load_staff_authz(claims.sub).await?,
        }
        .ok_or(TenancyError::Unauthenticated)?;
        if authz.agency_id != claims.agency {
            return Err(TenancyError::Unauthenticated);
        }
        Ok(Actor::Staff(StaffActor {
            user_id: claims.sub,
            agency_id: authz.agency_id,
            session_id: claims.sid,
            agency_role: authz.agency_role,
            workspace_roles: authz.workspace_roles,
            profile: profile.and_then(|bytes| serde_json::from_slice(&bytes).ok()),
        }))
    }

    /// The user's current roles from the database (then cached), or `None` for an unknown or
    /// deactivated user.
    async fn load_staff_authz(&self, user_id: UserId) -> Result<Option<CachedAuthz>> {
        let key = authz_cache_key(user_id);
        let conn = self.db().connection();
        let authz = match user::Entity::find_by_id(user_id.as_uuid()).one(conn).await? {
            Some(account) if account.active => {
                let memberships = membership::Entity::find()
                    .filter(membership::Column::UserId.eq(account.id))
                    .all(conn)
                    .await?;
                let mut authz = CachedAuthz {
                    agency_id: AgencyId::from_uuid(account.agency_id),
                    agency_role: None,
                    workspace_roles: Vec::new(),
                };
                for m in memberships {
                    let role: Role = m.role.parse()?;
                    match m.workspace_id {
                        None => authz.agency_role = authz.agency_role.max(Some(role)),
                        Some(w) => authz.workspace_roles.push((WorkspaceId::from_uuid(w), role)),
                    }
                }
                Some(authz)
            }
            _ => None,
        };
        self.inner.cache.set(&key, &serde_json::to_vec(&authz)?, AUTHZ_CACHE_TTL).await?;
        Ok(authz)
    }

    /// Drops everything cached about a user (roles and profile); every change to a user or
    /// their memberships calls this.
    pub(crate) async fn forget_authz(&self, user_id: UserId) -> Result<()> {
        self.inner.cache.delete(&authz_cache_key(user_id)).await?;
        self.inner.cache.delete(&crate::users::profile_cache_key(user_id)).await?;
        Ok(())
    }

    pub(crate) fn check_new_password(password: &str) -> Result<()> {
        PasswordPolicy::check_strength(password)
    }
}

// Everything cached about one user shares the `{user:…}` hash tag, so the one MGET at
// authentication stays within one slot on Redis Cluster.
fn authz_cache_key(user_id: UserId) -> String {
    format!("{{user:{user_id}}}:authz")
}

fn revoked_session_cache_key(user_id: UserId, session: SessionId) -> String {
    format!("{{user:{user_id}}}:revoked-session:{session}")
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct CachedAuthz {
    agency_id: AgencyId,
    agency_role: Option<Role>,
    workspace_roles: Vec<(WorkspaceId, Role)>,
}
