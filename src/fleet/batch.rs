//! Placements in batches. Every placement must decide on a view that includes every earlier
//! one, so they run one at a time under a lock (and a database transaction) that all replicas
//! share. Placements that arrive while one is running wait for the next batch, which decides
//! them all in one transaction: a burst of a thousand first joins takes a few transactions
//! instead of a thousand, and within a batch the largest expected meetings go first, so a
//! keynote starting with the workshops of its hour gets the room it needs before they fill it.

use super::{
    Fleet, FleetServer, MeetingKind, PlacementRequest, ServerStatus, candidates, kv, load, metrics,
    placement, plan, status_of,
};
use crate::{
    domain::Meeting,
    store::{Decided, Planned, Reservation, SessionClaim, StoreError},
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

/// A meeting as stored, and whether this placement's write won (another replica may have been
/// first).
type Stored = (Meeting, bool);

/// The server picked, and for a room's first meeting or new session its meeting as stored.
type Answer = Result<Option<(Arc<FleetServer>, Option<Stored>)>, StoreError>;

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

    /// Follows the room's planned session: its server and size (see `plan::follow`).
    fn follow(&mut self, session: &Planned) {
        let planned = plan::follow(&self.request(), session);
        let (prefer, participants) = (planned.prefer.map(str::to_owned), planned.participants);
        self.prefer = prefer;
        self.participants = participants;
    }
}

impl Fleet {
    /// Picks the server for a meeting `meeting_id` (new, or placed anew) and reserves its
    /// expected load there, against every replica's reservations, so concurrent placements —
    /// here or on another replica — see each other. `Ok(None)` when no server fits (enabled,
    /// healthy, under its caps, not in `exclude`). A room goes where its event has the fewest
    /// rooms among the equally loaded, counted in the placement's own transaction.
    #[tracing::instrument(name = "fleet.place", skip_all, fields(event = request.event_id, kind = ?request.kind, server = tracing::field::Empty))]
    pub async fn place(
        self: &Arc<Self>,
        request: &PlacementRequest<'_>,
        exclude: &[String],
        meeting_id: &str,
    ) -> Result<Option<Arc<FleetServer>>, StoreError> {
        let placed = self
            .enqueue(request, exclude, meeting_id, Write::Nothing)
            .await?;
        Ok(placed.map(|(server, _)| server))
    }

    /// Places a room's first meeting `row` and writes the row in the placement's transaction.
    /// Returns the room's meeting as stored — this one, or the one another replica wrote first
    /// (then its server stands) — and whether it is this one. `Ok(None)` when no server fits.
    #[tracing::instrument(name = "fleet.place", skip_all, fields(event = request.event_id, kind = ?request.kind, server = tracing::field::Empty))]
    pub async fn place_first(
        self: &Arc<Self>,
        request: &PlacementRequest<'_>,
        row: Meeting,
    ) -> Result<Option<(Meeting, bool)>, StoreError> {
        let meeting_id = row.bbb_meeting_id.clone();
        let placed = self
            .enqueue(request, &[], &meeting_id, Write::FirstRow(row))
            .await?;
        written(placed)
    }

    /// Places a room's new session — `meeting`, on `meeting.server_id` since `placed_at` — and
    /// claims it for the server chosen (which may be where it is) in the placement's
    /// transaction. Returns the meeting as stored and whether this claim won; a claim that
    /// lost (another replica decided the session first) reserved nothing. `Ok(None)` when no
    /// server fits.
    #[tracing::instrument(name = "fleet.place", skip_all, fields(event = request.event_id, kind = ?request.kind, server = tracing::field::Empty))]
    pub async fn place_session(
        self: &Arc<Self>,
        request: &PlacementRequest<'_>,
        meeting: &Meeting,
        placed_at: i64,
    ) -> Result<Option<(Meeting, bool)>, StoreError> {
        let write = Write::Session {
            meeting_id: meeting.id.clone(),
            from: meeting.server_id.clone(),
            placed_at,
        };
        let placed = self
            .enqueue(request, &[], &meeting.bbb_meeting_id, write)
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
        let (reply, answer) = oneshot::channel();
        self.placements.push(Pending {
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
        });
        // The batch runs in a task of its own: a caller that gives up (its deadline passed)
        // must not take the placements of the others in its batch down with it.
        let fleet = self.clone();
        tokio::spawn(async move { fleet.run_batch().await });
        let chosen = answer.await.unwrap_or_else(|_| {
            Err(StoreError(sea_orm::DbErr::Custom(
                "the placement batch ended without an answer".into(),
            )))
        })?;
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
        let mut batch = self.placements.take(MAX_BATCH);
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
        let mut chosen: Vec<Option<Arc<FleetServer>>> = Vec::new();
        let mut claimed: Vec<(String, String)> = Vec::new();
        let outcome = self
            .store
            .reserve_with(load::RESERVATION_FADE, plan::LEAD, &events, |view| {
                let now = SystemTime::now();
                let (earlier, planned) = (view.reservations, view.planned);
                // A meeting placed again (a new session, a move) no longer reserves where it
                // was: the new reservation replaces the old one.
                let replaced: HashSet<&str> = batch.iter().map(|p| p.meeting_id.as_str()).collect();
                let others: Vec<Reservation> = earlier
                    .iter()
                    .filter(|r| !replaced.contains(r.meeting_id.as_str()))
                    .cloned()
                    .collect();
                // A room placed for its planned session takes the session over: the plan's
                // reservation makes way for the placement's own. (The batch's rooms' sessions
                // are set apart first: a plan may hold thousands of others.)
                let placing: HashSet<(&str, &str)> = batch
                    .iter()
                    .filter_map(|p| Some((p.event_id.as_str(), p.room.as_deref()?)))
                    .collect();
                let (theirs, mut waiting): (Vec<Planned>, Vec<Planned>) = planned
                    .iter()
                    .cloned()
                    .partition(|p| placing.contains(&(p.event_id.as_str(), p.room_id.as_str())));
                for pending in batch.iter_mut() {
                    let Some(room) = pending.room.clone() else {
                        continue;
                    };
                    if let Some(session) = plan::active(&theirs, &pending.event_id, &room, now) {
                        pending.follow(session);
                        claimed.push((pending.event_id.clone(), room));
                    }
                }
                waiting.extend(theirs.into_iter().filter(|p| {
                    !claimed
                        .iter()
                        .any(|(e, r)| *e == p.event_id && *r == p.room_id)
                }));
                let status = status_of(&servers, &self.live(), &others, &waiting, now);
                let (picks, made) = decide(&servers, status, &mut batch, view.event_rooms, now);
                let mut first_rows = Vec::new();
                let mut sessions = Vec::new();
                for (pending, pick) in batch.iter().zip(&picks) {
                    let Some(to) = pick.as_ref().map(|s| s.spec.id.clone()) else {
                        continue;
                    };
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
                chosen = picks;
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
                for (pending, pick) in batch.into_iter().zip(chosen) {
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
                    // A session another replica claimed first keeps that replica's placement.
                    let lost = matches!(pending.write, Write::Session { .. })
                        && !row.as_ref().is_some_and(|(_, won)| *won);
                    if let Some(server) = pick.as_ref().filter(|_| !lost) {
                        let kind = match pending.kind {
                            MeetingKind::Room => "room",
                            MeetingKind::Call => "call",
                        };
                        metrics()
                            .placements
                            .add(1, &[kv("server", server.spec.id.clone()), kv("kind", kind)]);
                        live.reservations
                            .retain(|r| r.meeting_id != pending.meeting_id);
                        live.reservations.push(Reservation {
                            meeting_id: pending.meeting_id.clone(),
                            server_id: server.spec.id.clone(),
                            at: SystemTime::now(),
                            participants: pending.participants,
                        });
                    }
                    let _ = pending.reply.send(Ok(pick.map(|server| (server, row))));
                }
            }
            Err(err) => {
                let text = err.0.to_string();
                for pending in batch {
                    let _ = pending
                        .reply
                        .send(Err(StoreError(sea_orm::DbErr::Custom(text.clone()))));
                }
            }
        }
    }
}

/// The meeting a placement wrote, as stored, and whether its write won.
fn written(
    placed: Option<(Arc<FleetServer>, Option<Stored>)>,
) -> Result<Option<Stored>, StoreError> {
    placed
        .map(|(_, row)| {
            row.ok_or_else(|| StoreError(sea_orm::DbErr::RecordNotFound("meeting vanished".into())))
        })
        .transpose()
}

/// Decides a batch: largest expected meeting first, each decision seeing the reservations of
/// those before it. Returns each placement's server (in the batch's new order) and the
/// reservations to record.
fn decide(
    servers: &HashMap<String, Arc<FleetServer>>,
    mut status: HashMap<String, ServerStatus>,
    batch: &mut [Pending],
    event_rooms: &HashMap<String, HashMap<String, u64>>,
    now: SystemTime,
) -> (Vec<Option<Arc<FleetServer>>>, Vec<Reservation>) {
    batch.sort_by(|a, b| {
        load::expected_cost(b.participants).total_cmp(&load::expected_cost(a.participants))
    });
    let mut chosen = Vec::with_capacity(batch.len());
    let mut made: Vec<Reservation> = Vec::new();
    // Rooms this batch adds to an event, per server.
    let mut added: HashMap<(String, String), u64> = HashMap::new();
    for pending in batch.iter() {
        let open = servers
            .values()
            .filter(|s| !pending.exclude.contains(&s.spec.id));
        let candidates = candidates(open, &status, pending.participants, |id| {
            event_rooms
                .get(&pending.event_id)
                .and_then(|rooms| rooms.get(id))
                .copied()
                .unwrap_or(0)
                + added
                    .get(&(pending.event_id.clone(), id.to_owned()))
                    .copied()
                    .unwrap_or(0)
        });
        let pick = placement::choose(&pending.request(), candidates).map(|c| c.server);
        if let Some(server) = &pick {
            // One meeting placed twice in a batch (two moves at once): the later decision
            // stands, as it would have across two transactions.
            made.retain(|r| r.meeting_id != pending.meeting_id);
            made.push(Reservation {
                meeting_id: pending.meeting_id.clone(),
                server_id: server.spec.id.clone(),
                at: now,
                participants: pending.participants,
            });
            if let Some(st) = status.get_mut(&server.spec.id) {
                st.reserve(pending.participants);
            }
            if pending.kind == MeetingKind::Room {
                *added
                    .entry((pending.event_id.clone(), server.spec.id.clone()))
                    .or_default() += 1;
            }
        }
        chosen.push(pick);
    }
    (chosen, made)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::Health;

    fn server(id: &str) -> Arc<FleetServer> {
        super::super::test_server(id, |_| {})
    }

    fn status(load: f64) -> ServerStatus {
        ServerStatus {
            health: Health::Healthy,
            health_reason: String::new(),
            load,
            meetings: 0,
            polled_meetings: 0,
            participants: 0,
            expected_participants: 0,
            polled_at: Some(SystemTime::now()),
        }
    }

    fn pending(room: &str, participants: u32) -> Pending {
        Pending {
            event_id: "ev".into(),
            organizer_id: "org".into(),
            kind: MeetingKind::Room,
            prefer: None,
            participants,
            room: None,
            exclude: Vec::new(),
            meeting_id: room.into(),
            write: Write::Nothing,
            reply: oneshot::channel().0,
        }
    }

    /// Ten workshops that reached the batch before their keynote: the keynote still gets the
    /// emptiest server, and no workshop shares it.
    #[test]
    fn a_batch_places_its_largest_meeting_first() {
        let servers: HashMap<String, Arc<FleetServer>> = ["empty", "m1", "m2"]
            .into_iter()
            .map(|id| (id.to_owned(), server(id)))
            .collect();
        let status = HashMap::from([
            ("empty".to_owned(), status(0.0)),
            ("m1".to_owned(), status(42_010.0)),
            ("m2".to_owned(), status(42_010.0)),
        ]);
        let mut batch: Vec<Pending> = (0..10)
            .map(|i| pending(&format!("workshop-{i}"), 20))
            .chain(std::iter::once(pending("keynote", 500)))
            .collect();
        let (chosen, made) = decide(
            &servers,
            status,
            &mut batch,
            &HashMap::new(),
            SystemTime::now(),
        );
        let placed: Vec<(&str, &str)> = batch
            .iter()
            .zip(&chosen)
            .map(|(p, c)| (p.meeting_id.as_str(), c.as_ref().unwrap().spec.id.as_str()))
            .collect();
        let on_empty: Vec<&str> = placed
            .iter()
            .filter(|(_, s)| *s == "empty")
            .map(|(m, _)| *m)
            .collect();
        assert_eq!(on_empty, ["keynote"], "{placed:?}");
        assert_eq!(made.len(), 11);
        assert_eq!(made[0].participants, 500);
    }
}
