//! Kept schedules: the sessions the backend planned for an event, each with the server its
//! forecast gave it, for placement to follow when the session starts.

use super::shared::{to_ms, to_time};
use super::{Result, Store, entities::meeting, entities::planned_session, now_ms};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait},
};
use std::{
    collections::HashMap,
    time::{Duration, SystemTime},
};

/// One planned session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub event_id: String,
    pub room_id: String,
    pub start: SystemTime,
    pub end: SystemTime,
    /// 0: unknown.
    pub participants: u32,
    /// The server the forecast gave it; empty when it found none.
    pub server_id: String,
    /// The room's BBB meetingID, once it has a meeting.
    pub meeting_id: Option<String>,
    /// A placement of the room took the session over (its reservation ends).
    pub claimed: bool,
}

/// The most planned sessions placement reads (running, or starting within the lead), the
/// latest to start first: far more than a fleet runs meetings at once.
const MAX_ACTIVE: u64 = 20_000;

/// The most sessions of other events a forecast counts.
pub const MAX_OVERLAPPING: u64 = 20_000;

/// Rows per insert: 6 columns each, far below SQLite's 32,766 parameters.
const INSERT_CHUNK: usize = 1_000;

impl Store {
    /// Replaces the event's plan with `sessions` (none: the event has no plan any more), in
    /// one transaction. A session kept again keeps its claim: a placement that took it over
    /// stays its owner. Every plan's sessions that have ended go.
    pub async fn keep_plan(&self, event_id: &str, sessions: &[Planned]) -> Result<()> {
        self.guarded(async {
            let tx = self.write_tx().await?;
            let claims: HashMap<(String, i64), i64> = planned_session::Entity::find()
                .select_only()
                .column(planned_session::Column::RoomId)
                .column(planned_session::Column::StartAt)
                .column(planned_session::Column::ClaimedAt)
                .filter(planned_session::Column::EventId.eq(event_id))
                .filter(planned_session::Column::ClaimedAt.gt(0))
                .into_tuple::<(String, i64, i64)>()
                .all(&tx)
                .await?
                .into_iter()
                .map(|(room, start, claimed)| ((room, start), claimed))
                .collect();
            planned_session::Entity::delete_many()
                .filter(ExprTrait::or(
                    planned_session::Column::EventId.eq(event_id),
                    planned_session::Column::EndAt.lte(now_ms()),
                ))
                .exec(&tx)
                .await?;
            for chunk in sessions.chunks(INSERT_CHUNK) {
                let rows = chunk.iter().map(|s| planned_session::ActiveModel {
                    event_id: Set(event_id.to_owned()),
                    room_id: Set(s.room_id.clone()),
                    start_at: Set(to_ms(s.start)),
                    end_at: Set(to_ms(s.end)),
                    participants: Set(i32::try_from(s.participants).unwrap_or(i32::MAX)),
                    server_id: Set(s.server_id.clone()),
                    claimed_at: Set(claims
                        .get(&(s.room_id.clone(), to_ms(s.start)))
                        .copied()
                        .unwrap_or(0)),
                });
                // A room planned twice at the same start: the later entry stands.
                planned_session::Entity::insert_many(rows)
                    .on_conflict(
                        sea_orm::sea_query::OnConflict::columns([
                            planned_session::Column::EventId,
                            planned_session::Column::RoomId,
                            planned_session::Column::StartAt,
                        ])
                        .update_columns([
                            planned_session::Column::EndAt,
                            planned_session::Column::Participants,
                            planned_session::Column::ServerId,
                        ])
                        .to_owned(),
                    )
                    .exec(&tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// Other events' kept sessions with a server that overlap `from`..`to`: at most
    /// `MAX_OVERLAPPING`, the earliest first.
    pub async fn planned_between(
        &self,
        except_event: &str,
        from: SystemTime,
        to: SystemTime,
    ) -> Result<Vec<Planned>> {
        self.guarded(async {
            let rows = planned_session::Entity::find()
                .filter(planned_session::Column::EventId.ne(except_event))
                .filter(planned_session::Column::ServerId.ne(""))
                .filter(planned_session::Column::EndAt.gt(to_ms(from)))
                .filter(planned_session::Column::StartAt.lt(to_ms(to)))
                .order_by_asc(planned_session::Column::StartAt)
                .limit(MAX_OVERLAPPING)
                .all(&self.db)
                .await?;
            Ok(rows
                .into_iter()
                .map(|row| planned_from_row(row, None))
                .collect())
        })
        .await
    }

    /// The planned sessions running now or starting within `lead`, with their rooms' meetings.
    pub async fn planned_now(&self, lead: Duration) -> Result<Vec<Planned>> {
        self.guarded(async { Ok(planned_within(&self.db, lead).await?) })
            .await
    }
}

fn planned_from_row(row: planned_session::Model, meeting_id: Option<String>) -> Planned {
    Planned {
        start: to_time(row.start_at),
        end: to_time(row.end_at),
        participants: u32::try_from(row.participants).unwrap_or(0),
        claimed: row.claimed_at > 0,
        event_id: row.event_id,
        room_id: row.room_id,
        server_id: row.server_id,
        meeting_id,
    }
}

/// As `Store::planned_now`, on `db` (a transaction, when placements decide by it).
pub(super) async fn planned_within(
    db: &impl ConnectionTrait,
    lead: Duration,
) -> std::result::Result<Vec<Planned>, DbErr> {
    let now = now_ms();
    let soon = now.saturating_add(i64::try_from(lead.as_millis()).unwrap_or(i64::MAX));
    let rows = planned_session::Entity::find()
        .filter(planned_session::Column::EndAt.gt(now))
        .filter(planned_session::Column::StartAt.lte(soon))
        .order_by_desc(planned_session::Column::StartAt)
        .limit(MAX_ACTIVE)
        .all(db)
        .await?;
    if rows.len() as u64 >= MAX_ACTIVE {
        tracing::warn!(
            limit = MAX_ACTIVE,
            "more planned sessions run at once than placement reads; the earliest started are left out"
        );
    }
    let mut rooms: HashMap<&str, Vec<&str>> = HashMap::new();
    for row in &rows {
        rooms.entry(&row.event_id).or_default().push(&row.room_id);
    }
    let mut meetings: HashMap<(String, String), String> = HashMap::new();
    for (event_id, rooms) in rooms {
        let found: Vec<(Option<String>, String)> = meeting::Entity::find()
            .select_only()
            .column(meeting::Column::RoomId)
            .column(meeting::Column::BbbMeetingId)
            .filter(meeting::Column::EventId.eq(event_id))
            .filter(meeting::Column::RoomId.is_in(rooms))
            .into_tuple()
            .all(db)
            .await?;
        for (room_id, bbb_meeting_id) in found {
            if let Some(room_id) = room_id {
                meetings.insert((event_id.to_owned(), room_id), bbb_meeting_id);
            }
        }
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let meeting_id = meetings
                .get(&(row.event_id.clone(), row.room_id.clone()))
                .cloned();
            planned_from_row(row, meeting_id)
        })
        .collect())
}

/// Marks the sessions of `rooms` (event, room) running now or starting within `lead` as taken
/// over by a placement: their planned reservations end, in the transaction that records the
/// placements' own.
pub(super) async fn claim(
    db: &impl ConnectionTrait,
    rooms: &[(String, String)],
    lead: Duration,
) -> std::result::Result<(), DbErr> {
    let now = now_ms();
    let soon = now.saturating_add(i64::try_from(lead.as_millis()).unwrap_or(i64::MAX));
    let mut per_event: HashMap<&str, Vec<&str>> = HashMap::new();
    for (event_id, room_id) in rooms {
        per_event.entry(event_id).or_default().push(room_id);
    }
    for (event_id, rooms) in per_event {
        planned_session::Entity::update_many()
            .col_expr(planned_session::Column::ClaimedAt, Expr::value(now))
            .filter(planned_session::Column::EventId.eq(event_id))
            .filter(planned_session::Column::RoomId.is_in(rooms))
            .filter(planned_session::Column::EndAt.gt(now))
            .filter(planned_session::Column::StartAt.lte(soon))
            .filter(planned_session::Column::ClaimedAt.eq(0))
            .exec(db)
            .await?;
    }
    Ok(())
}
