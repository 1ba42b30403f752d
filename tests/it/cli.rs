//! The binary as operators and newcomers run it: `serve` configured only by environment
//! variables and a servers file, and `dev`.

use crate::common::*;
use eventyay_bbb::{
    proto::{self, bbb_service_client::BbbServiceClient},
    sim::{SimConfig, SimServer},
};
use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

const BIN: &str = env!("CARGO_BIN_EXE_eventyay-bbb");

/// A child process whose output lines are collected on threads, killed on drop.
pub(crate) struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Proc {
    pub(crate) fn spawn(cmd: &mut Command) -> Self {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing `needle` and returns it.
    pub(crate) fn wait_for(&mut self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(100)) {
                self.seen.push(line.clone());
                if line.contains(needle) {
                    return line;
                }
            }
        }
        panic!("no line with {needle:?} in {:#?}", self.seen);
    }

    /// Stops the process (SIGTERM, as Kubernetes does) and returns everything it printed. Waits
    /// on a blocking thread so this test's own connections keep being served meanwhile.
    pub(crate) async fn stop(self) -> String {
        tokio::task::spawn_blocking(move || self.stop_blocking())
            .await
            .unwrap()
    }

    fn stop_blocking(mut self) -> String {
        terminate(&mut self.child);
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.seen.push(line);
        }
        self.seen.join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

// Multi-threaded: the emulators must answer while the test blocks reading the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_says_once_which_server_is_misconfigured_and_why_never_its_secret() {
    let good = SimServer::start(SimConfig::new("right-secret-of-bbb-1"))
        .await
        .unwrap();
    let typo = SimServer::start(SimConfig::new("the-real-secret-of-bbb-2"))
        .await
        .unwrap();
    let dir = temp_dir();
    let servers = dir.path().join("servers.toml");
    std::fs::write(
        &servers,
        format!(
            "[[servers]]\nid = \"bbb-1\"\nurl = \"{}\"\nsecret = \"right-secret-of-bbb-1\"\n\n\
             [[servers]]\nid = \"bbb-2\"\nurl = \"{}\"\nsecret = \"canary-typo-secret-3c1d\"\n",
            good.base_url(),
            typo.base_url()
        ),
    )
    .unwrap();
    let mut proc = Proc::spawn(
        Command::new(BIN)
            .arg("serve")
            .env_clear()
            .env("EVENTYAY_BBB_LISTEN", "127.0.0.1:0")
            .env("EVENTYAY_BBB_DATABASE_URL", "sqlite::memory:")
            .env("EVENTYAY_BBB_API_TOKEN", "a-token-of-sixteen-chars")
            .env("EVENTYAY_BBB_POLL_INTERVAL", "200ms")
            .env("EVENTYAY_BBB_SERVERS_FILE", &servers),
    );
    let line = proc.wait_for("server is misconfigured");
    assert!(line.contains("ERROR"), "{line}");
    assert!(
        line.contains("bbb-2") && line.contains("checksum refused"),
        "{line}"
    );
    proc.wait_for("serving gRPC");
    // Several polls later, still said only once.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let output = proc.stop().await;
    assert_eq!(
        output.matches("server is misconfigured").count(),
        1,
        "{output}"
    );
    assert!(
        !output
            .lines()
            .any(|l| l.contains("bbb-1") && l.contains("misconfigured")),
        "{output}"
    );
    assert!(!output.contains("canary-typo-secret"), "{output}");
    assert!(!output.contains("the-real-secret"), "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_from_environment_and_servers_file_never_prints_a_secret() {
    let sim_secret = "canary-sim-secret-1b6f0e3a";
    let sim = SimServer::start(SimConfig::new(sim_secret)).await.unwrap();
    let dir = temp_dir();
    let servers = dir.path().join("servers.toml");
    std::fs::write(
        &servers,
        format!("[[servers]]\nid = \"bbb-1\"\nurl = \"{}\"\nsecret = \"{sim_secret}\"\nchecksum = \"sha384\"\n", sim.base_url()),
    )
    .unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "canary-api-token-from-file-9c2d\n").unwrap();
    let port = free_port();
    let mut proc = Proc::spawn(
        Command::new(BIN)
            .arg("serve")
            .env_clear()
            .env("RUST_LOG", "debug")
            .env("EVENTYAY_BBB_LISTEN", format!("127.0.0.1:{port}"))
            .env(
                "EVENTYAY_BBB_DATABASE_URL",
                format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("db.sqlite").display()
                ),
            )
            .env("EVENTYAY_BBB_API_TOKEN", "canary-api-token-inline-4e7a")
            .env("EVENTYAY_BBB_API_TOKEN_FILE", &token_file)
            .env("EVENTYAY_BBB_ADMIN_TOKEN", "canary-admin-token-5f8b")
            .env("EVENTYAY_BBB_SERVERS_FILE", &servers),
    );
    proc.wait_for("serving gRPC");

    let channel = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = BbbServiceClient::new(channel);
    for token in [
        "canary-api-token-inline-4e7a",
        "canary-api-token-from-file-9c2d",
    ] {
        let url = client
            .room_url(authed_with(room_request("r", "u", MODERATE), token))
            .await
            .unwrap()
            .into_inner()
            .url;
        assert_eq!(
            param(&url, "checksum").unwrap().len(),
            96,
            "sha384 as configured"
        );
        assert_join_works(&url).await;
    }
    let err = client
        .room_url(authed_with(
            room_request("r", "u", MODERATE),
            "canary-admin-token-5f8b",
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    // A failing server makes the service log; the log must still hold no secret.
    sim.set_fault(eventyay_bbb::sim::Fault::Malformed);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let _ = client
        .room_url(authed_with(
            room_request("r", "u", MODERATE),
            "canary-api-token-inline-4e7a",
        ))
        .await;

    let output = proc.stop().await;
    assert!(output.contains("serving gRPC"));
    for canary in [
        "canary-sim-secret",
        "canary-api-token",
        "canary-admin-token",
    ] {
        assert!(!output.contains(canary), "{canary} in output:\n{output}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_to_start_without_a_token_or_with_a_broken_servers_file() {
    let out = Command::new(BIN).arg("serve").env_clear().output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("EVENTYAY_BBB_API_TOKEN"));

    let dir = temp_dir();
    let servers = dir.path().join("servers.toml");
    std::fs::write(&servers, "[[servers]]\nid = \"a\"\nurl = \"https://h\"\nsecret = \"canary-secret-in-broken-file\nchecksum = \"md5\"\n").unwrap();
    let out = Command::new(BIN)
        .arg("serve")
        .env_clear()
        .env("EVENTYAY_BBB_API_TOKEN", "token-0123456789abcdef")
        .env("EVENTYAY_BBB_SERVERS_FILE", &servers)
        .output()
        .unwrap();
    let (ok, text) = printed(&out);
    assert!(!ok);
    assert!(text.contains("servers.toml"), "{text}");
    assert!(!text.contains("canary"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_serves_a_working_room_url_out_of_the_box() {
    let mut proc = Proc::spawn(
        Command::new(BIN)
            .args(["dev", "--listen", "127.0.0.1:0"])
            .env_remove("RUST_LOG"),
    );
    let line = proc.wait_for("gRPC on ");
    let addr = line
        .split("gRPC on ")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_owned();
    let token = proc
        .wait_for("API token")
        .rsplit(' ')
        .next()
        .unwrap()
        .to_owned();
    let grpcurl = proc.wait_for("grpcurl -plaintext");
    assert!(grpcurl.contains(&addr) && grpcurl.contains(&token));

    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let url = BbbServiceClient::new(channel)
        .room_url(authed_with(room_request("main", "u1", MODERATE), &token))
        .await
        .unwrap()
        .into_inner()
        .url;
    assert_join_works(&url).await;
    let output = proc.stop().await;
    assert!(output.contains("Stop with Ctrl-C"));
    assert!(
        !output.contains("ERROR"),
        "a clean start says nothing alarming:\n{output}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_command_drives_the_fleet_and_never_shows_a_secret() {
    let app = spawn_app(
        TestDb::sqlite(),
        &[SimSpec::new("bbb-1"), SimSpec::new("bbb-2")],
    )
    .await;
    let addr = format!("http://{}", app.addr());
    let extra = SimServer::start(SimConfig::new("cli-canary-secret-77"))
        .await
        .unwrap();
    let secret_file = app.db.dir.path().join("secret");
    std::fs::write(&secret_file, "cli-canary-secret-77\n").unwrap();
    let extra_url = extra.base_url();
    // A kept plan: the room "stage" starts in a minute, 300 expected.
    let start = std::time::SystemTime::now() + Duration::from_secs(60);
    let at = |t: std::time::SystemTime| Some(prost_types::Timestamp::from(t));
    let kept = app
        .client()
        .await
        .plan_schedule(authed(proto::PlanScheduleRequest {
            event_id: "ev-1".into(),
            organizer_id: "org-1".into(),
            sessions: vec![proto::PlannedSession {
                room_id: "stage".into(),
                start: at(start),
                end: at(start + Duration::from_secs(3600)),
                expected_participants: 300,
            }],
            slot_minutes: 0,
            keep: true,
        }))
        .await
        .unwrap()
        .into_inner();
    let stage = kept.placements[0].server_id.clone();
    let blocking = tokio::task::spawn_blocking(move || {
        let servers = |args: &[&str]| {
            let out = Command::new(BIN)
                .arg("servers")
                .args(args)
                .env_clear()
                .env("EVENTYAY_BBB_ADDRESS", &addr)
                .env("EVENTYAY_BBB_ADMIN_TOKEN", ADMIN_TOKEN)
                .env("USER", "ops-bob")
                .output()
                .unwrap();
            let (ok, text) = printed(&out);
            assert!(
                !text.contains("cli-canary") && !text.contains("sim-secret"),
                "{text}"
            );
            (ok, text)
        };
        let run = |args: &[&str]| {
            let (ok, text) = servers(args);
            assert!(ok, "{args:?}: {text}");
            text
        };
        let listed = run(&["list"]);
        assert!(listed.lines().next().unwrap().starts_with("ID"), "{listed}");
        assert!(
            listed.contains("bbb-1") && listed.contains("healthy"),
            "{listed}"
        );

        let put = run(&[
            "put",
            "bbb-3",
            "--url",
            &extra_url,
            "--secret-file",
            secret_file.to_str().unwrap(),
            "--weight",
            "2",
        ]);
        assert!(put.contains("added bbb-3: enabled, healthy"), "{put}");
        run(&["state", "bbb-1", "cordoned"]);
        let json: serde_json::Value = serde_json::from_str(&run(&["list", "--json"])).unwrap();
        let by_id = |id: &str| {
            json.as_array()
                .unwrap()
                .iter()
                .find(|s| s["id"] == id)
                .unwrap()
                .clone()
        };
        assert_eq!(by_id("bbb-1")["state"], "cordoned");
        assert_eq!(by_id("bbb-3")["weight"], 2.0);
        assert!(by_id("bbb-3").get("secret").is_none());

        let explained = run(&["explain", "ev-1", "org-1"]);
        assert!(
            explained.contains("would choose:") && explained.contains("cordoned"),
            "{explained}"
        );
        let planned = run(&["explain", "ev-1", "org-1", "--room", "stage"]);
        assert!(
            planned.contains(&format!("planned: {stage} from "))
                && planned.contains("300 expected, reserved there now"),
            "{planned}"
        );
        let audit = run(&["audit"]);
        assert!(
            audit.contains("ops-bob")
                && audit.contains("put-server")
                && audit.contains("set-state"),
            "{audit}"
        );
        let (ok, text) = servers(&["remove", "nope"]);
        assert!(!ok && text.contains("NotFound"), "{text}");
        let (ok, text) = servers(&["state", "bbb-1", "sideways"]);
        assert!(!ok && text.contains("unknown state"), "{text}");
    });
    blocking.await.unwrap();
    app.stop().await;
}

/// Operators get the same forecast from the command line, from the service's database; a
/// schedule the fleet cannot hold exits non-zero and names the slot.
#[tokio::test]
async fn plan_prints_the_forecast_and_fails_on_a_slot_the_fleet_cannot_hold() {
    let db = TestDb::sqlite();
    let app = spawn_app(db, &[SimSpec::new("a").with("max_participants = 300")]).await;
    let dir = temp_dir();
    let file = dir.path().join("schedule.toml");
    let write = |sessions: &str| {
        std::fs::write(
            &file,
            format!("event_id = \"ev-1\"\norganizer_id = \"org-1\"\nslot_minutes = 30\n{sessions}"),
        )
        .unwrap()
    };
    let run = || {
        let out = std::process::Command::new(BIN)
            .arg("plan")
            .arg(&file)
            .env_clear()
            .env("EVENTYAY_BBB_DATABASE_URL", &app.database_url)
            .output()
            .unwrap();
        printed(&out)
    };
    let session = |room: &str, start: &str, end: &str, n: u32| {
        format!(
            "[[sessions]]\nroom_id = \"{room}\"\nstart = {start}\nend = {end}\nexpected_participants = {n}\n"
        )
    };
    write(&session(
        "talk",
        "2026-12-02T09:00:00Z",
        "2026-12-02T09:30:00Z",
        100,
    ));
    let (ok, text) = run();
    assert!(ok, "{text}");
    assert!(text.contains("2026-12-02 09:00Z"), "{text}");
    assert!(text.contains("a 1 meetings 100/300 participants"), "{text}");
    assert!(text.contains("talk -> a"), "{text}");

    write(&format!(
        "{}{}",
        session("talk", "2026-12-02T09:00:00Z", "2026-12-02T09:30:00Z", 100),
        session(
            "keynote",
            "2026-12-02T11:00:00+01:00",
            "2026-12-02T11:30:00+01:00",
            500
        )
    ));
    let (ok, text) = run();
    assert!(!ok, "{text}");
    assert!(text.contains("2026-12-02 10:00Z"), "{text}");
    assert!(text.contains("CANNOT HOLD 500 participants"), "{text}");
    assert!(text.contains("1 slot(s) the fleet cannot hold"), "{text}");

    write(
        "[[sessions]]\nroom_id = \"x\"\nstart = 2026-12-02T09:00:00\nend = 2026-12-02T09:30:00Z\n",
    );
    let (ok, text) = run();
    assert!(
        !ok && text.contains("start needs a date, a time and an offset"),
        "{text}"
    );
    app.stop().await;
}
