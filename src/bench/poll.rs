//! One poll of a large fleet: 100 servers carrying 50 meetings each, through the service's own
//! `fleet::poller::poll_once`. The baseline is one `getMeetings` of one such server: what a
//! cycle would cost if every server were asked at once for free.

use super::{
    Bench, Fallible,
    emulators::{Emulators, fresh_ids},
    harness::Database,
    measure::{Cpu, Samples, ms},
    report::{Figure, Section},
};
use crate::{
    bbb::{BbbClient, Query, Timeouts},
    domain::Server,
    fleet::{Fleet, Thresholds, poller},
    secret::Secret,
    store::Store,
};
use std::{
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::task::JoinSet;

/// Creates in flight while the meetings are set up.
const SETUP_CONCURRENCY: usize = 64;

pub async fn run(bench: &Bench, latency: Duration) -> Fallible<Vec<Section>> {
    let (servers, meetings, cycles) = if bench.quick {
        (20, 10, 3)
    } else {
        (100, 50, 6)
    };
    // Set up without latency, then slow every answer down for the measurement.
    let emulators = Emulators::start(fresh_ids(servers), Duration::ZERO).await?;
    let endpoints: Vec<_> = emulators
        .servers
        .iter()
        .map(|s| s.endpoint.clone())
        .collect();
    bench
        .load
        .run(async move {
            let bbb = BbbClient::new(Timeouts::default());
            let mut creates = JoinSet::new();
            for n in 0..servers * meetings {
                if creates.len() >= SETUP_CONCURRENCY
                    && let Some(done) = creates.join_next().await
                {
                    done??;
                }
                let (bbb, endpoint) = (bbb.clone(), endpoints[n % servers].clone());
                creates.spawn(async move {
                    let query = Query::new()
                        .with("name", format!("Polled meeting {n}"))
                        .with("meetingID", format!("polled-{n}"));
                    bbb.create(&endpoint, &query, &[]).await.map(drop)
                });
            }
            while let Some(done) = creates.join_next().await {
                done??;
            }
            Fallible::Ok(())
        })
        .await?;
    emulators.set_latency(latency).await?;

    let database = Database::new(bench)?;
    let store = Store::connect(&database.url).await?;
    store.migrate().await?;
    let fleet_servers = emulators
        .servers
        .iter()
        .map(|s| {
            Server::new(
                s.id.clone(),
                s.base_url.clone(),
                Secret::new(s.secret.clone()),
            )
        })
        .collect();
    let fleet = Arc::new(Fleet::new(
        store,
        fleet_servers,
        Thresholds::default(),
        BbbClient::new(Timeouts::default()),
    ));
    let deadline = Timeouts::default().poll;

    let (first, _) = super::harness::timed(poller::poll_once(&fleet, deadline)).await;
    let mut warm = Samples::default();
    let cpu = Cpu::now();
    for _ in 1..cycles {
        let started = Instant::now();
        poller::poll_once(&fleet, deadline).await;
        warm.push(started.elapsed());
    }
    // No load generator runs meanwhile: all of this is the poller's (and its HTTP client's).
    let cpu_per_cycle = ms(Cpu::since(cpu).service()) / (cycles - 1) as f64;
    let seen: u64 = fleet
        .status()
        .values()
        .map(|s| u64::from(s.polled_meetings))
        .sum();

    // The baseline: the same question sent straight to one server.
    let bbb = BbbClient::new(Timeouts::default());
    let mut single = Samples::default();
    for _ in 0..10 {
        let started = Instant::now();
        bbb.get_meetings(&emulators.servers[0].endpoint).await?;
        single.push(started.elapsed());
    }
    let expected = (servers * meetings) as u64;
    let cycle = warm.percentile_ms(0.5);
    Ok(vec![Section {
        scenario: "poll",
        title: format!(
            "Poll cycle: {servers} servers × {meetings} meetings (fleet::poller::poll_once)"
        ),
        latency_ms: latency.as_millis() as u64,
        conditions: "baseline: one getMeetings of one such server".to_owned(),
        figures: vec![
            Figure::new("first cycle (connections opened)", ms(first), "ms")
                .baseline(single.percentile_ms(0.5))
                .goal("< 2 s", first < Duration::from_secs(2)),
            Figure::new("cycle p50 (warm)", cycle, "ms")
                .baseline(single.percentile_ms(0.5))
                .goal("< 2 s", cycle < 2000.0),
            Figure::new("cycle max (warm)", warm.max_ms(), "ms"),
            Figure::new("CPU per cycle", cpu_per_cycle, "ms"),
            Figure::text(
                "meetings seen in the last cycle",
                seen as f64,
                format!("{seen} of {expected}"),
            )
            .goal("all", seen == expected),
        ],
        peak_rss_mib: 0.0,
    }])
}
