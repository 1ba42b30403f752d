//! The fleet under the loads conferences bring: bursts of new rooms, weighted and loaded
//! servers, a server dying, a server cordoned. Emulated BBB servers behind a real service.

use crate::common::*;
use eventyay_bbb::{
    proto::{self, bbb_service_client::BbbServiceClient},
    sim::{Fault, Load},
};
use std::time::Duration;
use tonic::transport::Channel;

const IDS: [&str; 10] = ["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9"];

/// `n` first joins of distinct rooms of one event, all at once; returns the server of each.
async fn burst(channel: &Channel, prefix: &str, n: usize) -> Vec<String> {
    let mut tasks = Vec::new();
    for i in 0..n {
        let mut client = BbbServiceClient::new(channel.clone());
        let room = format!("{prefix}-{i}");
        tasks.push(tokio::spawn(async move {
            client
                .room_url(authed(room_request(&room, "u", JOIN)))
                .await
                .map(|r| r.into_inner().server_id)
        }));
    }
    let mut servers = Vec::new();
    for t in tasks {
        servers.push(t.await.unwrap().expect("every first join gets a URL"));
    }
    servers
}

fn count(servers: &[String], id: &str) -> usize {
    servers.iter().filter(|s| *s == id).count()
}

async fn two_hundred_rooms_at_once_spread_within_ten_percent(db: TestDb) {
    let specs: Vec<_> = IDS.iter().map(|id| SimSpec::new(id)).collect();
    let app = spawn_app(db, &specs).await;
    let placed = burst(&app.channel().await, "burst", 200).await;
    let per_server: Vec<usize> = IDS.iter().map(|id| count(&placed, id)).collect();
    assert!(
        per_server.iter().all(|n| (18..=22).contains(n)),
        "{per_server:?}"
    );
    assert_eq!(app.meetings_per_server(), per_server, "the emulators agree");
    app.stop().await;
}

async fn a_weighted_fleet_fills_in_proportion(db: TestDb) {
    let app = spawn_app(
        db,
        &[
            SimSpec::new("s1").with("weight = 1.0"),
            SimSpec::new("s2").with("weight = 2.0"),
            SimSpec::new("s4").with("weight = 4.0"),
        ],
    )
    .await;
    let placed = burst(&app.channel().await, "weighted", 140).await;
    for (id, share) in [("s1", 20.0), ("s2", 40.0), ("s4", 80.0)] {
        let n = count(&placed, id) as f64;
        assert!(
            (n - share).abs() <= share * 0.15,
            "{id}: {n} of 140, want {share} ±15%"
        );
    }
    app.stop().await;
}

async fn servers_loaded_by_their_meetings_get_fewer_new_rooms(db: TestDb) {
    let app = spawn_app(db, &[SimSpec::new("busy"), SimSpec::new("idle")]).await;
    let channel = app.channel().await;
    let mut client = BbbServiceClient::new(channel.clone());
    let mut preferred = room_request("keynote", "u", JOIN);
    preferred.settings.as_mut().unwrap().prefer_server = "busy".into();
    let keynote = client
        .room_url(authed(preferred))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(keynote.server_id, "busy");
    // 300 people with 4 cameras and 100 on audio: far more than a few new rooms bring.
    let load = Load {
        participants: 300,
        voice: 100,
        video: 4,
        listeners: 200,
        moderators: 3,
    };
    assert!(app.sim("busy").set_meeting_load(&keynote.meeting_id, load));
    tokio::time::sleep(Duration::from_millis(500)).await; // a couple of polls

    let placed = burst(&channel, "later", 20).await;
    assert!(
        count(&placed, "busy") <= 2,
        "busy got {} of 20",
        count(&placed, "busy")
    );
    app.stop().await;
}

/// A meeting of another front door on `server`, with 300 participants on camera.
async fn foreign_load(app: &TestApp, server: &str, meeting_id: &str) {
    foreign_load_on(app.sim(server), server, meeting_id).await;
}

/// Rooms are first used long before their sessions (rehearsals), when the fleet carried other
/// loads. When the sessions start, each room is placed by the load of that moment: away from
/// the server that is busy now, spread over the others, with the same meetingID and its old
/// server kept in its hosting history. A meeting still running never moves.
async fn sessions_are_placed_by_the_load_when_they_start(db: TestDb) {
    let app = spawn_app(
        db,
        &[SimSpec::new("a"), SimSpec::new("b"), SimSpec::new("c")],
    )
    .await;
    let channel = app.channel().await;
    let mut client = BbbServiceClient::new(channel.clone());
    foreign_load(&app, "a", "foreign-a").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The rehearsal: 30 rooms tried one at a time, plus one that goes on running.
    let mut first = Vec::new();
    for i in 0..30 {
        let url = client
            .room_url(authed(room_request(&format!("session-{i}"), "u", JOIN)))
            .await
            .unwrap()
            .into_inner();
        first.push(url);
    }
    let running = client
        .room_url(authed(room_request("running", "u", JOIN)))
        .await
        .unwrap()
        .into_inner();
    assert!(first.iter().all(|u| u.server_id != "a"));
    for url in &first {
        end_on_sim(&app, &url.server_id, &url.meeting_id).await;
    }
    // Now b is the busy one; a is free again.
    end_on_sim(&app, "a", "foreign-a").await;
    let busy = if running.server_id == "b" { "c" } else { "b" };
    foreign_load(&app, busy, "foreign-busy").await;
    // Polls see it, and the rehearsal's creates have settled (create timeout 1 s, 1 s more
    // for the way there, 2 s for replicas' clocks).
    tokio::time::sleep(Duration::from_millis(4500)).await;

    let placed = burst(&channel, "session", 30).await;
    assert_eq!(count(&placed, busy), 0, "{placed:?}");
    let free = if busy == "b" { "c" } else { "b" };
    // Within ±20% of an even 15 each.
    for id in ["a", free] {
        let n = count(&placed, id);
        assert!((12..=18).contains(&n), "{id}: {n} of 30, {placed:?}");
    }
    let store = app.store().await;
    for (i, before) in first.iter().enumerate() {
        let now = client
            .room_url(authed(room_request(&format!("session-{i}"), "u", JOIN)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            now.meeting_id, before.meeting_id,
            "the room's meetingID stays"
        );
        assert_join_works(&now.url).await;
        if now.server_id != before.server_id {
            let meeting = store
                .room_meeting("ev-1", &format!("session-{i}"))
                .await
                .unwrap()
                .unwrap();
            let hosts = store.hosts(&meeting.id).await.unwrap();
            assert!(hosts.contains(&before.server_id), "{hosts:?}");
        }
    }
    let again = client
        .room_url(authed(room_request("running", "u", JOIN)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        again.server_id, running.server_id,
        "a running meeting moved"
    );
    app.stop().await;
}

/// Waits until the next `getMeetings` reaches the emulated server `server`.
async fn next_poll(app: &TestApp, server: &str) {
    let sim = app.sim(server);
    let before = sim.call_count("getMeetings");
    while sim.call_count("getMeetings") == before {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// BBB drops a room's meeting on x (its session ended) while x answers slowly. A join
/// arriving as x's next poll goes out still sees the meeting listed and re-creates it on x;
/// a second join that then reads that poll ("not listed", but taken before the re-create) must
/// find the same meeting on x, not start the session on y: one room, one meeting.
async fn a_meeting_recreated_during_a_slow_poll_is_not_split(db: TestDb) {
    let app = spawn_app_with(db, &[SimSpec::new("x"), SimSpec::new("y")], |args| {
        args.create_timeout = Some("3s".into());
        // Slow, but answering within the poll's time: x stays healthy.
        args.poll_interval = Some("4s".into());
    })
    .await;
    let channel = app.channel().await;
    let mut client = BbbServiceClient::new(channel.clone());
    let mut on_x = room_request("main", "alice", JOIN);
    on_x.settings.as_mut().unwrap().prefer_server = "x".into();
    let first = client.room_url(authed(on_x)).await.unwrap().into_inner();
    assert_eq!(first.server_id, "x");
    // x is the busier server for any new session, and the first create has settled.
    foreign_load(&app, "x", "foreign-x").await;
    tokio::time::sleep(Duration::from_millis(6_500)).await;

    // A poll lists the meeting; then BBB drops it, and x slows down.
    next_poll(&app, "x").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    end_on_sim(&app, "x", &first.meeting_id).await;
    app.sim("x").set_latency(Duration::from_millis(1_500));
    // The next poll reaches x just before alice's join re-creates the meeting there: its answer
    // will not list the meeting, but it predates the re-create.
    next_poll(&app, "x").await;
    let polled = tokio::time::Instant::now();
    let mut alice_client = BbbServiceClient::new(channel.clone());
    let alice = tokio::spawn(async move {
        alice_client
            .room_url(authed(room_request("main", "alice", JOIN)))
            .await
            .unwrap()
            .into_inner()
    });
    tokio::time::sleep_until(polled + Duration::from_millis(4_100)).await;
    let mut joins = Vec::new();
    for user in ["bob", "carol"] {
        joins.push(
            client
                .room_url(authed(room_request("main", user, JOIN)))
                .await
                .unwrap()
                .into_inner(),
        );
    }
    joins.insert(0, alice.await.unwrap());
    for join in &joins {
        assert_eq!(join.meeting_id, first.meeting_id);
    }
    let servers: Vec<&str> = joins.iter().map(|j| j.server_id.as_str()).collect();
    assert_eq!(servers, ["x", "x", "x"], "the room's audience was split");
    let live_on_y = app
        .sim("y")
        .meetings()
        .iter()
        .any(|m| m.meeting_id == first.meeting_id);
    assert!(!live_on_y, "the meeting was created on y too");
    app.stop().await;
}

/// Sessions say how many they expect, and a placement reserves load for that many: once the
/// keynote has the emptiest server, the ten workshops starting right after it go elsewhere,
/// and none of them fit on a server capped below their size.
async fn a_keynote_and_workshops_starting_together_do_not_share_the_emptiest_server(db: TestDb) {
    let app = spawn_app(
        db,
        &[
            SimSpec::new("empty"),
            SimSpec::new("m1"),
            SimSpec::new("m2"),
            SimSpec::new("small").with("max_participants = 310"),
        ],
    )
    .await;
    for server in ["m1", "m2", "small"] {
        foreign_load(&app, server, &format!("foreign-{server}")).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let channel = app.channel().await;
    let join = |room: String, expected: u32| {
        let mut client = BbbServiceClient::new(channel.clone());
        async move {
            let mut request = room_request(&room, "u", JOIN);
            request.settings.as_mut().unwrap().expected_participants = expected;
            let url = client.room_url(authed(request)).await.unwrap().into_inner();
            (room, url.server_id)
        }
    };
    let keynote = join("keynote".into(), 500).await;
    assert_eq!(keynote.1, "empty");
    let mut tasks = Vec::new();
    for i in 0..10 {
        tasks.push(tokio::spawn(join(format!("workshop-{i}"), 20)));
    }
    for task in tasks {
        let (room, server) = task.await.unwrap();
        // Without sizes, the keynote's flat reservation would leave "empty" the emptiest.
        assert_ne!(server, "empty", "{room} shares the keynote's server");
        // 300 on "small" already, cap 310: a room expecting 20 does not fit there.
        assert_ne!(server, "small", "{room} passed a participant cap");
    }
    app.stop().await;
}

fn planned(room: &str, hour: u64, minutes: u64, participants: u32) -> proto::PlannedSession {
    // 2026-12-02 00:00 UTC.
    let day = 1_796_169_600;
    let at = |secs: u64| prost_types::Timestamp {
        seconds: secs as i64,
        nanos: 0,
    };
    let start = day + hour * 3600;
    proto::PlannedSession {
        room_id: room.into(),
        start: Some(at(start)),
        end: Some(at(start + minutes * 60)),
        expected_participants: participants,
    }
}

/// The backend sends a day's schedule ahead: the forecast places it slot by slot and names
/// the slot the fleet's caps cannot hold, with by how much; 9:00 fits.
async fn a_schedule_forecast_names_the_slots_the_fleet_cannot_hold(db: TestDb) {
    let app = spawn_app(
        db,
        &[
            SimSpec::new("a").with("max_participants = 300"),
            SimSpec::new("b").with("max_participants = 300"),
        ],
    )
    .await;
    let mut client = app.client().await;
    let request = |sessions, slot_minutes| proto::PlanScheduleRequest {
        event_id: "ev-1".into(),
        organizer_id: "org-1".into(),
        sessions,
        slot_minutes,
        keep: false,
    };
    let schedule = vec![
        planned("w1", 9, 60, 200),
        planned("w2", 9, 60, 200),
        planned("keynote", 10, 60, 500),
        planned("panel", 10, 60, 250),
    ];
    let forecast = client
        .plan_schedule(authed(request(schedule, 60)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(forecast.slots.len(), 2);
    let (nine, ten) = (&forecast.slots[0], &forecast.slots[1]);
    assert!(nine.unplaced.is_empty());
    let participants: Vec<u64> = nine.servers.iter().map(|s| s.participants).collect();
    assert_eq!(participants, [200, 200]);
    assert!(nine.servers.iter().all(|s| s.max_participants == 300));
    assert_eq!(
        ten.start.as_ref().unwrap().seconds,
        1_796_169_600 + 10 * 3600
    );
    assert_eq!(ten.unplaced.len(), 1, "{ten:?}");
    assert_eq!(ten.unplaced[0].room_id, "keynote");
    assert_eq!(ten.participants_short, 500);
    assert!(ten.unplaced[0].reason.contains("caps"));
    assert_eq!(forecast.placements.len(), 3);
    // Nothing was placed or reserved: the emulators hold no meeting.
    assert_eq!(app.meetings_per_server(), [0, 0]);

    let mut backwards = planned("x", 10, 60, 1);
    backwards.end = Some(prost_types::Timestamp {
        seconds: 1_796_169_600,
        nanos: 0,
    });
    for bad in [
        request(vec![backwards], 0),
        request(vec![planned("x", 9, 60, 1)], 3),
    ] {
        let err = client.plan_schedule(authed(bad)).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
    }
    app.stop().await;
}

/// ExplainPlacement for `room` of ev-1, as the room's join would place it.
async fn explain_room(app: &TestApp, room: &str) -> proto::ExplainPlacementResponse {
    proto::fleet_service_client::FleetServiceClient::new(app.channel().await)
        .explain_placement(authed_with(
            proto::ExplainPlacementRequest {
                event_id: "ev-1".into(),
                organizer_id: "org-1".into(),
                room_id: room.into(),
                ..Default::default()
            },
            ADMIN_TOKEN,
        ))
        .await
        .unwrap()
        .into_inner()
}

fn load_on(explained: &proto::ExplainPlacementResponse, server: &str) -> f64 {
    explained
        .candidates
        .iter()
        .find(|c| c.server_id == server)
        .map(|c| c.load)
        .unwrap()
}

/// A kept plan: a keynote of 500 and ten workshops of 20 starting in a minute. The keynote's
/// server holds its load in reserve before anyone comes, so the workshops, joined first and
/// one by one, stay off it, and the keynote lands where the plan put it. Once its room is
/// placed, the plan's reservation gives way to the placement's own: the load counts once. An
/// empty schedule kept drops the plan.
async fn a_kept_plan_places_sessions_where_it_planned_and_reserves_them_ahead(db: TestDb) {
    let app = spawn_app(
        db,
        &[SimSpec::new("a"), SimSpec::new("b"), SimSpec::new("c")],
    )
    .await;
    let mut client = app.client().await;
    let at = |t: std::time::SystemTime| Some(prost_types::Timestamp::from(t));
    let start = std::time::SystemTime::now() + Duration::from_secs(60);
    let session = |room: &str, participants| proto::PlannedSession {
        room_id: room.into(),
        start: at(start),
        end: at(start + Duration::from_secs(3600)),
        expected_participants: participants,
    };
    let mut sessions = vec![session("keynote", 500)];
    sessions.extend((0..10).map(|i| session(&format!("workshop-{i}"), 20)));
    let keep = |sessions| proto::PlanScheduleRequest {
        event_id: "ev-1".into(),
        organizer_id: "org-1".into(),
        sessions,
        slot_minutes: 0,
        keep: true,
    };
    let kept = client
        .plan_schedule(authed(keep(sessions)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(kept.kept, 11);
    let planned: std::collections::HashMap<String, String> = kept
        .placements
        .iter()
        .map(|p| (p.room_id.clone(), p.server_id.clone()))
        .collect();
    let stage = planned["keynote"].clone();
    assert!(
        planned
            .iter()
            .all(|(room, server)| room == "keynote" || *server != stage)
    );

    // Before anyone joins, the keynote's server holds its expected load (500 on audio, two on
    // camera: 260,010).
    let explained = explain_room(&app, "keynote").await;
    let plan = explained
        .planned
        .clone()
        .expect("the keynote's planned session");
    assert_eq!(
        (plan.server_id.as_str(), plan.reserving),
        (stage.as_str(), true)
    );
    assert_eq!(plan.expected_participants, 500);
    // (The keynote's own explanation leaves its reservation out, as its placement does.)
    let others = explain_room(&app, "unplanned").await;
    assert!(others.planned.is_none());
    assert!(load_on(&others, &stage) >= 260_010.0, "{others:?}");
    assert_ne!(others.chosen_server_id, stage);

    // The workshops come first, one at a time; the live module sends no sizes.
    for i in 0..10 {
        let room = format!("workshop-{i}");
        let url = client
            .room_url(authed(room_request(&room, "u", JOIN)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(url.server_id, planned[&room], "{room}");
    }
    let keynote = client
        .room_url(authed(room_request("keynote", "u", JOIN)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(keynote.server_id, stage);

    // Placed: the plan reserves no more, and the keynote counts once.
    assert!(
        !explain_room(&app, "keynote")
            .await
            .planned
            .unwrap()
            .reserving
    );
    let load = load_on(&explain_room(&app, "unplanned").await, &stage);
    assert!((200_000.0..300_000.0).contains(&load), "{load}");

    // A kept empty schedule drops the plan.
    let dropped = client
        .plan_schedule(authed(keep(Vec::new())))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(dropped.kept, 0);
    assert!(explain_room(&app, "keynote").await.planned.is_none());
    app.stop().await;
}

/// Operators who want pins keep them: rooms stay where they were first placed.
async fn pinned_rooms_stay_where_they_were_first_placed(db: TestDb) {
    let app = spawn_app_with(db, &[SimSpec::new("a"), SimSpec::new("b")], |args| {
        args.pin_rooms = Some(true)
    })
    .await;
    let mut client = app.client().await;
    let mut first = Vec::new();
    for i in 0..6 {
        let url = client
            .room_url(authed(room_request(&format!("pin-{i}"), "u", JOIN)))
            .await
            .unwrap()
            .into_inner();
        end_on_sim(&app, &url.server_id, &url.meeting_id).await;
        first.push(url.server_id);
    }
    assert!(first.iter().any(|s| s == "a"), "{first:?}");
    // Unpinned, the rooms on a would move to b.
    foreign_load(&app, "a", "foreign-a").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for (i, before) in first.iter().enumerate() {
        let now = client
            .room_url(authed(room_request(&format!("pin-{i}"), "u", JOIN)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(&now.server_id, before);
    }
    app.stop().await;
}

async fn a_dead_server_is_avoided_at_once_and_its_rooms_move_within_two_polls(db: TestDb) {
    let app = spawn_app(
        db,
        &[SimSpec::new("s1"), SimSpec::new("s2"), SimSpec::new("s3")],
    )
    .await;
    let channel = app.channel().await;
    let placed = burst(&channel, "before", 30).await;
    let on_s1: Vec<usize> = (0..30).filter(|i| placed[*i] == "s1").collect();
    assert!(!on_s1.is_empty());

    app.sim("s1").set_fault(Fault::Refuse);
    // New rooms placed right away: none fails, none lands on the dead server.
    let fresh = burst(&channel, "after", 30).await;
    assert_eq!(count(&fresh, "s1"), 0, "{fresh:?}");

    // Within two poll intervals (200 ms each here) every room of the dead server rejoins elsewhere.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut client = BbbServiceClient::new(channel.clone());
    for i in on_s1 {
        let url = client
            .room_url(authed(room_request(&format!("before-{i}"), "u", JOIN)))
            .await
            .expect("a room of the dead server rejoins")
            .into_inner();
        assert_ne!(url.server_id, "s1");
        assert_join_works(&url.url).await;
    }
    app.stop().await;
}

/// Cordoning stops new meetings, not the ones a server holds: a running meeting and one whose
/// only users wait in its waiting room (listed, not running) stay; a meeting the server no
/// longer lists moves at its next join.
async fn a_cordoned_server_keeps_what_it_lists_and_lets_ended_meetings_move(db: TestDb) {
    let mut app = spawn_app(db, &[SimSpec::new("s1"), SimSpec::new("s2")]).await;
    let mut client = app.client().await;
    let place_on_s1 = |room: &str| {
        let mut r = room_request(room, "u", JOIN);
        r.settings.as_mut().unwrap().prefer_server = "s1".into();
        r
    };
    let running = client
        .room_url(authed(place_on_s1("running")))
        .await
        .unwrap()
        .into_inner();
    assert_join_works(&running.url).await; // someone is in: the meeting runs
    let waiting = client
        .room_url(authed(place_on_s1("waiting")))
        .await
        .unwrap()
        .into_inner();
    let ended = client
        .room_url(authed(place_on_s1("ended")))
        .await
        .unwrap()
        .into_inner();
    for url in [&running, &waiting, &ended] {
        assert_eq!(url.server_id, "s1");
    }

    app.restart_with(&[("s1", "state = \"cordoned\"")]).await;
    end_on_sim(&app, "s1", &ended.meeting_id).await;
    // Only a poll younger than the meeting's create may say it is gone (create timeout 1 s,
    // 1 s for the way there, 2 s for replicas' clocks).
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    let mut client = app.client().await;
    for (room, why) in [
        ("running", "a running meeting stays on its cordoned server"),
        ("waiting", "a meeting still listed (its guests wait) stays"),
    ] {
        let again = client
            .room_url(authed(room_request(room, "u", JOIN)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(again.server_id, "s1", "{why}");
    }
    let moved = client
        .room_url(authed(room_request("ended", "u", JOIN)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        moved.server_id, "s2",
        "a meeting the cordoned server no longer lists leaves it"
    );
    assert_eq!(
        moved.meeting_id, ended.meeting_id,
        "same identity on the new server"
    );
    assert_join_works(&moved.url).await;
    let fresh = client
        .room_url(authed(place_on_s1("new")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        fresh.server_id, "s2",
        "no new meetings on a cordoned server, even preferred"
    );
    app.stop().await;
}

/// x's polls answer too slowly to count (x is unhealthy by them) while its creates work: a
/// meeting x's last poll saw running is tried on x before it is moved, and stays there.
async fn a_running_meeting_stays_on_a_server_whose_polls_are_slow(db: TestDb) {
    let app = spawn_app_with(db, &[SimSpec::new("x"), SimSpec::new("y")], |args| {
        args.create_timeout = Some("3s".into());
    })
    .await;
    let mut client = app.client().await;
    let mut on_x = room_request("main", "alice", JOIN);
    on_x.settings.as_mut().unwrap().prefer_server = "x".into();
    let first = client.room_url(authed(on_x)).await.unwrap().into_inner();
    assert_join_works(&first.url).await;
    // Past the placement's settling, with the meeting running in x's polls.
    tokio::time::sleep(Duration::from_millis(6_500)).await;
    // Polls give up after 200 ms here: x turns unhealthy within two of them.
    app.sim("x").set_latency(Duration::from_millis(600));
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let bob = client
        .room_url(authed(room_request("main", "bob", JOIN)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(bob.server_id, "x", "a running meeting moved on slow polls");
    assert!(
        !app.sim("y")
            .meetings()
            .iter()
            .any(|m| m.meeting_id == first.meeting_id),
        "the meeting was created on y too"
    );
    app.stop().await;
}

async fn caps_are_respected(db: TestDb) {
    let app = spawn_app(
        db,
        &[
            SimSpec::new("small").with("max_meetings = 3"),
            SimSpec::new("big"),
        ],
    )
    .await;
    let placed = burst(&app.channel().await, "capped", 20).await;
    assert!(count(&placed, "small") <= 3, "{placed:?}");
    app.stop().await;
}

async fn calls_follow_load_and_never_use_rooms_only_servers(db: TestDb) {
    let app = spawn_app(
        db,
        &[
            SimSpec::new("rooms").with("rooms_only = true"),
            SimSpec::new("a"),
            SimSpec::new("b"),
        ],
    )
    .await;
    let mut client = app.client().await;
    let mut servers = Vec::new();
    for i in 0..10 {
        let call_id = client
            .create_call(authed(proto::CreateCallRequest {
                event_id: "ev-1".into(),
                organizer_id: "org-1".into(),
                member_ids: vec![format!("m{i}")],
                idempotency_key: String::new(),
            }))
            .await
            .unwrap()
            .into_inner()
            .call_id;
        let url = client
            .call_url(authed(proto::CallUrlRequest {
                event_id: "ev-1".into(),
                call_id,
                user: user(&format!("m{i}"), "M"),
                domain: String::new(),
                base_url: String::new(),
            }))
            .await
            .unwrap()
            .into_inner();
        servers.push(url.server_id);
    }
    assert_eq!(count(&servers, "rooms"), 0);
    assert_eq!(count(&servers, "a"), 5, "{servers:?}");
    app.stop().await;
}

async fn recordings_come_from_every_server_that_hosted_the_room_even_with_one_dead(db: TestDb) {
    let mut app = spawn_app(db, &[SimSpec::new("s1"), SimSpec::new("s2")]).await;
    let mut client = app.client().await;
    let recorded = |prefer: &str| {
        let mut r = room_request("talks", "u", MODERATE);
        r.settings.as_mut().unwrap().record = true;
        r.settings.as_mut().unwrap().prefer_server = prefer.into();
        r
    };
    let first = client
        .room_url(authed(recorded("s1")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.server_id, "s1");
    end_on_sim(&app, "s1", &first.meeting_id).await;

    // s1 is disabled: the room moves to s2 and records there too.
    app.restart_with(&[("s1", "state = \"disabled\"")]).await;
    let mut client = app.client().await;
    let second = client
        .room_url(authed(recorded("s1")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.server_id, "s2");
    end_on_sim(&app, "s2", &second.meeting_id).await;

    let list = || proto::ListRecordingsRequest {
        event_id: "ev-1".into(),
        room_id: "talks".into(),
        permissions: vec!["room:bbb.recordings".into()],
    };
    let both = client
        .list_recordings(authed(list()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        both.results.len(),
        2,
        "a disabled server's recordings stay findable"
    );
    assert!(
        both.results[0].start.as_ref().map(|t| (t.seconds, t.nanos))
            >= both.results[1].start.as_ref().map(|t| (t.seconds, t.nanos)),
        "newest first"
    );

    // One server hangs: the other's recordings come back within the per-server deadline (1 s).
    app.sim("s1").set_fault(Fault::Hang);
    let started = std::time::Instant::now();
    let partial = client
        .list_recordings(authed(list()))
        .await
        .unwrap()
        .into_inner();
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(partial.results.len(), 1);
    assert_eq!(partial.unreachable_servers, vec!["s1".to_owned()]);

    // Every server down: that is a failure, not an empty list.
    app.sim("s2").set_fault(Fault::Refuse);
    let err = client.list_recordings(authed(list())).await.unwrap_err();
    assert_eq!(reason(&err).0, "bbb.failed");
    app.stop().await;
}

/// The backend's availability gate: rooms need an enabled server the event may use; calls one
/// that is not rooms-only. It is configuration: a server that stops answering changes nothing.
async fn availability_follows_the_servers_an_event_may_use(db: TestDb) {
    let app = spawn_app(
        db,
        &[
            SimSpec::new("s1").with("rooms_only = true"),
            SimSpec::new("s2").with("events = [\"ev-calls\"]"),
        ],
    )
    .await;
    let mut client = app.client().await;
    let ask = |event: &str| proto::AvailabilityRequest {
        event_id: event.into(),
        organizer_id: "org-1".into(),
    };
    let mut availability = async |event: &str| {
        let a = client
            .availability(authed(ask(event)))
            .await
            .unwrap()
            .into_inner();
        (a.rooms, a.calls)
    };
    assert_eq!(
        availability("ev-1").await,
        (true, false),
        "only a rooms-only server"
    );
    assert_eq!(availability("ev-calls").await, (true, true));

    app.sim("s2").set_fault(Fault::Refuse);
    app.sim("s1").set_fault(Fault::Refuse);
    // Well past the two failed polls that make both unhealthy.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(availability("ev-calls").await, (true, true));
    assert_eq!(availability("ev-1").await, (true, false));

    let err = client
        .availability(authed(ask("has space")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    let err = client
        .availability(tonic::Request::new(ask("ev-1")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    app.stop().await;
}

on_both_databases!(
    recordings_come_from_every_server_that_hosted_the_room_even_with_one_dead,
    two_hundred_rooms_at_once_spread_within_ten_percent,
    a_weighted_fleet_fills_in_proportion,
    servers_loaded_by_their_meetings_get_fewer_new_rooms,
    sessions_are_placed_by_the_load_when_they_start,
    a_meeting_recreated_during_a_slow_poll_is_not_split,
    a_schedule_forecast_names_the_slots_the_fleet_cannot_hold,
    a_kept_plan_places_sessions_where_it_planned_and_reserves_them_ahead,
    a_keynote_and_workshops_starting_together_do_not_share_the_emptiest_server,
    pinned_rooms_stay_where_they_were_first_placed,
    a_dead_server_is_avoided_at_once_and_its_rooms_move_within_two_polls,
    a_cordoned_server_keeps_what_it_lists_and_lets_ended_meetings_move,
    a_running_meeting_stays_on_a_server_whose_polls_are_slow,
    caps_are_respected,
    calls_follow_load_and_never_use_rooms_only_servers,
    availability_follows_the_servers_an_event_may_use,
);
