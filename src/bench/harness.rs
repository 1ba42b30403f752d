//! The pieces every scenario assembles: the service in this process (configured as an operator
//! would, with a servers file), the load generator's runtime, and gRPC requests.

use super::{Bench, Fallible, emulators::Emulator, measure::CLIENT_THREAD};
use crate::{
    app::Service,
    config::ServeArgs,
    proto::{self, bbb_service_client::BbbServiceClient, fleet_service_client::FleetServiceClient},
    store::Store,
};
use std::{
    fmt::Write,
    future::Future,
    net::SocketAddr,
    time::{Duration, Instant},
};
use tokio::runtime::Runtime;
use tonic::{Request, transport::Channel};

const API_TOKEN: &str = "bench-api-token-0123456789abcdef";
const ADMIN_TOKEN: &str = "bench-admin-token-0123456789abcdef";

/// The load generator's own runtime. Its worker threads carry [`CLIENT_THREAD`] as their name,
/// which is how their CPU time is subtracted from the service's.
pub struct LoadGenerator {
    runtime: Option<Runtime>,
}

impl LoadGenerator {
    pub fn new() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(CLIENT_THREAD)
            .enable_all()
            .build()?;
        Ok(Self {
            runtime: Some(runtime),
        })
    }

    /// Runs `work` on the load generator's threads. Connections opened inside it (gRPC
    /// channels, BBB clients) are driven by those threads too.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl Future<Output = Fallible<T>> + Send + 'static,
    ) -> Fallible<T> {
        let runtime = self.runtime.as_ref().ok_or("the load generator stopped")?;
        runtime.spawn(work).await?
    }
}

impl Drop for LoadGenerator {
    fn drop(&mut self) {
        // A runtime may not be dropped (blocking) inside another runtime's thread.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The database a scenario's service or fleet uses: `--database-url`, or a fresh SQLite file
/// removed with this value.
pub struct Database {
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Database {
    pub fn new(bench: &Bench) -> Fallible<Database> {
        let dir = tempfile::Builder::new()
            .prefix("eventyay-bbb-bench-")
            .tempdir()?;
        let url = match &bench.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}?mode=rwc", dir.path().join("bbb.db").display()),
        };
        Ok(Database { url, _dir: dir })
    }

    /// Another handle on `url`, for a second replica of a service on the same database.
    fn shared(url: &str) -> Fallible<Database> {
        let dir = tempfile::Builder::new()
            .prefix("eventyay-bbb-bench-")
            .tempdir()?;
        Ok(Database {
            url: url.to_owned(),
            _dir: dir,
        })
    }
}

/// How often the service polls the emulators: bbblb was measured with a 2 s poll interval; the
/// same here.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// How a scenario wants the service set up; the rest is `serve`'s defaults.
pub struct Options {
    pub ensure_ttl: Duration,
    pub recordings_timeout: Duration,
    /// Per server, in the order of the emulators; empty: all 1.
    pub weights: Vec<f64>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            ensure_ttl: Duration::from_secs(2),
            recordings_timeout: Duration::from_secs(10),
            weights: Vec::new(),
        }
    }
}

/// The service on 127.0.0.1, in this process, on the caller's runtime.
pub struct BenchService {
    service: Service,
    pub addr: SocketAddr,
    database: Database,
}

impl BenchService {
    pub async fn start(
        bench: &Bench,
        servers: &[Emulator],
        options: &Options,
    ) -> Fallible<BenchService> {
        Self::start_on(Database::new(bench)?, servers, options).await
    }

    /// A second replica of `self`: another service on the same database and servers, as an
    /// operator runs two behind one address. (On SQLite it shares the first one's file.)
    pub async fn replica(&self, servers: &[Emulator], options: &Options) -> Fallible<BenchService> {
        Self::start_on(Database::shared(&self.database.url)?, servers, options).await
    }

    async fn start_on(
        database: Database,
        servers: &[Emulator],
        options: &Options,
    ) -> Fallible<BenchService> {
        let dir = tempfile::Builder::new()
            .prefix("eventyay-bbb-bench-")
            .tempdir()?;
        let servers_file = dir.path().join("servers.toml");
        let mut toml = String::new();
        for (i, server) in servers.iter().enumerate() {
            let weight = options.weights.get(i).copied().unwrap_or(1.0);
            let _ = write!(
                toml,
                "[[servers]]\nid = \"{}\"\nurl = \"{}\"\nsecret = \"{}\"\nweight = {weight:?}\n\n",
                server.id, server.base_url, server.secret
            );
        }
        std::fs::write(&servers_file, toml)?;
        let settings = ServeArgs {
            listen: Some("127.0.0.1:0".into()),
            database_url: Some(database.url.clone()),
            api_token: Some(API_TOKEN.into()),
            admin_token: Some(ADMIN_TOKEN.into()),
            servers_file: Some(servers_file),
            ensure_ttl: Some(format!("{}ms", options.ensure_ttl.as_millis())),
            recordings_timeout: Some(format!("{}ms", options.recordings_timeout.as_millis())),
            poll_interval: Some(format!("{}ms", POLL_INTERVAL.as_millis())),
            ..ServeArgs::default()
        }
        .load()?;
        // The settings are read: the servers file may go.
        drop(dir);
        let service = Service::start(settings).await?;
        Ok(BenchService {
            addr: service.addr(),
            service,
            database,
        })
    }

    /// A second view of the service's database, to read what it stored.
    pub async fn store(&self) -> Fallible<Store> {
        Ok(Store::connect(&self.database.url).await?)
    }

    pub async fn stop(self) {
        self.service.stop().await;
    }
}

/// A channel of its own: one HTTP/2 connection, as one backend worker process holds.
pub async fn channel(addr: SocketAddr) -> Fallible<Channel> {
    Ok(Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?)
}

pub async fn client(addr: SocketAddr) -> Fallible<BbbServiceClient<Channel>> {
    Ok(BbbServiceClient::new(channel(addr).await?))
}

pub async fn admin(addr: SocketAddr) -> Fallible<FleetServiceClient<Channel>> {
    Ok(FleetServiceClient::new(channel(addr).await?))
}

fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    if let Ok(value) = format!("Bearer {token}").parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

pub fn authed<T>(message: T) -> Request<T> {
    with_token(message, API_TOKEN)
}

pub fn admin_authed<T>(message: T) -> Request<T> {
    with_token(message, ADMIN_TOKEN)
}

pub const ROOM_NAME: &str = "Bench stage";

/// A join of `room` by `user`, as the eventyay backend sends it.
pub fn room(event: &str, room: &str, user: &str) -> proto::RoomUrlRequest {
    proto::RoomUrlRequest {
        event_id: event.to_owned(),
        organizer_id: "bench-org".to_owned(),
        room_id: room.to_owned(),
        room_name: ROOM_NAME.to_owned(),
        user: Some(proto::User {
            id: user.to_owned(),
            display_name: "Ada Lovelace".to_owned(),
            avatar_url: String::new(),
        }),
        permissions: vec!["room:bbb.join".to_owned()],
        settings: Some(proto::RoomSettings::default()),
        domain: "events.example.org".to_owned(),
        base_url: String::new(),
    }
}

/// An event id no earlier run used, so a shared PostgreSQL database starts each scenario empty.
pub fn fresh_event() -> String {
    format!("bench-{}", uuid::Uuid::new_v4().simple())
}

/// How long `work` took, and what it gave.
pub async fn timed<T>(work: impl Future<Output = T>) -> (Duration, T) {
    let started = Instant::now();
    let out = work.await;
    (started.elapsed(), out)
}

/// What a batch of concurrent calls gave: their latencies and answers, and how many failed.
pub struct Answers<T> {
    pub samples: super::measure::Samples,
    pub answers: Vec<T>,
    pub errors: usize,
}

/// Waits for every call of `calls` (each timed by itself).
pub async fn gather<T: 'static, E: 'static>(
    mut calls: tokio::task::JoinSet<(Duration, Result<T, E>)>,
) -> Fallible<Answers<T>> {
    let mut out = Answers {
        samples: super::measure::Samples::default(),
        answers: Vec::new(),
        errors: 0,
    };
    while let Some(done) = calls.join_next().await {
        match done? {
            (took, Ok(answer)) => {
                out.samples.push(took);
                out.answers.push(answer);
            }
            (_, Err(_)) => out.errors += 1,
        }
    }
    Ok(out)
}
