//! `eventyay-bbb check`: the operator's first question about a deployment — is it configured
//! right, does the database answer, does every BBB server take our calls — answered one line per
//! check. It loads the settings exactly as `serve` does, so it runs in the pod unchanged
//! (`kubectl exec … -- eventyay-bbb check`). The report never shows a secret, a token, the
//! database URL or a signed BBB URL.

use crate::{
    bbb::{BbbClient, BbbError, ChecksumAlgorithm, Endpoint, Tls},
    config::{ServeArgs, Settings},
    domain::{Server, ServerState},
    store::Store,
    tls::Identity,
};
use std::time::Duration;

/// At least one check failed; the report above says which.
#[derive(Debug, thiserror::Error)]
#[error("{failed} of {total} checks failed")]
pub struct Failed {
    pub failed: usize,
    pub total: usize,
}

/// How long the database may take to answer a ping once connected.
const DATABASE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    Fail,
    /// A failure that does not count: the server is disabled, so nothing depends on it.
    Warn,
}

#[derive(Default)]
struct Report {
    total: usize,
    failed: usize,
}

impl Report {
    fn line(&mut self, status: Status, subject: &str, detail: &str) {
        let label = match status {
            Status::Ok => "OK",
            Status::Fail => "FAIL",
            Status::Warn => "WARN",
        };
        println!("{label:<5} {subject:<24} {detail}");
        self.total += 1;
        if status == Status::Fail {
            self.failed += 1;
        }
    }

    fn finish(self) -> Result<(), Failed> {
        if self.failed == 0 {
            println!("all {} checks passed", self.total);
            Ok(())
        } else {
            Err(Failed {
                failed: self.failed,
                total: self.total,
            })
        }
    }
}

/// Runs every check, printing each line as it is known, and fails if any check failed.
pub async fn run(args: &ServeArgs) -> Result<(), Failed> {
    let mut report = Report::default();
    let settings = match args.load() {
        Ok(settings) => settings,
        Err(err) => {
            report.line(Status::Fail, "configuration", &err.to_string());
            return report.finish();
        }
    };
    report.line(Status::Ok, "configuration", &describe(&settings));
    if let Some(files) = &settings.tls {
        match Identity::from_files(files) {
            Ok(_) => report.line(
                Status::Ok,
                "TLS certificate",
                &format!("{} with its key", files.cert.display()),
            ),
            Err(err) => report.line(Status::Fail, "TLS certificate", &err.to_string()),
        }
    }

    let (status, detail) = database(&settings).await;
    report.line(status, "database", &detail);

    let bbb = BbbClient::new(settings.bbb_timeouts);
    // Servers are asked all at once, so a fleet with dead servers costs one timeout, not one
    // per server; lines still come in the file's order.
    let checks: Vec<_> = settings
        .servers
        .iter()
        .flatten()
        .map(|server| {
            let (bbb, server) = (bbb.clone(), server.clone());
            tokio::spawn(async move {
                let outcome = check_server(&bbb, &server).await;
                (server, outcome)
            })
        })
        .collect();
    for check in checks {
        let (server, outcome) = check.await.expect("a server check does not panic");
        let subject = format!("server {}", server.id);
        match outcome {
            Ok(detail) => report.line(Status::Ok, &subject, &detail),
            Err(detail) if server.state == ServerState::Disabled => report.line(
                Status::Warn,
                &subject,
                &format!("{detail} (disabled, so not counted)"),
            ),
            Err(detail) => report.line(Status::Fail, &subject, &detail),
        }
    }
    report.finish()
}

fn describe(settings: &Settings) -> String {
    let servers = match &settings.servers {
        Some(servers) => format!("{} server(s) in the servers file", servers.len()),
        None => "no servers file, so no BBB server is checked".into(),
    };
    format!(
        "listen {}, {} API token(s), {} admin token(s), {servers}",
        settings.listen,
        settings.api_tokens.len(),
        settings.admin_tokens.len()
    )
}

/// Connects and pings. Whether migrations are pending is not asked: the store offers no way to
/// tell without applying them.
async fn database(settings: &Settings) -> (Status, String) {
    let url = settings.database_url.expose();
    // The scheme alone: the rest of the URL may hold a password.
    let backend = url.split(':').next().unwrap_or_default();
    let store = match Store::connect(url).await {
        Ok(store) => store,
        Err(err) => {
            return (
                Status::Fail,
                format!("{backend}: cannot connect: {}", err.0),
            );
        }
    };
    if store.ping(DATABASE_TIMEOUT).await {
        (Status::Ok, format!("{backend}: reachable"))
    } else {
        (
            Status::Fail,
            format!("{backend}: connected, but no answer within {DATABASE_TIMEOUT:?}"),
        )
    }
}

/// One signed getMeetings call proves the server reachable, the secret right and the checksum
/// algorithm accepted. A checksumError cannot tell a wrong secret from a refused algorithm, so
/// the other algorithms are tried: if one passes, the secret is right.
async fn check_server(bbb: &BbbClient, server: &Server) -> Result<String, String> {
    // Built as the fleet builds it, TLS settings included, so the check sees what serving will.
    let endpoint_with = |algorithm| {
        Endpoint::new(&server.url, server.secret.clone(), algorithm)
            .map(|endpoint| {
                endpoint.with_tls(Tls {
                    ca_bundle: (!server.ca_bundle.is_empty())
                        .then(|| server.ca_bundle.clone().into()),
                    insecure: server.insecure_tls,
                })
            })
            .map_err(|err| format!("url: {err}"))
    };
    let endpoint = endpoint_with(server.checksum)?;
    let at = endpoint.api_base();
    match bbb.get_meetings(&endpoint).await {
        Ok(meetings) => Ok(format!(
            "{at}: reachable, secret right, {} accepted, {} meeting(s) running",
            server.checksum,
            meetings.len()
        )),
        Err(err) if err.is_checksum_refused() => {
            let mut accepted = Vec::new();
            for algorithm in ChecksumAlgorithm::ALL {
                if algorithm != server.checksum
                    && bbb.get_meetings(&endpoint_with(algorithm)?).await.is_ok()
                {
                    accepted.push(algorithm.name());
                }
            }
            Err(if accepted.is_empty() {
                format!(
                    "{at}: wrong secret (checksumError with {} and with every other algorithm)",
                    server.checksum
                )
            } else {
                format!(
                    "{at}: secret right, but {} is not accepted; the server takes {}",
                    server.checksum,
                    accepted.join(", ")
                )
            })
        }
        Err(err @ (BbbError::Unreachable(_) | BbbError::Timeout(_))) => Err(format!("{at}: {err}")),
        Err(err @ (BbbError::HttpStatus(_) | BbbError::BadXml(_) | BbbError::NotBbb(_))) => {
            Err(format!("{at}: {err}; is this the server's BBB URL?"))
        }
        Err(err) => Err(format!("{at}: getMeetings failed: {err}")),
    }
}
