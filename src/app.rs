//! Assembles the service from its settings and runs it: `serve`, `dev`, and the tests'
//! in-process instances all start here.

use crate::{
    api::{self, BbbApi, FleetApi},
    bbb::BbbClient,
    config::Settings,
    fleet::{Fleet, ended, poller},
    meetings::Meetings,
    operators::Operators,
    recordings::Recordings,
    store::{Store, StoreError},
    tls::{ReloadingIdentity, TlsError},
};
use std::{net::SocketAddr, sync::Arc, time::Duration};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};

/// Longest wait for running calls at shutdown: Kubernetes kills the pod 30 s after SIGTERM.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// How long the start-up probe of the fleet may take.
const START_PROBE: Duration = Duration::from_secs(3);

/// How often readiness asks the database whether it answers.
const READINESS_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The cause is shown: at start an operator must be able to tell a wrong password from a
    /// missing table. Database errors do not echo the URL.
    #[error("database: {}", .0.0)]
    Database(#[from] StoreError),
    /// Names the file and what is wrong with it, never its content.
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A running service. Dropping it does not stop it; call [`Service::stop`].
pub struct Service {
    addr: SocketAddr,
    reporter: tonic_health::server::HealthReporter,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
    health_task: Option<JoinHandle<Result<(), tonic::transport::Error>>>,
    health_addr: Option<SocketAddr>,
    callback_addr: Option<SocketAddr>,
    callback_task: Option<JoinHandle<()>>,
}

impl Service {
    /// Connects the database, applies migrations if asked, loads the fleet and starts serving.
    pub async fn start(settings: Settings) -> Result<Self, StartError> {
        // Before anything else: a broken certificate must not wait for the database to be found.
        let tls = settings
            .tls
            .clone()
            .map(ReloadingIdentity::load)
            .transpose()?;
        let store =
            Store::connect_with_pool(settings.database_url.expose(), settings.database_pool)
                .await?;
        if settings.migrate {
            store.migrate().await?;
        }
        if let Some(servers) = &settings.servers {
            store.sync_file_servers(servers).await?;
        }
        let fleet = Arc::new(Fleet::new(
            store.clone(),
            store.servers().await?,
            settings.health,
            BbbClient::new(settings.bbb_timeouts),
        ));
        crate::fleet::observe(&fleet);
        if let Some(callback) = &settings.callback {
            let key = store.end_callback_key().await?;
            fleet.enable_end_callback(&callback.url, key, settings.poll_interval);
        }
        // A restart must not leave the fleet unusable until the first poll: ask every server
        // once now, briefly.
        poller::poll_once(&fleet, START_PROBE.min(settings.bbb_timeouts.poll)).await;
        let meetings = Arc::new(Meetings::new(
            store.clone(),
            fleet.clone(),
            settings.ensure_ttl,
            settings.private_presentations,
            settings.pin_rooms,
        ));
        let recordings = Recordings::new(store.clone(), fleet.clone());
        let operators = Operators::new(store.clone(), fleet.clone(), meetings.clone());
        let (listener, addr) = bind(settings.listen).await?;
        let health_listener = match settings.health_listen {
            Some(health_addr) => Some(bind(health_addr).await?),
            None => None,
        };
        let callback_listener = match &settings.callback {
            Some(callback) => Some(bind(callback.listen).await?),
            None => None,
        };

        let (reporter, health) = tonic_health::server::health_reporter();
        api::set_ready(&reporter, true).await;
        let (stop, mut stopped) = watch::channel(false);
        let tls_config = tls.map(|identity| {
            tokio::spawn(identity.clone().watch(stop.subscribe()));
            identity.server_config(&[b"h2"])
        });
        let health_addr = health_listener.as_ref().map(|(_, bound)| *bound);
        let health_task = health_listener.map(|(listener, health_addr)| {
            tracing::info!(addr = %health_addr, "serving health checks in plaintext");
            tokio::spawn(api::serve_health(listener, health.clone()))
        });
        tokio::spawn(watch_readiness(
            store.clone(),
            reporter.clone(),
            stop.subscribe(),
        ));
        let callback_addr = callback_listener.as_ref().map(|(_, bound)| *bound);
        let callback_task = callback_listener.map(|(listener, bound)| {
            tracing::info!(addr = %bound, "serving BBB's end callbacks");
            tokio::spawn(ended::watch_ends(
                fleet.clone(),
                store.clone(),
                stop.subscribe(),
            ));
            tokio::spawn(crate::callback::serve(
                listener,
                fleet.clone(),
                stop.subscribe(),
            ))
        });
        tokio::spawn(poller::run(
            fleet,
            store.clone(),
            settings.poll_interval,
            settings.call_max_age,
            stop.subscribe(),
        ));
        let bbb_api = BbbApi {
            meetings,
            recordings: Arc::new(recordings),
            rpc_timeout: settings.rpc_timeout,
        };
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        let health_reporter = reporter.clone();
        let task = tokio::spawn(api::serve(
            listener,
            tls_config.clone(),
            bbb_api,
            FleetApi {
                operators: Arc::new(operators),
            },
            settings.api_tokens,
            settings.admin_tokens,
            reporter,
            health,
            shutdown,
        ));
        tracing::info!(%addr, tls = tls_config.is_some(), "serving gRPC");
        Ok(Self {
            addr,
            reporter: health_reporter,
            stop,
            task,
            health_task,
            health_addr,
            callback_addr,
            callback_task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The plaintext health-check address, when `health_listen` is set.
    pub fn health_addr(&self) -> Option<SocketAddr> {
        self.health_addr
    }

    /// The end callback listener's address, when the callback is on.
    pub fn callback_addr(&self) -> Option<SocketAddr> {
        self.callback_addr
    }

    /// Reports NOT_SERVING, stops accepting calls, lets running ones finish (for at most
    /// `DRAIN_TIMEOUT`), and returns when the server is down.
    pub async fn stop(self) {
        api::set_ready(&self.reporter, false).await;
        let _ = self.stop.send(true);
        let abort = self.task.abort_handle();
        match tokio::time::timeout(DRAIN_TIMEOUT, self.task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(err))) => tracing::error!(%err, "gRPC server failed"),
            Ok(Err(err)) => tracing::error!(%err, "gRPC server task failed"),
            Err(_) => {
                tracing::warn!("calls still running after the drain period; stopping anyway");
                abort.abort();
            }
        }
        if let Some(health) = self.health_task {
            health.abort();
        }
        // The listener closes its port when its task returns: a restart may bind it again.
        if let Some(callback) = self.callback_task {
            let _ = callback.await;
        }
    }
}

async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), StartError> {
    let listen_error = |source| StartError::Listen { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(listen_error)?;
    let bound = listener.local_addr().map_err(listen_error)?;
    Ok((listener, bound))
}

/// Reports NOT_SERVING while the database does not answer, and SERVING again once it does,
/// without a restart.
async fn watch_readiness(
    store: Store,
    reporter: tonic_health::server::HealthReporter,
    mut stopped: watch::Receiver<bool>,
) {
    let mut ready = true;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(READINESS_INTERVAL) => {}
            _ = stopped.changed() => return,
        }
        let now = store.ping(READINESS_INTERVAL).await;
        if now != ready {
            ready = now;
            if ready {
                tracing::info!("database answers again: ready");
            } else {
                tracing::warn!("database does not answer: not ready");
            }
            api::set_ready(&reporter, ready).await;
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}
