//! `passerelle attribution`: attribution models on an exported path file, offline (no database,
//! no configuration). The file is one row per path, in the format path-analysis tools share:
//! `path,total_conversions,total_conversion_value,total_null`, channels joined by `>`.

use anyhow::Context as _;
use measurement::attribution::{self, Model, Options, PathCsvOptions, PositionWeights};
use std::io::{BufWriter, Read, Write};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct AttributionArgs {
    /// The path file (`-` for standard input).
    #[arg(long, value_name = "FILE")]
    paths: PathBuf,
    /// A model to run; repeat for several (default: every model side by side, Markov at
    /// order 1). One of: first_touch, last_touch, last_non_direct, linear, position_based,
    /// time_decay, custom, markov (= markov_1), markov_2, markov_3, shapley.
    #[arg(long = "model", value_name = "MODEL")]
    models: Vec<String>,
    /// Between the channels of a path.
    #[arg(long, default_value = ">")]
    separator: String,
    /// Between the fields of a row (default: guessed from the header among , ; tab |).
    #[arg(long, value_name = "CHAR")]
    delimiter: Option<char>,
    #[arg(long, default_value = "path")]
    path_column: String,
    #[arg(long, default_value = "total_conversions")]
    conversions_column: String,
    /// The value column; `none` when the file has none.
    #[arg(long, default_value = "total_conversion_value")]
    value_column: String,
    /// The non-converting paths' column; `none` when the file has none.
    #[arg(long, default_value = "total_null")]
    nulls_column: String,
    /// A channel that counts as direct for last_non_direct (repeatable; default `direct`).
    #[arg(long = "direct", value_name = "CHANNEL")]
    direct_channels: Vec<String>,
    /// Position-based weights of the first, middle and last touches, e.g. 0.4,0.2,0.4.
    #[arg(long, value_name = "FIRST,MIDDLE,LAST")]
    position_weights: Option<String>,
    /// Time-decay half-life, in touches (a path file has no times).
    #[arg(long, value_name = "TOUCHES")]
    half_life: Option<f64>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Also print each Markov model's removal effects.
    #[arg(long)]
    removal_effects: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Table,
    Csv,
    Json,
}

pub fn run(args: AttributionArgs) -> anyhow::Result<()> {
    let models = if args.models.is_empty() {
        Model::STANDARD.to_vec()
    } else {
        args.models.iter().map(|name| name.parse::<Model>()).collect::<Result<Vec<_>, _>>()?
    };
    let mut options = Options::default();
    if !args.direct_channels.is_empty() {
        options.direct_channels = args.direct_channels.clone();
    }
    if let Some(weights) = &args.position_weights {
        options.position_weights = parse_weights(weights)?;
    }
    if let Some(half_life) = args.half_life {
        options.time_decay.half_life_touches = half_life;
    }
    let csv_options = PathCsvOptions {
        path_column: args.path_column.clone(),
        conversions_column: args.conversions_column.clone(),
        value_column: optional_column(&args.value_column),
        nulls_column: optional_column(&args.nulls_column),
        channel_separator: args.separator.clone(),
        delimiter: match args.delimiter {
            Some(c) if c.is_ascii() => Some(c as u8),
            Some(c) => anyhow::bail!("the delimiter must be an ASCII character, not {c:?}"),
            None => None,
        },
        ..PathCsvOptions::default()
    };
    let input: Box<dyn Read> = if args.paths.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(
            std::fs::File::open(&args.paths).with_context(|| format!("opening {}", args.paths.display()))?,
        )
    };
    let input = std::io::BufReader::with_capacity(1 << 20, input);
    let (read, results) = attribution::attribute_csv(input, &csv_options, &models, &options)?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    match args.format {
        Format::Table => {
            writeln!(
                out,
                "{} rows, {} distinct paths, {} channels ({} rows without outcome skipped)\n",
                read.rows,
                read.paths.len(),
                read.paths.channels().len(),
                read.skipped_rows
            )?;
            attribution::write_table(&results, &mut out)?;
        }
        Format::Csv => attribution::write_csv(&results, &mut out)?,
        Format::Json => serde_json::to_writer_pretty(&mut out, &results)?,
    }
    if args.removal_effects {
        for result in &results {
            if let Some(details) = &result.markov {
                writeln!(out, "\nRemoval effects ({})", result.model)?;
                attribution::write_removal_effects_csv(details, &mut out)?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

fn optional_column(name: &str) -> Option<String> {
    (!name.eq_ignore_ascii_case("none") && !name.is_empty()).then(|| name.to_owned())
}

fn parse_weights(text: &str) -> anyhow::Result<PositionWeights> {
    let parts: Vec<f64> = text
        .split(',')
        .map(|part| part.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .with_context(|| format!("position weights are three numbers, e.g. 0.4,0.2,0.4, not {text:?}"))?;
    let [first, middle, last] = parts[..] else {
        anyhow::bail!("position weights are three numbers (first, middle, last), not {text:?}");
    };
    Ok(PositionWeights { first, middle, last })
}
