//! Where new rooms go when many arrive at once: 200 first joins of distinct rooms over 10 equal
//! servers, and 140 over a fleet weighted 1:2:4. The baseline is the same number of creates of
//! new meetings sent straight to the emulators, round robin.

use super::{
    Bench, Fallible,
    emulators::{Emulators, fresh_ids},
    harness::{self, BenchService, Options},
    measure::Samples,
    report::{self, Figure, Section},
};
use crate::bbb::{BbbClient, Endpoint, Query, Timeouts};
use std::{
    collections::{HashMap, HashSet},
    net::SocketAddr,
    time::{Duration, Instant},
};
use tokio::task::JoinSet;

const ROOMS: usize = 200;
const SERVERS: usize = 10;
const WEIGHTS: [f64; 3] = [1.0, 2.0, 4.0];
const WEIGHTED_ROOMS: usize = 140;
const STREAMS_PER_CONNECTION: usize = 100;

pub async fn run(bench: &Bench, latency: Duration) -> Fallible<Vec<Section>> {
    let lat = latency.as_millis() as u64;

    // Ten equal servers. The service goes first: the baseline's meetings would otherwise count
    // as load on the emulators when the service polls them.
    let emulators = Emulators::start(fresh_ids(SERVERS), latency).await?;
    let service = BenchService::start(bench, &emulators.servers, &Options::default()).await?;
    let placed = bench
        .load
        .run(new_rooms(vec![service.addr], harness::fresh_event(), ROOMS))
        .await?;
    service.stop().await;
    let endpoints = emulators.endpoints();
    let bare = bench.load.run(new_meetings(endpoints, ROOMS)).await?;
    let ids: Vec<&str> = emulators.servers.iter().map(|s| s.id.as_str()).collect();
    let counts = per_server(&placed.answers, &ids);
    let (spread, low, high) = spread(&counts);
    let p50 = placed.samples.percentile_ms(0.5);
    let p99 = placed.samples.percentile_ms(0.99);
    let mut sections = vec![Section {
        scenario: "placement",
        title: format!("Placement: {ROOMS} new rooms at once over {SERVERS} equal servers"),
        latency_ms: lat,
        conditions: "baseline: as many new-meeting creates straight to the servers, round robin"
            .to_owned(),
        figures: vec![
            Figure::text("rooms per server", spread, list(&counts)).goal(
                &format!("each {low}–{high} (±10% of even)"),
                counts.iter().all(|n| (low..=high).contains(n)),
            ),
            Figure::new("max/min", spread, "")
                .peer("18–23 per server, max/min 1.22–1.28", None)
                .goal(
                    &format!("≤ {:.2}", high as f64 / low as f64),
                    spread <= high as f64 / low as f64,
                ),
            Figure::new("first join p50", p50, "ms")
                .baseline(bare.percentile_ms(0.5))
                .peer("create p50 ≈ 440 ms", Some(440.0 / p50)),
            Figure::new("first join p99", p99, "ms")
                .baseline(bare.percentile_ms(0.99))
                .peer("create p99 1.2–1.7 s", Some(1450.0 / p99)),
            Figure::new("failed first joins", placed.errors as f64, "")
                .goal("0", placed.errors == 0),
        ],
        peak_rss_mib: 0.0,
    }];
    drop(emulators);

    // A weighted fleet: new rooms in proportion to the weights.
    let emulators = Emulators::start(fresh_ids(WEIGHTS.len()), latency).await?;
    let options = Options {
        weights: WEIGHTS.to_vec(),
        ..Options::default()
    };
    let service = BenchService::start(bench, &emulators.servers, &options).await?;
    let placed = bench
        .load
        .run(new_rooms(
            vec![service.addr],
            harness::fresh_event(),
            WEIGHTED_ROOMS,
        ))
        .await?;
    service.stop().await;
    let ids: Vec<&str> = emulators.servers.iter().map(|s| s.id.as_str()).collect();
    let counts = per_server(&placed.answers, &ids);
    let total_weight: f64 = WEIGHTS.iter().sum();
    let shares: Vec<f64> = WEIGHTS
        .iter()
        .map(|w| w / total_weight * WEIGHTED_ROOMS as f64)
        .collect();
    let worst = counts
        .iter()
        .zip(&shares)
        .map(|(n, share)| (*n as f64 - share).abs() / share)
        .fold(0.0, f64::max);
    sections.push(Section {
        scenario: "placement",
        title: format!(
            "Placement: {WEIGHTED_ROOMS} new rooms at once over 3 servers weighted 1:2:4"
        ),
        latency_ms: lat,
        conditions: String::new(),
        figures: vec![
            Figure::text(
                "rooms per server",
                worst,
                format!(
                    "{} (shares {})",
                    list(&counts),
                    shares
                        .iter()
                        .map(|s| format!("{s:.0}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
            ),
            Figure::new(
                "largest deviation from the weight's share",
                worst * 100.0,
                "%",
            )
            .goal("≤ 10%", worst <= 0.10),
            Figure::new("first join p99", placed.samples.percentile_ms(0.99), "ms"),
            Figure::new("failed first joins", placed.errors as f64, "")
                .goal("0", placed.errors == 0),
        ],
        peak_rss_mib: 0.0,
    });
    if bench
        .database_url
        .as_deref()
        .is_some_and(|url| url.starts_with("postgres"))
    {
        sections.push(two_replicas(bench, latency).await?);
    }
    Ok(sections)
}

/// The first table's burst again, split between two replicas of the service on one PostgreSQL
/// database: every other first join goes to the second.
async fn two_replicas(bench: &Bench, latency: Duration) -> Fallible<Section> {
    let emulators = Emulators::start(fresh_ids(SERVERS), latency).await?;
    let options = Options::default();
    let first = BenchService::start(bench, &emulators.servers, &options).await?;
    let second = first.replica(&emulators.servers, &options).await?;
    let placed = bench
        .load
        .run(new_rooms(
            vec![first.addr, second.addr],
            harness::fresh_event(),
            ROOMS,
        ))
        .await?;
    second.stop().await;
    first.stop().await;
    let bbb = BbbClient::new(Timeouts::default());
    let mut hosted: HashMap<String, usize> = HashMap::new();
    for server in &emulators.servers {
        for meeting in bbb.get_meetings(&server.endpoint).await? {
            *hosted.entry(meeting.meeting_id).or_default() += 1;
        }
    }
    let endpoints = emulators.endpoints();
    let bare = bench.load.run(new_meetings(endpoints, ROOMS)).await?;

    let ids: Vec<&str> = emulators.servers.iter().map(|s| s.id.as_str()).collect();
    let counts = per_server(&placed.answers, &ids);
    let (spread, low, high) = spread(&counts);
    let distinct: HashSet<&str> = placed.answers.iter().map(|p| p.meeting.as_str()).collect();
    let on_bbb: usize = hosted.values().sum();
    let doubled = hosted.values().filter(|&&n| n > 1).count();
    Ok(Section {
        scenario: "placement",
        title: format!(
            "Placement: {ROOMS} new rooms at once over {SERVERS} equal servers, two replicas on \
             one PostgreSQL database"
        ),
        latency_ms: latency.as_millis() as u64,
        conditions: "first joins alternate between the replicas; baseline: as many new-meeting \
                     creates straight to the servers, round robin"
            .to_owned(),
        figures: vec![
            Figure::text("rooms per server", spread, list(&counts)).goal(
                &format!("each {low}–{high} (±10% of even)"),
                counts.iter().all(|n| (low..=high).contains(n)),
            ),
            Figure::new("max/min", spread, ""),
            Figure::new(
                "distinct meetings in the answers",
                distinct.len() as f64,
                "",
            )
            .goal(&ROOMS.to_string(), distinct.len() == ROOMS),
            Figure::new("meetings on the BBB servers", on_bbb as f64, "")
                .goal(&ROOMS.to_string(), on_bbb == ROOMS),
            Figure::new("meetingIDs on more than one server", doubled as f64, "")
                .goal("0", doubled == 0),
        ]
        .into_iter()
        .chain(report::first_joins(&placed.samples, &bare, placed.errors))
        .collect(),
        peak_rss_mib: 0.0,
    })
}

/// Of `ROOMS` rooms per server: max/min, and the ±10% band around an even share.
fn spread(counts: &[usize]) -> (f64, usize, usize) {
    let (min, max) = (
        counts.iter().copied().min().unwrap_or(0),
        counts.iter().copied().max().unwrap_or(0),
    );
    let even = ROOMS / SERVERS;
    (
        max as f64 / min.max(1) as f64,
        even - even / 10,
        even + even / 10,
    )
}

fn per_server(placed: &[Placed], ids: &[&str]) -> Vec<usize> {
    ids.iter()
        .map(|id| placed.iter().filter(|p| p.server == *id).count())
        .collect()
}

pub(super) fn list(counts: &[usize]) -> String {
    counts
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Where a first join's room went.
struct Placed {
    server: String,
    meeting: String,
}

/// First joins of `rooms` distinct rooms of one event, all at once, sent to the services at
/// `addrs` in turn (replicas on one database).
async fn new_rooms(
    addrs: Vec<SocketAddr>,
    event: String,
    rooms: usize,
) -> Fallible<harness::Answers<Placed>> {
    let per_service = rooms.div_ceil(addrs.len());
    let mut clients = Vec::new();
    for &addr in &addrs {
        let mut of_service = Vec::new();
        for _ in 0..per_service.div_ceil(STREAMS_PER_CONNECTION) {
            of_service.push(harness::client(addr).await?);
        }
        clients.push(of_service);
    }
    let mut calls = JoinSet::new();
    for i in 0..rooms {
        let (service, nth) = (i % addrs.len(), i / addrs.len());
        let mut client = clients[service][nth / STREAMS_PER_CONNECTION].clone();
        let request = harness::room(&event, &format!("room-{i}"), "u");
        calls.spawn(async move {
            let sent = Instant::now();
            let answer = client.room_url(harness::authed(request)).await;
            let placed = answer.map(|a| {
                let a = a.into_inner();
                Placed {
                    server: a.server_id,
                    meeting: a.meeting_id,
                }
            });
            (sent.elapsed(), placed)
        });
    }
    harness::gather(calls).await
}

/// Creates of `meetings` new meetings straight to the servers, round robin, all at once.
pub(super) async fn new_meetings(endpoints: Vec<Endpoint>, meetings: usize) -> Fallible<Samples> {
    let bbb = BbbClient::new(Timeouts::default());
    let mut calls = JoinSet::new();
    for i in 0..meetings {
        let (bbb, endpoint) = (bbb.clone(), endpoints[i % endpoints.len()].clone());
        let query = Query::new()
            .with("name", harness::ROOM_NAME)
            .with("meetingID", uuid::Uuid::new_v4().simple().to_string())
            .with("attendeePW", "bench-attendee")
            .with("moderatorPW", "bench-moderator");
        calls.spawn(async move {
            let sent = Instant::now();
            let answer = bbb.create(&endpoint, &query, &[]).await;
            (sent.elapsed(), answer)
        });
    }
    Ok(harness::gather(calls).await?.samples)
}
