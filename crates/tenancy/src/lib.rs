//! Agencies, workspaces, staff, roles, authentication (argon2id passwords, JWT access tokens,
//! rotating refresh tokens), API keys and the audit log.
//!
//! Everything is reached through [`Tenancy`], one cheap-to-clone service. Callers first turn a
//! bearer credential into an [`Actor`] ([`Tenancy::identify`], without I/O, then
//! [`Tenancy::authenticate`]); every other operation takes that actor and checks its role
//! before touching data.

mod actor;
mod agencies;
mod api_keys;
mod audit;
mod auth;
mod error;
mod inputs;
mod passwords;
mod role;
mod secrets;
mod service;
mod tokens;
mod users;
mod workspaces;

pub use actor::{Actor, ApiKeyActor, Permission, StaffActor};
pub use agencies::Bootstrapped;
pub use api_keys::{ApiKey, ApiKeyKind, ApiKeyScope, CreatedApiKey, NewApiKey};
pub use audit::{AuditAction, AuditEntry};
pub use auth::{Credential, LoginInput, TokenPair};
pub use error::TenancyError;
pub use inputs::{EmailAddress, Name};
pub use role::Role;
pub use service::Tenancy;
pub use tokens::JwtKeys;
pub use users::{CreatedInvitation, Membership, NewStaff, StaffUser};
pub use workspaces::Workspace;

pub type Result<T, E = TenancyError> = std::result::Result<T, E>;
