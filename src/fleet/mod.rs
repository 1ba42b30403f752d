//! The fleet of BBB servers: which exist, whether they answer, what they carry, and where a
//! new meeting goes.

mod health;
mod load;
mod placement;
pub mod poller;

pub use health::{Health, Thresholds};
pub use load::meeting_cost;
pub use placement::{Candidate, MeetingKind, PlacementRequest};

use crate::{
    bbb::{BbbError, Endpoint, Meeting},
    store::{Server, ServerState},
};
use health::Tracker;
use load::{Polled, Reservations};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, RwLock},
    time::Instant,
};

/// A configured server with its signing endpoint ready.
#[derive(Debug)]
pub struct FleetServer {
    pub spec: Server,
    pub endpoint: Endpoint,
}

impl FleetServer {
    /// Whether the server may be used by this event at all.
    pub fn serves(&self, event_id: &str, organizer_id: &str) -> bool {
        let s = &self.spec;
        (s.events.is_empty() && s.organizers.is_empty())
            || s.events.iter().any(|e| e == event_id)
            || s.organizers.iter().any(|o| o == organizer_id)
    }
}

/// What is known of one server right now, for placement, operators and metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerStatus {
    pub health: Health,
    /// Polled load plus outstanding reservations (not divided by weight).
    pub load: f64,
    pub meetings: u32,
    pub participants: u64,
    pub polled_at: Option<Instant>,
}

/// What changes while the service runs, behind one lock held only for quick bookkeeping.
#[derive(Debug, Default)]
struct Live {
    health: HashMap<String, Tracker>,
    polled: HashMap<String, Polled>,
    reservations: Reservations,
}

#[derive(Debug)]
pub struct Fleet {
    /// Swapped whole on change so readers never wait.
    servers: RwLock<Arc<HashMap<String, Arc<FleetServer>>>>,
    live: Mutex<Live>,
    thresholds: Thresholds,
}

impl Fleet {
    pub fn new(servers: Vec<Server>, thresholds: Thresholds) -> Self {
        let fleet = Self {
            servers: RwLock::default(),
            live: Mutex::default(),
            thresholds,
        };
        fleet.replace(servers);
        fleet
    }

    /// Replaces the registry. Servers whose URL cannot be a BBB base are left out with a
    /// warning (the servers file is checked on load; this guards rows edited by hand). What is
    /// known of servers that stay is kept; new ones start unknown, so they take no meetings
    /// before a probe.
    pub fn replace(&self, servers: Vec<Server>) {
        let map: HashMap<_, _> = servers
            .into_iter()
            .filter_map(|spec| {
                match Endpoint::new(&spec.url, spec.secret.clone(), spec.checksum) {
                    Ok(endpoint) => Some((spec.id.clone(), Arc::new(FleetServer { spec, endpoint }))),
                    Err(err) => {
                        tracing::warn!(server = %spec.id, %err, "ignoring a server with an unusable URL");
                        None
                    }
                }
            })
            .collect();
        {
            let mut live = self.live();
            live.health.retain(|id, _| map.contains_key(id));
            live.polled.retain(|id, _| map.contains_key(id));
        }
        *self.servers.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(map);
    }

    fn live(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, id: &str) -> Option<Arc<FleetServer>> {
        self.snapshot().get(id).cloned()
    }

    pub fn snapshot(&self) -> Arc<HashMap<String, Arc<FleetServer>>> {
        self.servers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn health(&self, id: &str) -> Health {
        self.live()
            .health
            .get(id)
            .map_or(Health::Unknown, Tracker::health)
    }

    /// Records the outcome of a real call to a server (poll, create, …): BBB answering, even
    /// with a refusal, is a success; no answer is a failure.
    pub fn record(&self, id: &str, outcome: Result<(), &BbbError>) {
        let answered = match outcome {
            Ok(()) => true,
            Err(BbbError::Api { .. }) => true,
            Err(_) => false,
        };
        let thresholds = self.thresholds;
        let changed = {
            let mut live = self.live();
            let tracker = live.health.entry(id.to_owned()).or_default();
            if answered {
                tracker.success(thresholds)
            } else {
                tracker.failure(thresholds)
            }
        };
        match changed {
            Some(Health::Unhealthy) => {
                tracing::warn!(server = %id, "server is unhealthy: no new meetings, its meetings move on their next join")
            }
            Some(health) => {
                tracing::info!(server = %id, health = health.name(), "server health changed")
            }
            None => {}
        }
    }

    /// Records a poll: the health outcome, and on success the meetings the server carries.
    pub fn record_poll(&self, id: &str, answer: Result<&[Meeting], &BbbError>, at: Instant) {
        self.record(id, answer.map(drop));
        if let Ok(meetings) = answer {
            self.live()
                .polled
                .insert(id.to_owned(), Polled::from_answer(meetings, at));
        }
    }

    /// Whether a meeting ensured on `server_id` at `since` may still be taken as existing: false
    /// once the server is unusable, or once a poll after `since` no longer shows the meeting.
    pub fn still_hosting(&self, server_id: &str, meeting_id: &str, since: Instant) -> bool {
        let live = self.live();
        if live.health.get(server_id).map(Tracker::health) == Some(Health::Unhealthy) {
            return false;
        }
        match live.polled.get(server_id) {
            Some(p) if p.at.is_some_and(|at| at > since) => p.meetings.contains_key(meeting_id),
            _ => true,
        }
    }

    /// Whether the last poll saw the meeting running on the server (`None`: never polled).
    pub fn running_on(&self, server_id: &str, meeting_id: &str) -> Option<bool> {
        let live = self.live();
        let polled = live.polled.get(server_id).filter(|p| p.at.is_some())?;
        Some(polled.meetings.get(meeting_id).is_some_and(|m| m.running))
    }

    /// Whether a meeting pinned to `server` may stay there: the server exists, answers, is not
    /// disabled, and — when cordoned — still runs the meeting.
    pub fn keeps(&self, server: &FleetServer, meeting_id: &str) -> bool {
        match server.spec.state {
            ServerState::Disabled => false,
            _ if self.health(&server.spec.id) == Health::Unhealthy => false,
            ServerState::Cordoned => self.running_on(&server.spec.id, meeting_id) != Some(false),
            ServerState::Enabled => true,
        }
    }

    pub fn status(&self) -> HashMap<String, ServerStatus> {
        let servers = self.snapshot();
        status_of(&servers, &mut self.live(), Instant::now())
    }

    /// Picks the server for a new meeting and reserves its expected load there, all under one
    /// lock so that concurrent placements see each other's reservations. `None` when no server
    /// fits (enabled, healthy, under its caps, not in `exclude`).
    pub fn place(
        &self,
        request: &PlacementRequest<'_>,
        event_rooms: &HashMap<String, u64>,
        exclude: &[String],
        meeting_id: &str,
    ) -> Option<Arc<FleetServer>> {
        let servers = self.snapshot();
        let now = Instant::now();
        let mut live = self.live();
        let status = status_of(&servers, &mut live, now);
        let candidates = servers
            .values()
            .filter(|s| s.spec.state == ServerState::Enabled && !exclude.contains(&s.spec.id))
            .filter_map(|server| {
                let st = status.get(&server.spec.id)?;
                let spec = &server.spec;
                let full = (spec.max_meetings > 0 && st.meetings >= spec.max_meetings)
                    || (spec.max_participants > 0
                        && st.participants >= u64::from(spec.max_participants));
                (st.health == Health::Healthy && !full).then(|| Candidate {
                    server: server.clone(),
                    load: st.load / spec.weight,
                    event_rooms: event_rooms.get(&spec.id).copied().unwrap_or(0),
                })
            })
            .collect();
        let chosen = placement::choose(request, candidates)?;
        live.reservations
            .reserve(&chosen.server.spec.id, meeting_id, now);
        Some(chosen.server)
    }
}

fn status_of(
    servers: &HashMap<String, Arc<FleetServer>>,
    live: &mut Live,
    now: Instant,
) -> HashMap<String, ServerStatus> {
    let Live {
        health,
        polled,
        reservations,
    } = live;
    let outstanding = reservations.outstanding(polled, now);
    servers
        .keys()
        .map(|id| {
            let p = polled.get(id);
            let (reserved, unseen) = outstanding.get(id).copied().unwrap_or_default();
            let status = ServerStatus {
                health: health.get(id).map_or(Health::Unknown, Tracker::health),
                load: p.map_or(0.0, Polled::cost) + reserved,
                meetings: p.map_or(0, |p| p.meetings.len() as u32) + unseen,
                participants: p.map_or(0, Polled::participants),
                polled_at: p.and_then(|p| p.at),
            };
            (id.clone(), status)
        })
        .collect()
}
