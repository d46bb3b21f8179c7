//! The edge of Passerelle: the async-graphql schema (one merged object per domain), the
//! actix-web application around it, limits, health and metrics. Resolvers are thin: they parse
//! input, call a domain service and map the result.

mod campaigns;
mod connection;
mod context;
mod error;
pub mod http;
mod limits;
mod measurement;
mod profiles;
mod schema;
mod segments;
mod tenancy;

pub use context::RequestContext;
pub use http::{AppState, GatewaySettings, Ops, build_ops_server, build_server};
pub use schema::{PasserelleSchema, build_schema, sdl};
