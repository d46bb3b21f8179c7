//! The measurement domain on GraphQL: attribution on exported paths, the experiment
//! calculator and sample sizes (pure computation, any signed-in caller), and the reports read
//! from a workspace's data with what configures them (conversions, channel rules, spend).

mod objects;
mod query;
mod report_objects;
mod reports;

pub use query::MeasurementQuery;
pub use reports::{MeasurementMutation, MeasurementReportsQuery};
