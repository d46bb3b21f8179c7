//! Profiles: ingestion, the identity graph and merges, traits, timeline, imports, dedup,
//! consent and privacy.
//!
//! Events arrive through [`Profiles::ingest`] (the tracking API and GraphQL), are committed to
//! the `events` inbox and acknowledged; the ingestion worker ([`Profiles::run_ingestion_worker`])
//! then resolves identities ([`resolver`]), merges profiles when the workspace's
//! [`rules`] allow, and updates traits ([`traits`]) and computed traits. Every identifier is
//! normalised ([`identity`]) before it is stored, compared or hashed.

pub mod address_suppressions;
pub mod changes;
pub mod consent;
pub mod contact;
pub mod dedup;
pub mod duplicates;
mod error;
mod extract;
pub mod identity;
pub mod imports;
mod ingest;
pub mod marketing;
pub mod message;
pub mod privacy;
mod processor;
mod profile_row;
pub mod read;
pub mod resolver;
pub mod rules;
pub mod rules_preview;
mod service;
pub mod settings;
pub mod traits;
mod unmerge;
mod worker;

/// Raw SQL for both backends lives in `platform`, shared with the crates that build on profiles.
pub(crate) use platform::sql;

pub use error::ProfilesError;
pub use identity::{Identity, IdentityKind, NormalizationContext, PostalAddress};
pub use ingest::IngestOutcome;
pub use processor::ProcessOutcome;
pub use service::{Profiles, Result};
