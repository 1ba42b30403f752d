//! `eventyay-bbb dev`: the service with emulated BBB servers and an in-memory SQLite, for a
//! first look.

use super::serve::serve_metrics;
use crate::{
    app::{Service, shutdown_signal},
    config::{ServeArgs, Settings},
    domain::Server,
    secret::{Secret, random_alphanumeric},
    sim::{SimConfig, SimServer},
    telemetry::Telemetry,
};
use std::error::Error;

#[derive(clap::Args)]
pub struct DevArgs {
    /// gRPC listen address.
    #[arg(long, env = "EVENTYAY_BBB_LISTEN", default_value = "127.0.0.1:50051")]
    listen: std::net::SocketAddr,
    /// How many emulated BBB servers to run.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=20))]
    servers: u8,
}

pub async fn run(args: DevArgs, telemetry: &Telemetry) -> Result<(), Box<dyn Error>> {
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
