//! Schema migrations, written once for SQLite and PostgreSQL alike.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(Initial),
            Box::new(Fleet),
            Box::new(Lifecycle),
            Box::new(CallUse),
            Box::new(HealthReason),
            Box::new(SessionPlacement),
            Box::new(Plans),
            Box::new(EndCallbacks),
        ]
    }
}

struct Initial;

impl MigrationName for Initial {
    fn name(&self) -> &str {
        "m0001_initial"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Initial {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("servers")
                    .col(string_len("id", 128).primary_key())
                    .col(text("url"))
                    .col(text("secret"))
                    .col(string_len("checksum", 16))
                    .col(string_len("state", 16))
                    .col(boolean("rooms_only"))
                    .col(text("events"))
                    .col(text("organizers"))
                    .col(double("weight"))
                    .col(big_integer("max_meetings"))
                    .col(big_integer("max_participants"))
                    .col(boolean("from_file"))
                    .col(big_integer("created_at"))
                    .col(big_integer("updated_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("meetings")
                    .col(string_len("id", 64).primary_key())
                    .col(string_len("event_id", 128))
                    .col(string_len("organizer_id", 128))
                    .col(string_len_null("room_id", 128))
                    .col(string_len_uniq("bbb_meeting_id", 64))
                    .col(string_len("attendee_pw", 64))
                    .col(string_len("moderator_pw", 64))
                    .col(string_len("server_id", 128))
                    .col(big_integer("created_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("meetings", "server_id")
                            .to("servers", "id")
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        // One meeting per room. Calls have no room, and NULLs never collide.
        manager
            .create_index(
                Index::create()
                    .name("meetings_room")
                    .table("meetings")
                    .col("event_id")
                    .col("room_id")
                    .unique()
                    .to_owned(),
            )
            .await?;
        // Placement spreads an event's rooms: it counts them per server.
        manager
            .create_index(
                Index::create()
                    .name("meetings_server")
                    .table("meetings")
                    .col("server_id")
                    .col("event_id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("call_members")
                    .col(string_len("meeting_id", 64))
                    .col(string_len("member_id", 128))
                    .primary_key(Index::create().col("meeting_id").col("member_id"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("call_members", "meeting_id")
                            .to("meetings", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("meeting_hosts")
                    .col(string_len("meeting_id", 64))
                    .col(string_len("server_id", 128))
                    .col(big_integer("first_at"))
                    .primary_key(Index::create().col("meeting_id").col("server_id"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("meeting_hosts", "meeting_id")
                            .to("meetings", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}

/// What several replicas share about the fleet: drains, the audit log, placement reservations,
/// the poller's last view of every server, and the lease that elects the one poller.
struct Fleet;

impl MigrationName for Fleet {
    fn name(&self) -> &str {
        "m0002_fleet"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Fleet {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("servers")
                    .add_column(boolean("draining").default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("audit_log")
                    .col(big_pk_auto("id"))
                    .col(big_integer("at"))
                    .col(string_len("actor", 128))
                    .col(string_len("action", 64))
                    .col(string_len("target", 256))
                    .col(text("details"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("reservations")
                    .col(string_len("meeting_id", 64).primary_key())
                    .col(string_len("server_id", 128))
                    .col(big_integer("at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("server_status")
                    .col(string_len("server_id", 128).primary_key())
                    .col(string_len("health", 16))
                    .col(big_integer("polled_at"))
                    .col(text("meetings"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("leases")
                    .col(string_len("name", 64).primary_key())
                    .col(string_len("holder", 64))
                    .col(big_integer("until"))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}

/// What taking over from the Python module and the data's lifecycle need: imported meetings
/// (whose recordings may sit on any server the event could use), idempotent call creation,
/// and per-server TLS settings.
struct Lifecycle;

impl MigrationName for Lifecycle {
    fn name(&self) -> &str {
        "m0003_lifecycle"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Lifecycle {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("meetings")
                    .add_column(boolean("imported").default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("meetings")
                    .add_column(string_len_null("idempotency_key", 128))
                    .to_owned(),
            )
            .await?;
        // A retried CreateCall with the same key finds the call the first one made.
        manager
            .create_index(
                Index::create()
                    .name("meetings_idempotency")
                    .table("meetings")
                    .col("event_id")
                    .col("idempotency_key")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("servers")
                    .add_column(text("ca_bundle").default(""))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("servers")
                    .add_column(boolean("insecure_tls").default(false))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}

/// Private calls expire by their last use, not by their age: a call message in a conversation
/// keeps working as long as its members keep joining.
struct CallUse;

impl MigrationName for CallUse {
    fn name(&self) -> &str {
        "m0004_call_use"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CallUse {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("meetings")
                    .add_column(big_integer("last_used_at").default(0))
                    .to_owned(),
            )
            .await?;
        // Until its next join, a call counts as last used when it was created.
        let update = Query::update()
            .table("meetings")
            .value("last_used_at", Expr::col("created_at"))
            .to_owned();
        manager.exec_stmt(update).await?;
        Ok(())
    }
}

/// Servers can be misconfigured (they answer but refuse us), and every replica shows why a
/// server is not healthy.
struct HealthReason;

impl MigrationName for HealthReason {
    fn name(&self) -> &str {
        "m0005_health_reason"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for HealthReason {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("server_status")
                    .add_column(text("health_reason").default(""))
                    .to_owned(),
            )
            .await
    }
}

/// Sessions are placed: a room is placed anew when a session starts, but a meeting just placed
/// (its create may not have reached its server yet) is not moved again; and a placement
/// reserves load for the participants it expects.
struct SessionPlacement;

impl MigrationName for SessionPlacement {
    fn name(&self) -> &str {
        "m0006_session_placement"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for SessionPlacement {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("reservations")
                    .add_column(integer("participants").default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("meetings")
                    .add_column(big_integer("placed_at").default(0))
                    .to_owned(),
            )
            .await?;
        let update = Query::update()
            .table("meetings")
            .value("placed_at", Expr::col("created_at"))
            .to_owned();
        manager.exec_stmt(update).await?;
        Ok(())
    }
}

/// Kept schedules: each planned session, where its forecast placed it.
struct Plans;

impl MigrationName for Plans {
    fn name(&self) -> &str {
        "m0007_plans"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Plans {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("planned_sessions")
                    .col(string_len("event_id", 128))
                    .col(string_len("room_id", 128))
                    .col(big_integer("start_at"))
                    .col(big_integer("end_at"))
                    .col(integer("participants"))
                    // Empty: the forecast found no server for it.
                    .col(string_len("server_id", 128))
                    // When a placement took the session over from its planned reservation;
                    // 0: not yet.
                    .col(big_integer("claimed_at").default(0))
                    .primary_key(
                        Index::create()
                            .col("event_id")
                            .col("room_id")
                            .col("start_at"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("planned_sessions_end")
                    .table("planned_sessions")
                    .col("end_at")
                    .to_owned(),
            )
            .await
    }
}

/// BBB's end callbacks: the key that signs their URLs, shared by every replica, and the ends
/// they reported, which every replica applies to its view and which also stop a replayed URL.
struct EndCallbacks;

impl MigrationName for EndCallbacks {
    fn name(&self) -> &str {
        "m0008_end_callbacks"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for EndCallbacks {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("service_keys")
                    .col(string_len("name", 64).primary_key())
                    .col(text("value"))
                    .col(big_integer("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("meeting_ends")
                    .col(big_pk_auto("id"))
                    .col(string_len("server_id", 128))
                    .col(string_len("meeting_id", 256))
                    .col(string_len("nonce", 32))
                    // When the create whose callback this is was sent; signed into its URL.
                    .col(big_integer("created_at"))
                    // When the callback arrived.
                    .col(big_integer("ended_at"))
                    .to_owned(),
            )
            .await?;
        // One row per callback URL: a replayed URL finds its row and changes nothing.
        manager
            .create_index(
                Index::create()
                    .name("meeting_ends_url")
                    .table("meeting_ends")
                    .col("server_id")
                    .col("meeting_id")
                    .col("nonce")
                    .unique()
                    .to_owned(),
            )
            .await?;
        for column in ["ended_at", "created_at"] {
            manager
                .create_index(
                    Index::create()
                        .name(format!("meeting_ends_{column}"))
                        .table("meeting_ends")
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
