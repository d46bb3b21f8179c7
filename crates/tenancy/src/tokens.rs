//! JWT access tokens: HS256 only (pinned), with `kid`, `iss`, `aud`, `exp`, `nbf` all required
//! and validated. Several keys may verify at once so keys can be rotated: the first signs.

use crate::{Result, TenancyError};
use base64::{Engine, engine::general_purpose::STANDARD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use kernel::{AgencyId, SessionId, UserId};
use serde::{Deserialize, Serialize};
use std::path::Path;

const MIN_KEY_BYTES: usize = 32;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AccessClaims {
    pub sub: UserId,
    pub agency: AgencyId,
    pub sid: SessionId,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
}

struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

/// The keyring. Its `Debug` never prints key material.
pub struct JwtKeys {
    keys: Vec<SigningKey>,
    validation: Validation,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("kids", &self.keys.iter().map(|k| &k.kid).collect::<Vec<_>>())
            .finish()
    }
}

impl JwtKeys {
    /// Parses `kid:base64secret,kid:base64secret`; the first key signs.
    pub fn parse(spec: &str, issuer: &str, audience: &str) -> Result<Self> {
        let mut keys = Vec::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (kid, secret) = part
                .split_once(':')
                .ok_or_else(|| TenancyError::invalid("each JWT key must be written kid:base64secret"))?;
            let secret = STANDARD
                .decode(secret.trim())
                .map_err(|_| TenancyError::invalid(format!("JWT key `{kid}` is not valid base64")))?;
            if secret.len() < MIN_KEY_BYTES {
                return Err(TenancyError::invalid(format!(
                    "JWT key `{kid}` must have at least {MIN_KEY_BYTES} bytes"
                )));
            }
            if kid.is_empty() || keys.iter().any(|k: &SigningKey| k.kid == kid) {
                return Err(TenancyError::invalid("JWT key ids must be present and unique"));
            }
            keys.push(SigningKey {
                kid: kid.to_owned(),
                encoding: EncodingKey::from_secret(&secret),
                decoding: DecodingKey::from_secret(&secret),
            });
        }
        if keys.is_empty() {
            return Err(TenancyError::invalid("at least one JWT key is required"));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 5;
        Ok(Self { keys, validation })
    }

    /// Reads the keys generated into the data dir, generating them on first start. Used only
    /// when no keys are configured (a single-node install); clusters configure shared keys.
    pub fn load_or_generate(dir: &Path, issuer: &str, audience: &str) -> Result<Self> {
        let path = dir.join("jwt-keys");
        let spec = match std::fs::read_to_string(&path) {
            Ok(spec) => spec,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir).map_err(|e| TenancyError::Internal(Box::new(e)))?;
                let spec = Self::generate_spec();
                write_private(&path, &spec).map_err(|e| TenancyError::Internal(Box::new(e)))?;
                spec
            }
            Err(e) => return Err(TenancyError::Internal(Box::new(e))),
        };
        Self::parse(&spec, issuer, audience)
    }

    /// A fresh one-key spec, `kid:base64secret`.
    pub fn generate_spec() -> String {
        use rand::RngCore;
        let mut secret = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        format!("k{}:{}", chrono::Utc::now().format("%Y%m%d%H%M%S"), STANDARD.encode(secret))
    }

    pub(crate) fn sign(&self, claims: &AccessClaims) -> Result<String> {
        let key = self.keys.first().ok_or(TenancyError::Unauthenticated)?;
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &key.encoding).map_err(|e| TenancyError::Internal(Box::new(e)))
    }

    /// Any failure (unknown or missing kid, other algorithm, bad signature, wrong issuer or
    /// audience, expired, not yet valid) is the same `Unauthenticated` to the caller.
    pub(crate) fn verify(&self, token: &str) -> Result<AccessClaims> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TenancyError::Unauthenticated)?;
        if header.alg != Algorithm::HS256 {
            return Err(TenancyError::Unauthenticated);
        }
        let kid = header.kid.ok_or(TenancyError::Unauthenticated)?;
        let key = self.keys.iter().find(|k| k.kid == kid).ok_or(TenancyError::Unauthenticated)?;
        jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|_| TenancyError::Unauthenticated)
    }
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(contents.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(now: i64) -> AccessClaims {
        AccessClaims {
            sub: UserId::new(),
            agency: AgencyId::new(),
            sid: SessionId::new(),
            iss: "passerelle".into(),
            aud: "passerelle-api".into(),
            iat: now,
            nbf: now,
            exp: now + 60,
        }
    }

    #[test]
    fn rotation_keeps_old_tokens_valid_and_foreign_keys_fail() {
        let old_spec = JwtKeys::generate_spec().replacen('k', "old", 1);
        let new_spec = JwtKeys::generate_spec().replacen('k', "new", 1);
        let old = JwtKeys::parse(&old_spec, "passerelle", "passerelle-api").unwrap();
        let rotated =
            JwtKeys::parse(&format!("{new_spec},{old_spec}"), "passerelle", "passerelle-api").unwrap();
        let now = chrono::Utc::now().timestamp();
        let token = old.sign(&claims(now)).unwrap();
        assert!(rotated.verify(&token).is_ok(), "tokens of the previous key stay valid");
        let other = JwtKeys::parse(&new_spec, "passerelle", "passerelle-api").unwrap();
        assert!(other.verify(&token).is_err(), "a key that is not in the ring is refused");
        let mut expired = claims(now - 3600);
        expired.exp = now - 1800;
        assert!(old.verify(&old.sign(&expired).unwrap()).is_err());
        let mut early = claims(now);
        early.nbf = now + 600;
        assert!(old.verify(&old.sign(&early).unwrap()).is_err());
    }

    #[test]
    fn short_or_malformed_keys_are_refused() {
        assert!(JwtKeys::parse("a:c2hvcnQ=", "i", "a").is_err());
        assert!(JwtKeys::parse("nocolon", "i", "a").is_err());
        assert!(JwtKeys::parse("", "i", "a").is_err());
    }
}
