//! Segments: the definition language, its compiler, batch and real-time evaluation,
//! membership history and exports. Arrives with the segments issue.
