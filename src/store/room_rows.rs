//! Rooms' meeting rows in bulk. When a session starts, hundreds of rooms get their first join
//! in the same second: each looks up its room's meeting, and the new ones need their first
//! rows written. Lookups that arrive while one runs wait for the next and go in one query;
//! first rows are written in the transaction of the placements that decide their servers.

use super::{Meeting, Result, Store, StoreError, entities::hosting, entities::meeting};
use super::{meeting_from_row, meeting_row, now_ms};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use std::collections::{HashMap, HashSet};
use tokio::sync::oneshot;

/// The most lookups one query answers.
const MAX_LOOKUPS: usize = 500;

type Reply = oneshot::Sender<Result<Option<Meeting>>>;

/// Lookups waiting for their round: (event, room) and where the answer goes.
pub(super) type Lookups = crate::batching::Batches<((String, String), Reply)>;

/// (event, room) → the room's meeting.
pub type RoomRows = HashMap<(String, String), Meeting>;

impl Store {
    /// The room's meeting with its latest claim (what a claim of it must find unchanged). Asked
    /// together with the other rooms' lookups of the moment.
    pub async fn room_meeting(&self, event_id: &str, room_id: &str) -> Result<Option<Meeting>> {
        let key = (event_id.to_owned(), room_id.to_owned());
        let store = self.clone();
        let round = async move { store.look_up_rooms().await };
        self.lookups
            .submit(|reply| (key, reply), round, "room lookups")
            .await
            .unwrap_or_else(|| {
                Err(StoreError(DbErr::Custom(
                    "the room lookup ended without an answer".into(),
                )))
            })
    }

    async fn look_up_rooms(&self) {
        let _round = self.lookups.round().await;
        let batch = self.lookups.take(MAX_LOOKUPS);
        if batch.is_empty() {
            return;
        }
        let keys: Vec<&(String, String)> = batch.iter().map(|(k, _)| k).collect();
        match self.guarded(look_up(&self.db, &keys)).await {
            Ok(mut found) => {
                for (key, reply) in batch {
                    let _ = reply.send(Ok(found.remove(&key)));
                }
            }
            Err(err) => {
                let text = err.0.to_string();
                for (_, reply) in batch {
                    let _ = reply.send(Err(StoreError(DbErr::Custom(text.clone()))));
                }
            }
        }
    }
}

/// The rooms' meetings by (event, room), one query per event.
async fn look_up(db: &impl ConnectionTrait, keys: &[&(String, String)]) -> Result<RoomRows> {
    let mut per_event: HashMap<&str, Vec<&str>> = HashMap::new();
    for (event_id, room_id) in keys {
        per_event.entry(event_id).or_default().push(room_id);
    }
    let mut found = HashMap::new();
    for (event_id, rooms) in per_event {
        let rows = meeting::Entity::find()
            .filter(meeting::Column::EventId.eq(event_id))
            .filter(meeting::Column::RoomId.is_in(rooms))
            .all(db)
            .await?;
        for row in rows {
            let meeting = meeting_from_row(row);
            let key = (
                meeting.event_id.clone(),
                meeting.room_id.clone().unwrap_or_default(),
            );
            found.insert(key, meeting);
        }
    }
    Ok(found)
}

/// Writes, within `tx`, the first rows of rooms that have no meeting yet (the first of several
/// for one room wins; so does a row another replica wrote first), with their hosting records,
/// and returns every room's meeting as stored.
pub(super) async fn write_first(
    tx: &impl ConnectionTrait,
    rows: &[Meeting],
) -> std::result::Result<RoomRows, DbErr> {
    if rows.is_empty() {
        return Ok(HashMap::new());
    }
    // A first row is its meeting's first claim, made now: its create follows this write, so
    // the claim must not be older than the write (the batch may have waited).
    let claimed_at = now_ms();
    let mut seen = HashSet::new();
    let fresh: Vec<Meeting> = rows
        .iter()
        .filter(|m| seen.insert((m.event_id.as_str(), m.room_id.as_deref())))
        .map(|m| Meeting {
            claimed_at,
            ..m.clone()
        })
        .collect();
    let inserted = meeting::Entity::insert_many(fresh.iter().map(meeting_row))
        .on_conflict_do_nothing_on([meeting::Column::EventId, meeting::Column::RoomId])
        .exec_without_returning(tx)
        .await;
    let inserted = match inserted? {
        sea_orm::TryInsertResult::Inserted(rows) => rows,
        _ => 0,
    };
    let key = |m: &Meeting| (m.event_id.clone(), m.room_id.clone().unwrap_or_default());
    // Every row went in: each room's meeting is the one written (the common case, spared
    // the read). Otherwise some room had one already: read what is stored.
    let stored: RoomRows = if inserted == fresh.len() as u64 {
        fresh.iter().map(|m| (key(m), m.clone())).collect()
    } else {
        let keys: Vec<(String, String)> = fresh.iter().map(&key).collect();
        let keys: Vec<&(String, String)> = keys.iter().collect();
        look_up(tx, &keys).await.map_err(|e| e.0)?
    };
    // The rows written here (rather than found) start their hosting history.
    let written: Vec<&Meeting> = fresh
        .iter()
        .filter(|m| stored.get(&key(m)).is_some_and(|s| s.id == m.id))
        .collect();
    if !written.is_empty() {
        let now = now_ms();
        hosting::Entity::insert_many(written.iter().map(|m| hosting::ActiveModel {
            meeting_id: Set(m.id.clone()),
            server_id: Set(m.server_id.clone()),
            first_at: Set(now),
        }))
        .on_conflict_do_nothing()
        .exec(tx)
        .await?;
    }
    Ok(stored)
}
