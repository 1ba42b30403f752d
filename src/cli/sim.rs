//! `eventyay-bbb sim`: emulated BBB servers from the command line, until SIGINT or SIGTERM.

use crate::sim::{SimConfig, SimServer};
use crate::{
    bbb::checksum::ChecksumAlgorithm,
    config::parse_duration,
    secret::Secret,
    tls::{Identity, TlsFiles},
};
use std::{error::Error, net::SocketAddr, path::PathBuf, time::Duration};

/// Run emulated BigBlueButton servers on 127.0.0.1 (one per secret) until stopped.
#[derive(Debug, clap::Args)]
pub struct SimArgs {
    /// Address of the first server (loopback only); the next servers take the following ports.
    /// Port 0 gives every server a free port of its own.
    #[arg(long, env = "EVENTYAY_BBB_SIM_LISTEN", default_value = "127.0.0.1:0")]
    listen: SocketAddr,

    /// Shared secret of each server, comma-separated: one emulated server per secret.
    #[arg(
        long,
        env = "EVENTYAY_BBB_SIM_SECRET",
        hide_env_values = true,
        required = true,
        value_delimiter = ',',
        value_parser = parse_secret
    )]
    secret: Vec<Secret>,

    /// Checksum algorithms the servers accept.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "sha1,sha256,sha384,sha512"
    )]
    checksums: Vec<ChecksumAlgorithm>,

    /// How long an ended recorded meeting stays `processing` before it is `published`
    /// (e.g. 500ms, 5s, 1m).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    publish_delay: Duration,

    /// How long an ended meeting lingers before a create makes a new one (e.g. 5s).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    ended_retention: Duration,

    /// Delay added to every API answer (e.g. 20ms).
    #[arg(long, default_value = "0ms", value_parser = parse_duration)]
    latency: Duration,

    /// Serve HTTPS with this PEM certificate chain (its names must include 127.0.0.1); every
    /// server uses it.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

fn parse_secret(value: &str) -> Result<Secret, String> {
    // An empty secret would turn BBB's checksum check off; an emulator must not teach that.
    if value.is_empty() {
        return Err("a secret must not be empty".to_owned());
    }
    Ok(Secret::new(value))
}

pub async fn run(args: SimArgs) -> Result<(), Box<dyn Error>> {
    let tls = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => Some(Identity::from_files(&TlsFiles { cert, key })?),
        _ => None,
    };
    let total = args.secret.len();
    let algorithms = args
        .checksums
        .iter()
        .map(|a| a.name())
        .collect::<Vec<_>>()
        .join(",");
    let mut servers = Vec::with_capacity(total);
    for (index, secret) in args.secret.into_iter().enumerate() {
        let mut listen = args.listen;
        if listen.port() != 0 {
            let port = u16::try_from(usize::from(listen.port()) + index)
                .map_err(|_| format!("server {} would need a port above 65535", index + 1))?;
            listen.set_port(port);
        }
        let config = SimConfig {
            listen,
            secret,
            checksums: args.checksums.clone(),
            publish_delay: args.publish_delay,
            latency: args.latency,
            ended_retention: args.ended_retention,
            tls: tls.clone(),
        };
        let server = SimServer::start(config).await.map_err(|err| {
            format!(
                "cannot start emulated BBB server {} on {listen}: {err}",
                index + 1
            )
        })?;
        println!(
            "sim {}/{total}: BBB API at {}api/ (checksums {algorithms})",
            index + 1,
            server.base_url()
        );
        servers.push(server);
    }
    crate::app::shutdown_signal().await;
    for server in servers {
        server.shutdown().await;
    }
    Ok(())
}
