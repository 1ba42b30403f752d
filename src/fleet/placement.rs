//! Where a new meeting goes. Tiers, as the original module ordered them: the preferred server,
//! then servers reserved for the event, then the organizer's, then the global pool. The first
//! tier with an eligible server wins; inside it the least used server per unit of weight wins,
//! ties broken at random so that replicas do not all pile onto the same one.

use super::FleetServer;
use crate::store::ServerState;
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
}

fn eligible(server: &FleetServer, request: &PlacementRequest<'_>) -> bool {
    server.spec.state == ServerState::Enabled
        && !(request.kind == MeetingKind::Call && server.spec.rooms_only)
        && server.serves(request.event_id, request.organizer_id)
}

fn is_preferred(server: &FleetServer, prefer: &str) -> bool {
    if server.spec.id == prefer {
        return true;
    }
    // URLs match however they are written: compare the normalised API bases.
    crate::bbb::Endpoint::new(prefer, crate::secret::Secret::new(""), server.spec.checksum)
        .is_ok_and(|e| e.api_base() == server.endpoint.api_base())
}

pub(super) fn choose<'a>(
    request: &PlacementRequest<'_>,
    servers: impl Iterator<Item = &'a Arc<FleetServer>>,
    usage: impl Fn(&FleetServer) -> u64,
) -> Option<&'a Arc<FleetServer>> {
    let candidates: Vec<&Arc<FleetServer>> = servers.filter(|s| eligible(s, request)).collect();
    let tiers: [&dyn Fn(&FleetServer) -> bool; 4] = [
        &|s| {
            request
                .prefer
                .is_some_and(|p| !p.is_empty() && is_preferred(s, p))
        },
        &|s| s.spec.events.iter().any(|e| e == request.event_id),
        &|s| s.spec.organizers.iter().any(|o| o == request.organizer_id),
        &|s| s.spec.events.is_empty() && s.spec.organizers.is_empty(),
    ];
    for in_tier in tiers {
        let tier: Vec<_> = candidates.iter().copied().filter(|s| in_tier(s)).collect();
        if tier.is_empty() {
            continue;
        }
        let score = |s: &FleetServer| usage(s) as f64 / s.spec.weight;
        let best = tier.iter().map(|s| score(s)).fold(f64::INFINITY, f64::min);
        let least_used: Vec<_> = tier.into_iter().filter(|s| score(s) <= best).collect();
        return least_used.choose(&mut rand::rng()).copied();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{bbb::Endpoint, secret::Secret, store::Server};
    use std::collections::HashMap;

    fn server(id: &str, f: impl FnOnce(&mut Server)) -> Arc<FleetServer> {
        let mut spec = Server::new(
            id,
            format!("https://{id}.example.org/bigbluebutton/"),
            Secret::new("s"),
        );
        f(&mut spec);
        let endpoint = Endpoint::new(&spec.url, spec.secret.clone(), spec.checksum).unwrap();
        Arc::new(FleetServer { spec, endpoint })
    }

    fn request(kind: MeetingKind, prefer: Option<&'static str>) -> PlacementRequest<'static> {
        PlacementRequest {
            event_id: "ev",
            organizer_id: "org",
            kind,
            prefer,
        }
    }

    fn pick(
        servers: &[Arc<FleetServer>],
        req: &PlacementRequest<'_>,
        usage: &HashMap<&str, u64>,
    ) -> Option<String> {
        choose(req, servers.iter(), |s| {
            usage.get(s.spec.id.as_str()).copied().unwrap_or(0)
        })
        .map(|s| s.spec.id.clone())
    }

    #[test]
    fn tiers_in_order_and_exclusive_servers_beat_cheaper_global_ones() {
        let servers = vec![
            server("global", |_| {}),
            server("org", |s| s.organizers = vec!["org".into()]),
            server("event", |s| s.events = vec!["ev".into()]),
            server("other-event", |s| s.events = vec!["nope".into()]),
        ];
        let usage = HashMap::from([("event", 50)]);
        let req = request(MeetingKind::Room, None);
        assert_eq!(pick(&servers, &req, &usage).as_deref(), Some("event"));
        assert_eq!(
            pick(&servers, &request(MeetingKind::Room, Some("org")), &usage).as_deref(),
            Some("org")
        );
        assert_eq!(
            pick(
                &servers,
                &request(
                    MeetingKind::Room,
                    Some("https://global.example.org/bigbluebutton/api")
                ),
                &usage
            )
            .as_deref(),
            Some("global")
        );
        // A preference for a server reserved to another event is ignored.
        assert_eq!(
            pick(
                &servers,
                &request(MeetingKind::Room, Some("other-event")),
                &usage
            )
            .as_deref(),
            Some("event")
        );
        assert_eq!(pick(&servers[..1], &req, &usage).as_deref(), Some("global"));
        assert_eq!(pick(&servers[3..], &req, &usage), None);
    }

    #[test]
    fn state_rooms_only_and_usage_per_weight() {
        let servers = vec![
            server("disabled", |s| s.state = ServerState::Disabled),
            server("cordoned", |s| s.state = ServerState::Cordoned),
            server("rooms", |s| s.rooms_only = true),
            server("big", |s| s.weight = 4.0),
        ];
        let usage = HashMap::from([("rooms", 1), ("big", 3)]);
        assert_eq!(
            pick(&servers, &request(MeetingKind::Room, None), &usage).as_deref(),
            Some("big")
        );
        assert_eq!(
            pick(&servers, &request(MeetingKind::Call, None), &usage).as_deref(),
            Some("big")
        );
        let usage = HashMap::from([("rooms", 1), ("big", 5)]);
        assert_eq!(
            pick(&servers, &request(MeetingKind::Room, None), &usage).as_deref(),
            Some("rooms")
        );
        assert_eq!(
            pick(&servers[..2], &request(MeetingKind::Room, None), &usage),
            None
        );
    }
}
