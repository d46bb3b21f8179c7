//! Measurement: touchpoints, conversions, attribution models, incrementality, experiment
//! statistics, spend and reports.
//!
//! `attribution` and `stats` are pure computation (no I/O). The service ([`Measurement`]) reads
//! touches, conversions, enrollments and spend from the database and feeds them: `touches`
//! (channel rules and loading), `conversions` (definitions), `spend`, `reports`, and `cache`.

pub mod attribution;
mod cache;
pub mod conversions;
pub mod error;
pub mod reports;
mod service;
pub mod spend;
pub mod stats;
pub mod touches;

pub use error::{MeasurementError, Result};
pub use service::Measurement;
