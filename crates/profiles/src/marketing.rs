//! What an event says about the marketing that brought the person: UTM parameters, the external
//! referrer and the device. Extracted once at ingestion, so measurement reads columns instead of
//! parsing every event's JSON; which channel that means is decided later by the workspace's
//! rules (in measurement), so a corrected rule applies to the past too.

use serde_json::Value;

/// Longest UTM value or host kept; longer ones are cut at a character boundary.
const MAX_FIELD_CHARS: usize = 200;

/// Channels an event may come through that are not themselves marketing contacts: the
/// person's own visit to the site or app, or a server-side call.
const SELF_SERVE_CHANNELS: &[&str] = &["web", "app", "server"];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MarketingContext {
    pub utm_source: Option<String>,
    pub utm_medium: Option<String>,
    pub utm_campaign: Option<String>,
    /// The referring site's host (lowercase, without `www.`), only when it is another site than
    /// the page's own: internal navigation is not a touch.
    pub referrer_host: Option<String>,
    pub device: Option<String>,
    /// Whether the event can be a touchpoint: it carries UTM parameters or an external referrer,
    /// or it came through an assisted or offline channel (a call, a store visit, an ad).
    pub touch: bool,
}

/// Reads Segment's `context.campaign` (or, failing that, the `utm_*` parameters of the page URL)
/// and `context.page.referrer`.
pub fn marketing_context(body: &Value, channel: Option<&str>) -> MarketingContext {
    let context = body.get("context");
    let page_url = context
        .and_then(|c| c.pointer("/page/url"))
        .or_else(|| body.pointer("/properties/url"))
        .and_then(Value::as_str)
        .and_then(|url| url::Url::parse(url).ok());
    let campaign = context.and_then(|c| c.get("campaign"));
    let from_campaign =
        |field: &str| campaign.and_then(|c| c.get(field)).and_then(Value::as_str).and_then(clean);
    let from_url = |field: &str| {
        page_url.as_ref().and_then(|url| {
            url.query_pairs().find(|(key, _)| key == field).and_then(|(_, value)| clean(&value))
        })
    };
    let utm_source = from_campaign("source").or_else(|| from_url("utm_source"));
    let utm_medium = from_campaign("medium").or_else(|| from_url("utm_medium"));
    let utm_campaign = from_campaign("name").or_else(|| from_url("utm_campaign"));
    let page_host = page_url.as_ref().and_then(|url| url.host_str()).map(site);
    let referrer_host = context
        .and_then(|c| c.pointer("/page/referrer"))
        .or_else(|| body.pointer("/properties/referrer"))
        .and_then(Value::as_str)
        .and_then(|referrer| url::Url::parse(referrer).ok())
        .and_then(|url| url.host_str().map(site))
        .filter(|host| !host.is_empty() && Some(host) != page_host.as_ref())
        .and_then(|host| clean(&host));
    let offline = channel.is_some_and(|channel| !SELF_SERVE_CHANNELS.contains(&channel));
    let touch = utm_source.is_some() || utm_medium.is_some() || referrer_host.is_some() || offline;
    MarketingContext {
        utm_source,
        utm_medium,
        utm_campaign,
        referrer_host,
        device: crate::extract::device_of(context),
        touch,
    }
}

/// The site a host names: lowercase, without a leading `www.`.
fn site(host: &str) -> String {
    let host = host.to_ascii_lowercase();
    host.strip_prefix("www.").map(str::to_owned).unwrap_or(host)
}

/// Trimmed, lowercase, bounded, without control characters; `None` when empty.
fn clean(value: &str) -> Option<String> {
    let value: String = value.trim().chars().filter(|c| !c.is_control()).take(MAX_FIELD_CHARS).collect();
    (!value.is_empty()).then(|| value.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn campaign_context_wins_over_the_url_and_values_are_normalised() {
        let body = json!({"context": {
            "campaign": {"source": " Google ", "medium": "CPC", "name": "Black Friday"},
            "page": {"url": "https://shop.example/?utm_source=bing&utm_medium=email"}}});
        let found = marketing_context(&body, Some("web"));
        assert_eq!(found.utm_source.as_deref(), Some("google"));
        assert_eq!(found.utm_medium.as_deref(), Some("cpc"));
        assert_eq!(found.utm_campaign.as_deref(), Some("black friday"));
        assert!(found.touch);
    }

    #[test]
    fn utm_parameters_are_read_from_the_page_url_percent_decoded() {
        let body = json!({"context": {"page": {
            "url": "https://shop.example/p?utm_source=news%20letter&utm_medium=email&utm_campaign=w+47"}}});
        let found = marketing_context(&body, Some("web"));
        assert_eq!(found.utm_source.as_deref(), Some("news letter"));
        assert_eq!(found.utm_medium.as_deref(), Some("email"));
        assert_eq!(found.utm_campaign.as_deref(), Some("w 47"));
        let hostile = json!({"context": {"campaign": {"source": "a\u{1f}b\n", "medium": "\u{7}"}}});
        let found = marketing_context(&hostile, Some("web"));
        assert_eq!((found.utm_source.as_deref(), found.utm_medium), (Some("ab"), None));
    }

    #[test]
    fn only_an_external_referrer_is_a_touch() {
        let internal = json!({"context": {"page": {
            "url": "https://www.shop.example/cart", "referrer": "https://shop.example/home"}}});
        let found = marketing_context(&internal, Some("web"));
        assert_eq!(found.referrer_host, None);
        assert!(!found.touch, "navigation inside the site is not marketing");

        let external = json!({"context": {"page": {
            "url": "https://shop.example/", "referrer": "https://WWW.Google.com/search?q=x"}}});
        let found = marketing_context(&external, Some("web"));
        assert_eq!(found.referrer_host.as_deref(), Some("google.com"));
        assert!(found.touch);
    }

    #[test]
    fn offline_channels_are_touches_and_plain_visits_are_not() {
        assert!(marketing_context(&json!({}), Some("call_center")).touch);
        assert!(marketing_context(&json!({}), Some("pos")).touch);
        assert!(!marketing_context(&json!({}), Some("web")).touch);
        assert!(!marketing_context(&json!({}), None).touch);
        let garbage = json!({"context": {"page": {"url": "not a url", "referrer": 42}, "campaign": "x"}});
        assert_eq!(marketing_context(&garbage, Some("web")), MarketingContext::default());
    }

    #[test]
    fn the_device_is_read_like_the_profile_s_devices() {
        let body = json!({"context": {"device": {"type": "iOS"}}});
        assert_eq!(marketing_context(&body, None).device.as_deref(), Some("ios"));
    }
}
