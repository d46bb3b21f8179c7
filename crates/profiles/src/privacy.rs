//! GDPR: export everything about a person, and erase them across the identity graph, leaving
//! only salted hashes of their identifiers so that later data about them is dropped.

use crate::Identity;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The suppression-list form of an identifier: HMAC-SHA256 keyed by the workspace's salt, so
/// the list cannot be reversed by hashing a dictionary of emails without the salt.
pub(crate) fn identity_hash(salt: &str, identity: &Identity) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(salt.as_bytes()) {
        Ok(mac) => mac,
        // HMAC accepts keys of any length; this arm is unreachable but keeps the code total.
        Err(_) => return String::new(),
    };
    mac.update(identity.kind.as_str().as_bytes());
    mac.update(b":");
    mac.update(identity.value.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}
