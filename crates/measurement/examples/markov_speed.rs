//! Times offline attribution end to end: CSV parsing plus the Markov models.
//!
//! `cargo run --release -p measurement --example markov_speed [PATHS]` generates PATHS
//! (default 1,000,000) random paths over 20 channels as a CSV in memory (deterministic), then
//! prints the median of 5 runs of parse + Markov order 1, 2 and 3 (`--order K` for one only).
//!
//! `… --example markov_speed -- --csv FILE` times and prints every model on a real export.

use std::time::{Duration, Instant};

use measurement::attribution::{self, Model, Options, PathCsvOptions};

const CHANNELS: usize = 20;
const RUNS: usize = 5;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    if let Some(position) = arguments.iter().position(|argument| argument == "--csv") {
        let file = arguments.get(position + 1).ok_or("--csv needs a file")?;
        return real_file(file);
    }
    let orders: Vec<u8> = match arguments.iter().position(|argument| argument == "--order") {
        Some(position) => vec![arguments.get(position + 1).ok_or("--order needs 1, 2 or 3")?.parse()?],
        None => vec![1, 2, 3],
    };
    let paths: usize = match arguments.first().filter(|argument| !argument.starts_with("--")) {
        Some(count) => count.replace('_', "").parse()?,
        None => 1_000_000,
    };
    let csv = generate(paths);
    println!("{paths} paths over {CHANNELS} channels, {:.1} MB of CSV", csv.len() as f64 / 1e6);
    for order in orders {
        let mut parse_times = Vec::new();
        let mut model_times = Vec::new();
        let mut total_times = Vec::new();
        let mut cpu_times = Vec::new();
        let mut distinct = 0;
        for _ in 0..RUNS {
            let cpu_started = thread_cpu_time();
            let started = Instant::now();
            let read = attribution::read_paths_csv(csv.as_slice(), &PathCsvOptions::default())?;
            let parsed = Instant::now();
            let result = attribution::run(&read.paths, Model::Markov { order }, &Options::default())?;
            let done = Instant::now();
            if let (Some(cpu_started), Some(cpu_done)) = (cpu_started, thread_cpu_time()) {
                cpu_times.push(cpu_done.saturating_sub(cpu_started));
            }
            std::hint::black_box(&result);
            distinct = read.paths.len();
            parse_times.push(parsed - started);
            model_times.push(done - parsed);
            total_times.push(done - started);
        }
        let cpu = if cpu_times.is_empty() {
            "n/a".to_owned()
        } else {
            format!("{:.1} ms", millis(median(cpu_times)))
        };
        println!(
            "markov_{order}: parse {:>7.1} ms + model {:>7.1} ms = {:>7.1} ms end to end, {cpu} on CPU \
             (medians of {RUNS}; {distinct} distinct paths)",
            millis(median(parse_times)),
            millis(median(model_times)),
            millis(median(total_times)),
        );
    }
    Ok(())
}

fn real_file(file: &str) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let read = attribution::read_paths_csv(std::fs::File::open(file)?, &PathCsvOptions::default())?;
    println!(
        "{} rows ({} skipped), {} distinct paths, {} channels, parsed in {:.1} ms",
        read.rows,
        read.skipped_rows,
        read.paths.len(),
        read.paths.channels().len(),
        millis(started.elapsed())
    );
    let started = Instant::now();
    let models = [&Model::STANDARD[..], &[Model::Markov { order: 2 }, Model::Markov { order: 3 }]].concat();
    let results = attribution::run_models(&read.paths, &models, &Options::default())?;
    println!("all models in {:.1} ms\n", millis(started.elapsed()));
    attribution::write_table(&results, std::io::stdout())?;
    for result in &results {
        if let Some(details) = &result.markov {
            println!(
                "\n{}: {} states, {} transitions, conversion probability {}, removal effects:",
                result.model,
                details.states.len(),
                details.transitions.len(),
                details.conversion_probability
            );
            attribution::write_removal_effects_csv(details, std::io::stdout())?;
        }
    }
    Ok(())
}

/// Journeys of 1 to 10 touches, channels skewed towards the first ones, a third converting.
fn generate(paths: usize) -> Vec<u8> {
    let mut state = 0x853c_49e6_748f_ea9bu64;
    let mut next = move |bound: u64| {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % bound
    };
    let names: Vec<String> = (0..CHANNELS).map(|channel| format!("channel_{channel:02}")).collect();
    let mut csv = b"path,total_conversions,total_conversion_value,total_null\n".to_vec();
    for _ in 0..paths {
        let length = 1 + next(10);
        for touch in 0..length {
            if touch > 0 {
                csv.extend_from_slice(b" > ");
            }
            let channel = next(CHANNELS as u64) * next(CHANNELS as u64 + 1) / CHANNELS as u64;
            csv.extend_from_slice(names[channel as usize].as_bytes());
        }
        let conversions = if next(3) == 0 { 1 + next(2) } else { 0 };
        let value = if conversions > 0 { next(50_000) as f64 / 100.0 } else { 0.0 };
        let nulls = next(4) + u64::from(conversions == 0);
        csv.extend_from_slice(format!(",{conversions},{value},{nulls}\n").as_bytes());
    }
    csv
}

/// Time this thread spent on a CPU (Linux), to tell our cost from a busy machine's waits.
fn thread_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: u64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}
