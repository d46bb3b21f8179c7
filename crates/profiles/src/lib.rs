//! Profiles: ingestion, the identity graph and merges, traits, timeline, imports, dedup,
//! consent and privacy.
//!
//! So far: the identity kinds and their normalisation, the base the identity graph (issue 3)
//! is built on. Every identifier is normalised before it is stored, compared or hashed, so that
//! ` Ada@Example.com` and `ada@example.com`, or `06 12 34 56 78` and `+33612345678`, are one
//! identity.

mod error;
pub mod identity;

pub use error::ProfilesError;
pub use identity::{Identity, IdentityKind, NormalizationContext, PostalAddress};
