//! BBB's end callback: every create carries a `meetingEndedURL` signed by the service; the
//! emulated BBB calls it when a meeting ends, as BBB does; the ended meeting leaves
//! ListServers at once on the replica that received it and within seconds on the others, with
//! a 15 s poll that never gets the chance. Calls the service did not sign change nothing.

use crate::common::*;
use eventyay_bbb::{
    app::Service,
    bbb::query,
    proto::{self, fleet_service_client::FleetServiceClient},
};
use std::time::{Duration, Instant, UNIX_EPOCH};
use tonic::transport::Channel;

const SLOW_POLL: &str = "15s";
/// How soon after BBB's callback the meeting must be gone from ListServers.
const AT_ONCE: Duration = Duration::from_secs(2);

/// Two emulated servers, a 15 s poll, and the callback listener on a free port, reached under
/// a path prefix as behind a proxy.
async fn spawn(db: TestDb) -> TestApp {
    let port = free_port();
    spawn_app_with(
        db,
        &[SimSpec::new("bbb-1"), SimSpec::new("bbb-2")],
        |args| {
            args.poll_interval = Some(SLOW_POLL.into());
            args.callback_listen = Some(format!("127.0.0.1:{port}"));
            args.callback_url = Some(format!("http://127.0.0.1:{port}/bbb-callback/"));
        },
    )
    .await
}

fn as_admin<T>(message: T) -> tonic::Request<T> {
    authed_with(message, ADMIN_TOKEN)
}

/// Per server: (meetings, participants) as ListServers shows them.
async fn listed(channel: &Channel) -> Vec<(String, u32, u64)> {
    let mut servers = FleetServiceClient::new(channel.clone())
        .list_servers(as_admin(proto::ListServersRequest {}))
        .await
        .unwrap()
        .into_inner()
        .servers
        .into_iter()
        .map(|s| (s.spec.unwrap().id, s.meetings, s.participants))
        .collect::<Vec<_>>();
    servers.sort();
    servers
}

async fn total_meetings(channel: &Channel) -> u32 {
    listed(channel).await.iter().map(|(_, m, _)| m).sum()
}

/// Joins room "main" and opens the join URL, as a user would. Returns the server it landed on
/// and its BBB meetingID.
async fn join_main(app: &TestApp) -> (&'static str, String) {
    let url = app
        .client()
        .await
        .room_url(authed(room_request("main", "u-1", MODERATE)))
        .await
        .unwrap()
        .into_inner()
        .url;
    assert_join_works(&url).await;
    let server = *app
        .ids
        .iter()
        .find(|id| !app.sim(id).meetings().is_empty())
        .expect("the meeting is on one of the servers");
    let meeting_id = app.sim(server).meetings()[0].meeting_id.clone();
    (server, meeting_id)
}

/// The `meetingEndedURL` the create of the meeting on `server` carried.
fn ended_url(app: &TestApp, server: &str) -> String {
    let meetings = app.sim(server).meetings();
    let (_, url) = meetings[0]
        .create_params
        .iter()
        .find(|(name, _)| name == "meetingEndedURL")
        .expect("the create carries meetingEndedURL")
        .clone();
    url
}

/// Waits until `done` holds, at most `within`; returns how long it took.
async fn until<F: Future<Output = bool>>(
    within: Duration,
    mut done: impl FnMut() -> F,
) -> Duration {
    let start = Instant::now();
    while !done().await {
        assert!(start.elapsed() < within, "not within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    start.elapsed()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

async fn get(url: &str) -> u16 {
    http().get(url).send().await.unwrap().status().as_u16()
}

/// `url` with its query's parameters changed by `edit`.
fn edited(url: &str, edit: impl FnOnce(&mut Vec<(String, String)>)) -> String {
    let (base, raw) = url.split_once('?').unwrap();
    let mut params = query::parse(raw);
    edit(&mut params);
    let query: Vec<String> = params
        .iter()
        .map(|(n, v)| format!("{}={}", query::encode(n), query::encode(v)))
        .collect();
    format!("{base}?{}", query.join("&"))
}

fn set(params: &mut [(String, String)], name: &str, value: &str) {
    params.iter_mut().find(|(n, _)| n == name).unwrap().1 = value.to_owned();
}

/// A meeting BBB ends leaves ListServers, meetings and participants, within 2 s of the
/// callback, though the next poll is 15 s away; and the room's next join starts its next
/// session at once, without asking BBB whether the meeting is still there.
async fn an_ended_meeting_leaves_list_servers_at_once(db: TestDb) {
    let mut app = spawn(db).await;
    let (server, meeting_id) = join_main(&app).await;
    // Past the window in which the join's create may still land (create timeout 1 s, 1 s on
    // the way, 2 s of clocks); a restart polls at once, so the listing shows the meeting's
    // participant; the URL signed before it still verifies after it (the key is the
    // database's).
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    app.restart_with(&[]).await;
    let channel = app.channel().await;
    let shown = listed(&channel).await;
    assert!(
        shown.contains(&(server.to_owned(), 1, 1)),
        "the poll shows the meeting and its participant: {shown:?}"
    );

    end_on_sim(&app, server, &meeting_id).await;
    let took = until(AT_ONCE, || async {
        listed(&channel)
            .await
            .iter()
            .all(|(_, m, p)| (*m, *p) == (0, 0))
    })
    .await;
    eprintln!("ended meeting left ListServers {took:?} after BBB's end");

    let asked = |app: &TestApp| -> u64 {
        app.sims
            .iter()
            .map(|s| s.call_count("getMeetingInfo"))
            .sum()
    };
    let before = asked(&app);
    let next = app
        .client()
        .await
        .room_url(authed(room_request("main", "u-2", MODERATE)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next.meeting_id, meeting_id, "the room keeps its meetingID");
    assert_join_works(&next.url).await;
    assert_eq!(
        asked(&app),
        before,
        "BBB was asked whether the meeting still runs"
    );
    app.stop().await;
}

/// Callbacks without the service's signature, or with any part of the URL changed, get 4xx
/// and change nothing; the URL holds neither the BBB secret nor the signing key; the genuine
/// one then works once, and its replay changes nothing.
async fn forged_and_altered_callbacks_change_nothing(db: TestDb) {
    let mut app = spawn(db).await;
    let (server, meeting_id) = join_main(&app).await;
    let channel = app.channel().await;
    assert_eq!(total_meetings(&channel).await, 1);
    let genuine = ended_url(&app, server);
    let store = app.store().await;
    let key = store.end_callback_key().await.unwrap();
    assert!(!genuine.contains(key.expose()), "{genuine}");
    assert!(!genuine.contains(&secret_of(server)), "{genuine}");
    assert!(genuine.contains("/bbb-callback/ended?"), "{genuine}");

    let other = if server == "bbb-1" { "bbb-2" } else { "bbb-1" };
    let forged = [
        edited(&genuine, |p| p.retain(|(n, _)| n != "sig")),
        edited(&genuine, |p| {
            let sig = p.iter_mut().find(|(n, _)| n == "sig").unwrap();
            let flipped = if sig.1.ends_with('0') { '1' } else { '0' };
            sig.1.pop();
            sig.1.push(flipped);
        }),
        edited(&genuine, |p| set(p, "meeting", "another-meeting")),
        edited(&genuine, |p| set(p, "server", other)),
        edited(&genuine, |p| {
            let created = p.iter().find(|(n, _)| n == "created").unwrap().1.clone();
            let later = created.parse::<i64>().unwrap() + 1;
            set(p, "created", &later.to_string());
        }),
        edited(&genuine, |p| set(p, "nonce", "AAAAAAAAAAAAAAAA")),
        edited(&genuine, |p| p.push(("meeting".into(), meeting_id.clone()))),
        edited(&genuine, |p| p.push(("sig".into(), "00".repeat(32)))),
        // A signature made with a guessable key.
        edited(&genuine, |p| set(p, "sig", &"ab".repeat(32))),
    ];
    for url in &forged {
        assert_eq!(get(url).await, 403, "{url}");
    }
    let unknown_path = genuine.replace("/ended?", "/elsewhere?");
    assert_eq!(get(&unknown_path).await, 404);
    let posted = http()
        .post(&genuine)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(posted, 405);
    let huge = format!("{genuine}&pad={}", "x".repeat(5000));
    assert!(
        (400..500).contains(&get(&huge).await),
        "an oversized URL is refused"
    );

    assert_eq!(total_meetings(&channel).await, 1, "nothing changed");
    assert_eq!(app.sim(server).meetings().len(), 1);
    assert!(
        store.ends_since(UNIX_EPOCH, 100).await.unwrap().is_empty(),
        "nothing was recorded"
    );

    // BBB's own call: accepted once.
    end_on_sim(&app, server, &meeting_id).await;
    until(AT_ONCE, || async { total_meetings(&channel).await == 0 }).await;
    assert_eq!(store.ends_since(UNIX_EPOCH, 100).await.unwrap().len(), 1);
    // The room's next meeting, under the same meetingID, seen by a poll (a restart's): a
    // replay of the old URL does not end it.
    join_main(&app).await;
    app.restart_with(&[]).await;
    let channel = app.channel().await;
    let before = listed(&channel).await;
    assert_eq!(before.iter().map(|(_, m, _)| m).sum::<u32>(), 1);
    assert_eq!(get(&genuine).await, 200);
    assert_eq!(listed(&channel).await, before, "the replay ended nothing");
    assert_eq!(store.ends_since(UNIX_EPOCH, 100).await.unwrap().len(), 1);
    app.stop().await;
}

/// Whichever replica receives the callback, the others drop the meeting within seconds, with
/// their next poll 15 s away.
async fn every_replica_acts_on_an_end(db: TestDb) {
    let app = spawn(db).await;
    let (server, meeting_id) = join_main(&app).await;
    // A second replica, started now, polls at start and so lists the meeting; the meeting's
    // callback URL points at the first.
    let port = free_port();
    let mut args = app.args.clone();
    args.callback_listen = Some(format!("127.0.0.1:{port}"));
    args.callback_url = Some(format!("http://127.0.0.1:{port}"));
    let second = Service::start(args.load().unwrap()).await.unwrap();
    let channel = Channel::from_shared(format!("http://{}", second.addr()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    assert_eq!(total_meetings(&channel).await, 1);

    end_on_sim(&app, server, &meeting_id).await;
    let took = until(AT_ONCE, || async { total_meetings(&channel).await == 0 }).await;
    eprintln!("the other replica dropped the ended meeting after {took:?}");
    assert_eq!(total_meetings(&app.channel().await).await, 0);
    second.stop().await;
    app.stop().await;
}

/// Connections that send nothing hold the listener only for seconds each: the listener closes
/// them, then answers again at once, and joins go on meanwhile.
#[tokio::test]
async fn idle_connections_cannot_hold_the_listener() {
    use tokio::io::AsyncReadExt;
    let app = spawn(TestDb::sqlite()).await;
    let addr = app.service.as_ref().unwrap().callback_addr().unwrap();
    let start = Instant::now();
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    join_main(&app).await;
    // The server closes each on its own: reading them one after the other only observes it.
    for mut stream in idle {
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(15), stream.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "the listener closed the idle connection: {read:?}"
        );
    }
    let cleared = start.elapsed();
    eprintln!("200 idle connections closed within {cleared:?}");
    assert!(cleared < Duration::from_secs(12), "{cleared:?}");
    let asked = Instant::now();
    let forged = format!("http://{addr}/ended?server=bbb-1&meeting=m&created=1&nonce=n&sig=00");
    assert_eq!(get(&forged).await, 403);
    assert!(asked.elapsed() < Duration::from_secs(1));
    app.stop().await;
}

on_both_databases!(
    an_ended_meeting_leaves_list_servers_at_once,
    forged_and_altered_callbacks_change_nothing,
    every_replica_acts_on_an_end,
);
