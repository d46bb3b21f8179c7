//! What the agency set up for a client, through the same services the GraphQL API calls:
//! the workspace and its website's write key, segments, the purchase conversion, a month of
//! media spend, and (for the showcase client) a cart-recovery journey with an A/B split and a
//! holdout, which people then go through.

use super::businesses::Business;
use super::people::ConsentChoice;
use crate::Services;
use anyhow::Context as _;
use campaigns::channels::NewChannel;
use campaigns::journeys::NewJourney;
use chrono::{DateTime, Duration, Utc};
use kernel::{ChannelId, ConversionId, JourneyId, PageRequest, ProfileId, SegmentId, WorkspaceId};
use measurement::conversions::ConversionInput;
use measurement::spend::SpendRow;
use platform::TenantScope;
use profiles::consent::ConsentInput;
use profiles::read::ProfileFilter;
use rand::{Rng, SeedableRng, rngs::StdRng};
use segments::{DefinitionInput, NewSegment};
use serde_json::json;
use std::collections::HashMap;
use tenancy::{Actor, ApiKeyKind, NewApiKey};

/// The name of the journey, which is also the campaign its spend is recorded under.
pub const JOURNEY_NAME: &str = "Cart recovery";

/// The segments every client gets: name, description, definition.
const SEGMENTS: [(&str, &str, &str); 5] = [
    ("High-value customers", "Customers who spent €300 or more, online and in shops", "revenue >= 300"),
    (
        "Cart abandoners",
        "Added a product to the cart in the last 14 days without ordering since",
        r#"performed "Product Added" within 14 days and not performed "Order Completed" within 14 days"#,
    ),
    (
        "Newsletter subscribers",
        "May be emailed and have an address",
        "consents to marketing on email and has email",
    ),
    ("App users", "Used the mobile app", "used channel app"),
    (
        "Shop and web customers",
        "Bought in a shop and visited the website",
        "used channel pos and used channel web",
    ),
];

/// One client workspace as the demo built it.
pub struct ClientWorkspace {
    pub business: &'static Business,
    pub id: WorkspaceId,
    /// The scope of the website's write key, as the tracking API would hold it.
    pub ingestion: TenantScope,
    pub segments: Vec<(String, SegmentId)>,
    pub conversion: ConversionId,
    pub journey: Option<JourneySetup>,
}

/// The cart-recovery journey and the on-site banner channel it decides for.
pub struct JourneySetup {
    pub id: JourneyId,
    pub channel: ChannelId,
    pub segment: SegmentId,
}

impl ClientWorkspace {
    pub fn segment(&self, name: &str) -> Option<SegmentId> {
        self.segments.iter().find(|(n, _)| n == name).map(|(_, id)| *id)
    }
}

/// Creates the workspace and everything the agency configures before data flows. Segments
/// and the journey come first so that people enter them as their events are processed, which
/// is when a journey enrolls them (a journey does not enroll people already in its segment).
pub async fn open_workspace(
    services: &Services,
    actor: &Actor,
    business: &'static Business,
) -> anyhow::Result<ClientWorkspace> {
    let workspace = services.tenancy.create_workspace(actor, business.workspace_name).await?;
    let id = workspace.id;
    let key = services
        .tenancy
        .create_api_key(
            actor,
            NewApiKey { workspace_id: id, name: "website".into(), kind: ApiKeyKind::Write, scopes: vec![] },
        )
        .await?;
    let (ingestion, _) = services.tenancy.ingestion_scope(&key.secret).await?;
    let mut segments = Vec::new();
    for (name, description, text) in SEGMENTS {
        let input = NewSegment {
            name: name.into(),
            description: description.into(),
            definition: DefinitionInput::Text(text.into()),
        };
        let segment = services.segments.create(actor, id, input).await?;
        segments.push((name.to_owned(), segment.id));
    }
    let conversion = services
        .measurement
        .create_conversion(
            actor,
            id,
            ConversionInput {
                name: "Purchase".into(),
                event_name: "Order Completed".into(),
                value_property: Some("total".into()),
                currency: "EUR".into(),
                lookback_days: Some(30),
                ..Default::default()
            },
        )
        .await?
        .id;
    let mut client = ClientWorkspace { business, id, ingestion, segments, conversion, journey: None };
    if business.runs_journey {
        client.journey = Some(create_journey(services, actor, &client).await?);
    }
    Ok(client)
}

/// A journey for the people who leave a cart: 10% held out, the rest split between a discount
/// banner and a free-delivery banner on the website, then a three-day wait; ordering meanwhile
/// is the goal.
///
/// The banner goes out through a *decision* channel (kind `web`): the journey only records the
/// offer, and the website asks for it when the person visits. Nothing is ever pushed out of
/// the platform, so a demo data dir served later with `passerelle serve` cannot send a message
/// anywhere: a webhook or SMTP channel would make the delivery worker call a URL or a relay
/// (even a loopback one may be somebody's real local service).
async fn create_journey(
    services: &Services,
    actor: &Actor,
    client: &ClientWorkspace,
) -> anyhow::Result<JourneySetup> {
    let segment = client.segment("Cart abandoners").context("the cart segment exists")?;
    let channel = services
        .campaigns
        .create_channel(
            actor,
            client.id,
            NewChannel {
                name: "Website banner".into(),
                kind: "web".into(),
                delivery: json!({"adapter": "decision"}),
            },
        )
        .await?
        .channel
        .id;
    // Not personalised: publishing checks that every trait a template reads exists on some
    // profile, and the journey is published before the first event arrives.
    let banner = |offer: &str| json!({"variants": [{"kind": "web", "html": format!("<div class=\"banner\">Your cart is waiting: {offer}</div>")}]});
    let discount = services
        .campaigns
        .create_content(actor, client.id, "Cart banner: 10% off", banner("10% off with code CART10"))
        .await?;
    let delivery = services
        .campaigns
        .create_content(actor, client.id, "Cart banner: free delivery", banner("free delivery until Sunday"))
        .await?;
    let graph = json!({
        "entry": {"trigger": {"type": "segment_entered", "segment": segment}, "next": "control"},
        "steps": [
            {"id": "control", "type": "holdout", "percent": 10, "next": "ab"},
            {"id": "ab", "type": "split", "variants": [
                {"name": "discount", "weight": 50, "next": "banner_discount"},
                {"name": "free_delivery", "weight": 50, "next": "banner_delivery"}]},
            {"id": "banner_discount", "type": "send", "channel": channel, "content": discount.id, "next": "wait"},
            {"id": "banner_delivery", "type": "send", "channel": channel, "content": delivery.id, "next": "wait"},
            {"id": "wait", "type": "wait", "seconds": 3 * 86_400, "next": "tag"},
            {"id": "tag", "type": "update_trait", "name": "cart_recovery", "value": "no_order", "next": "end"},
            {"id": "ordered", "type": "goal", "event": "Order Completed"},
            {"id": "end", "type": "exit"}]
    });
    let journey = services
        .campaigns
        .create_journey(actor, client.id, NewJourney { name: JOURNEY_NAME.into(), graph, reentry: None })
        .await?;
    services.campaigns.publish_journey(actor, client.id, journey.id).await?;
    Ok(JourneySetup { id: journey.id, channel, segment })
}

/// Daily spend per paid channel over the last 90 days, scaled to the population so returns
/// stay plausible at any size, plus what the journey's banner cost today.
pub async fn record_spend(
    services: &Services,
    actor: &Actor,
    client: &ClientWorkspace,
    people: usize,
    seed: u64,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    // Roughly what returns of 3 to 8 on paid media and far more on email look like.
    const DAILY_PER_10K_PEOPLE: [(&str, f64); 5] = [
        ("paid_search", 600.0),
        ("paid_social", 420.0),
        ("display", 300.0),
        ("affiliate", 120.0),
        ("email", 90.0),
    ];
    let scale = people as f64 / 10_000.0;
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5BE9D);
    let mut rows = Vec::new();
    for days_ago in 1..=90 {
        let day = (now - Duration::days(days_ago)).date_naive();
        for (channel, daily) in DAILY_PER_10K_PEOPLE {
            let amount = (daily * scale * rng.gen_range(0.7..1.3) * 100.0).round() / 100.0;
            rows.push(SpendRow::parse("demo spend", day, channel, None, amount.max(0.01), "EUR")?);
        }
    }
    if client.journey.is_some() {
        let amount = ((250.0 * scale).max(1.0) * 100.0).round() / 100.0;
        rows.push(SpendRow::parse("demo spend", now.date_naive(), "web", Some(JOURNEY_NAME), amount, "EUR")?);
    }
    Ok(services.measurement.record_spend(actor, client.id, rows).await?)
}

/// Every live profile's account id (`customerId` trait), to find people again.
pub async fn profiles_by_customer(
    services: &Services,
    actor: &Actor,
    workspace: WorkspaceId,
) -> anyhow::Result<HashMap<String, ProfileId>> {
    let mut found = HashMap::new();
    let mut page = PageRequest { first: kernel::page::MAX_PAGE_SIZE, after: None };
    loop {
        let profiles = services.profiles.profiles(actor, workspace, ProfileFilter::default(), page).await?;
        for (_, profile) in &profiles.items {
            if let Some(customer) = profile.traits().get("customerId").and_then(|v| v.as_str()) {
                found.insert(customer.to_owned(), profile.id);
            }
        }
        match profiles.items.last() {
            Some((cursor, _)) if profiles.has_next_page => page.after = Some(*cursor),
            _ => return Ok(found),
        }
    }
}

/// Records what each person agreed to, as the preference centre, the newsletter form and
/// the cookie banner would. Returns how many records were written.
pub async fn record_consents(
    services: &Services,
    actor: &Actor,
    workspace: WorkspaceId,
    choices: &[(String, ConsentChoice)],
    profiles: &HashMap<String, ProfileId>,
) -> anyhow::Result<usize> {
    let mut recorded = 0;
    for (customer, choice) in choices {
        let (channel, source) = match choice {
            ConsentChoice::Everything => ("*", "preference_centre"),
            ConsentChoice::Newsletter => ("email", "newsletter_signup"),
            ConsentChoice::Website => ("web", "cookie_banner"),
            ConsentChoice::Nothing => continue,
        };
        let Some(profile) = profiles.get(customer) else { continue };
        let input = ConsentInput {
            purpose: campaigns::executor::PURPOSE.into(),
            channel: channel.into(),
            granted: true,
            source: source.into(),
        };
        services.profiles.set_consent(actor, workspace, *profile, input).await?;
        recorded += 1;
    }
    Ok(recorded)
}

/// What the website did once the journey had decided: each cart abandoner comes back, the
/// site asks the banner channel what to show (an impression when there is an offer), and some
/// order. Offers make ordering likelier, free delivery more than the discount, so the
/// experiment and the holdout have something to find. Returns the orders, as messages.
pub async fn website_visits(
    services: &Services,
    actor: &Actor,
    client: &ClientWorkspace,
    journey: &JourneySetup,
    seed: u64,
) -> anyhow::Result<WebsiteOutcome> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xCA27);
    let mut outcome = WebsiteOutcome::default();
    let mut page = PageRequest { first: kernel::page::MAX_PAGE_SIZE, after: None };
    loop {
        let members = services.segments.members(actor, client.id, journey.segment, page).await?;
        let ids: Vec<ProfileId> = members.items.iter().map(|(_, m)| m.profile_id).collect();
        let people = services.profiles.profiles_by_id(actor, client.id, &ids).await?;
        for person in people {
            let decision = services
                .campaigns
                .decide(actor, client.id, journey.channel, person.id, Some("desktop"))
                .await?;
            let chance = match decision.as_ref().and_then(|d| d.variant.as_deref()) {
                Some("free_delivery") => 0.30,
                Some(_) => 0.22,
                None => 0.12,
            };
            outcome.impressions += usize::from(decision.is_some());
            let Some(customer) =
                person.traits().get("customerId").and_then(|v| v.as_str().map(str::to_owned))
            else {
                continue;
            };
            if rng.gen_bool(chance) {
                let total = (rng.gen_range(40.0..220.0_f64) * 100.0).round() / 100.0;
                let coupon = decision.as_ref().and_then(|d| d.variant.clone());
                outcome.orders.push(json!({
                    "type": "track", "event": "Order Completed", "userId": customer,
                    "messageId": format!("demo-recovery-{customer}"),
                    "context": {"page": {"url": format!("https://www.{}/checkout", client.business.site)}},
                    "properties": {"order_id": format!("R-{customer}"), "total": total, "revenue": total,
                                   "currency": "EUR", "coupon": coupon}
                }));
            }
        }
        match members.items.last() {
            Some((cursor, _)) if members.has_next_page => page.after = Some(*cursor),
            _ => return Ok(outcome),
        }
    }
}

#[derive(Default)]
pub struct WebsiteOutcome {
    pub impressions: usize,
    pub orders: Vec<serde_json::Value>,
}
