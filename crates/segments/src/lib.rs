//! Segments: an audience defined once — as text for people ([`dsl`]) or JSON for machines
//! ([`ast`]) — compiled to SQL for both backends ([`compile`]), evaluated into stored
//! membership with its history ([`membership`]), and previewed without saving.

pub mod ast;
mod cache;
pub mod compile;
pub mod dsl;
mod error;
pub mod export;
pub mod journeys;
pub mod membership;
mod realtime;
pub mod reports;
mod service;

pub use ast::Condition;
pub use cache::CacheStats;
pub use error::{Result, SegmentsError};
pub use membership::Evaluation;
pub use service::{
    DefinitionInput, MAX_SAMPLE, Membership, MembershipChange, NewSegment, Preview, Segment, SegmentChanges,
    SegmentVersion, Segments,
};
