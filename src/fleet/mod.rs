//! The fleet of BBB servers: which exist, whether they answer, what they carry, and where a
//! new meeting goes.

mod batch;
mod bbb_calls;
pub mod ended;
mod health;
mod load;
mod placement;
pub mod plan;
pub mod poller;
mod sighting;

pub use batch::PlaceError;
pub use health::{Health, Thresholds};
pub use load::meeting_cost;
pub use placement::{
    Board, Decision, Inputs, MeetingKind, PlacementRequest, Ranked, ServerStatus, Shortfall,
    Tiebreak,
};
pub use sighting::Sighting;

use crate::bbb::Verdict;
use crate::telemetry::{kv, metrics};
use crate::{
    bbb::{BbbClient, BbbError, Endpoint, Meeting, Tls},
    domain::{Server, ServerState},
    store::{Planned, PolledMeeting, PolledServer, Reservation, Store, StoreError},
};
use health::Tracker;
use load::{Polled, RESERVATION_FADE};
use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, RwLock},
    time::SystemTime,
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

/// A server for unit tests: `id` at a made-up address, as `configure` sets it up.
#[cfg(test)]
fn test_server(id: &str, configure: impl FnOnce(&mut Server)) -> Arc<FleetServer> {
    let mut spec = Server::new(
        id,
        format!("https://{id}.example.org/bigbluebutton/"),
        crate::secret::Secret::new("s"),
    );
    configure(&mut spec);
    let endpoint = Endpoint::new(&spec.url, spec.secret.clone(), spec.checksum)
        .expect("a test server's address is valid");
    Arc::new(FleetServer { spec, endpoint })
}

/// Whether an event's rooms, and its private calls, have a server to go to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Availability {
    pub rooms: bool,
    pub calls: bool,
}

/// What changes while the service runs, behind one lock held only for quick bookkeeping.
#[derive(Debug, Default)]
struct Live {
    health: HashMap<String, Tracker>,
    polled: HashMap<String, Polled>,
    /// Every replica's recent placements, as last read from the database.
    reservations: Vec<Reservation>,
    /// Kept plans' sessions running or about to start, as last read from the database.
    planned: Vec<Planned>,
}

#[derive(Debug)]
pub struct Fleet {
    /// Swapped whole on change so readers never wait.
    servers: RwLock<Arc<HashMap<String, Arc<FleetServer>>>>,
    live: Mutex<Live>,
    thresholds: Thresholds,
    store: Store,
    /// Every call to BBB goes through the fleet (see `bbb_calls`), so each outcome reaches
    /// the server's health.
    bbb: BbbClient,
    /// Placements waiting for the next batch (see `batch`).
    placements: crate::batching::Batches<batch::Pending>,
    ends: ended::Ends,
}

impl Fleet {
    pub fn new(store: Store, servers: Vec<Server>, thresholds: Thresholds, bbb: BbbClient) -> Self {
        let fleet = Self {
            servers: RwLock::default(),
            live: Mutex::default(),
            thresholds,
            store,
            bbb,
            placements: Default::default(),
            ends: Default::default(),
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
                    Ok(endpoint) => {
                        let endpoint = endpoint.with_tls(Tls {
                            ca_bundle: (!spec.ca_bundle.is_empty()).then(|| spec.ca_bundle.clone().into()),
                            insecure: spec.insecure_tls,
                        });
                        Some((spec.id.clone(), Arc::new(FleetServer { spec, endpoint })))
                    }
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

    /// Reloads the registry from the database, where any replica may have changed it.
    pub async fn reload(&self) -> Result<(), StoreError> {
        self.replace(self.store.servers().await?);
        Ok(())
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

    /// Records what a call's outcome says about a server, and says so in the log when its
    /// health changes: misconfiguration as an error (an operator must act), with its cause.
    fn record(&self, id: &str, outcome: Result<(), &BbbError>) {
        let (verdict, detail) = match outcome {
            Ok(()) => (Verdict::Answered, String::new()),
            Err(err) => (err.verdict(), err.to_string()),
        };
        let thresholds = self.thresholds;
        let (changed, before, reason) = {
            let mut live = self.live();
            let tracker = live.health.entry(id.to_owned()).or_default();
            let before = tracker.health();
            let changed = tracker.observe(verdict, &detail, thresholds);
            (changed, before, tracker.reason().to_owned())
        };
        match changed {
            Some(Health::Misconfigured) => {
                tracing::error!(server = %id, cause = %reason, "server is misconfigured: it answers but refuses us; no new meetings, its meetings move when a create there fails")
            }
            Some(Health::Unhealthy) => {
                tracing::warn!(server = %id, cause = %reason, "server is unhealthy: no new meetings; its meetings stay while creates there work")
            }
            Some(Health::Healthy) if before == Health::Misconfigured => {
                tracing::info!(server = %id, "server answers properly again: no longer misconfigured")
            }
            Some(health) => {
                tracing::info!(server = %id, health = health.name(), "server health changed")
            }
            None => {}
        }
    }

    /// Records a poll: the health outcome, and on success the meetings the server carries.
    fn record_poll(&self, id: &str, answer: Result<&[Meeting], &BbbError>, at: SystemTime) {
        self.record(id, answer.map(drop));
        if let Ok(meetings) = answer {
            self.live()
                .polled
                .insert(id.to_owned(), Polled::from_answer(meetings, at));
        }
    }

    /// This replica's view, for the others (written by the poller).
    pub fn shared_view(&self) -> Vec<PolledServer> {
        let live = self.live();
        self.snapshot()
            .keys()
            .map(|id| {
                let polled = live.polled.get(id);
                let tracker = live.health.get(id);
                PolledServer {
                    server_id: id.clone(),
                    health: tracker
                        .map_or(Health::Unknown, Tracker::health)
                        .name()
                        .to_owned(),
                    health_reason: tracker.map(|t| t.reason().to_owned()).unwrap_or_default(),
                    polled_at: polled.and_then(|p| p.at),
                    meetings: polled
                        .map(|p| {
                            p.meetings
                                .iter()
                                .map(|(id, m)| PolledMeeting {
                                    meeting_id: id.clone(),
                                    cost: m.cost,
                                    participants: m.participants,
                                    running: m.running,
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                }
            })
            .collect()
    }

    /// Takes over the poller's view written by another replica.
    pub fn apply_shared(&self, servers: Vec<PolledServer>) {
        let mut live = self.live();
        for s in servers {
            let tracker = Tracker::at(Health::from_name(&s.health), &s.health_reason);
            live.health.insert(s.server_id.clone(), tracker);
            let meetings = s
                .meetings
                .into_iter()
                .map(|m| {
                    let seen = load::SeenMeeting {
                        cost: m.cost,
                        participants: m.participants,
                        running: m.running,
                    };
                    (m.meeting_id, seen)
                })
                .collect();
            live.polled.insert(
                s.server_id,
                Polled {
                    at: s.polled_at,
                    meetings,
                },
            );
        }
    }

    /// Refreshes every replica's recent placements, and the kept plans' sessions running or
    /// about to start, from the database.
    pub async fn reload_reservations(&self) -> Result<(), StoreError> {
        let asked = SystemTime::now();
        let mut current = self.store.reservations(RESERVATION_FADE).await?;
        let mut planned = self.store.planned_now(plan::LEAD).await?;
        let mut live = self.live();
        // What this replica's placements recorded while the reads were under way stays:
        // reservations made since, and claims (which never revert).
        let read: HashSet<String> = current.iter().map(|r| r.meeting_id.clone()).collect();
        let since: Vec<Reservation> = live
            .reservations
            .iter()
            .filter(|r| r.at >= asked && !read.contains(&r.meeting_id))
            .cloned()
            .collect();
        current.extend(since);
        let taken: HashSet<(&str, &str, SystemTime)> = live
            .planned
            .iter()
            .filter(|p| p.claimed)
            .map(|p| (p.event_id.as_str(), p.room_id.as_str(), p.start))
            .collect();
        for p in &mut planned {
            p.claimed |= taken.contains(&(p.event_id.as_str(), p.room_id.as_str(), p.start));
        }
        live.reservations = current;
        live.planned = planned;
        Ok(())
    }

    /// Whether a meeting ensured on `server_id` at `since` may still be taken as existing: false
    /// once the server is unusable, or once a poll after `since` no longer shows the meeting.
    pub fn still_hosting(&self, server_id: &str, meeting_id: &str, since: SystemTime) -> bool {
        let live = self.live();
        if live
            .health
            .get(server_id)
            .is_some_and(|t| matches!(t.health(), Health::Unhealthy | Health::Misconfigured))
        {
            return false;
        }
        match live.polled.get(server_id) {
            Some(p) if p.at.is_some_and(|at| at > since) => p.meetings.contains_key(meeting_id),
            _ => true,
        }
    }

    /// Whether the configuration gives an event's rooms a server (and its calls one that is
    /// not rooms-only), whatever the servers' health: the answer is eventyay's gate that hides
    /// BBB from a whole event ("deactivated by the admin"), so an outage must not flip it; joins
    /// during one fail with the retryable `bbb.failed` instead. Cordoned servers count: a cordon
    /// is an operator's pause for maintenance (the server still serves what it holds, and
    /// comes back), not a decision that the event has no BBB. Caps are left out for the same
    /// reason: a full server frees up as meetings end.
    pub fn availability(&self, event_id: &str, organizer_id: &str) -> Availability {
        let mut available = Availability::default();
        for server in self.snapshot().values() {
            if server.spec.state != ServerState::Disabled && server.serves(event_id, organizer_id) {
                available.rooms = true;
                available.calls |= !server.spec.rooms_only;
            }
        }
        available
    }

    pub fn status(&self) -> HashMap<String, ServerStatus> {
        let servers = self.snapshot();
        let live = self.live();
        placement::status(
            &servers,
            &live.health,
            &live.polled,
            &live.reservations,
            &live.planned,
            SystemTime::now(),
        )
    }

    /// Where a placement of `request` would go now, with every server ranked and why it may or
    /// may not take the meeting, and the room's planned session that decides its preference,
    /// if it has one. `event_rooms`: the event's rooms per server.
    pub fn explain(
        &self,
        request: &PlacementRequest<'_>,
        event_rooms: &HashMap<String, u64>,
    ) -> Decision {
        let servers = self.snapshot();
        let rooms = HashMap::from([(request.event_id.to_owned(), event_rooms.clone())]);
        let placing: Vec<(&str, &str)> = request
            .room
            .map(|room| (request.event_id, room))
            .into_iter()
            .collect();
        let live = self.live();
        let board = Board::new(
            Inputs {
                servers: &servers,
                health: &live.health,
                polled: &live.polled,
                reservations: &live.reservations,
                planned: &live.planned,
                event_rooms: &rooms,
                now: SystemTime::now(),
            },
            &placing,
        );
        board.decide(request, &[], Tiebreak::Random)
    }

    /// Takes back the reservation a placement of `meeting_id` on `server_id` made, here and in
    /// the database, when what it was for did not happen (an operator's move refused after
    /// its placement). A later placement of the meeting elsewhere is left alone.
    pub async fn withdraw(&self, meeting_id: &str, server_id: &str) -> Result<(), StoreError> {
        self.live()
            .reservations
            .retain(|r| r.meeting_id != meeting_id || r.server_id != server_id);
        self.store.withdraw_reservation(meeting_id, server_id).await
    }
}

/// Publishes every server's health, load, meetings and participants as gauges, read from the
/// fleet whenever metrics are collected. The gauges are registered once per process (the SDK
/// refuses a second registration); each fleet started in the process joins them.
pub fn observe(fleet: &Arc<Fleet>) {
    static FLEETS: Mutex<Vec<std::sync::Weak<Fleet>>> = Mutex::new(Vec::new());
    static REGISTER: std::sync::Once = std::sync::Once::new();
    {
        let mut fleets = FLEETS.lock().unwrap_or_else(|p| p.into_inner());
        fleets.retain(|f| f.strong_count() > 0);
        fleets.push(Arc::downgrade(fleet));
    }
    REGISTER.call_once(|| {
        let meter = crate::telemetry::meter();
        let gauge =
            |name: &'static str, description: &'static str, value: fn(&ServerStatus) -> f64| {
                meter
                    .f64_observable_gauge(name)
                    .with_description(description)
                    .with_callback(move |observer| {
                        let fleets = FLEETS.lock().unwrap_or_else(|p| p.into_inner()).clone();
                        for fleet in fleets.iter().filter_map(std::sync::Weak::upgrade) {
                            for (id, status) in fleet.status() {
                                observer.observe(value(&status), &[kv("server", id)]);
                            }
                        }
                    })
                    .build();
            };
        gauge(
            "eventyay_bbb.server.healthy",
            "1 when the server answers, else 0",
            |s| f64::from(u8::from(s.health == Health::Healthy)),
        );
        gauge(
            "eventyay_bbb.server.misconfigured",
            "1 when the server answers but refuses us (see servers list for why), else 0",
            |s| f64::from(u8::from(s.health == Health::Misconfigured)),
        );
        gauge(
            "eventyay_bbb.server.load",
            "Polled load plus reservations (cost units)",
            |s| s.load,
        );
        gauge(
            "eventyay_bbb.server.meetings",
            "Meetings on the server",
            |s| f64::from(s.meetings),
        );
        gauge(
            "eventyay_bbb.server.participants",
            "Participants on the server",
            |s| s.participants as f64,
        );
    });
}
