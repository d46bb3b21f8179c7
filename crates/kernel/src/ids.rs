//! Newtype IDs: a `ProfileId` can never be passed where a `TenantId` is expected.
//! All ids are UUIDv7, so they sort by creation time and make good keyset cursors.

use serde::{Deserialize, Serialize};
use std::{fmt, str::FromStr};
use uuid::Uuid;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("`{kind}` is not a valid id")]
pub struct IdParseError {
    pub kind: &'static str,
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $label:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s.trim()).map(Self).map_err(|_| IdParseError { kind: $label })
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }
    };
}

id_type!(AgencyId, "agency id");
id_type!(
    /// A client workspace: the unit of data isolation.
    WorkspaceId,
    "workspace id"
);
id_type!(UserId, "user id");
id_type!(MembershipId, "membership id");
id_type!(ApiKeyId, "API key id");
id_type!(AuditEntryId, "audit entry id");
id_type!(
    /// What an audit entry is about: a user, a key, a workspace… (its action says which).
    AuditTargetId,
    "audit target id"
);
id_type!(
    /// A login session: the family of refresh tokens that descend from one login.
    SessionId,
    "session id"
);
id_type!(
    /// One real person as a workspace knows them.
    ProfileId,
    "profile id"
);
id_type!(
    /// An ingested event; UUIDv7 in order of arrival, so it is also the timeline cursor.
    EventId,
    "event id"
);
id_type!(
    /// One recorded merge of two profiles, which can be explained and undone.
    MergeId,
    "merge id"
);
id_type!(
    /// A typed identifier (email, phone, cookie…) attached to a profile.
    IdentityId,
    "identity id"
);
id_type!(
    /// One CSV import of CRM or enrichment records: its mapping, progress and row errors.
    ImportId,
    "import id"
);
id_type!(
    /// An audience definition; its versions share the id.
    SegmentId,
    "segment id"
);
id_type!(
    /// A delivery channel configured in a workspace (an SMTP relay, a webhook, a file drop…).
    ChannelId,
    "channel id"
);
id_type!(
    /// Reusable content: a template with one variant per channel family.
    ContentId,
    "content id"
);
id_type!(
    /// A journey; its published versions share the id.
    JourneyId,
    "journey id"
);
id_type!(
    /// One person's passage through one version of a journey.
    EnrollmentId,
    "enrollment id"
);
id_type!(
    /// A workspace's definition of what counts as a conversion, for measurement.
    ConversionId,
    "conversion id"
);
id_type!(
    /// The `tenant_id` column of every tenant table. It is the workspace id; the separate type
    /// marks the places where the value is used as an isolation key.
    TenantId,
    "tenant id"
);

impl From<WorkspaceId> for TenantId {
    fn from(id: WorkspaceId) -> Self {
        Self(id.0)
    }
}

impl From<TenantId> for WorkspaceId {
    fn from(id: TenantId) -> Self {
        Self(id.0)
    }
}
