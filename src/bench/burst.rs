//! A thousand first joins of one room at the same moment (a keynote starting). The service must
//! create one meeting with at most a few BBB creates; the baseline is what a forwarding proxy
//! would do: every join's create sent straight to BBB.

use super::{
    Bench, Fallible,
    emulators::{Emulators, fresh_ids},
    harness::{self, BenchService, Options},
    measure::{Samples, ms},
    report::{Figure, Section},
};
use crate::bbb::{BbbClient, Endpoint, Query, Timeouts};
use std::{
    collections::HashSet,
    net::SocketAddr,
    time::{Duration, Instant},
};
use tokio::task::JoinSet;

const SERVERS: usize = 10;
/// Concurrent streams per connection: a busy backend's share of one HTTP/2 connection.
const STREAMS_PER_CONNECTION: usize = 100;

struct Burst {
    samples: Samples,
    errors: usize,
    meetings: HashSet<String>,
    wall: Duration,
}

impl Burst {
    fn of(answers: harness::Answers<String>, started: Instant) -> Burst {
        Burst {
            wall: started.elapsed(),
            samples: answers.samples,
            errors: answers.errors,
            meetings: answers.answers.into_iter().collect(),
        }
    }
}

pub async fn run(bench: &Bench, latency: Duration) -> Fallible<Vec<Section>> {
    let joins = if bench.quick { 200 } else { 1000 };
    let emulators = Emulators::start(fresh_ids(SERVERS), latency).await?;
    let service = BenchService::start(bench, &emulators.servers, &Options::default()).await?;
    let event = harness::fresh_event();
    let creates_before = emulators.calls("create").await?;
    let burst = bench
        .load
        .run(first_joins(service.addr, event, joins))
        .await?;
    let creates = emulators.calls("create").await? - creates_before;
    let bbb = BbbClient::new(Timeouts::default());
    let mut on_bbb = 0;
    for server in &emulators.servers {
        on_bbb += bbb.get_meetings(&server.endpoint).await?.len();
    }
    service.stop().await;

    let endpoint = emulators.servers[0].endpoint.clone();
    let forwarded = bench.load.run(forwarded(endpoint, joins)).await?;

    let answered = joins - burst.errors;
    Ok(vec![Section {
        scenario: "burst",
        title: format!("Burst: {joins} concurrent first joins of one room over {SERVERS} servers"),
        latency_ms: latency.as_millis() as u64,
        conditions: format!(
            "{} connections of {STREAMS_PER_CONNECTION} streams; baseline: every create sent straight to BBB",
            joins.div_ceil(STREAMS_PER_CONNECTION)
        ),
        figures: vec![
            Figure::text(
                "joins answered with a URL",
                answered as f64,
                format!("{answered} of {joins}"),
            )
            .goal("all", burst.errors == 0),
            Figure::new(
                "distinct meetings in the answers",
                burst.meetings.len() as f64,
                "",
            )
            .goal("1", burst.meetings.len() == 1),
            Figure::new("meetings on the BBB servers", on_bbb as f64, "").goal("1", on_bbb == 1),
            Figure::new("BBB create calls", creates as f64, "")
                .baseline(joins as f64)
                .goal("≤ 3", creates <= 3),
            Figure::new("wall time", ms(burst.wall), "ms").baseline(ms(forwarded.wall)),
            Figure::new("join p50", burst.samples.percentile_ms(0.5), "ms")
                .baseline(forwarded.samples.percentile_ms(0.5)),
            Figure::new("join p99", burst.samples.percentile_ms(0.99), "ms")
                .baseline(forwarded.samples.percentile_ms(0.99)),
        ],
        peak_rss_mib: 0.0,
    }])
}

async fn first_joins(addr: SocketAddr, event: String, joins: usize) -> Fallible<Burst> {
    let mut clients = Vec::new();
    for _ in 0..joins.div_ceil(STREAMS_PER_CONNECTION) {
        clients.push(harness::client(addr).await?);
    }
    let started = Instant::now();
    let mut calls = JoinSet::new();
    for i in 0..joins {
        let mut client = clients[i / STREAMS_PER_CONNECTION].clone();
        let request = harness::room(&event, "keynote", &format!("u{i}"));
        calls.spawn(async move {
            let sent = Instant::now();
            let answer = client.room_url(harness::authed(request)).await;
            (sent.elapsed(), answer.map(|a| a.into_inner().meeting_id))
        });
    }
    Ok(Burst::of(harness::gather(calls).await?, started))
}

/// Every join's create sent straight to one server at once, as a forwarding proxy would.
async fn forwarded(endpoint: Endpoint, joins: usize) -> Fallible<Burst> {
    let bbb = BbbClient::new(Timeouts::default());
    let query = Query::new()
        .with("name", harness::ROOM_NAME)
        .with("meetingID", uuid::Uuid::new_v4().simple().to_string())
        .with("attendeePW", "bench-attendee")
        .with("moderatorPW", "bench-moderator");
    let started = Instant::now();
    let mut calls = JoinSet::new();
    for _ in 0..joins {
        let (bbb, endpoint, query) = (bbb.clone(), endpoint.clone(), query.clone());
        calls.spawn(async move {
            let sent = Instant::now();
            let answer = bbb.create(&endpoint, &query, &[]).await;
            (sent.elapsed(), answer.map(|c| c.meeting_id))
        });
    }
    Ok(Burst::of(harness::gather(calls).await?, started))
}
