//! The commands of `eventyay-bbb`, one file each; `main` only parses and hands over here.

mod bench;
mod check;
mod dev;
mod import;
mod migrate;
mod plan;
mod serve;
mod servers;
mod sim;

use crate::telemetry;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// eventyay-bbb: BigBlueButton join URLs, recordings and load balancing for eventyay, over gRPC.
#[derive(Parser)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the gRPC API (configured by EVENTYAY_BBB_* variables, flags or --config).
    Serve(Box<crate::config::ServeArgs>),
    /// Try it out: the service plus emulated BBB servers and an in-memory SQLite database.
    Dev(dev::DevArgs),
    /// Apply pending database migrations and exit (for a deployment's migration job).
    Migrate {
        #[arg(long, env = "EVENTYAY_BBB_DATABASE_URL", hide_env_values = true,
              default_value = crate::config::DEFAULT_DATABASE_URL)]
        database_url: String,
    },
    /// Run an emulated BigBlueButton server (or several) on 127.0.0.1, until stopped.
    Sim(sim::SimArgs),
    /// Take over what the Python module knows, from its JSON export (see the README).
    Import(import::ImportArgs),
    /// Forecast a schedule of sessions on the fleet (the forecast PlanSchedule answers): each
    /// server's planned load per slot, and the slots it cannot hold (exit non-zero then).
    Plan(plan::PlanArgs),
    /// Operate the fleet of a running service: list, add, cordon, drain, move rooms, explain.
    Servers(servers::ServersArgs),
    /// Check serve's settings, the database and every BBB server of the servers file (reachable,
    /// secret right, checksum accepted); exit non-zero if anything failed.
    Check(Box<crate::config::ServeArgs>),
    /// Measure the service against its own baseline on this machine: emulated BBB servers in a
    /// child process, the service in this one (`--only NAME`, `--quick`, `--json`).
    Bench(bench::BenchArgs),
}

/// Runs the command line: sets up telemetry, runs the command, flushes telemetry, and says
/// what failed.
pub async fn run(cli: Cli) -> ExitCode {
    let telemetry = match telemetry::init() {
        Ok(telemetry) => telemetry,
        Err(err) => {
            eprintln!("error: telemetry: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Serve(args) => serve::run(*args, &telemetry).await,
        Command::Dev(args) => dev::run(args, &telemetry).await,
        Command::Migrate { database_url } => migrate::run(&database_url).await,
        Command::Sim(args) => sim::run(args).await,
        Command::Servers(args) => servers::run(args).await,
        Command::Import(args) => import::run(args).await,
        Command::Plan(args) => plan::run(args).await,
        Command::Check(args) => check::run(&args).await.map_err(Into::into),
        Command::Bench(args) => bench::run(args).await,
    };
    // Whatever happened, what telemetry buffered goes out before the process ends.
    telemetry.shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
