//! Asks every server what it carries, on an interval: all servers at once, each within its own
//! deadline, so one hung server delays nothing but its own figures.

use super::{Fleet, ended};
use crate::{
    domain::ServerState,
    store::{Audit, Store, StoreError},
};
use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use tokio::{sync::watch, task::JoinSet, time::Instant};

/// Polls every server that is not disabled once, and records health and load. Returns when
/// every server has answered or run out of `deadline`.
#[tracing::instrument(name = "fleet.poll", skip_all)]
pub async fn poll_once(fleet: &Arc<Fleet>, deadline: Duration) {
    let mut asks = JoinSet::new();
    for server in fleet.snapshot().values() {
        if server.spec.state == ServerState::Disabled {
            continue;
        }
        let (server, fleet) = (server.clone(), fleet.clone());
        asks.spawn(tracing::Instrument::in_current_span(async move {
            if let Err(err) = fleet.poll(&server, deadline).await {
                tracing::debug!(server = %server.spec.id, %err, "poll failed");
            }
        }));
    }
    while asks.join_next().await.is_some() {}
}

/// The poller's loop, on every replica. Every `interval` one replica — the holder of the
/// database lease, renewed each round and taken over within two intervals when its holder dies
/// — polls the fleet and writes what it saw; the others read that. Every replica then reloads
/// the registry (operators may have changed it through any replica) and the placements every
/// replica reserved. The poller also completes drains (a draining server that carries no
/// meeting is disabled) and deletes private calls older than `call_max_age`.
pub async fn run(
    fleet: Arc<Fleet>,
    store: Store,
    interval: Duration,
    call_max_age: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let replica = uuid::Uuid::new_v4().to_string();
    let deadline = interval.min(fleet.timeouts().poll);
    let mut next = Instant::now() + interval;
    let mut leading = false;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        next += interval;
        let result = match round(&fleet, &store, &replica, interval, deadline, &mut leading).await {
            // The poller's replica also retires old private calls, and the ends of meetings
            // whose callback URLs are too old to be accepted.
            Ok(()) if leading => retire(&store, call_max_age).await,
            other => other,
        };
        if let Err(err) = result {
            tracing::warn!(error = %err.0, "fleet round incomplete: database unavailable");
        }
    }
}

async fn round(
    fleet: &Arc<Fleet>,
    store: &Store,
    replica: &str,
    interval: Duration,
    deadline: Duration,
    leading: &mut bool,
) -> Result<(), StoreError> {
    fleet.reload().await?;
    let lead = store
        .acquire_lease(POLLER_LEASE, replica, interval * 2)
        .await?;
    if lead != *leading {
        *leading = lead;
        tracing::info!(replica, leading = lead, "poller lease changed hands");
    }
    if lead {
        poll_once(fleet, deadline).await;
        store.write_polled(&fleet.shared_view()).await?;
        complete_drains(fleet, store).await?;
    } else {
        fleet.apply_shared(store.read_polled().await?);
        // The poller's view may predate ends this replica knows of.
        fleet.apply_ends();
    }
    fleet.reload_reservations().await?;
    fleet.apply_ends();
    Ok(())
}

async fn retire(store: &Store, call_max_age: Duration) -> Result<(), StoreError> {
    let calls = store.expire_calls(call_max_age).await?;
    if calls > 0 {
        tracing::info!(calls, "expired private calls deleted");
    }
    let before = SystemTime::now()
        .checked_sub(ended::URL_MAX_AGE + Duration::from_secs(86_400))
        .unwrap_or(UNIX_EPOCH);
    store.prune_ends(before).await?;
    Ok(())
}

/// The lease that elects the one replica that polls.
const POLLER_LEASE: &str = "poller";

async fn complete_drains(fleet: &Arc<Fleet>, store: &Store) -> Result<(), StoreError> {
    let status = fleet.status();
    let mut disabled_any = false;
    for server in fleet.snapshot().values() {
        let empty = status
            .get(&server.spec.id)
            .is_some_and(|s| s.polled_at.is_some() && s.polled_meetings == 0);
        if server.spec.draining && server.spec.state == ServerState::Cordoned && empty {
            let audit = Audit {
                actor: "poller",
                action: "drain-completed",
                target: &server.spec.id,
                details: "no meetings left: disabled".into(),
            };
            // The registry may be a round old: the store disables the server only if it is
            // still draining.
            if store.complete_drain(&server.spec.id, audit).await? {
                tracing::info!(server = %server.spec.id, "drained: disabled");
                disabled_any = true;
            }
        }
    }
    // The round reloaded the registry already; only a drain just completed changed it since.
    if disabled_any {
        fleet.reload().await?;
    }
    Ok(())
}
