//! Where new rooms go when many arrive at once: 200 first joins of distinct rooms over 10 equal
//! servers, and 140 over a fleet weighted 1:2:4. The baseline is the same number of creates of
//! new meetings sent straight to the emulators, round robin.

use super::{
    Bench, Fallible,
    emulators::{Emulators, fresh_ids},
    harness::{self, BenchService, Options},
    measure::Samples,
    report::{Figure, Section},
};
use crate::bbb::{BbbClient, Endpoint, Query, Timeouts};
use std::{
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
        .run(new_rooms(service.addr, harness::fresh_event(), ROOMS))
        .await?;
    service.stop().await;
    let endpoints: Vec<Endpoint> = emulators
        .servers
        .iter()
        .map(|s| s.endpoint.clone())
        .collect();
    let bare = bench.load.run(new_meetings(endpoints, ROOMS)).await?;
    let ids: Vec<&str> = emulators.servers.iter().map(|s| s.id.as_str()).collect();
    let counts = per_server(&placed.answers, &ids);
    let (min, max) = (
        counts.iter().copied().min().unwrap_or(0),
        counts.iter().copied().max().unwrap_or(0),
    );
    let spread = max as f64 / min.max(1) as f64;
    let even = ROOMS / SERVERS;
    let (low, high) = (even - even / 10, even + even / 10);
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
            service.addr,
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
    Ok(sections)
}

fn per_server(placed: &[String], ids: &[&str]) -> Vec<usize> {
    ids.iter()
        .map(|id| placed.iter().filter(|s| s == id).count())
        .collect()
}

pub(super) fn list(counts: &[usize]) -> String {
    counts
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// First joins of `rooms` distinct rooms of one event, all at once; answers are server ids.
async fn new_rooms(
    addr: SocketAddr,
    event: String,
    rooms: usize,
) -> Fallible<harness::Answers<String>> {
    let mut clients = Vec::new();
    for _ in 0..rooms.div_ceil(STREAMS_PER_CONNECTION) {
        clients.push(harness::client(addr).await?);
    }
    let mut calls = JoinSet::new();
    for i in 0..rooms {
        let mut client = clients[i / STREAMS_PER_CONNECTION].clone();
        let request = harness::room(&event, &format!("room-{i}"), "u");
        calls.spawn(async move {
            let sent = Instant::now();
            let answer = client.room_url(harness::authed(request)).await;
            (sent.elapsed(), answer.map(|a| a.into_inner().server_id))
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
