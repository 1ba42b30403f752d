//! Asks every server what it carries, on an interval: all servers at once, each within its own
//! deadline, so one hung server delays nothing but its own figures.

use super::Fleet;
use crate::{bbb::BbbClient, store::ServerState};
use std::{sync::Arc, time::Duration};
use tokio::{sync::watch, task::JoinSet, time::Instant};

/// Polls every server that is not disabled once, and records health and load. Returns when
/// every server has answered or run out of `deadline`.
pub async fn poll_once(fleet: &Arc<Fleet>, bbb: &BbbClient, deadline: Duration) {
    let mut asks = JoinSet::new();
    for server in fleet.snapshot().values() {
        if server.spec.state == ServerState::Disabled {
            continue;
        }
        let (server, bbb, fleet) = (server.clone(), bbb.clone(), fleet.clone());
        asks.spawn(async move {
            let at = std::time::Instant::now();
            let answer =
                match tokio::time::timeout(deadline, bbb.get_meetings(&server.endpoint)).await {
                    Ok(answer) => answer,
                    Err(_) => Err(crate::bbb::BbbError::Timeout(deadline)),
                };
            if let Err(err) = &answer {
                tracing::debug!(server = %server.spec.id, %err, "poll failed");
            }
            fleet.record_poll(&server.spec.id, answer.as_deref(), at);
        });
    }
    while asks.join_next().await.is_some() {}
}

/// Polls every `interval` until `stop` turns true. Each round's deadline is the interval
/// itself (at most the client's poll timeout), so rounds never pile up.
pub async fn run(
    fleet: Arc<Fleet>,
    bbb: BbbClient,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let deadline = interval.min(bbb.timeouts().poll);
    let mut next = Instant::now() + interval;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        next += interval;
        poll_once(&fleet, &bbb, deadline).await;
    }
}
