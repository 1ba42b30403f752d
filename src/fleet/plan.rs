//! A schedule's forecast: where its sessions would run, slot by slot, and what the fleet cannot
//! hold. The sessions are placed by placement's own decision (`placement::Board`) as it would
//! place them when they start — same tiers, weights and caps, largest first among those that
//! start together, each keeping its server until it ends — on the fleet as configured now,
//! beside the sessions other events' kept plans have on it. Load from meetings nobody planned
//! is not known ahead and not counted. A session no server has room for is named as one the
//! slot cannot hold, and kept without a server: when it starts, live placement puts it where
//! it fits best then.
//!
//! A kept forecast is the event's plan: a room whose planned session runs or is about to start
//! goes to its planned server when it is placed (if that server can take it then), and the
//! server reserves the session's load from `LEAD` before its start until a placement of the
//! room takes the session over — so the load is counted once, by the plan before and by the
//! placement after.

use super::{
    Board, FleetServer, Health, Inputs, MeetingKind, PlacementRequest, Tiebreak, health::Tracker,
    load::expected_cost, placement,
};
use crate::{
    domain::ServerState,
    store::{Planned, Reservation},
};
use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, SystemTime},
};

/// A planned session's server reserves its expected load from this long before it starts.
pub const LEAD: Duration = Duration::from_secs(300);
/// A planned session nobody has come to this long after its start reserves nothing more.
const GRACE: Duration = Duration::from_secs(300);

/// The room's planned session that a placement now serves: running, or starting within
/// `LEAD`; the latest to start of those.
pub fn active<'p>(
    planned: &'p [Planned],
    event_id: &str,
    room_id: &str,
    now: SystemTime,
) -> Option<&'p Planned> {
    planned
        .iter()
        .filter(|p| p.event_id == event_id && p.room_id == room_id)
        .filter(|p| p.start <= now + LEAD && now < p.end)
        .max_by_key(|p| p.start)
}

/// `request` as the room's planned session `p` has it: to its planned server (unless the room
/// names a server of its own), and sized as planned unless the join knows better.
pub fn follow<'a>(request: &PlacementRequest<'a>, p: &'a Planned) -> PlacementRequest<'a> {
    let own = request.prefer.filter(|s| !s.is_empty());
    PlacementRequest {
        prefer: own.or((!p.server_id.is_empty()).then_some(p.server_id.as_str())),
        participants: if request.participants == 0 {
            p.participants
        } else {
            request.participants
        },
        ..request.clone()
    }
}

/// Whether a planned session holds its reservation now: it has a server, starts within `LEAD`
/// or started less than `GRACE` ago, and no placement of its room has taken it over.
pub fn reserves(p: &Planned, now: SystemTime) -> bool {
    !p.claimed
        && !p.server_id.is_empty()
        && p.start <= now + LEAD
        && now < p.start + GRACE
        && now < p.end
}

/// A session the backend expects.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub room_id: String,
    pub start: SystemTime,
    pub end: SystemTime,
    /// 0: unknown.
    pub participants: u32,
}

/// One server in one slot.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSlot {
    pub server_id: String,
    /// Planned load (the cost formula for the sessions it runs), and that per unit of weight.
    pub load: f64,
    pub load_per_weight: f64,
    pub meetings: u32,
    pub participants: u64,
    /// The server's caps (0: none).
    pub max_meetings: u32,
    pub max_participants: u32,
}

/// A session that no server can take in its first slot, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Unplaced {
    pub room_id: String,
    pub participants: u32,
    pub reason: &'static str,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    pub start: SystemTime,
    pub servers: Vec<ServerSlot>,
    /// Sessions running in this slot that found no server.
    pub unplaced: Vec<Unplaced>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Forecast {
    pub slots: Vec<Slot>,
    /// Where each session that was placed would run.
    pub placements: Vec<Placed>,
}

/// A session and the server it would run on.
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    pub room_id: String,
    pub start: SystemTime,
    pub server_id: String,
}

impl Forecast {
    /// The schedule's sessions as a plan to keep: each with the server it would run on (empty
    /// when it found none).
    pub fn plan(&self, event_id: &str, sessions: &[Session]) -> Vec<Planned> {
        sessions
            .iter()
            .map(|s| Planned {
                event_id: event_id.to_owned(),
                room_id: s.room_id.clone(),
                start: s.start,
                end: s.end,
                participants: s.participants,
                server_id: self
                    .placements
                    .iter()
                    .find(|p| p.room_id == s.room_id && p.start == s.start)
                    .map(|p| p.server_id.clone())
                    .unwrap_or_default(),
                meeting_id: None,
                claimed: false,
            })
            .collect()
    }
}

/// The most slots a forecast covers: a week of 15-minute slots.
pub const MAX_SLOTS: usize = 672;
/// The most sessions one forecast takes.
pub const MAX_SESSIONS: usize = 2_000;
/// The longest session a forecast takes.
const MAX_SESSION: Duration = Duration::from_secs(24 * 3600);

/// From the earliest start to the latest end of `sessions`; `None` when there are none.
pub fn span(sessions: &[Session]) -> Option<(SystemTime, SystemTime)> {
    let first = sessions.iter().map(|s| s.start).min()?;
    let last = sessions.iter().map(|s| s.end).max()?;
    Some((first, last))
}

/// Checks a schedule and its slot length in minutes (0: 15): at most `MAX_SESSIONS` sessions,
/// each ending after it starts and within a day, all within `MAX_SLOTS` slots. Returns the
/// sessions and the slot, or the field at fault and what is wrong.
pub fn check(
    sessions: Vec<Session>,
    slot_minutes: u32,
) -> Result<(Vec<Session>, Duration), (&'static str, &'static str)> {
    let slot = match slot_minutes {
        0 => 15,
        5..=240 => slot_minutes,
        _ => return Err(("slot_minutes", "must be 5 to 240 (or 0 for 15)")),
    };
    let slot = Duration::from_secs(u64::from(slot) * 60);
    if sessions.len() > MAX_SESSIONS {
        return Err(("sessions", "at most 2,000"));
    }
    for s in &sessions {
        match s.end.duration_since(s.start) {
            Ok(length) if !length.is_zero() && length <= MAX_SESSION => {}
            _ => {
                return Err((
                    "sessions.end",
                    "must be after its start, at most 24 hours later",
                ));
            }
        }
    }
    if let Some((first, last)) = span(&sessions) {
        let span = last.duration_since(first).unwrap_or_default();
        if span.as_secs() / slot.as_secs() >= MAX_SLOTS as u64 {
            return Err((
                "sessions",
                "span more than 672 slots: use longer slots, or send fewer days",
            ));
        }
    }
    Ok((sessions, slot))
}

/// Forecasts `sessions` of one event in slots of `slot` on `servers` (disabled and cordoned
/// servers take nothing), beside `kept`: other events' planned sessions, on their planned
/// servers. `sessions` must end after they start (the API checks).
pub fn forecast(
    servers: &HashMap<String, Arc<FleetServer>>,
    event_id: &str,
    organizer_id: &str,
    sessions: &[Session],
    kept: &[Planned],
    slot: Duration,
) -> Forecast {
    let Some((first, last)) = span(sessions) else {
        return Forecast::default();
    };
    let mut open: Vec<&Arc<FleetServer>> = servers
        .values()
        .filter(|s| s.spec.state == ServerState::Enabled)
        .collect();
    open.sort_by(|a, b| a.spec.id.cmp(&b.spec.id));
    // Every server healthy: the forecast is about the fleet as configured, with nothing polled.
    let health: HashMap<String, Tracker> = servers
        .keys()
        .map(|id| (id.clone(), Tracker::at(Health::Healthy, "")))
        .collect();
    let polled = HashMap::new();
    // Session index → its server (None: unplaced), once its first slot is decided.
    let mut assigned: HashMap<usize, Option<Arc<FleetServer>>> = HashMap::new();
    let mut reasons: HashMap<usize, &'static str> = HashMap::new();
    let mut out = Forecast::default();
    let mut start = first;
    while start < last && out.slots.len() < MAX_SLOTS {
        let Some(end) = start.checked_add(slot) else {
            break;
        };
        let running: Vec<usize> = (0..sessions.len())
            .filter(|&i| sessions[i].start < end && sessions[i].end > start)
            .collect();
        // Each server as the sessions placed in earlier slots and still running load it (the
        // event's rooms among them), and the other events' kept sessions of the slot: each a
        // reservation as fresh as a placement's.
        let reserve = |id: String, server_id: &str, participants| Reservation {
            meeting_id: id,
            server_id: server_id.to_owned(),
            at: start,
            participants,
        };
        let mut reservations = Vec::new();
        let mut rooms: HashMap<String, u64> = HashMap::new();
        for &i in &running {
            if let Some(Some(server)) = assigned.get(&i) {
                reservations.push(reserve(
                    format!("s{i}"),
                    &server.spec.id,
                    sessions[i].participants,
                ));
                *rooms.entry(server.spec.id.clone()).or_default() += 1;
            }
        }
        for (k, other) in kept.iter().enumerate() {
            if other.start < end && other.end > start {
                reservations.push(reserve(
                    format!("k{k}"),
                    &other.server_id,
                    other.participants,
                ));
            }
        }
        let event_rooms = HashMap::from([(event_id.to_owned(), rooms)]);
        let mut board = Board::new(
            Inputs {
                servers,
                health: &health,
                polled: &polled,
                reservations: &reservations,
                planned: &[],
                event_rooms: &event_rooms,
                now: start,
            },
            &[],
        );
        let mut starting: Vec<usize> = running
            .iter()
            .copied()
            .filter(|i| !assigned.contains_key(i))
            .collect();
        starting.sort_by(|&a, &b| {
            expected_cost(sessions[b].participants)
                .total_cmp(&expected_cost(sessions[a].participants))
                .then(sessions[a].room_id.cmp(&sessions[b].room_id))
        });
        for i in starting {
            let session = &sessions[i];
            let request = PlacementRequest {
                event_id,
                organizer_id,
                kind: MeetingKind::Room,
                prefer: None,
                participants: session.participants,
                room: None,
            };
            // The forecast must be the same every time it is asked: the emptiest by name, not
            // placement's random pick among equals.
            let decision = board.decide(&request, &[], Tiebreak::Steady);
            let pick = match (&decision.chosen, &decision.shortfall) {
                (Some(server), None) => {
                    board.count(&request, &decision);
                    out.placements.push(Placed {
                        room_id: session.room_id.clone(),
                        start: session.start,
                        server_id: server.spec.id.clone(),
                    });
                    Some(server.clone())
                }
                (Some(_), Some(_)) => {
                    reasons.insert(
                        i,
                        "no server that may host it has room for it under its caps",
                    );
                    None
                }
                (None, _) => {
                    let may_host = open.iter().any(|s| placement::tier(s, &request).is_some());
                    reasons.insert(
                        i,
                        if may_host {
                            "every server that may host it is at its caps"
                        } else {
                            "no enabled server may host the event's rooms"
                        },
                    );
                    None
                }
            };
            assigned.insert(i, pick);
        }
        let status = board.status();
        out.slots.push(Slot {
            start,
            servers: open
                .iter()
                .map(|server| {
                    let st = status.get(&server.spec.id).cloned().unwrap_or_default();
                    ServerSlot {
                        server_id: server.spec.id.clone(),
                        load: st.load,
                        load_per_weight: st.load / server.spec.weight,
                        meetings: st.meetings,
                        participants: st.expected_participants,
                        max_meetings: server.spec.max_meetings,
                        max_participants: server.spec.max_participants,
                    }
                })
                .collect(),
            unplaced: running
                .iter()
                .filter(|i| matches!(assigned.get(i), Some(None)))
                .map(|&i| Unplaced {
                    room_id: sessions[i].room_id.clone(),
                    participants: sessions[i].participants,
                    reason: reasons.get(&i).copied().unwrap_or("no server"),
                })
                .collect(),
        });
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Server;

    fn server(id: &str, f: impl FnOnce(&mut Server)) -> (String, Arc<FleetServer>) {
        (id.to_owned(), super::super::test_server(id, f))
    }

    fn at(minutes: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + minutes * 60)
    }

    fn session(room: &str, from: u64, to: u64, participants: u32) -> Session {
        Session {
            room_id: room.into(),
            start: at(from),
            end: at(to),
            participants,
        }
    }

    /// Two servers of 300 participants: the 10:00 slot holds a keynote of 500 that fits
    /// nowhere, and 9:00's two workshops fit. The keynote is named in each slot it runs.
    #[test]
    fn slots_the_fleet_cannot_hold_are_named() {
        let servers = HashMap::from([
            server("a", |s| s.max_participants = 300),
            server("b", |s| s.max_participants = 300),
        ]);
        let sessions = [
            session("w1", 0, 60, 200),
            session("w2", 0, 60, 200),
            session("keynote", 60, 90, 500),
            session("late", 75, 90, 100),
        ];
        let f = forecast(
            &servers,
            "ev",
            "org",
            &sessions,
            &[],
            Duration::from_secs(900),
        );
        assert_eq!(f.slots.len(), 6);
        assert!(f.slots[..4].iter().all(|s| s.unplaced.is_empty()));
        let nine: Vec<u64> = f.slots[0].servers.iter().map(|s| s.participants).collect();
        assert_eq!(nine, [200, 200], "the workshops spread");
        for slot in &f.slots[4..] {
            assert_eq!(slot.unplaced.len(), 1, "{slot:?}");
            assert_eq!(slot.unplaced[0].room_id, "keynote");
            assert_eq!(slot.unplaced[0].participants, 500);
        }
        assert!(f.placements.iter().any(|p| p.room_id == "late"));
        assert!(!f.placements.iter().any(|p| p.room_id == "keynote"));
    }

    /// The keynote and ten workshops that start together: the keynote is placed first, and
    /// alone on its server; a session keeps its server for its whole length.
    #[test]
    fn the_largest_starting_session_goes_first_and_keeps_its_server() {
        let servers = HashMap::from([server("a", |_| {}), server("b", |_| {})]);
        let mut sessions = vec![session("keynote", 0, 60, 500)];
        sessions.extend((0..10).map(|i| session(&format!("w{i}"), 0, 30, 20)));
        let f = forecast(
            &servers,
            "ev",
            "org",
            &sessions,
            &[],
            Duration::from_secs(900),
        );
        let keynote = &f
            .placements
            .iter()
            .find(|p| p.room_id == "keynote")
            .unwrap()
            .server_id;
        assert!(
            f.placements
                .iter()
                .filter(|p| p.room_id != "keynote")
                .all(|p| &p.server_id != keynote),
            "{:?}",
            f.placements
        );
        assert_eq!(f.placements.len(), 11);
        let last = f.slots.last().unwrap();
        let on_keynote = last
            .servers
            .iter()
            .find(|s| &s.server_id == keynote)
            .unwrap();
        assert_eq!((on_keynote.meetings, on_keynote.participants), (1, 500));
        assert_eq!(
            f,
            forecast(
                &servers,
                "ev",
                "org",
                &sessions,
                &[],
                Duration::from_secs(900)
            )
        );
    }

    /// Another event's kept plan has a 250-participant session on a at 9:00: the workshop of
    /// 200 goes to b, and a second one finds no room on either 300-cap server.
    #[test]
    fn other_events_kept_plans_count() {
        let servers = HashMap::from([
            server("a", |s| s.max_participants = 300),
            server("b", |s| s.max_participants = 300),
        ]);
        let elsewhere = Planned {
            event_id: "other".into(),
            room_id: "plenary".into(),
            start: at(0),
            end: at(60),
            participants: 250,
            server_id: "a".into(),
            meeting_id: None,
            claimed: false,
        };
        let sessions = [session("w1", 0, 60, 200), session("w2", 0, 60, 200)];
        let f = forecast(
            &servers,
            "ev",
            "org",
            &sessions,
            std::slice::from_ref(&elsewhere),
            Duration::from_secs(3600),
        );
        assert_eq!(f.placements.len(), 1);
        assert_eq!(f.placements[0].server_id, "b");
        assert_eq!(f.slots[0].unplaced.len(), 1);
        let a = &f.slots[0].servers[0];
        assert_eq!((a.server_id.as_str(), a.participants), ("a", 250));
    }
}
