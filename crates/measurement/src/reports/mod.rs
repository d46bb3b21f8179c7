//! Reports read from the workspace's data: attribution (with return on spend and model
//! stability), customer quality by acquisition channel, and journeys' holdouts and experiments.

pub mod attribution;
pub mod journeys;
pub mod paths;
pub mod quality;

pub use attribution::{
    AttributionReport, AttributionRequest, AttributionRow, ModelReport, MonthReport, MonthlyShare,
};
pub use journeys::{ExperimentReport, HoldoutReport, JourneyMeasureRequest};
pub use quality::ChannelQuality;
