//! `eventyay-bbb bench`: the service measured against its own baseline on this machine (the
//! scenarios live in `bench`).

use crate::{
    bench::{self, Plan, Scenario},
    config::parse_duration,
};
use std::{error::Error, time::Duration};

/// Measure the service (latency, throughput, bursts, placement, polling, recordings, failover).
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Scenarios to run, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    only: Vec<Scenario>,

    /// Emulated BBB latencies to run every scenario at, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0ms,20ms", value_parser = parse_duration)]
    latency: Vec<Duration>,

    /// The service's ensure TTLs for `latency` and `throughput`, comma-separated: 2s is the
    /// default (a fresh create is trusted that long), 0ms makes every RoomUrl ask BBB.
    #[arg(long, value_delimiter = ',', default_value = "2s,0ms", value_parser = parse_duration)]
    ensure_ttl: Vec<Duration>,

    /// The service's database: a `postgres://…` URL (a database that may be written to), or
    /// by default a fresh SQLite file per service started.
    #[arg(long, env = "EVENTYAY_BBB_BENCH_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,

    /// Short runs (a smoke test, well under a minute): the figures are rough.
    #[arg(long)]
    quick: bool,

    /// Print the report as JSON instead of tables.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: BenchArgs) -> Result<(), Box<dyn Error>> {
    bench::run(Plan {
        only: args.only,
        latency: args.latency,
        ensure_ttl: args.ensure_ttl,
        database_url: args.database_url,
        quick: args.quick,
        json: args.json,
    })
    .await
}
