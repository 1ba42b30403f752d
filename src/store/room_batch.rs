//! Rooms' first meetings, written in batches. When a session starts, hundreds of rooms get
//! their first join in the same second, and each needs its meeting row written. Writes take
//! turns (SQLite has one writer), so rows that arrive while one batch is written wait for the
//! next, and one transaction writes them all: a burst costs a few transactions, not hundreds.

use super::{Meeting, Result, Store, StoreError, entities::hosting, entities::meeting};
use super::{meeting_from_row, meeting_row, now_ms};
use sea_orm::{ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, QueryFilter};
use std::collections::{HashMap, HashSet};
use tokio::sync::oneshot;

/// The most rows one transaction writes (13 columns each, far below SQLite's 32,766
/// parameters).
const MAX_BATCH: usize = 500;

type Reply = oneshot::Sender<Result<Meeting>>;

/// Rows waiting for their batch.
pub(super) type Queue = crate::batching::Batches<(Meeting, Reply)>;

impl Store {
    /// Inserts a room's meeting unless the room already has one, and returns the room's
    /// meeting either way: concurrent first joins, here or on another replica, all end up with
    /// the same row. The row is written with its hosting record, in a batch with the other
    /// rooms' first meetings of the moment.
    pub async fn insert_room_meeting(&self, new: &Meeting) -> Result<Meeting> {
        let (reply, answer) = oneshot::channel();
        self.rooms.push((new.clone(), reply));
        // In a task of its own: a caller that gives up must not abort the others' rows.
        let store = self.clone();
        tokio::spawn(async move { store.write_rooms().await });
        answer.await.unwrap_or_else(|_| {
            Err(StoreError(DbErr::Custom(
                "the room batch ended without an answer".into(),
            )))
        })
    }

    async fn write_rooms(&self) {
        let _round = self.rooms.round().await;
        let batch = self.rooms.take(MAX_BATCH);
        if batch.is_empty() {
            return;
        }
        let rows: Vec<&Meeting> = batch.iter().map(|(m, _)| m).collect();
        match self.guarded(write(self, &rows)).await {
            Ok(stored) => {
                for (new, reply) in batch {
                    let key = (new.event_id, new.room_id.unwrap_or_default());
                    let answer = stored.get(&key).cloned().ok_or_else(|| {
                        StoreError(DbErr::RecordNotFound("room meeting vanished".into()))
                    });
                    let _ = reply.send(answer);
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

/// Writes the rows whose rooms have no meeting yet (the first of several for one room wins),
/// and returns every room's meeting as stored, by (event, room).
async fn write(store: &Store, rows: &[&Meeting]) -> Result<HashMap<(String, String), Meeting>> {
    let tx = store.write_tx().await?;
    let mut seen = HashSet::new();
    let fresh: Vec<&Meeting> = rows
        .iter()
        .copied()
        .filter(|m| seen.insert((m.event_id.as_str(), m.room_id.as_deref())))
        .collect();
    meeting::Entity::insert_many(fresh.iter().map(|m| meeting_row(m)))
        .on_conflict_do_nothing_on([meeting::Column::EventId, meeting::Column::RoomId])
        .exec(&tx)
        .await?;
    let mut rooms_per_event: HashMap<&str, Vec<&str>> = HashMap::new();
    for m in &fresh {
        rooms_per_event
            .entry(m.event_id.as_str())
            .or_default()
            .push(m.room_id.as_deref().unwrap_or_default());
    }
    let mut stored = HashMap::new();
    for (event_id, rooms) in rooms_per_event {
        let found = meeting::Entity::find()
            .filter(meeting::Column::EventId.eq(event_id))
            .filter(meeting::Column::RoomId.is_in(rooms))
            .all(&tx)
            .await?;
        for row in found {
            let meeting = meeting_from_row(row);
            let key = (
                meeting.event_id.clone(),
                meeting.room_id.clone().unwrap_or_default(),
            );
            stored.insert(key, meeting);
        }
    }
    // The rows this batch wrote (rather than found) start their hosting history.
    let written: Vec<&Meeting> = fresh
        .iter()
        .copied()
        .filter(|m| {
            let key = (m.event_id.clone(), m.room_id.clone().unwrap_or_default());
            stored.get(&key).is_some_and(|s| s.id == m.id)
        })
        .collect();
    if !written.is_empty() {
        let now = now_ms();
        hosting::Entity::insert_many(written.iter().map(|m| hosting::ActiveModel {
            meeting_id: Set(m.id.clone()),
            server_id: Set(m.server_id.clone()),
            first_at: Set(now),
        }))
        .on_conflict_do_nothing()
        .exec(&tx)
        .await?;
    }
    tx.commit().await?;
    Ok(stored)
}
