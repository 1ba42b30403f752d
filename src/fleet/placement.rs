//! Where a new meeting goes.
//!
//! Tiers, as the original module ordered them: the preferred server, then servers reserved for
//! the event, then the organizer's, then the global pool; the first tier with an eligible server
//! wins. Inside it, servers are ranked by load per unit of weight (polled load plus what recent
//! placements reserved). Among those within about 10% of the least loaded, a room goes where
//! its event has the fewest rooms — an event's rooms fill up at the same hour, so spreading them
//! spreads that peak — and then at random, so that concurrent placements do not all pick the
//! same server.

use super::FleetServer;
use rand::seq::IndexedRandom;
use std::sync::Arc;

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
    /// 0: unknown.
    pub participants: u32,
    /// The room being placed: a session of it in the event's kept plan, running or about to
    /// start, sends it to its planned server (see `plan::active`).
    pub room: Option<&'a str>,
}

/// A server that may take the meeting, with the figures it is ranked by.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub server: Arc<FleetServer>,
    /// (polled + reserved load) / weight.
    pub load: f64,
    /// Rooms of the requesting event on this server.
    pub event_rooms: u64,
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

/// The tier a candidate belongs to for this request (lower wins), or `None` when the request
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

/// Picks among `candidates` (servers that are enabled, healthy and under their caps): at random
/// among the equally good, so that concurrent placements do not all pick the same server.
pub fn choose(request: &PlacementRequest<'_>, candidates: Vec<Candidate>) -> Option<Candidate> {
    equally_good(request, candidates)
        .choose(&mut rand::rng())
        .cloned()
}

/// The same choice made the same way every time (the least loaded of the equally good, then
/// by id), for forecasts.
pub fn best(request: &PlacementRequest<'_>, candidates: Vec<Candidate>) -> Option<Candidate> {
    equally_good(request, candidates)
        .into_iter()
        .min_by(|a, b| {
            a.load
                .total_cmp(&b.load)
                .then_with(|| a.server.spec.id.cmp(&b.server.spec.id))
        })
}

/// The candidates of the best tier within the load band, and for rooms those among them with
/// the fewest rooms of the event.
fn equally_good(request: &PlacementRequest<'_>, candidates: Vec<Candidate>) -> Vec<Candidate> {
    let mut tiered: Vec<(u8, Candidate)> = candidates
        .into_iter()
        .filter_map(|c| tier(&c.server, request).map(|t| (t, c)))
        .collect();
    let Some(best_tier) = tiered.iter().map(|(t, _)| *t).min() else {
        return Vec::new();
    };
    tiered.retain(|(t, _)| *t == best_tier);
    let best_load = tiered
        .iter()
        .map(|(_, c)| c.load)
        .fold(f64::INFINITY, f64::min);
    let band = best_load * BAND + BAND_FLOOR;
    let mut near: Vec<Candidate> = tiered
        .into_iter()
        .map(|(_, c)| c)
        .filter(|c| c.load <= band)
        .collect();
    if request.kind == MeetingKind::Room
        && let Some(fewest) = near.iter().map(|c| c.event_rooms).min()
    {
        near.retain(|c| c.event_rooms == fewest);
    }
    near
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::test_server as server;

    fn candidate(server: &Arc<FleetServer>, load: f64, event_rooms: u64) -> Candidate {
        Candidate {
            server: server.clone(),
            load,
            event_rooms,
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

    fn pick(req: &PlacementRequest<'_>, candidates: Vec<Candidate>) -> Option<String> {
        choose(req, candidates).map(|c| c.server.spec.id.clone())
    }

    #[test]
    fn tiers_in_order_and_exclusive_servers_beat_less_loaded_global_ones() {
        let global = server("global", |_| {});
        let org = server("org", |s| s.organizers = vec!["org".into()]);
        let event = server("event", |s| s.events = vec!["ev".into()]);
        let other = server("other-event", |s| s.events = vec!["nope".into()]);
        let all = || {
            vec![
                candidate(&global, 0.0, 0),
                candidate(&org, 0.0, 0),
                candidate(&event, 500.0, 9),
                candidate(&other, 0.0, 0),
            ]
        };
        let room = request(MeetingKind::Room, None);
        assert_eq!(pick(&room, all()).as_deref(), Some("event"));
        assert_eq!(
            pick(&request(MeetingKind::Room, Some("org")), all()).as_deref(),
            Some("org")
        );
        let by_url = request(
            MeetingKind::Room,
            Some("https://global.example.org/bigbluebutton/api"),
        );
        assert_eq!(pick(&by_url, all()).as_deref(), Some("global"));
        // A preference for a server reserved to another event is ignored.
        assert_eq!(
            pick(&request(MeetingKind::Room, Some("other-event")), all()).as_deref(),
            Some("event")
        );
        assert_eq!(pick(&room, vec![candidate(&other, 0.0, 0)]), None);
    }

    #[test]
    fn load_first_then_the_events_rooms_then_chance() {
        let a = server("a", |_| {});
        let b = server("b", |_| {});
        let c = server("c", |_| {});
        let room = request(MeetingKind::Room, None);
        // b is clearly less loaded.
        assert_eq!(
            pick(
                &room,
                vec![candidate(&a, 300.0, 0), candidate(&b, 100.0, 5)]
            )
            .as_deref(),
            Some("b")
        );
        // Within 10%: the event's rooms decide.
        assert_eq!(
            pick(
                &room,
                vec![candidate(&a, 105.0, 1), candidate(&b, 100.0, 5)]
            )
            .as_deref(),
            Some("a")
        );
        // Calls ignore the event's rooms and never use rooms-only servers.
        let rooms_only = server("r", |s| s.rooms_only = true);
        let call = request(MeetingKind::Call, None);
        assert_eq!(
            pick(
                &call,
                vec![candidate(&rooms_only, 0.0, 0), candidate(&c, 50.0, 0)]
            )
            .as_deref(),
            Some("c")
        );
        // Equal servers: every one gets picked sometimes.
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            seen.insert(
                pick(
                    &room,
                    vec![
                        candidate(&a, 0.0, 0),
                        candidate(&b, 0.0, 0),
                        candidate(&c, 0.0, 0),
                    ],
                )
                .unwrap(),
            );
        }
        assert_eq!(seen.len(), 3);
    }
}
