//! The shape of a template: one variant per channel family, each with a fixed set of text fields.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The content of one channel family.
///
/// Each field is a Jinja template. Fields are fixed per kind (rather than a free map) so that the editor,
/// the validator and the senders agree on what a channel needs, and a typo in a field name is rejected
/// when the template is stored (`deny_unknown_fields`) instead of being silently ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Variant {
    /// An email; `html` is the optional HTML alternative of the plain-text `body`.
    Email {
        subject: String,
        body: String,
        #[serde(default)]
        html: Option<String>,
    },
    /// A text message.
    Sms { text: String },
    /// A mobile or web push notification.
    Push { title: String, body: String },
    /// An ad: `creative` is a reference to a creative (for example an asset id) and may use variables.
    Ad {
        creative: String,
        #[serde(default)]
        headline: Option<String>,
    },
    /// What an agent says on a call.
    CallCenter { script: String },
    /// A printed letter or postcard.
    DirectMail { body: String },
    /// What a decision channel (website, kiosk, point of sale) shows.
    Web { html: String },
}

/// The channel family of a [`Variant`], without its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VariantKind {
    Email,
    Sms,
    Push,
    Ad,
    CallCenter,
    DirectMail,
    Web,
}

/// A field of a variant as the validator sees it: its source and whether the channel needs it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FieldSource<'a> {
    pub name: &'static str,
    pub source: &'a str,
    pub required: bool,
}

/// A template: the per-channel variants of one message. At most one variant per kind.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub variants: Vec<Variant>,
}

impl Template {
    /// The (first) variant of `kind`, if the template has one.
    pub fn variant(&self, kind: VariantKind) -> Option<&Variant> {
        self.variants.iter().find(|variant| variant.kind() == kind)
    }
}

impl VariantKind {
    /// Every kind, in a stable order (the order used in listings and problems).
    pub const ALL: [VariantKind; 7] = [
        VariantKind::Email,
        VariantKind::Sms,
        VariantKind::Push,
        VariantKind::Ad,
        VariantKind::CallCenter,
        VariantKind::DirectMail,
        VariantKind::Web,
    ];

    /// The stable snake_case name, identical to the serde tag.
    pub fn as_str(self) -> &'static str {
        match self {
            VariantKind::Email => "email",
            VariantKind::Sms => "sms",
            VariantKind::Push => "push",
            VariantKind::Ad => "ad",
            VariantKind::CallCenter => "call_center",
            VariantKind::DirectMail => "direct_mail",
            VariantKind::Web => "web",
        }
    }

    /// The inverse of [`VariantKind::as_str`].
    pub fn parse(name: &str) -> Option<VariantKind> {
        VariantKind::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    /// How a marketer calls this kind in a sentence ("The SMS text ...").
    pub(crate) fn label(self) -> &'static str {
        match self {
            VariantKind::Email => "email",
            VariantKind::Sms => "SMS",
            VariantKind::Push => "push",
            VariantKind::Ad => "ad",
            VariantKind::CallCenter => "call-center",
            VariantKind::DirectMail => "direct-mail",
            VariantKind::Web => "web",
        }
    }
}

impl fmt::Display for VariantKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl Variant {
    /// The channel family of this variant.
    pub fn kind(&self) -> VariantKind {
        match self {
            Variant::Email { .. } => VariantKind::Email,
            Variant::Sms { .. } => VariantKind::Sms,
            Variant::Push { .. } => VariantKind::Push,
            Variant::Ad { .. } => VariantKind::Ad,
            Variant::CallCenter { .. } => VariantKind::CallCenter,
            Variant::DirectMail { .. } => VariantKind::DirectMail,
            Variant::Web { .. } => VariantKind::Web,
        }
    }

    /// The fields that are present, as (field name, template source), in a stable order.
    /// Optional fields that are `None` are left out.
    pub fn fields(&self) -> Vec<(&'static str, &str)> {
        self.field_sources().into_iter().map(|field| (field.name, field.source)).collect()
    }

    /// The present fields with whether each one is required, for validation.
    pub(crate) fn field_sources(&self) -> Vec<FieldSource<'_>> {
        fn required<'a>(name: &'static str, source: &'a str) -> Option<FieldSource<'a>> {
            Some(FieldSource { name, source, required: true })
        }
        fn optional<'a>(name: &'static str, source: &'a Option<String>) -> Option<FieldSource<'a>> {
            source.as_deref().map(|source| FieldSource { name, source, required: false })
        }
        let fields = match self {
            Variant::Email { subject, body, html } => {
                vec![required("subject", subject), required("body", body), optional("html", html)]
            }
            Variant::Sms { text } => vec![required("text", text)],
            Variant::Push { title, body } => vec![required("title", title), required("body", body)],
            Variant::Ad { creative, headline } => {
                vec![required("creative", creative), optional("headline", headline)]
            }
            Variant::CallCenter { script } => vec![required("script", script)],
            Variant::DirectMail { body } => vec![required("body", body)],
            Variant::Web { html } => vec![required("html", html)],
        };
        fields.into_iter().flatten().collect()
    }
}

/// Whether a field holds HTML and must therefore be auto-escaped. Only the `html` fields (email HTML and
/// web content) do; SMS, push, scripts and letters are plain text, where escaping would show `&amp;`.
pub(crate) fn is_html_field(field_name: &str) -> bool {
    field_name == "html"
}

/// How a marketer calls a field in a sentence.
pub(crate) fn field_label(field_name: &str) -> &str {
    if is_html_field(field_name) { "HTML" } else { field_name }
}
