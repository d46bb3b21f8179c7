//! The tenancy domain on GraphQL: auth, workspaces, staff, API keys, audit log.

mod mutation;
mod objects;
mod query;

pub use mutation::TenancyMutation;
pub use query::TenancyQuery;
