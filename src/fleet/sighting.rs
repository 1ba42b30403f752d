//! What the fleet knows of one meeting on its server, for the meeting's lifecycle to decide on.

use super::{Fleet, Health, Tracker};
use crate::domain::ServerState;
use std::time::SystemTime;

/// What the fleet knows of a meeting's server at a join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sighting {
    /// The server is registered (not removed).
    pub registered: bool,
    pub state: ServerState,
    pub health: Health,
    /// Whether its last poll listed the meeting (running, or waiting for its first user);
    /// `None`: never polled.
    pub listed: Option<bool>,
    /// When its last poll was sent. An end BBB reported since drops the meeting from what
    /// that poll listed (see `ended`).
    pub polled_at: Option<SystemTime>,
}

impl Fleet {
    /// What is known now of meeting `meeting_id` on server `server_id`.
    pub fn sighting(&self, server_id: &str, meeting_id: &str) -> Sighting {
        let server = self.get(server_id);
        let live = self.live();
        let polled = live.polled.get(server_id).filter(|p| p.at.is_some());
        Sighting {
            registered: server.is_some(),
            state: server.map_or(ServerState::Disabled, |s| s.spec.state),
            health: live
                .health
                .get(server_id)
                .map_or(Health::Unknown, Tracker::health),
            listed: polled.map(|p| p.meetings.contains_key(meeting_id)),
            polled_at: polled.and_then(|p| p.at),
        }
    }
}
