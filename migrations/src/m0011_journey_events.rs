//! Journeys react to events: a journey can start when someone performs an event, wait for an
//! event (with a timeout), and jump to a goal when its event happens. The executor reads
//! processed events after a per-workspace cursor (event ids are in order of arrival);
//! `trigger_event_id` makes an event start a journey at most once. `offers` holds, per decision
//! channel (website, kiosk, POS, call centre), the offer a journey last chose for each person.

use sea_orm_migration::prelude::*;

pub struct Migration;

pub(crate) const TENANT_TABLES: &[&str] = &["journey_event_cursors", "offers"];

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0011_journey_events"
    }
}

const SQL: &str = "
CREATE TABLE journey_event_cursors (
    tenant_id {uuid} NOT NULL REFERENCES workspaces (id),
    event_cursor {uuid},
    updated_at {ts} NOT NULL,
    PRIMARY KEY (tenant_id)
);
ALTER TABLE journeys ADD COLUMN awaits_events {bool} NOT NULL DEFAULT FALSE;
ALTER TABLE journey_enrollments ADD COLUMN trigger_event_id {uuid};
ALTER TABLE journey_enrollments ADD COLUMN waiting_since {ts};
CREATE TABLE offers (
    tenant_id {uuid} NOT NULL REFERENCES workspaces (id),
    channel_id {uuid} NOT NULL,
    profile_id {uuid} NOT NULL,
    journey_id {uuid} NOT NULL,
    step text NOT NULL,
    variant text,
    content {json} NOT NULL,
    decided_at {ts} NOT NULL,
    PRIMARY KEY (tenant_id, channel_id, profile_id)
);
CREATE UNIQUE INDEX journey_enrollments_trigger ON journey_enrollments (tenant_id, journey_id, trigger_event_id);
";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::create_tables(manager, SQL, TENANT_TABLES).await
    }
}
