//! An emulated BigBlueButton server: a stateful stand-in for BBB 2.7/3.0 on 127.0.0.1, for
//! tests, benchmarks and first runs without a real BBB.
//!
//! It speaks the BBB API as the wire shows it (checksums over the raw query string, the
//! templates' element order, the real `messageKey`s, join's redirects, recordings that appear
//! when a recorded meeting ends) and can be made slow or sick on purpose ([`Fault`], latency).
//! What it cannot do is host a meeting: a successful join stands for a user arriving.
//!
//! In process: [`SimServer::start`], over HTTPS with [`SimConfig::tls`]. From the command line: `eventyay-bbb sim` (`cli::sim`), with
//! a small control surface under `/_sim/` on the same port (see `control`).

mod api;
mod control;
mod faults;
mod params;
mod server;
mod state;
mod xml;

pub use faults::Fault;
pub use server::SimServer;

use crate::{bbb::checksum::ChecksumAlgorithm, secret::Secret, tls::Identity};
use std::{net::SocketAddr, time::Duration};

/// How an emulated server is set up.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Loopback only; port 0 picks a free port.
    pub listen: SocketAddr,
    pub secret: Secret,
    /// Checksum algorithms accepted, told apart by the checksum's length as BBB does.
    pub checksums: Vec<ChecksumAlgorithm>,
    /// How long a recording stays `processing` after its meeting ended.
    pub publish_delay: Duration,
    /// Delay added to every API answer.
    pub latency: Duration,
    /// How long an ended meeting lingers before a create makes a new one (real BBB purges
    /// ended meetings after a while; until then create answers for the old one).
    pub ended_retention: Duration,
    /// Serve HTTPS with this certificate (its names must include 127.0.0.1), else plain HTTP.
    pub tls: Option<Identity>,
}

impl SimConfig {
    /// 127.0.0.1 on a free port, all four checksum algorithms, no delays.
    pub fn new(secret: impl Into<String>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            secret: Secret::new(secret),
            checksums: ChecksumAlgorithm::ALL.to_vec(),
            publish_delay: Duration::ZERO,
            latency: Duration::ZERO,
            ended_retention: Duration::ZERO,
            tls: None,
        }
    }
}

/// The counts a meeting reports in getMeetings/getMeetingInfo, as a load test wants them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Load {
    pub participants: u32,
    pub voice: u32,
    pub video: u32,
    pub listeners: u32,
    pub moderators: u32,
}

/// A meeting that has not ended, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeetingSnapshot {
    pub meeting_id: String,
    pub internal_meeting_id: String,
    pub name: String,
    /// Epoch milliseconds.
    pub create_time: u64,
    pub record: bool,
    pub running: bool,
    pub participants: u32,
    pub moderators: u32,
    pub attendee_pw: String,
    pub moderator_pw: String,
    pub voice_bridge: String,
    pub guest_policy: String,
    /// `meta_` parameters as kept: key without the prefix, lower-cased.
    pub metadata: Vec<(String, String)>,
    /// The `<document url=…>`s of a POST create's presentation module.
    pub presentation_urls: Vec<String>,
    /// The decoded parameters of the create that made the meeting, checksum left out.
    pub create_params: Vec<(String, String)>,
}

/// A recording left by a recorded meeting that ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingSnapshot {
    pub record_id: String,
    pub meeting_id: String,
    /// `processing`, then `published`.
    pub state: String,
}
