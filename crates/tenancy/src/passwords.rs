//! argon2id password hashing with the configured (OWASP-minimum or stronger) parameters.
//! Hashing is CPU- and memory-heavy, so it runs on the blocking pool.

use crate::{Result, TenancyError};
use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher as _, PasswordVerifier, Version,
    password_hash::{SaltString, rand_core::OsRng},
};

pub(crate) const MIN_PASSWORD_CHARS: usize = 12;
pub(crate) const MAX_PASSWORD_BYTES: usize = 1024;

#[derive(Debug, Clone)]
pub(crate) struct PasswordPolicy {
    params: Params,
}

pub(crate) enum Verified {
    Valid { rehash: Option<String> },
    Invalid,
}

impl PasswordPolicy {
    pub(crate) fn new(memory_kib: u32, iterations: u32) -> Result<Self> {
        let params = Params::new(memory_kib, iterations, 1, None)
            .map_err(|e| TenancyError::Internal(format!("argon2 parameters: {e}").into()))?;
        Ok(Self { params })
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    pub(crate) fn check_strength(password: &str) -> Result<()> {
        if password.chars().count() < MIN_PASSWORD_CHARS {
            return Err(TenancyError::invalid(format!(
                "the password must have at least {MIN_PASSWORD_CHARS} characters"
            )));
        }
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(TenancyError::invalid(format!(
                "the password must be at most {MAX_PASSWORD_BYTES} bytes"
            )));
        }
        Ok(())
    }

    pub(crate) async fn hash(&self, password: &str) -> Result<String> {
        let policy = self.clone();
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || policy.hash_blocking(&password))
            .await
            .map_err(|e| TenancyError::Internal(Box::new(e)))?
    }

    fn hash_blocking(&self, password: &str) -> Result<String> {
        let salt = SaltString::generate(&mut OsRng);
        self.argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| TenancyError::Internal(format!("argon2: {e}").into()))
    }

    /// Verifies, and when the stored hash used other parameters than today's policy, returns
    /// a fresh hash to store (upgrading old hashes as their owners log in).
    pub(crate) async fn verify(&self, password: &str, stored: &str) -> Result<Verified> {
        let policy = self.clone();
        let password = password.to_owned();
        let stored = stored.to_owned();
        tokio::task::spawn_blocking(move || policy.verify_blocking(&password, &stored))
            .await
            .map_err(|e| TenancyError::Internal(Box::new(e)))?
    }

    fn verify_blocking(&self, password: &str, stored: &str) -> Result<Verified> {
        let Ok(parsed) = PasswordHash::new(stored) else {
            return Ok(Verified::Invalid);
        };
        if self.argon2().verify_password(password.as_bytes(), &parsed).is_err() {
            return Ok(Verified::Invalid);
        }
        let current = Params::try_from(&parsed).ok();
        let outdated = parsed.algorithm.as_str() != "argon2id"
            || current.is_none_or(|p| {
                p.m_cost() != self.params.m_cost()
                    || p.t_cost() != self.params.t_cost()
                    || p.p_cost() != self.params.p_cost()
            });
        let rehash = if outdated { Some(self.hash_blocking(password)?) } else { None };
        Ok(Verified::Valid { rehash })
    }

    /// Spends the same work as a real verification, so an unknown email takes as long to
    /// refuse as a wrong password.
    pub(crate) async fn burn_equal_time(&self, password: &str) {
        let _ = self.hash(password).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_old_parameters_are_upgraded() {
        let old = PasswordPolicy::new(19 * 1024, 2).unwrap();
        let new = PasswordPolicy::new(20 * 1024, 2).unwrap();
        let stored = old.hash("correct horse battery").await.unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(matches!(
            old.verify("correct horse battery", &stored).await.unwrap(),
            Verified::Valid { rehash: None }
        ));
        assert!(matches!(old.verify("wrong horse battery", &stored).await.unwrap(), Verified::Invalid));
        match new.verify("correct horse battery", &stored).await.unwrap() {
            Verified::Valid { rehash: Some(h) } => assert!(h.contains("m=20480")),
            _ => panic!("a hash with old parameters must be upgraded"),
        }
        assert!(matches!(old.verify("x", "not a phc string").await.unwrap(), Verified::Invalid));
    }

    #[test]
    fn weak_and_huge_passwords_are_refused() {
        assert!(PasswordPolicy::check_strength("short").is_err());
        assert!(PasswordPolicy::check_strength(&"x".repeat(2000)).is_err());
        assert!(PasswordPolicy::check_strength("long enough passphrase").is_ok());
    }
}
