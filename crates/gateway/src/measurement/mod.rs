//! The measurement domain on GraphQL: attribution on exported paths, the experiment
//! calculator on raw counts and sample sizes. Pure computation, for any signed-in caller.

mod objects;
mod query;

pub use query::MeasurementQuery;
