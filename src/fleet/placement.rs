//! Where a new meeting goes: the one placement decision. Live placements (single and batched),
//! `servers explain` and the schedule forecast all ask it, so they cannot drift apart. It is
//! pure: plain data in (servers, what polls and health say, reservations, kept plans, the
//! event's rooms, `now`), a decision with its reasons out; the callers do the I/O.
//!
//! - **Exclusion** is for what a server cannot do now: it is not enabled, not healthy, not for
//!   the event or kind, left out by the caller, or at a cap (its meeting cap, or polled plus
//!   reserved participants at its participant cap).
//! - **Estimates rank, caps refuse.** Servers with room for the meeting's expected
//!   participants come first. Among those, tiers as the original module ordered them: the
//!   preferred server, then servers reserved for the event, then the organizer's, then the
//!   global pool. Inside the best tier, servers are ranked by load per unit of weight; among
//!   those within about 10% of the least loaded, a room goes where its event has the fewest
//!   rooms (an event's rooms fill up at the same hour, so spreading them spreads that peak),
//!   then at random (live placement: concurrent placements must not all pick the same server)
//!   or by id (forecasts, which must say the same every time).
//! - When no eligible server has room for the estimate, the meeting still goes — to the one
//!   with the most participant headroom, then by tier and load — and the decision names the
//!   shortfall: an estimate is a guess, and refusing everyone because of it helps nobody.

use super::{FleetServer, health::Health, health::Tracker, load, load::Polled, plan};
use crate::{
    domain::ServerState,
    store::{Planned, Reservation},
};
use rand::seq::IndexedRandom;
use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::SystemTime,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeetingKind {
    Room,
    /// A private call: never on a rooms-only server.
    Call,
}

#[derive(Debug, Clone)]
pub struct PlacementRequest<'a> {
    pub event_id: &'a str,
    pub organizer_id: &'a str,
    pub kind: MeetingKind,
    /// A server id, or a server URL as the original matched it.
    pub prefer: Option<&'a str>,
    /// How many the meeting is expected to bring (a room's expectation, a call's members);
    /// 0: unknown. It sizes the reservation and ranks servers; it never refuses one.
    pub participants: u32,
    /// The room being placed: a session of it in the event's kept plan, running or about to
    /// start, sends it to its planned server (see `plan::active`).
    pub room: Option<&'a str>,
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

impl ServerStatus {
    /// Counts a meeting just placed here, which no poll has shown yet: its expected load,
    /// itself, and the participants it expects (as `load::outstanding` counts a fresh
    /// reservation).
    fn reserve(&mut self, participants: u32) {
        self.load += load::expected_cost(participants);
        self.meetings += 1;
        self.expected_participants += u64::from(participants);
    }

    /// Participants on the server and on their way to it.
    fn carried(&self) -> u64 {
        self.participants + self.expected_participants
    }
}

/// Every server's status: its health, its last poll, and what reservations and the kept
/// plans' sessions in `planned` hold on it at `now`.
pub fn status(
    servers: &HashMap<String, Arc<FleetServer>>,
    health: &HashMap<String, Tracker>,
    polled: &HashMap<String, Polled>,
    reservations: &[Reservation],
    planned: &[Planned],
    now: SystemTime,
) -> HashMap<String, ServerStatus> {
    let outstanding = load::outstanding(reservations, planned, polled, now);
    servers
        .keys()
        .map(|id| {
            let p = polled.get(id);
            let reserved = outstanding.get(id).copied().unwrap_or_default();
            let tracker = health.get(id);
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

/// Loads within this factor of the best count as equally good.
const BAND: f64 = 1.10;
/// Plus this much, so that near-empty servers (load 0, 10, 20…) count as equal.
const BAND_FLOOR: f64 = 1.0;

fn is_preferred(server: &FleetServer, prefer: &str) -> bool {
    if server.spec.id == prefer {
        return true;
    }
    // URLs match however they are written: compare the normalised API bases.
    crate::bbb::Endpoint::new(prefer, crate::secret::Secret::new(""), server.spec.checksum)
        .is_ok_and(|e| e.api_base() == server.endpoint.api_base())
}

/// The tier a server belongs to for this request (lower wins), or `None` when the request
/// may not use it at all.
pub(super) fn tier(server: &FleetServer, request: &PlacementRequest<'_>) -> Option<u8> {
    if request.kind == MeetingKind::Call && server.spec.rooms_only {
        return None;
    }
    if !server.serves(request.event_id, request.organizer_id) {
        return None;
    }
    let s = &server.spec;
    Some(
        if request
            .prefer
            .is_some_and(|p| !p.is_empty() && is_preferred(server, p))
        {
            0
        } else if s.events.iter().any(|e| e == request.event_id) {
            1
        } else if s.organizers.iter().any(|o| o == request.organizer_id) {
            2
        } else {
            3
        },
    )
}

/// Why `server` may not take a new meeting at all now, if it may not. The expected size is
/// not asked: only a cap actually reached refuses.
fn exclusion(
    server: &FleetServer,
    st: &ServerStatus,
    tier: Option<u8>,
    left_out: bool,
) -> Option<String> {
    let spec = &server.spec;
    match spec.state {
        ServerState::Enabled => {}
        ServerState::Cordoned => return Some("cordoned".into()),
        ServerState::Disabled => return Some("disabled".into()),
    }
    match st.health {
        Health::Healthy => {}
        Health::Unknown => return Some("not probed yet".into()),
        Health::Unhealthy | Health::Misconfigured => {
            let name = st.health.name();
            return Some(if st.health_reason.is_empty() {
                name.to_owned()
            } else {
                format!("{name}: {}", st.health_reason)
            });
        }
    }
    if tier.is_none() {
        return Some("not for this event or kind".into());
    }
    if left_out {
        return Some("left out by this placement (tried already, or where the meeting was)".into());
    }
    if spec.max_meetings > 0 && st.meetings >= spec.max_meetings {
        return Some("at its meeting cap".into());
    }
    if spec.max_participants > 0 && st.carried() >= u64::from(spec.max_participants) {
        return Some("at its participant cap".into());
    }
    None
}

/// Participants the server can still take under its cap; `None` without a cap.
fn room_for(server: &FleetServer, st: &ServerStatus) -> Option<u64> {
    let cap = server.spec.max_participants;
    (cap > 0).then(|| u64::from(cap).saturating_sub(st.carried()))
}

/// What a placement decides by, as plain data read by its caller.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub servers: &'a HashMap<String, Arc<FleetServer>>,
    /// Each server's health (absent: not probed yet).
    pub health: &'a HashMap<String, Tracker>,
    /// Each server's last poll (absent: none yet).
    pub polled: &'a HashMap<String, Polled>,
    /// Recent placements' reservations, without those of meetings being placed again.
    pub reservations: &'a [Reservation],
    /// Kept plans' sessions running or about to start.
    pub planned: &'a [Planned],
    /// Per event: its rooms per server, without the meetings being placed.
    pub event_rooms: &'a HashMap<String, HashMap<String, u64>>,
    pub now: SystemTime,
}

/// How to pick among equally good servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tiebreak {
    /// At random: concurrent placements spread instead of all picking the same server.
    Random,
    /// The least loaded, then by id: the same answer every time, for forecasts.
    Steady,
}

/// One server in a decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub server_id: String,
    /// Why it may not take the meeting; `None` when it may.
    pub excluded_because: Option<String>,
    /// Whether the meeting's expected participants fit under its participant cap.
    pub fits: bool,
    /// 0 preferred, 1 the event's, 2 the organizer's, 3 global; `u8::MAX`: not for it.
    pub tier: u8,
    pub load: f64,
    pub weight: f64,
    /// Rooms of the requesting event on it.
    pub event_rooms: u64,
    /// Participants it can still take under its cap; `None` without a cap.
    pub room_for: Option<u64>,
}

impl Ranked {
    pub fn score(&self) -> f64 {
        self.load / self.weight
    }
}

/// A meeting placed on a server without room for all it expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortfall {
    pub server_id: String,
    /// What the meeting expects.
    pub participants: u32,
    /// What the server could still take under its cap.
    pub room_for: u64,
}

impl Shortfall {
    pub fn short_by(&self) -> u64 {
        u64::from(self.participants).saturating_sub(self.room_for)
    }
}

/// Where a meeting goes, and why.
#[derive(Debug, Clone)]
pub struct Decision {
    /// The server picked; `None` when no server may take the meeting at all.
    pub chosen: Option<Arc<FleetServer>>,
    /// Every server, eligible ones first, best first.
    pub servers: Vec<Ranked>,
    /// The room's planned session the placement follows (its server and size).
    pub planned: Option<Planned>,
    /// The participants the placement expects: the request's, or its planned session's.
    pub participants: u32,
    /// Set when the chosen server has no room for all the meeting expects.
    pub shortfall: Option<Shortfall>,
}

/// The fleet as one round of placements sees it. Each decision of the round is counted in
/// (`count`) before the next is made, so a burst decided together spreads as one made a
/// placement at a time would.
#[derive(Debug)]
pub struct Board {
    /// By id, so that steady decisions do not depend on a map's order.
    servers: Vec<Arc<FleetServer>>,
    status: HashMap<String, ServerStatus>,
    event_rooms: HashMap<String, HashMap<String, u64>>,
    /// The planned sessions of the rooms this round places that follow one.
    sessions: Vec<Planned>,
    now: SystemTime,
}

impl Board {
    /// The fleet for a round that places the rooms `placing` (event, room). A room placed for
    /// its planned session takes the session over: the plan's reservations of that room make
    /// way for the placement's own, so its load is not counted twice.
    pub fn new(inputs: Inputs<'_>, placing: &[(&str, &str)]) -> Self {
        let now = inputs.now;
        let placing: HashSet<(&str, &str)> = placing.iter().copied().collect();
        // The round's rooms' sessions are set apart first: a plan may hold thousands of others.
        let (theirs, mut others): (Vec<Planned>, Vec<Planned>) = inputs
            .planned
            .iter()
            .cloned()
            .partition(|p| placing.contains(&(p.event_id.as_str(), p.room_id.as_str())));
        let following: HashSet<(&str, &str)> = placing
            .iter()
            .copied()
            .filter(|(event, room)| plan::active(&theirs, event, room, now).is_some())
            .collect();
        let (sessions, idle): (Vec<Planned>, Vec<Planned>) = theirs
            .into_iter()
            .partition(|p| following.contains(&(p.event_id.as_str(), p.room_id.as_str())));
        others.extend(idle);
        let status = status(
            inputs.servers,
            inputs.health,
            inputs.polled,
            inputs.reservations,
            &others,
            now,
        );
        let mut servers: Vec<Arc<FleetServer>> = inputs.servers.values().cloned().collect();
        servers.sort_by(|a, b| a.spec.id.cmp(&b.spec.id));
        Self {
            servers,
            status,
            event_rooms: inputs.event_rooms.clone(),
            sessions,
            now,
        }
    }

    /// The participants a placement of `request` expects (its planned session's when the
    /// request does not say), which orders a round: largest first.
    pub fn expects(&self, request: &PlacementRequest<'_>) -> u32 {
        match self.planned(request) {
            Some(p) => plan::follow(request, p).participants,
            None => request.participants,
        }
    }

    fn planned(&self, request: &PlacementRequest<'_>) -> Option<&Planned> {
        let room = request.room?;
        plan::active(&self.sessions, request.event_id, room, self.now)
    }

    /// Decides where `request` goes, never on a server in `exclude`.
    pub fn decide(
        &self,
        request: &PlacementRequest<'_>,
        exclude: &[String],
        tiebreak: Tiebreak,
    ) -> Decision {
        let planned = self.planned(request);
        let request = planned.map_or_else(|| request.clone(), |p| plan::follow(request, p));
        let wanted = u64::from(request.participants);
        let no_rooms = HashMap::new();
        let rooms = self.event_rooms.get(request.event_id).unwrap_or(&no_rooms);
        let mut rows: Vec<(Ranked, &Arc<FleetServer>)> = self
            .servers
            .iter()
            .filter_map(|server| {
                let id = &server.spec.id;
                let st = self.status.get(id)?;
                let tier = tier(server, &request);
                let room_for = room_for(server, st);
                let row = Ranked {
                    server_id: id.clone(),
                    excluded_because: exclusion(server, st, tier, exclude.contains(id)),
                    fits: room_for.is_none_or(|left| left >= wanted),
                    tier: tier.unwrap_or(u8::MAX),
                    load: st.load,
                    weight: server.spec.weight,
                    event_rooms: rooms.get(id).copied().unwrap_or(0),
                    room_for,
                };
                Some((row, server))
            })
            .collect();
        rows.sort_by(|(a, _), (b, _)| {
            let key = |r: &Ranked| {
                let headroom = if r.fits {
                    0
                } else {
                    r.room_for.unwrap_or(u64::MAX)
                };
                (
                    r.excluded_because.is_some(),
                    !r.fits,
                    u64::MAX - headroom,
                    r.tier,
                )
            };
            key(a)
                .cmp(&key(b))
                .then(a.score().total_cmp(&b.score()))
                .then(a.server_id.cmp(&b.server_id))
        });
        let eligible = || rows.iter().filter(|(r, _)| r.excluded_because.is_none());
        let fitting: Vec<&(Ranked, &Arc<FleetServer>)> =
            eligible().filter(|(r, _)| r.fits).collect();
        let (chosen, shortfall) = if fitting.is_empty() {
            // Rows are ranked by headroom once nothing fits: the first has the most.
            match eligible().next() {
                Some((row, server)) => {
                    let shortfall = Shortfall {
                        server_id: row.server_id.clone(),
                        participants: request.participants,
                        room_for: row.room_for.unwrap_or(0),
                    };
                    (Some((*server).clone()), Some(shortfall))
                }
                None => (None, None),
            }
        } else {
            let equal = equally_good(request.kind, fitting);
            let pick = match tiebreak {
                Tiebreak::Random => equal.choose(&mut rand::rng()).copied(),
                // Ranked by score, then id, already.
                Tiebreak::Steady => equal.first().copied(),
            };
            (pick.map(|(_, server)| (*server).clone()), None)
        };
        Decision {
            chosen,
            participants: request.participants,
            servers: rows.into_iter().map(|(row, _)| row).collect(),
            planned: planned.cloned(),
            shortfall,
        }
    }

    /// Counts `decision` in, for the decisions after it in this round: the meeting's expected
    /// load on its server and, for a room, one more of its event's rooms there.
    pub fn count(&mut self, request: &PlacementRequest<'_>, decision: &Decision) {
        let Some(server) = &decision.chosen else {
            return;
        };
        let id = &server.spec.id;
        if let Some(st) = self.status.get_mut(id) {
            st.reserve(decision.participants);
        }
        if request.kind == MeetingKind::Room {
            *self
                .event_rooms
                .entry(request.event_id.to_owned())
                .or_default()
                .entry(id.clone())
                .or_default() += 1;
        }
    }

    /// Every server's status as the round counts it now.
    pub fn status(&self) -> &HashMap<String, ServerStatus> {
        &self.status
    }
}

/// Of servers that may take the meeting and have room for it (ranked, best first), those
/// equally good: the best tier within the load band and, for rooms, those among them with
/// the fewest rooms of the event.
fn equally_good<T>(kind: MeetingKind, fitting: Vec<&(Ranked, T)>) -> Vec<&(Ranked, T)> {
    let Some(best_tier) = fitting.iter().map(|(r, _)| r.tier).min() else {
        return Vec::new();
    };
    let tiered: Vec<&(Ranked, T)> = fitting
        .into_iter()
        .filter(|(r, _)| r.tier == best_tier)
        .collect();
    let best_load = tiered
        .iter()
        .map(|(r, _)| r.score())
        .fold(f64::INFINITY, f64::min);
    let band = best_load * BAND + BAND_FLOOR;
    let mut near: Vec<&(Ranked, T)> = tiered
        .into_iter()
        .filter(|(r, _)| r.score() <= band)
        .collect();
    if kind == MeetingKind::Room
        && let Some(fewest) = near.iter().map(|(r, _)| r.event_rooms).min()
    {
        near.retain(|(r, _)| r.event_rooms == fewest);
    }
    near
}

#[cfg(test)]
mod tests {
    use super::super::{load::SeenMeeting, test_server as server};
    use super::*;
    use std::time::Duration;

    /// A fleet for one decision: healthy servers, each carrying what a poll showed.
    struct Fleet {
        servers: HashMap<String, Arc<FleetServer>>,
        health: HashMap<String, Tracker>,
        polled: HashMap<String, Polled>,
        reservations: Vec<Reservation>,
        planned: Vec<Planned>,
        rooms: HashMap<String, HashMap<String, u64>>,
        now: SystemTime,
    }

    impl Fleet {
        fn of(servers: &[Arc<FleetServer>]) -> Self {
            Self {
                health: servers
                    .iter()
                    .map(|s| (s.spec.id.clone(), Tracker::at(Health::Healthy, "")))
                    .collect(),
                servers: servers
                    .iter()
                    .map(|s| (s.spec.id.clone(), s.clone()))
                    .collect(),
                polled: HashMap::new(),
                reservations: Vec::new(),
                planned: Vec::new(),
                rooms: HashMap::new(),
                now: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            }
        }

        /// A poll of `id` showed a meeting of this cost and size.
        fn carrying(mut self, id: &str, cost: f64, participants: u32) -> Self {
            let seen = SeenMeeting {
                cost,
                participants,
                running: true,
            };
            let name = format!(
                "m{}",
                self.polled
                    .values()
                    .map(|p| p.meetings.len())
                    .sum::<usize>()
            );
            self.polled
                .entry(id.to_owned())
                .or_insert_with(|| Polled {
                    at: Some(self.now),
                    meetings: HashMap::new(),
                })
                .meetings
                .insert(name, seen);
            self
        }

        fn event_rooms(mut self, id: &str, n: u64) -> Self {
            self.rooms
                .entry("ev".into())
                .or_default()
                .insert(id.into(), n);
            self
        }

        fn board(&self, placing: &[(&str, &str)]) -> Board {
            Board::new(
                Inputs {
                    servers: &self.servers,
                    health: &self.health,
                    polled: &self.polled,
                    reservations: &self.reservations,
                    planned: &self.planned,
                    event_rooms: &self.rooms,
                    now: self.now,
                },
                placing,
            )
        }
    }

    fn request(kind: MeetingKind, prefer: Option<&'static str>) -> PlacementRequest<'static> {
        PlacementRequest {
            event_id: "ev",
            organizer_id: "org",
            kind,
            prefer,
            participants: 0,
            room: None,
        }
    }

    fn sized(participants: u32) -> PlacementRequest<'static> {
        PlacementRequest {
            participants,
            ..request(MeetingKind::Room, None)
        }
    }

    fn pick(board: &Board, req: &PlacementRequest<'_>) -> Option<String> {
        board
            .decide(req, &[], Tiebreak::Random)
            .chosen
            .map(|s| s.spec.id.clone())
    }

    #[test]
    fn tiers_in_order_and_exclusive_servers_beat_less_loaded_global_ones() {
        let fleet = Fleet::of(&[
            server("global", |_| {}),
            server("org", |s| s.organizers = vec!["org".into()]),
            server("event", |s| s.events = vec!["ev".into()]),
            server("other-event", |s| s.events = vec!["nope".into()]),
        ])
        .carrying("event", 500.0, 5)
        .event_rooms("event", 9);
        let board = fleet.board(&[]);
        let room = request(MeetingKind::Room, None);
        assert_eq!(pick(&board, &room).as_deref(), Some("event"));
        assert_eq!(
            pick(&board, &request(MeetingKind::Room, Some("org"))).as_deref(),
            Some("org")
        );
        let by_url = request(
            MeetingKind::Room,
            Some("https://global.example.org/bigbluebutton/api"),
        );
        assert_eq!(pick(&board, &by_url).as_deref(), Some("global"));
        // A preference for a server reserved to another event is ignored.
        let elsewhere = request(MeetingKind::Room, Some("other-event"));
        assert_eq!(pick(&board, &elsewhere).as_deref(), Some("event"));
        let decision = board.decide(&room, &[], Tiebreak::Steady);
        let other = decision
            .servers
            .iter()
            .find(|r| r.server_id == "other-event")
            .unwrap();
        assert_eq!(
            other.excluded_because.as_deref(),
            Some("not for this event or kind")
        );
        assert_eq!(decision.servers.last().unwrap().server_id, "other-event");
    }

    #[test]
    fn load_first_then_the_events_rooms_then_chance() {
        let (a, b, c) = (
            server("a", |_| {}),
            server("b", |_| {}),
            server("c", |_| {}),
        );
        let room = request(MeetingKind::Room, None);
        // b is clearly less loaded.
        let fleet = Fleet::of(&[a.clone(), b.clone()])
            .carrying("a", 300.0, 3)
            .carrying("b", 100.0, 1)
            .event_rooms("b", 5);
        assert_eq!(pick(&fleet.board(&[]), &room).as_deref(), Some("b"));
        // Within 10%: the event's rooms decide.
        let fleet = Fleet::of(&[a.clone(), b.clone()])
            .carrying("a", 105.0, 1)
            .carrying("b", 100.0, 1)
            .event_rooms("a", 1)
            .event_rooms("b", 5);
        assert_eq!(pick(&fleet.board(&[]), &room).as_deref(), Some("a"));
        // Calls ignore the event's rooms and never use rooms-only servers.
        let fleet =
            Fleet::of(&[server("r", |s| s.rooms_only = true), c.clone()]).carrying("c", 50.0, 1);
        let call = request(MeetingKind::Call, None);
        assert_eq!(pick(&fleet.board(&[]), &call).as_deref(), Some("c"));
        // Equal servers: every one gets picked sometimes, at random; steadily, the first.
        let board = Fleet::of(&[a, b, c]).board(&[]);
        let seen: HashSet<String> = (0..200).filter_map(|_| pick(&board, &room)).collect();
        assert_eq!(seen.len(), 3);
        let steady = board.decide(&room, &[], Tiebreak::Steady).chosen.unwrap();
        assert_eq!(steady.spec.id, "a");
    }

    /// One empty server capped at 300: a room expecting 301 goes there, with its shortfall
    /// named; a server with room for the estimate is preferred, whatever its tier.
    #[test]
    fn an_estimate_ranks_servers_but_never_refuses_a_join() {
        let capped = server("capped", |s| s.max_participants = 300);
        let board = Fleet::of(std::slice::from_ref(&capped)).board(&[]);
        let decision = board.decide(&sized(301), &[], Tiebreak::Random);
        assert_eq!(decision.chosen.unwrap().spec.id, "capped");
        let shortfall = decision.shortfall.unwrap();
        assert_eq!((shortfall.room_for, shortfall.short_by()), (300, 1));
        assert!(decision.servers[0].excluded_because.is_none());
        assert!(!decision.servers[0].fits);

        // The event's own server does not fit 400; the global one, busier, does.
        let fleet = Fleet::of(&[
            server("mine", |s| {
                s.max_participants = 300;
                s.events = vec!["ev".into()];
            }),
            server("global", |_| {}),
        ])
        .carrying("global", 5_000.0, 100);
        let decision = fleet.board(&[]).decide(&sized(400), &[], Tiebreak::Random);
        assert_eq!(decision.chosen.unwrap().spec.id, "global");
        assert_eq!(decision.shortfall, None);
        assert_eq!(decision.servers[0].server_id, "global", "fitting first");

        // Nothing fits: the most headroom wins, not the least load or the best tier.
        let fleet = Fleet::of(&[
            server("mine", |s| {
                s.max_participants = 300;
                s.events = vec!["ev".into()];
            }),
            server("roomy", |s| s.max_participants = 350),
        ])
        .carrying("roomy", 5_000.0, 20);
        let decision = fleet.board(&[]).decide(&sized(500), &[], Tiebreak::Random);
        assert_eq!(decision.chosen.unwrap().spec.id, "roomy");
        assert_eq!(decision.shortfall.unwrap().short_by(), 170);
    }

    /// Only caps actually reached refuse: participants polled and reserved at the cap, or
    /// the meeting cap; and what the caller leaves out.
    #[test]
    fn reached_caps_and_left_out_servers_are_excluded() {
        let fleet = Fleet::of(&[
            server("full", |s| s.max_participants = 100),
            server("meetings", |s| s.max_meetings = 1),
            server("tried", |_| {}),
        ])
        .carrying("full", 500.0, 100)
        .carrying("meetings", 10.0, 0);
        let decision = fleet
            .board(&[])
            .decide(&sized(0), &["tried".into()], Tiebreak::Random);
        assert!(decision.chosen.is_none());
        assert!(decision.shortfall.is_none());
        let why: HashMap<&str, &str> = decision
            .servers
            .iter()
            .map(|r| {
                let reason = r.excluded_because.as_deref().unwrap();
                (r.server_id.as_str(), reason)
            })
            .collect();
        assert_eq!(why["full"], "at its participant cap");
        assert_eq!(why["meetings"], "at its meeting cap");
        assert!(why["tried"].starts_with("left out"), "{why:?}");
    }

    /// A health problem and a cordon exclude, with the health's reason.
    #[test]
    fn unhealthy_cordoned_and_unprobed_servers_are_excluded() {
        let mut fleet = Fleet::of(&[
            server("sick", |_| {}),
            server("cordoned", |s| s.state = ServerState::Cordoned),
            server("new", |_| {}),
        ]);
        fleet.health.insert(
            "sick".into(),
            Tracker::at(Health::Misconfigured, "checksum refused"),
        );
        fleet.health.remove("new");
        let decision = fleet.board(&[]).decide(&sized(0), &[], Tiebreak::Random);
        assert!(decision.chosen.is_none());
        let reasons: Vec<&str> = decision
            .servers
            .iter()
            .filter_map(|r| r.excluded_because.as_deref())
            .collect();
        assert_eq!(
            reasons,
            [
                "cordoned",
                "not probed yet",
                "misconfigured: checksum refused"
            ]
        );
    }

    /// Ten workshops that reached the round before their keynote: decided largest first, each
    /// counted in, the keynote gets the emptiest server and no workshop shares it.
    #[test]
    fn a_round_counts_each_decision_before_the_next() {
        let fleet = Fleet::of(&[
            server("empty", |_| {}),
            server("m1", |_| {}),
            server("m2", |_| {}),
        ])
        .carrying("m1", 42_010.0, 200)
        .carrying("m2", 42_010.0, 200);
        let mut board = fleet.board(&[]);
        let keynote = sized(500);
        let decision = board.decide(&keynote, &[], Tiebreak::Random);
        assert_eq!(decision.chosen.as_ref().unwrap().spec.id, "empty");
        board.count(&keynote, &decision);
        assert_eq!(board.status()["empty"].expected_participants, 500);
        for _ in 0..10 {
            let workshop = sized(20);
            let decision = board.decide(&workshop, &[], Tiebreak::Random);
            assert_ne!(decision.chosen.as_ref().unwrap().spec.id, "empty");
            board.count(&workshop, &decision);
        }
    }

    /// A room with a planned session follows it: its server and size, and the plan's own
    /// reservation makes way for the placement; other rooms still see that reservation.
    #[test]
    fn a_planned_session_sets_server_and_size_and_makes_way() {
        let mut fleet = Fleet::of(&[
            server("a", |s| s.max_participants = 1000),
            server("b", |s| s.max_participants = 1000),
        ]);
        fleet.planned.push(Planned {
            event_id: "ev".into(),
            room_id: "keynote".into(),
            start: fleet.now + Duration::from_secs(60),
            end: fleet.now + Duration::from_secs(3600),
            participants: 900,
            server_id: "b".into(),
            meeting_id: None,
            claimed: false,
        });
        let keynote = PlacementRequest {
            room: Some("keynote"),
            ..sized(0)
        };
        let board = fleet.board(&[("ev", "keynote")]);
        assert_eq!(board.expects(&keynote), 900);
        let decision = board.decide(&keynote, &[], Tiebreak::Random);
        assert_eq!(decision.chosen.unwrap().spec.id, "b");
        assert_eq!(decision.participants, 900);
        assert!(decision.planned.is_some());
        assert_eq!(decision.shortfall, None, "its own reservation made way");

        // Placed without the keynote: b holds 900 for it, so 200 go to a.
        let board = fleet.board(&[]);
        let decision = board.decide(&sized(200), &[], Tiebreak::Random);
        assert_eq!(decision.chosen.unwrap().spec.id, "a");
        assert!(decision.planned.is_none());
    }
}
