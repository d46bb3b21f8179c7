//! The channel catalogue: every kind of channel an agency reaches people on, the family it
//! belongs to, how it delivers (a message per person now, an audience exported as a file, or
//! a decision an inbound system asks for), and how a workspace's channel is configured.

use crate::error::{CampaignsError, Result};
use serde::{Deserialize, Serialize};

macro_rules! channel_kinds {
    ($($variant:ident => $name:literal, $family:ident, [$($mode:ident),+];)+) => {
        /// A kind of channel.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ChannelKind { $($variant),+ }

        impl ChannelKind {
            pub const ALL: &'static [ChannelKind] = &[$(ChannelKind::$variant),+];

            /// The name used in the API, in consent records and on touchpoints.
            pub fn as_str(self) -> &'static str {
                match self { $(ChannelKind::$variant => $name),+ }
            }

            pub fn family(self) -> ChannelFamily {
                match self { $(ChannelKind::$variant => ChannelFamily::$family),+ }
            }

            /// The delivery modes this kind of channel supports.
            pub fn modes(self) -> &'static [DeliveryMode] {
                match self { $(ChannelKind::$variant => &[$(DeliveryMode::$mode),+]),+ }
            }
        }
    };
}

channel_kinds! {
    Email => "email", Direct, [Message];
    Sms => "sms", Direct, [Message];
    Push => "push", Direct, [Message];
    Display => "display", DigitalAds, [Audience];
    Video => "video", DigitalAds, [Audience];
    MobileInApp => "mobile_in_app", DigitalAds, [Audience];
    Web => "web", Inbound, [Decision];
    Kiosk => "kiosk", Inbound, [Decision];
    Atm => "atm", Inbound, [Decision];
    CallCenter => "call_center", Inbound, [Decision, Audience];
    Ivr => "ivr", Inbound, [Decision];
    Pos => "pos", Inbound, [Decision];
    CableTv => "cable_tv", TargetedAds, [Audience];
    SatelliteTv => "satellite_tv", TargetedAds, [Audience];
    StreamingRadio => "streaming_radio", TargetedAds, [Audience];
    Social => "social", TargetedAds, [Audience];
    WalledGarden => "walled_garden", TargetedAds, [Audience];
    DirectMail => "direct_mail", DirectMail, [Audience, Message];
}

impl ChannelKind {
    pub fn parse(name: &str) -> Result<Self> {
        Self::ALL.iter().copied().find(|kind| kind.as_str() == name).ok_or_else(|| {
            let known: Vec<&str> = Self::ALL.iter().map(|k| k.as_str()).collect();
            CampaignsError::invalid(format!(
                "\"{name}\" is not a channel kind; the kinds are {}",
                known.join(", ")
            ))
        })
    }

    /// The kind of address a message on this channel goes to, for channels that need one (the
    /// send checks the person has a usable one; a hard bounce suppresses the one it went to).
    pub fn address_kind(self) -> Option<profiles::IdentityKind> {
        match self {
            ChannelKind::Email => Some(profiles::IdentityKind::Email),
            ChannelKind::Sms => Some(profiles::IdentityKind::Phone),
            _ => None,
        }
    }

    /// The content variant a send on this kind of channel renders.
    pub fn variant(self) -> crate::content::VariantKind {
        use crate::content::VariantKind;
        match self {
            ChannelKind::Email => VariantKind::Email,
            ChannelKind::Sms => VariantKind::Sms,
            ChannelKind::Push | ChannelKind::MobileInApp => VariantKind::Push,
            ChannelKind::CallCenter | ChannelKind::Ivr => VariantKind::CallCenter,
            ChannelKind::DirectMail => VariantKind::DirectMail,
            ChannelKind::Web | ChannelKind::Kiosk | ChannelKind::Atm | ChannelKind::Pos => VariantKind::Web,
            ChannelKind::Display
            | ChannelKind::Video
            | ChannelKind::CableTv
            | ChannelKind::SatelliteTv
            | ChannelKind::StreamingRadio
            | ChannelKind::Social
            | ChannelKind::WalledGarden => VariantKind::Ad,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelFamily {
    Direct,
    DigitalAds,
    Inbound,
    TargetedAds,
    DirectMail,
}

impl ChannelFamily {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelFamily::Direct => "direct",
            ChannelFamily::DigitalAds => "digital_ads",
            ChannelFamily::Inbound => "inbound",
            ChannelFamily::TargetedAds => "targeted_ads",
            ChannelFamily::DirectMail => "direct_mail",
        }
    }
}

/// How a channel reaches people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryMode {
    /// Sent per person, now (a webhook, an SMTP relay).
    Message,
    /// A segment exported as a file of hashed identifiers, postal addresses or phone numbers.
    Audience,
    /// An inbound system asks what to show a person and gets the journey's current offer.
    Decision,
}

impl DeliveryMode {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryMode::Message => "message",
            DeliveryMode::Audience => "audience",
            DeliveryMode::Decision => "decision",
        }
    }
}

/// Where a channel's sends go. Serialised (without secrets) as the channel's `config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "adapter", rename_all = "snake_case", deny_unknown_fields)]
pub enum Delivery {
    /// POSTs each message as JSON, signed with HMAC-SHA256 of the workspace's channel secret.
    Webhook { url: String },
    /// Hands each email to an SMTP relay.
    Smtp {
        host: String,
        port: u16,
        from: String,
        #[serde(default)]
        security: SmtpSecurity,
        /// For relays that require AUTH. The password is never shown again ([`Delivery::public`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        credentials: Option<SmtpCredentials>,
    },
    /// Writes audiences as CSV files into a directory.
    AudienceFile { directory: String },
    /// Answers an inbound system's question with the journey's current offer.
    Decision,
}

/// The user and password an SMTP relay authenticates the sender with.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpCredentials {
    pub username: String,
    pub password: String,
}

// By hand, so the password never reaches a log through `{:?}`.
impl std::fmt::Debug for SmtpCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpCredentials").field("username", &self.username).finish_non_exhaustive()
    }
}

/// How the connection to an SMTP relay is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// Upgrade with STARTTLS, and refuse a relay that cannot.
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// Plain text: only for a relay on the same host or private network.
    None,
}

impl Delivery {
    /// The configuration as staff may read it back: an SMTP password is never returned (it
    /// shows as `"password": null` so a form knows one is set).
    pub fn public(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let Some(credentials) = value.get_mut("credentials").and_then(serde_json::Value::as_object_mut) {
            credentials.insert("password".into(), serde_json::Value::Null);
        }
        value
    }

    pub fn mode(&self) -> DeliveryMode {
        match self {
            Delivery::Webhook { .. } | Delivery::Smtp { .. } => DeliveryMode::Message,
            Delivery::AudienceFile { .. } => DeliveryMode::Audience,
            Delivery::Decision => DeliveryMode::Decision,
        }
    }

    pub fn adapter(&self) -> &'static str {
        match self {
            Delivery::Webhook { .. } => "webhook",
            Delivery::Smtp { .. } => "smtp",
            Delivery::AudienceFile { .. } => "audience_file",
            Delivery::Decision => "decision",
        }
    }

    /// Checks the configuration against the kind of channel it serves.
    pub fn validate_for(&self, kind: ChannelKind) -> Result<()> {
        if !kind.modes().contains(&self.mode()) {
            let modes: Vec<&str> = kind.modes().iter().map(|m| m.as_str()).collect();
            return Err(CampaignsError::invalid(format!(
                "a {} channel delivers by {}, not by {}",
                kind.as_str(),
                modes.join(" or "),
                self.mode().as_str()
            )));
        }
        match self {
            Delivery::Webhook { url } => {
                let parsed = reqwest::Url::parse(url)
                    .map_err(|e| CampaignsError::invalid(format!("the webhook URL is not a URL: {e}")))?;
                if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                    return Err(CampaignsError::invalid(
                        "the webhook URL must be http:// or https:// with a host",
                    ));
                }
                if url.len() > 2048 {
                    return Err(CampaignsError::invalid("the webhook URL is longer than 2048 characters"));
                }
            }
            Delivery::Smtp { host, port, from, credentials, .. } => {
                if let Some(SmtpCredentials { username, password }) = credentials {
                    let fine = |text: &str| {
                        !text.is_empty() && text.len() <= 256 && !text.chars().any(char::is_control)
                    };
                    if !fine(username) || !fine(password) {
                        return Err(CampaignsError::invalid(
                            "SMTP credentials are a username and a password of 1 to 256 characters",
                        ));
                    }
                }
                if kind != ChannelKind::Email {
                    return Err(CampaignsError::invalid("only email channels deliver through SMTP"));
                }
                if host.trim().is_empty() || host.len() > 253 || *port == 0 {
                    return Err(CampaignsError::invalid("the SMTP relay needs a host and a port"));
                }
                if !from.contains('@') || from.len() > 254 || from.contains(['\r', '\n']) {
                    return Err(CampaignsError::invalid("the SMTP sender must be an email address"));
                }
            }
            Delivery::AudienceFile { directory } => {
                // Inside the deployment's audience root only: no absolute paths, no `..`.
                let safe = !directory.is_empty()
                    && directory.len() <= 200
                    && directory.split('/').all(|part| {
                        !part.is_empty()
                            && part != "."
                            && part != ".."
                            && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                    });
                if !safe {
                    return Err(CampaignsError::invalid(
                        "the audience directory is a relative path of letters, digits, -, _ and . \
                         (inside the deployment's audience directory)",
                    ));
                }
            }
            Delivery::Decision => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_credentials_are_checked_and_never_shown() {
        let relay = |username: &str, password: &str| Delivery::Smtp {
            host: "relay.example".into(),
            port: 587,
            from: "news@shop.example".into(),
            security: SmtpSecurity::Starttls,
            credentials: Some(SmtpCredentials { username: username.into(), password: password.into() }),
        };
        let good = relay("user", "s3cret");
        assert!(good.validate_for(ChannelKind::Email).is_ok());
        assert!(relay("user", "").validate_for(ChannelKind::Email).is_err());
        assert!(relay("us\ner", "x").validate_for(ChannelKind::Email).is_err());
        assert_eq!(good.public()["credentials"], serde_json::json!({"username": "user", "password": null}));
        assert!(!format!("{good:?}").contains("s3cret"));
        // The stored form keeps it, for the relay.
        assert!(serde_json::to_string(&good).unwrap().contains("s3cret"));
    }

    #[test]
    fn every_kind_has_a_unique_name_that_parses_back() {
        let mut names: Vec<&str> = ChannelKind::ALL.iter().map(|k| k.as_str()).collect();
        for kind in ChannelKind::ALL {
            assert_eq!(ChannelKind::parse(kind.as_str()).ok(), Some(*kind));
            assert!(!kind.modes().is_empty());
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ChannelKind::ALL.len());
        assert!(ChannelKind::parse("carrier_pigeon").is_err());
    }

    #[test]
    fn a_delivery_must_suit_the_kind_of_channel() {
        let webhook = Delivery::Webhook { url: "https://hooks.example.com/send".into() };
        assert!(webhook.validate_for(ChannelKind::Sms).is_ok());
        assert!(webhook.validate_for(ChannelKind::Display).is_err(), "display ads are audiences");
        let smtp = Delivery::Smtp {
            host: "relay".into(),
            port: 25,
            from: "news@example.com".into(),
            security: SmtpSecurity::None,
            credentials: None,
        };
        assert!(smtp.validate_for(ChannelKind::Email).is_ok());
        assert!(smtp.validate_for(ChannelKind::Sms).is_err());
        assert!(Delivery::Decision.validate_for(ChannelKind::Pos).is_ok());
        assert!(Delivery::Decision.validate_for(ChannelKind::Email).is_err());
        let files =
            |d: &str| Delivery::AudienceFile { directory: d.into() }.validate_for(ChannelKind::Social);
        assert!(files("meta/weekly").is_ok());
        for hostile in ["/etc", "../up", "a/../../b", "", "a//b", "with space"] {
            assert!(files(hostile).is_err(), "{hostile}");
        }
        for url in ["ftp://example.com", "not a url", "http://"] {
            assert!(Delivery::Webhook { url: url.into() }.validate_for(ChannelKind::Push).is_err(), "{url}");
        }
    }

    #[test]
    fn delivery_config_is_tagged_json() {
        let json = serde_json::json!({"adapter": "webhook", "url": "http://127.0.0.1:9/x"});
        let delivery: Delivery = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(serde_json::to_value(&delivery).unwrap(), json);
        let unknown = serde_json::json!({"adapter": "webhook", "url": "http://x", "secret": "s"});
        assert!(serde_json::from_value::<Delivery>(unknown).is_err());
    }
}
