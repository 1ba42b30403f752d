//! Taking over what the Python module knew, in one transaction: all of it or nothing.

use super::{
    Meeting, Result, Server, Store,
    entities::{call_member, meeting, server},
    insert_host, meeting_row, server_from_row, server_row,
};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

/// A checked import, ready to write.
#[derive(Debug, Clone, Default)]
pub struct ImportPlan {
    pub servers: Vec<Server>,
    pub rooms: Vec<Meeting>,
    /// Calls with their invitees.
    pub calls: Vec<(Meeting, Vec<String>)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub servers_added: u64,
    pub servers_updated: u64,
    pub servers_unchanged: u64,
    pub rooms_imported: u64,
    /// Rooms that already had a meeting here: theirs is kept.
    pub rooms_kept: u64,
    pub calls_imported: u64,
    pub calls_kept: u64,
    pub invitees_added: u64,
}

impl Store {
    /// Writes an import. Running it again changes nothing: servers are compared field by
    /// field, and rooms and calls that exist already are kept as they are (only invitees
    /// missing from a call are added).
    /// The audit entry (naming `source`, the export file) is part of the same transaction.
    pub async fn import(&self, plan: &ImportPlan, source: &str) -> Result<ImportReport> {
        self.guarded(async {
            let mut report = ImportReport::default();
            let tx = self.write_tx().await?;
            for s in &plan.servers {
                let existing = server::Entity::find_by_id(s.id.clone()).one(&tx).await?;
                let same = existing
                    .clone()
                    .and_then(server_from_row)
                    .is_some_and(|old| old == *s);
                if same {
                    report.servers_unchanged += 1;
                    continue;
                }
                let from_file = existing.as_ref().is_some_and(|o| o.from_file);
                let row = server_row(
                    s,
                    s.secret.expose().to_owned(),
                    existing.as_ref(),
                    from_file,
                );
                if existing.is_some() {
                    server::Entity::update(row).exec(&tx).await?;
                    report.servers_updated += 1;
                } else {
                    server::Entity::insert(row).exec(&tx).await?;
                    report.servers_added += 1;
                }
            }
            for room in &plan.rooms {
                let inserted = meeting::Entity::insert(meeting_row(room))
                    .on_conflict_do_nothing_on([meeting::Column::EventId, meeting::Column::RoomId])
                    .exec(&tx)
                    .await?;
                if matches!(inserted, sea_orm::TryInsertResult::Inserted(_)) {
                    insert_host(&tx, &room.id, &room.server_id).await?;
                    report.rooms_imported += 1;
                } else {
                    report.rooms_kept += 1;
                }
            }
            for (call, invitees) in &plan.calls {
                let exists = meeting::Entity::find_by_id(call.id.clone())
                    .one(&tx)
                    .await?
                    .is_some();
                if exists {
                    report.calls_kept += 1;
                } else {
                    meeting::Entity::insert(meeting_row(call)).exec(&tx).await?;
                    insert_host(&tx, &call.id, &call.server_id).await?;
                    report.calls_imported += 1;
                }
                let before = call_member::Entity::find()
                    .filter(call_member::Column::MeetingId.eq(&call.id))
                    .all(&tx)
                    .await?
                    .len();
                let rows = invitees.iter().map(|m| call_member::ActiveModel {
                    meeting_id: Set(call.id.clone()),
                    member_id: Set(m.clone()),
                });
                call_member::Entity::insert_many(rows)
                    .on_conflict_do_nothing()
                    .exec(&tx)
                    .await?;
                let after = call_member::Entity::find()
                    .filter(call_member::Column::MeetingId.eq(&call.id))
                    .all(&tx)
                    .await?
                    .len();
                report.invitees_added += (after - before) as u64;
            }
            let audit = super::Audit {
                actor: "import",
                action: "import",
                target: source,
                details: format!("{report:?}"),
            };
            super::shared::record(&tx, &audit).await?;
            tx.commit().await?;
            Ok(report)
        })
        .await
    }
}
