//! A running emulated server: its socket, its serving task and the state the handlers share.

use super::{
    Fault, Load, MeetingSnapshot, RecordingSnapshot, SimConfig, api,
    faults::{Port, RefusableListener, TlsListener},
    params::Params,
    state::State,
    xml::Failure,
};
use crate::{bbb::checksum::ChecksumAlgorithm, secret::Secret};
use std::{
    collections::HashMap,
    fmt, io,
    net::SocketAddr,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};
use tokio::{sync::watch, task::JoinHandle};

/// What the request handlers share. Each lock is held only for the synchronous work of one
/// request, never across an await.
pub(crate) struct Shared {
    /// Behind a lock so a test can rotate it, as an operator does with `bbb-conf --setsecret`.
    secret: Mutex<Secret>,
    pub(crate) checksums: Vec<ChecksumAlgorithm>,
    /// `http://127.0.0.1:PORT` (`https://` with TLS), without a trailing slash.
    pub(crate) origin: String,
    state: Mutex<State>,
    calls: Mutex<HashMap<String, u64>>,
    pub(crate) faults: watch::Sender<Fault>,
    port: Arc<Port>,
    latency_us: AtomicU64,
    pub(crate) stopping: watch::Sender<bool>,
}

impl Shared {
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        // A panicking handler leaves the state as consistent as any request could; keep serving.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn secret(&self) -> Secret {
        self.secret
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn count(&self, call: &str) {
        let mut calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        match calls.get_mut(call) {
            Some(count) => *count += 1,
            None => {
                calls.insert(call.to_owned(), 1);
            }
        }
    }

    pub(crate) fn call_count(&self, call: &str) -> u64 {
        let calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        calls.get(call).copied().unwrap_or(0)
    }

    /// `(call, count)` pairs sorted by call name.
    pub(crate) fn call_counts(&self) -> Vec<(String, u64)> {
        let calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        let mut counts: Vec<(String, u64)> = calls.iter().map(|(k, v)| (k.clone(), *v)).collect();
        counts.sort();
        counts
    }

    pub(crate) fn set_fault(&self, fault: Fault) {
        // Announced first, so connections accepted from now on are cut at once.
        self.faults.send_replace(fault);
        if matches!(fault, Fault::Refuse) {
            self.port.close();
        } else if let Err(err) = self.port.open() {
            // The accept loop keeps trying.
            tracing::warn!(addr = %self.port.addr(), %err, "emulated BBB cannot listen again");
        }
    }

    pub(crate) fn latency(&self) -> Duration {
        Duration::from_micros(self.latency_us.load(Ordering::Relaxed))
    }

    pub(crate) fn set_latency(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_us.store(micros, Ordering::Relaxed);
    }

    pub(crate) fn set_meeting_load(&self, meeting_id: &str, load: Load) -> bool {
        self.state().set_load(meeting_id, load)
    }

    /// Ends a meeting (the API's `end`, or the control surface's) and, as BBB does, calls its
    /// `meetingEndedURL` once, unsigned, in the background.
    pub(crate) fn end(&self, params: &Params) -> Result<String, Failure> {
        let (answer, urls) = {
            let mut state = self.state();
            let answer = state.end(params);
            (answer, state.take_ended_urls())
        };
        for url in urls {
            tokio::spawn(call_ended_url(url));
        }
        answer
    }
}

/// One GET on `url` as given, its answer ignored, as bbb-web does.
async fn call_ended_url(url: String) {
    static CLIENT: std::sync::OnceLock<Option<reqwest::Client>> = std::sync::OnceLock::new();
    let client = CLIENT.get_or_init(|| {
        crate::bbb::install_crypto_provider();
        reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .ok()
    });
    let Some(client) = client else {
        tracing::warn!("emulated BBB cannot make an HTTP client: meetingEndedURL not called");
        return;
    };
    if let Err(err) = client.get(&url).send().await {
        tracing::debug!(%err, "emulated BBB: meetingEndedURL call failed");
    }
}

/// A running emulated BBB server on a loopback address. Dropping it (or [`SimServer::shutdown`])
/// stops it.
pub struct SimServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
}

impl fmt::Debug for SimServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl SimServer {
    /// Binds `config.listen` (loopback only: the emulator's secrets are for tests) and serves
    /// until the server is dropped.
    pub async fn start(config: SimConfig) -> io::Result<SimServer> {
        if !config.listen.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the BBB emulator listens only on loopback addresses (such as 127.0.0.1), not {}",
                    config.listen.ip()
                ),
            ));
        }
        let (faults, faults_rx) = watch::channel(Fault::None);
        let port = Arc::new(Port::bind(config.listen)?);
        let addr = port.addr();
        let listener = RefusableListener::new(Arc::clone(&port), faults_rx);
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let origin = format!("{scheme}://{addr}");
        let shared = Arc::new(Shared {
            secret: Mutex::new(config.secret),
            checksums: config.checksums,
            state: Mutex::new(State::new(
                origin.clone(),
                config.publish_delay,
                config.ended_retention,
            )),
            origin,
            calls: Mutex::new(HashMap::new()),
            faults,
            port,
            latency_us: AtomicU64::new(0),
            stopping: watch::channel(false).0,
        });
        shared.set_latency(config.latency);

        let mut stopping = shared.stopping.subscribe();
        let app = api::router(Arc::clone(&shared));
        // The emulator speaks HTTP/1.1 only, as bbb-web behind nginx does to API clients.
        let tls = config
            .tls
            .map(|identity| identity.server_config(&[b"http/1.1"]));
        let task = tokio::spawn(async move {
            let stopped = async move {
                let _ = stopping.wait_for(|stop| *stop).await;
            };
            // Infallible: axum's serve loop logs and retries failed accepts itself.
            let _ = match tls {
                None => {
                    axum::serve(listener, app)
                        .with_graceful_shutdown(stopped)
                        .await
                }
                Some(config) => {
                    axum::serve(TlsListener::new(listener, config), app)
                        .with_graceful_shutdown(stopped)
                        .await
                }
            };
        });
        Ok(SimServer {
            addr,
            shared,
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/bigbluebutton/` (`https://` with TLS), the URL a BBB client is
    /// configured with.
    pub fn base_url(&self) -> String {
        format!("{}/bigbluebutton/", self.shared.origin)
    }

    pub fn set_fault(&self, fault: Fault) {
        self.shared.set_fault(fault);
    }

    /// Changes the shared secret from now on, as `bbb-conf --setsecret` does on a real server.
    pub fn set_secret(&self, secret: Secret) {
        *self
            .shared
            .secret
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = secret;
    }

    /// Delays every answer of the BBB API (not the `/_sim` control surface).
    pub fn set_latency(&self, latency: Duration) {
        self.shared.set_latency(latency);
    }

    /// Overrides the counts getMeetings and getMeetingInfo report for a meeting that has not
    /// ended; `false` if there is none with that ID.
    pub fn set_meeting_load(&self, meeting_id: &str, load: Load) -> bool {
        self.shared.set_meeting_load(meeting_id, load)
    }

    /// The meetings that have not ended, oldest first.
    pub fn meetings(&self) -> Vec<MeetingSnapshot> {
        self.shared.state().meeting_snapshots()
    }

    /// Every recording, in the order the meetings ended.
    pub fn recordings(&self) -> Vec<RecordingSnapshot> {
        self.shared.state().recording_snapshots()
    }

    /// How many API requests named `call` arrived ("create", "join", …; the version document
    /// counts as "index", bbb-web's name for it), failed ones included.
    pub fn call_count(&self, call: &str) -> u64 {
        self.shared.call_count(call)
    }

    /// Stops accepting, lets answers in flight finish (hanging requests are released) and waits
    /// for the serving task, at most a few seconds.
    pub async fn shutdown(mut self) {
        self.shared.stopping.send_replace(true);
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        self.shared.stopping.send_replace(true);
    }
}
