//! Profiles: ingestion, the identity graph and merges, traits, timeline, imports, dedup,
//! consent and privacy. Arrives with the profiles issue; the crate exists now so the
//! dependency direction of DESIGN §2 is fixed from the start.
