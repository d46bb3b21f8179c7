//! Measurement: what an event says about the marketing that brought it, conversion definitions,
//! spend, and the workspace's channel rules.
//!
//! The marketing context of an event (UTM source, medium and campaign, the external referrer's
//! host, the device) is extracted once at ingestion into columns, and `touch` marks the events
//! that can be touchpoints, so a report reads them through a partial index instead of parsing
//! millions of JSON bodies. Which channel a touch belongs to is decided at report time by the
//! workspace's rules, so a corrected rule applies to the past too.

use sea_orm_migration::prelude::*;

pub struct Migration;

pub(crate) const TENANT_TABLES: &[&str] = &["measurement_settings", "conversion_definitions", "spend"];

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0013_measurement"
    }
}

const SQL: &str = "
ALTER TABLE events ADD COLUMN touch {bool} NOT NULL DEFAULT FALSE;
ALTER TABLE events ADD COLUMN utm_source text;
ALTER TABLE events ADD COLUMN utm_medium text;
ALTER TABLE events ADD COLUMN utm_campaign text;
ALTER TABLE events ADD COLUMN referrer_host text;
ALTER TABLE events ADD COLUMN device text;
CREATE INDEX events_touches ON events (tenant_id, occurred_at) WHERE touch;
CREATE INDEX touchpoints_at ON touchpoints (tenant_id, at);
CREATE TABLE measurement_settings (
    tenant_id {uuid} NOT NULL REFERENCES workspaces (id),
    channel_rules {json} NOT NULL,
    updated_at {ts} NOT NULL,
    PRIMARY KEY (tenant_id)
);
CREATE TABLE conversion_definitions (
    tenant_id {uuid} NOT NULL REFERENCES workspaces (id),
    id {uuid} NOT NULL,
    name text NOT NULL,
    event_name text NOT NULL,
    filters {json} NOT NULL,
    value_property text,
    currency text NOT NULL,
    lookback_days integer NOT NULL,
    created_at {ts} NOT NULL,
    updated_at {ts} NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX conversion_definitions_name ON conversion_definitions (tenant_id, name);
CREATE TABLE spend (
    tenant_id {uuid} NOT NULL REFERENCES workspaces (id),
    day {ts} NOT NULL,
    channel text NOT NULL,
    campaign text NOT NULL,
    amount double precision NOT NULL,
    currency text NOT NULL,
    source text NOT NULL,
    updated_at {ts} NOT NULL,
    PRIMARY KEY (tenant_id, day, channel, campaign)
);
";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::create_tables(manager, SQL, TENANT_TABLES).await
    }
}
