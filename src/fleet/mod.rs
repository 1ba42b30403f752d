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

pub use health::{Health, Thresholds};
pub use load::meeting_cost;
pub use placement::{Candidate, MeetingKind, PlacementRequest};

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

/// What is known of one server right now, for placement, operators and metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerStatus {
    pub health: Health,
    /// Why the server is not healthy; empty when it is.
    pub health_reason: String,
    /// Polled load plus outstanding reservations (not divided by weight).
    pub load: f64,
    pub meetings: u32,
    /// Meetings the last poll saw (without placements not seen yet).
    pub polled_meetings: u32,
    pub participants: u64,
    /// Participants recent placements expect beyond those the poll shows.
    pub expected_participants: u64,
    pub polled_at: Option<SystemTime>,
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

/// Why a server may not take a new meeting, for operators.
impl ServerStatus {
    /// Counts a meeting just placed here, which no poll has shown yet: its expected load,
    /// itself, and the participants it expects (as `load::outstanding` counts a fresh
    /// reservation).
    fn reserve(&mut self, participants: u32) {
        self.load += load::expected_cost(participants);
        self.meetings += 1;
        self.expected_participants += u64::from(participants);
    }
}

/// The servers of `servers` that may take a new meeting expecting `participants`, with the
/// figures placement ranks them by; `event_rooms` counts the event's rooms on a server.
fn candidates<'a>(
    servers: impl IntoIterator<Item = &'a Arc<FleetServer>>,
    status: &HashMap<String, ServerStatus>,
    participants: u32,
    event_rooms: impl Fn(&str) -> u64,
) -> Vec<Candidate> {
    servers
        .into_iter()
        .filter_map(|server| {
            let st = status.get(&server.spec.id)?;
            exclusion(server, st, participants)
                .is_none()
                .then(|| Candidate {
                    server: server.clone(),
                    load: st.load / server.spec.weight,
                    event_rooms: event_rooms(&server.spec.id),
                })
        })
        .collect()
}

/// Why `server` may not take a new meeting expecting `participants` (0: unknown), if it may not.
fn exclusion(server: &FleetServer, st: &ServerStatus, participants: u32) -> Option<&'static str> {
    let spec = &server.spec;
    if spec.state != ServerState::Enabled {
        return Some(match spec.state {
            ServerState::Cordoned => "cordoned",
            _ => "disabled",
        });
    }
    match st.health {
        Health::Unknown => return Some("not probed yet"),
        Health::Unhealthy => return Some("unhealthy"),
        Health::Misconfigured => return Some("misconfigured"),
        Health::Healthy => {}
    }
    if spec.max_meetings > 0 && st.meetings >= spec.max_meetings {
        return Some("at its meeting cap");
    }
    if spec.max_participants > 0 {
        let cap = u64::from(spec.max_participants);
        let expected = st.participants + st.expected_participants;
        if expected >= cap {
            return Some("at its participant cap");
        }
        if expected + u64::from(participants) > cap {
            return Some("the expected participants would pass its participant cap");
        }
    }
    None
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
                tracing::error!(server = %id, cause = %reason, "server is misconfigured: it answers but refuses us; no new meetings, its meetings move on their next join")
            }
            Some(Health::Unhealthy) => {
                tracing::warn!(server = %id, cause = %reason, "server is unhealthy: no new meetings, its meetings move on their next join")
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

    /// Whether the last poll saw the meeting running on the server (`None`: never polled).
    pub fn running_on(&self, server_id: &str, meeting_id: &str) -> Option<bool> {
        let live = self.live();
        let polled = live.polled.get(server_id).filter(|p| p.at.is_some())?;
        Some(polled.meetings.get(meeting_id).is_some_and(|m| m.running))
    }

    /// Whether the last poll listed the meeting on the server at all, running or waiting for
    /// its first user (`None`: never polled).
    pub fn listed_on(&self, server_id: &str, meeting_id: &str) -> Option<bool> {
        let live = self.live();
        let polled = live.polled.get(server_id).filter(|p| p.at.is_some())?;
        Some(polled.meetings.contains_key(meeting_id))
    }

    /// Whether the last poll of the server ran at or after `since`.
    pub fn polled_since(&self, server_id: &str, since: SystemTime) -> bool {
        self.live()
            .polled
            .get(server_id)
            .and_then(|p| p.at)
            .is_some_and(|at| at >= since)
    }

    /// Whether a meeting pinned to `server` may stay there: the server exists, answers, is not
    /// disabled, and — when cordoned — still runs the meeting.
    pub fn keeps(&self, server: &FleetServer, meeting_id: &str) -> bool {
        match server.spec.state {
            ServerState::Disabled => false,
            _ if matches!(
                self.health(&server.spec.id),
                Health::Unhealthy | Health::Misconfigured
            ) =>
            {
                false
            }
            ServerState::Cordoned => self.running_on(&server.spec.id, meeting_id) != Some(false),
            ServerState::Enabled => true,
        }
    }

    /// Whether a server the event may use is enabled and healthy (for calls: one that is not
    /// rooms-only). Caps are left out on purpose: a full server still serves what it holds and
    /// frees up as meetings end, and the gate this answers hides BBB from a whole event.
    pub fn availability(&self, event_id: &str, organizer_id: &str) -> Availability {
        let servers = self.snapshot();
        let live = self.live();
        let mut available = Availability::default();
        for server in servers.values() {
            let healthy = live
                .health
                .get(&server.spec.id)
                .is_some_and(|t| t.health().usable());
            if server.spec.state == ServerState::Enabled
                && healthy
                && server.serves(event_id, organizer_id)
            {
                available.rooms = true;
                available.calls |= !server.spec.rooms_only;
            }
        }
        available
    }

    pub fn status(&self) -> HashMap<String, ServerStatus> {
        let servers = self.snapshot();
        let live = self.live();
        status_of(
            &servers,
            &live,
            &live.reservations,
            &live.planned,
            SystemTime::now(),
        )
    }

    /// Every server ranked for a request, with why it may or may not take the meeting, and
    /// the room's planned session that decides its preference, if it has one.
    pub fn explain(
        &self,
        request: &PlacementRequest<'_>,
        event_rooms: &HashMap<String, u64>,
    ) -> Explanation {
        let servers = self.snapshot();
        let live = self.live();
        let now = SystemTime::now();
        let planned = request
            .room
            .and_then(|room| plan::active(&live.planned, request.event_id, room, now))
            .cloned();
        // As its placement would: the room's own planned reservations make way for it.
        let others: Vec<Planned> = live
            .planned
            .iter()
            .filter(|p| {
                planned.is_none()
                    || !(p.event_id == request.event_id && Some(p.room_id.as_str()) == request.room)
            })
            .cloned()
            .collect();
        let request = &planned
            .as_ref()
            .map_or_else(|| request.clone(), |p| plan::follow(request, p));
        let status = status_of(&servers, &live, &live.reservations, &others, now);
        let mut rows: Vec<Explained> = servers
            .values()
            .filter_map(|server| {
                let st = status.get(&server.spec.id)?;
                let excluded = exclusion(server, st, request.participants)
                    .map(|why| {
                        let health = matches!(st.health, Health::Unhealthy | Health::Misconfigured);
                        if health && why == st.health.name() && !st.health_reason.is_empty() {
                            format!("{why}: {}", st.health_reason)
                        } else {
                            why.to_owned()
                        }
                    })
                    .or_else(|| {
                        placement::tier(server, request)
                            .is_none()
                            .then(|| "not for this event or kind".to_owned())
                    });
                Some(Explained {
                    server_id: server.spec.id.clone(),
                    excluded_because: excluded,
                    tier: placement::tier(server, request).unwrap_or(u8::MAX),
                    load: st.load,
                    weight: server.spec.weight,
                    event_rooms: event_rooms.get(&server.spec.id).copied().unwrap_or(0),
                })
            })
            .collect();
        rows.sort_by(|a, b| {
            (a.excluded_because.is_some(), a.tier)
                .cmp(&(b.excluded_because.is_some(), b.tier))
                .then(a.score().total_cmp(&b.score()))
                .then(a.server_id.cmp(&b.server_id))
        });
        let candidates = rows
            .iter()
            .filter(|r| r.excluded_because.is_none())
            .filter_map(|r| {
                Some(Candidate {
                    server: servers.get(&r.server_id)?.clone(),
                    load: r.score(),
                    event_rooms: r.event_rooms,
                })
            })
            .collect();
        let chosen = placement::choose(request, candidates).map(|c| c.server.spec.id.clone());
        Explanation {
            chosen,
            servers: rows,
            planned,
        }
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

/// Where a new meeting would go, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// One of the best servers; `None` when none fits.
    pub chosen: Option<String>,
    /// Every server, eligible ones first, best first.
    pub servers: Vec<Explained>,
    /// The room's planned session that sets its preference and size.
    pub planned: Option<Planned>,
}

/// One line of an explanation.
#[derive(Debug, Clone, PartialEq)]
pub struct Explained {
    pub server_id: String,
    pub excluded_because: Option<String>,
    pub tier: u8,
    pub load: f64,
    pub weight: f64,
    pub event_rooms: u64,
}

impl Explained {
    pub fn score(&self) -> f64 {
        self.load / self.weight
    }
}

fn status_of(
    servers: &HashMap<String, Arc<FleetServer>>,
    live: &Live,
    reservations: &[Reservation],
    planned: &[Planned],
    now: SystemTime,
) -> HashMap<String, ServerStatus> {
    let outstanding = load::outstanding(reservations, planned, &live.polled, now);
    servers
        .keys()
        .map(|id| {
            let p = live.polled.get(id);
            let reserved = outstanding.get(id).copied().unwrap_or_default();
            let tracker = live.health.get(id);
            let status = ServerStatus {
                health: tracker.map_or(Health::Unknown, Tracker::health),
                health_reason: tracker.map(|t| t.reason().to_owned()).unwrap_or_default(),
                load: p.map_or(0.0, Polled::cost) + reserved.load,
                meetings: p.map_or(0, |p| p.meetings.len() as u32) + reserved.meetings,
                expected_participants: reserved.participants,
                polled_meetings: p.map_or(0, |p| p.meetings.len() as u32),
                participants: p.map_or(0, Polled::participants),
                polled_at: p.and_then(|p| p.at),
            };
            (id.clone(), status)
        })
        .collect()
}
