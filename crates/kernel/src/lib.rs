//! Types every other crate shares: newtype IDs, the stable error codes, cursors and the clock.
//! No I/O lives here.

pub mod clock;
pub mod error_code;
pub mod ids;
pub mod page;
pub mod retry;

pub use clock::{Clock, SystemClock};
pub use error_code::ErrorCode;
pub use ids::{
    AgencyId, ApiKeyId, AuditEntryId, AuditTargetId, ChannelId, ContentId, ConversionId, EnrollmentId,
    EventId, IdParseError, IdentityId, ImportId, JourneyId, MembershipId, MergeId, ProfileId, SegmentId,
    SessionId, TenantId, UserId, WorkspaceId,
};
pub use page::{Cursor, CursorError, Page, PageRequest};
pub use retry::retry_after_seconds;
