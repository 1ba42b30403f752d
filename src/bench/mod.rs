//! `eventyay-bbb bench`: the service measured against its own baseline, on this machine, in
//! one run.
//!
//! Emulated BBB servers run in a child process (`eventyay-bbb sim`); the service runs in this
//! process on its own Tokio runtime, and the load generator (gRPC clients and the baselines'
//! direct BBB calls) on a second runtime whose threads are named, so that the service's CPU time
//! is the process's less the load generator's. Every scenario measures its baseline — the same
//! work sent straight to the same emulators — in the same run, and prints absolute figures,
//! ratios to the baseline, and bbblb's figures from peer-figures.md beside them.

mod burst;
mod emulators;
mod harness;
mod latency;
mod measure;
mod placement;
mod poll;
mod recordings;
mod reliability;
mod report;
mod sessions;
mod throughput;

use harness::LoadGenerator;
use report::{Report, Section};
use std::{error::Error, time::Duration};

/// Errors cross the two runtimes, so they must be `Send`.
type Fallible<T> = Result<T, Box<dyn Error + Send + Sync>>;

/// What a run measures, as `eventyay-bbb bench` was asked (see `cli::bench`).
#[derive(Debug, Clone)]
pub struct Plan {
    /// Empty: every scenario.
    pub only: Vec<Scenario>,
    /// The emulated BBB latencies every scenario runs at.
    pub latency: Vec<Duration>,
    /// The service's ensure TTLs the latency and throughput scenarios compare.
    pub ensure_ttl: Vec<Duration>,
    /// `postgres://…`, or a fresh SQLite file per service.
    pub database_url: Option<String>,
    pub quick: bool,
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// RoomUrl on a running meeting, one at a time, against a bare BBB create.
    Latency,
    /// RoomUrl at 32 and 64 concurrent clients: rate, CPU per RoomUrl, p99.
    Throughput,
    /// 1,000 concurrent first joins of one room.
    Burst,
    /// 200 new rooms over 10 servers, and over a 1:2:4 weighted fleet.
    Placement,
    /// One poll of 100 servers with 50 meetings each.
    Poll,
    /// ListRecordings over 10 servers with one hung.
    Recordings,
    /// One of 10 servers killed while new rooms keep arriving.
    Reliability,
    /// Rooms' new sessions placed by the load of the moment, and by their expected size.
    Sessions,
}

impl Scenario {
    const ALL: [Scenario; 8] = [
        Scenario::Latency,
        Scenario::Throughput,
        Scenario::Burst,
        Scenario::Placement,
        Scenario::Poll,
        Scenario::Recordings,
        Scenario::Reliability,
        Scenario::Sessions,
    ];

    fn name(self) -> &'static str {
        match self {
            Scenario::Latency => "latency",
            Scenario::Throughput => "throughput",
            Scenario::Burst => "burst",
            Scenario::Placement => "placement",
            Scenario::Poll => "poll",
            Scenario::Recordings => "recordings",
            Scenario::Reliability => "reliability",
            Scenario::Sessions => "sessions",
        }
    }
}

/// What every scenario shares.
struct Bench {
    quick: bool,
    database_url: Option<String>,
    ensure_ttls: Vec<Duration>,
    load: LoadGenerator,
}

pub async fn run(plan: Plan) -> Result<(), Box<dyn Error>> {
    run_all(plan).await.map_err(|err| err as Box<dyn Error>)
}

async fn run_all(args: Plan) -> Fallible<()> {
    if args.latency.is_empty() || args.ensure_ttl.is_empty() {
        return Err("--latency and --ensure-ttl need at least one value each".into());
    }
    let scenarios = if args.only.is_empty() {
        Scenario::ALL.to_vec()
    } else {
        args.only.clone()
    };
    let bench = Bench {
        quick: args.quick,
        database_url: args.database_url.clone(),
        ensure_ttls: args.ensure_ttl.clone(),
        load: LoadGenerator::new()?,
    };
    let mut sections: Vec<Section> = Vec::new();
    for scenario in scenarios {
        for &latency in &args.latency {
            eprintln!(
                "bench: {} at {} ms emulated BBB latency…",
                scenario.name(),
                latency.as_millis()
            );
            measure::reset_peak_rss();
            let mut found = match scenario {
                Scenario::Latency => latency::run(&bench, latency).await?,
                Scenario::Throughput => throughput::run(&bench, latency).await?,
                Scenario::Burst => burst::run(&bench, latency).await?,
                Scenario::Placement => placement::run(&bench, latency).await?,
                Scenario::Poll => poll::run(&bench, latency).await?,
                Scenario::Recordings => recordings::run(&bench, latency).await?,
                Scenario::Reliability => reliability::run(&bench, latency).await?,
                Scenario::Sessions => sessions::run(&bench, latency).await?,
            };
            let peak = measure::peak_rss_mib();
            for section in &mut found {
                section.peak_rss_mib = peak;
            }
            sections.extend(found);
        }
    }
    let report = Report {
        machine: measure::machine(),
        database: if bench.database_url.is_some() {
            "PostgreSQL (--database-url)"
        } else {
            "SQLite (a temporary file per service)"
        },
        quick: bench.quick,
        notes: vec![
            "Emulated BBB servers run in a child process; their CPU and memory are not counted."
                .to_owned(),
            "service CPU = this process's CPU time less the load generator's threads (gRPC \
             clients, baseline BBB calls): the service with its database driver and BBB client."
                .to_owned(),
            "Peak RSS = VmHWM of this process (service + load generator), reset per section."
                .to_owned(),
            "bbblb figures: peer-figures.md (2-core machine of this kind, 10 fake BBB servers, \
             no added latency); compare them with the 0 ms rows."
                .to_owned(),
        ],
        peak_rss_mib: sections.iter().map(|s| s.peak_rss_mib).fold(0.0, f64::max),
        sections,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.text());
    }
    Ok(())
}
