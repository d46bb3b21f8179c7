//! Profiles (issue 3): the event inbox, the identity graph with its merge history, traits,
//! consent and the erasure suppression list.

use sea_orm_migration::prelude::*;

pub struct Migration;

/// The tenant tables this step creates; [`crate::TENANT_TABLES`] lists them all.
pub(crate) const TENANT_TABLES: &[&str] = &[
    "profile_settings",
    "identity_rules",
    "profiles",
    "identities",
    "events",
    "profile_merges",
    "merge_blocks",
    "consents",
    "suppressions",
];

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0002_profiles"
    }
}

const SQL: &str = "
CREATE TABLE profile_settings (
    tenant_id {uuid} NOT NULL REFERENCES workspaces (id),
    default_region text NOT NULL,
    source_precedence {json} NOT NULL,
    suppression_salt text NOT NULL,
    updated_at {ts} NOT NULL,
    PRIMARY KEY (tenant_id)
);
CREATE TABLE identity_rules (
    tenant_id {uuid} NOT NULL REFERENCES workspaces (id),
    kind text NOT NULL,
    priority integer NOT NULL,
    max_per_profile integer NOT NULL,
    merges {bool} NOT NULL,
    blocked_values {json} NOT NULL,
    blocked_patterns {json} NOT NULL,
    updated_at {ts} NOT NULL,
    PRIMARY KEY (tenant_id, kind)
);
CREATE TABLE profiles (
    tenant_id {uuid} NOT NULL REFERENCES workspaces (id),
    id {uuid} NOT NULL,
    merged_into {uuid},
    traits {json} NOT NULL,
    first_seen_at {ts},
    last_seen_at {ts},
    event_count bigint NOT NULL,
    revenue double precision NOT NULL,
    first_channel text,
    devices {json} NOT NULL,
    search_text text NOT NULL,
    created_at {ts} NOT NULL,
    updated_at {ts} NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX profiles_live ON profiles (tenant_id, id) WHERE merged_into IS NULL;
CREATE INDEX profiles_merged_into ON profiles (tenant_id, merged_into) WHERE merged_into IS NOT NULL;
CREATE TABLE identities (
    tenant_id {uuid} NOT NULL REFERENCES workspaces (id),
    id {uuid} NOT NULL,
    kind text NOT NULL,
    value text NOT NULL,
    profile_id {uuid} NOT NULL,
    first_profile_id {uuid} NOT NULL,
    source text NOT NULL,
    created_at {ts} NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX identities_value ON identities (tenant_id, value, kind);
CREATE INDEX identities_profile ON identities (tenant_id, profile_id);
CREATE TABLE events (
    tenant_id {uuid} NOT NULL REFERENCES workspaces (id),
    id {uuid} NOT NULL,
    message_id text NOT NULL,
    type text NOT NULL,
    name text,
    status text NOT NULL,
    occurred_at {ts} NOT NULL,
    received_at {ts} NOT NULL,
    source text NOT NULL,
    body {json} NOT NULL,
    channel text,
    first_profile_id {uuid},
    profile_id {uuid},
    processed_at {ts},
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX events_message ON events (tenant_id, message_id);
CREATE INDEX events_pending ON events (tenant_id, id) WHERE status = 'pending';
CREATE INDEX events_profile ON events (tenant_id, profile_id, id);
CREATE INDEX events_first_profile ON events (tenant_id, first_profile_id);
CREATE TABLE profile_merges (
    tenant_id {uuid} NOT NULL REFERENCES workspaces (id),
    id {uuid} NOT NULL,
    survivor_id {uuid} NOT NULL,
    merged_id {uuid} NOT NULL,
    cause_kind text NOT NULL,
    cause_value text NOT NULL,
    event_id {uuid},
    survivor_traits_before {json} NOT NULL,
    merged_traits {json} NOT NULL,
    created_at {ts} NOT NULL,
    undone_at {ts},
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX profile_merges_survivor ON profile_merges (tenant_id, survivor_id, id);
CREATE INDEX profile_merges_merged ON profile_merges (tenant_id, merged_id, id);
CREATE TABLE merge_blocks (
    tenant_id {uuid} NOT NULL REFERENCES workspaces (id),
    profile_a {uuid} NOT NULL,
    profile_b {uuid} NOT NULL,
    created_at {ts} NOT NULL,
    PRIMARY KEY (tenant_id, profile_a, profile_b)
);
CREATE TABLE consents (
    tenant_id {uuid} NOT NULL REFERENCES workspaces (id),
    id {uuid} NOT NULL,
    profile_id {uuid} NOT NULL,
    first_profile_id {uuid} NOT NULL,
    purpose text NOT NULL,
    channel text NOT NULL,
    granted {bool} NOT NULL,
    source text NOT NULL,
    recorded_at {ts} NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX consents_profile ON consents (tenant_id, profile_id, purpose, channel, id);
CREATE TABLE suppressions (
    tenant_id {uuid} NOT NULL REFERENCES workspaces (id),
    identity_hash text NOT NULL,
    dropped_events bigint NOT NULL,
    created_at {ts} NOT NULL,
    PRIMARY KEY (tenant_id, identity_hash)
);
CREATE TABLE pending_work (
    kind text NOT NULL,
    tenant_id {uuid} NOT NULL REFERENCES workspaces (id),
    since {ts} NOT NULL,
    PRIMARY KEY (kind, tenant_id)
);
";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::create_tables(manager, SQL, TENANT_TABLES).await
    }
}
