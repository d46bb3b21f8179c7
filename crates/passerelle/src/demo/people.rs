//! The generated population: people with the devices, identifiers and habits of real customers,
//! written as the Segment messages their website, app, shops and call centre would send.
//!
//! Everything is drawn from a seeded generator (one per person, from the seed, the workspace
//! and the person's number), so the same seed gives the same people and the same stories.
//! Only the clock moves: times are offsets from the moment the demo runs, so the last 90 days
//! are always the last 90 days.

use super::businesses::Business;
use chrono::{DateTime, Duration, Utc};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::SliceRandom};
use serde_json::{Value, json};

/// What a person agreed to, recorded once their profile exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentChoice {
    /// Accepted everything in the preference centre (marketing on every channel).
    Everything,
    /// Subscribed to the newsletter only (marketing by email).
    Newsletter,
    /// Accepted the cookie banner's personalisation only (marketing on the website).
    Website,
    Nothing,
}

/// A generated person, as the demo needs to find them again.
pub struct Person {
    /// The account id (`userId`), for people who signed up.
    pub customer_id: Option<String>,
    pub consent: ConsentChoice,
    /// Devices the person was seen on (browsers, phones, the app).
    pub devices: usize,
    pub events: Vec<Value>,
}

const FIRST_NAMES: &[&str] = &[
    "Camille", "Louis", "Léa", "Hugo", "Chloé", "Gabriel", "Manon", "Arthur", "Inès", "Jules", "Emma",
    "Lucas", "Jade", "Nathan", "Louise", "Adam", "Alice", "Raphaël", "Zoé", "Paul", "Sofia", "Malik", "Anna",
    "Yanis", "Clara", "Théo", "Nora", "Sacha", "Lina", "Maël",
];
const LAST_NAMES: &[&str] = &[
    "Martin",
    "Bernard",
    "Dubois",
    "Thomas",
    "Robert",
    "Richard",
    "Petit",
    "Durand",
    "Leroy",
    "Moreau",
    "Simon",
    "Laurent",
    "Lefebvre",
    "Michel",
    "Garcia",
    "David",
    "Bertrand",
    "Roux",
    "Vincent",
    "Fournier",
    "Morel",
    "Girard",
    "André",
    "Mercier",
    "Dupont",
    "Lambert",
    "Bonnet",
    "François",
    "Martinez",
    "Benali",
];
const CITIES: &[&str] = &[
    "Paris",
    "Lyon",
    "Marseille",
    "Toulouse",
    "Nantes",
    "Bordeaux",
    "Lille",
    "Strasbourg",
    "Rennes",
    "Nice",
];
/// Reserved domains (RFC 2606): the addresses look real and reach no one.
const EMAIL_DOMAINS: &[&str] = &["example.com", "example.net", "example.org"];
const STORES: &[&str] = &["paris-marais", "lyon-part-dieu", "bordeaux-centre", "lille-grand-place"];

/// How a session started: the marketing (or absence of it) that brought the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arrival {
    PaidSearch,
    PaidSocial,
    Display,
    Affiliate,
    Newsletter,
    OrganicSearch,
    Social,
    Direct,
    Push,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DeviceKind {
    Desktop,
    MobileWeb,
    Ios,
    Android,
}

struct Device {
    kind: DeviceKind,
    /// The browser cookie or the app installation's id.
    anonymous_id: String,
    /// The phone's device id and advertising id (app only).
    app_ids: Option<(String, String)>,
    /// Whether the person signed in on it: from then on its events carry the account id.
    signed_in: bool,
}

/// Everything needed to write one person's story.
pub struct Generator<'a> {
    pub business: &'a Business,
    /// The workspace's number (0 or 1), so ids differ between workspaces.
    pub workspace: usize,
    pub seed: u64,
    pub now: DateTime<Utc>,
}

impl Generator<'_> {
    /// The `index`-th person. Person 0 of a workspace is its showcase: a customer seen on a
    /// computer, a phone's browser and the app, in a shop and on the phone with customer
    /// service, who bought and agreed to everything, so one query shows all of it.
    pub fn person(&self, index: usize) -> Person {
        let mut story = Story::new(self, index);
        story.live(index == 0);
        story.finish()
    }
}

struct Story<'a> {
    generator: &'a Generator<'a>,
    rng: StdRng,
    index: usize,
    sequence: usize,
    customer_id: Option<String>,
    /// Identify traits; sent when the person signs in.
    traits: Value,
    email: String,
    phone: Option<String>,
    consent: ConsentChoice,
    devices: Vec<Device>,
    events: Vec<Value>,
}

impl<'a> Story<'a> {
    fn new(generator: &'a Generator<'a>, index: usize) -> Self {
        // A generator of its own per person: the population does not depend on its size.
        let mixed = generator.seed
            ^ (generator.workspace as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (index as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
        let mut rng = StdRng::seed_from_u64(mixed);
        let first = *FIRST_NAMES.choose(&mut rng).unwrap_or(&"Alex");
        let last = *LAST_NAMES.choose(&mut rng).unwrap_or(&"Martin");
        let domain = *EMAIL_DOMAINS.choose(&mut rng).unwrap_or(&"example.com");
        let email = format!("{}.{}.{index}@{domain}", ascii(first), ascii(last));
        // French mobile numbers, one per person (06 followed by 8 digits); the showcase has one.
        let phone = (rng.gen_bool(0.6) || index == 0)
            .then(|| format!("+33 6 {:08}", 10_000_000 + generator.workspace * 5_000_000 + index));
        let city = *CITIES.choose(&mut rng).unwrap_or(&"Paris");
        let mut traits = json!({"email": email, "firstName": first, "lastName": last,
            "city": city, "country": "FR"});
        if let Some(phone) = &phone {
            traits["phone"] = json!(phone);
        }
        Self {
            generator,
            rng,
            index,
            sequence: 0,
            customer_id: None,
            traits,
            email,
            phone,
            consent: ConsentChoice::Nothing,
            devices: Vec::new(),
            events: Vec::new(),
        }
    }

    fn live(&mut self, showcase: bool) {
        let known = showcase || self.rng.gen_bool(0.72);
        let first_visit = self.rng.gen_range(3.0..90.0);
        self.add_device(DeviceKind::Desktop);
        if !known {
            // A visitor who never signs up: a few anonymous visits from ads or search.
            for _ in 0..self.rng.gen_range(1..=3) {
                let days_ago = self.rng.gen_range(0.05..first_visit);
                self.session(0, days_ago, false);
            }
            return;
        }
        let workspace = ["ML", "VG"][self.generator.workspace.min(1)];
        let customer_id = format!("{workspace}-{:06}", self.index);
        self.traits["customerId"] = json!(customer_id);
        self.customer_id = Some(customer_id);
        self.consent = if showcase {
            ConsentChoice::Everything
        } else {
            match self.rng.gen_range(0..100) {
                0..35 => ConsentChoice::Everything,
                35..50 => ConsentChoice::Newsletter,
                50..75 => ConsentChoice::Website,
                _ => ConsentChoice::Nothing,
            }
        };
        if showcase || self.rng.gen_bool(0.35) {
            self.add_device(DeviceKind::MobileWeb);
        }
        if showcase || self.rng.gen_bool(self.generator.business.app_share) {
            let kind = if self.rng.gen_bool(0.55) { DeviceKind::Ios } else { DeviceKind::Android };
            self.add_device(kind);
        }
        // The first visit, on the computer, ends with the sign-up.
        self.session(0, first_visit, true);
        let sessions = if showcase { 6 } else { self.rng.gen_range(1..=6) };
        let mut times: Vec<f64> = (0..sessions).map(|_| self.rng.gen_range(0.05..first_visit)).collect();
        times.sort_by(|a, b| b.total_cmp(a));
        for (n, days_ago) in times.into_iter().enumerate() {
            // Each further device is first used in one of the sessions after sign-up.
            let device =
                if showcase { n % self.devices.len() } else { self.rng.gen_range(0..self.devices.len()) };
            // Nine in ten sign in on a new device; the tenth stays an anonymous stranger.
            let signs_in = showcase || self.rng.gen_bool(0.9);
            self.session(device, days_ago, signs_in);
        }
        if showcase || self.rng.gen_bool(self.generator.business.store_share) {
            for _ in 0..self.rng.gen_range(1..=2) {
                let days_ago = self.rng.gen_range(0.5..first_visit);
                self.store_purchase(days_ago);
            }
        }
        if showcase || self.rng.gen_bool(self.generator.business.call_share) {
            let days_ago = self.rng.gen_range(0.5..first_visit);
            self.call(days_ago);
        }
    }

    fn finish(self) -> Person {
        let devices = self.devices.iter().filter(|d| d.signed_in || self.customer_id.is_none()).count();
        Person { customer_id: self.customer_id, consent: self.consent, devices, events: self.events }
    }

    fn add_device(&mut self, kind: DeviceKind) {
        let anonymous_id = self.random_uuid();
        let app_ids = matches!(kind, DeviceKind::Ios | DeviceKind::Android)
            .then(|| (self.random_uuid(), self.random_uuid().to_uppercase()));
        self.devices.push(Device { kind, anonymous_id, app_ids, signed_in: false });
    }

    fn random_uuid(&mut self) -> String {
        uuid::Builder::from_random_bytes(self.rng.r#gen()).into_uuid().to_string()
    }

    fn at(&self, days_ago: f64) -> String {
        let at = self.generator.now - Duration::seconds((days_ago * 86_400.0) as i64);
        at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }

    /// One visit: arrives through some marketing (or none), looks at products, maybe adds one
    /// to the cart and orders it; `sign_in` makes the device's first visit end signed in.
    fn session(&mut self, device: usize, days_ago: f64, sign_in: bool) {
        let arrival = self.arrival(device);
        let app = self.devices[device].app_ids.is_some();
        let mut minute = 0.0;
        let mut step = |minutes: f64| {
            minute += minutes;
            days_ago - minute / 1_440.0
        };
        let landing = step(0.0);
        if app {
            let mut context = self.context(device);
            if arrival == Arrival::Push {
                context["campaign"] = json!({"source": "app", "medium": "push", "name": "weekly-picks"});
            }
            self.emit(device, landing, json!({"type": "screen", "name": "Home"}), context);
        } else {
            let mut context = self.context(device);
            context["page"] = self.landing_page(arrival);
            self.emit(device, landing, json!({"type": "page", "name": "Landing"}), context);
        }
        let products = self.generator.business.products;
        let mut chosen = None;
        for _ in 0..self.rng.gen_range(1..=3) {
            let (name, low, high) = products[self.rng.gen_range(0..products.len())];
            let price = (self.rng.gen_range(low..=high) * 100.0_f64).round() / 100.0;
            let at = step(self.rng.gen_range(0.5..4.0));
            let context = self.context(device);
            self.emit(
                device,
                at,
                json!({"type": "track", "event": "Product Viewed",
                       "properties": {"product": name, "price": price, "currency": "EUR"}}),
                context,
            );
            chosen = Some((name, price));
        }
        if sign_in && !self.devices[device].signed_in && self.customer_id.is_some() {
            let at = step(1.0);
            self.devices[device].signed_in = true;
            let traits = self.traits.clone();
            let context = self.context(device);
            self.emit(device, at, json!({"type": "identify", "traits": traits}), context);
        }
        let Some((product, price)) = chosen else { return };
        if !self.rng.gen_bool(0.45) {
            return;
        }
        let at = step(self.rng.gen_range(0.5..3.0));
        let context = self.context(device);
        self.emit(
            device,
            at,
            json!({"type": "track", "event": "Product Added",
                   "properties": {"product": product, "price": price, "currency": "EUR"}}),
            context,
        );
        // Orders need an account; about half of the carts become orders.
        if self.customer_id.is_none() || !self.devices[device].signed_in || !self.rng.gen_bool(0.55) {
            return;
        }
        let quantity = if self.rng.gen_bool(0.2) { 2.0 } else { 1.0 };
        let at = step(self.rng.gen_range(2.0..8.0));
        let order = self.order_properties(product, price * quantity, "web");
        let context = self.context(device);
        self.emit(
            device,
            at,
            json!({"type": "track", "event": "Order Completed", "properties": order}),
            context,
        );
    }

    fn order_properties(&mut self, product: &str, total: f64, source: &str) -> Value {
        self.sequence += 1;
        let order_id = format!("O-{}{:06}-{}", self.generator.workspace, self.index, self.sequence);
        let total = (total * 100.0).round() / 100.0;
        json!({"order_id": order_id, "total": total, "revenue": total, "currency": "EUR",
               "products": [{"name": product}], "source": source})
    }

    /// A purchase in a shop: the till knows the loyalty card and, for the e-receipt, the email,
    /// which is how the purchase finds the person's online profile.
    fn store_purchase(&mut self, days_ago: f64) {
        let products = self.generator.business.products;
        let (product, low, high) = products[self.rng.gen_range(0..products.len())];
        let total = self.rng.gen_range(low..=high);
        let store = *STORES.choose(&mut self.rng).unwrap_or(&"paris-marais");
        let order = self.order_properties(product, total, "store");
        let receipt = format!("pos-{store}-{}", order["order_id"].as_str().unwrap_or_default());
        let card = format!("LC-{}{:07}", self.generator.workspace, self.index);
        self.push(json!({
            "type": "track", "event": "Order Completed", "anonymousId": receipt,
            "timestamp": self.at(days_ago), "properties": order,
            "context": {"channel": "pos", "store": store, "traits": {"email": self.email},
                        "externalIds": [{"type": "loyalty_card", "id": card}]}
        }));
    }

    /// A call to customer service, found by the caller's number (or their account).
    fn call(&mut self, days_ago: f64) {
        let reasons = self.generator.business.call_reasons;
        let reason = *reasons.choose(&mut self.rng).unwrap_or(&"question");
        let mut context = json!({"channel": "call_center"});
        if let Some(phone) = &self.phone {
            context["traits"] = json!({"phone": phone});
        }
        let duration = self.rng.gen_range(90..900);
        self.push(json!({
            "type": "track", "event": "Call Completed", "userId": self.customer_id,
            "timestamp": self.at(days_ago), "context": context,
            "properties": {"reason": reason, "durationSeconds": duration}
        }));
    }

    fn arrival(&mut self, device: usize) -> Arrival {
        if self.devices[device].app_ids.is_some() {
            return if self.rng.gen_bool(0.3) { Arrival::Push } else { Arrival::Direct };
        }
        let subscribed = matches!(self.consent, ConsentChoice::Everything | ConsentChoice::Newsletter);
        if subscribed && self.rng.gen_bool(0.35) {
            return Arrival::Newsletter;
        }
        const WEIGHTED: [(Arrival, u32); 8] = [
            (Arrival::PaidSearch, 24),
            (Arrival::PaidSocial, 14),
            (Arrival::Display, 9),
            (Arrival::Affiliate, 5),
            (Arrival::OrganicSearch, 20),
            (Arrival::Social, 8),
            (Arrival::Direct, 20),
            (Arrival::Newsletter, 0),
        ];
        let total: u32 = WEIGHTED.iter().map(|(_, w)| w).sum();
        let mut draw = self.rng.gen_range(0..total);
        for (arrival, weight) in WEIGHTED {
            if draw < weight {
                return arrival;
            }
            draw -= weight;
        }
        Arrival::Direct
    }

    /// The landing page's URL (with UTM parameters for paid and owned media) and referrer.
    fn landing_page(&mut self, arrival: Arrival) -> Value {
        let site = self.generator.business.site;
        let utm = |source: &str, medium: &str, campaign: &str| {
            format!("https://www.{site}/?utm_source={source}&utm_medium={medium}&utm_campaign={campaign}")
        };
        let week = self.rng.gen_range(1..=13);
        let (url, referrer) = match arrival {
            Arrival::PaidSearch => {
                let engine = if self.rng.gen_bool(0.8) { "google" } else { "bing" };
                let campaign = if self.rng.gen_bool(0.4) { "brand" } else { "generic" };
                (utm(engine, "cpc", campaign), Some(format!("https://www.{engine}.com/")))
            }
            Arrival::PaidSocial => {
                let network = if self.rng.gen_bool(0.6) { "instagram" } else { "facebook" };
                (utm(network, "paid_social", "new-season"), Some(format!("https://www.{network}.com/")))
            }
            Arrival::Display => (utm("criteo", "display", "retargeting"), None),
            Arrival::Affiliate => (utm("bons-plans", "affiliate", "partners"), None),
            Arrival::Newsletter => (utm("newsletter", "email", &format!("week-{week:02}")), None),
            Arrival::OrganicSearch => {
                (format!("https://www.{site}/"), Some("https://www.google.com/".to_owned()))
            }
            Arrival::Social => {
                (format!("https://www.{site}/lookbook"), Some("https://www.instagram.com/".to_owned()))
            }
            Arrival::Direct | Arrival::Push => (format!("https://www.{site}/"), None),
        };
        match referrer {
            Some(referrer) => json!({"url": url, "referrer": referrer}),
            None => json!({"url": url}),
        }
    }

    fn context(&self, device: usize) -> Value {
        let device = &self.devices[device];
        match (&device.app_ids, device.kind) {
            (Some((id, advertising_id)), kind) => {
                let (kind, os) =
                    if kind == DeviceKind::Ios { ("ios", "iOS") } else { ("android", "Android") };
                json!({"app": {"name": self.generator.business.app_name},
                       "device": {"type": kind, "id": id, "advertisingId": advertising_id, "adTrackingEnabled": true},
                       "os": {"name": os}})
            }
            (None, DeviceKind::MobileWeb) => json!({
                "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Mobile/15E148 Safari/604.1",
                "device": {"type": "mobile"}}),
            (None, _) => json!({
                "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0 Safari/537.36",
                "device": {"type": "desktop"}}),
        }
    }

    /// Adds the device's identifiers (the cookie or installation id, and the account once
    /// signed in there), the time and a message id to a message.
    fn emit(&mut self, device: usize, days_ago: f64, mut message: Value, context: Value) {
        let device = &self.devices[device];
        message["anonymousId"] = json!(device.anonymous_id);
        if device.signed_in {
            message["userId"] = json!(self.customer_id);
        }
        message["timestamp"] = json!(self.at(days_ago));
        message["context"] = context;
        self.push(message);
    }

    fn push(&mut self, mut message: Value) {
        let number = self.events.len();
        message["messageId"] = json!(format!("demo-{}-{}-{number}", self.generator.workspace, self.index));
        self.events.push(message);
    }
}

/// Names without accents, for email addresses.
fn ascii(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'ï' | 'î' => 'i',
            'ç' => 'c',
            'ô' => 'o',
            'à' | 'â' => 'a',
            c => c,
        })
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generator(seed: u64) -> Generator<'static> {
        Generator { business: &super::super::businesses::BUSINESSES[0], workspace: 0, seed, now: Utc::now() }
    }

    #[test]
    fn the_same_seed_gives_the_same_people() {
        let (a, b) = (generator(7), generator(7));
        for index in [0, 1, 42, 999] {
            let (x, y) = (a.person(index), b.person(index));
            assert_eq!(x.customer_id, y.customer_id);
            assert_eq!(x.events.len(), y.events.len());
            let strip = |events: &[Value]| {
                events.iter().map(|e| (e["messageId"].clone(), e["anonymousId"].clone())).collect::<Vec<_>>()
            };
            assert_eq!(strip(&x.events), strip(&y.events));
        }
        assert_ne!(
            generator(7).person(1).events[0]["anonymousId"],
            generator(8).person(1).events[0]["anonymousId"]
        );
    }

    #[test]
    fn the_showcase_is_seen_everywhere_and_signed_in_on_every_device() {
        let person = generator(1).person(0);
        assert!(person.customer_id.is_some());
        assert_eq!(person.devices, 3, "computer, phone browser and app");
        assert!(person.events.iter().any(|e| e["traits"]["phone"].is_string()), "reachable by phone");
        let channels: Vec<&str> =
            person.events.iter().filter_map(|e| e["context"]["channel"].as_str()).collect();
        assert!(channels.contains(&"pos") && channels.contains(&"call_center"));
        let identifies = person.events.iter().filter(|e| e["type"] == "identify").count();
        assert_eq!(identifies, 3, "one sign-in per device");
        assert!(person.events.iter().any(|e| e["event"] == "Order Completed"));
    }

    #[test]
    fn every_message_is_valid_and_ids_are_unique() {
        let generator = generator(3);
        let mut ids = std::collections::HashSet::new();
        for index in 0..300 {
            for event in generator.person(index).events {
                assert!(ids.insert(event["messageId"].as_str().unwrap().to_owned()));
                let object = event.as_object().unwrap().clone();
                profiles::message::parse_message(object, None, &Default::default(), None, Utc::now())
                    .unwrap_or_else(|e| panic!("{e}: {event}"));
            }
        }
    }

    #[test]
    fn emails_are_plain_ascii_on_reserved_domains() {
        assert_eq!(ascii("Léa"), "lea");
        assert_eq!(ascii("François"), "francois");
        let person = generator(5).person(0);
        let identify = person.events.iter().find(|e| e["type"] == "identify").unwrap();
        let email = identify["traits"]["email"].as_str().unwrap();
        assert!(
            email.is_ascii() && email.ends_with(".com") | email.ends_with(".net") | email.ends_with(".org")
        );
        assert!(EMAIL_DOMAINS.iter().any(|d| email.ends_with(d)), "{email}");
    }
}
