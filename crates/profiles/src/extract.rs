//! What an event says about its person: identifiers, trait updates, revenue, device.

use crate::{Identity, IdentityKind, NormalizationContext, PostalAddress};
use serde_json::{Map, Value};

#[derive(Debug, Default)]
pub(crate) struct EventFacts {
    pub identities: Vec<Identity>,
    /// `previousId` of an alias: resolved against the graph as a user id, else an anonymous id.
    pub previous_id: Option<String>,
    pub trait_updates: Map<String, Value>,
    pub revenue: f64,
    pub device: Option<String>,
}

/// Reads identifiers and traits the way Segment's spec places them. Identifiers that do not
/// normalise (a malformed email, say) are skipped: the event still lands on its person by its
/// other identifiers, and the raw value stays in the event and the traits.
pub(crate) fn facts(
    event_type: &str,
    name: Option<&str>,
    body: &Value,
    context: &NormalizationContext,
) -> EventFacts {
    let mut facts = EventFacts::default();
    let mut identities = Vec::new();
    let mut add = |kind: IdentityKind, raw: Option<&str>| {
        if let Some(raw) = raw
            && let Ok(identity) = Identity::parse(kind, raw, context)
        {
            identities.push(identity);
        }
    };
    add(IdentityKind::UserId, body.get("userId").and_then(Value::as_str));
    add(IdentityKind::AnonymousId, body.get("anonymousId").and_then(Value::as_str));
    let ctx = body.get("context");
    let device = ctx.and_then(|c| c.get("device"));
    let ad_tracking = device.and_then(|d| d.get("adTrackingEnabled")).and_then(Value::as_bool);
    if ad_tracking != Some(false) {
        add(IdentityKind::Maid, device.and_then(|d| d.get("advertisingId")).and_then(Value::as_str));
    }
    add(IdentityKind::DeviceId, device.and_then(|d| d.get("id")).and_then(Value::as_str));
    add(IdentityKind::Ip, ctx.and_then(|c| c.get("ip")).and_then(Value::as_str));
    let traits = match event_type {
        "identify" => body.get("traits"),
        _ => ctx.and_then(|c| c.get("traits")),
    };
    if let Some(Value::Object(traits)) = traits {
        add(IdentityKind::Email, traits.get("email").and_then(Value::as_str));
        add(IdentityKind::Phone, traits.get("phone").and_then(Value::as_str));
        facts.identities.extend(postal_identity(traits));
        facts.trait_updates = traits.clone();
    }
    if let Some(Value::Array(external)) = ctx.and_then(|c| c.get("externalIds")) {
        for entry in external.iter().take(20) {
            let kind = entry.get("type").and_then(Value::as_str).and_then(|k| k.parse::<IdentityKind>().ok());
            if let Some(kind) = kind
                && kind != IdentityKind::Postal
            {
                add(kind, entry.get("id").and_then(Value::as_str));
            }
        }
    }
    facts.identities.extend(identities);
    if event_type == "alias" {
        facts.previous_id = body.get("previousId").and_then(Value::as_str).map(str::to_owned);
    }
    facts.revenue = revenue(name, body.get("properties"));
    facts.device = device_of(ctx);
    facts
}

/// The device an event came from: `context.device.type`, else the OS name, else `web` for a
/// browser (a user agent); lowercase.
pub(crate) fn device_of(ctx: Option<&Value>) -> Option<String> {
    ctx.and_then(|c| c.pointer("/device/type"))
        .or_else(|| ctx.and_then(|c| c.pointer("/os/name")))
        .and_then(Value::as_str)
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty() && s.len() <= 32)
        .or_else(|| ctx.and_then(|c| c.get("userAgent")).map(|_| "web".to_owned()))
}

fn number(value: Option<&Value>) -> Option<f64> {
    match value? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|n: &f64| n.is_finite())
}

/// Segment's `revenue` property, or the `total` of an order.
fn revenue(name: Option<&str>, properties: Option<&Value>) -> f64 {
    let properties = properties.filter(|p| p.is_object());
    number(properties.and_then(|p| p.get("revenue")))
        .or_else(|| {
            (name == Some("Order Completed"))
                .then(|| number(properties.and_then(|p| p.get("total"))))
                .flatten()
        })
        .unwrap_or(0.0)
}

fn postal_identity(traits: &Map<String, Value>) -> Option<Identity> {
    Identity::postal(&PostalAddress::from_traits(traits)?).ok()
}

/// Lower-cased names and emails for the profile text search.
pub(crate) fn search_text(traits: &Map<String, Value>) -> String {
    const FIELDS: [&str; 8] =
        ["name", "firstName", "lastName", "first_name", "last_name", "email", "username", "company"];
    let mut text = String::new();
    for field in FIELDS {
        if let Some(value) = traits.get(field).and_then(|t| t.get("value")).and_then(Value::as_str) {
            text.push_str(&value.to_lowercase());
            text.push(' ');
        }
    }
    text.truncate(text.trim_end().len());
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_identifiers_where_segment_puts_them() {
        let body = json!({"userId": "u1", "anonymousId": "a1",
            "traits": {"email": " Ada@Example.com", "phone": "+33 6 12 34 56 78", "name": "Ada L",
                       "address": {"street": "1 rue de la Paix", "city": "Paris", "postalCode": "75002", "country": "FR"}},
            "context": {"ip": "::ffff:10.0.0.1", "device": {"id": "dev-1", "advertisingId": "6D92078A-8246-4BA4-AE5B-76104861E7DC", "type": "ios"},
                        "externalIds": [{"id": "L-9", "type": "loyalty_card"}]}});
        let facts = facts("identify", None, &body, &NormalizationContext { default_region: None });
        let kinds: Vec<String> = facts.identities.iter().map(|i| format!("{}={}", i.kind, i.value)).collect();
        assert!(kinds.contains(&"email=ada@example.com".to_owned()), "{kinds:?}");
        assert!(kinds.contains(&"phone=+33612345678".to_owned()));
        assert!(kinds.contains(&"ip=10.0.0.1".to_owned()));
        assert!(kinds.contains(&"maid=6d92078a-8246-4ba4-ae5b-76104861e7dc".to_owned()));
        assert!(kinds.contains(&"loyalty_card=L-9".to_owned()));
        assert!(kinds.iter().any(|k| k.starts_with("postal=")));
        assert_eq!(facts.device.as_deref(), Some("ios"));
    }

    #[test]
    fn revenue_comes_from_revenue_or_an_order_total() {
        assert_eq!(revenue(Some("x"), Some(&json!({"revenue": "12.5"}))), 12.5);
        assert_eq!(revenue(Some("Order Completed"), Some(&json!({"total": 30}))), 30.0);
        assert_eq!(revenue(Some("x"), Some(&json!({"total": 30}))), 0.0);
        assert_eq!(revenue(None, Some(&json!({"revenue": "NaN"}))), 0.0);
    }
}
