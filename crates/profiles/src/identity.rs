//! Identity kinds and the normalisation of their values.

use crate::ProfilesError;
use std::{fmt, net::IpAddr, str::FromStr};

const MAX_IDENTIFIER_BYTES: usize = 256;
const MAX_CUSTOM_KIND_CHARS: usize = 32;

/// What an identifier is. The built-in kinds have their own normalisation; custom kinds (per
/// workspace, e.g. `loyalty_card`) are treated like opaque ids.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdentityKind {
    /// The client's account or subscriber id.
    UserId,
    /// A cookie or SDK-generated visitor id.
    AnonymousId,
    Email,
    Phone,
    /// Mobile advertising id (IDFA, AAID).
    Maid,
    DeviceId,
    Ip,
    /// Normalised name and postal address.
    Postal,
    Custom(String),
}

impl IdentityKind {
    pub const BUILT_IN: [IdentityKind; 8] = [
        Self::UserId,
        Self::AnonymousId,
        Self::Email,
        Self::Phone,
        Self::Maid,
        Self::DeviceId,
        Self::Ip,
        Self::Postal,
    ];

    pub fn as_str(&self) -> &str {
        match self {
            Self::UserId => "user_id",
            Self::AnonymousId => "anonymous_id",
            Self::Email => "email",
            Self::Phone => "phone",
            Self::Maid => "maid",
            Self::DeviceId => "device_id",
            Self::Ip => "ip",
            Self::Postal => "postal",
            Self::Custom(name) => name,
        }
    }
}

impl fmt::Display for IdentityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IdentityKind {
    type Err = ProfilesError;

    /// Built-in names, or a custom kind: lower-case letters, digits and `_`, starting with a
    /// letter, at most 32 characters.
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let name = raw.trim();
        Ok(match name {
            "user_id" => Self::UserId,
            "anonymous_id" => Self::AnonymousId,
            "email" => Self::Email,
            "phone" => Self::Phone,
            "maid" => Self::Maid,
            "device_id" => Self::DeviceId,
            "ip" => Self::Ip,
            "postal" => Self::Postal,
            custom => {
                let well_formed = custom.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                    && custom.chars().count() <= MAX_CUSTOM_KIND_CHARS
                    && custom.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                if !well_formed {
                    return Err(ProfilesError::invalid(format!(
                        "`{custom}` is not an identity kind: use a built-in kind or lower-case letters, digits \
                         and _ (at most {MAX_CUSTOM_KIND_CHARS})"
                    )));
                }
                Self::Custom(custom.to_owned())
            }
        })
    }
}

/// Workspace settings that normalisation depends on.
#[derive(Debug, Clone)]
pub struct NormalizationContext {
    /// Region assumed for phone numbers written without a country code (ISO 3166 alpha-2).
    pub default_region: Option<phonenumber::country::Id>,
}

impl NormalizationContext {
    pub fn with_region(region: &str) -> Result<Self, ProfilesError> {
        let region = region
            .trim()
            .to_ascii_uppercase()
            .parse()
            .map_err(|_| ProfilesError::invalid(format!("`{region}` is not an ISO 3166 country code")))?;
        Ok(Self { default_region: Some(region) })
    }
}

/// A normalised identifier: equal values mean the same identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    pub kind: IdentityKind,
    pub value: String,
}

/// A postal address as received; normalised into one comparable key.
#[derive(Debug, Clone, Default)]
pub struct PostalAddress {
    pub name: String,
    pub line1: String,
    pub line2: Option<String>,
    pub postal_code: String,
    pub city: String,
    /// ISO 3166 alpha-2.
    pub country: String,
}

impl PostalAddress {
    /// The address in a person's trait values (`address: {street, postalCode, city, country}`
    /// and the name traits), as the Segment spec writes it; `None` without an `address`.
    pub fn from_traits(values: &serde_json::Map<String, serde_json::Value>) -> Option<Self> {
        let address = values.get("address")?.as_object()?;
        let text =
            |key: &str| address.get(key).and_then(serde_json::Value::as_str).unwrap_or("").trim().to_owned();
        Some(Self {
            name: crate::traits::display_name(values),
            line1: text("street"),
            line2: None,
            postal_code: text("postalCode"),
            city: text("city"),
            country: text("country"),
        })
    }
}

impl Identity {
    /// Normalises `raw` for `kind`, refusing what cannot be an identifier of that kind.
    pub fn parse(
        kind: IdentityKind,
        raw: &str,
        context: &NormalizationContext,
    ) -> Result<Self, ProfilesError> {
        let value = match &kind {
            IdentityKind::Email => tenancy::EmailAddress::parse(raw)
                .map_err(|_| ProfilesError::invalid("the email address is not valid"))?
                .into_inner(),
            IdentityKind::Phone => normalize_phone(raw, context)?,
            IdentityKind::Maid => normalize_maid(raw)?,
            IdentityKind::Ip => raw
                .trim()
                .parse::<IpAddr>()
                .map(|ip| ip.to_canonical().to_string())
                .map_err(|_| ProfilesError::invalid("the IP address is not valid"))?,
            IdentityKind::Postal => {
                return Err(ProfilesError::invalid("postal identities are built with Identity::postal"));
            }
            IdentityKind::UserId
            | IdentityKind::AnonymousId
            | IdentityKind::DeviceId
            | IdentityKind::Custom(_) => opaque_id(raw)?,
        };
        Ok(Self { kind, value })
    }

    /// The postal identity: name and address upper-cased, accents and punctuation dropped,
    /// whitespace collapsed, common street words abbreviated, joined in a fixed order.
    pub fn postal(address: &PostalAddress) -> Result<Self, ProfilesError> {
        let country = address.country.trim().to_ascii_uppercase();
        if country.len() != 2 || !country.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(ProfilesError::invalid("the country must be an ISO 3166 alpha-2 code"));
        }
        let name = postal_words(&address.name);
        let line = postal_words(&format!("{} {}", address.line1, address.line2.as_deref().unwrap_or("")));
        let postal_code: String = address
            .postal_code
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_uppercase();
        let city = postal_words(&address.city);
        if name.is_empty() || line.is_empty() || (postal_code.is_empty() && city.is_empty()) {
            return Err(ProfilesError::invalid(
                "a postal identity needs a name, a street line and a postal code or city",
            ));
        }
        let value = format!("{name}|{line}|{postal_code}|{city}|{country}");
        if value.len() > MAX_IDENTIFIER_BYTES * 2 {
            return Err(ProfilesError::invalid("the postal address is too long"));
        }
        Ok(Self { kind: IdentityKind::Postal, value })
    }
}

fn opaque_id(raw: &str) -> Result<String, ProfilesError> {
    let value = raw.trim();
    if value.is_empty() || value.len() > MAX_IDENTIFIER_BYTES || value.chars().any(char::is_control) {
        return Err(ProfilesError::invalid(format!(
            "an identifier must have 1 to {MAX_IDENTIFIER_BYTES} bytes without control characters"
        )));
    }
    Ok(value.to_owned())
}

fn normalize_phone(raw: &str, context: &NormalizationContext) -> Result<String, ProfilesError> {
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > 64 {
        return Err(ProfilesError::invalid("the phone number is not valid"));
    }
    let number = phonenumber::parse(context.default_region, raw)
        .map_err(|_| ProfilesError::invalid("the phone number is not valid"))?;
    if !phonenumber::is_valid(&number) {
        return Err(ProfilesError::invalid("the phone number is not valid"));
    }
    Ok(number.format().mode(phonenumber::Mode::E164).to_string())
}

/// Mobile ad ids are UUIDs; stored lower-case with hyphens whatever the SDK sent.
fn normalize_maid(raw: &str) -> Result<String, ProfilesError> {
    let hex: String = raw.trim().chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ProfilesError::invalid("a mobile ad id must be a UUID"));
    }
    let hex = hex.to_ascii_lowercase();
    Ok(format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..]))
}

/// Upper-cased ASCII words: accents folded, punctuation dropped, street words abbreviated.
fn postal_words(text: &str) -> String {
    let folded: String = text
        .chars()
        .map(fold_accent)
        .map(|c| if c.is_alphanumeric() { c.to_ascii_uppercase() } else { ' ' })
        .collect();
    folded.split_whitespace().map(abbreviate).collect::<Vec<_>>().join(" ")
}

fn abbreviate(word: &str) -> &str {
    match word {
        "STREET" => "ST",
        "AVENUE" => "AVE",
        "ROAD" => "RD",
        "BOULEVARD" | "BD" => "BLVD",
        "DRIVE" => "DR",
        "LANE" => "LN",
        "PLACE" => "PL",
        "APARTMENT" => "APT",
        "SUITE" => "STE",
        "NORTH" => "N",
        "SOUTH" => "S",
        "EAST" => "E",
        "WEST" => "W",
        other => other,
    }
}

/// Latin letters with diacritics to their base letter (the common European ones); others pass.
fn fold_accent(c: char) -> char {
    match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' => 'A',
        'ç' | 'Ç' => 'C',
        'è' | 'é' | 'ê' | 'ë' | 'È' | 'É' | 'Ê' | 'Ë' => 'E',
        'ì' | 'í' | 'î' | 'ï' | 'Ì' | 'Í' | 'Î' | 'Ï' => 'I',
        'ñ' | 'Ñ' => 'N',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' => 'O',
        'ù' | 'ú' | 'û' | 'ü' | 'Ù' | 'Ú' | 'Û' | 'Ü' => 'U',
        'ý' | 'ÿ' | 'Ý' => 'Y',
        'ß' => 'S',
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fr() -> NormalizationContext {
        NormalizationContext::with_region("fr").unwrap()
    }

    fn parse(kind: &str, raw: &str) -> Result<String, ProfilesError> {
        Identity::parse(kind.parse().unwrap(), raw, &fr()).map(|i| i.value)
    }

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(parse("email", "  Ada.Lovelace@Example.COM ").unwrap(), "ada.lovelace@example.com");
        assert!(parse("email", "not an email").is_err());
    }

    #[test]
    fn phones_become_e164_with_the_workspace_region() {
        assert_eq!(parse("phone", "06 12 34 56 78").unwrap(), "+33612345678");
        assert_eq!(parse("phone", "+33 (0)6 12 34 56 78").unwrap(), "+33612345678");
        assert_eq!(parse("phone", "+1 415-555-2671").unwrap(), "+14155552671");
        assert_eq!(parse("phone", "0044 20 7183 8750").unwrap(), "+442071838750");
        for bad in ["", "12", "phone", "+33 1", &"9".repeat(100)] {
            assert!(parse("phone", bad).is_err(), "{bad:?} must be refused");
        }
        let no_region = NormalizationContext { default_region: None };
        assert!(Identity::parse(IdentityKind::Phone, "06 12 34 56 78", &no_region).is_err());
    }

    #[test]
    fn ad_ids_ips_and_opaque_ids() {
        assert_eq!(
            parse("maid", "6D92078A8246-4BA4-AE5B-76104861E7DC").unwrap(),
            "6d92078a-8246-4ba4-ae5b-76104861e7dc"
        );
        assert!(parse("maid", "not-a-uuid").is_err());
        assert_eq!(parse("ip", " ::ffff:192.0.2.1 ").unwrap(), "192.0.2.1");
        assert_eq!(parse("ip", "2001:DB8::1").unwrap(), "2001:db8::1");
        assert!(parse("ip", "999.1.1.1").is_err());
        assert_eq!(parse("user_id", "  crm-42 ").unwrap(), "crm-42");
        assert!(parse("anonymous_id", "   ").is_err());
        assert!(parse("device_id", &"x".repeat(300)).is_err());
        assert!(parse("device_id", "bad\u{7}id").is_err());
        assert_eq!(parse("loyalty_card", "LC-1").unwrap(), "LC-1");
    }

    #[test]
    fn custom_kinds_are_checked() {
        assert_eq!(
            "loyalty_card".parse::<IdentityKind>().unwrap(),
            IdentityKind::Custom("loyalty_card".into())
        );
        for bad in ["", "Loyalty", "1card", "card-no", "x".repeat(40).as_str()] {
            assert!(bad.parse::<IdentityKind>().is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn postal_addresses_normalise_to_one_key() {
        let a = PostalAddress {
            name: "Hélène  Dupont".into(),
            line1: "12, avenue des Champs-Élysées".into(),
            line2: None,
            postal_code: "75008".into(),
            city: "Paris".into(),
            country: "fr".into(),
        };
        let b = PostalAddress {
            name: "HELENE DUPONT".into(),
            line1: "12 Ave des Champs Elysees".into(),
            line2: Some("".into()),
            postal_code: " 75 008".into(),
            city: "PARIS".into(),
            country: "FR".into(),
        };
        let key = Identity::postal(&a).unwrap();
        assert_eq!(key, Identity::postal(&b).unwrap());
        assert_eq!(key.value, "HELENE DUPONT|12 AVE DES CHAMPS ELYSEES|75008|PARIS|FR");
        assert!(Identity::postal(&PostalAddress { country: "France".into(), ..a.clone() }).is_err());
        assert!(Identity::postal(&PostalAddress { name: " ".into(), ..a }).is_err());
    }
}
