use clap::{Parser, Subcommand};
use eventyay_bbb::{
    app::{Service, shutdown_signal},
    config::{ServeArgs, Settings},
    domain::Server,
    secret::{Secret, random_alphanumeric},
    sim::{self, SimConfig, SimServer},
    store::Store,
    telemetry::{self, Telemetry},
};
use std::{error::Error, process::ExitCode};

/// eventyay-bbb: BigBlueButton join URLs, recordings and load balancing for eventyay, over gRPC.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the gRPC API (configured by EVENTYAY_BBB_* variables, flags or --config).
    Serve(Box<ServeArgs>),
    /// Try it out: the service plus emulated BBB servers and an in-memory SQLite database.
    Dev(DevArgs),
    /// Apply pending database migrations and exit (for a deployment's migration job).
    Migrate {
        #[arg(long, env = "EVENTYAY_BBB_DATABASE_URL", hide_env_values = true,
              default_value = eventyay_bbb::config::DEFAULT_DATABASE_URL)]
        database_url: String,
    },
    /// Run an emulated BigBlueButton server (or several) on 127.0.0.1, until stopped.
    Sim(sim::SimArgs),
    /// Take over what the Python module knows, from its JSON export (see the README).
    Import(eventyay_bbb::import::ImportArgs),
    /// Operate the fleet of a running service: list, add, cordon, drain, move rooms, explain.
    Servers(eventyay_bbb::servers_cli::ServersArgs),
    /// Check serve's settings, the database and every BBB server of the servers file (reachable,
    /// secret right, checksum accepted); exit non-zero if anything failed.
    Check(Box<ServeArgs>),
    /// Measure the service against its own baseline on this machine: emulated BBB servers in a
    /// child process, the service in this one (`--only NAME`, `--quick`, `--json`).
    Bench(eventyay_bbb::bench::BenchArgs),
}

#[derive(clap::Args)]
struct DevArgs {
    /// gRPC listen address.
    #[arg(long, env = "EVENTYAY_BBB_LISTEN", default_value = "127.0.0.1:50051")]
    listen: std::net::SocketAddr,
    /// How many emulated BBB servers to run.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=20))]
    servers: u8,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let telemetry = match telemetry::init() {
        Ok(telemetry) => telemetry,
        Err(err) => {
            eprintln!("error: telemetry: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Serve(args) => serve(*args, &telemetry).await,
        Command::Dev(args) => dev(args, &telemetry).await,
        Command::Migrate { database_url } => migrate(&database_url).await,
        Command::Sim(args) => sim::run(args).await,
        Command::Servers(args) => eventyay_bbb::servers_cli::run(args).await,
        Command::Import(args) => eventyay_bbb::import::run(args).await,
        Command::Check(args) => eventyay_bbb::check::run(&args).await.map_err(Into::into),
        Command::Bench(args) => eventyay_bbb::bench::run(args).await,
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

async fn serve(args: ServeArgs, telemetry: &Telemetry) -> Result<(), Box<dyn Error>> {
    let settings = args.load()?;
    serve_metrics(telemetry).await?;
    run_until_signal(settings).await
}

/// The Prometheus endpoint, when `EVENTYAY_BBB_METRICS_LISTEN` names an address.
async fn serve_metrics(telemetry: &Telemetry) -> Result<(), Box<dyn Error>> {
    if let Ok(listen) = std::env::var("EVENTYAY_BBB_METRICS_LISTEN") {
        let addr = listen
            .parse()
            .map_err(|_| format!("EVENTYAY_BBB_METRICS_LISTEN: {listen:?} is not an address"))?;
        telemetry.serve_metrics(addr).await?;
    }
    Ok(())
}

async fn run_until_signal(settings: Settings) -> Result<(), Box<dyn Error>> {
    let service = Service::start(settings).await?;
    shutdown_signal().await;
    tracing::info!("stopping: finishing running calls");
    service.stop().await;
    Ok(())
}

async fn migrate(database_url: &str) -> Result<(), Box<dyn Error>> {
    Store::connect(database_url).await?.migrate().await?;
    tracing::info!("migrations applied");
    Ok(())
}

async fn dev(args: DevArgs, telemetry: &Telemetry) -> Result<(), Box<dyn Error>> {
    serve_metrics(telemetry).await?;
    let mut sims = Vec::new();
    let mut servers = Vec::new();
    for n in 1..=args.servers {
        let secret = random_alphanumeric(40);
        let sim = SimServer::start(SimConfig::new(secret.clone())).await?;
        servers.push(Server::new(
            format!("sim-{n}"),
            sim.base_url(),
            Secret::new(secret),
        ));
        sims.push(sim);
    }
    let token = format!("dev-{}", random_alphanumeric(32));
    let settings = ServeArgs {
        listen: Some(args.listen.to_string()),
        database_url: Some("sqlite::memory:".into()),
        api_token: Some(token.clone()),
        ..ServeArgs::default()
    }
    .load()?;
    let settings = Settings {
        servers: Some(servers),
        ..settings
    };
    let service = Service::start(settings).await?;
    let addr = service.addr();
    println!(
        "eventyay-bbb dev: gRPC on {addr}, {} emulated BBB server(s):",
        sims.len()
    );
    for (n, sim) in sims.iter().enumerate() {
        println!("  sim-{}: {}api/", n + 1, sim.base_url());
    }
    println!("API token (dev only): {token}");
    println!("Try it:");
    println!(
        "  grpcurl -plaintext -H 'authorization: Bearer {token}' -d '{{\"event_id\":\"1\",\"organizer_id\":\"1\",\"room_id\":\"main\",\"room_name\":\"Main stage\",\"user\":{{\"id\":\"u1\",\"display_name\":\"Ada Lovelace\"}},\"permissions\":[\"room:bbb.join\",\"room:bbb.moderate\"]}}' {addr} eventyay.bbb.v1.BbbService/RoomUrl"
    );
    println!("Stop with Ctrl-C.");
    shutdown_signal().await;
    service.stop().await;
    for sim in sims {
        sim.shutdown().await;
    }
    Ok(())
}
