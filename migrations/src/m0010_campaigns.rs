//! Campaigns: channels configured per workspace, content (blocks and templates), journeys with
//! immutable published versions, each person's place in a journey (`journey_enrollments`, the
//! executor's durable state), the outbox every send goes through (one row per idempotency
//! key, so a retry never sends twice), touchpoints for measurement, and why someone did not
//! receive a message (`send_blocks`).

use sea_orm_migration::prelude::*;

pub struct Migration;

pub(crate) const TENANT_TABLES: &[&str] = &[
    "channels",
    "content_blocks",
    "contents",
    "journeys",
    "journey_versions",
    "journey_enrollments",
    "outbox",
    "touchpoints",
    "send_blocks",
    "campaign_settings",
    "frequency_caps",
];

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0010_campaigns"
    }
}

const SQL: &str = "
CREATE TABLE channels (
    tenant_id {uuid} NOT NULL REFERENCES workspaces (id),
    id {uuid} NOT NULL,
    name text NOT NULL,
    kind text NOT NULL,
    mode text NOT NULL,
    adapter text NOT NULL,
    config {json} NOT NULL,
    secret text,
    created_at {ts} NOT NULL,
    updated_at {ts} NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX channels_name ON channels (tenant_id, name);
CREATE TABLE content_blocks (
    tenant_id {uuid} NOT NULL REFERENCES workspaces (id),
    name text NOT NULL,
    body text NOT NULL,
    updated_at {ts} NOT NULL,
    PRIMARY KEY (tenant_id, name)
);
CREATE TABLE contents (
    tenant_id {uuid} NOT NULL REFERENCES workspaces (id),
    id {uuid} NOT NULL,
    name text NOT NULL,
    template {json} NOT NULL,
    created_at {ts} NOT NULL,
    updated_at {ts} NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX contents_name ON contents (tenant_id, name);
CREATE TABLE journeys (
    tenant_id {uuid} NOT NULL REFERENCES workspaces (id),
    id {uuid} NOT NULL,
    name text NOT NULL,
    status text NOT NULL,
    draft {json} NOT NULL,
    version integer NOT NULL,
    reentry text NOT NULL,
    entry_cursor {uuid},
    created_at {ts} NOT NULL,
    updated_at {ts} NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX journeys_name ON journeys (tenant_id, name);
CREATE TABLE journey_versions (
    tenant_id {uuid} NOT NULL REFERENCES workspaces (id),
    journey_id {uuid} NOT NULL,
    version integer NOT NULL,
    graph {json} NOT NULL,
    contents {json} NOT NULL,
    published_by text NOT NULL,
    published_at {ts} NOT NULL,
    PRIMARY KEY (tenant_id, journey_id, version)
);
CREATE TABLE journey_enrollments (
    tenant_id {uuid} NOT NULL REFERENCES workspaces (id),
    id {uuid} NOT NULL,
    journey_id {uuid} NOT NULL,
    version integer NOT NULL,
    profile_id {uuid} NOT NULL,
    step text NOT NULL,
    sequence integer NOT NULL,
    status text NOT NULL,
    due_at {ts},
    waiting_for text,
    variant text,
    holdout {bool} NOT NULL,
    converted_at {ts},
    entered_at {ts} NOT NULL,
    updated_at {ts} NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX journey_enrollments_due ON journey_enrollments (tenant_id, due_at) WHERE status = 'active';
CREATE INDEX journey_enrollments_profile ON journey_enrollments (tenant_id, profile_id, journey_id);
CREATE INDEX journey_enrollments_journey ON journey_enrollments (tenant_id, journey_id, step);
CREATE TABLE outbox (
    tenant_id {uuid} NOT NULL REFERENCES workspaces (id),
    id {uuid} NOT NULL,
    idempotency_key text NOT NULL,
    enrollment_id {uuid} NOT NULL,
    journey_id {uuid} NOT NULL,
    step text NOT NULL,
    channel_id {uuid} NOT NULL,
    channel text NOT NULL,
    variant text,
    profile_id {uuid} NOT NULL,
    payload {json} NOT NULL,
    status text NOT NULL,
    attempts integer NOT NULL,
    next_attempt_at {ts} NOT NULL,
    last_error text,
    created_at {ts} NOT NULL,
    sent_at {ts},
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX outbox_idempotency ON outbox (tenant_id, idempotency_key);
CREATE INDEX outbox_due ON outbox (tenant_id, next_attempt_at) WHERE status IN ('pending', 'sending');
CREATE TABLE touchpoints (
    tenant_id {uuid} NOT NULL REFERENCES workspaces (id),
    id {uuid} NOT NULL,
    profile_id {uuid} NOT NULL,
    kind text NOT NULL,
    channel text NOT NULL,
    channel_id {uuid},
    journey_id {uuid},
    step text,
    variant text,
    device text,
    at {ts} NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX touchpoints_profile ON touchpoints (tenant_id, profile_id, at);
CREATE INDEX touchpoints_journey ON touchpoints (tenant_id, journey_id, at);
CREATE TABLE send_blocks (
    tenant_id {uuid} NOT NULL REFERENCES workspaces (id),
    id {uuid} NOT NULL,
    journey_id {uuid} NOT NULL,
    enrollment_id {uuid} NOT NULL,
    step text NOT NULL,
    profile_id {uuid} NOT NULL,
    channel_id {uuid},
    reason text NOT NULL,
    detail text,
    at {ts} NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX send_blocks_journey ON send_blocks (tenant_id, journey_id, id);
CREATE INDEX send_blocks_profile ON send_blocks (tenant_id, profile_id, id);
CREATE TABLE campaign_settings (
    tenant_id {uuid} NOT NULL REFERENCES workspaces (id),
    timezone text NOT NULL,
    quiet_hours_start text,
    quiet_hours_end text,
    updated_at {ts} NOT NULL,
    PRIMARY KEY (tenant_id)
);
CREATE TABLE frequency_caps (
    tenant_id {uuid} NOT NULL REFERENCES workspaces (id),
    channel text NOT NULL,
    window_seconds bigint NOT NULL,
    max_sends integer NOT NULL,
    PRIMARY KEY (tenant_id, channel, window_seconds)
);
";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::create_tables(manager, SQL, TENANT_TABLES).await
    }
}
