//! Ending many meetings at once (an event's deletion): every server in parallel, a few calls
//! at a time on each, all by one deadline. A server that cannot be asked, or did not answer
//! for all its meetings in time, is named rather than waited for.

use crate::{bbb::Ended, domain::Meeting, fleet::Fleet, fleet::Health};
use std::{
    collections::{BTreeSet, HashMap},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};
use tokio::{task::JoinSet, time::Instant};

/// `end` calls in flight per server: enough to end a large event in seconds, few enough that
/// a deletion never looks like an attack to a server that is still hosting other events.
const PER_SERVER: usize = 8;

/// What ending the meetings came to.
#[derive(Debug, Default)]
pub struct EndOutcome {
    /// Meetings that were running and are now ended.
    pub ended: u64,
    /// Servers where some meeting may still run, sorted.
    pub failed_on: Vec<String>,
}

pub async fn end_all(fleet: &Arc<Fleet>, meetings: &[Meeting], by: Instant) -> EndOutcome {
    let mut per_server: HashMap<&str, Vec<&Meeting>> = HashMap::new();
    for meeting in meetings {
        per_server
            .entry(meeting.server_id.as_str())
            .or_default()
            .push(meeting);
    }
    let ended = Arc::new(AtomicU64::new(0));
    let mut failed = BTreeSet::new();
    let mut pending = BTreeSet::new();
    let mut servers = JoinSet::new();
    for (server_id, meetings) in per_server {
        // A server removed from the fleet runs nothing of ours any more.
        let Some(server) = fleet.get(server_id) else {
            continue;
        };
        if unreachable(fleet, server_id) {
            failed.insert(server_id.to_owned());
            continue;
        }
        pending.insert(server_id.to_owned());
        let todo: Vec<(String, String)> = meetings
            .iter()
            .map(|m| (m.bbb_meeting_id.clone(), m.moderator_pw.clone()))
            .collect();
        let (fleet, ended) = (fleet.clone(), ended.clone());
        servers.spawn(async move {
            let id = server.spec.id.clone();
            let mut todo = todo.into_iter();
            let mut running = JoinSet::new();
            let mut complete = true;
            loop {
                // Once the server is known not to answer, the rest would only wait.
                if unreachable(&fleet, &id) {
                    complete = false;
                    break;
                }
                while running.len() < PER_SERVER {
                    let Some((meeting_id, pw)) = todo.next() else {
                        break;
                    };
                    let (fleet, server) = (fleet.clone(), server.clone());
                    running.spawn(async move { fleet.end(&server, &meeting_id, Some(&pw)).await });
                }
                match running.join_next().await {
                    None => break,
                    Some(Ok(Ok(Ended::Ended))) => {
                        ended.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(Ok(Ok(Ended::NotRunning))) => {}
                    Some(_) => complete = false,
                }
            }
            (id, complete)
        });
    }
    let joined = tokio::time::timeout_at(by, async {
        while let Some(done) = servers.join_next().await {
            if let Ok((id, complete)) = done {
                pending.remove(&id);
                if !complete {
                    failed.insert(id);
                }
            }
        }
    })
    .await;
    if joined.is_err() {
        tracing::warn!(servers = ?pending, "ending meetings ran out of time");
    }
    // Whatever did not finish in time is cut off here (dropping the set aborts it).
    failed.extend(pending);
    EndOutcome {
        ended: ended.load(Ordering::Relaxed),
        failed_on: failed.into_iter().collect(),
    }
}

fn unreachable(fleet: &Fleet, server_id: &str) -> bool {
    matches!(
        fleet.health(server_id),
        Health::Unhealthy | Health::Misconfigured
    )
}
