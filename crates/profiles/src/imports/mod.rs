//! CSV imports of offline records. A CRM import creates and updates profiles through their
//! identifiers, like an `identify` per row under the `import` trait source; an enrichment
//! import (age band, income band…) adds traits to profiles that already exist, keyed by one
//! identifier, under the `enrichment` source, and keeps nothing about people it cannot match.
//!
//! Rows go through the same inbox and processor as tracked events, so they link to online
//! profiles by the same rules, merges and suppressions.

mod csv_stream;
mod job;
mod mapping;
mod upload;

pub use job::{ImportJob, ImportStatus, NewImport};
pub(crate) use job::{job_of_source, job_update, push_completion};
pub use mapping::{ColumnSpec, ColumnTarget, ImportKind, RowError, ValueType};
pub use upload::ImportUpload;
