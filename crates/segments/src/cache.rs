//! Cached answers (previews, a profile's segments), stamped with two versions: the workspace's
//! profile data (changed by profiles on every commit) and its segments (changed here by every
//! definition or membership change), so an answer is never read after either changed. Reading
//! and writing answers is the shared [`AnswerCache`]'s; this adds which stamps segments use.

use kernel::WorkspaceId;
use platform::{AnswerCache, Cache, Stamps};

pub use platform::CacheStats;

#[derive(Clone)]
pub(crate) struct SegmentsCache(AnswerCache);

impl std::ops::Deref for SegmentsCache {
    type Target = AnswerCache;

    fn deref(&self) -> &AnswerCache {
        &self.0
    }
}

impl SegmentsCache {
    pub fn new(cache: Cache) -> Self {
        Self(AnswerCache::new(cache, "segments"))
    }

    fn segments_version_key(workspace: WorkspaceId) -> String {
        format!("segments-defs:{{{workspace}}}")
    }

    /// The current stamps, or `None` when the cache cannot answer (then nothing is cached).
    pub async fn stamps(&self, workspace: WorkspaceId) -> Option<Stamps> {
        self.0
            .stamps(&[profiles::Profiles::data_version_key(workspace), Self::segments_version_key(workspace)])
            .await
    }

    /// After a change to the workspace's segments (definitions or membership), committed.
    pub async fn segments_changed(&self, workspace: WorkspaceId) {
        self.0.bump(&Self::segments_version_key(workspace)).await
    }
}
