//! Placements in batches. Every placement must decide on a view that includes every earlier
//! one, so they run one at a time under a lock (and a database transaction) that all replicas
//! share. Placements that arrive while one is running wait for the next batch, which decides
//! them all in one transaction: a burst of a thousand first joins takes a few transactions
//! instead of a thousand, and within a batch the largest expected meetings go first, so a
//! keynote starting with the workshops of its hour gets the room it needs before they fill it.

use super::{
    Board, Decision, Fleet, FleetServer, Inputs, MeetingKind, PlacementRequest, Tiebreak, kv, load,
    metrics, plan,
};
use crate::{
    domain::Meeting,
    store::{Decided, Reservation, SessionClaim, StoreError},
};
use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::SystemTime,
};
use tokio::sync::oneshot;

/// The most placements one transaction decides; more wait for the next.
const MAX_BATCH: usize = 500;
/// The first placement after a quiet spell waits for others of its burst: a step at a time
/// while more keep arriving, at most `GATHER_MAX` in all.
const GATHER_STEP: std::time::Duration = std::time::Duration::from_millis(3);
const GATHER_MAX: std::time::Duration = std::time::Duration::from_millis(20);

/// Why a placement has no answer.
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    /// The database did not answer (its words, for the log).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The batch deciding it ended without an answer: it panicked, and the log says why.
    /// Asking again would likely meet the same fate, so it is not an outage to retry.
    #[error("the placement batch ended without an answer")]
    Lost,
}

impl From<PlaceError> for crate::meetings::Error {
    fn from(err: PlaceError) -> Self {
        match err {
            PlaceError::Store(err) => err.into(),
            PlaceError::Lost => Self::BbbFailed(crate::meetings::Failure::Lost),
        }
    }
}

/// A meeting as stored, and whether this placement's write won (another replica may have been
/// first).
type Stored = (Meeting, bool);

/// The server picked, and for a room's first meeting or new session its meeting as stored.
type Answer = Result<Option<(Arc<FleetServer>, Option<Stored>)>, PlaceError>;

/// What a placement writes besides its reservation, in the same transaction.
#[derive(Debug)]
enum Write {
    Nothing,
    /// A room's first meeting (its server is filled in).
    FirstRow(Meeting),
    /// A room's new session: its meeting row id, its server and when it was placed there.
    Session {
        meeting_id: String,
        from: String,
        placed_at: i64,
    },
}

/// A placement waiting for its batch.
#[derive(Debug)]
pub(super) struct Pending {
    event_id: String,
    organizer_id: String,
    kind: MeetingKind,
    prefer: Option<String>,
    participants: u32,
    room: Option<String>,
    exclude: Vec<String>,
    meeting_id: String,
    write: Write,
    reply: oneshot::Sender<Answer>,
}

impl Pending {
    fn request(&self) -> PlacementRequest<'_> {
        PlacementRequest {
            event_id: &self.event_id,
            organizer_id: &self.organizer_id,
            kind: self.kind,
            prefer: self.prefer.as_deref(),
            participants: self.participants,
            room: self.room.as_deref(),
        }
    }
}

impl Fleet {
    /// Picks the server for a meeting `meeting_id` (new, or placed anew) and reserves its
    /// expected load there, against every replica's reservations, so concurrent placements —
    /// here or on another replica — see each other. `Ok(None)` when no server may take it
    /// (enabled, healthy, under its caps, not in `exclude`). A room goes where its event has
    /// the fewest rooms among the equally loaded, counted in the placement's own transaction.
    /// An expected size no server has room for still places the meeting (see `placement`).
    #[tracing::instrument(name = "fleet.place", skip_all, fields(event = request.event_id, kind = ?request.kind, server = tracing::field::Empty))]
    pub async fn place(
        self: &Arc<Self>,
        request: &PlacementRequest<'_>,
        exclude: &[String],
        meeting_id: &str,
    ) -> Result<Option<Arc<FleetServer>>, PlaceError> {
        let placed = self
            .enqueue(request, exclude, meeting_id, Write::Nothing)
            .await?;
        Ok(placed.map(|(server, _)| server))
    }

    /// Places a room's first meeting `row` and writes the row in the placement's transaction.
    /// Returns the room's meeting as stored — this one, or the one another replica wrote first
    /// (then its server stands, and this placement reserved nothing) — and whether it is this
    /// one. `Ok(None)` when no server may take it.
    #[tracing::instrument(name = "fleet.place", skip_all, fields(event = request.event_id, kind = ?request.kind, server = tracing::field::Empty))]
    pub async fn place_first(
        self: &Arc<Self>,
        request: &PlacementRequest<'_>,
        row: Meeting,
    ) -> Result<Option<(Meeting, bool)>, PlaceError> {
        let meeting_id = row.bbb_meeting_id.clone();
        let placed = self
            .enqueue(request, &[], &meeting_id, Write::FirstRow(row))
            .await?;
        written(placed)
    }

    /// Places `meeting` anew — a room's new session, or a move off a server that cannot host
    /// it (never onto one in `exclude`) — and claims it for the server chosen (which may be
    /// where it is) in the placement's transaction: only if it is still on `meeting.server_id`
    /// under the claim it was read with (`meeting.claimed_at`). Returns the meeting as stored
    /// and whether this claim won; a claim that lost (another placement or create claimed the
    /// meeting first) reserved nothing. `Ok(None)` when no server may take it.
    #[tracing::instrument(name = "fleet.place", skip_all, fields(event = request.event_id, kind = ?request.kind, server = tracing::field::Empty))]
    pub async fn place_again(
        self: &Arc<Self>,
        request: &PlacementRequest<'_>,
        meeting: &Meeting,
        exclude: &[String],
    ) -> Result<Option<(Meeting, bool)>, PlaceError> {
        let write = Write::Session {
            meeting_id: meeting.id.clone(),
            from: meeting.server_id.clone(),
            placed_at: meeting.claimed_at,
        };
        let placed = self
            .enqueue(request, exclude, &meeting.bbb_meeting_id, write)
            .await?;
        written(placed)
    }

    async fn enqueue(
        self: &Arc<Self>,
        request: &PlacementRequest<'_>,
        exclude: &[String],
        meeting_id: &str,
        write: Write,
    ) -> Answer {
        let pending = |reply| Pending {
            event_id: request.event_id.to_owned(),
            organizer_id: request.organizer_id.to_owned(),
            kind: request.kind,
            prefer: request.prefer.map(str::to_owned),
            participants: request.participants,
            room: request.room.map(str::to_owned),
            exclude: exclude.to_vec(),
            meeting_id: meeting_id.to_owned(),
            write,
            reply,
        };
        // A batch that panics answers nobody: its placements are lost, not the database's.
        let fleet = self.clone();
        let batch = async move { fleet.run_batch().await };
        let chosen = self
            .placements
            .submit(pending, batch, "placements")
            .await
            .unwrap_or(Err(PlaceError::Lost))?;
        if let Some((server, _)) = &chosen {
            tracing::Span::current().record("server", server.spec.id.as_str());
        }
        Ok(chosen)
    }

    /// Decides every waiting placement (up to `MAX_BATCH`) in one transaction: one round of
    /// `Fleet::placements`.
    async fn run_batch(self: Arc<Self>) {
        let round = self.placements.round().await;
        if round.after_quiet {
            // The rest of a burst may be a moment behind: waiting for it costs an isolated
            // placement one step, and lets the burst be decided together, largest first.
            let started = tokio::time::Instant::now();
            loop {
                let waiting = self.placements.waiting_now();
                tokio::time::sleep(GATHER_STEP).await;
                if self.placements.waiting_now() == waiting || started.elapsed() >= GATHER_MAX {
                    break;
                }
            }
        }
        let batch = self.placements.take(MAX_BATCH);
        if batch.is_empty() {
            return;
        }
        let servers = self.snapshot();
        // The events whose rooms are placed, each without the meetings being placed anew (a
        // room's first meeting is not stored yet).
        let mut events: Vec<(String, Vec<String>)> = Vec::new();
        for pending in batch.iter().filter(|p| p.kind == MeetingKind::Room) {
            if !events.iter().any(|(e, _)| *e == pending.event_id) {
                events.push((pending.event_id.clone(), Vec::new()));
            }
            if matches!(pending.write, Write::FirstRow(_)) {
                continue;
            }
            if let Some((_, placing)) = events.iter_mut().find(|(e, _)| *e == pending.event_id) {
                placing.push(pending.meeting_id.clone());
            }
        }
        let mut decisions: Vec<Decision> = Vec::new();
        let mut claimed: Vec<(String, String)> = Vec::new();
        let outcome = self
            .store
            .reserve_with(load::RESERVATION_FADE, plan::LEAD, &events, |view| {
                let now = SystemTime::now();
                // A meeting placed again (a new session, a move) no longer reserves where it
                // was: the new reservation replaces the old one.
                let replaced: HashSet<&str> = batch.iter().map(|p| p.meeting_id.as_str()).collect();
                let others: Vec<Reservation> = view
                    .reservations
                    .iter()
                    .filter(|r| !replaced.contains(r.meeting_id.as_str()))
                    .cloned()
                    .collect();
                let placing: Vec<(&str, &str)> = batch
                    .iter()
                    .filter_map(|p| Some((p.event_id.as_str(), p.room.as_deref()?)))
                    .collect();
                let mut board = {
                    let live = self.live();
                    let inputs = Inputs {
                        servers: &servers,
                        health: &live.health,
                        polled: &live.polled,
                        reservations: &others,
                        planned: view.planned,
                        event_rooms: view.event_rooms,
                        now,
                    };
                    Board::new(inputs, &placing)
                };
                let made;
                (decisions, made) = decide(&mut board, &batch, now);
                let mut first_rows = Vec::new();
                let mut sessions = Vec::new();
                claimed.clear();
                for (pending, decision) in batch.iter().zip(&decisions) {
                    let Some(to) = decision.chosen.as_ref().map(|s| s.spec.id.clone()) else {
                        continue;
                    };
                    // Only a placement that happened takes its planned session over.
                    if decision.planned.is_some()
                        && let Some(room) = &pending.room
                    {
                        claimed.push((pending.event_id.clone(), room.clone()));
                    }
                    match &pending.write {
                        Write::Nothing => {}
                        Write::FirstRow(row) => first_rows.push(Meeting {
                            server_id: to,
                            ..row.clone()
                        }),
                        Write::Session {
                            meeting_id,
                            from,
                            placed_at,
                        } => sessions.push(SessionClaim {
                            meeting_id: meeting_id.clone(),
                            bbb_meeting_id: pending.meeting_id.clone(),
                            from: from.clone(),
                            placed_at: *placed_at,
                            to,
                        }),
                    }
                }
                Decided {
                    made,
                    claimed: claimed.clone(),
                    first_rows,
                    sessions,
                }
            })
            .await;
        match outcome {
            Ok(mut stored) => {
                let mut live = self.live();
                let taken: HashSet<(&str, &str)> = claimed
                    .iter()
                    .map(|(e, r)| (e.as_str(), r.as_str()))
                    .collect();
                for p in &mut live.planned {
                    if taken.contains(&(p.event_id.as_str(), p.room_id.as_str())) {
                        p.claimed = true;
                    }
                }
                for (pending, decision) in batch.into_iter().zip(decisions) {
                    let row = match &pending.write {
                        Write::Nothing => None,
                        Write::FirstRow(row) => {
                            let key = (
                                row.event_id.clone(),
                                row.room_id.clone().unwrap_or_default(),
                            );
                            stored.rooms.remove(&key).map(|m| {
                                let ours = m.id == row.id;
                                (m, ours)
                            })
                        }
                        Write::Session { meeting_id, .. } => stored.sessions.remove(meeting_id),
                    };
                    // A room's row another replica wrote first, or a session it claimed first,
                    // keeps that replica's placement: this one reserved nothing.
                    let lost = !matches!(pending.write, Write::Nothing)
                        && !row.as_ref().is_some_and(|(_, won)| *won);
                    if !lost && let Some(server) = &decision.chosen {
                        placed(&pending, server, &decision);
                        live.reservations
                            .retain(|r| r.meeting_id != pending.meeting_id);
                        live.reservations.push(Reservation {
                            meeting_id: pending.meeting_id.clone(),
                            server_id: server.spec.id.clone(),
                            at: SystemTime::now(),
                            participants: decision.participants,
                        });
                    }
                    let pick = decision.chosen;
                    let _ = pending.reply.send(Ok(pick.map(|server| (server, row))));
                }
            }
            Err(err) => {
                let text = err.0.to_string();
                for pending in batch {
                    let store = StoreError(sea_orm::DbErr::Custom(text.clone()));
                    let _ = pending.reply.send(Err(PlaceError::Store(store)));
                }
            }
        }
    }
}

/// Counts a placement that happened, and says so in the log when the server picked has no
/// room for all the meeting expects.
fn placed(pending: &Pending, server: &FleetServer, decision: &Decision) {
    let kind = match pending.kind {
        MeetingKind::Room => "room",
        MeetingKind::Call => "call",
    };
    let at = [kv("server", server.spec.id.clone()), kv("kind", kind)];
    metrics().placements.add(1, &at);
    if let Some(short) = &decision.shortfall {
        metrics().shortfalls.add(1, &at);
        let considered: Vec<&str> = decision
            .servers
            .iter()
            .filter(|r| r.excluded_because.is_none())
            .map(|r| r.server_id.as_str())
            .collect();
        tracing::warn!(
            event = %pending.event_id,
            room = pending.room.as_deref().unwrap_or(""),
            kind,
            server = %short.server_id,
            servers = %considered.join(","),
            expected = short.participants,
            room_for = short.room_for,
            short_by = short.short_by(),
            "no server has room for the meeting's expected participants: placed where it fits best"
        );
    }
}

/// The meeting a placement wrote, as stored, and whether its write won.
fn written(
    placed: Option<(Arc<FleetServer>, Option<Stored>)>,
) -> Result<Option<Stored>, PlaceError> {
    placed
        .map(|(_, row)| {
            row.ok_or_else(|| {
                let vanished = sea_orm::DbErr::RecordNotFound("meeting vanished".into());
                PlaceError::Store(StoreError(vanished))
            })
        })
        .transpose()
}

/// Decides a batch on `board`: largest expected meeting first, each decision counted in before
/// the next. Returns each placement's decision (in the batch's order) and the reservations to
/// record.
fn decide(
    board: &mut Board,
    batch: &[Pending],
    now: SystemTime,
) -> (Vec<Decision>, Vec<Reservation>) {
    let mut order: Vec<(usize, f64)> = batch
        .iter()
        .enumerate()
        .map(|(i, p)| (i, load::expected_cost(board.expects(&p.request()))))
        .collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut decided: HashMap<usize, Decision> = HashMap::with_capacity(batch.len());
    let mut made: Vec<Reservation> = Vec::new();
    for (i, _) in order {
        let pending = &batch[i];
        let request = pending.request();
        let decision = board.decide(&request, &pending.exclude, Tiebreak::Random);
        board.count(&request, &decision);
        if let Some(server) = &decision.chosen {
            // One meeting placed twice in a batch (two moves at once): the later decision
            // stands, as it would have across two transactions.
            made.retain(|r| r.meeting_id != pending.meeting_id);
            made.push(Reservation {
                meeting_id: pending.meeting_id.clone(),
                server_id: server.spec.id.clone(),
                at: now,
                participants: decision.participants,
            });
        }
        decided.insert(i, decision);
    }
    let decisions = (0..batch.len())
        .filter_map(|i| decided.remove(&i))
        .collect();
    (decisions, made)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lost batch is its own failure, not the database's: the join is answered `bbb.failed`
    /// with the cause `lost`, and a database error stays `unavailable`.
    #[test]
    fn a_lost_batch_is_not_reported_as_the_database() {
        let lost = crate::meetings::Error::from(PlaceError::Lost);
        assert!(matches!(
            &lost,
            crate::meetings::Error::BbbFailed(f) if f.cause() == "lost"
        ));
        let down = StoreError(sea_orm::DbErr::Custom("connection refused".into()));
        assert!(matches!(
            crate::meetings::Error::from(PlaceError::from(down)),
            crate::meetings::Error::Unavailable(_)
        ));
    }
}
