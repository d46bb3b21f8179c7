//! Touchpoints as attribution reads them: campaign contacts (sends, impressions, clicks) from
//! the campaigns' touchpoints, and ingested events that carry marketing (UTM parameters, an
//! external referrer, an assisted or offline channel), put in channels by the workspace's rules.

pub mod load;
pub mod rules;
pub(crate) mod settings;

pub use load::{Touch, TouchDimension};
pub use rules::{ChannelRuleSpec, ChannelRules, TouchFacts};
