//! Taking over from the Python module, and the data's lifecycle: import, forget a user, delete
//! an event, idempotent calls, expiry of old calls.

use crate::common::*;
use eventyay_bbb::{
    bbb::{BbbClient, ChecksumAlgorithm, Endpoint, Query},
    proto,
    secret::Secret,
    sim::{Fault, SimConfig, SimServer},
};
use std::{process::Command, time::Duration};
use tonic::Code;

const BIN: &str = env!("CARGO_BIN_EXE_eventyay-bbb");

fn import(db: &TestDb, file: &std::path::Path) -> (bool, String) {
    let out = Command::new(BIN)
        .arg("import")
        .arg(file)
        .env_clear()
        .env("EVENTYAY_BBB_DATABASE_URL", &db.url)
        .output()
        .unwrap();
    printed(&out)
}

/// Creates, then ends with a recording, a meeting on an emulator — as the Python module's
/// meetings did before the cut-over.
async fn past_recording(sim: &SimServer, secret: &str, meeting_id: &str) {
    let ep = Endpoint::new(
        &sim.base_url(),
        Secret::new(secret),
        ChecksumAlgorithm::Sha1,
    )
    .unwrap();
    let bbb = BbbClient::new(Default::default());
    let q = Query::new()
        .with("name", "Old talk")
        .with("meetingID", meeting_id)
        .with("attendeePW", "old-attendee")
        .with("moderatorPW", "old-moderator")
        .with("record", "true");
    bbb.create(&ep, &q, &[]).await.unwrap();
    bbb.end(&ep, meeting_id, None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_is_imported_whole_or_not_at_all_and_twice_changes_nothing() {
    let db = TestDb::sqlite();
    let old_a = SimServer::start(SimConfig::new("old-secret-a"))
        .await
        .unwrap();
    let old_b = SimServer::start(SimConfig::new("old-secret-b"))
        .await
        .unwrap();
    // The original moved the room from b to a without keeping history: its old recording sits on b.
    past_recording(&old_b, "old-secret-b", "legacy-meeting-0001").await;

    let export = serde_json::json!({
        "version": 1,
        "servers": [
            {"id": "a", "url": old_a.base_url(), "secret": "old-secret-a", "checksum": "sha1"},
            {"id": "b", "url": old_b.base_url(), "secret": "old-secret-b", "checksum": "sha1", "events": ["ev-1"]},
        ],
        "rooms": [{"event_id": "ev-1", "organizer_id": "org-1", "room_id": "main", "server_id": "a",
                   "meeting_id": "legacy-meeting-0001", "attendee_pw": "old-attendee", "moderator_pw": "old-moderator",
                   "voice_bridge": "712", "guest_policy": "ALWAYS_ACCEPT"}],
        "calls": [{"call_id": "0f8fad5b-d9cb-469f-a165-70867728950e", "event_id": "ev-1", "organizer_id": "org-1",
                   "server_id": "a", "meeting_id": "legacy-call-0001", "attendee_pw": "ca", "moderator_pw": "cm",
                   "invitees": ["alice", "bob"]}],
    });
    let file = db.dir.path().join("export.json");

    // A bad record: reported with its position, nothing written.
    let mut broken = export.clone();
    broken["rooms"][0]["meeting_id"] = "a,b".into();
    broken["calls"][0]["call_id"] = "not-a-uuid".into();
    std::fs::write(&file, broken.to_string()).unwrap();
    let (ok, text) = import(&db, &file);
    assert!(!ok);
    assert!(
        text.contains("rooms[0].meeting_id") && text.contains("calls[0].call_id"),
        "{text}"
    );
    assert!(text.contains("nothing was written"), "{text}");
    assert!(!text.contains("old-secret"), "{text}");

    std::fs::write(&file, export.to_string()).unwrap();
    let (ok, first) = import(&db, &file);
    assert!(ok, "{first}");
    assert!(
        first.contains("warning: rooms[0].voice_bridge: not 5 digits"),
        "a bridge BBB cannot take is left out as a join leaves it out, not a reason to stop: {first}"
    );
    assert!(
        first.contains("2 added")
            && first.contains("rooms: 1 imported")
            && first.contains("calls: 1 imported"),
        "{first}"
    );
    let (ok, second) = import(&db, &file);
    assert!(ok, "{second}");
    assert!(
        second.contains("0 added, 0 updated, 2 unchanged")
            && second.contains("0 imported, 1 kept")
            && second.contains("invitees added: 0"),
        "{second}"
    );

    // The service takes over: the room keeps its meeting, past recordings stay listed.
    let mut app = spawn_app(db, &[]).await;
    app.restart_with(&[]).await;
    let mut client = app.client().await;
    let url = client
        .room_url(authed(room_request("main", "u", MODERATE)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (url.server_id.as_str(), url.meeting_id.as_str()),
        ("a", "legacy-meeting-0001")
    );
    assert_join_works(&url.url).await;
    let recordings = client
        .list_recordings(authed(proto::ListRecordingsRequest {
            event_id: "ev-1".into(),
            room_id: "main".into(),
            permissions: vec!["room:bbb.recordings".into()],
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        recordings.results.len(),
        1,
        "found on b, where the room used to be"
    );

    let call = |user: &str| proto::CallUrlRequest {
        event_id: "ev-1".into(),
        call_id: "0f8fad5b-d9cb-469f-a165-70867728950e".into(),
        user: user_of(user),
        domain: String::new(),
        base_url: String::new(),
    };
    let url = client
        .call_url(authed(call("bob")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(url.meeting_id, "legacy-call-0001");
    assert_join_works(&url.url).await;
    assert!(client.call_url(authed(call("mallory"))).await.is_err());

    // Forgetting a user takes them out of every call.
    let forgotten = client
        .forget_user(authed(proto::ForgetUserRequest {
            user_id: "bob".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(forgotten.calls, 1);
    let err = client.call_url(authed(call("bob"))).await.unwrap_err();
    assert_eq!(reason(&err).0, "bbb.failed");
    assert!(client.call_url(authed(call("alice"))).await.is_ok());
    app.stop().await;
}

fn user_of(id: &str) -> Option<proto::User> {
    user(id, "Someone")
}

async fn deleting_an_event_ends_and_forgets_its_meetings(db: TestDb) {
    let app = spawn_app(db, &[SimSpec::new("s1")]).await;
    let mut client = app.client().await;
    let before = client
        .room_url(authed(room_request("hall", "u", MODERATE)))
        .await
        .unwrap()
        .into_inner();
    assert_join_works(&before.url).await;
    let call_id = client
        .create_call(authed(proto::CreateCallRequest {
            event_id: "ev-1".into(),
            organizer_id: "org-1".into(),
            member_ids: vec!["a".into()],
            idempotency_key: String::new(),
        }))
        .await
        .unwrap()
        .into_inner()
        .call_id;

    let deleted = client
        .delete_event(authed(proto::DeleteEventRequest {
            event_id: "ev-1".into(),
            end_meetings: true,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.meetings_deleted, 2);
    assert_eq!(
        deleted.meetings_ended, 1,
        "the running room meeting; the call never started"
    );
    assert!(deleted.end_failed_on.is_empty());
    assert!(app.sim("s1").meetings().is_empty());

    let call = client
        .call_url(authed(proto::CallUrlRequest {
            event_id: "ev-1".into(),
            call_id,
            user: user_of("a"),
            domain: String::new(),
            base_url: String::new(),
        }))
        .await
        .unwrap_err();
    assert_eq!(reason(&call).0, "bbb.failed");
    let after = client
        .room_url(authed(room_request("hall", "u", MODERATE)))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(
        after.meeting_id, before.meeting_id,
        "a new meeting for a room of a deleted event"
    );
    app.stop().await;
}

/// A hung server must not hold up an event's deletion past its deadline: the other servers'
/// meetings end, the rows go, and the hung server is named.
async fn deleting_an_event_while_a_server_hangs_answers_in_time(db: TestDb) {
    let app = spawn_app(db, &[SimSpec::new("s1"), SimSpec::new("s2")]).await;
    let mut client = app.client().await;
    for (room, server) in [("a", "s1"), ("b", "s1"), ("c", "s2")] {
        let mut request = room_request(room, "u", JOIN);
        request.settings.as_mut().unwrap().prefer_server = server.into();
        let url = client.room_url(authed(request)).await.unwrap().into_inner();
        assert_eq!(url.server_id, server);
    }
    app.sim("s2").set_fault(Fault::Hang);
    let mut request = authed(proto::DeleteEventRequest {
        event_id: "ev-1".into(),
        end_meetings: true,
    });
    // Shorter than one `end` on a hung server may take (5 s).
    request.set_timeout(Duration::from_secs(2));
    let deleted = client.delete_event(request).await.unwrap().into_inner();
    assert_eq!(deleted.meetings_deleted, 3);
    assert_eq!(deleted.meetings_ended, 2);
    assert_eq!(deleted.end_failed_on, ["s2"]);
    assert!(app.sim("s1").meetings().is_empty());
    assert!(
        app.store()
            .await
            .event_meetings("ev-1")
            .await
            .unwrap()
            .is_empty()
    );
    app.sim("s2").set_fault(Fault::None);
    app.stop().await;
}

async fn a_retried_create_call_makes_one_call(db: TestDb) {
    let app = spawn_app(db, &[SimSpec::new("s1")]).await;
    let mut client = app.client().await;
    let create = |key: &str| proto::CreateCallRequest {
        event_id: "ev-1".into(),
        organizer_id: "org-1".into(),
        member_ids: vec!["a".into(), "b".into()],
        idempotency_key: key.into(),
    };
    let first = client
        .create_call(authed(create("msg-42")))
        .await
        .unwrap()
        .into_inner()
        .call_id;
    let retry = client
        .create_call(authed(create("msg-42")))
        .await
        .unwrap()
        .into_inner()
        .call_id;
    let other = client
        .create_call(authed(create("msg-43")))
        .await
        .unwrap()
        .into_inner()
        .call_id;
    let none1 = client
        .create_call(authed(create("")))
        .await
        .unwrap()
        .into_inner()
        .call_id;
    let none2 = client
        .create_call(authed(create("")))
        .await
        .unwrap()
        .into_inner()
        .call_id;
    assert_eq!(first, retry);
    assert_ne!(first, other);
    assert_ne!(none1, none2, "without a key every request makes a call");
    let err = client
        .create_call(authed(create(&"k".repeat(200))))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    app.stop().await;
}

/// The backend retries a CreateCall whose answer it did not see, and a burst may send the
/// retry while the first is still running: one key is one call, while first joins of rooms
/// write beside them.
async fn concurrent_create_calls_with_one_key_make_one_call(db: TestDb) {
    let app = spawn_app(db, &[SimSpec::new("s1"), SimSpec::new("s2")]).await;
    let client = app.client().await;
    let mut calls = tokio::task::JoinSet::new();
    let mut joins = tokio::task::JoinSet::new();
    for i in 0..100 {
        // Keys 0..10 are each sent five times; the rest once.
        let key = format!("msg-{}", if i < 50 { i % 10 } else { i });
        let mut c = client.clone();
        calls.spawn(async move {
            let reply = c
                .create_call(authed(proto::CreateCallRequest {
                    event_id: "ev-1".into(),
                    organizer_id: "org-1".into(),
                    member_ids: vec!["a".into(), "b".into()],
                    idempotency_key: key.clone(),
                }))
                .await;
            (key, reply.map(|r| r.into_inner().call_id))
        });
        let mut c = client.clone();
        joins.spawn(async move {
            c.room_url(authed(room_request(&format!("room-{i}"), "u", JOIN)))
                .await
                .map(drop)
        });
    }
    let mut ids: std::collections::HashMap<String, std::collections::HashSet<String>> =
        Default::default();
    while let Some(done) = calls.join_next().await {
        let (key, reply) = done.unwrap();
        let id = reply.unwrap_or_else(|e| panic!("CreateCall {key}: {e:?}"));
        ids.entry(key).or_default().insert(id);
    }
    while let Some(done) = joins.join_next().await {
        done.unwrap().unwrap();
    }
    assert_eq!(ids.len(), 60);
    assert!(
        ids.values().all(|set| set.len() == 1),
        "a key made more than one call: {ids:?}"
    );
    let distinct: std::collections::HashSet<_> = ids.values().flatten().collect();
    assert_eq!(distinct.len(), 60, "two keys share a call");
    app.stop().await;
}

/// A call expires once nobody joined it for `call_max_age`, however old it is.
async fn private_calls_expire_by_last_use(db: TestDb) {
    let app = spawn_app_with(db, &[SimSpec::new("s1")], |args| {
        args.call_max_age = Some("2s".into())
    })
    .await;
    let mut client = app.client().await;
    let call_id = client
        .create_call(authed(proto::CreateCallRequest {
            event_id: "ev-1".into(),
            organizer_id: "org-1".into(),
            member_ids: vec!["a".into()],
            idempotency_key: String::new(),
        }))
        .await
        .unwrap()
        .into_inner()
        .call_id;
    let call = || proto::CallUrlRequest {
        event_id: "ev-1".into(),
        call_id: call_id.clone(),
        user: user_of("a"),
        domain: String::new(),
        base_url: String::new(),
    };
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(1300)).await;
        assert!(
            client.call_url(authed(call())).await.is_ok(),
            "a call in use stays, though created longer ago than the maximum age"
        );
    }
    tokio::time::sleep(Duration::from_millis(2800)).await;
    let err = client.call_url(authed(call())).await.unwrap_err();
    assert_eq!(reason(&err).0, "bbb.failed", "an unused call is gone");
    app.stop().await;
}

on_both_databases!(
    deleting_an_event_ends_and_forgets_its_meetings,
    deleting_an_event_while_a_server_hangs_answers_in_time,
    a_retried_create_call_makes_one_call,
    concurrent_create_calls_with_one_key_make_one_call,
    private_calls_expire_by_last_use,
);
