//! What a server carries: the meetings its last poll showed, and what recent placements are
//! expected to add before the poller sees them.

use crate::{
    bbb::Meeting,
    store::{Planned, Reservation},
};
use std::{
    collections::HashMap,
    time::{Duration, SystemTime},
};

/// The original module's bandwidth-shaped cost of one meeting: a base for its memory, video
/// that every participant receives from every camera, and audio per participant.
pub fn meeting_cost(participants: u32, videos: u32, voice: u32) -> f64 {
    let (p, v, a) = (f64::from(participants), f64::from(videos), f64::from(voice));
    10.0 + 10.0 * p * v + p * a
}

/// A meeting as the last poll saw it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeenMeeting {
    pub cost: f64,
    pub participants: u32,
    pub running: bool,
}

/// One server's last poll.
#[derive(Debug, Clone, Default)]
pub struct Polled {
    pub at: Option<SystemTime>,
    pub meetings: HashMap<String, SeenMeeting>,
}

impl Polled {
    pub fn from_answer(meetings: &[Meeting], at: SystemTime) -> Self {
        let meetings = meetings
            .iter()
            .filter(|m| !m.has_been_forcibly_ended)
            .map(|m| {
                let seen = SeenMeeting {
                    cost: meeting_cost(
                        m.participant_count,
                        m.video_count,
                        m.voice_participant_count,
                    ),
                    participants: m.participant_count,
                    running: m.running,
                };
                (m.meeting_id.clone(), seen)
            })
            .collect();
        Self {
            at: Some(at),
            meetings,
        }
    }

    pub fn cost(&self) -> f64 {
        self.meetings.values().map(|m| m.cost).sum()
    }

    pub fn participants(&self) -> u64 {
        self.meetings
            .values()
            .map(|m| u64::from(m.participants))
            .sum()
    }
}

/// The load a new meeting of unknown size is expected to bring, reserved at once when it is
/// placed so that a burst of placements in the same second spreads out instead of piling onto
/// the server that looked emptiest at the last poll.
pub const RESERVATION: f64 = 100.0;

/// The load a meeting expecting `participants` is reserved: the cost formula for a session of
/// that size, everyone on audio and two on camera (a speaker and a presenter), as conference
/// sessions run. 0 (unknown): `RESERVATION`.
pub fn expected_cost(participants: u32) -> f64 {
    if participants == 0 {
        RESERVATION
    } else {
        meeting_cost(participants, participants.min(2), participants)
    }
}

/// A reservation fades out over this long, and shrinks as the poller sees the meeting's real
/// load: by then the real figure has taken over.
pub const RESERVATION_FADE: Duration = Duration::from_secs(300);

/// How long a placed meeting may take to show in a poll (its create and first join).
const MATERIALIZE: Duration = Duration::from_secs(30);

/// What recent placements on one server still hold in reserve.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Outstanding {
    /// Load expected beyond what the poll shows already.
    pub load: f64,
    /// Placed meetings its last poll has not shown yet (for meeting caps).
    pub meetings: u32,
    /// Participants expected beyond those the poll shows already (for participant caps).
    pub participants: u64,
}

/// Per server: what recent placements and imminent planned sessions still hold in reserve. A
/// reservation shrinks as the poll shows its meeting's real figures, fades out over
/// `RESERVATION_FADE`, and is void once a poll well after its placement no longer shows its
/// meeting (it ended, or never came to be). A planned session holds its whole expected load
/// (less what the poll shows of its room's meeting there) while `plan::reserves` says so.
pub fn outstanding(
    reservations: &[Reservation],
    planned: &[Planned],
    polled: &HashMap<String, Polled>,
    now: SystemTime,
) -> HashMap<String, Outstanding> {
    let mut out: HashMap<String, Outstanding> = HashMap::new();
    for p in planned.iter().filter(|p| super::plan::reserves(p, now)) {
        let seen = p.meeting_id.as_ref().and_then(|id| {
            polled
                .get(&p.server_id)
                .and_then(|polled| polled.meetings.get(id))
        });
        out.entry(p.server_id.clone())
            .or_default()
            .add(p.participants, 1.0, seen);
    }
    for r in reservations {
        let age = now.duration_since(r.at).unwrap_or_default();
        if age >= RESERVATION_FADE {
            continue;
        }
        let left = 1.0 - age.as_secs_f64() / RESERVATION_FADE.as_secs_f64();
        let seen = polled
            .get(&r.server_id)
            .filter(|p| p.at.is_some_and(|at| at >= r.at))
            .and_then(|p| p.meetings.get(&r.meeting_id));
        let void = seen.is_none()
            && polled
                .get(&r.server_id)
                .and_then(|p| p.at)
                .is_some_and(|at| at.duration_since(r.at).unwrap_or_default() > MATERIALIZE);
        if void {
            continue;
        }
        out.entry(r.server_id.clone())
            .or_default()
            .add(r.participants, left, seen);
    }
    out
}

impl Outstanding {
    /// Adds the `left` share of what a meeting expecting `participants` reserves, less what
    /// the poll shows of it already.
    fn add(&mut self, participants: u32, left: f64, seen: Option<&SeenMeeting>) {
        let (real_cost, real_participants) =
            seen.map_or((0.0, 0.0), |m| (m.cost, f64::from(m.participants)));
        self.load += (expected_cost(participants) * left - real_cost).max(0.0);
        self.participants += (f64::from(participants) * left - real_participants)
            .max(0.0)
            .ceil() as u64;
        if seen.is_none() {
            self.meetings += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_original_cost_formula() {
        assert_eq!(meeting_cost(0, 0, 0), 10.0);
        assert_eq!(meeting_cost(4, 1, 2), 58.0, "the upstream test's figure");
    }

    #[test]
    fn reservations_fade_and_give_way_to_real_load() {
        let t0 = SystemTime::now();
        let reserve = |m: &str| Reservation {
            meeting_id: m.into(),
            server_id: "a".into(),
            at: t0,
            participants: 0,
        };
        let rs = [reserve("m1"), reserve("m2")];
        let none = HashMap::new();
        let fresh = outstanding(&rs, &[], &none, t0)["a"];
        assert_eq!((fresh.load, fresh.meetings), (2.0 * RESERVATION, 2));

        // Half-way through the fade, half is left.
        let out = outstanding(&rs, &[], &none, t0 + RESERVATION_FADE / 2);
        assert!((out["a"].load - RESERVATION).abs() < 1e-6);

        // A poll after the placement that shows m1 with real load takes its share over.
        let mut polled = HashMap::new();
        let mut p = Polled {
            at: Some(t0 + Duration::from_secs(1)),
            meetings: HashMap::new(),
        };
        p.meetings.insert(
            "m1".into(),
            SeenMeeting {
                cost: 70.0,
                participants: 5,
                running: true,
            },
        );
        polled.insert("a".to_owned(), p);
        let out = outstanding(&rs, &[], &polled, t0 + Duration::from_secs(1));
        let left = RESERVATION * (1.0 - 1.0 / 300.0);
        assert!(
            (out["a"].load - ((left - 70.0) + left)).abs() < 1e-6,
            "{:?}",
            out["a"]
        );
        assert_eq!(out["a"].meetings, 1, "m1 is seen, m2 not yet");

        assert!(outstanding(&rs, &[], &polled, t0 + RESERVATION_FADE).is_empty());

        // A poll long after the placement that still lacks m2: m2 ended (or never started).
        polled.get_mut("a").unwrap().at = Some(t0 + Duration::from_secs(60));
        let out = outstanding(&rs, &[], &polled, t0 + Duration::from_secs(60));
        assert_eq!(out["a"].meetings, 0);
    }

    #[test]
    fn an_expected_size_is_reserved_and_counted_until_the_poll_shows_it() {
        let t0 = SystemTime::now();
        let keynote = Reservation {
            meeting_id: "keynote".into(),
            server_id: "a".into(),
            at: t0,
            participants: 500,
        };
        let out = outstanding(std::slice::from_ref(&keynote), &[], &HashMap::new(), t0)["a"];
        assert_eq!(out.load, expected_cost(500));
        assert_eq!(out.participants, 500);
        // A keynote weighs more than ten workshops together.
        assert!(expected_cost(500) > 10.0 * expected_cost(20));
        assert_eq!(expected_cost(0), RESERVATION);

        // 200 have joined: the rest is still expected.
        let mut p = Polled {
            at: Some(t0),
            meetings: HashMap::new(),
        };
        p.meetings.insert(
            "keynote".into(),
            SeenMeeting {
                cost: meeting_cost(200, 2, 200),
                participants: 200,
                running: true,
            },
        );
        let polled = HashMap::from([("a".to_owned(), p)]);
        let out = outstanding(std::slice::from_ref(&keynote), &[], &polled, t0)["a"];
        assert_eq!(out.participants, 300);
        assert!((out.load - (expected_cost(500) - meeting_cost(200, 2, 200))).abs() < 1e-6);
    }

    /// A planned session holds its whole load from `plan::LEAD` before its start, less what
    /// its room's meeting shows there already, and nothing once a placement took it over or
    /// when nobody came.
    #[test]
    fn a_planned_session_reserves_until_its_placement_takes_over() {
        let start = SystemTime::now() + Duration::from_secs(120);
        let mut keynote = Planned {
            event_id: "ev".into(),
            room_id: "keynote".into(),
            start,
            end: start + Duration::from_secs(3600),
            participants: 500,
            server_id: "a".into(),
            meeting_id: Some("m".into()),
            claimed: false,
        };
        let none = HashMap::new();
        let at = |offset: i64| {
            if offset >= 0 {
                start + Duration::from_secs(offset as u64)
            } else {
                start - Duration::from_secs((-offset) as u64)
            }
        };
        assert!(outstanding(&[], std::slice::from_ref(&keynote), &none, at(-600)).is_empty());
        let ahead = outstanding(&[], std::slice::from_ref(&keynote), &none, at(-240))["a"];
        assert_eq!(
            (ahead.load, ahead.participants, ahead.meetings),
            (expected_cost(500), 500, 1)
        );
        // Nobody came within five minutes of the start.
        assert!(outstanding(&[], std::slice::from_ref(&keynote), &none, at(301)).is_empty());

        // Its meeting is there already with 100 people (the room ran on from before).
        let mut p = Polled {
            at: Some(at(-60)),
            meetings: HashMap::new(),
        };
        let cost = meeting_cost(100, 2, 100);
        p.meetings.insert(
            "m".into(),
            SeenMeeting {
                cost,
                participants: 100,
                running: true,
            },
        );
        let polled = HashMap::from([("a".to_owned(), p)]);
        let seen = outstanding(&[], std::slice::from_ref(&keynote), &polled, at(-60))["a"];
        assert_eq!((seen.participants, seen.meetings), (400, 0));
        assert!((seen.load - (expected_cost(500) - cost)).abs() < 1e-6);

        keynote.claimed = true;
        assert!(outstanding(&[], std::slice::from_ref(&keynote), &none, at(-60)).is_empty());
    }
}
