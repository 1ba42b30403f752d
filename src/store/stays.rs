//! Claims to stay, in rounds. Every create is preceded and followed by one (see
//! `meetings::lifecycle`): when a session starts, hundreds of rooms create at once, and their
//! claims go in a few transactions rather than two each.

use super::{Meeting, Result, Store, StoreError, entities::meeting, meeting_from_row, now_ms};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, sea_query::Expr};
use std::collections::HashMap;
use tokio::sync::oneshot;

/// The most claims one transaction makes.
const MAX_STAYS: usize = 500;

type Reply = oneshot::Sender<Result<(Meeting, bool)>>;

/// A claim to stay: the meeting's row id, and the server it must still be on.
pub(super) struct Stay {
    meeting_id: String,
    server_id: String,
}

/// Claims waiting for their round.
pub(super) type Stays = crate::batching::Batches<(Stay, Reply)>;

impl Store {
    /// Claims `meeting` where it is, outside a placement, before a create there and again to
    /// confirm its answer: only if it is still on `meeting.server_id` — another claim to stay
    /// there does not stand in the way, a move does. Returns the meeting as stored, with the
    /// claim that stands, and whether this claim won. Made together with the other claims of
    /// the moment.
    pub async fn claim_meeting(&self, meeting: &Meeting) -> Result<(Meeting, bool)> {
        let stay = Stay {
            meeting_id: meeting.id.clone(),
            server_id: meeting.server_id.clone(),
        };
        let store = self.clone();
        let round = async move { store.claim_stays().await };
        self.stays
            .submit(|reply| (stay, reply), round, "claims to stay")
            .await
            .unwrap_or_else(|| {
                Err(StoreError(DbErr::Custom(
                    "the claims' round ended without an answer".into(),
                )))
            })
    }

    async fn claim_stays(&self) {
        let _round = self.stays.round().await;
        let batch = self.stays.take(MAX_STAYS);
        if batch.is_empty() {
            return;
        }
        let claims: Vec<&Stay> = batch.iter().map(|(c, _)| c).collect();
        let outcome = self
            .guarded(async {
                let tx = self.write_tx().await?;
                let claimed = stay_all(&tx, &claims).await?;
                tx.commit().await?;
                Ok(claimed)
            })
            .await;
        match outcome {
            Ok(claimed) => {
                for ((_, reply), outcome) in batch.into_iter().zip(claimed) {
                    let _ = reply.send(Ok(outcome));
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

/// Claims to stay for `claims` in `tx`, as `claim` would one by one: one read of their rows and
/// one conditional write each (a row read again only when another replica wrote it meanwhile).
async fn stay_all(
    tx: &impl ConnectionTrait,
    claims: &[&Stay],
) -> std::result::Result<Vec<(Meeting, bool)>, DbErr> {
    let ids: Vec<String> = claims.iter().map(|c| c.meeting_id.clone()).collect();
    let mut rows: HashMap<String, meeting::Model> = meeting::Entity::find()
        .filter(meeting::Column::Id.is_in(ids))
        .all(tx)
        .await?
        .into_iter()
        .map(|row| (row.id.clone(), row))
        .collect();
    let mut claimed = Vec::with_capacity(claims.len());
    for c in claims {
        let Some(row) = rows.get_mut(&c.meeting_id) else {
            return Err(DbErr::RecordNotFound("claimed meeting vanished".into()));
        };
        if row.server_id != c.server_id {
            claimed.push((meeting_from_row(row.clone()), false));
            continue;
        }
        let at = now_ms().max(row.placed_at + 1);
        let written = meeting::Entity::update_many()
            .col_expr(meeting::Column::PlacedAt, Expr::value(at))
            .filter(meeting::Column::Id.eq(c.meeting_id.as_str()))
            .filter(meeting::Column::ServerId.eq(c.server_id.as_str()))
            .filter(meeting::Column::PlacedAt.lt(at))
            .exec(tx)
            .await?
            .rows_affected
            > 0;
        if written {
            row.placed_at = at;
        } else if let Some(now) = meeting::Entity::find_by_id(c.meeting_id.clone())
            .one(tx)
            .await?
        {
            *row = now;
        }
        let won = row.server_id == c.server_id;
        claimed.push((meeting_from_row(row.clone()), won));
    }
    Ok(claimed)
}
