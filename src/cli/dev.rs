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
    tls::{Identity, ThrowawayCa},
};
use std::{error::Error, path::PathBuf};

#[derive(clap::Args)]
pub struct DevArgs {
    /// gRPC listen address.
    #[arg(long, env = "EVENTYAY_BBB_LISTEN", default_value = "127.0.0.1:50051")]
    listen: std::net::SocketAddr,
    /// How many emulated BBB servers to run.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=20))]
    servers: u8,
    /// Serve gRPC and the emulated BBB servers over TLS, with certificates from a CA made for
    /// this run only (its certificate's file is printed, for clients to trust).
    #[arg(long)]
    tls: bool,
}

/// The throwaway CA's files for one run, in a private temporary directory (mode 0700) that
/// goes when the command ends.
struct DevTls {
    dir: tempfile::TempDir,
    identity: Identity,
}

impl DevTls {
    fn new() -> Result<Self, Box<dyn Error>> {
        let ca = ThrowawayCa::new("eventyay-bbb dev CA (throwaway)")?;
        let server = ca.issue(&["127.0.0.1", "localhost"])?;
        let dir = tempfile::Builder::new()
            .prefix("eventyay-bbb-dev-tls-")
            .tempdir()?;
        std::fs::write(dir.path().join("ca.pem"), ca.certificate_pem())?;
        std::fs::write(dir.path().join("server.pem"), &server.cert_pem)?;
        std::fs::write(dir.path().join("server.key"), server.key_pem.expose())?;
        Ok(Self {
            identity: server.identity()?,
            dir,
        })
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

pub async fn run(args: DevArgs, telemetry: &Telemetry) -> Result<(), Box<dyn Error>> {
    serve_metrics(telemetry).await?;
    let tls = if args.tls { Some(DevTls::new()?) } else { None };
    let mut sims = Vec::new();
    let mut servers = Vec::new();
    for n in 1..=args.servers {
        let secret = random_alphanumeric(40);
        let sim = SimServer::start(SimConfig {
            tls: tls.as_ref().map(|tls| tls.identity.clone()),
            ..SimConfig::new(secret.clone())
        })
        .await?;
        servers.push(Server {
            ca_bundle: tls
                .as_ref()
                .map(|tls| tls.file("ca.pem").display().to_string())
                .unwrap_or_default(),
            ..Server::new(format!("sim-{n}"), sim.base_url(), Secret::new(secret))
        });
        sims.push(sim);
    }
    let token = format!("dev-{}", random_alphanumeric(32));
    // The emulated servers call back on loopback when a meeting ends, as BBB servers would.
    let callback_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let settings = ServeArgs {
        listen: Some(args.listen.to_string()),
        database_url: Some("sqlite::memory:".into()),
        api_token: Some(token.clone()),
        tls_cert: tls.as_ref().map(|tls| tls.file("server.pem")),
        tls_key: tls.as_ref().map(|tls| tls.file("server.key")),
        callback_listen: Some(format!("127.0.0.1:{callback_port}")),
        callback_url: Some(format!("http://127.0.0.1:{callback_port}")),
        ..ServeArgs::default()
    }
    .load()?;
    let settings = Settings {
        servers: Some(servers),
        ..settings
    };
    let service = Service::start(settings).await?;
    let addr = service.addr();
    let scheme = if tls.is_some() {
        "gRPC over TLS"
    } else {
        "gRPC"
    };
    println!(
        "eventyay-bbb dev: {scheme} on {addr}, {} emulated BBB server(s):",
        sims.len()
    );
    for (n, sim) in sims.iter().enumerate() {
        println!("  sim-{}: {}api/", n + 1, sim.base_url());
    }
    if let Some(callback) = service.callback_addr() {
        println!("  end callbacks from them: http://{callback}/");
    }
    println!("API token (dev only): {token}");
    let transport = match &tls {
        Some(tls) => {
            let ca = tls.file("ca.pem");
            println!(
                "CA certificate (this run only; trust it to connect): {}",
                ca.display()
            );
            format!("-cacert {}", ca.display())
        }
        None => "-plaintext".to_owned(),
    };
    println!("Try it:");
    println!(
        "  grpcurl {transport} -H 'authorization: Bearer {token}' -d '{{\"event_id\":\"1\",\"organizer_id\":\"1\",\"room_id\":\"main\",\"room_name\":\"Main stage\",\"user\":{{\"id\":\"u1\",\"display_name\":\"Ada Lovelace\"}},\"permissions\":[\"room:bbb.join\",\"room:bbb.moderate\"]}}' {addr} eventyay.bbb.v1.BbbService/RoomUrl"
    );
    println!("Stop with Ctrl-C.");
    shutdown_signal().await;
    service.stop().await;
    for sim in sims {
        sim.shutdown().await;
    }
    Ok(())
}
