//! New sessions of an event's rooms. A room's first join after its meeting ended places it anew
//! by the load of that moment, not where the room ran before:
//!
//! - session placement: 30 rooms of one event first-joined one at a time while one server
//!   carries a heavy meeting of another tenant; all 30 end, that load moves to another server,
//!   and all 30 start again at once. None may land on the loaded server either time, each
//!   server that may host them should get its even share, and every room keeps its meetingID.
//! - sized placement: a 500-participant keynote and ten 20-participant workshops start
//!   together; the keynote's expected size is reserved, so no workshop shares its server.
//! - planned placement: the same sessions kept as the event's plan a minute before they start,
//!   the workshops first-joined one at a time before the keynote, without sizes (the live
//!   module sends none): each lands on its planned server, the keynote's held in reserve for
//!   it. Its baseline is as many bare creates, one at a time.
//!
//! The baselines are as many bare creates sent straight to the emulators, all at once.

use super::{
    Bench, Fallible,
    emulators::{Emulator, Emulators, fresh_ids},
    harness::{self, BenchService, Options},
    measure::ms,
    placement,
    report::{self, Figure, Section},
};
use crate::{
    bbb::{BbbClient, Query, Timeouts},
    proto::{self, ServerInfo},
};
use std::{
    collections::HashSet,
    net::SocketAddr,
    time::{Duration, Instant},
};
use tokio::task::JoinSet;

const SERVERS: usize = 10;
const ROOMS: usize = 30;
/// The other tenant's meeting: 100 participants on audio, 4 cameras.
const FOREIGN: (u32, u32, u32) = (100, 100, 4);
/// How far from an even share each server's rooms may be.
const TOLERANCE: f64 = 0.20;
const KEYNOTE: u32 = 500;
const WORKSHOPS: usize = 10;
const WORKSHOP: u32 = 20;
/// Beyond the create timeout (the service's default, which the bench keeps), how long after its
/// latest claim a room is left where it is (1 s on the way, 2 s of replicas' clocks), and a
/// margin.
const SETTLE: Duration = Duration::from_millis(3500);
/// The longest the bench waits for the service's view of the fleet to catch up.
const CATCH_UP: Duration = Duration::from_secs(90);

/// One room's first join: the room's index, the server and the meetingID it was given.
#[derive(Debug, Clone)]
struct Join {
    room: usize,
    server: String,
    meeting: String,
}

pub async fn run(bench: &Bench, latency: Duration) -> Fallible<Vec<Section>> {
    Ok(vec![
        session_placement(bench, latency).await?,
        sized_placement(bench, latency).await?,
        planned_placement(bench, latency).await?,
    ])
}

fn foreign_cost() -> f64 {
    let (participants, voice, video) = FOREIGN;
    crate::fleet::meeting_cost(participants, video, voice)
}

/// Creates a meeting the service knows nothing of on `server` and gives it [`FOREIGN`]'s load.
async fn foreign_meeting(emulators: &Emulators, server: &Emulator) -> Fallible<String> {
    let id = format!("foreign-{}", uuid::Uuid::new_v4().simple());
    let query = Query::new()
        .with("name", "Another tenant's meeting")
        .with("meetingID", &id)
        .with("attendeePW", "foreign-attendee")
        .with("moderatorPW", "foreign-moderator");
    BbbClient::new(Timeouts::default())
        .create(&server.endpoint, &query, &[])
        .await?;
    let (participants, voice, video) = FOREIGN;
    emulators
        .set_load(server, &id, participants, voice, video)
        .await?;
    Ok(id)
}

fn server_id(info: &ServerInfo) -> &str {
    info.spec.as_ref().map_or("", |s| s.id.as_str())
}

fn load_of(fleet: &[ServerInfo], id: &str) -> f64 {
    fleet
        .iter()
        .find(|s| server_id(s) == id)
        .map_or(0.0, |s| s.load)
}

/// Asks the service for its view of the fleet (FleetService.ListServers) until `ready` holds;
/// how long that took, or `None` if it did not within [`CATCH_UP`].
async fn wait_for_fleet(
    addr: SocketAddr,
    ready: impl Fn(&[ServerInfo]) -> bool + Send + 'static,
) -> Fallible<Option<Duration>> {
    let mut admin = harness::admin(addr).await?;
    let started = Instant::now();
    while started.elapsed() < CATCH_UP {
        let fleet = admin
            .list_servers(harness::admin_authed(proto::ListServersRequest {}))
            .await?
            .into_inner()
            .servers;
        if ready(&fleet) {
            return Ok(Some(started.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(None)
}

/// First joins of the rooms `(name, expected participants)` of `event`, one after another
/// (`at_once` false) or all at once on one connection.
async fn first_joins(
    addr: SocketAddr,
    event: String,
    rooms: Vec<(String, u32)>,
    at_once: bool,
) -> Fallible<harness::Answers<Join>> {
    let client = harness::client(addr).await?;
    let mut calls = JoinSet::new();
    let mut answers = harness::Answers {
        samples: Default::default(),
        answers: Vec::new(),
        errors: 0,
    };
    for (i, (name, expected)) in rooms.into_iter().enumerate() {
        let mut client = client.clone();
        let mut request = harness::room(&event, &name, "u");
        if let Some(settings) = request.settings.as_mut() {
            settings.expected_participants = expected;
        }
        let call = async move {
            let sent = Instant::now();
            let answer = client.room_url(harness::authed(request)).await;
            let join = answer.map(|a| {
                let a = a.into_inner();
                Join {
                    room: i,
                    server: a.server_id,
                    meeting: a.meeting_id,
                }
            });
            (sent.elapsed(), join)
        };
        if at_once {
            calls.spawn(call);
        } else {
            match call.await {
                (took, Ok(join)) => {
                    answers.samples.push(took);
                    answers.answers.push(join);
                }
                (_, Err(_)) => answers.errors += 1,
            }
        }
    }
    if at_once {
        answers = harness::gather(calls).await?;
    }
    answers.answers.sort_by_key(|j| j.room);
    Ok(answers)
}

fn short(id: &str) -> &str {
    id.rsplit_once('-').map_or(id, |(_, s)| s)
}

/// Rooms per server of `hosts` (in their order), and how many landed on `loaded`.
fn spread(joins: &[Join], hosts: &[&str], loaded: &str) -> (Vec<usize>, usize) {
    let count = |id: &str| joins.iter().filter(|j| j.server == id).count();
    (hosts.iter().map(|id| count(id)).collect(), count(loaded))
}

/// The largest deviation of a count from the even share, as a fraction of it.
fn deviation(counts: &[usize]) -> f64 {
    let total: usize = counts.iter().sum();
    let even = total as f64 / counts.len().max(1) as f64;
    counts
        .iter()
        .map(|&n| (n as f64 - even).abs() / even.max(f64::MIN_POSITIVE))
        .fold(0.0, f64::max)
}

fn spread_figure(measure: &str, joins: &[Join], hosts: &[&str], loaded: &str) -> Figure {
    let (counts, on_loaded) = spread(joins, hosts, loaded);
    let worst = deviation(&counts);
    let even = ROOMS as f64 / hosts.len() as f64;
    Figure::text(
        measure,
        worst,
        format!(
            "{} on {} (the other {}); {on_loaded} on the loaded {}",
            placement::list(&counts),
            hosts.iter().map(|h| short(h)).collect::<Vec<_>>().join(" "),
            hosts.len(),
            short(loaded),
        ),
    )
    .goal(
        &format!("each within ±20% of even ({even:.1}), none on the loaded server"),
        worst <= TOLERANCE + 1e-9 && on_loaded == 0,
    )
}

async fn session_placement(bench: &Bench, latency: Duration) -> Fallible<Section> {
    let emulators = Emulators::start(fresh_ids(SERVERS), latency).await?;
    let ids: Vec<String> = emulators.servers.iter().map(|s| s.id.clone()).collect();
    let (first_loaded, then_loaded) = (ids[0].clone(), ids[1].clone());
    let service = BenchService::start(bench, &emulators.servers, &Options::default()).await?;
    let addr = service.addr;
    let event = harness::fresh_event();
    let rooms: Vec<(String, u32)> = (0..ROOMS).map(|i| (format!("session-{i}"), 0)).collect();

    // The other tenant's meeting on the first server, and the service has polled it.
    let foreign = foreign_meeting(&emulators, &emulators.servers[0]).await?;
    let loaded = first_loaded.clone();
    let seen_load = bench
        .load
        .run(wait_for_fleet(addr, move |fleet| {
            load_of(fleet, &loaded) >= foreign_cost()
        }))
        .await?;

    // First sessions, one room at a time.
    let first = bench
        .load
        .run(first_joins(addr, event.clone(), rooms.clone(), false))
        .await?;
    let last_placed = Instant::now();

    // Every meeting ends; the other tenant's load moves to the second server.
    for join in &first.answers {
        let server = emulators
            .servers
            .iter()
            .find(|s| s.id == join.server)
            .ok_or("a room on a server the bench does not know")?;
        emulators.end(server, &join.meeting).await?;
    }
    emulators.end(&emulators.servers[0], &foreign).await?;
    foreign_meeting(&emulators, &emulators.servers[1]).await?;
    // Until the service's view shows the load moved and the service's settle window (create
    // timeout + 3 s) since the last placement has passed, within which a room stays put; then
    // one more poll interval, so that every server has been polled since.
    // The ended meetings' reservations are left to count: they lapse only 30 s after their
    // placement, or when their room is placed anew.
    let (old, new) = (first_loaded.clone(), then_loaded.clone());
    let ended_at = Instant::now();
    let caught_up = bench
        .load
        .run(wait_for_fleet(addr, move |fleet| {
            load_of(fleet, &new) >= foreign_cost() && load_of(fleet, &old) < foreign_cost()
        }))
        .await?;
    let settled = last_placed + Timeouts::default().create + SETTLE;
    tokio::time::sleep_until(settled.into()).await;
    tokio::time::sleep(harness::POLL_INTERVAL + Duration::from_millis(500)).await;
    let waited_after_end = ended_at.elapsed();

    // Second sessions: all rooms at once.
    let creates_before = emulators.calls("create").await?;
    let second = bench
        .load
        .run(first_joins(addr, event, rooms, true))
        .await?;
    let creates = emulators.calls("create").await? - creates_before;
    service.stop().await;
    let endpoints = emulators.endpoints();
    let bare = bench
        .load
        .run(placement::new_meetings(endpoints, ROOMS))
        .await?;

    let first_hosts: Vec<&str> = ids
        .iter()
        .map(String::as_str)
        .filter(|id| *id != first_loaded)
        .collect();
    let then_hosts: Vec<&str> = ids
        .iter()
        .map(String::as_str)
        .filter(|id| *id != then_loaded)
        .collect();
    let unchanged = first
        .answers
        .iter()
        .filter(|a| {
            second
                .answers
                .iter()
                .any(|b| b.room == a.room && b.meeting == a.meeting)
        })
        .count();
    let moved = first
        .answers
        .iter()
        .filter(|a| {
            second
                .answers
                .iter()
                .any(|b| b.room == a.room && b.server != a.server)
        })
        .count();
    let distinct: HashSet<&str> = second.answers.iter().map(|j| j.meeting.as_str()).collect();
    let failed = first.errors + second.errors;
    let waited = |d: Option<Duration>| d.map_or(f64::NAN, ms);

    Ok(Section {
        scenario: "sessions",
        title: format!(
            "Session placement: {ROOMS} rooms of one event over {SERVERS} servers, one carrying \
             another tenant's meeting"
        ),
        latency_ms: latency.as_millis() as u64,
        conditions: format!(
            "that meeting: {} participants, {} on audio, {} cameras (cost {:.0}); baseline: \
             {ROOMS} bare creates at once, round robin",
            FOREIGN.0,
            FOREIGN.1,
            FOREIGN.2,
            foreign_cost()
        ),
        figures: vec![
            Figure::new(
                "until the service's view showed the load",
                waited(seen_load),
                "ms",
            )
            .goal("seen", seen_load.is_some()),
            spread_figure(
                "first sessions, one room at a time: rooms per server",
                &first.answers,
                &first_hosts,
                &first_loaded,
            ),
            Figure::new(
                "until the service's view showed the load moved",
                waited(caught_up),
                "ms",
            )
            .goal("seen", caught_up.is_some()),
            Figure::new(
                "from the ends to the second sessions (+ a poll, settle window)",
                ms(waited_after_end),
                "ms",
            ),
            spread_figure(
                "second sessions, all at once: rooms per server",
                &second.answers,
                &then_hosts,
                &then_loaded,
            ),
            Figure::new("rooms placed on another server", moved as f64, ""),
            Figure::text(
                "meetingIDs unchanged",
                unchanged as f64,
                format!("{unchanged} of {ROOMS}"),
            )
            .goal(&format!("{ROOMS} of {ROOMS}"), unchanged == ROOMS),
            Figure::new(
                "distinct meetings in the second answers",
                distinct.len() as f64,
                "",
            )
            .goal(&ROOMS.to_string(), distinct.len() == ROOMS),
            Figure::new("BBB creates for the second sessions", creates as f64, ""),
            Figure::new(
                "first join p99, one at a time",
                first.samples.percentile_ms(0.99),
                "ms",
            ),
            Figure::new(
                "session start p50, all at once",
                second.samples.percentile_ms(0.5),
                "ms",
            )
            .baseline(bare.percentile_ms(0.5)),
            Figure::new(
                "session start p99, all at once",
                second.samples.percentile_ms(0.99),
                "ms",
            )
            .baseline(bare.percentile_ms(0.99)),
            Figure::new("failed first joins", failed as f64, "").goal("0", failed == 0),
        ],
        peak_rss_mib: 0.0,
    })
}

async fn sized_placement(bench: &Bench, latency: Duration) -> Fallible<Section> {
    let emulators = Emulators::start(fresh_ids(SERVERS), latency).await?;
    let service = BenchService::start(bench, &emulators.servers, &Options::default()).await?;
    let rooms: Vec<(String, u32)> = std::iter::once(("keynote".to_owned(), KEYNOTE))
        .chain((0..WORKSHOPS).map(|i| (format!("workshop-{i}"), WORKSHOP)))
        .collect();
    let count = rooms.len();
    let placed = bench
        .load
        .run(first_joins(
            service.addr,
            harness::fresh_event(),
            rooms,
            true,
        ))
        .await?;
    service.stop().await;
    let endpoints = emulators.endpoints();
    let bare = bench
        .load
        .run(placement::new_meetings(endpoints, count))
        .await?;

    let keynote = placed.answers.iter().find(|j| j.room == 0);
    let keynote_server = keynote.map(|j| j.server.as_str()).unwrap_or_default();
    let workshops: Vec<&Join> = placed.answers.iter().filter(|j| j.room != 0).collect();
    let beside = workshops
        .iter()
        .filter(|j| j.server == keynote_server)
        .count();
    let servers: Vec<String> = emulators.servers.iter().map(|s| s.id.clone()).collect();
    let per_server: Vec<usize> = servers
        .iter()
        .map(|id| workshops.iter().filter(|j| j.server == *id).count())
        .collect();
    let most = per_server.iter().copied().max().unwrap_or(0);
    Ok(Section {
        scenario: "sessions",
        title: format!(
            "Sized placement: a {KEYNOTE}-participant keynote and {WORKSHOPS} workshops of \
             {WORKSHOP} starting at once over {SERVERS} servers"
        ),
        latency_ms: latency.as_millis() as u64,
        conditions: format!("baseline: {count} bare creates at once, round robin"),
        figures: vec![
            Figure::text(
                "where they went",
                beside as f64,
                format!(
                    "keynote on {}; workshops per server {} ({})",
                    short(keynote_server),
                    placement::list(&per_server),
                    servers
                        .iter()
                        .map(|s| short(s))
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
            )
            .goal(
                "the keynote's server holds no workshop",
                keynote.is_some() && beside == 0,
            ),
            Figure::new("most workshops on one server", most as f64, ""),
        ]
        .into_iter()
        .chain(report::first_joins(&placed.samples, &bare, placed.errors))
        .collect(),
        peak_rss_mib: 0.0,
    })
}

async fn planned_placement(bench: &Bench, latency: Duration) -> Fallible<Section> {
    let emulators = Emulators::start(fresh_ids(SERVERS), latency).await?;
    let service = BenchService::start(bench, &emulators.servers, &Options::default()).await?;
    let event = harness::fresh_event();
    let start = std::time::SystemTime::now() + Duration::from_secs(60);
    let at = |t: std::time::SystemTime| Some(prost_types::Timestamp::from(t));
    let sessions: Vec<proto::PlannedSession> = std::iter::once(("keynote".to_owned(), KEYNOTE))
        .chain((0..WORKSHOPS).map(|i| (format!("workshop-{i}"), WORKSHOP)))
        .map(|(room, participants)| proto::PlannedSession {
            room_id: room,
            start: at(start),
            end: at(start + Duration::from_secs(3600)),
            expected_participants: participants,
        })
        .collect();
    let count = sessions.len();
    let addr = service.addr;
    let (kept, placed) = bench
        .load
        .run(async move {
            let mut client = harness::client(addr).await?;
            let request = proto::PlanScheduleRequest {
                event_id: event.clone(),
                organizer_id: "bench-org".into(),
                sessions,
                slot_minutes: 0,
                keep: true,
            };
            let kept = client
                .plan_schedule(harness::authed(request))
                .await?
                .into_inner();
            // Workshops first, the keynote last, each alone: without the plan they would take
            // the emptiest servers in turn, the keynote's among them.
            let mut rooms: Vec<(String, u32)> = (0..WORKSHOPS)
                .map(|i| (format!("workshop-{i}"), 0))
                .collect();
            rooms.push(("keynote".into(), 0));
            let placed = first_joins(addr, event, rooms, false).await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>((kept, placed))
        })
        .await?;
    service.stop().await;
    let endpoints = emulators.endpoints();
    let bare = bench
        .load
        .run(async move {
            let mut samples = crate::bench::measure::Samples::default();
            for _ in 0..count {
                samples.extend(placement::new_meetings(endpoints.clone(), 1).await?);
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(samples)
        })
        .await?;

    let planned = |room: &str| {
        kept.placements
            .iter()
            .find(|p| p.room_id == room)
            .map(|p| p.server_id.as_str())
    };
    // (first_joins numbers the rooms in the order given: the keynote is last.)
    let name = |j: &Join| {
        if j.room == WORKSHOPS {
            "keynote".to_owned()
        } else {
            format!("workshop-{}", j.room)
        }
    };
    let followed = placed
        .answers
        .iter()
        .filter(|j| planned(&name(j)) == Some(j.server.as_str()))
        .count();
    let keynote_server = planned("keynote").unwrap_or_default();
    let beside = placed
        .answers
        .iter()
        .filter(|j| j.room != WORKSHOPS && j.server == keynote_server)
        .count();
    Ok(Section {
        scenario: "sessions",
        title: format!(
            "Planned placement: a kept plan of a {KEYNOTE}-participant keynote and {WORKSHOPS} \
             workshops of {WORKSHOP}, the workshops joined first, one at a time"
        ),
        latency_ms: latency.as_millis() as u64,
        conditions: format!(
            "{SERVERS} servers; kept with PlanSchedule a minute before the start; baseline: \
             {count} bare creates, one at a time"
        ),
        figures: vec![
            Figure::new("sessions kept", f64::from(kept.kept), "")
                .goal(&count.to_string(), kept.kept as usize == count),
            Figure::new("sessions on their planned server", followed as f64, "")
                .goal(&count.to_string(), followed == count),
            Figure::new("workshops on the keynote's server", beside as f64, "")
                .goal("0", beside == 0 && !keynote_server.is_empty()),
        ]
        .into_iter()
        .chain(report::first_joins(&placed.samples, &bare, placed.errors))
        .collect(),
        peak_rss_mib: 0.0,
    })
}
