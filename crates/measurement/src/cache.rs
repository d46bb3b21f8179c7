//! Reports cached in Redis (or in process on the embedded default), keyed by the workspace, the
//! report's parameters and two data versions: the workspace's profile data (stamped by profiles
//! on every commit: new events, hence new conversions, merges, erasures) and its measurement
//! data (stamped here whenever spend, conversion definitions or channel rules change). Either
//! changing makes every cached report unreachable, so a report never outlives new conversions or
//! spend. Campaign touchpoints recorded without any new event reach reports within
//! [`REPORT_TTL`]. Reading and writing is the shared [`AnswerCache`]'s.

use kernel::WorkspaceId;
use platform::{AnswerCache, Cache, Stamps};
use std::time::Duration;

/// How long a computed report is kept.
pub(crate) const REPORT_TTL: Duration = Duration::from_secs(300);

#[derive(Clone)]
pub(crate) struct ReportCache(AnswerCache);

impl std::ops::Deref for ReportCache {
    type Target = AnswerCache;

    fn deref(&self) -> &AnswerCache {
        &self.0
    }
}

impl ReportCache {
    pub fn new(cache: Cache) -> Self {
        Self(AnswerCache::new(cache, "measurement"))
    }

    fn measurement_version_key(workspace: WorkspaceId) -> String {
        format!("measurement-data:{{{workspace}}}")
    }

    /// The current stamps, or `None` when the cache cannot answer (then nothing is cached).
    pub async fn stamps(&self, workspace: WorkspaceId) -> Option<Stamps> {
        self.0
            .stamps(&[
                profiles::Profiles::data_version_key(workspace),
                Self::measurement_version_key(workspace),
            ])
            .await
    }

    /// After spend, a conversion definition or the channel rules changed, committed.
    pub async fn measurement_changed(&self, workspace: WorkspaceId) {
        self.0.bump(&Self::measurement_version_key(workspace)).await
    }
}
