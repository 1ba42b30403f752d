//! The store's guarantees, on a real database file: servers-file sync rules, one meeting per
//! room under concurrency, and call membership.

use crate::common::TestDb;
use eventyay_bbb::{
    bbb::ChecksumAlgorithm,
    domain::{Meeting, Server, ServerState},
    secret::Secret,
    store::{Audit, Store},
};
use std::{sync::Arc, time::Duration};

async fn store(db: &TestDb) -> Store {
    let store = Store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    store
}

fn server(id: &str) -> Server {
    Server::new(
        id,
        format!("https://{id}.example.org/bigbluebutton/"),
        Secret::new(format!("secret-{id}")),
    )
}

fn meeting(id: &str, room: Option<&str>, server: &str) -> Meeting {
    Meeting {
        id: id.into(),
        event_id: "ev".into(),
        organizer_id: "org".into(),
        room_id: room.map(str::to_owned),
        bbb_meeting_id: format!("bbb-{id}"),
        attendee_pw: "a".into(),
        moderator_pw: "m".into(),
        server_id: server.into(),
        imported: false,
        claimed_at: 0,
    }
}

async fn the_servers_file_wins_and_servers_that_leave_it_are_disabled(db: TestDb) {
    let store = store(&db).await;
    store
        .sync_file_servers(&[server("a"), server("b")])
        .await
        .unwrap();

    let mut changed = server("a");
    changed.state = ServerState::Cordoned;
    changed.url = "https://new-a.example.org".into();
    changed.secret = Secret::new("rotated");
    changed.events = vec!["e1".into(), "e2".into()];
    changed.weight = 3.0;
    changed.checksum = ChecksumAlgorithm::Sha512;
    store
        .sync_file_servers(std::slice::from_ref(&changed))
        .await
        .unwrap();

    let mut servers = store.servers().await.unwrap();
    servers.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(servers[0], changed);
    assert_eq!(servers[1].id, "b");
    assert_eq!(
        servers[1].state,
        ServerState::Disabled,
        "left the file: disabled, not deleted"
    );

    // Back in the file, it is enabled again: the file wins for every field.
    store
        .sync_file_servers(&[changed, server("b")])
        .await
        .unwrap();
    let b = store
        .servers()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.id == "b")
        .unwrap();
    assert_eq!(b.state, ServerState::Enabled);
}

/// Claims a room's new session for `to`, as a placement does, in its transaction.
async fn claim(store: &Store, from: &str, to: &str, placed_at: i64) -> (Meeting, bool) {
    let session = eventyay_bbb::store::SessionClaim {
        meeting_id: "m1".into(),
        bbb_meeting_id: "bbb-m1".into(),
        from: from.into(),
        placed_at,
        to: to.into(),
    };
    store
        .reserve_with(Duration::from_secs(300), Duration::ZERO, &[], |_| {
            eventyay_bbb::store::Decided {
                sessions: vec![session],
                ..Default::default()
            }
        })
        .await
        .unwrap()
        .sessions
        .remove("m1")
        .unwrap()
}

/// Writes a room's first row as a placement does, in its transaction; returns the room's row
/// as stored.
async fn first_row(store: &Store, row: Meeting) -> Meeting {
    let key = (row.event_id.clone(), row.room_id.clone().unwrap());
    store
        .reserve_with(Duration::from_secs(300), Duration::ZERO, &[], |_| {
            eventyay_bbb::store::Decided {
                first_rows: vec![row],
                ..Default::default()
            }
        })
        .await
        .unwrap()
        .rooms
        .remove(&key)
        .unwrap()
}

async fn concurrent_first_joins_share_one_room_meeting(db: TestDb) {
    let store = Arc::new(store(&db).await);
    store
        .sync_file_servers(&[server("a"), server("b")])
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..50 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let server = if i % 2 == 0 { "a" } else { "b" };
            first_row(&store, meeting(&format!("m{i}"), Some("room"), server)).await
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        winners.push(t.await.unwrap());
    }
    assert!(
        winners.windows(2).all(|w| w[0] == w[1]),
        "everyone got the same row"
    );
    let stored = store.room_meeting("ev", "room").await.unwrap().unwrap();
    assert_eq!(stored, winners[0]);
    assert_eq!(
        store.hosts(&stored.id).await.unwrap(),
        vec![stored.server_id.clone()]
    );
    assert_eq!(
        store
            .event_rooms_per_server("ev")
            .await
            .unwrap()
            .values()
            .sum::<u64>(),
        1
    );
}

async fn calls_are_found_only_by_invited_members_of_their_event(db: TestDb) {
    let store = store(&db).await;
    store
        .sync_file_servers(&[server("a"), server("b")])
        .await
        .unwrap();
    let call = meeting("0f8fad5b-d9cb-469f-a165-70867728950e", None, "a");
    store
        .insert_call(&call, &["alice".into(), "bob".into()], None)
        .await
        .unwrap();

    let found = store
        .use_call("ev", &call.id, "alice")
        .await
        .unwrap()
        .unwrap();
    assert!(
        found.claimed_at > 0,
        "its row's claim is what a claim must find"
    );
    let call = Meeting {
        claimed_at: found.claimed_at,
        ..call
    };
    assert_eq!(found, call);
    assert_eq!(
        store.use_call("ev", &call.id, "mallory").await.unwrap(),
        None
    );
    assert_eq!(
        store.use_call("other", &call.id, "alice").await.unwrap(),
        None
    );
    assert_eq!(store.use_call("ev", "nope", "alice").await.unwrap(), None);

    // A move keeps the identity and remembers both hosts.
    let audit = |details: &str| Audit {
        actor: "ops",
        action: "move-room",
        target: "ev/room",
        details: details.into(),
    };
    let moved = store
        .repin(&call.id, "a", "b", Some(audit("a to b")))
        .await
        .unwrap();
    assert_eq!(
        Some(&moved),
        store
            .use_call("ev", &call.id, "bob")
            .await
            .unwrap()
            .as_ref()
    );
    assert_eq!(moved.server_id, "b");
    assert_eq!(moved.bbb_meeting_id, call.bbb_meeting_id);
    let mut hosts = store.hosts(&call.id).await.unwrap();
    hosts.sort();
    assert_eq!(hosts, vec!["a".to_owned(), "b".to_owned()]);
    // A second, late move from the old server loses: the first move stands.
    store
        .sync_file_servers(&[server("a"), server("b"), server("c")])
        .await
        .unwrap();
    let late = store
        .repin(&call.id, "a", "c", Some(audit("a to c")))
        .await
        .unwrap();
    assert_eq!(late.server_id, "b");
    // Only the move that happened is in the audit log.
    let log: Vec<String> = store
        .audit_log(10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.details)
        .collect();
    assert_eq!(log, vec!["a to b".to_owned()]);
    // Calls are not rooms: they never count in the spreading of an event's rooms.
    assert!(store.event_rooms_per_server("ev").await.unwrap().is_empty());
}

async fn replicas_starting_at_once_migrate_exactly_once(db: TestDb) {
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let url = db.url.clone();
        tasks.push(tokio::spawn(async move {
            let store = Store::connect(&url).await.unwrap();
            store.migrate().await
        }));
    }
    for t in tasks {
        t.await.unwrap().expect("every replica starts");
    }
    // And the schema works.
    let store = store(&db).await;
    store.sync_file_servers(&[server("a")]).await.unwrap();
    assert_eq!(store.servers().await.unwrap().len(), 1);
}

/// Writes `n` private calls of `event`, each with one invitee, last used long ago, in two
/// statements: what years of chat calls leave behind.
async fn many_calls(db: &TestDb, event: &str, n: u32) {
    use sea_orm::ConnectionTrait;
    let conn = sea_orm::Database::connect(&db.url).await.unwrap();
    let numbers =
        format!("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n})");
    for statement in [
        format!(
            "{numbers} INSERT INTO meetings (id, event_id, organizer_id, room_id, bbb_meeting_id, \
             attendee_pw, moderator_pw, server_id, created_at, imported, idempotency_key, \
             last_used_at) SELECT '{event}-' || i, '{event}', 'org', NULL, 'bbb-{event}-' || i, \
             'apw', 'mpw', 'a', 0, FALSE, NULL, 0 FROM n"
        ),
        format!(
            "{numbers} INSERT INTO call_members (meeting_id, member_id) SELECT '{event}-' || i, \
             'alice' FROM n"
        ),
    ] {
        conn.execute_unprepared(&statement).await.unwrap();
    }
    conn.close().await.unwrap();
}

/// Deleting more rows than a statement may bind parameters (SQLite 32,766) works: an event
/// with 40,000 meetings, and 40,000 expired calls.
async fn forty_thousand_meetings_delete_fine(db: TestDb) {
    let store = store(&db).await;
    store.sync_file_servers(&[server("a")]).await.unwrap();
    many_calls(&db, "big", 40_000).await;
    assert_eq!(store.delete_event("big").await.unwrap(), 40_000);
    many_calls(&db, "old", 40_000).await;
    let expired = store
        .expire_calls(std::time::Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(expired, 40_000);
    assert!(store.event_meetings("old").await.unwrap().is_empty());
}

fn audit(action: &'static str) -> Audit<'static> {
    Audit {
        actor: "ops",
        action,
        target: "a",
        details: String::new(),
    }
}

/// PutServer carries neither the TLS settings nor (when unspecified) a state: an update keeps
/// them, and a drain goes on while the server stays cordoned.
async fn an_update_keeps_what_it_does_not_carry(db: TestDb) {
    let store = store(&db).await;
    let mut from_file = server("a");
    from_file.ca_bundle = "/etc/eventyay-bbb/ca.pem".into();
    from_file.insecure_tls = true;
    store.sync_file_servers(&[from_file]).await.unwrap();
    store
        .set_server_state("a", ServerState::Cordoned, true, audit("drain"))
        .await
        .unwrap();

    let mut update = server("a");
    update.weight = 2.0;
    let put = store
        .put_server(&update, None, audit("put-server"))
        .await
        .unwrap();
    assert!(!put.created && !put.drain_cancelled);
    let stored = store.server("a").await.unwrap().unwrap();
    assert_eq!(stored.weight, 2.0);
    assert_eq!(stored.ca_bundle, "/etc/eventyay-bbb/ca.pem");
    assert!(stored.insecure_tls);
    assert_eq!(stored.state, ServerState::Cordoned);
    assert!(stored.draining, "the drain goes on");

    // Enabling it ends the drain, and the audit entry says so.
    let put = store
        .put_server(&update, Some(ServerState::Enabled), audit("put-server"))
        .await
        .unwrap();
    assert!(put.drain_cancelled);
    let stored = store.server("a").await.unwrap().unwrap();
    assert_eq!(stored.state, ServerState::Enabled);
    assert!(!stored.draining);
    let log = store.audit_log(1).await.unwrap();
    assert!(log[0].details.ends_with("drain cancelled"), "{log:?}");

    // A new server without a state starts enabled.
    let put = store
        .put_server(&server("b"), None, audit("put-server"))
        .await
        .unwrap();
    assert!(put.created);
    let b = store.server("b").await.unwrap().unwrap();
    assert_eq!(b.state, ServerState::Enabled);
}

/// The poller completes a drain from a registry it read a moment ago; an operator who enabled
/// the server since then wins, and no "drain-completed" entry claims otherwise.
async fn a_drain_completes_only_while_still_draining(db: TestDb) {
    let store = store(&db).await;
    store.sync_file_servers(&[server("a")]).await.unwrap();
    store
        .set_server_state("a", ServerState::Cordoned, true, audit("drain"))
        .await
        .unwrap();
    // The poller saw it draining and empty; before it acts, an operator enables it.
    store
        .set_server_state("a", ServerState::Enabled, false, audit("set-state"))
        .await
        .unwrap();
    assert!(
        !store
            .complete_drain("a", audit("drain-completed"))
            .await
            .unwrap()
    );
    let a = store.server("a").await.unwrap().unwrap();
    assert_eq!(a.state, ServerState::Enabled);
    let actions: Vec<String> = store
        .audit_log(10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, ["set-state", "drain"]);

    // Still draining: the drain completes, with its entry.
    store
        .set_server_state("a", ServerState::Cordoned, true, audit("drain"))
        .await
        .unwrap();
    assert!(
        store
            .complete_drain("a", audit("drain-completed"))
            .await
            .unwrap()
    );
    let a = store.server("a").await.unwrap().unwrap();
    assert_eq!(a.state, ServerState::Disabled);
    assert!(!a.draining);
    assert_eq!(
        store.audit_log(1).await.unwrap()[0].action,
        "drain-completed"
    );
}

/// Two replicas decide one room's new session at once, from the same reading of its row: one
/// claim wins, even one that keeps the meeting where it is, and the other finds its decision.
async fn one_claim_decides_a_new_session(db: TestDb) {
    let store = store(&db).await;
    store
        .sync_file_servers(&[server("a"), server("b"), server("c")])
        .await
        .unwrap();
    let room = meeting("m1", Some("hall"), "a");
    first_row(&store, room).await;
    let read = store.room_meeting("ev", "hall").await.unwrap().unwrap();
    let placed_at = read.claimed_at;

    let (stays, won) = claim(&store, "a", "a", placed_at).await;
    assert!(won && stays.server_id == "a");
    let (late, won) = claim(&store, "a", "b", placed_at).await;
    assert!(!won, "the second claim from the same reading lost");
    assert_eq!(late.server_id, "a");

    // A fresh reading may claim the next session, and a move keeps the hosting history.
    let again = store.room_meeting("ev", "hall").await.unwrap().unwrap();
    assert!(
        again.claimed_at > placed_at,
        "the winning claim is the row's claim now"
    );
    let (moved, won) = claim(&store, "a", "c", again.claimed_at).await;
    assert!(won && moved.server_id == "c");
    let mut hosts = store.hosts("m1").await.unwrap();
    hosts.sort();
    assert_eq!(hosts, ["a", "c"]);

    // A create on the meeting's own server claims to stay first: a session decided from a
    // reading older than that claim can no longer move the meeting away, while others
    // creating there too do not stand in each other's way.
    let before = store.room_meeting("ev", "hall").await.unwrap().unwrap();
    let (stayed, won) = store.claim_meeting(&before).await.unwrap();
    assert!(won && stayed.server_id == "c" && stayed.claimed_at > before.claimed_at);
    let (also, won) = store.claim_meeting(&before).await.unwrap();
    assert!(
        won && also.claimed_at > stayed.claimed_at,
        "a second stay from the same reading"
    );
    let (kept, won) = claim(&store, "c", "a", before.claimed_at).await;
    assert!(
        !won,
        "a session decided on an older reading lost to the stays"
    );
    assert_eq!(kept.server_id, "c");
    // Once moved, a stay (a create's confirmation on its way) loses.
    let (moved, won) = claim(&store, "c", "b", also.claimed_at).await;
    assert!(won && moved.server_id == "b");
    let (_, won) = store.claim_meeting(&also).await.unwrap();
    assert!(!won, "a stay on the server it moved away from");
}

on_postgres!(replicas_starting_at_once_migrate_exactly_once);

on_both_databases!(
    the_servers_file_wins_and_servers_that_leave_it_are_disabled,
    concurrent_first_joins_share_one_room_meeting,
    calls_are_found_only_by_invited_members_of_their_event,
    forty_thousand_meetings_delete_fine,
    an_update_keeps_what_it_does_not_carry,
    a_drain_completes_only_while_still_draining,
    one_claim_decides_a_new_session,
);
