//! BBB's end callbacks as the database keeps them: the key that signs their URLs, and the ends
//! they reported, which every replica applies and the lifecycle reads at a join.

use super::{
    Result, Store, StoreError,
    entities::{meeting_end, reservation, service_key},
    now_ms,
    shared::{to_ms, to_time},
};
use crate::secret::Secret;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TryInsertResult,
};
use std::time::SystemTime;

/// A meeting end BBB reported through a genuine end callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeetingEnd {
    pub server_id: String,
    /// BBB's meetingID.
    pub meeting_id: String,
    /// The random part of the callback's URL: each URL reports one end, once.
    pub nonce: String,
    /// When the create that made the ended meeting was sent (it carried the URL), by the clock
    /// of the replica that sent it.
    pub created_at: SystemTime,
    /// When the callback arrived, by the clock of the replica that received it.
    pub ended_at: SystemTime,
}

const END_CALLBACK_KEY: &str = "end-callback";

fn end_from_row(row: meeting_end::Model) -> MeetingEnd {
    MeetingEnd {
        server_id: row.server_id,
        meeting_id: row.meeting_id,
        nonce: row.nonce,
        created_at: to_time(row.created_at),
        ended_at: to_time(row.ended_at),
    }
}

impl Store {
    /// The key that signs end callback URLs. The first replica that asks makes it; every other
    /// one reads the same row, so a callback verifies on whichever replica receives it.
    pub async fn end_callback_key(&self) -> Result<Secret> {
        self.guarded(async {
            let mut key = [0u8; 32];
            rand::Rng::fill(&mut rand::rng(), &mut key);
            service_key::Entity::insert(service_key::ActiveModel {
                name: Set(END_CALLBACK_KEY.to_owned()),
                value: Set(hex::encode(key)),
                created_at: Set(now_ms()),
            })
            .on_conflict_do_nothing_on([service_key::Column::Name])
            .exec_without_returning(&self.db)
            .await?;
            let stored = service_key::Entity::find_by_id(END_CALLBACK_KEY)
                .one(&self.db)
                .await?
                .ok_or(StoreError(DbErr::RecordNotFound(
                    "the end callback key".into(),
                )))?;
            Ok(Secret::new(stored.value))
        })
        .await
    }

    /// Records an end reported by a genuine callback, and drops the placement reservations made
    /// for the ended meeting before it ended. False when this URL's end was recorded already (a
    /// repeat or a replay): nothing changes then.
    pub async fn record_end(&self, end: &MeetingEnd) -> Result<bool> {
        self.guarded(async {
            let tx = self.write_tx().await?;
            let inserted = meeting_end::Entity::insert(meeting_end::ActiveModel {
                server_id: Set(end.server_id.clone()),
                meeting_id: Set(end.meeting_id.clone()),
                nonce: Set(end.nonce.clone()),
                created_at: Set(to_ms(end.created_at)),
                ended_at: Set(to_ms(end.ended_at)),
                ..Default::default()
            })
            .on_conflict_do_nothing_on([
                meeting_end::Column::ServerId,
                meeting_end::Column::MeetingId,
                meeting_end::Column::Nonce,
            ])
            .exec_without_returning(&tx)
            .await?;
            if !matches!(inserted, TryInsertResult::Inserted(n) if n > 0) {
                return Ok(false);
            }
            reservation::Entity::delete_many()
                .filter(reservation::Column::MeetingId.eq(&end.meeting_id))
                .filter(reservation::Column::ServerId.eq(&end.server_id))
                .filter(reservation::Column::At.lt(to_ms(end.ended_at)))
                .exec(&tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    /// Ends whose callbacks arrived at or after `since`, newest first, at most `limit`.
    pub async fn ends_since(&self, since: SystemTime, limit: u64) -> Result<Vec<MeetingEnd>> {
        self.guarded(async {
            Ok(meeting_end::Entity::find()
                .filter(meeting_end::Column::EndedAt.gte(to_ms(since)))
                .order_by_desc(meeting_end::Column::EndedAt)
                .limit(limit)
                .all(&self.db)
                .await?
                .into_iter()
                .map(end_from_row)
                .collect())
        })
        .await
    }

    /// Deletes the ends of meetings created before `before`: their URLs are refused as too old
    /// by then, so a replay cannot count again.
    pub async fn prune_ends(&self, before: SystemTime) -> Result<u64> {
        self.guarded(async {
            Ok(meeting_end::Entity::delete_many()
                .filter(meeting_end::Column::CreatedAt.lt(to_ms(before)))
                .exec(&self.db)
                .await?
                .rows_affected)
        })
        .await
    }
}
