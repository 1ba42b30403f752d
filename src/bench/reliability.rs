//! One of 10 BBB servers killed (SIGKILL of its process) while new rooms keep arriving, as
//! bbblb was measured: no first join may fail because one server died, and the rooms that
//! server hosted must get a URL on another one soon after.

use super::{
    Bench, Fallible,
    emulators::{Emulators, fresh_ids},
    harness::{self, BenchService, Options},
    measure::Samples,
    report::{Figure, Section},
};
use std::{
    net::SocketAddr,
    ops::Range,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};
use tokio::task::JoinSet;

/// Clients sending first joins side by side.
const WORKERS: usize = 8;
/// How long a stranded room may take to get a URL elsewhere before the bench gives up on it.
const MOVE_LIMIT: Duration = Duration::from_secs(15);
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// One first join: the room, how long it took, and the server (or the failure).
type Outcome = (usize, Duration, Result<String, tonic::Code>);

pub async fn run(bench: &Bench, latency: Duration) -> Fallible<Vec<Section>> {
    let (rooms, kill_after) = if bench.quick { (120, 40) } else { (600, 200) };
    let ids = fresh_ids(10);
    // The server to be killed runs in a process of its own.
    let healthy = Emulators::start(ids[..9].to_vec(), latency).await?;
    let mut doomed = Emulators::start(ids[9..].to_vec(), latency).await?;
    let dead = doomed.servers[0].id.clone();
    let servers: Vec<_> = healthy
        .servers
        .iter()
        .chain(&doomed.servers)
        .cloned()
        .collect();
    let service = BenchService::start(bench, &servers, &Options::default()).await?;
    let event = harness::fresh_event();
    let addr = service.addr;

    let before = bench
        .load
        .run(first_joins(addr, event.clone(), 0..kill_after))
        .await?;
    doomed.kill();
    let killed_at = Instant::now();
    let stranded: Vec<usize> = before
        .iter()
        .filter(|(_, _, result)| result.as_ref().is_ok_and(|server| *server == dead))
        .map(|(room, _, _)| *room)
        .collect();
    // New rooms keep arriving while the dead server's rooms are joined again.
    let (after, moving) = tokio::join!(
        bench
            .load
            .run(first_joins(addr, event.clone(), kill_after..rooms)),
        bench.load.run(rejoin(
            addr,
            event,
            stranded.clone(),
            dead.clone(),
            killed_at
        )),
    );
    let (after, (moves, move_errors)) = (after?, moving?);
    service.stop().await;

    let mut samples = Samples::default();
    let mut failed = 0;
    for (_, took, result) in before.iter().chain(&after) {
        samples.push(*took);
        if result.is_err() {
            failed += 1;
        }
    }
    // A URL on the dead server, handed out after the kill, cannot be joined.
    failed += after
        .iter()
        .filter(|(_, _, result)| result.as_ref().is_ok_and(|server| *server == dead))
        .count();
    let after_kill = after.len();
    let moved = moves.len();
    Ok(vec![Section {
        scenario: "reliability",
        title: format!(
            "One of 10 servers SIGKILLed after {kill_after} of {rooms} first joins ({WORKERS} clients)"
        ),
        latency_ms: latency.as_millis() as u64,
        conditions: "ensure TTL 2 s, poll interval 2 s".to_owned(),
        figures: vec![
            Figure::text(
                "failed first joins (error, or a URL on the dead server)",
                failed as f64,
                format!("{failed} of {rooms} ({after_kill} sent after the kill)"),
            )
            .peer("62–69 of ≈ 600", None)
            .goal("0", failed == 0),
            Figure::new("first join p99", samples.percentile_ms(0.99), "ms"),
            Figure::text(
                "rooms of the dead server that rejoined elsewhere",
                moved as f64,
                format!("{moved} of {}", stranded.len()),
            )
            .goal("all", moved == stranded.len()),
            Figure::new(
                "time from the kill until each had a URL elsewhere (max)",
                moves.max_ms(),
                "ms",
            )
            .peer("0.25–1.8 s", None),
            Figure::new("… p50", moves.percentile_ms(0.5), "ms"),
            Figure::new(
                "RoomUrl errors while they moved (retried every 50 ms)",
                move_errors as f64,
                "",
            ),
        ],
        peak_rss_mib: 0.0,
    }])
}

/// First joins of the rooms numbered `rooms`, by `WORKERS` clients side by side.
async fn first_joins(
    addr: SocketAddr,
    event: String,
    rooms: Range<usize>,
) -> Fallible<Vec<Outcome>> {
    let next = Arc::new(AtomicUsize::new(rooms.start));
    let mut workers = JoinSet::new();
    for _ in 0..WORKERS {
        let mut client = harness::client(addr).await?;
        let (next, event, end) = (next.clone(), event.clone(), rooms.end);
        workers.spawn(async move {
            let mut outcomes = Vec::new();
            loop {
                let room = next.fetch_add(1, Ordering::Relaxed);
                if room >= end {
                    return outcomes;
                }
                let request = harness::room(&event, &format!("room-{room}"), "u");
                let sent = Instant::now();
                let result = client
                    .room_url(harness::authed(request))
                    .await
                    .map(|a| a.into_inner().server_id)
                    .map_err(|status| status.code());
                outcomes.push((room, sent.elapsed(), result));
            }
        });
    }
    let mut all = Vec::with_capacity(rooms.len());
    while let Some(done) = workers.join_next().await {
        all.extend(done?);
    }
    Ok(all)
}

/// Joins every stranded room, side by side, until each gets a URL on another server; returns
/// how long after the kill each one did, and how many attempts failed meanwhile.
async fn rejoin(
    addr: SocketAddr,
    event: String,
    stranded: Vec<usize>,
    dead: String,
    killed_at: Instant,
) -> Fallible<(Samples, usize)> {
    let client = harness::client(addr).await?;
    let mut rooms = JoinSet::new();
    for room in stranded {
        let (mut client, dead) = (client.clone(), dead.clone());
        let request = harness::room(&event, &format!("room-{room}"), "u");
        rooms.spawn(async move {
            let mut errors = 0;
            while killed_at.elapsed() < MOVE_LIMIT {
                match client.room_url(harness::authed(request.clone())).await {
                    Ok(answer) if answer.get_ref().server_id != dead => {
                        return (Some(killed_at.elapsed()), errors);
                    }
                    Ok(_) => {}
                    Err(_) => errors += 1,
                }
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            (None, errors)
        });
    }
    let (mut moved, mut errors) = (Samples::default(), 0);
    while let Some(done) = rooms.join_next().await {
        let (took, failed) = done?;
        if let Some(took) = took {
            moved.push(took);
        }
        errors += failed;
    }
    Ok((moved, errors))
}
