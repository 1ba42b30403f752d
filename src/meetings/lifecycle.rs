//! A meeting's lifecycle, decided in one place: when a join may keep a room's meeting where it
//! is, when its server must be asked, when its next session is placed anew, and where a
//! create may go when the attempt holds no claim.
//!
//! The rule that keeps one room in one meeting: **every create is preceded and followed by a
//! won claim, and a join URL is handed out only after both.** A claim is a compare-and-swap on
//! the meeting's row (its server and `claimed_at`), so of any number of replicas deciding one
//! meeting at once exactly one wins, and the others follow the winner's server. Placements
//! claim as they write (a first row, a new session, a move); a create on the meeting's own
//! server claims to stay, and its answer is confirmed by claiming again. A move wins only
//! against the claim it read, so no URL is handed out for a server the meeting was moved away
//! from after that create: a create that lands there anyway (it was on its way) loses its
//! confirmation, ends the meeting it made and follows the move. Evidence that a meeting is
//! gone — a poll that does not list it, BBB's end callback — counts only when it is younger
//! than the create of the latest claim can be (`settled_at`); so a meeting whose users got
//! their URLs is not moved on a poll older than them.
//!
//! The decisions are pure functions; the flows (`ensure_room`, `establish`) act through a
//! [`World`]: the service's database, fleet and BBB servers, or the seeded simulation that
//! proves the rule under every order of events.

use super::{Error, Failure};
use crate::{
    bbb::{BbbError, Created, Verdict},
    domain::{Meeting, ServerState},
    fleet::{Health, Sighting},
};
use std::time::{Duration, SystemTime};

/// How far apart the replicas' clocks may be. A claim carries the claimer's clock; polls and
/// callbacks carry another replica's.
pub const CLOCK_SKEW: Duration = Duration::from_secs(2);
/// Beyond the create timeout, how long a create may take to reach its server.
const SETTLE_MARGIN: Duration = Duration::from_secs(1);

/// From when evidence that a meeting is gone may be trusted: the latest create under the claim
/// made at `claimed_at` (epoch ms) has reached its server or timed out by then, on any clock.
pub fn settled_at(claimed_at: i64, create_timeout: Duration) -> SystemTime {
    crate::calendar::from_epoch_ms(claimed_at) + create_timeout + SETTLE_MARGIN + CLOCK_SKEW
}

/// What a room's join does with the meeting its row names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Session {
    /// The session goes on (or starts) where the meeting is; failover, if any, is `host`'s.
    Continue,
    /// The evidence that the meeting is gone predates its latest create: ask the server.
    Ask,
    /// The meeting is gone from its server: a new session, placed by the load of now.
    PlaceAnew,
}

/// Whether a room's meeting, claimed at `claimed_at`, goes on where it is. `pinned`: rooms
/// stay on their server (until failover).
pub fn session(
    claimed_at: i64,
    seen: &Sighting,
    now: SystemTime,
    create_timeout: Duration,
    pinned: bool,
) -> Session {
    let settled = settled_at(claimed_at, create_timeout);
    // A create under the latest claim may still be on its way: nothing says it is gone.
    if pinned || now < settled || !seen.registered {
        return Session::Continue;
    }
    match seen.listed {
        None | Some(true) => Session::Continue,
        Some(false) if seen.polled_at.is_some_and(|at| at >= settled) => Session::PlaceAnew,
        Some(false) => Session::Ask,
    }
}

/// Where the next create of a meeting goes when the attempt holds no claim of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    /// Claim to stay, and create on its server.
    Stay,
    /// Place it on another server (failover), claiming the move.
    Move,
}

/// A removed or disabled server loses its meetings (an operator's decision). Any other
/// server is tried first, whatever its polls say: an unhealthy one may only answer its polls
/// slowly while its users are in the meeting (its create shows whether it can host it), and a
/// cordoned one keeps what it still lists. A cordoned server's meeting moves only on a poll
/// that no longer lists it and is younger than the create of the meeting's latest claim
/// (at `claimed_at`).
pub fn host(seen: &Sighting, claimed_at: i64, create_timeout: Duration) -> Host {
    if !seen.registered || seen.state == ServerState::Disabled {
        return Host::Move;
    }
    let gone = seen.listed == Some(false)
        && seen
            .polled_at
            .is_some_and(|at| at >= settled_at(claimed_at, create_timeout));
    if seen.state == ServerState::Cordoned && gone {
        Host::Move
    } else {
        Host::Stay
    }
}

/// Whether a create on the meeting's server that just failed leaves the server unable to host
/// it: removed, disabled, or unhealthy or misconfigured by now (then the meeting moves). A
/// server that still counts as healthy is tried again.
pub fn failed_for_good(seen: &Sighting) -> bool {
    !seen.registered
        || seen.state == ServerState::Disabled
        || matches!(seen.health, Health::Unhealthy | Health::Misconfigured)
}

/// Why a meeting is placed again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    /// Its server does not hold it, and a new session starts: placed by the load of now.
    NewSession,
    /// Its server cannot host it (any more).
    Failover,
}

/// What a meeting's lifecycle acts on: the meeting's row and its claims, placements, the
/// fleet's view, BBB's answers and time.
pub trait World {
    /// A server a create answered on (what a join URL is signed for).
    type Server;
    fn now(&self) -> SystemTime;
    fn create_timeout(&self) -> Duration;
    async fn pause(&self, pause: Duration);
    fn sighting(&self, server_id: &str, meeting_id: &str) -> Sighting;
    /// The room's meeting as stored, with its latest claim.
    async fn row(&self) -> Result<Option<Meeting>, Error>;
    /// Places the room's first meeting and writes its row (its first claim); the meeting as
    /// stored and whether it is this one. `None`: no server may take it.
    async fn place_first(&self) -> Result<Option<(Meeting, bool)>, Error>;
    /// Places `meeting` anew away from `exclude`, claiming it in the placement (see
    /// `Fleet::place_again`).
    async fn place_again(
        &self,
        meeting: &Meeting,
        why: Move,
        exclude: &[String],
    ) -> Result<Option<(Meeting, bool)>, Error>;
    /// Claims `meeting` where it is, before a create there and to confirm its answer; lost
    /// only if it was moved (see `Store::claim_meeting`).
    async fn claim(&self, meeting: &Meeting) -> Result<(Meeting, bool), Error>;
    /// Whether the server holds the meeting, not ended (`getMeetingInfo`); `None`: unknown.
    async fn holds(&self, server_id: &str, meeting_id: &str) -> Option<bool>;
    /// Creates the meeting on its server; `None` when the server left the registry.
    async fn create(&self, meeting: &Meeting) -> Option<(Self::Server, Result<Created, BbbError>)>;
    /// Ends, as far as it can, the meeting a create of this attempt made on `server_id` and
    /// lost (the meeting was moved away meanwhile).
    async fn end(&self, server_id: &str, meeting: &Meeting);
    /// Says in the log that `before` now lives as `after`, and counts it.
    fn moved(&self, before: &Meeting, after: &Meeting, why: Move);
}

/// A meeting made sure of: created (or found) on `server` under a claim of this attempt.
pub struct Established<S> {
    pub meeting: Meeting,
    pub server: S,
    pub created: Created,
}

/// A room's meeting, made sure of: its first placement, or its row's meeting, placed anew when
/// a new session starts (see `session`); then `establish`ed. `pinned`: rooms stay where they
/// were first placed (until failover).
pub async fn ensure_room<W: World>(
    world: &W,
    pinned: bool,
) -> Result<Established<W::Server>, Error> {
    let (meeting, held) = match world.row().await? {
        Some(meeting) => start_session(world, meeting, pinned).await?,
        None => world
            .place_first()
            .await?
            .ok_or(Error::BbbFailed(Failure::NoServer))?,
    };
    establish(world, meeting, held).await
}

/// A room whose server no longer holds its meeting starts a new session: the meeting is
/// placed anew, by the fleet's load and reservations now rather than those of the room's
/// first use (often a rehearsal days before). Same meetingID and passwords; the hosting
/// history keeps its recordings findable. Returns the meeting and whether this attempt holds
/// its latest claim.
async fn start_session<W: World>(
    world: &W,
    meeting: Meeting,
    pinned: bool,
) -> Result<(Meeting, bool), Error> {
    let seen = world.sighting(&meeting.server_id, &meeting.bbb_meeting_id);
    match session(
        meeting.claimed_at,
        &seen,
        world.now(),
        world.create_timeout(),
        pinned,
    ) {
        Session::Continue => return Ok((meeting, false)),
        Session::Ask => {
            if world
                .holds(&meeting.server_id, &meeting.bbb_meeting_id)
                .await
                != Some(false)
            {
                return Ok((meeting, false));
            }
        }
        Session::PlaceAnew => {}
    }
    // Claimed in the placement's transaction: of attempts deciding this session at once, one
    // places it and the others follow.
    let Some((stored, won)) = world.place_again(&meeting, Move::NewSession, &[]).await? else {
        return Ok((meeting, false));
    };
    if won && stored.server_id != meeting.server_id {
        world.moved(&meeting, &stored, Move::NewSession);
    }
    Ok((stored, won))
}

/// How often, and how long apart, a create is retried while BBB still holds the ended meeting
/// and no other server can take it (BBB answers with the old createTime until it purges it).
const ENDED_RETRIES: u32 = 4;
const ENDED_RETRY_PAUSE: Duration = Duration::from_millis(250);
/// A new placement whose create gets no answer moves on; this bounds how many servers one
/// attempt tries.
const MAX_SERVERS_PER_ATTEMPT: usize = 3;
/// Tries on a meeting's own server before giving up on this attempt.
const SAME_SERVER_TRIES: u32 = 2;
const SAME_SERVER_PAUSE: Duration = Duration::from_millis(100);
/// Claims one attempt may lose to others (each then followed) before it gives up.
const MAX_LOST_CLAIMS: u32 = 4;

/// Makes sure the meeting exists on a server that can host it, moving it (same meetingID and
/// passwords) when it must. Every create is preceded by a won claim (`held`: this attempt made
/// the latest one, by placing the meeting) and its answer confirmed by another; a lost claim
/// follows the winner.
/// - its server is removed or disabled, or cordoned and no longer lists it: move before asking
///   (`host`);
/// - BBB still holds the meeting as ended: this server cannot host it now, move on;
/// - a create on a server this attempt just placed it on gets no answer: move on to the next
///   candidate at once, so no first join fails because one server just died;
/// - a create on its long-standing server gets no answer: try that server once more (one
///   error is not a dead server), and move only if that made the server unusable.
pub async fn establish<W: World>(
    world: &W,
    mut meeting: Meeting,
    mut held: bool,
) -> Result<Established<W::Server>, Error> {
    // Placed on its server by this attempt: a create there that fails moves on at once.
    let mut fresh = held;
    let mut tried: Vec<String> = Vec::new();
    let mut leave: Option<Failure> = None;
    let mut same_server_failures = 0;
    let mut ended_retries = 0;
    let mut lost_claims = 0;
    loop {
        if !held {
            let seen = world.sighting(&meeting.server_id, &meeting.bbb_meeting_id);
            let stay = host(&seen, meeting.claimed_at, world.create_timeout()) == Host::Stay;
            let claimed = if leave.is_none() && stay {
                world.claim(&meeting).await?
            } else {
                let mut exclude = tried.clone();
                exclude.push(meeting.server_id.clone());
                match world
                    .place_again(&meeting, Move::Failover, &exclude)
                    .await?
                {
                    Some(claimed) => claimed,
                    // No other server: while BBB purges the ended meeting, this one is asked
                    // again a few times.
                    None if matches!(leave, Some(Failure::StillEnding))
                        && ended_retries < ENDED_RETRIES =>
                    {
                        ended_retries += 1;
                        tried.retain(|id| *id != meeting.server_id);
                        world.pause(ENDED_RETRY_PAUSE).await;
                        world.claim(&meeting).await?
                    }
                    // Nowhere else to go: what went wrong here is the cause to report.
                    None => return Err(Error::BbbFailed(leave.unwrap_or(Failure::NoServer))),
                }
            };
            let (stored, won) = claimed;
            if !won {
                // Another attempt claimed it first: its server stands; claim again there.
                lost_claims += 1;
                if lost_claims > MAX_LOST_CLAIMS {
                    return Err(Error::BbbFailed(Failure::Contended));
                }
                meeting = stored;
                (fresh, leave) = (false, None);
                continue;
            }
            if stored.server_id != meeting.server_id {
                world.moved(&meeting, &stored, Move::Failover);
                (fresh, same_server_failures) = (true, 0);
            }
            meeting = stored;
            leave = None;
        }
        // The create spends the claim: a later one claims again.
        held = false;
        let Some((server, outcome)) = world.create(&meeting).await else {
            continue;
        };
        let error = match outcome {
            Ok(created) if !created.ended => {
                // Confirmed only if nobody claimed the meeting since this attempt did.
                let here = meeting.server_id.clone();
                let (stored, won) = world.claim(&meeting).await?;
                if won {
                    return Ok(Established {
                        meeting: stored,
                        server,
                        created,
                    });
                }
                lost_claims += 1;
                if stored.server_id != here && !created.duplicate {
                    // Moved away while this create was on its way: what it made here must not
                    // hold anyone.
                    world.end(&here, &meeting).await;
                }
                if lost_claims > MAX_LOST_CLAIMS {
                    return Err(Error::BbbFailed(Failure::Contended));
                }
                meeting = stored;
                (fresh, leave) = (false, None);
                continue;
            }
            // BBB still holds the ended meeting here; a join URL for it would not work until
            // BBB purges it. Another server can start the session at once.
            Ok(_) => {
                tried.push(meeting.server_id.clone());
                leave = Some(Failure::StillEnding);
                continue;
            }
            Err(error) => error,
        };
        tracing::warn!(server = %meeting.server_id, meeting = %meeting.id, error = %error, kind = error.kind(), "BBB create failed");
        let failure = Failure::Bbb {
            server: meeting.server_id.clone(),
            error: error.clone(),
        };
        // BBB refused this meeting: the server is fine, moving would not help. A server that
        // refuses us altogether (misconfigured) is left like a dead one.
        if error.verdict() == Verdict::Answered {
            return Err(Error::BbbFailed(failure));
        }
        tried.push(meeting.server_id.clone());
        let seen = world.sighting(&meeting.server_id, &meeting.bbb_meeting_id);
        if fresh || failed_for_good(&seen) {
            if tried.len() >= MAX_SERVERS_PER_ATTEMPT {
                return Err(Error::BbbFailed(failure));
            }
            leave = Some(failure);
        } else {
            same_server_failures += 1;
            if same_server_failures >= SAME_SERVER_TRIES {
                return Err(Error::BbbFailed(failure));
            }
            tried.pop();
            world.pause(SAME_SERVER_PAUSE).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(5);

    fn at(ms: i64) -> SystemTime {
        crate::calendar::from_epoch_ms(ms)
    }

    fn seen(listed: Option<bool>, polled_at: i64) -> Sighting {
        Sighting {
            registered: true,
            state: ServerState::Enabled,
            health: Health::Healthy,
            listed,
            polled_at: Some(at(polled_at)),
        }
    }

    const CLAIMED: i64 = 1_000_000;
    /// The first moment evidence about a claim made at `CLAIMED` counts.
    const SETTLED: i64 = CLAIMED + 5_000 + 1_000 + 2_000;

    #[test]
    fn a_poll_older_than_the_latest_create_never_places_a_session_anew() {
        let now = at(SETTLED + 60_000);
        // The poll ran before the latest create could have landed: ask the server.
        let older = seen(Some(false), SETTLED - 1);
        assert_eq!(session(CLAIMED, &older, now, TIMEOUT, false), Session::Ask);
        let younger = seen(Some(false), SETTLED);
        assert_eq!(
            session(CLAIMED, &younger, now, TIMEOUT, false),
            Session::PlaceAnew
        );
        // Listed, or never polled: the session goes on.
        for s in [seen(Some(true), SETTLED + 1), seen(None, 0)] {
            assert_eq!(session(CLAIMED, &s, now, TIMEOUT, false), Session::Continue);
        }
    }

    #[test]
    fn nothing_is_placed_anew_while_a_create_may_be_on_its_way_or_rooms_are_pinned() {
        let gone = seen(Some(false), SETTLED + 10_000);
        assert_eq!(
            session(CLAIMED, &gone, at(SETTLED - 1), TIMEOUT, false),
            Session::Continue
        );
        assert_eq!(
            session(CLAIMED, &gone, at(SETTLED + 20_000), TIMEOUT, true),
            Session::Continue
        );
    }

    #[test]
    fn only_operators_move_a_meeting_before_its_server_is_tried() {
        let mut s = seen(Some(true), 0);
        s.health = Health::Unhealthy;
        assert_eq!(
            host(&s, CLAIMED, TIMEOUT),
            Host::Stay,
            "unhealthy: tried first"
        );
        assert!(failed_for_good(&s));
        s.health = Health::Healthy;
        assert!(
            !failed_for_good(&s),
            "one failed create is not a dead server"
        );
        s.state = ServerState::Disabled;
        assert_eq!(
            host(&s, CLAIMED, TIMEOUT),
            Host::Move,
            "disabled moves even listed meetings"
        );
        s.state = ServerState::Enabled;
        s.registered = false;
        assert_eq!(host(&s, CLAIMED, TIMEOUT), Host::Move);
    }

    #[test]
    fn a_cordoned_server_keeps_what_it_lists() {
        let mut s = seen(Some(true), 0);
        s.state = ServerState::Cordoned;
        // Listed, if only with guests waiting: kept.
        assert_eq!(host(&s, CLAIMED, TIMEOUT), Host::Stay);
        s.listed = None;
        assert_eq!(host(&s, CLAIMED, TIMEOUT), Host::Stay, "never polled");
        s.listed = Some(false);
        s.polled_at = Some(at(SETTLED - 1));
        assert_eq!(
            host(&s, CLAIMED, TIMEOUT),
            Host::Stay,
            "a poll before the latest create"
        );
        s.polled_at = Some(at(SETTLED));
        assert_eq!(host(&s, CLAIMED, TIMEOUT), Host::Move);
    }
}
