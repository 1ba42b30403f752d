//! The fleet of BBB servers: which exist, which may take a meeting, and where a new meeting goes.

mod placement;

pub use placement::{MeetingKind, PlacementRequest};

use crate::{
    bbb::Endpoint,
    store::{Server, ServerState},
};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, RwLock},
};

/// A configured server with its signing endpoint ready.
#[derive(Debug)]
pub struct FleetServer {
    pub spec: Server,
    pub endpoint: Endpoint,
}

impl FleetServer {
    /// Whether a meeting already pinned here may stay. A cordoned server keeps its meetings;
    /// a disabled one gives them up.
    pub fn keeps_meetings(&self) -> bool {
        self.spec.state != ServerState::Disabled
    }

    /// Whether the server may be used by this event at all.
    pub fn serves(&self, event_id: &str, organizer_id: &str) -> bool {
        let s = &self.spec;
        (s.events.is_empty() && s.organizers.is_empty())
            || s.events.iter().any(|e| e == event_id)
            || s.organizers.iter().any(|o| o == organizer_id)
    }
}

/// The servers in memory, swapped whole on change so readers never wait.
#[derive(Debug, Default)]
pub struct Fleet {
    servers: RwLock<Arc<HashMap<String, Arc<FleetServer>>>>,
    /// Calls placed per server since start: spreads private calls until the load-aware poller
    /// measures real load.
    placed: Mutex<HashMap<String, u64>>,
}

impl Fleet {
    pub fn new(servers: Vec<Server>) -> Self {
        let fleet = Self::default();
        fleet.replace(servers);
        fleet
    }

    /// Replaces the whole registry. Servers whose URL cannot be a BBB base are left out with a
    /// warning (the servers file is checked on load; this guards rows edited by hand).
    pub fn replace(&self, servers: Vec<Server>) {
        let map = servers
            .into_iter()
            .filter_map(|spec| {
                match Endpoint::new(&spec.url, spec.secret.clone(), spec.checksum) {
                    Ok(endpoint) => Some((spec.id.clone(), Arc::new(FleetServer { spec, endpoint }))),
                    Err(err) => {
                        tracing::warn!(server = %spec.id, %err, "ignoring a server with an unusable URL");
                        None
                    }
                }
            })
            .collect();
        *self.servers.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(map);
    }

    pub fn get(&self, id: &str) -> Option<Arc<FleetServer>> {
        self.snapshot().get(id).cloned()
    }

    pub fn snapshot(&self) -> Arc<HashMap<String, Arc<FleetServer>>> {
        self.servers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Picks the server for a new meeting, or `None` when no server fits.
    /// `event_rooms` counts this event's rooms per server, for spreading rooms of one event.
    pub fn place(
        &self,
        request: &PlacementRequest<'_>,
        event_rooms: &HashMap<String, u64>,
    ) -> Option<Arc<FleetServer>> {
        let servers = self.snapshot();
        let mut placed = self.placed.lock().unwrap_or_else(|p| p.into_inner());
        let chosen = placement::choose(request, servers.values(), |server| {
            let id = &server.spec.id;
            match request.kind {
                MeetingKind::Room => event_rooms.get(id).copied().unwrap_or(0),
                MeetingKind::Call => placed.get(id).copied().unwrap_or(0),
            }
        })?;
        if request.kind == MeetingKind::Call {
            *placed.entry(chosen.spec.id.clone()).or_default() += 1;
        }
        Some(chosen.clone())
    }
}
