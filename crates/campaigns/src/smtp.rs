//! The SMTP adapter: each email send is handed to the channel's relay, one pooled connection
//! set per relay. The idempotency key becomes the message's `Message-ID`, which is what mail
//! systems use to drop a message they have already seen.

use crate::channel::{SmtpCredentials, SmtpSecurity};
use lettre::message::{Mailbox, MultiPart, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Where a channel's mail goes and how it is reached.
pub(crate) struct Relay<'a> {
    pub(crate) host: &'a str,
    pub(crate) port: u16,
    pub(crate) security: SmtpSecurity,
    pub(crate) credentials: Option<&'a SmtpCredentials>,
}

type RelayKey = (String, u16, SmtpSecurity, Option<SmtpCredentials>);

/// The relays' connection pools, by where they are, how they are reached and who logs in
/// (two channels on one relay with different accounts never share a connection).
#[derive(Default)]
pub(crate) struct Relays(Mutex<HashMap<RelayKey, AsyncSmtpTransport<Tokio1Executor>>>);

/// What happened when a relay was handed a message.
pub(crate) enum Handover {
    Accepted,
    /// A 4xx answer or a connection problem: worth another attempt.
    Transient(String),
    /// A 5xx answer or a message that cannot be built: never.
    Permanent(String),
}

impl Relays {
    fn transport(&self, relay: &Relay<'_>) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
        let Relay { host, port, security, credentials } = *relay;
        let key = (host.to_owned(), port, security, credentials.cloned());
        let mut relays = self.0.lock().map_err(|_| "the relay pool is poisoned".to_owned())?;
        if let Some(transport) = relays.get(&key) {
            return Ok(transport.clone());
        }
        let tls = match security {
            SmtpSecurity::None => Tls::None,
            SmtpSecurity::Starttls | SmtpSecurity::Tls => {
                let parameters =
                    TlsParameters::new(host.to_owned()).map_err(|e| format!("TLS settings: {e}"))?;
                if security == SmtpSecurity::Tls {
                    Tls::Wrapper(parameters)
                } else {
                    Tls::Required(parameters)
                }
            }
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(10)));
        if let Some(credentials) = credentials {
            builder = builder
                .credentials(Credentials::new(credentials.username.clone(), credentials.password.clone()));
        }
        let transport = builder.build();
        relays.insert(key, transport.clone());
        Ok(transport)
    }

    /// Sends the rendered email in `payload` (`profile.email`, `content.subject`, `content.body`,
    /// optionally `content.html`) from `from`.
    pub(crate) async fn send(&self, relay: &Relay<'_>, from: &str, key: &str, payload: &Value) -> Handover {
        let message = match build(from, key, payload) {
            Ok(message) => message,
            Err(reason) => return Handover::Permanent(reason),
        };
        let transport = match self.transport(relay) {
            Ok(transport) => transport,
            Err(reason) => return Handover::Permanent(reason),
        };
        match transport.send(message).await {
            Ok(_) => Handover::Accepted,
            // The error names the relay and its answer, never the address or the content.
            Err(error) if error.is_permanent() => {
                Handover::Permanent(format!("the relay refused the message: {error}"))
            }
            Err(error) => Handover::Transient(format!("the relay could not take the message: {error}")),
        }
    }
}

fn build(from: &str, key: &str, payload: &Value) -> Result<Message, String> {
    let text = |path: &[&str]| {
        let mut value = payload;
        for part in path {
            value = &value[*part];
        }
        value.as_str().map(str::to_owned)
    };
    let to = text(&["profile", "email"]).ok_or("the person has no email address")?;
    let from: Mailbox =
        from.parse().map_err(|_| "the channel's sender is not an email address".to_owned())?;
    let to: Mailbox = to.parse().map_err(|_| "the person's email address cannot be written to".to_owned())?;
    let subject = text(&["content", "subject"]).unwrap_or_default();
    let body = text(&["content", "body"]).unwrap_or_default();
    let builder = Message::builder()
        .from(from)
        .to(to)
        .subject(subject)
        .message_id(Some(format!("<{}@passerelle>", key.replace(':', "."))));
    let message = match text(&["content", "html"]) {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(body, html)),
        None => builder.header(ContentType::TEXT_PLAIN).body(body),
    };
    message.map_err(|e| format!("the message cannot be built: {e}"))
}
