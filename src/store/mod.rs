//! Persistence: servers, meetings, call members and hosting history, through sea-orm on SQLite
//! (default) or PostgreSQL. Nothing above this module sees SQL or sea-orm types.

pub mod ends;
mod entities;
mod import;
mod migrations;
mod plan;
mod room_rows;
mod shared;
mod stays;

pub use import::{ImportPlan, ImportReport};
pub use plan::Planned;
pub use room_rows::RoomRows;
pub use shared::{
    Audit, AuditEntry, Decided, Placed, PlacementView, PolledMeeting, PolledServer, Put,
    Reservation,
};

use crate::{
    domain::{Meeting, Server, ServerState},
    secret::Secret,
};
use entities::{call_member, hosting, meeting, server};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection,
    DatabaseTransaction, DbErr, EntityTrait, QueryFilter, QuerySelect, SqliteTransactionMode,
    TransactionOptions, TransactionTrait, sea_query::OnConflict,
};
use sea_orm_migration::MigratorTrait;
use std::{collections::HashMap, sync::Arc, time::Duration};
use tokio::sync::watch;

/// The database could not be reached or refused the statement. Callers answer UNAVAILABLE:
/// the details go to the log, never to a client.
#[derive(Debug, thiserror::Error)]
#[error("database unavailable")]
pub struct StoreError(#[source] pub DbErr);

impl From<DbErr> for StoreError {
    fn from(err: DbErr) -> Self {
        Self(err)
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Every PostgreSQL session's limits (see `Store::connect_with_pool`). The placement lock is
/// held for milliseconds, so 5 s of waiting for it means its holder is stuck; the keepalives
/// find a dead peer within about a minute, and the idle-in-transaction timeout ends its
/// session sooner.
const POSTGRES_SESSION: [(&str, &str); 6] = [
    ("lock_timeout", "5s"),
    ("statement_timeout", "15s"),
    ("idle_in_transaction_session_timeout", "10s"),
    ("tcp_keepalives_idle", "30"),
    ("tcp_keepalives_interval", "10"),
    ("tcp_keepalives_count", "3"),
];

/// The advisory lock key that serialises migrations across replicas ("bbb-migr" in ASCII).
const MIGRATION_LOCK: i64 = 0x6262_622d_6d69_6772;

#[derive(Clone)]
pub struct Store {
    pub(crate) db: DatabaseConnection,
    health: DatabaseConnection,
    /// Cleared when a health ping fails: calls then fail at once instead of each waiting for a
    /// connection that will not come, and pass again as soon as a ping succeeds.
    up: Arc<watch::Sender<bool>>,
    /// Lookups of rooms' meetings waiting for their round (see `room_rows`).
    lookups: Arc<room_rows::Lookups>,
    /// Claims to stay waiting for their round (see `stays`).
    stays: Arc<stays::Stays>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

fn split_ids(joined: &str) -> Vec<String> {
    joined
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Store {
    /// Connects to `url` (`sqlite://path?mode=rwc`, `sqlite::memory:`, `postgres://…`) with
    /// the default pool size.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with_pool(url, None).await
    }

    /// Connects with at most `pool` connections for calls (`None`: 8 on SQLite, 16 on
    /// PostgreSQL), plus one for health pings.
    ///
    /// SQLite runs in WAL mode so readers never wait for the writer. PostgreSQL sessions wait
    /// bounded times (`POSTGRES_SESSION`): a lock (the placement lock, a row) 5 s, a statement
    /// 15 s; and the server ends a session left idle inside a transaction, and
    /// notices a peer that vanished, so a replica whose node died mid-transaction releases its
    /// locks in seconds rather than when TCP gives up hours later.
    pub async fn connect_with_pool(url: &str, pool: Option<u32>) -> Result<Self> {
        let in_memory = url.contains(":memory:");
        let options = |connections: u32| {
            let mut options = ConnectOptions::new(url.to_owned());
            // Waiting for a connection is normal in a burst; an outage is caught by `up`.
            options
                .connect_timeout(Duration::from_secs(3))
                .acquire_timeout(Duration::from_secs(5))
                .sqlx_logging(false);
            if !in_memory {
                options.max_connections(connections).min_connections(1);
            }
            // Per connection: WAL so readers never wait for the writer, and a busy timeout so
            // concurrent writers queue instead of failing.
            options.map_sqlx_sqlite_opts(|o| {
                use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
                o.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(5))
            });
            options.map_sqlx_postgres_opts(|o| o.options(POSTGRES_SESSION));
            options
        };
        let sqlite = url.starts_with("sqlite:");
        let size = pool.unwrap_or(if sqlite { 8 } else { 16 }).max(1);
        let db = Database::connect(options(size)).await?;
        // Health pings get a connection of their own, so a busy pool never reads as an outage.
        // (An in-memory SQLite database exists per connection: it shares the main pool.)
        let health = if in_memory {
            db.clone()
        } else {
            Database::connect(options(1)).await?
        };
        Ok(Self {
            db,
            health,
            up: Arc::new(watch::Sender::new(true)),
            lookups: Arc::default(),
            stays: Arc::default(),
        })
    }

    /// Begins a transaction that writes. On SQLite it takes the write lock at once (BEGIN
    /// IMMEDIATE): a deferred transaction that reads first cannot upgrade once another
    /// connection has written, and fails with "database is locked" whatever the busy timeout;
    /// taking the lock first makes it wait its turn instead. PostgreSQL ignores the mode.
    pub(crate) async fn write_tx(&self) -> std::result::Result<DatabaseTransaction, DbErr> {
        self.db
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..TransactionOptions::default()
            })
            .await
    }

    /// Runs `work` unless the database is known to be down, and gives up on it as soon as it
    /// is: calls fail at once during an outage instead of each waiting for a connection.
    pub(crate) async fn guarded<T>(&self, work: impl Future<Output = Result<T>>) -> Result<T> {
        let down = || {
            StoreError(DbErr::Custom(
                "database marked down by the last health ping".into(),
            ))
        };
        let mut up = self.up.subscribe();
        if !*up.borrow_and_update() {
            return Err(down());
        }
        tokio::select! {
            result = work => result,
            _ = up.wait_for(|up| !up) => Err(down()),
        }
    }

    /// Applies pending migrations. On PostgreSQL several replicas may start at once: the
    /// first takes an advisory lock and migrates, the others wait for it and find nothing left
    /// to do. (sea-orm-migration takes no lock of its own.)
    pub async fn migrate(&self) -> Result<()> {
        if self.db.get_database_backend() == sea_orm::DbBackend::Postgres {
            let tx = self.write_tx().await?;
            // Another replica may be migrating a large table: wait for it as long as it takes
            // (a dead one's session is ended by the idle-in-transaction timeout).
            tx.execute_unprepared("SET LOCAL lock_timeout = 0; SET LOCAL statement_timeout = 0")
                .await?;
            tx.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
                .await?;
            migrations::Migrator::up(&tx, None).await?;
            tx.commit().await?;
        } else {
            migrations::Migrator::up(&self.db, None).await?;
        }
        Ok(())
    }

    /// A cheap round trip, for readiness. Its outcome also opens or closes the way for every
    /// other call (see `up`).
    pub async fn ping(&self, timeout: Duration) -> bool {
        let up = tokio::time::timeout(timeout, self.health.ping())
            .await
            .is_ok_and(|r| r.is_ok());
        self.up
            .send_if_modified(|was| std::mem::replace(was, up) != up);
        up
    }

    pub async fn servers(&self) -> Result<Vec<Server>> {
        self.guarded(async {
            let rows = server::Entity::find().all(&self.db).await?;
            Ok(rows.into_iter().filter_map(server_from_row).collect())
        })
        .await
    }

    /// Makes the servers file the truth for every server it lists, and disables (never
    /// deletes: their history keeps recordings findable) servers that left it.
    pub async fn sync_file_servers(&self, listed: &[Server]) -> Result<()> {
        self.guarded(async {
            let now = now_ms();
            let tx = self.write_tx().await?;
            for s in listed {
                let row = server_row(s, s.secret.expose().to_owned(), None, true);
                server::Entity::insert(row)
                    .on_conflict(
                        OnConflict::column(server::Column::Id)
                            .update_columns([
                                server::Column::Url,
                                server::Column::Secret,
                                server::Column::Checksum,
                                server::Column::State,
                                server::Column::RoomsOnly,
                                server::Column::Events,
                                server::Column::Organizers,
                                server::Column::Weight,
                                server::Column::MaxMeetings,
                                server::Column::MaxParticipants,
                                server::Column::FromFile,
                                server::Column::Draining,
                                server::Column::CaBundle,
                                server::Column::InsecureTls,
                                server::Column::UpdatedAt,
                            ])
                            .to_owned(),
                    )
                    .exec(&tx)
                    .await?;
            }
            let ids: Vec<&str> = listed.iter().map(|s| s.id.as_str()).collect();
            server::Entity::update_many()
                .col_expr(
                    server::Column::State,
                    sea_orm::sea_query::Expr::value(ServerState::Disabled.name()),
                )
                .col_expr(
                    server::Column::FromFile,
                    sea_orm::sea_query::Expr::value(false),
                )
                .col_expr(
                    server::Column::UpdatedAt,
                    sea_orm::sea_query::Expr::value(now),
                )
                .filter(server::Column::FromFile.eq(true))
                .filter(server::Column::Id.is_not_in(ids))
                .exec(&tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// The call of `event_id` recorded with idempotency key `key`, if any.
    pub async fn call_with_key(&self, event_id: &str, key: &str) -> Result<Option<String>> {
        self.guarded(async {
            Ok(meeting::Entity::find()
                .select_only()
                .column(meeting::Column::Id)
                .filter(meeting::Column::EventId.eq(event_id))
                .filter(meeting::Column::IdempotencyKey.eq(key))
                .into_tuple::<String>()
                .one(&self.db)
                .await?)
        })
        .await
    }

    /// Records a private call with its members, all or nothing.
    /// With an idempotency key already used in the event, nothing is written and the earlier
    /// call's id is returned; otherwise the new call's.
    pub async fn insert_call(
        &self,
        call: &Meeting,
        members: &[String],
        idempotency_key: Option<&str>,
    ) -> Result<String> {
        self.guarded(async {
            let tx = self.write_tx().await?;
            let earlier = |key: &str| {
                meeting::Entity::find()
                    .select_only()
                    .column(meeting::Column::Id)
                    .filter(meeting::Column::EventId.eq(&call.event_id))
                    .filter(meeting::Column::IdempotencyKey.eq(key))
                    .into_tuple::<String>()
            };
            if let Some(key) = idempotency_key
                && let Some(id) = earlier(key).one(&tx).await?
            {
                return Ok(id);
            }
            let mut row = meeting_row(call);
            row.idempotency_key = Set(idempotency_key.map(str::to_owned));
            // On PostgreSQL two requests with one key may both find no call and both insert:
            // the second waits for the first to commit, inserts nothing, and answers with the
            // first's call. (SQLite's write lock lets only one look at a time.)
            let inserted = meeting::Entity::insert(row)
                .on_conflict(
                    OnConflict::columns([
                        meeting::Column::EventId,
                        meeting::Column::IdempotencyKey,
                    ])
                    .do_nothing()
                    .to_owned(),
                )
                .exec_without_returning(&tx)
                .await;
            let inserted = match inserted {
                Ok(rows) => rows > 0,
                Err(DbErr::RecordNotInserted) => false,
                Err(err) => return Err(err.into()),
            };
            if !inserted {
                let id = match idempotency_key {
                    Some(key) => earlier(key).one(&tx).await?,
                    None => None,
                };
                return id.ok_or_else(|| DbErr::RecordNotInserted.into());
            }
            let rows = members.iter().map(|m| call_member::ActiveModel {
                meeting_id: Set(call.id.clone()),
                member_id: Set(m.clone()),
            });
            call_member::Entity::insert_many(rows)
                .on_conflict_do_nothing()
                .exec(&tx)
                .await?;
            insert_host(&tx, &call.id, &call.server_id).await?;
            tx.commit().await?;
            Ok(call.id.clone())
        })
        .await
    }

    /// Removes a user from every call's invitees. Returns how many calls they were in.
    pub async fn forget_member(&self, member_id: &str) -> Result<u64> {
        self.guarded(async {
            let deleted = call_member::Entity::delete_many()
                .filter(call_member::Column::MemberId.eq(member_id))
                .exec(&self.db)
                .await?;
            Ok(deleted.rows_affected)
        })
        .await
    }

    /// Every meeting (rooms and calls) of an event.
    pub async fn event_meetings(&self, event_id: &str) -> Result<Vec<Meeting>> {
        self.guarded(async {
            let rows = meeting::Entity::find()
                .filter(meeting::Column::EventId.eq(event_id))
                .all(&self.db)
                .await?;
            Ok(rows.into_iter().map(meeting_from_row).collect())
        })
        .await
    }

    /// Deletes an event's meetings, with their invitees and hosting history.
    pub async fn delete_event(&self, event_id: &str) -> Result<u64> {
        self.delete_meetings(meeting::Column::EventId.eq(event_id), Some(event_id))
            .await
    }

    /// Deletes private calls last used (joined, or else created) before `max_age` ago.
    /// Returns how many.
    pub async fn expire_calls(&self, max_age: Duration) -> Result<u64> {
        let oldest = now_ms() - max_age.as_millis() as i64;
        self.delete_meetings(
            sea_orm::sea_query::ExprTrait::and(
                meeting::Column::RoomId.is_null(),
                meeting::Column::LastUsedAt.lt(oldest),
            ),
            None,
        )
        .await
    }

    /// Deletes the meetings matching `which`, with their invitees and hosting history, in one
    /// transaction, and the plan of `event`. Explicitly rather than by cascade: SQLite enforces
    /// foreign keys only on connections that asked for it.
    async fn delete_meetings(
        &self,
        which: sea_orm::sea_query::Expr,
        event: Option<&str>,
    ) -> Result<u64> {
        self.guarded(async {
            let tx = self.write_tx().await?;
            let ids: Vec<String> = meeting::Entity::find()
                .select_only()
                .column(meeting::Column::Id)
                .filter(which)
                .into_tuple()
                .all(&tx)
                .await?;
            let mut deleted = 0;
            // In chunks: a statement may bind only so many parameters (SQLite 32,766,
            // PostgreSQL 65,535), and an event or years of calls can have more meetings.
            for chunk in ids.chunks(DELETE_CHUNK) {
                call_member::Entity::delete_many()
                    .filter(call_member::Column::MeetingId.is_in(chunk.iter().cloned()))
                    .exec(&tx)
                    .await?;
                hosting::Entity::delete_many()
                    .filter(hosting::Column::MeetingId.is_in(chunk.iter().cloned()))
                    .exec(&tx)
                    .await?;
                deleted += meeting::Entity::delete_many()
                    .filter(meeting::Column::Id.is_in(chunk.iter().cloned()))
                    .exec(&tx)
                    .await?
                    .rows_affected;
            }
            if let Some(event_id) = event {
                entities::planned_session::Entity::delete_many()
                    .filter(entities::planned_session::Column::EventId.eq(event_id))
                    .exec(&tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(deleted)
        })
        .await
    }

    /// The call, if it exists, belongs to `event_id` and `member_id` was invited, marked as used
    /// now. Every other case is the same `None`, so callers cannot tell them apart.
    pub async fn use_call(
        &self,
        event_id: &str,
        call_id: &str,
        member_id: &str,
    ) -> Result<Option<Meeting>> {
        self.guarded(async {
            let invited =
                call_member::Entity::find_by_id((call_id.to_owned(), member_id.to_owned()))
                    .select_only()
                    .column(call_member::Column::MeetingId)
                    .into_tuple::<String>()
                    .one(&self.db)
                    .await?
                    .is_some();
            if !invited {
                return Ok(None);
            }
            let row = meeting::Entity::find_by_id(call_id.to_owned())
                .filter(meeting::Column::EventId.eq(event_id))
                .filter(meeting::Column::RoomId.is_null())
                .one(&self.db)
                .await?;
            let Some(row) = row else { return Ok(None) };
            // A write only when the recorded use is stale: joins mostly just read.
            let now = now_ms();
            if now - row.last_used_at > CALL_USE_RESOLUTION_MS {
                meeting::Entity::update_many()
                    .col_expr(
                        meeting::Column::LastUsedAt,
                        sea_orm::sea_query::Expr::value(now),
                    )
                    .filter(meeting::Column::Id.eq(call_id))
                    .exec(&self.db)
                    .await?;
            }
            Ok(Some(meeting_from_row(row)))
        })
        .await
    }

    /// Moves a meeting from `from` to `to` (same identity) and remembers the new host —
    /// unless someone moved it first, in which case their move stands. Returns the meeting as
    /// stored afterwards. An operator's move is audited with the move, and only if it happened.
    pub async fn repin(
        &self,
        meeting_id: &str,
        from: &str,
        to: &str,
        audit: Option<Audit<'_>>,
    ) -> Result<Meeting> {
        self.guarded(async {
            let tx = self.write_tx().await?;
            let moved = meeting::Entity::update_many()
                .col_expr(
                    meeting::Column::ServerId,
                    sea_orm::sea_query::Expr::value(to),
                )
                .col_expr(
                    meeting::Column::PlacedAt,
                    sea_orm::sea_query::Expr::value(now_ms()),
                )
                .filter(meeting::Column::Id.eq(meeting_id))
                .filter(meeting::Column::ServerId.eq(from))
                .exec(&tx)
                .await?;
            if moved.rows_affected > 0 {
                insert_host(&tx, meeting_id, to).await?;
                if let Some(audit) = &audit {
                    shared::record(&tx, audit).await?;
                }
            }
            let row = meeting::Entity::find_by_id(meeting_id.to_owned())
                .one(&tx)
                .await?
                .ok_or_else(|| DbErr::RecordNotFound("moved meeting vanished".into()))?;
            tx.commit().await?;
            Ok(meeting_from_row(row))
        })
        .await
    }

    /// Every server that ever hosted the meeting.
    pub async fn hosts(&self, meeting_id: &str) -> Result<Vec<String>> {
        self.guarded(async {
            Ok(hosting::Entity::find()
                .select_only()
                .column(hosting::Column::ServerId)
                .filter(hosting::Column::MeetingId.eq(meeting_id))
                .into_tuple::<String>()
                .all(&self.db)
                .await?)
        })
        .await
    }

    /// How many rooms of `event_id` each server hosts.
    pub async fn event_rooms_per_server(&self, event_id: &str) -> Result<HashMap<String, u64>> {
        self.guarded(async { Ok(event_rooms(&self.db, event_id, &[]).await?) })
            .await
    }
}

/// How many rooms of `event_id` each server hosts, leaving out the meetings `leaving_out`
/// (BBB meetingIDs: rooms being placed anew).
pub(crate) async fn event_rooms(
    db: &impl ConnectionTrait,
    event_id: &str,
    leaving_out: &[String],
) -> std::result::Result<HashMap<String, u64>, DbErr> {
    let mut query = meeting::Entity::find()
        .select_only()
        .column(meeting::Column::ServerId)
        .column_as(meeting::Column::Id.count(), "rooms")
        .filter(meeting::Column::EventId.eq(event_id))
        .filter(meeting::Column::RoomId.is_not_null());
    if !leaving_out.is_empty() {
        query = query.filter(meeting::Column::BbbMeetingId.is_not_in(leaving_out.iter().cloned()));
    }
    let rows: Vec<(String, i64)> = query
        .group_by(meeting::Column::ServerId)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(server, n)| (server, n.max(0).unsigned_abs()))
        .collect())
}

/// A room's new session claimed for a server (see `claim`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionClaim {
    /// The meeting's row id.
    pub meeting_id: String,
    /// Its BBB meetingID (what its reservation is recorded by).
    pub bbb_meeting_id: String,
    /// Its server when the placement read it, and when it was placed there.
    pub from: String,
    pub placed_at: i64,
    /// The server placement chose; may be `from`.
    pub to: String,
}

/// Claims a meeting for `c.to`, as a placement decides it (a new session, a move; staying is one
/// too): only if it is still on `c.from` and nobody claimed it since `c.placed_at`, so of two
/// deciding one meeting at once exactly one wins. (Claims to stay before and after a create
/// are `stays`'s.) The claim's time never goes back, whatever the claimer's clock says, so every
/// claim supersedes the ones before it. Returns the meeting as stored (with the claim that
/// stands) and whether this claim won.
pub(crate) async fn claim(
    db: &impl ConnectionTrait,
    c: &SessionClaim,
) -> std::result::Result<(Meeting, bool), DbErr> {
    let claimed = meeting::Entity::update_many()
        .col_expr(
            meeting::Column::ServerId,
            sea_orm::sea_query::Expr::value(c.to.as_str()),
        )
        .col_expr(
            meeting::Column::PlacedAt,
            sea_orm::sea_query::Expr::value(now_ms().max(c.placed_at + 1)),
        )
        .filter(meeting::Column::Id.eq(c.meeting_id.as_str()))
        .filter(meeting::Column::ServerId.eq(c.from.as_str()))
        .filter(meeting::Column::PlacedAt.lte(c.placed_at))
        .exec(db)
        .await?
        .rows_affected
        > 0;
    if claimed && c.from != c.to {
        insert_host(db, &c.meeting_id, &c.to)
            .await
            .map_err(|e| e.0)?;
    }
    let row = meeting::Entity::find_by_id(c.meeting_id.clone())
        .one(db)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("claimed meeting vanished".into()))?;
    Ok((meeting_from_row(row), claimed))
}

pub(crate) async fn insert_host<C: ConnectionTrait>(
    db: &C,
    meeting_id: &str,
    server_id: &str,
) -> Result<()> {
    hosting::Entity::insert(hosting::ActiveModel {
        meeting_id: Set(meeting_id.to_owned()),
        server_id: Set(server_id.to_owned()),
        first_at: Set(now_ms()),
    })
    .on_conflict_do_nothing()
    .exec(db)
    .await?;
    Ok(())
}

/// A server's row: `secret` as it is to be stored (callers decide whether a new one replaces
/// the old), `existing` the row it replaces, if any (its origin and creation time stay).
pub(crate) fn server_row(
    s: &Server,
    secret: String,
    existing: Option<&server::Model>,
    from_file: bool,
) -> server::ActiveModel {
    let now = now_ms();
    server::ActiveModel {
        id: Set(s.id.clone()),
        url: Set(s.url.clone()),
        secret: Set(secret),
        checksum: Set(s.checksum.name().to_owned()),
        state: Set(s.state.name().to_owned()),
        rooms_only: Set(s.rooms_only),
        events: Set(s.events.join(",")),
        organizers: Set(s.organizers.join(",")),
        weight: Set(s.weight),
        max_meetings: Set(s.max_meetings.into()),
        max_participants: Set(s.max_participants.into()),
        from_file: Set(from_file),
        draining: Set(false),
        ca_bundle: Set(s.ca_bundle.clone()),
        insecure_tls: Set(s.insecure_tls),
        created_at: Set(existing.map_or(now, |o| o.created_at)),
        updated_at: Set(now),
    }
}

/// Meetings deleted per statement.
const DELETE_CHUNK: usize = 1_000;

/// How stale a call's recorded last use may be (expiry counts in days, not seconds).
const CALL_USE_RESOLUTION_MS: i64 = 1_000;

pub(crate) fn meeting_row(m: &Meeting) -> meeting::ActiveModel {
    // A new meeting's claim is what its maker stamped (a claim must find it unchanged, and a
    // row reads its claim as the later of its placement and its creation).
    let now = if m.claimed_at > 0 {
        m.claimed_at
    } else {
        now_ms()
    };
    meeting::ActiveModel {
        id: Set(m.id.clone()),
        event_id: Set(m.event_id.clone()),
        organizer_id: Set(m.organizer_id.clone()),
        room_id: Set(m.room_id.clone()),
        bbb_meeting_id: Set(m.bbb_meeting_id.clone()),
        attendee_pw: Set(m.attendee_pw.clone()),
        moderator_pw: Set(m.moderator_pw.clone()),
        server_id: Set(m.server_id.clone()),
        created_at: Set(now),
        imported: Set(m.imported),
        idempotency_key: Set(None),
        last_used_at: Set(now),
        placed_at: Set(now),
    }
}

fn meeting_from_row(row: meeting::Model) -> Meeting {
    Meeting {
        id: row.id,
        event_id: row.event_id,
        organizer_id: row.organizer_id,
        room_id: row.room_id,
        bbb_meeting_id: row.bbb_meeting_id,
        attendee_pw: row.attendee_pw,
        moderator_pw: row.moderator_pw,
        server_id: row.server_id,
        imported: row.imported,
        claimed_at: row.placed_at.max(row.created_at),
    }
}

/// Rows the code cannot read (edited by hand into nonsense) are skipped with a warning rather
/// than taking the whole fleet down.
pub(crate) fn server_from_row(row: server::Model) -> Option<Server> {
    let checksum = row.checksum.parse().ok();
    let state = row.state.parse().ok();
    let (Some(checksum), Some(state)) = (checksum, state) else {
        tracing::warn!(server = %row.id, "skipping a server row with an unknown checksum or state");
        return None;
    };
    Some(Server {
        checksum,
        state,
        rooms_only: row.rooms_only,
        events: split_ids(&row.events),
        organizers: split_ids(&row.organizers),
        weight: row.weight,
        max_meetings: row.max_meetings.clamp(0, u32::MAX.into()) as u32,
        max_participants: row.max_participants.clamp(0, u32::MAX.into()) as u32,
        draining: row.draining,
        ca_bundle: row.ca_bundle,
        insecure_tls: row.insecure_tls,
        secret: Secret::new(row.secret),
        url: row.url,
        id: row.id,
    })
}
