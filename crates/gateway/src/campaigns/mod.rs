//! Campaigns through GraphQL: channels, content, journeys and what they did.

mod mutation;
mod objects;
mod query;

pub use mutation::CampaignsMutation;
pub use query::CampaignsQuery;
