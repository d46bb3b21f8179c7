//! Infrastructure every domain crate stands on: settings, telemetry, the database with its
//! tenant-scoped transactions, the cache and the rate limiter. Backends are chosen at start-up
//! (SQLite or PostgreSQL, in-process or Redis) behind the same types.

pub mod answers;
pub mod cache;
pub mod db;
pub mod error;
pub mod metrics;
pub mod paging;
pub mod rate_limit;
pub mod settings;
pub mod sql;
pub mod telemetry;
pub mod tenant;
pub mod work_queue;

pub use answers::{AnswerCache, CacheStats, Stamps};
pub use cache::Cache;
pub use db::{Backend, Db, PoolStatus};
pub use error::PlatformError;
pub use rate_limit::{RateDecision, RateLimiter, RateQuota};
pub use settings::Settings;
pub use tenant::TenantScope;
