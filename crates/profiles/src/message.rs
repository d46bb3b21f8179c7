//! Segment-compatible tracking messages: what the analytics SDKs send, checked and normalised
//! into [`IncomingEvent`]s. Unknown fields are kept in the stored body and otherwise ignored,
//! so a newer SDK never breaks ingestion.

use crate::ProfilesError;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value, value::RawValue};
use sha2::{Digest, Sha256};

/// Largest accepted event, as in Segment's HTTP API.
pub const MAX_EVENT_BYTES: usize = 32 * 1024;
/// Largest accepted batch request.
pub const MAX_BATCH_BYTES: usize = 500 * 1024;
/// Longer `messageId`s are kept as their SHA-256, which still deduplicates them.
const MAX_MESSAGE_ID_BYTES: usize = 200;
const MAX_NAME_BYTES: usize = 512;
/// An event claiming to come from further in the future than this is taken as received now.
const MAX_FUTURE_SKEW: Duration = Duration::minutes(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Identify,
    Track,
    Page,
    Screen,
    Group,
    Alias,
}

impl EventType {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Identify => "identify",
            Self::Track => "track",
            Self::Page => "page",
            Self::Screen => "screen",
            Self::Group => "group",
            Self::Alias => "alias",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "identify" => Self::Identify,
            "track" => Self::Track,
            "page" => Self::Page,
            "screen" => Self::Screen,
            "group" => Self::Group,
            "alias" => Self::Alias,
            _ => return None,
        })
    }
}

/// One accepted message, ready to be stored in the inbox.
#[derive(Debug, Clone)]
pub struct IncomingEvent {
    pub message_id: String,
    pub event_type: EventType,
    /// The `event` of a track, the `name` of a page or screen.
    pub name: Option<String>,
    /// When it happened, corrected for the sender's clock skew.
    pub occurred_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub channel: Option<String>,
    /// UTM parameters, external referrer and device, for measurement.
    pub marketing: crate::marketing::MarketingContext,
    /// The message as sent (without `writeKey`), with `receivedAt` and the merged batch
    /// `context`/`integrations`.
    pub body: Value,
}

/// Why one message of a batch was refused; the others are still accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedMessage {
    pub index: usize,
    pub message: String,
}

/// A parsed tracking request.
#[derive(Debug)]
pub struct TrackingRequest {
    pub write_key: Option<String>,
    pub accepted: Vec<IncomingEvent>,
    pub rejected: Vec<RejectedMessage>,
}

#[derive(serde::Deserialize)]
struct BatchEnvelope<'a> {
    #[serde(borrow)]
    batch: Vec<&'a RawValue>,
    #[serde(rename = "writeKey")]
    write_key: Option<Value>,
    context: Option<Value>,
    integrations: Option<Value>,
    #[serde(rename = "sentAt")]
    sent_at: Option<Value>,
}

/// Parses the body of `/v1/batch` (`implied` = `None`) or of a single-message endpoint.
pub fn parse_request(
    body: &[u8],
    implied: Option<EventType>,
    received_at: DateTime<Utc>,
) -> Result<TrackingRequest, ProfilesError> {
    match implied {
        Some(kind) => {
            if body.len() > MAX_EVENT_BYTES {
                return Err(ProfilesError::TooLarge(format!(
                    "an event may have at most {MAX_EVENT_BYTES} bytes"
                )));
            }
            let value: Value = serde_json::from_slice(body)
                .map_err(|e| ProfilesError::invalid(format!("the body is not valid JSON: {e}")))?;
            let Value::Object(mut object) = value else {
                return Err(ProfilesError::invalid("the body must be a JSON object"));
            };
            let write_key = take_write_key(&mut object);
            let event = parse_message(object, Some(kind), &Map::new(), None, received_at)?;
            Ok(TrackingRequest { write_key, accepted: vec![event], rejected: vec![] })
        }
        None => {
            if body.len() > MAX_BATCH_BYTES {
                return Err(ProfilesError::TooLarge(format!(
                    "a batch may have at most {MAX_BATCH_BYTES} bytes"
                )));
            }
            let envelope: BatchEnvelope = serde_json::from_slice(body).map_err(|e| {
                ProfilesError::invalid(format!("the body must be a JSON object with a `batch` array: {e}"))
            })?;
            let mut defaults = Map::new();
            for (field, value) in [("context", envelope.context), ("integrations", envelope.integrations)] {
                if let Some(value @ Value::Object(_)) = value {
                    defaults.insert(field.to_owned(), value);
                }
            }
            let sent_at = envelope.sent_at.as_ref().and_then(Value::as_str).and_then(parse_time);
            let mut write_key = envelope.write_key.as_ref().and_then(Value::as_str).map(str::to_owned);
            let mut accepted = Vec::with_capacity(envelope.batch.len());
            let mut rejected = Vec::new();
            for (index, raw) in envelope.batch.into_iter().enumerate() {
                let parsed = parse_batch_item(raw, &defaults, sent_at, received_at, &mut write_key);
                match parsed {
                    Ok(event) => accepted.push(event),
                    Err(error) => rejected.push(RejectedMessage { index, message: error.to_string() }),
                }
            }
            if accepted.is_empty() && !rejected.is_empty() {
                let first = &rejected[0];
                return Err(ProfilesError::invalid(format!(
                    "no message of the batch is valid; message {}: {}",
                    first.index, first.message
                )));
            }
            Ok(TrackingRequest { write_key, accepted, rejected })
        }
    }
}

fn parse_batch_item(
    raw: &RawValue,
    defaults: &Map<String, Value>,
    sent_at: Option<DateTime<Utc>>,
    received_at: DateTime<Utc>,
    write_key: &mut Option<String>,
) -> Result<IncomingEvent, ProfilesError> {
    if raw.get().len() > MAX_EVENT_BYTES {
        return Err(ProfilesError::TooLarge(format!("an event may have at most {MAX_EVENT_BYTES} bytes")));
    }
    let Value::Object(mut object) = serde_json::from_str(raw.get())
        .map_err(|e| ProfilesError::invalid(format!("not valid JSON: {e}")))?
    else {
        return Err(ProfilesError::invalid("a message must be a JSON object"));
    };
    let item_key = take_write_key(&mut object);
    if write_key.is_none() {
        *write_key = item_key;
    }
    parse_message(object, None, defaults, sent_at, received_at)
}

fn take_write_key(object: &mut Map<String, Value>) -> Option<String> {
    object.remove("writeKey").and_then(|v| v.as_str().map(str::to_owned))
}

/// Checks and normalises one message object.
pub fn parse_message(
    mut object: Map<String, Value>,
    implied: Option<EventType>,
    defaults: &Map<String, Value>,
    batch_sent_at: Option<DateTime<Utc>>,
    received_at: DateTime<Utc>,
) -> Result<IncomingEvent, ProfilesError> {
    let event_type = match object.get("type").and_then(Value::as_str) {
        Some(raw) => EventType::parse(raw)
            .ok_or_else(|| ProfilesError::invalid(format!("`{raw}` is not a message type")))?,
        None => implied.ok_or_else(|| ProfilesError::invalid("a message needs a `type`"))?,
    };
    object.insert("type".into(), Value::from(event_type.as_str()));
    for field in ["userId", "anonymousId", "previousId", "groupId"] {
        normalise_id_field(&mut object, field)?;
    }
    let has = |field: &str| object.get(field).is_some_and(|v| !v.is_null());
    if !has("userId") && !has("anonymousId") {
        return Err(ProfilesError::invalid("a message needs a `userId` or an `anonymousId`"));
    }
    if event_type == EventType::Alias && !has("previousId") {
        return Err(ProfilesError::invalid("an alias needs a `previousId`"));
    }
    if event_type == EventType::Group && !has("groupId") {
        return Err(ProfilesError::invalid("a group call needs a `groupId`"));
    }
    let name_field = if event_type == EventType::Track { "event" } else { "name" };
    let name = match object.get(name_field) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.len() <= MAX_NAME_BYTES => Some(s.trim().to_owned()),
        Some(_) => {
            return Err(ProfilesError::invalid(format!(
                "`{name_field}` must be a string of at most {MAX_NAME_BYTES} bytes"
            )));
        }
    };
    if event_type == EventType::Track && name.as_deref().is_none_or(str::is_empty) {
        return Err(ProfilesError::invalid("a track call needs an `event` name"));
    }
    for field in ["properties", "traits", "context", "integrations"] {
        if object.get(field).is_some_and(|v| !v.is_object() && !v.is_null()) {
            return Err(ProfilesError::invalid(format!("`{field}` must be an object")));
        }
    }
    for (field, default) in defaults {
        merge_defaults(&mut object, field, default);
    }
    let message_id = message_id(&object);
    object.insert("messageId".into(), Value::from(message_id.clone()));
    let occurred_at = occurred_at(&object, batch_sent_at, received_at);
    object.insert("receivedAt".into(), Value::from(received_at.to_rfc3339()));
    let body = Value::Object(object);
    let channel = channel_of(event_type, &body);
    let marketing = crate::marketing::marketing_context(&body, channel.as_deref());
    Ok(IncomingEvent { message_id, event_type, name, occurred_at, received_at, channel, marketing, body })
}

/// Ids may arrive as numbers from some SDKs; they are stored as strings. Empty strings count
/// as absent.
fn normalise_id_field(object: &mut Map<String, Value>, field: &str) -> Result<(), ProfilesError> {
    let normalised = match object.get(field) {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::String(s)) if s.trim().is_empty() => Value::Null,
        Some(Value::String(s)) if s.len() <= 256 => Value::from(s.trim()),
        Some(Value::Number(n)) => Value::from(n.to_string()),
        Some(_) => {
            return Err(ProfilesError::invalid(format!("`{field}` must be a string of at most 256 bytes")));
        }
    };
    if normalised.is_null() {
        object.remove(field);
    } else {
        object.insert(field.to_owned(), normalised);
    }
    Ok(())
}

/// Top-level batch `context`/`integrations` apply to every item; the item's own keys win.
fn merge_defaults(object: &mut Map<String, Value>, field: &str, default: &Value) {
    let Value::Object(default) = default else { return };
    match object.get_mut(field) {
        Some(Value::Object(own)) => {
            for (key, value) in default {
                own.entry(key.clone()).or_insert_with(|| value.clone());
            }
        }
        _ => {
            object.insert(field.to_owned(), Value::Object(default.clone()));
        }
    }
}

fn message_id(object: &Map<String, Value>) -> String {
    let raw = match object.get("messageId") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        // Without an id there is nothing to deduplicate on; a fresh one makes it unique.
        _ => return format!("passerelle-{}", uuid::Uuid::now_v7()),
    };
    if raw.len() > MAX_MESSAGE_ID_BYTES {
        return format!("sha256:{}", hex::encode(Sha256::digest(raw.as_bytes())));
    }
    raw
}

pub(crate) fn parse_time(raw: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw.trim()).ok().map(|t| t.with_timezone(&Utc))
}

/// Segment's clock-skew correction: the sender's clock may be wrong, but the gap between
/// `timestamp` and `sentAt` was measured on that same clock, so
/// `occurred = receivedAt - (sentAt - timestamp)`.
fn occurred_at(
    object: &Map<String, Value>,
    batch_sent_at: Option<DateTime<Utc>>,
    received_at: DateTime<Utc>,
) -> DateTime<Utc> {
    let time = |field: &str| object.get(field).and_then(Value::as_str).and_then(parse_time);
    let timestamp = time("timestamp").or_else(|| time("originalTimestamp"));
    let sent_at = time("sentAt").or(batch_sent_at);
    let occurred = match (timestamp, sent_at) {
        (Some(timestamp), Some(sent_at)) => received_at - (sent_at - timestamp),
        (Some(timestamp), None) => timestamp,
        (None, _) => received_at,
    };
    if occurred > received_at + MAX_FUTURE_SKEW { received_at } else { occurred }
}

/// The channel an event came through: an explicit `context.channel` wins; otherwise app
/// screens and mobile devices are `app`, pages are `web`, and server-side calls `server`.
fn channel_of(event_type: EventType, body: &Value) -> Option<String> {
    let context = body.get("context");
    if let Some(channel) = context.and_then(|c| c.get("channel")).and_then(Value::as_str) {
        let channel = channel.trim().to_lowercase();
        if !channel.is_empty() && channel.len() <= 32 {
            return Some(match channel.as_str() {
                "browser" => "web".to_owned(),
                "mobile" => "app".to_owned(),
                _ => channel,
            });
        }
    }
    let device_type = context.and_then(|c| c.pointer("/device/type")).and_then(Value::as_str);
    if event_type == EventType::Screen || matches!(device_type, Some("ios" | "android")) {
        return Some("app".into());
    }
    if event_type == EventType::Page || context.and_then(|c| c.get("userAgent")).is_some() {
        return Some("web".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        parse_time("2026-11-23T12:00:00Z").unwrap()
    }

    #[test]
    fn corrects_the_senders_clock() {
        let body = json!({"type": "track", "event": "x", "userId": "u",
            "timestamp": "2020-01-01T00:00:00Z", "sentAt": "2020-01-01T00:00:10Z"});
        let request = parse_request(body.to_string().as_bytes(), Some(EventType::Track), now()).unwrap();
        assert_eq!(request.accepted[0].occurred_at, now() - Duration::seconds(10));
    }

    #[test]
    fn batch_context_is_merged_and_write_key_never_stored() {
        let body = json!({"writeKey": "psw_secret", "context": {"ip": "1.2.3.4", "library": {"name": "x"}},
            "batch": [{"type": "identify", "userId": 42, "context": {"ip": "5.6.7.8"}, "messageId": 7},
                      {"type": "page", "anonymousId": "a"}, {"type": "nope", "userId": "u"}, "junk"]});
        let request = parse_request(body.to_string().as_bytes(), None, now()).unwrap();
        assert_eq!(request.write_key.as_deref(), Some("psw_secret"));
        assert_eq!(request.accepted.len(), 2);
        assert_eq!(request.rejected.iter().map(|r| r.index).collect::<Vec<_>>(), vec![2, 3]);
        let first = &request.accepted[0];
        assert_eq!(first.message_id, "7");
        assert_eq!(first.body["userId"], "42");
        assert_eq!(first.body["context"]["ip"], "5.6.7.8");
        assert_eq!(first.body["context"]["library"]["name"], "x");
        assert!(!first.body.to_string().contains("psw_secret"));
        assert_eq!(request.accepted[1].channel.as_deref(), Some("web"));
    }

    #[test]
    fn refuses_what_must_not_be_retried() {
        let cases = [
            json!({"event": "x"}),
            json!({"userId": "u"}),
            json!({"userId": "u", "event": "x", "properties": [1]}),
            json!({"userId": {"a": 1}, "event": "x"}),
        ];
        for case in cases {
            let result = parse_request(case.to_string().as_bytes(), Some(EventType::Track), now());
            assert!(matches!(result, Err(ProfilesError::InvalidInput(_))), "{case}");
        }
        let huge = json!({"userId": "u", "event": "x", "properties": {"p": "x".repeat(MAX_EVENT_BYTES)}});
        let result = parse_request(huge.to_string().as_bytes(), Some(EventType::Track), now());
        assert!(matches!(result, Err(ProfilesError::TooLarge(_))));
        assert!(parse_request(b"{not json", None, now()).is_err());
    }

    #[test]
    fn long_message_ids_are_hashed_and_future_times_clamped() {
        let body = json!({"userId": "u", "event": "x", "messageId": "m".repeat(500),
            "timestamp": "2999-01-01T00:00:00Z"});
        let request = parse_request(body.to_string().as_bytes(), Some(EventType::Track), now()).unwrap();
        assert!(request.accepted[0].message_id.starts_with("sha256:"));
        assert_eq!(request.accepted[0].occurred_at, now());
    }
}
