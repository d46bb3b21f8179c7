use crate::error::coded;
use async_graphql::Context;
use kernel::{ErrorCode, WorkspaceId};
use tenancy::Actor;

/// What the HTTP layer learnt about the request, handed to every resolver.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub actor: Option<Actor>,
    /// A bearer credential was sent but is invalid or expired. Operations that need no
    /// caller (`login`, `refreshToken`) still run, so a client holding a stale access token
    /// can still refresh it.
    pub credential_rejected: bool,
    /// The `X-Workspace-Id` header, when sent.
    pub workspace_header: Option<WorkspaceId>,
}

pub(crate) trait ContextExt {
    fn request(&self) -> &RequestContext;
    fn actor(&self) -> async_graphql::Result<&Actor>;
    fn tenancy(&self) -> &tenancy::Tenancy;
    fn profiles(&self) -> &profiles::Profiles;
    fn segments(&self) -> &segments::Segments;
    fn campaigns(&self) -> &campaigns::Campaigns;
    fn measurement(&self) -> &measurement::Measurement;
    /// The workspace an operation targets: the argument, else the header, else (for an API
    /// key) the key's own workspace.
    fn workspace(&self, argument: Option<&async_graphql::ID>) -> async_graphql::Result<WorkspaceId>;
}

impl ContextExt for Context<'_> {
    fn request(&self) -> &RequestContext {
        self.data_unchecked::<RequestContext>()
    }

    fn actor(&self) -> async_graphql::Result<&Actor> {
        let request = self.request();
        request.actor.as_ref().ok_or_else(|| {
            let message = if request.credential_rejected {
                "the credentials are invalid or expired"
            } else {
                "authentication required"
            };
            coded(ErrorCode::Unauthenticated, message)
        })
    }

    fn tenancy(&self) -> &tenancy::Tenancy {
        self.data_unchecked::<tenancy::Tenancy>()
    }

    fn profiles(&self) -> &profiles::Profiles {
        self.data_unchecked::<profiles::Profiles>()
    }

    fn segments(&self) -> &segments::Segments {
        self.data_unchecked::<segments::Segments>()
    }

    fn campaigns(&self) -> &campaigns::Campaigns {
        self.data_unchecked::<campaigns::Campaigns>()
    }

    fn measurement(&self) -> &measurement::Measurement {
        self.data_unchecked::<measurement::Measurement>()
    }

    fn workspace(&self, argument: Option<&async_graphql::ID>) -> async_graphql::Result<WorkspaceId> {
        if let Some(id) = argument {
            return parse_id(id);
        }
        if let Some(id) = self.request().workspace_header {
            return Ok(id);
        }
        if let Ok(Actor::ApiKey(key)) = self.actor() {
            return Ok(key.workspace_id);
        }
        Err(coded(
            ErrorCode::BadUserInput,
            "name a workspace with `workspaceId` or the X-Workspace-Id header",
        ))
    }
}

pub(crate) fn parse_id<T: std::str::FromStr<Err = kernel::IdParseError>>(
    id: &async_graphql::ID,
) -> async_graphql::Result<T> {
    use crate::error::GqlResult;
    id.as_str().parse::<T>().gql()
}
