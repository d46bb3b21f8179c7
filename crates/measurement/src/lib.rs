//! Measurement: touchpoints, conversions, attribution models, incrementality, experiment
//! statistics, spend and reports. Arrives with the measurement issue.
