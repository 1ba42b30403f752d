//! A meeting's lifecycle, decided in one place: when a join may keep a room's meeting where it
//! is, when its server must be asked, when its next session is placed anew, and where a
//! create may go when the attempt holds no claim.
//!
//! The rule that keeps one room in one meeting: **every create is preceded by a won claim**.
//! A claim is a compare-and-swap on the meeting's row (its server and `claimed_at`), so of
//! any number of replicas deciding one meeting at once exactly one wins, and the others follow
//! the winner's server. Placements claim as they write (a first row, a new session, a move);
//! a create on the meeting's own server claims to stay. So no create that may make a fresh
//! meeting is older than the meeting's latest claim, and evidence that a meeting is gone — a
//! poll that does not list it, BBB's end callback — counts only when it is younger than that
//! claim's create can be: `settled_at`.
//!
//! Everything here is pure: the caller brings the fleet's view and the time.

use crate::{
    domain::ServerState,
    fleet::{Health, Sighting},
};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How far apart the replicas' clocks may be. A claim carries the claimer's clock; polls and
/// callbacks carry another replica's.
pub const CLOCK_SKEW: Duration = Duration::from_secs(2);
/// Beyond the create timeout, how long a create may take to reach its server.
const SETTLE_MARGIN: Duration = Duration::from_secs(1);

/// From when evidence that a meeting is gone may be trusted: the latest create under the claim
/// made at `claimed_at` (epoch ms) has reached its server or timed out by then, on any clock.
pub fn settled_at(claimed_at: i64, create_timeout: Duration) -> SystemTime {
    UNIX_EPOCH
        + Duration::from_millis(u64::try_from(claimed_at).unwrap_or(0))
        + create_timeout
        + SETTLE_MARGIN
        + CLOCK_SKEW
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
    if seen.ended_at.is_some_and(|at| at >= settled) {
        return Session::PlaceAnew;
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

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(5);

    fn at(ms: i64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms as u64)
    }

    fn seen(listed: Option<bool>, polled_at: i64) -> Sighting {
        Sighting {
            registered: true,
            state: ServerState::Enabled,
            health: Health::Healthy,
            listed,
            running: listed == Some(true),
            polled_at: Some(at(polled_at)),
            ended_at: None,
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
    fn an_end_callback_counts_only_after_the_latest_create_settled() {
        let now = at(SETTLED + 60_000);
        let mut s = seen(Some(true), SETTLED - 5_000);
        s.ended_at = Some(at(SETTLED + 1));
        assert_eq!(
            session(CLAIMED, &s, now, TIMEOUT, false),
            Session::PlaceAnew
        );
        // It may be the end of the meeting the latest create then made anew.
        s.ended_at = Some(at(CLAIMED + 500));
        assert_eq!(session(CLAIMED, &s, now, TIMEOUT, false), Session::Continue);
    }

    #[test]
    fn only_operators_move_a_meeting_before_its_server_is_tried() {
        let mut s = seen(Some(true), 0);
        s.health = Health::Unhealthy;
        s.running = false;
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
        s.running = true;
        assert_eq!(
            host(&s, CLAIMED, TIMEOUT),
            Host::Move,
            "disabled moves even running meetings"
        );
        s.state = ServerState::Enabled;
        s.registered = false;
        assert_eq!(host(&s, CLAIMED, TIMEOUT), Host::Move);
    }

    #[test]
    fn a_cordoned_server_keeps_what_it_lists() {
        let mut s = seen(Some(true), 0);
        s.state = ServerState::Cordoned;
        // Listed with only guests waiting: not running, still kept.
        s.running = false;
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
