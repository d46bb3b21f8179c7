//! Client input turned into domain values (parse, don't validate): once a value has one of
//! these types, it is known to be well-formed.

use crate::{Result, TenancyError};

const MAX_EMAIL_BYTES: usize = 254;
const MAX_NAME_CHARS: usize = 200;

/// An email address, trimmed and lower-cased, with a plausible shape. Full RFC 5322 is not the
/// point: the address must be recognisable as one and safe to store and compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self> {
        let email = raw.trim().to_lowercase();
        let valid = email.len() <= MAX_EMAIL_BYTES
            && email.matches('@').count() == 1
            && email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            })
            && !email.chars().any(|c| c.is_whitespace() || c.is_control());
        if valid { Ok(Self(email)) } else { Err(TenancyError::invalid("the email address is not valid")) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A human-chosen name (agency, workspace, key, person): 1 to 200 printable characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name(String);

impl Name {
    /// `what` names the field in the error, e.g. "workspace name".
    pub fn parse(what: &str, raw: &str) -> Result<Self> {
        let name = raw.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
            return Err(TenancyError::invalid(format!(
                "the {what} must have 1 to {MAX_NAME_CHARS} printable characters"
            )));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(EmailAddress::parse("  Ada@Example.COM ").unwrap().as_str(), "ada@example.com");
        for bad in ["", "no-at", "a@b", "a@@b.com", "a b@c.com", "@x.com", "a@.com", "a@x.com\u{0}"] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(EmailAddress::parse(&format!("{}@x.com", "a".repeat(300))).is_err());
    }

    #[test]
    fn names_are_trimmed_printable_and_bounded() {
        assert_eq!(Name::parse("name", "  Client A ").unwrap().into_inner(), "Client A");
        assert!(Name::parse("name", "   ").is_err());
        assert!(Name::parse("name", "tab\there").is_err());
        assert!(Name::parse("name", &"x".repeat(201)).is_err());
        assert!(Name::parse("name", &"é".repeat(200)).is_ok());
    }
}
