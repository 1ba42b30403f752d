//! Black-box harness: a real service on 127.0.0.1 with emulated BBB servers behind it,
//! configured the way an operator would (servers file, tokens), and a gRPC client.

#![allow(dead_code)] // Each test binary uses a different part of the harness.

pub mod pg;

use eventyay_bbb::{
    app::Service,
    config::ServeArgs,
    proto::{self, bbb_service_client::BbbServiceClient},
    sim::{SimConfig, SimServer},
    store::Store,
};
use std::time::Duration;
use tonic::{Request, transport::Channel};

pub const API_TOKEN: &str = "test-api-token-0123456789abcdef";
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef";

/// How one emulated server appears in the servers file.
#[derive(Clone)]
pub struct SimSpec {
    pub id: &'static str,
    pub extra: &'static str,
    pub checksums: Vec<eventyay_bbb::bbb::ChecksumAlgorithm>,
    pub ended_retention: Duration,
}

impl SimSpec {
    pub fn new(id: &'static str) -> Self {
        Self {
            id,
            extra: "",
            checksums: eventyay_bbb::bbb::ChecksumAlgorithm::ALL.to_vec(),
            ended_retention: Duration::ZERO,
        }
    }
    pub fn with(mut self, extra: &'static str) -> Self {
        self.extra = extra;
        self
    }
}

pub struct TestApp {
    pub service: Option<Service>,
    pub ids: Vec<&'static str>,
    pub sims: Vec<SimServer>,
    pub args: ServeArgs,
    pub db: TestDb,
    pub database_url: String,
}

/// The database a test runs on: a fresh SQLite file, or a fresh database on a throwaway
/// PostgreSQL cluster.
pub struct TestDb {
    pub url: String,
    pub dir: TempDir,
    pub cluster: Option<pg::PgCluster>,
}

impl TestDb {
    pub fn sqlite() -> Self {
        let dir = temp_dir();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("bbb.db").display());
        Self {
            url,
            dir,
            cluster: None,
        }
    }

    /// `None` outside CI when PostgreSQL is not installed (the harness says so loudly).
    pub fn postgres() -> Option<Self> {
        let cluster = pg::PgCluster::start()?;
        Some(Self {
            url: cluster.new_database(),
            dir: temp_dir(),
            cluster: Some(cluster),
        })
    }
}

/// Runs each named `async fn(TestDb)` on PostgreSQL only: for what only several replicas on
/// one PostgreSQL can do.
#[macro_export]
macro_rules! on_postgres {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = $crate::common::TestDb::postgres() {
                    super::$name(db).await
                }
            }
        }
    )*};
}

/// Runs each named `async fn(TestDb)` twice: on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name($crate::common::TestDb::sqlite()).await
            }
            #[tokio::test]
            async fn postgres() {
                if let Some(db) = $crate::common::TestDb::postgres() {
                    super::$name(db).await
                }
            }
        }
    )*};
}

pub use tempfile::TempDir;

/// Says that part of the suite did not run, once per process, straight to the terminal: the
/// test harness hides what passing tests print with `eprintln!`, and a skip must be seen.
pub fn skip_loudly(message: &str) {
    static SAID: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut said = SAID.lock().unwrap_or_else(|p| p.into_inner());
    if !said.iter().any(|m| m == message) {
        said.push(message.to_owned());
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "\n*** SKIPPED: {message} ***\n");
    }
}

/// A port on 127.0.0.1 free a moment ago, for a process that binds it itself.
/// What a finished command printed, stdout then stderr, and whether it succeeded.
pub fn printed(out: &std::process::Output) -> (bool, String) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Stops a child as Kubernetes does (SIGTERM) and waits for it to exit.
pub fn terminate(child: &mut std::process::Child) {
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A scratch directory of this test, removed when dropped.
pub fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("eventyay-bbb-test-")
        .tempdir()
        .unwrap()
}

pub fn secret_of(id: &str) -> String {
    format!("sim-secret-{id}-do-not-leak-7f3a9c")
}

/// The operator's servers file for these emulated servers, with extra TOML lines per server.
pub fn write_servers_file(path: &std::path::Path, sims: &[SimServer], extras: &[(&str, &str)]) {
    let mut file = String::new();
    for (sim, (id, extra)) in sims.iter().zip(extras) {
        file.push_str(&format!(
            "[[servers]]\nid = \"{id}\"\nurl = \"{}\"\nsecret = \"{}\"\n{extra}\n\n",
            sim.base_url(),
            secret_of(id),
        ));
    }
    std::fs::write(path, file).unwrap();
}

pub async fn spawn_app(db: TestDb, specs: &[SimSpec]) -> TestApp {
    spawn_app_with(db, specs, |_| {}).await
}

pub async fn spawn_app_with(
    db: TestDb,
    specs: &[SimSpec],
    tweak: impl FnOnce(&mut ServeArgs),
) -> TestApp {
    let mut sims = Vec::new();
    for spec in specs {
        let mut config = SimConfig::new(secret_of(spec.id));
        config.checksums = spec.checksums.clone();
        config.ended_retention = spec.ended_retention;
        sims.push(SimServer::start(config).await.unwrap());
    }
    let servers_file = db.dir.path().join("servers.toml");
    let extras: Vec<_> = specs.iter().map(|s| (s.id, s.extra)).collect();
    write_servers_file(&servers_file, &sims, &extras);
    let database_url = db.url.clone();
    let mut args = ServeArgs {
        listen: Some("127.0.0.1:0".into()),
        database_url: Some(database_url.clone()),
        api_token: Some(format!("{API_TOKEN},second-{API_TOKEN}")),
        admin_token: Some(ADMIN_TOKEN.into()),
        servers_file: Some(servers_file),
        ensure_ttl: Some("300ms".into()),
        poll_interval: Some("200ms".into()),
        create_timeout: Some("1s".into()),
        connect_timeout: Some("500ms".into()),
        recordings_timeout: Some("1s".into()),
        ..ServeArgs::default()
    };
    tweak(&mut args);
    let service = Service::start(args.load().unwrap()).await.unwrap();
    TestApp {
        service: Some(service),
        ids: specs.iter().map(|s| s.id).collect(),
        sims,
        args,
        db,
        database_url,
    }
}

impl TestApp {
    pub fn addr(&self) -> std::net::SocketAddr {
        self.service.as_ref().unwrap().addr()
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr()))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    pub async fn client(&self) -> BbbServiceClient<Channel> {
        BbbServiceClient::new(self.channel().await)
    }

    /// Restarts the service on the same database and emulated servers, with the servers file
    /// rewritten (extra TOML lines per server id), as an operator's redeploy would.
    pub async fn restart_with(&mut self, extras: &[(&str, &str)]) {
        if let Some(s) = self.service.take() {
            s.stop().await;
        }
        let all: Vec<(&str, &str)> = self
            .ids
            .iter()
            .map(|id| {
                (
                    *id,
                    extras.iter().find(|(i, _)| i == id).map_or("", |(_, e)| *e),
                )
            })
            .collect();
        write_servers_file(self.args.servers_file.as_ref().unwrap(), &self.sims, &all);
        self.service = Some(Service::start(self.args.load().unwrap()).await.unwrap());
    }

    /// Meetings per emulated server, in the order of the specs.
    pub fn meetings_per_server(&self) -> Vec<usize> {
        self.sims.iter().map(|s| s.meetings().len()).collect()
    }

    pub fn sim(&self, id: &str) -> &SimServer {
        let i = self.ids.iter().position(|s| *s == id).unwrap();
        &self.sims[i]
    }

    /// A second view of the service's database, for checking what was (not) written.
    pub async fn store(&self) -> Store {
        Store::connect(&self.database_url).await.unwrap()
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.service.take() {
            s.stop().await;
        }
    }
}

pub fn authed<T>(message: T) -> Request<T> {
    authed_with(message, API_TOKEN)
}

pub fn authed_with<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

pub fn user(id: &str, name: &str) -> Option<proto::User> {
    Some(proto::User {
        id: id.into(),
        display_name: name.into(),
        avatar_url: String::new(),
    })
}

pub fn room_request(room: &str, user_id: &str, permissions: &[&str]) -> proto::RoomUrlRequest {
    proto::RoomUrlRequest {
        event_id: "ev-1".into(),
        organizer_id: "org-1".into(),
        room_id: room.into(),
        room_name: "Main Stage".into(),
        user: user(user_id, "Ada Lovelace"),
        permissions: permissions.iter().map(|p| p.to_string()).collect(),
        settings: Some(proto::RoomSettings::default()),
        domain: "events.example.org".into(),
        base_url: String::new(),
    }
}

pub const JOIN: &[&str] = &["room:bbb.join"];
pub const MODERATE: &[&str] = &["room:bbb.join", "room:bbb.moderate"];

/// What a browser does with a join URL: one GET, no redirect followed. Returns the status and
/// the redirect target or body.
pub async fn open(url: &str) -> (u16, String) {
    // One client for the process: building one loads the system's root certificates.
    static BROWSER: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    let browser = BROWSER.get_or_init(|| {
        eventyay_bbb::bbb::install_crypto_provider();
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap()
    });
    let answer = browser.get(url).send().await.unwrap();
    let status = answer.status().as_u16();
    let location = answer
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned());
    let body = answer.text().await.unwrap_or_default();
    (status, location.unwrap_or(body))
}

/// A join URL works when the emulated BBB redirects the browser into the client.
pub async fn assert_join_works(url: &str) {
    let (status, target) = open(url).await;
    assert_eq!(status, 302, "{url} -> {target}");
    assert!(
        target.contains("/html5client/join?sessionToken="),
        "{url} -> {target}"
    );
}

pub fn param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    eventyay_bbb::bbb::query::parse(query)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}

/// The wire reason and ErrorInfo code of a failed call.
pub fn reason(status: &tonic::Status) -> (String, String) {
    use tonic_types::StatusExt;
    let info = status
        .get_details_error_info()
        .expect("ErrorInfo in the status details");
    assert_eq!(info.domain, "eventyay.bbb.v1");
    (
        info.reason,
        info.metadata.get("code").cloned().unwrap_or_default(),
    )
}

/// Ends a meeting on an emulated server the way an operator or BBB itself would, behind the
/// service's back.
pub async fn end_on_sim(app: &TestApp, server: &str, meeting_id: &str) {
    assert!(
        end_meeting_on(app.sim(server), server, meeting_id).await,
        "{server} does not hold {meeting_id}"
    );
}

/// The BBB API of the emulated server `server`, as an operator or another front door reaches it.
fn sim_endpoint(sim: &SimServer, server: &str) -> eventyay_bbb::bbb::Endpoint {
    eventyay_bbb::bbb::Endpoint::new(
        &sim.base_url(),
        eventyay_bbb::secret::Secret::new(secret_of(server)),
        Default::default(),
    )
    .unwrap()
}

/// Ends a meeting on an emulated server behind the service's back, as a moderator's "End
/// meeting" or BBB itself would. False when the server does not hold it (any more).
pub async fn end_meeting_on(sim: &SimServer, server: &str, meeting_id: &str) -> bool {
    eventyay_bbb::bbb::BbbClient::new(Default::default())
        .end(&sim_endpoint(sim, server), meeting_id, None)
        .await
        .is_ok()
}

/// A meeting of another front door on `server`, with 300 participants on camera: it makes
/// `server` the busier one for any new meeting.
pub async fn foreign_load_on(sim: &SimServer, server: &str, meeting_id: &str) {
    let query = eventyay_bbb::bbb::Query::new()
        .with("meetingID", meeting_id)
        .with("name", "elsewhere");
    eventyay_bbb::bbb::BbbClient::new(Default::default())
        .create(&sim_endpoint(sim, server), &query, &[])
        .await
        .unwrap();
    let load = eventyay_bbb::sim::Load {
        participants: 300,
        voice: 100,
        video: 4,
        listeners: 200,
        moderators: 3,
    };
    assert!(sim.set_meeting_load(meeting_id, load));
}

/// A `serve` process of the binary under test, on 127.0.0.1, killed when dropped.
pub struct Served {
    pub child: std::process::Child,
    pub channel: Channel,
    pub metrics_port: u16,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `serve` on `db` with the servers file and the test API token, polling every `poll`,
/// with `env` on top; returns once its gRPC port answers.
// The child is waited for by `Served`'s drop, or right before the panic below.
#[allow(clippy::zombie_processes)]
pub async fn serve(
    db: &TestDb,
    servers_file: &std::path::Path,
    poll: Duration,
    env: &[(&str, String)],
) -> Served {
    let (port, metrics_port) = (free_port(), free_port());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_eventyay-bbb"))
        .arg("serve")
        .env_clear()
        .env("RUST_LOG", "warn")
        .env("EVENTYAY_BBB_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "EVENTYAY_BBB_METRICS_LISTEN",
            format!("127.0.0.1:{metrics_port}"),
        )
        .env("EVENTYAY_BBB_DATABASE_URL", &db.url)
        .env("EVENTYAY_BBB_API_TOKEN", API_TOKEN)
        .env("EVENTYAY_BBB_SERVERS_FILE", servers_file)
        .env(
            "EVENTYAY_BBB_POLL_INTERVAL",
            format!("{}ms", poll.as_millis()),
        )
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let endpoint = Channel::from_shared(format!("http://127.0.0.1:{port}")).unwrap();
        if let Ok(channel) = endpoint.connect().await {
            return Served {
                child,
                channel,
                metrics_port,
            };
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the service did not start");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
