//! Measurement: touchpoints, conversions, attribution models, incrementality, experiment
//! statistics, spend and reports.
//!
//! `attribution` and `stats` are pure computation (no I/O): the services that read
//! touchpoints and conversions from the database feed them.

pub mod attribution;
pub mod error;
pub mod stats;

pub use error::{MeasurementError, Result};
