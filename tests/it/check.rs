//! `eventyay-bbb check` as an operator runs it: the binary, configured by flags, against emulated
//! BBB servers — some configured right, some wrong in the ways operators get them wrong.

use crate::common::temp_dir;
use eventyay_bbb::{
    bbb::ChecksumAlgorithm,
    sim::{SimConfig, SimServer},
};
use std::{net::TcpListener, path::Path, process::Command};

const BIN: &str = env!("CARGO_BIN_EXE_eventyay-bbb");
const API_TOKEN: &str = "check-api-token-canary-0123456789";

struct Outcome {
    success: bool,
    stdout: String,
    stderr: String,
}

impl Outcome {
    /// The report's line about `subject`, which must be there exactly once.
    fn line(&self, subject: &str) -> &str {
        let padded = format!(" {subject} ");
        let lines: Vec<&str> = self
            .stdout
            .lines()
            .filter(|l| l.contains(&padded))
            .collect();
        assert_eq!(lines.len(), 1, "{subject:?} in:\n{}", self.stdout);
        lines[0]
    }
}

/// Runs `check` on a blocking thread, so the emulators on this test's runtime keep answering.
async fn check(dir: &Path, servers_file: Option<&str>, api_token: Option<&str>) -> Outcome {
    let mut cmd = Command::new(BIN);
    cmd.arg("check")
        .arg("--database-url")
        .arg(format!(
            "sqlite://{}?mode=rwc",
            dir.join("check.db").display()
        ))
        .env("RUST_LOG", "warn");
    for var in [
        "EVENTYAY_BBB_CONFIG",
        "EVENTYAY_BBB_API_TOKEN",
        "EVENTYAY_BBB_API_TOKEN_FILE",
        "EVENTYAY_BBB_SERVERS_FILE",
    ] {
        cmd.env_remove(var);
    }
    if let Some(token) = api_token {
        cmd.arg("--api-token").arg(token);
    }
    if let Some(text) = servers_file {
        let path = dir.join("servers.toml");
        std::fs::write(&path, text).unwrap();
        cmd.arg("--servers-file").arg(path);
    }
    let output = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    Outcome {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn server(id: &str, url: &str, secret: &str, extra: &str) -> String {
    format!("[[servers]]\nid = \"{id}\"\nurl = \"{url}\"\nsecret = \"{secret}\"\n{extra}\n\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_each_failing_server_and_why_and_never_shows_a_secret() {
    let good = SimServer::start(SimConfig::new("good-secret-canary-1f2e3d"))
        .await
        .unwrap();
    let other = SimServer::start(SimConfig::new("real-secret-canary-4a5b6c"))
        .await
        .unwrap();
    let sha1_only = SimServer::start(SimConfig {
        checksums: vec![ChecksumAlgorithm::Sha1],
        ..SimConfig::new("sha1-secret-canary-7d8e9f")
    })
    .await
    .unwrap();
    // A port nobody listens on any more: connections are refused at once.
    let gone = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/bigbluebutton/", listener.local_addr().unwrap())
    };
    let secrets = [
        "good-secret-canary-1f2e3d",
        "real-secret-canary-4a5b6c",
        "wrong-secret-canary-0a0b0c",
        "sha1-secret-canary-7d8e9f",
        "gone-secret-canary-5c5d5e",
        API_TOKEN,
    ];
    let file = [
        server("bbb-good", &good.base_url(), secrets[0], ""),
        server("bbb-wrong-secret", &other.base_url(), secrets[2], ""),
        server(
            "bbb-sha1-only",
            &sha1_only.base_url(),
            secrets[3],
            "checksum = \"sha512\"",
        ),
        server("bbb-gone", &gone, secrets[4], "state = \"disabled\""),
    ]
    .concat();
    let scratch = temp_dir();
    let dir = scratch.path();

    let out = check(dir, Some(&file), Some(API_TOKEN)).await;

    assert!(!out.success, "{}", out.stdout);
    assert!(out.line("configuration").starts_with("OK "));
    assert!(out.line("database").starts_with("OK "));
    let good_line = out.line("server bbb-good");
    assert!(
        good_line.starts_with("OK ") && good_line.contains("secret right, sha256 accepted"),
        "{good_line}"
    );
    let wrong = out.line("server bbb-wrong-secret");
    assert!(
        wrong.starts_with("FAIL ") && wrong.contains("wrong secret"),
        "{wrong}"
    );
    let refused = out.line("server bbb-sha1-only");
    assert!(
        refused.starts_with("FAIL ")
            && refused.contains("secret right, but sha512 is not accepted; the server takes sha1"),
        "{refused}"
    );
    let gone_line = out.line("server bbb-gone");
    assert!(
        gone_line.starts_with("WARN ")
            && gone_line.contains("unreachable")
            && gone_line.contains("not counted"),
        "{gone_line}"
    );
    assert!(
        out.stderr.contains("2 of 6 checks failed"),
        "{}",
        out.stderr
    );
    let everything = format!("{}{}", out.stdout, out.stderr);
    for secret in secrets {
        assert!(
            !everything.contains(secret),
            "{secret} leaked:\n{everything}"
        );
    }
    assert!(!everything.contains("checksum="), "{everything}");

    for sim in [good, other, sha1_only] {
        sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_when_every_server_takes_our_calls() {
    let sim = SimServer::start(SimConfig::new("only-secret-canary-9a8b7c"))
        .await
        .unwrap();
    let scratch = temp_dir();
    let dir = scratch.path();
    let file = server("bbb-1", &sim.base_url(), "only-secret-canary-9a8b7c", "");

    let out = check(dir, Some(&file), Some(API_TOKEN)).await;

    assert!(out.success, "{}\n{}", out.stdout, out.stderr);
    assert!(out.line("server bbb-1").starts_with("OK "));
    assert!(out.stdout.contains("all 3 checks passed"), "{}", out.stdout);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configuration_error_is_reported_as_the_failing_check() {
    let scratch = temp_dir();
    let dir = scratch.path();

    let out = check(dir, None, None).await;

    assert!(!out.success);
    let line = out.line("configuration");
    assert!(
        line.starts_with("FAIL ") && line.contains("no API token"),
        "{line}"
    );
    assert!(
        out.stderr.contains("1 of 1 checks failed"),
        "{}",
        out.stderr
    );
}
