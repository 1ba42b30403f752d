//! What replicas share through the database beyond meetings: the operators' changes to servers
//! and their audit log, placement reservations, the poller's view of the fleet, and the lease
//! that makes exactly one replica the poller.

use super::{
    Meeting, Result, Server, ServerState, Store, StoreError,
    entities::{audit, hosting, meeting, reservation, server, server_status},
    now_ms, server_from_row, server_row,
};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Statement, sea_query::OnConflict,
};
use serde::{Deserialize, Serialize};
use std::{
    collections::HashMap,
    time::{Duration, SystemTime},
};

/// The key of the advisory lock that serialises placements across replicas ("bbb-plac").
const PLACEMENT_LOCK: i64 = 0x6262_622d_706c_6163;

pub(super) use crate::calendar::{epoch_ms as to_ms, from_epoch_ms as to_time};

/// Load a placement expects a new meeting to bring, until the poller sees the meeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub meeting_id: String,
    pub server_id: String,
    pub at: SystemTime,
    /// Participants the placement expects; 0: unknown.
    pub participants: u32,
}

/// What a round of placements decides by, read in its transaction.
#[derive(Debug)]
pub struct PlacementView<'a> {
    /// Every replica's recent reservations.
    pub reservations: &'a [Reservation],
    /// Kept plans' sessions running or about to start.
    pub planned: &'a [super::Planned],
    /// Per event asked: its rooms per server, without the meetings being placed.
    pub event_rooms: &'a HashMap<String, HashMap<String, u64>>,
}

/// What a round of placements decided: the reservations it makes, the rooms (event, room)
/// whose planned sessions its placements take over, the first rows of new rooms, and the new
/// sessions of rooms that have a meeting. A first row or a session claim that loses (another
/// replica wrote that room or decided that session first) takes its reservation back.
#[derive(Debug, Default)]
pub struct Decided {
    pub made: Vec<Reservation>,
    pub claimed: Vec<(String, String)>,
    pub first_rows: Vec<Meeting>,
    pub sessions: Vec<super::SessionClaim>,
}

/// What a round of placements wrote: new rooms' meetings as stored, and per session claimed
/// (by meeting row id) the meeting as stored and whether the claim won.
#[derive(Debug, Default)]
pub struct Placed {
    pub rooms: super::RoomRows,
    pub sessions: HashMap<String, (Meeting, bool)>,
}

/// One meeting as the poller saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolledMeeting {
    pub meeting_id: String,
    pub cost: f64,
    pub participants: u32,
    pub running: bool,
}

/// The poller's view of one server.
#[derive(Debug, Clone, PartialEq)]
pub struct PolledServer {
    pub server_id: String,
    /// `healthy`, `unhealthy`, `misconfigured` or `unknown`.
    pub health: String,
    /// Why it is not healthy; empty when it is.
    pub health_reason: String,
    /// `None` when the last poll failed and no meetings are known.
    pub polled_at: Option<SystemTime>,
    pub meetings: Vec<PolledMeeting>,
}

/// Who changed what: written in the transaction of the change it records, so the log never
/// shows a change that did not happen, nor misses one that did.
#[derive(Debug, Clone)]
pub struct Audit<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub details: String,
}

/// What a PutServer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Put {
    pub created: bool,
    /// The server was draining and no longer is.
    pub drain_cancelled: bool,
}

pub(super) async fn record(
    tx: &impl ConnectionTrait,
    entry: &Audit<'_>,
) -> std::result::Result<(), DbErr> {
    audit::Entity::insert(audit::ActiveModel {
        at: Set(now_ms()),
        actor: Set(entry.actor.chars().take(128).collect()),
        action: Set(entry.action.to_owned()),
        target: Set(entry.target.chars().take(256).collect()),
        details: Set(entry.details.clone()),
        ..Default::default()
    })
    .exec(tx)
    .await?;
    Ok(())
}

fn reservation_from_row(r: reservation::Model) -> Reservation {
    Reservation {
        meeting_id: r.meeting_id,
        server_id: r.server_id,
        at: to_time(r.at),
        participants: u32::try_from(r.participants).unwrap_or(0),
    }
}

fn set_state(state: ServerState, draining: bool) -> sea_orm::UpdateMany<server::Entity> {
    server::Entity::update_many()
        .col_expr(
            server::Column::State,
            sea_orm::sea_query::Expr::value(state.name()),
        )
        .col_expr(
            server::Column::Draining,
            sea_orm::sea_query::Expr::value(draining),
        )
        .col_expr(
            server::Column::UpdatedAt,
            sea_orm::sea_query::Expr::value(now_ms()),
        )
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: SystemTime,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub details: String,
}

impl Store {
    /// Adds or updates a server, and records it in the audit log in the same transaction.
    /// On update it keeps what the request does not carry: an empty secret keeps the stored
    /// one, no `state` keeps the stored state, and the TLS settings (only the servers file
    /// sets them) stay. A drain goes on while the server stays cordoned; another state ends it,
    /// and the audit entry says so.
    pub async fn put_server(
        &self,
        s: &Server,
        state: Option<ServerState>,
        audit: Audit<'_>,
    ) -> Result<Put> {
        self.guarded(async {
            let tx = self.write_tx().await?;
            let existing = server::Entity::find_by_id(s.id.clone()).one(&tx).await?;
            let created = existing.is_none();
            let mut s = s.clone();
            let mut draining = false;
            if let Some(old) = existing.as_ref().and_then(|o| server_from_row(o.clone())) {
                s.state = state.unwrap_or(old.state);
                s.ca_bundle = old.ca_bundle;
                s.insecure_tls = old.insecure_tls;
                draining = old.draining && s.state == ServerState::Cordoned;
            } else {
                s.state = state.unwrap_or(ServerState::Enabled);
            }
            let drain_cancelled = existing.as_ref().is_some_and(|o| o.draining) && !draining;
            let secret = match (&existing, s.secret.expose()) {
                (Some(old), "") => old.secret.clone(),
                (_, new) => new.to_owned(),
            };
            let from_file = existing.as_ref().is_some_and(|o| o.from_file);
            let mut row = server_row(&s, secret, existing.as_ref(), from_file);
            row.draining = Set(draining);
            if created {
                server::Entity::insert(row).exec(&tx).await?;
            } else {
                server::Entity::update(row).exec(&tx).await?;
            }
            let details = format!(
                "{} {}{}",
                if created { "created" } else { "updated" },
                audit.details,
                if drain_cancelled {
                    "; drain cancelled"
                } else {
                    ""
                }
            );
            record(&tx, &Audit { details, ..audit }).await?;
            tx.commit().await?;
            Ok(Put {
                created,
                drain_cancelled,
            })
        })
        .await
    }

    pub async fn server(&self, id: &str) -> Result<Option<Server>> {
        self.guarded(async {
            let row = server::Entity::find_by_id(id.to_owned())
                .one(&self.db)
                .await?;
            Ok(row.and_then(server_from_row))
        })
        .await
    }

    /// Deletes a server that no meeting ever used. `Ok(false)` when it has history (or does not
    /// exist): such servers can only be disabled.
    pub async fn delete_unused_server(&self, id: &str, audit: Audit<'_>) -> Result<bool> {
        self.guarded(async {
            let tx = self.write_tx().await?;
            let hosted = hosting::Entity::find()
                .filter(hosting::Column::ServerId.eq(id))
                .count(&tx)
                .await?
                + meeting::Entity::find()
                    .filter(meeting::Column::ServerId.eq(id))
                    .count(&tx)
                    .await?;
            if hosted > 0 {
                return Ok(false);
            }
            let deleted = server::Entity::delete_by_id(id.to_owned())
                .exec(&tx)
                .await?;
            server_status::Entity::delete_by_id(id.to_owned())
                .exec(&tx)
                .await?;
            if deleted.rows_affected == 0 {
                return Ok(false);
            }
            record(&tx, &audit).await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    /// Sets a server's state (and whether it is draining), with its audit entry. `Ok(false)`
    /// when there is no such server.
    pub async fn set_server_state(
        &self,
        id: &str,
        state: ServerState,
        draining: bool,
        audit: Audit<'_>,
    ) -> Result<bool> {
        self.guarded(async {
            let tx = self.write_tx().await?;
            let updated = set_state(state, draining)
                .filter(server::Column::Id.eq(id))
                .exec(&tx)
                .await?;
            if updated.rows_affected == 0 {
                return Ok(false);
            }
            record(&tx, &audit).await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    /// Disables a drained server, unless it is no longer draining: an operator who enabled
    /// it (or changed it otherwise) since the poller looked wins. Returns whether it did.
    pub async fn complete_drain(&self, id: &str, audit: Audit<'_>) -> Result<bool> {
        self.guarded(async {
            let tx = self.write_tx().await?;
            let updated = set_state(ServerState::Disabled, false)
                .filter(server::Column::Id.eq(id))
                .filter(server::Column::Draining.eq(true))
                .filter(server::Column::State.eq(ServerState::Cordoned.name()))
                .exec(&tx)
                .await?;
            if updated.rows_affected == 0 {
                return Ok(false);
            }
            record(&tx, &audit).await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    pub async fn audit_log(&self, limit: u64) -> Result<Vec<AuditEntry>> {
        self.guarded(async {
            let rows = audit::Entity::find()
                .order_by_desc(audit::Column::Id)
                .limit(limit)
                .all(&self.db)
                .await?;
            Ok(rows
                .into_iter()
                .map(|r| AuditEntry {
                    at: to_time(r.at),
                    actor: r.actor,
                    action: r.action,
                    target: r.target,
                    details: r.details,
                })
                .collect())
        })
        .await
    }

    /// Runs placement decisions against every replica's recent reservations and records the
    /// reservations they make, under a lock that every replica's placements take (an advisory
    /// lock on PostgreSQL; SQLite serialises writers anyway), so no two placements decide on
    /// the same view. `decide` sees the reservations younger than `max_age`, the planned
    /// sessions running or starting within `lead`, and the rooms per server of the events in
    /// `events` (each without the meetings listed with it); it returns the new reservations
    /// (several: placements come in batches) and new rooms' first rows, which are written in
    /// the same transaction. Returns those rooms' meetings as stored.
    pub async fn reserve_with(
        &self,
        max_age: Duration,
        lead: Duration,
        events: &[(String, Vec<String>)],
        decide: impl FnOnce(PlacementView<'_>) -> Decided,
    ) -> Result<Placed> {
        self.guarded(async {
            let tx = self.write_tx().await?;
            // (SQLite's write lock is taken already: the transaction began IMMEDIATE.)
            if tx.get_database_backend() == DbBackend::Postgres {
                tx.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({PLACEMENT_LOCK})"))
                    .await?;
            }
            let oldest = now_ms() - max_age.as_millis() as i64;
            reservation::Entity::delete_many()
                .filter(reservation::Column::At.lt(oldest))
                .exec(&tx)
                .await?;
            let current: Vec<Reservation> = reservation::Entity::find()
                .all(&tx)
                .await?
                .into_iter()
                .map(reservation_from_row)
                .collect();
            let planned = super::plan::planned_within(&tx, lead).await?;
            let mut event_rooms = HashMap::new();
            for (event_id, leaving_out) in events {
                let rooms = super::event_rooms(&tx, event_id, leaving_out).await?;
                event_rooms.insert(event_id.clone(), rooms);
            }
            let Decided {
                mut made,
                claimed,
                first_rows,
                sessions,
            } = decide(PlacementView {
                reservations: &current,
                planned: &planned,
                event_rooms: &event_rooms,
            });
            if !claimed.is_empty() {
                super::plan::claim(&tx, &claimed, lead).await?;
            }
            let mut placed = Placed {
                rooms: super::room_rows::write_first(&tx, &first_rows).await?,
                sessions: HashMap::new(),
            };
            // A first row another replica wrote first: the room is that replica's meeting, and
            // this meetingID will never exist, so it reserves nothing.
            for row in &first_rows {
                let key = (
                    row.event_id.clone(),
                    row.room_id.clone().unwrap_or_default(),
                );
                if placed
                    .rooms
                    .get(&key)
                    .is_none_or(|stored| stored.id != row.id)
                {
                    made.retain(|r| r.meeting_id != row.bbb_meeting_id);
                }
            }
            for session in &sessions {
                let (meeting, won) = super::claim(&tx, session).await?;
                if !won {
                    made.retain(|r| r.meeting_id != session.bbb_meeting_id);
                }
                placed
                    .sessions
                    .insert(session.meeting_id.clone(), (meeting, won));
            }
            if made.is_empty() {
                tx.commit().await?;
                return Ok(placed);
            }
            let rows = made.iter().map(|r| reservation::ActiveModel {
                meeting_id: Set(r.meeting_id.clone()),
                server_id: Set(r.server_id.clone()),
                at: Set(to_ms(r.at)),
                participants: Set(i32::try_from(r.participants).unwrap_or(i32::MAX)),
            });
            reservation::Entity::insert_many(rows)
                .on_conflict(
                    OnConflict::column(reservation::Column::MeetingId)
                        .update_columns([
                            reservation::Column::ServerId,
                            reservation::Column::At,
                            reservation::Column::Participants,
                        ])
                        .to_owned(),
                )
                .exec(&tx)
                .await?;
            tx.commit().await?;
            Ok(placed)
        })
        .await
    }

    /// Deletes the reservation of `meeting_id` on `server_id`, if it is still that one (a later
    /// placement of the meeting elsewhere replaced it, and stays).
    pub async fn withdraw_reservation(&self, meeting_id: &str, server_id: &str) -> Result<()> {
        self.guarded(async {
            reservation::Entity::delete_many()
                .filter(reservation::Column::MeetingId.eq(meeting_id))
                .filter(reservation::Column::ServerId.eq(server_id))
                .exec(&self.db)
                .await?;
            Ok(())
        })
        .await
    }

    /// Reservations younger than `max_age`, for replicas that only read.
    pub async fn reservations(&self, max_age: Duration) -> Result<Vec<Reservation>> {
        self.guarded(async {
            let oldest = now_ms() - max_age.as_millis() as i64;
            Ok(reservation::Entity::find()
                .filter(reservation::Column::At.gte(oldest))
                .all(&self.db)
                .await?
                .into_iter()
                .map(reservation_from_row)
                .collect())
        })
        .await
    }

    /// Writes the poller's view of the fleet for every replica to read.
    pub async fn write_polled(&self, servers: &[PolledServer]) -> Result<()> {
        self.guarded(async {
            let tx = self.write_tx().await?;
            for s in servers {
                let meetings = serde_json::to_string(&s.meetings)
                    .map_err(|e| StoreError(DbErr::Custom(e.to_string())))?;
                server_status::Entity::insert(server_status::ActiveModel {
                    server_id: Set(s.server_id.clone()),
                    health: Set(s.health.clone()),
                    health_reason: Set(s.health_reason.clone()),
                    polled_at: Set(s.polled_at.map_or(0, to_ms)),
                    meetings: Set(meetings),
                })
                .on_conflict(
                    OnConflict::column(server_status::Column::ServerId)
                        .update_columns([
                            server_status::Column::Health,
                            server_status::Column::HealthReason,
                            server_status::Column::PolledAt,
                            server_status::Column::Meetings,
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

    pub async fn read_polled(&self) -> Result<Vec<PolledServer>> {
        self.guarded(async {
            let rows = server_status::Entity::find().all(&self.db).await?;
            Ok(rows
                .into_iter()
                .map(|r| PolledServer {
                    meetings: serde_json::from_str(&r.meetings).unwrap_or_default(),
                    server_id: r.server_id,
                    health: r.health,
                    health_reason: r.health_reason,
                    polled_at: (r.polled_at > 0).then(|| to_time(r.polled_at)),
                })
                .collect())
        })
        .await
    }

    /// Takes or renews the lease `name` for `holder` until `ttl` from now. True when `holder`
    /// holds it: it was free, expired, or already its own.
    pub async fn acquire_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool> {
        self.guarded(async {
            let now = now_ms();
            let until = now + ttl.as_millis() as i64;
            let backend = self.db.get_database_backend();
            let sql = match backend {
                DbBackend::Postgres => {
                    "INSERT INTO leases (name, holder, until) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, until = EXCLUDED.until \
                     WHERE leases.until < $4 OR leases.holder = EXCLUDED.holder"
                }
                _ => {
                    "INSERT INTO leases (name, holder, until) VALUES (?, ?, ?) \
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until \
                     WHERE leases.until < ? OR leases.holder = excluded.holder"
                }
            };
            let result = self
                .db
                .execute_raw(Statement::from_sql_and_values(
                    backend,
                    sql,
                    [name.into(), holder.into(), until.into(), now.into()],
                ))
                .await?;
            Ok(result.rows_affected() > 0)
        })
        .await
    }

    /// Servers listed with their stored rows (including ones the registry skipped).
    pub async fn servers_with_origin(&self) -> Result<Vec<(Server, bool)>> {
        self.guarded(async {
            let rows = server::Entity::find().all(&self.db).await?;
            Ok(rows
                .into_iter()
                .filter_map(|r| {
                    let from_file = r.from_file;
                    server_from_row(r).map(|s| (s, from_file))
                })
                .collect())
        })
        .await
    }
}
