//! The `passerelle` binary: one executable for the gateway, migrations, the schema and
//! operator tasks.

mod attribution;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use passerelle::{Application, Services};
use platform::{Settings, settings::LogFormat};
use std::{io::BufRead, net::SocketAddr, path::PathBuf};

/// Passerelle: the cross-channel marketing backend for agencies.
///
/// Configuration is layered: built-in defaults, then `passerelle.toml` (or --config), then
/// PASSERELLE_* environment variables (and DATABASE_URL, REDIS_URL), then these flags. With
/// nothing set it uses SQLite in ./data and an in-process cache.
#[derive(Parser)]
#[command(name = "passerelle", version, propagate_version = true)]
struct Cli {
    /// A TOML configuration file (default: ./passerelle.toml when present).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Where the SQLite database and generated keys live.
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Log format.
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormatArg>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormatArg {
    Json,
    Pretty,
}

#[derive(Subcommand)]
enum Command {
    /// Run the GraphQL gateway (migrating first). The default command.
    Serve {
        /// Address to listen on (PASSERELLE_LISTEN).
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
    },
    /// Run only the background workers (ingestion, segments, the journey executor, delivery),
    /// for deployments that scale them apart from the gateway, with /livez, /readyz and
    /// /metrics on the listen address (PASSERELLE_LISTEN). Stops on SIGINT/SIGTERM.
    Worker,
    /// Apply database migrations as the owner role and exit.
    Migrate,
    /// Print the GraphQL schema (SDL) the frontend contract holds.
    Schema {
        /// Write to this file instead of standard output.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Run attribution models on an exported path file (one row per path: `a > b > c`,
    /// conversions, value, non-converting count) and print them side by side. Offline: needs
    /// no database.
    Attribution(attribution::AttributionArgs),
    /// Onboard an agency: create it and its owner. Run again for each new agency.
    Bootstrap {
        /// The agency's name.
        #[arg(long)]
        agency: String,
        /// The owner's email (their login).
        #[arg(long)]
        email: String,
        /// Read the owner's password from the first line of standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Fill the database with a demo agency: two client workspaces, tens of thousands of
    /// people across devices and channels, segments, a running journey, spend. Prints how to
    /// sign in and three queries worth trying.
    Demo(passerelle::demo::DemoArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Attribution(args)) = cli.command {
        return attribution::run(args);
    }
    if let Some(Command::Schema { output }) = &cli.command {
        let sdl = gateway::sdl();
        return match output {
            Some(path) => std::fs::write(path, sdl).with_context(|| format!("writing {}", path.display())),
            None => {
                print!("{sdl}");
                Ok(())
            }
        };
    }
    let mut settings = Settings::load(cli.config.as_deref())?;
    if let Some(dir) = cli.data_dir {
        settings.data_dir = dir;
    }
    if let Some(format) = cli.log_format {
        settings.log_format = match format {
            LogFormatArg::Json => LogFormat::Json,
            LogFormatArg::Pretty => LogFormat::Pretty,
        };
    }
    // Declared before the runtime, so it outlives it: dropped last, it flushes the spans the
    // runtime's last tasks produced.
    let _telemetry = platform::telemetry::init(settings.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run(cli.command, settings))
}

async fn run(command: Option<Command>, mut settings: Settings) -> anyhow::Result<()> {
    match command.unwrap_or(Command::Serve { listen: None }) {
        Command::Serve { listen } => {
            if let Some(listen) = listen {
                settings.listen = listen;
            }
            let graphiql = settings.graphiql;
            let app = Application::build(settings).await?;
            let addr = app.local_addr();
            tracing::info!(%addr, "passerelle is listening");
            if graphiql {
                println!("Passerelle is running: GraphiQL at http://{addr}/graphql");
            } else {
                println!("Passerelle is running: GraphQL at http://{addr}/graphql");
            }
            app.run_until_stopped().await?;
        }
        Command::Worker => {
            let worker = passerelle::WorkerProcess::build(settings).await?;
            let addr = worker.local_addr();
            tracing::info!(%addr, "passerelle workers are running");
            println!("Passerelle workers are running: health and metrics at http://{addr}/metrics");
            worker.run_until(shutdown_signal()).await?;
        }
        Command::Migrate => {
            passerelle::migrate(&settings).await?;
            println!("migrations applied");
        }
        Command::Bootstrap { agency, email, password_stdin: _ } => {
            let mut password = String::new();
            std::io::stdin().lock().read_line(&mut password).context("reading the password from stdin")?;
            let password = password.trim_end_matches(['\r', '\n']);
            let services = Services::connect(&settings).await?;
            let created = services
                .tenancy
                .bootstrap_agency(&agency, &email, password)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("agency {} created; owner {} can now log in", created.agency_id, created.owner_id);
        }
        Command::Demo(args) => passerelle::demo::run(args, &settings).await?,
        Command::Schema { .. } | Command::Attribution(_) => {}
    }
    Ok(())
}

/// Resolves on SIGINT or SIGTERM (what Kubernetes sends before killing a pod).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
