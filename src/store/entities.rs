//! The tables, as sea-orm entities. Times are epoch milliseconds; id lists are comma-joined
//! (ids never contain commas: see `api::validate`).

pub mod server {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "servers")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub url: String,
        pub secret: String,
        pub checksum: String,
        pub state: String,
        pub rooms_only: bool,
        pub events: String,
        pub organizers: String,
        pub weight: f64,
        pub max_meetings: i64,
        pub max_participants: i64,
        /// Listed in the servers file at the last start: leaving the file disables it.
        pub from_file: bool,
        /// Cordoned until empty, then disabled by the poller.
        pub draining: bool,
        /// A PEM file of CA certificates to trust for this server, or empty.
        pub ca_bundle: String,
        /// Skip TLS verification (the original's `disable_ssl`).
        pub insecure_tls: bool,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod meeting {
    use sea_orm::entity::prelude::*;

    /// A room's meeting (`room_id` set) or a private call (`room_id` null). Its BBB identity —
    /// meetingID and passwords — never changes, whichever server hosts it.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "meetings")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub event_id: String,
        pub organizer_id: String,
        pub room_id: Option<String>,
        pub bbb_meeting_id: String,
        pub attendee_pw: String,
        pub moderator_pw: String,
        pub server_id: String,
        pub created_at: i64,
        /// Taken over from the Python module: its recordings may sit on any server the event
        /// could use, since the original kept no hosting history.
        pub imported: bool,
        pub idempotency_key: Option<String>,
        /// Private calls: the last join (or the creation), from which a call expires.
        pub last_used_at: i64,
        /// When it was last placed on its server (created, or moved).
        pub placed_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod call_member {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "call_members")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub meeting_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub member_id: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod hosting {
    use sea_orm::entity::prelude::*;

    /// Every server that ever hosted a meeting: recordings stay on the server that made them.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "meeting_hosts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub meeting_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub server_id: String,
        pub first_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod audit {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_log")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub at: i64,
        pub actor: String,
        pub action: String,
        pub target: String,
        pub details: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod reservation {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "reservations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub meeting_id: String,
        pub server_id: String,
        pub at: i64,
        /// Participants the placement expects; 0: unknown.
        pub participants: i32,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod planned_session {
    use sea_orm::entity::prelude::*;

    /// A session of a kept schedule and the server its forecast gave it (empty: none).
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "planned_sessions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub event_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub room_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub start_at: i64,
        pub end_at: i64,
        pub participants: i32,
        pub server_id: String,
        /// When a placement took the session over; 0: not yet.
        pub claimed_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod server_status {
    use sea_orm::entity::prelude::*;

    /// The poller's last view of a server; `meetings` is JSON (see `store::PolledServer`).
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "server_status")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub server_id: String,
        pub health: String,
        pub health_reason: String,
        pub polled_at: i64,
        pub meetings: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod service_key {
    use sea_orm::entity::prelude::*;

    /// A key the service made for itself, shared by every replica through the database.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "service_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        pub value: String,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod meeting_end {
    use sea_orm::entity::prelude::*;

    /// A meeting end BBB reported through a genuine end callback.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "meeting_ends")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub server_id: String,
        pub meeting_id: String,
        pub nonce: String,
        /// When the create that carried the callback URL was sent.
        pub created_at: i64,
        /// When the callback arrived.
        pub ended_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
