//! Emulated BBB servers in a child process (`eventyay-bbb sim`), so that the CPU time and memory
//! this process measures are the service's and the load generator's, not the emulators'.
//! They are steered over their `/_sim/` control surface.

use super::Fallible;
use crate::{
    bbb::{ChecksumAlgorithm, Endpoint},
    secret::Secret,
};
use rand::{Rng, distr::Alphanumeric};
use std::{
    collections::HashMap,
    io::{BufRead, BufReader},
    process::{Child, ChildStdout, Command, Stdio},
    time::Duration,
};

/// One emulated server as the service and the baselines address it.
#[derive(Debug, Clone)]
pub struct Emulator {
    pub id: String,
    /// `http://127.0.0.1:PORT/bigbluebutton/`.
    pub base_url: String,
    pub secret: String,
    pub endpoint: Endpoint,
}

impl Emulator {
    fn control(&self, path: &str) -> String {
        let origin = self.base_url.trim_end_matches("bigbluebutton/");
        format!("{origin}_sim/{path}")
    }
}

/// The emulator process, killed when dropped, even when starting fails half way.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A child process running emulated servers; killed when dropped.
pub struct Emulators {
    process: Process,
    /// Kept open: the emulator must never find its stdout closed.
    _stdout: BufReader<ChildStdout>,
    pub servers: Vec<Emulator>,
    http: reqwest::Client,
}

fn random_text(len: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// Server ids unique to this set, so rooms and reservations of an earlier set in a shared
/// PostgreSQL database never count for this one.
pub fn fresh_ids(n: usize) -> Vec<String> {
    let prefix = random_text(4).to_ascii_lowercase();
    (0..n).map(|i| format!("{prefix}-s{i}")).collect()
}

impl Emulators {
    /// Every server's signing endpoint, for the baselines' direct calls.
    pub fn endpoints(&self) -> Vec<crate::bbb::Endpoint> {
        self.servers.iter().map(|s| s.endpoint.clone()).collect()
    }

    /// Starts one emulated server per id, answering after `latency`.
    pub async fn start(ids: Vec<String>, latency: Duration) -> Fallible<Emulators> {
        let secrets: Vec<String> = ids.iter().map(|_| random_text(40)).collect();
        let exe = std::env::current_exe()?;
        let mut process = Process(
            Command::new(exe)
                .arg("sim")
                .arg("--latency")
                .arg(format!("{}ms", latency.as_millis()))
                // In the environment rather than on the command line, where `ps` would show them.
                .env("EVENTYAY_BBB_SIM_SECRET", secrets.join(","))
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()?,
        );
        let stdout = process
            .0
            .stdout
            .take()
            .ok_or("the emulator has no stdout")?;
        let count = ids.len();
        // Reading blocks; the emulator prints one line per server once it listens.
        let read = tokio::task::spawn_blocking(move || {
            let mut reader = BufReader::new(stdout);
            let mut urls = Vec::with_capacity(count);
            let mut line = String::new();
            while urls.len() < count {
                line.clear();
                if reader.read_line(&mut line)? == 0 {
                    return Err(std::io::Error::other("the emulator exited while starting"));
                }
                if let Some(rest) = line.split_once("BBB API at ").map(|(_, r)| r) {
                    let api = rest.split_whitespace().next().unwrap_or_default();
                    urls.push(api.trim_end_matches("api/").to_owned());
                }
            }
            Ok((reader, urls))
        });
        let (stdout, urls) = read.await??;
        let mut servers = Vec::with_capacity(count);
        for ((id, secret), base_url) in ids.into_iter().zip(secrets).zip(urls) {
            let endpoint = Endpoint::new(
                &base_url,
                Secret::new(secret.clone()),
                ChecksumAlgorithm::default(),
            )?;
            servers.push(Emulator {
                id,
                base_url,
                secret,
                endpoint,
            });
        }
        // reqwest is built without a default TLS provider; the control calls are plain HTTP,
        // but building a client needs one all the same.
        crate::bbb::install_crypto_provider();
        Ok(Emulators {
            process,
            _stdout: stdout,
            servers,
            http: reqwest::Client::new(),
        })
    }

    async fn post(&self, server: &Emulator, path: &str) -> Fallible<String> {
        let answer = self.http.post(server.control(path)).send().await?;
        let status = answer.status();
        let body = answer.text().await?;
        if !status.is_success() {
            return Err(format!("emulator control {path}: {status} {}", body.trim()).into());
        }
        Ok(body)
    }

    pub async fn set_latency(&self, latency: Duration) -> Fallible<()> {
        for server in &self.servers {
            self.post(server, &format!("latency?ms={}", latency.as_millis()))
                .await?;
        }
        Ok(())
    }

    /// `mode` as `/_sim/fault` takes it: `none`, `hang`, `unavailable`, `malformed`.
    pub async fn set_fault(&self, server: &Emulator, mode: &str) -> Fallible<()> {
        self.post(server, &format!("fault?mode={mode}")).await?;
        Ok(())
    }

    /// Gives a running meeting on `server` the load `/_sim/load` takes: `participants`,
    /// `voice`, `video` (and 0 listeners and moderators).
    pub async fn set_load(
        &self,
        server: &Emulator,
        meeting_id: &str,
        participants: u32,
        voice: u32,
        video: u32,
    ) -> Fallible<()> {
        let id = crate::bbb::query::encode(meeting_id);
        self.post(
            server,
            &format!("load?meetingID={id}&participants={participants}&voice={voice}&video={video}"),
        )
        .await?;
        Ok(())
    }

    /// Ends a meeting as its moderator would; a recorded one leaves a recording.
    pub async fn end(&self, server: &Emulator, meeting_id: &str) -> Fallible<()> {
        let id = crate::bbb::query::encode(meeting_id);
        self.post(server, &format!("end?meetingID={id}")).await?;
        Ok(())
    }

    /// How many API calls named `call` all servers received so far.
    pub async fn calls(&self, call: &str) -> Fallible<u64> {
        let mut total = 0;
        for server in &self.servers {
            let stats = self
                .http
                .get(server.control("stats"))
                .send()
                .await?
                .text()
                .await?;
            let counts: HashMap<&str, u64> = stats
                .lines()
                .filter_map(|l| l.split_once(' '))
                .filter_map(|(name, n)| Some((name, n.parse().ok()?)))
                .collect();
            total += counts.get(call).copied().unwrap_or(0);
        }
        Ok(total)
    }

    /// Kills the process at once (SIGKILL), as a crashed BBB host would vanish.
    pub fn kill(&mut self) {
        let _ = self.process.0.kill();
        let _ = self.process.0.wait();
    }
}
