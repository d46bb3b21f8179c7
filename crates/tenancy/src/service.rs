use crate::{Result, passwords::PasswordPolicy, tokens::JwtKeys};
use kernel::Clock;
use platform::{Cache, Db, settings::AuthSettings};
use std::sync::Arc;

/// The tenancy service. Cheap to clone; the gateway holds one for the process.
#[derive(Clone)]
pub struct Tenancy {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub db: Db,
    pub cache: Cache,
    pub settings: AuthSettings,
    pub keys: JwtKeys,
    pub passwords: PasswordPolicy,
    pub clock: Arc<dyn Clock>,
}

impl Tenancy {
    pub fn new(
        db: Db,
        cache: Cache,
        settings: AuthSettings,
        keys: JwtKeys,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        let passwords = PasswordPolicy::new(settings.argon2_memory_kib, settings.argon2_iterations)?;
        Ok(Self { inner: Arc::new(Inner { db, cache, settings, keys, passwords, clock }) })
    }

    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    pub(crate) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.inner.clock.now()
    }
}
