//! Campaigns: channels, content, journeys, the executor, delivery adapters, frequency caps
//! and experiment assignment. Arrives with the campaigns issue.
