//! The profiles domain on GraphQL: profiles and their timeline, identities, merges and
//! consent; ingestion for integrations that prefer GraphQL; identity rules; GDPR.

mod imports;
mod mutation;
mod objects;
mod query;
mod suppressions;

pub use imports::{ImportsMutation, ImportsQuery};
pub use mutation::ProfilesMutation;
pub(crate) use objects::Profile;
pub use query::ProfilesQuery;
pub use suppressions::{SuppressionsMutation, SuppressionsQuery};
