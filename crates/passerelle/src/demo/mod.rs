//! `passerelle demo`: fills the configured database (the embedded default unless DATABASE_URL
//! says otherwise) with a realistic agency, through the same services the API uses, so that
//! identity resolution, merges, segment membership, journey enrollment and touchpoints are the
//! real thing. Then prints how to sign in and three queries worth trying.
//!
//! The order matters and mirrors what happens in production: the agency configures its client
//! (segments, conversion, journey) before the data flows; events are accepted into the inbox
//! and processed as the ingestion worker does; consents arrive; the segments worker applies the
//! profiles' changes; the journey executor enrolls and moves people; the website asks for its
//! banners and people order; everything is processed again.

mod businesses;
mod guide;
mod people;
mod story;

use crate::Services;
use anyhow::{Context as _, bail};
use businesses::BUSINESSES;
use chrono::{DateTime, Duration, Utc};
use kernel::ProfileId;
use people::{ConsentChoice, Generator};
use platform::Settings;
use rand::Rng;
use serde_json::{Map, Value};
use std::time::Instant;
use story::ClientWorkspace;
use tenancy::{Actor, LoginInput, TenancyError};

pub const AGENCY_NAME: &str = "Demo Agency";
/// A reserved `.test` domain: the login looks like an email and reaches no one.
pub const OWNER_EMAIL: &str = "owner@demo-agency.test";

/// Events generated before they are sent.
const INGEST_BATCH: usize = 5_000;
/// Events per call to the inbox, about what an analytics SDK puts in one request (a few tens of
/// messages). (Larger calls were three times slower per event on SQLite until `platform::sql`
/// stopped numbering its parameters there; see BENCHMARKS.md.)
const SDK_BATCH: usize = 100;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// People to generate over both client workspaces (three in five for the first). Most sign
    /// up and are seen on several devices; the rest stay anonymous visitors. At least 500, so
    /// the journey's holdout and both arms have people.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(500..=2_000_000))]
    pub profiles: u32,
    /// Seed of the generated population: the same seed gives the same people and stories.
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
}

/// Runs the demo to completion and prints the guide.
pub async fn run(args: DemoArgs, settings: &Settings) -> anyhow::Result<()> {
    let started = Instant::now();
    let data = describe_data(settings);
    println!("Filling {data} with a demo agency ({} people, seed {})…", args.profiles, args.seed);
    let services = Services::connect(settings).await?;
    let password = random_password();
    match services.tenancy.bootstrap_agency(AGENCY_NAME, OWNER_EMAIL, &password).await {
        Ok(_) => {}
        Err(TenancyError::Conflict(_)) => bail!(
            "{data} already holds the demo agency (its owner {OWNER_EMAIL} exists); nothing was changed. \
             To start over, {}",
            start_over(settings)
        ),
        Err(error) => return Err(error).context("creating the demo agency"),
    }
    let actor = sign_in(&services, &password).await?;
    let now = Utc::now();
    let mut clients = Vec::new();
    for business in &BUSINESSES {
        clients.push(story::open_workspace(&services, &actor, business).await?);
    }
    let total = args.profiles as usize;
    let sizes = [total * 3 / 5, total - total * 3 / 5];
    let population = populate(&services, &actor, &clients, sizes, args.seed, now).await?;
    let showcase = clients.first().context("the demo has workspaces")?;
    let journey = showcase.journey.as_ref().context("the first workspace runs the journey")?;
    visit_the_website(&services, &actor, showcase, journey, args.seed).await?;
    for (client, size) in clients.iter().zip(sizes) {
        story::record_spend(&services, &actor, client, size, args.seed, now).await?;
    }
    println!();
    for client in &clients {
        summarize(&services, &actor, client).await?;
    }
    println!(
        "\nDone in {:.1} s: {} events for {total} people.",
        started.elapsed().as_secs_f64(),
        population.events
    );
    let guide = guide::Guide {
        data,
        start_over: start_over(settings),
        serve_command: serve_command(settings),
        url: format!("http://{}/graphql", settings.listen),
        email: OWNER_EMAIL.into(),
        password,
        workspaces: clients.iter().map(|c| (c.business.workspace_name.to_owned(), c.id)).collect(),
        workspace: showcase.id,
        customer: population.showcase,
        segment: showcase.segment("High-value customers").context("the segment exists")?,
        conversion: showcase.conversion,
        journey: journey.id,
        from: now - Duration::days(90),
        to: now + Duration::days(1),
    };
    println!("{}", guide.render());
    Ok(())
}

/// What filling the workspaces with people gave.
struct Population {
    events: usize,
    /// The first workspace's showcase customer (see [`people::Generator::person`]).
    showcase: ProfileId,
}

/// Generates each workspace's people and sends their events, processes them as the ingestion
/// worker does, records consents once the profiles exist, then lets the segments worker and
/// the journey executor catch up, as the background workers would.
async fn populate(
    services: &Services,
    actor: &Actor,
    clients: &[ClientWorkspace],
    sizes: [usize; 2],
    seed: u64,
    now: DateTime<Utc>,
) -> anyhow::Result<Population> {
    let mut choices: Vec<Vec<(String, ConsentChoice)>> = Vec::new();
    let mut events = 0;
    let step = Instant::now();
    for (number, (client, size)) in clients.iter().zip(sizes).enumerate() {
        let generator = Generator { business: client.business, workspace: number, seed, now };
        let (ingested, people) = ingest_people(services, client, &generator, size).await?;
        events += ingested;
        println!(
            "  {}: {size} people ({} signed up, {} seen on several devices), {ingested} events accepted",
            client.business.workspace_name, people.signed_up, people.multi_device
        );
        choices.push(people.consents);
    }
    println!("  events accepted in {:.1} s", step.elapsed().as_secs_f64());

    let step = Instant::now();
    let processed = process_events(services).await?;
    println!(
        "  {processed} events processed (identities resolved, profiles merged) in {:.1} s",
        step.elapsed().as_secs_f64()
    );

    let step = Instant::now();
    let mut showcase = None;
    for (client, choices) in clients.iter().zip(&choices) {
        let profiles = story::profiles_by_customer(services, actor, client.id).await?;
        let recorded = story::record_consents(services, actor, client.id, choices, &profiles).await?;
        println!("  {}: {recorded} consents recorded", client.business.workspace_name);
        // Person 0 signs up in every workspace: the first account is the showcase.
        showcase =
            showcase.or_else(|| choices.first().and_then(|(customer, _)| profiles.get(customer).copied()));
    }
    println!("  consents recorded in {:.1} s", step.elapsed().as_secs_f64());

    let step = Instant::now();
    services.segments.apply_changes().await?;
    let enrolled = run_journeys(services).await?;
    println!(
        "  segments updated and {enrolled} people enrolled in journeys in {:.1} s",
        step.elapsed().as_secs_f64()
    );
    Ok(Population { events, showcase: showcase.context("the showcase customer has a profile")? })
}

/// The website asks for the cart banners and some people order; the orders go through the
/// inbox, the segments and the journey (whose goal they reach) like any other event.
async fn visit_the_website(
    services: &Services,
    actor: &Actor,
    client: &ClientWorkspace,
    journey: &story::JourneySetup,
    seed: u64,
) -> anyhow::Result<()> {
    let website = story::website_visits(services, actor, client, journey, seed).await?;
    ingest(services, client, &website.orders).await?;
    process_events(services).await?;
    services.segments.apply_changes().await?;
    run_journeys(services).await?;
    println!(
        "  the website showed {} cart banners and {} of the cart abandoners ordered",
        website.impressions,
        website.orders.len()
    );
    Ok(())
}

/// Where the data goes, without printing a database URL (it may hold a password).
fn describe_data(settings: &Settings) -> String {
    match settings.database_url {
        Some(_) => "the PostgreSQL database of DATABASE_URL".to_owned(),
        None => {
            let dir = std::path::absolute(&settings.data_dir).unwrap_or_else(|_| settings.data_dir.clone());
            format!("{} (SQLite: {})", dir.display(), dir.join("passerelle.db").display())
        }
    }
}

/// How to get back to an empty database.
fn start_over(settings: &Settings) -> String {
    match settings.database_url {
        Some(_) => "drop and recreate that database, then run `passerelle demo` again".to_owned(),
        None => {
            let dir = std::path::absolute(&settings.data_dir).unwrap_or_else(|_| settings.data_dir.clone());
            format!(
                "stop the server, delete the data directory ({}) and run `passerelle demo` again, or give \
                 another one with --data-dir",
                dir.display()
            )
        }
    }
}

fn serve_command(settings: &Settings) -> String {
    let default = Settings::default();
    if settings.data_dir == default.data_dir {
        "passerelle serve          (from the source tree: cargo run --release)".to_owned()
    } else {
        let dir = std::path::absolute(&settings.data_dir).unwrap_or_else(|_| settings.data_dir.clone());
        format!("passerelle serve --data-dir {}", dir.display())
    }
}

/// A password for the owner, from the operating system's generator (never from the seed: a
/// demo's data may be reproducible, its credentials must not be).
fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    let groups: Vec<String> = (0..4)
        .map(|_| (0..5).map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())])).collect())
        .collect();
    groups.join("-")
}

/// Signs in as the owner, as the console would, and returns the verified actor.
async fn sign_in(services: &Services, password: &str) -> anyhow::Result<Actor> {
    let tokens = services
        .tenancy
        .login(LoginInput { email: OWNER_EMAIL.into(), password: password.into() })
        .await
        .context("signing in as the demo owner")?;
    let credential = services.tenancy.identify(&tokens.access_token)?;
    Ok(services.tenancy.authenticate(credential).await?)
}

/// What generating one workspace's people gave.
struct Generated {
    signed_up: usize,
    multi_device: usize,
    /// Each account's consent choice, recorded once profiles exist.
    consents: Vec<(String, ConsentChoice)>,
}

/// Generates the workspace's people and accepts their events into the inbox, a batch at a
/// time, as the tracking API would. Returns how many events were accepted.
async fn ingest_people(
    services: &Services,
    client: &ClientWorkspace,
    generator: &Generator<'_>,
    size: usize,
) -> anyhow::Result<(usize, Generated)> {
    let mut generated = Generated { signed_up: 0, multi_device: 0, consents: Vec::new() };
    let mut pending = Vec::with_capacity(INGEST_BATCH);
    let mut accepted = 0;
    for index in 0..size {
        let person = generator.person(index);
        if let Some(customer) = &person.customer_id {
            generated.signed_up += 1;
            generated.consents.push((customer.clone(), person.consent));
        }
        generated.multi_device += usize::from(person.devices > 1);
        pending.extend(person.events);
        if pending.len() >= INGEST_BATCH {
            accepted += ingest(services, client, &pending).await?;
            pending.clear();
        }
    }
    accepted += ingest(services, client, &pending).await?;
    Ok((accepted, generated))
}

/// Parses Segment messages exactly as the tracking API does and commits them to the inbox
/// under the website's write key.
async fn ingest(services: &Services, client: &ClientWorkspace, messages: &[Value]) -> anyhow::Result<usize> {
    let defaults = Map::new();
    let mut accepted = 0;
    for batch in messages.chunks(SDK_BATCH) {
        let received_at = Utc::now();
        let mut events = Vec::with_capacity(batch.len());
        for message in batch {
            let Value::Object(object) = message.clone() else {
                bail!("a generated message is not an object")
            };
            events.push(profiles::message::parse_message(object, None, &defaults, None, received_at)?);
        }
        accepted += services.profiles.ingest(&client.ingestion, "demo", &events).await?.accepted;
    }
    Ok(accepted)
}

/// What the ingestion worker does, until the inbox is empty: every workspace with pending
/// events, drained.
async fn process_events(services: &Services) -> anyhow::Result<usize> {
    let mut processed = 0;
    loop {
        let round = services.profiles.process_queued(true, 2).await?;
        processed += round;
        if round == 0 {
            return Ok(processed);
        }
    }
}

/// Executor rounds, as the worker runs them, until nobody is left to enroll or move on now
/// (people waiting three days stay where they are).
async fn run_journeys(services: &Services) -> anyhow::Result<usize> {
    let mut enrolled = 0;
    for _ in 0..1_000 {
        let round = services.campaigns.execute_due().await?;
        enrolled += round.enrolled;
        if round.enrolled == 0 && round.steps == 0 {
            return Ok(enrolled);
        }
    }
    bail!("the journey executor was still busy after 1,000 rounds")
}

/// One workspace's counts, read back through the services.
async fn summarize(services: &Services, actor: &Actor, client: &ClientWorkspace) -> anyhow::Result<()> {
    let everyone = segments::DefinitionInput::Text("event_count >= 1".into());
    let profiles = services.segments.preview(actor, client.id, &everyone, 0).await?.count;
    println!("{} ({}): {profiles} profiles", client.business.workspace_name, client.id);
    for (name, id) in &client.segments {
        let segment = services.segments.segment(actor, client.id, *id).await?;
        println!("    segment {name:<24} {:>6} members", segment.size);
    }
    if let Some(journey) = &client.journey {
        let report = services.campaigns.journey_report(actor, client.id, journey.id).await?;
        let arms: Vec<String> = report.by_variant.iter().map(|(arm, n)| format!("{arm} {n}")).collect();
        let statuses: Vec<String> =
            report.by_status.iter().map(|(status, n)| format!("{status} {n}")).collect();
        println!(
            "    journey \"{}\": holdout {}, {}; {}",
            story::JOURNEY_NAME,
            report.holdout,
            arms.join(", "),
            statuses.join(", ")
        );
        if report.holdout == 0 || report.by_variant.len() < 2 {
            println!("    (too few people entered the journey to measure it: try a larger --profiles)");
        }
    }
    Ok(())
}
