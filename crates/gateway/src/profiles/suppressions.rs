//! The address suppression list on GraphQL: addresses no message may go to (hard bounces,
//! complaints, imported do-not-contact lists). Only hashes are stored, so the list is asked
//! about one address at a time and never listed.

use crate::{context::ContextExt, error::GqlResult};
use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use profiles::IdentityKind;
use profiles::address_suppressions as domain;

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum AddressKind {
    Email,
    Phone,
}

impl From<AddressKind> for IdentityKind {
    fn from(kind: AddressKind) -> Self {
        match kind {
            AddressKind::Email => IdentityKind::Email,
            AddressKind::Phone => IdentityKind::Phone,
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "domain::SuppressionReason")]
pub enum SuppressionReason {
    /// The provider reported that the address does not exist.
    HardBounce,
    /// The recipient marked a message as spam.
    Complaint,
    /// Added by staff or an integration.
    Manual,
}

#[derive(SimpleObject)]
pub struct AddressSuppression {
    pub reason: SuppressionReason,
    /// `feedback:<send key>`, `staff:<user id>` or `key:<API key id>`.
    pub source: String,
    pub created_at: DateTime<Utc>,
}

#[derive(SimpleObject)]
pub struct RejectedAddress {
    /// Position of the address in the list sent (0-based).
    pub index: i32,
    pub message: String,
}

#[derive(SimpleObject)]
pub struct SuppressionImport {
    pub added: i32,
    pub already_suppressed: i32,
    pub rejected: Vec<RejectedAddress>,
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

#[derive(Default)]
pub struct SuppressionsQuery;

#[Object]
impl SuppressionsQuery {
    /// Whether messages to this address are suppressed, and why; null when they are not.
    async fn address_suppression(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        kind: AddressKind,
        address: String,
    ) -> async_graphql::Result<Option<AddressSuppression>> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let found =
            ctx.profiles().address_suppression(ctx.actor()?, workspace, kind.into(), &address).await.gql()?;
        Ok(found.map(|s| AddressSuppression {
            reason: s.reason.into(),
            source: s.source,
            created_at: s.created_at,
        }))
    }
}

#[derive(Default)]
pub struct SuppressionsMutation;

#[Object]
impl SuppressionsMutation {
    /// Adds addresses (at most 10,000 per call) to the list: no journey sends to them and no
    /// audience file contains them, whichever profile holds them.
    async fn suppress_addresses(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        kind: AddressKind,
        addresses: Vec<String>,
    ) -> async_graphql::Result<SuppressionImport> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        let outcome = ctx
            .profiles()
            .suppress_addresses(ctx.actor()?, workspace, kind.into(), &addresses)
            .await
            .gql()?;
        Ok(SuppressionImport {
            added: count(outcome.added),
            already_suppressed: count(outcome.already_suppressed),
            rejected: outcome
                .rejected
                .into_iter()
                .map(|(index, message)| RejectedAddress { index: count(index), message })
                .collect(),
        })
    }

    /// Takes an address off the list (admins only). Answers whether it was on it.
    async fn lift_address_suppression(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        kind: AddressKind,
        address: String,
    ) -> async_graphql::Result<bool> {
        let workspace = ctx.workspace(workspace_id.as_ref())?;
        ctx.profiles().lift_address_suppression(ctx.actor()?, workspace, kind.into(), &address).await.gql()
    }
}
