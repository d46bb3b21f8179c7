//! sea-orm entities only: one module per table, no behaviour.
//!
//! Tenant tables (those with `tenant_id`) are reached only through a `TenantScope`
//! transaction; the others are the control plane (agencies, staff, sessions, audit).

pub mod agency;
pub mod api_key;
pub mod audit_entry;
pub mod membership;
pub mod refresh_token;
pub mod user;
pub mod workspace;
