use sea_orm_migration::prelude::*;

pub struct Migration;

/// The tenant tables this step creates.
pub(crate) const TENANT_TABLES: &[&str] = &["api_keys"];

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0001_foundation"
    }
}

const SQL: &str = "
CREATE TABLE agencies (
    id {uuid} PRIMARY KEY,
    name text NOT NULL,
    created_at {ts} NOT NULL
);
CREATE TABLE workspaces (
    id {uuid} PRIMARY KEY,
    agency_id {uuid} NOT NULL REFERENCES agencies (id),
    name text NOT NULL,
    created_at {ts} NOT NULL
);
CREATE INDEX workspaces_agency ON workspaces (agency_id, id);
CREATE TABLE users (
    id {uuid} PRIMARY KEY,
    agency_id {uuid} NOT NULL REFERENCES agencies (id),
    email text NOT NULL UNIQUE,
    display_name text NOT NULL,
    password_hash text,
    invitation_hash text UNIQUE,
    invitation_expires_at {ts},
    active {bool} NOT NULL,
    created_at {ts} NOT NULL
);
CREATE INDEX users_agency ON users (agency_id, id);
CREATE TABLE memberships (
    id {uuid} PRIMARY KEY,
    agency_id {uuid} NOT NULL REFERENCES agencies (id),
    user_id {uuid} NOT NULL REFERENCES users (id),
    workspace_id {uuid} REFERENCES workspaces (id),
    role text NOT NULL,
    created_at {ts} NOT NULL
);
CREATE INDEX memberships_user ON memberships (user_id);
CREATE INDEX memberships_agency ON memberships (agency_id, id);
CREATE TABLE api_keys (
    tenant_id {uuid} NOT NULL REFERENCES workspaces (id),
    id {uuid} NOT NULL,
    name text NOT NULL,
    kind text NOT NULL,
    scopes {json} NOT NULL,
    prefix text NOT NULL,
    secret_hash text NOT NULL,
    created_by {uuid},
    created_at {ts} NOT NULL,
    last_used_at {ts},
    revoked_at {ts},
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX api_keys_prefix ON api_keys (tenant_id, prefix);
CREATE TABLE refresh_tokens (
    id {uuid} PRIMARY KEY,
    user_id {uuid} NOT NULL REFERENCES users (id),
    session_id {uuid} NOT NULL,
    token_hash text NOT NULL UNIQUE,
    expires_at {ts} NOT NULL,
    used_at {ts},
    revoked_at {ts},
    created_at {ts} NOT NULL
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
CREATE TABLE audit_log (
    id {uuid} PRIMARY KEY,
    agency_id {uuid} NOT NULL REFERENCES agencies (id),
    workspace_id {uuid},
    actor_user_id {uuid},
    actor_api_key_id {uuid},
    action text NOT NULL,
    target_id {uuid},
    details {json} NOT NULL,
    created_at {ts} NOT NULL
);
CREATE INDEX audit_log_agency ON audit_log (agency_id, id);
";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::create_tables(manager, SQL, TENANT_TABLES).await
    }
}
