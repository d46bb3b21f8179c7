//! Campaigns: the channel catalogue ([`channel`]) and a workspace's channels ([`channels`]),
//! content with per-channel variants rendered through a template engine ([`content`],
//! [`contents`]), journeys as versioned graphs of steps ([`graph`], [`journeys`]), the executor
//! that moves people through them ([`executor`]), the outbox every send goes through and its
//! delivery adapters ([`delivery`]), experiment assignment ([`assignment`]), and what happened
//! to whom ([`reports`]).

pub mod assignment;
pub mod audiences;
pub mod channel;
pub mod channels;
pub mod content;
pub mod contents;
pub mod decisions;
pub mod delivery;
mod egress;
mod error;
mod events;
pub mod executor;
pub mod feedback;
pub mod graph;
pub mod journeys;
pub(crate) mod machine;
pub mod reports;
mod service;
pub mod settings;
pub mod simulation;
mod smtp;

pub use error::{CampaignsError, Problem, Result};
pub use service::{Campaigns, CampaignsConfig};

/// Names of channels, contents and journeys: what staff read in lists.
pub(crate) fn check_name(name: &str, what: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(CampaignsError::invalid(format!(
            "a {what} name must be 1 to 200 characters without control characters"
        )));
    }
    Ok(name.to_owned())
}
