//! The segments domain on GraphQL: definitions (text or JSON), preview, evaluation, members
//! and their entries and exits.

mod mutation;
mod objects;
mod query;

pub use mutation::SegmentsMutation;
pub use objects::SegmentMembership;
pub use query::SegmentsQuery;
