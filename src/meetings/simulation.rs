//! A seeded, replayable simulation of the meeting lifecycle: the service's own join flow
//! (`lifecycle::ensure_room`, `establish`) runs against a simulated world of several replicas
//! over one database, BBB servers with latency, crashes, lingering ended meetings and dropped
//! polls, replicas' clocks up to 2 s apart, a leader's poll that the others copy a round late,
//! BBB's end callback, and a random schedule of joins, ends, cordons and failures. Time is
//! simulated: a run of minutes takes milliseconds, and one seed always replays the same run.
//!
//! After every step it checks that no room's meeting has users on two servers; after the
//! storm, in calm weather, every room's join must open a meeting. A failure names its seed;
//! `EVENTYAY_BBB_SIM_SEED=<seed>` replays just that one, `EVENTYAY_BBB_SIM_SEEDS=<n>` runs more.

use super::Error;
use super::lifecycle::{self, Established, Move, World};
use crate::{
    bbb::{BbbError, Created},
    domain::{Meeting, ServerState},
    fleet::{Health, Sighting},
};
use rand::{Rng, SeedableRng, rngs::StdRng};
use std::{
    cell::RefCell,
    cmp::Reverse,
    collections::{BTreeMap, BTreeSet, BinaryHeap},
    future::Future,
    pin::Pin,
    rc::Rc,
    task::{Context, Poll, Waker},
    time::{Duration, UNIX_EPOCH},
};

const SERVERS: usize = 3;
const REPLICAS: usize = 3;
const ROOMS: usize = 3;
/// Simulated milliseconds.
const START: i64 = 1_800_000_000_000;
const STORM_MS: i64 = 60_000;
const CALM_MS: i64 = 15_000;
const CREATE_TIMEOUT_MS: i64 = 2_000;
const POLL_MS: i64 = 1_000;
/// How long a join's outcome is reused by its replica (the service's ensure TTL).
const ENSURE_TTL_MS: i64 = 2_000;
/// Each replica's clock is off by at most this much, so any two are at most 2 s apart.
const MAX_SKEW_MS: i64 = 1_000;

type Time = i64;

fn server_id(k: usize) -> String {
    format!("s{k}")
}

fn server_index(id: &str) -> usize {
    id[1..].parse().expect("a simulated server id")
}

fn meeting_id(room: usize) -> String {
    format!("m{room}")
}

/// A meeting on a simulated BBB server.
#[derive(Debug, Clone)]
struct Live {
    users: u32,
    /// Ended by BBB and kept until purged: creates are answered "ended", joins fail.
    ended: bool,
    /// Which meeting this is: a join URL opens only the meeting it was made for (BBB checks
    /// the createTime it carries).
    incarnation: u64,
}

#[derive(Debug)]
struct Server {
    up: bool,
    state: ServerState,
    /// Each request takes up to this long each way.
    latency: Time,
    meetings: BTreeMap<usize, Live>,
}

/// A replica's view of one server, as the fleet keeps it.
#[derive(Debug, Clone, Default)]
struct View {
    /// When the last answered poll was sent (the leader's clock).
    at: Option<Time>,
    listed: BTreeSet<usize>,
    failures: u32,
}

#[derive(Debug)]
struct Replica {
    skew: Time,
    views: Vec<View>,
    /// Ends BBB reported (server, room, when, by the receiver's clock), applied after every
    /// change of the view, as `fleet::ended` does.
    ends: Vec<(usize, usize, Time)>,
    /// A join's outcome reused for `ENSURE_TTL_MS`: (server, incarnation, at, until).
    cached: BTreeMap<usize, (usize, u64, Time, Time)>,
}

impl Replica {
    fn apply_ends(&mut self) {
        for &(k, room, ended_at) in &self.ends {
            let view = &mut self.views[k];
            if view.at.is_some_and(|at| at < ended_at) {
                view.listed.remove(&room);
            }
        }
    }
}

/// The database's row of a room's meeting.
#[derive(Debug, Clone)]
struct Row {
    server: usize,
    claimed_at: Time,
}

/// A database operation, done when its event comes.
#[derive(Debug, Clone)]
enum DbOp {
    Row,
    PlaceFirst,
    PlaceAgain {
        meeting: Meeting,
        exclude: Vec<String>,
    },
    /// A claim to stay, before a create and to confirm it.
    Stay {
        meeting: Meeting,
    },
}

#[derive(Debug)]
enum Reply {
    Row(Option<Meeting>),
    Placed(Option<(Meeting, bool)>),
    Claimed((Meeting, bool)),
    Holds(Option<bool>),
    Created(Result<Created, BbbError>),
    Done,
}

/// What a replica asks a BBB server about a room's meeting.
#[derive(Debug, Clone, Copy)]
enum Call {
    Create,
    /// getMeetingInfo
    Holds,
    /// An end of a meeting made while it moved elsewhere.
    End,
}

#[derive(Debug)]
enum Event {
    Tick,
    Poll,
    Share(usize),
    Db {
        op: u64,
        replica: usize,
        room: usize,
        what: DbOp,
    },
    Wake(u64),
    /// A call to BBB reaches its server.
    Arrives {
        op: u64,
        server: usize,
        room: usize,
        call: Call,
    },
    /// An answer, or the caller giving up on it: whichever comes first counts.
    Answer {
        op: u64,
        reply: Option<Reply>,
    },
    /// A join after the storm.
    CalmJoin {
        replica: usize,
        room: usize,
    },
    PollArrives {
        server: usize,
        sent: Time,
    },
    PollAnswer {
        server: usize,
        sent: Time,
        snapshot: Option<BTreeSet<usize>>,
    },
    /// BBB's end callback reaches a replica.
    EndReported {
        replica: usize,
        server: usize,
        room: usize,
    },
    Purge {
        server: usize,
        room: usize,
        incarnation: u64,
    },
    /// A user opens a join URL.
    Enter {
        server: usize,
        room: usize,
        incarnation: u64,
    },
}

struct Sim {
    rng: StdRng,
    now: Time,
    seq: u64,
    queue: BinaryHeap<Reverse<(Time, u64)>>,
    events: BTreeMap<u64, Event>,
    servers: Vec<Server>,
    replicas: Vec<Replica>,
    rows: BTreeMap<usize, Row>,
    replies: BTreeMap<u64, Reply>,
    /// Operations answered or given up on: what comes second is dropped.
    settled: BTreeSet<u64>,
    next_incarnation: u64,
    storm: bool,
    stats: Stats,
}

#[derive(Debug, Default)]
struct Stats {
    joins: u64,
    answered: u64,
    failed: BTreeMap<&'static str, u64>,
    entered: u64,
    stale_urls: u64,
    moves: u64,
    new_sessions: u64,
}

impl Sim {
    /// With `EVENTYAY_BBB_SIM_TRACE` set, says what happens, to read a failing seed's run.
    fn trace(&self, what: std::fmt::Arguments<'_>) {
        if std::env::var_os("EVENTYAY_BBB_SIM_TRACE").is_some() {
            eprintln!("{:>6} {what}", self.now - START);
        }
    }

    fn at(&mut self, delay: Time, event: Event) -> u64 {
        self.seq += 1;
        let id = self.seq;
        self.queue.push(Reverse((self.now + delay.max(0), id)));
        self.events.insert(id, event);
        id
    }

    fn clock(&self, replica: usize) -> Time {
        self.now + self.replicas[replica].skew
    }

    fn latency(&mut self, server: usize) -> Time {
        let most = self.servers[server].latency;
        self.rng.random_range(0..=most)
    }

    fn meeting(&self, room: usize, row: &Row) -> Meeting {
        Meeting {
            id: format!("row-{room}"),
            event_id: "ev".into(),
            organizer_id: "org".into(),
            room_id: Some(format!("room-{room}")),
            bbb_meeting_id: meeting_id(room),
            attendee_pw: "a".into(),
            moderator_pw: "m".into(),
            server_id: server_id(row.server),
            imported: false,
            claimed_at: row.claimed_at,
        }
    }

    fn healthy(&self, replica: usize, k: usize) -> bool {
        self.replicas[replica].views[k].failures < 2
    }

    /// Placement as the replica sees the fleet: enabled, healthy servers not excluded, the
    /// one listing the fewest meetings (ties at random).
    fn place(&mut self, replica: usize, exclude: &[String]) -> Option<usize> {
        let open: Vec<usize> = (0..SERVERS)
            .filter(|&k| self.servers[k].state == ServerState::Enabled)
            .filter(|&k| self.healthy(replica, k))
            .filter(|&k| !exclude.contains(&server_id(k)))
            .collect();
        let fewest = open
            .iter()
            .map(|&k| self.replicas[replica].views[k].listed.len())
            .min()?;
        let best: Vec<usize> = open
            .into_iter()
            .filter(|&k| self.replicas[replica].views[k].listed.len() == fewest)
            .collect();
        Some(best[self.rng.random_range(0..best.len())])
    }

    /// A claim of `meeting` for server `to`, as the store makes it: a placement's (`read`: the
    /// claim it was read with) is a compare-and-swap on the meeting's server and that claim; a
    /// claim to stay (`None`) wins while the meeting is still there.
    fn claim(
        &mut self,
        replica: usize,
        room: usize,
        meeting: &Meeting,
        to: usize,
        read: Option<Time>,
    ) -> (Meeting, bool) {
        let now = self.clock(replica);
        let row = self
            .rows
            .get_mut(&room)
            .expect("a claimed meeting has its row");
        let won = row.server == server_index(&meeting.server_id)
            && read.is_none_or(|read| row.claimed_at <= read);
        if won {
            row.server = to;
            row.claimed_at = now.max(read.unwrap_or(row.claimed_at) + 1);
        }
        let row = row.clone();
        self.trace(format_args!(
            "r{replica} claims room {room} {} -> s{to}: {}",
            meeting.server_id,
            if won { "won" } else { "lost" }
        ));
        (self.meeting(room, &row), won)
    }

    fn db(&mut self, replica: usize, room: usize, what: DbOp) -> Reply {
        match what {
            DbOp::Row => Reply::Row(
                self.rows
                    .get(&room)
                    .cloned()
                    .map(|r| self.meeting(room, &r)),
            ),
            DbOp::PlaceFirst => {
                if let Some(row) = self.rows.get(&room).cloned() {
                    return Reply::Placed(Some((self.meeting(room, &row), false)));
                }
                let Some(k) = self.place(replica, &[]) else {
                    return Reply::Placed(None);
                };
                let row = Row {
                    server: k,
                    claimed_at: self.clock(replica),
                };
                self.rows.insert(room, row.clone());
                Reply::Placed(Some((self.meeting(room, &row), true)))
            }
            DbOp::PlaceAgain { meeting, exclude } => {
                let Some(k) = self.place(replica, &exclude) else {
                    return Reply::Placed(None);
                };
                Reply::Placed(Some(self.claim(
                    replica,
                    room,
                    &meeting,
                    k,
                    Some(meeting.claimed_at),
                )))
            }
            DbOp::Stay { meeting } => {
                let here = server_index(&meeting.server_id);
                Reply::Claimed(self.claim(replica, room, &meeting, here, None))
            }
        }
    }

    /// BBB's create: a new meeting, the one it holds (a duplicate), or the ended one it still
    /// keeps.
    fn create(&mut self, server: usize, room: usize) -> Created {
        let incarnation = self.next_incarnation;
        let live = self.servers[server].meetings.entry(room).or_insert(Live {
            users: 0,
            ended: false,
            incarnation,
        });
        let created = Created {
            meeting_id: meeting_id(room),
            internal_meeting_id: String::new(),
            create_time: live.incarnation,
            attendee_pw: "a".into(),
            moderator_pw: "m".into(),
            voice_bridge: String::new(),
            duplicate: live.incarnation != incarnation,
            ended: live.ended,
        };
        if !created.duplicate {
            self.next_incarnation += 1;
        }
        self.trace(format_args!(
            "s{server} create room {room}: {}",
            if created.ended {
                "ended"
            } else if created.duplicate {
                "duplicate"
            } else {
                "fresh"
            }
        ));
        created
    }

    fn kill(&mut self, server: usize, room: usize) {
        if let Some(live) = self.servers[server].meetings.get_mut(&room)
            && !live.ended
        {
            live.ended = true;
            live.users = 0;
            let incarnation = live.incarnation;
            // BBB keeps an ended meeting a while (creates answer "ended"), or drops it at once.
            let linger = if self.rng.random_bool(0.5) {
                0
            } else {
                self.rng.random_range(0..4_000)
            };
            self.at(
                linger,
                Event::Purge {
                    server,
                    room,
                    incarnation,
                },
            );
            // Its end callback: at once to one replica, within a second to the others.
            let first = self.rng.random_range(0..REPLICAS);
            for replica in 0..REPLICAS {
                let delay = if replica == first {
                    self.rng.random_range(0..200)
                } else {
                    self.rng.random_range(200..1_200)
                };
                self.at(
                    delay,
                    Event::EndReported {
                        replica,
                        server,
                        room,
                    },
                );
            }
        }
    }

    /// One room's meeting never has users on two servers.
    fn check(&self, seed: u64) {
        for room in 0..ROOMS {
            let with_users: Vec<usize> = (0..SERVERS)
                .filter(|&k| {
                    self.servers[k]
                        .meetings
                        .get(&room)
                        .is_some_and(|m| !m.ended && m.users > 0)
                })
                .collect();
            assert!(
                with_users.len() <= 1,
                "seed {seed}: at {} ms the meeting of room {room} has users on servers {with_users:?} \
                 (replay: EVENTYAY_BBB_SIM_SEED={seed})",
                self.now - START
            );
        }
    }
}

/// The lifecycle's world as one replica's attempt for one room sees it.
struct Attempt {
    sim: Rc<RefCell<Sim>>,
    replica: usize,
    room: usize,
}

/// Waits for the reply of operation `op`.
struct Wait {
    sim: Rc<RefCell<Sim>>,
    op: u64,
}

impl Future for Wait {
    type Output = Reply;
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Reply> {
        match self.sim.borrow_mut().replies.remove(&self.op) {
            Some(reply) => Poll::Ready(reply),
            None => Poll::Pending,
        }
    }
}

impl Attempt {
    async fn db(&self, what: DbOp) -> Reply {
        let op = {
            let mut sim = self.sim.borrow_mut();
            let delay = sim.rng.random_range(1..30);
            let (replica, room) = (self.replica, self.room);
            let id = sim.seq + 1;
            sim.at(
                delay,
                Event::Db {
                    op: id,
                    replica,
                    room,
                    what,
                },
            )
        };
        Wait {
            sim: self.sim.clone(),
            op,
        }
        .await
    }

    /// Sends `call` to `server`: its answer, or `Reply::Done` when none came within the
    /// create timeout (which counts against the server, as an answer counts for it).
    async fn ask(&self, server: usize, call: Call) -> Reply {
        let op = {
            let mut sim = self.sim.borrow_mut();
            let op = sim.seq + 1;
            sim.at(CREATE_TIMEOUT_MS, Event::Answer { op, reply: None });
            if sim.servers[server].up {
                let there = sim.latency(server);
                let room = self.room;
                sim.at(
                    there,
                    Event::Arrives {
                        op,
                        server,
                        room,
                        call,
                    },
                );
            }
            op
        };
        let reply = Wait {
            sim: self.sim.clone(),
            op,
        }
        .await;
        let mut sim = self.sim.borrow_mut();
        let view = &mut sim.replicas[self.replica].views[server];
        match reply {
            Reply::Done if !matches!(call, Call::End) => view.failures += 1,
            _ => view.failures = 0,
        }
        reply
    }
}

impl World for Attempt {
    type Server = usize;

    fn now(&self) -> std::time::SystemTime {
        let now = self.sim.borrow().clock(self.replica);
        UNIX_EPOCH + Duration::from_millis(now as u64)
    }

    fn create_timeout(&self) -> Duration {
        Duration::from_millis(CREATE_TIMEOUT_MS as u64)
    }

    async fn pause(&self, pause: Duration) {
        let op = {
            let mut sim = self.sim.borrow_mut();
            let id = sim.seq + 1;
            sim.at(pause.as_millis() as Time, Event::Wake(id))
        };
        Wait {
            sim: self.sim.clone(),
            op,
        }
        .await;
    }

    fn sighting(&self, server: &str, _meeting_id: &str) -> Sighting {
        let sim = self.sim.borrow();
        let k = server_index(server);
        let view = &sim.replicas[self.replica].views[k];
        Sighting {
            registered: true,
            state: sim.servers[k].state,
            health: if view.failures >= 2 {
                Health::Unhealthy
            } else {
                Health::Healthy
            },
            listed: view.at.map(|_| view.listed.contains(&self.room)),
            polled_at: view
                .at
                .map(|at| UNIX_EPOCH + Duration::from_millis(at as u64)),
        }
    }

    async fn row(&self) -> Result<Option<Meeting>, Error> {
        match self.db(DbOp::Row).await {
            Reply::Row(row) => Ok(row),
            other => unreachable!("{other:?}"),
        }
    }

    async fn place_first(&self) -> Result<Option<(Meeting, bool)>, Error> {
        match self.db(DbOp::PlaceFirst).await {
            Reply::Placed(placed) => Ok(placed),
            other => unreachable!("{other:?}"),
        }
    }

    async fn place_again(
        &self,
        meeting: &Meeting,
        _why: Move,
        exclude: &[String],
    ) -> Result<Option<(Meeting, bool)>, Error> {
        let what = DbOp::PlaceAgain {
            meeting: meeting.clone(),
            exclude: exclude.to_vec(),
        };
        match self.db(what).await {
            Reply::Placed(placed) => Ok(placed),
            other => unreachable!("{other:?}"),
        }
    }

    async fn claim(&self, meeting: &Meeting) -> Result<(Meeting, bool), Error> {
        let what = DbOp::Stay {
            meeting: meeting.clone(),
        };
        match self.db(what).await {
            Reply::Claimed(claimed) => Ok(claimed),
            other => unreachable!("{other:?}"),
        }
    }

    async fn holds(&self, server: &str, _meeting_id: &str) -> Option<bool> {
        let k = server_index(server);
        match self.ask(k, Call::Holds).await {
            Reply::Holds(holds) => holds,
            _ => None,
        }
    }

    async fn create(&self, meeting: &Meeting) -> Option<(usize, Result<Created, BbbError>)> {
        let k = server_index(&meeting.server_id);
        let outcome = match self.ask(k, Call::Create).await {
            Reply::Created(created) => created,
            _ => Err(BbbError::Timeout(self.create_timeout())),
        };
        Some((k, outcome))
    }

    async fn end(&self, server: &str, _meeting: &Meeting) {
        self.ask(server_index(server), Call::End).await;
    }

    fn moved(&self, _before: &Meeting, _after: &Meeting, why: Move) {
        let mut sim = self.sim.borrow_mut();
        match why {
            Move::Failover => sim.stats.moves += 1,
            Move::NewSession => sim.stats.new_sessions += 1,
        }
    }
}

type Outcome = Result<Established<usize>, Error>;

/// A replica's attempt for a room, shared by the joins that wait for it.
struct Flight {
    replica: usize,
    room: usize,
    /// Started after the storm: it must succeed.
    calm: bool,
    task: Pin<Box<dyn Future<Output = Outcome>>>,
    waiting: u32,
}

fn run(seed: u64) -> Stats {
    let mut rng = StdRng::seed_from_u64(seed);
    let replicas = (0..REPLICAS)
        .map(|_| Replica {
            skew: rng.random_range(-MAX_SKEW_MS..=MAX_SKEW_MS),
            views: vec![View::default(); SERVERS],
            ends: Vec::new(),
            cached: BTreeMap::new(),
        })
        .collect();
    let servers = (0..SERVERS)
        .map(|_| Server {
            up: true,
            state: ServerState::Enabled,
            latency: 50,
            meetings: BTreeMap::new(),
        })
        .collect();
    let sim = Rc::new(RefCell::new(Sim {
        rng,
        now: START,
        seq: 0,
        queue: BinaryHeap::new(),
        events: BTreeMap::new(),
        servers,
        replicas,
        rows: BTreeMap::new(),
        replies: BTreeMap::new(),
        settled: BTreeSet::new(),
        next_incarnation: 1,
        storm: true,
        stats: Stats::default(),
    }));
    {
        let mut s = sim.borrow_mut();
        s.at(0, Event::Poll);
        for replica in 1..REPLICAS {
            let phase = s.rng.random_range(0..POLL_MS);
            s.at(phase, Event::Share(replica));
        }
        s.at(500, Event::Tick);
    }
    let mut flights: Vec<Flight> = Vec::new();
    let end = START + STORM_MS + CALM_MS;
    let waker = Waker::noop();
    let mut cx = Context::from_waker(waker);
    loop {
        let next = sim.borrow_mut().queue.pop();
        let Some(Reverse((time, id))) = next else {
            break;
        };
        // Polls go on for ever: the run ends when the calm is over and every attempt is done.
        if time > end && flights.is_empty() {
            break;
        }
        let event = {
            let mut s = sim.borrow_mut();
            s.now = time;
            s.events.remove(&id).expect("a scheduled event")
        };
        let joins = step(&sim, event);
        for (replica, room) in joins {
            join(&sim, &mut flights, replica, room);
        }
        // Every attempt goes as far as it can before the next event.
        flights.retain_mut(|flight| match flight.task.as_mut().poll(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(outcome) => {
                answer(&sim, flight, outcome);
                false
            }
        });
        sim.borrow().check(seed);
    }
    assert!(flights.is_empty(), "seed {seed}: attempts never finished");
    let s = Rc::try_unwrap(sim)
        .unwrap_or_else(|_| panic!("seed {seed}: an attempt outlived the run"))
        .into_inner();
    // In calm weather every room's joins opened its meeting, on one server.
    for room in 0..ROOMS {
        let with_users: Vec<usize> = (0..SERVERS)
            .filter(|&k| {
                s.servers[k]
                    .meetings
                    .get(&room)
                    .is_some_and(|m| m.users > 0)
            })
            .collect();
        assert_eq!(
            with_users.len(),
            1,
            "seed {seed}: after the calm joins room {room} has users on {with_users:?} \
             (replay: EVENTYAY_BBB_SIM_SEED={seed}); {:?}",
            s.stats
        );
    }
    s.stats
}

/// A join of `room` through `replica`: its cached outcome, or the attempt under way, or a new
/// attempt.
fn join(sim: &Rc<RefCell<Sim>>, flights: &mut Vec<Flight>, replica: usize, room: usize) {
    {
        let mut s = sim.borrow_mut();
        s.stats.joins += 1;
        let now = s.clock(replica);
        let cached = s.replicas[replica].cached.get(&room).copied();
        if let Some((k, incarnation, at, until)) = cached {
            let view = &s.replicas[replica].views[k];
            // As `Fleet::still_hosting`: a usable server whose polls since still list it.
            let hosting = view.failures < 2
                && (view.at.is_none_or(|p| p <= at) || view.listed.contains(&room));
            if now < until && hosting {
                s.stats.answered += 1;
                let delay = s.rng.random_range(0..1_000);
                s.at(
                    delay,
                    Event::Enter {
                        server: k,
                        room,
                        incarnation,
                    },
                );
                return;
            }
        }
    }
    if let Some(flight) = flights
        .iter_mut()
        .find(|f| f.replica == replica && f.room == room)
    {
        flight.waiting += 1;
        return;
    }
    let world = Attempt {
        sim: sim.clone(),
        replica,
        room,
    };
    let calm = !sim.borrow().storm;
    flights.push(Flight {
        replica,
        room,
        calm,
        task: Box::pin(async move { lifecycle::ensure_room(&world, false).await }),
        waiting: 1,
    });
}

fn answer(sim: &Rc<RefCell<Sim>>, flight: &Flight, outcome: Outcome) {
    let mut s = sim.borrow_mut();
    match outcome {
        Ok(established) => {
            let k = established.server;
            let incarnation = established.created.create_time;
            let (now, until) = (s.clock(flight.replica), s.now + ENSURE_TTL_MS);
            s.replicas[flight.replica]
                .cached
                .insert(flight.room, (k, incarnation, now, until));
            for _ in 0..flight.waiting {
                s.stats.answered += 1;
                let delay = s.rng.random_range(0..1_000);
                s.at(
                    delay,
                    Event::Enter {
                        server: k,
                        room: flight.room,
                        incarnation,
                    },
                );
            }
        }
        Err(error) => {
            let cause = match &error {
                Error::BbbFailed(failure) => failure.cause(),
                Error::Unavailable(_) => "database",
                Error::Denied | Error::MissingProfile => "denied",
            };
            assert!(
                !flight.calm,
                "a join failed in calm weather ({cause}): {error} (replay with \
                 EVENTYAY_BBB_SIM_SEED and the seed that failed)"
            );
            *s.stats.failed.entry(cause).or_default() += u64::from(flight.waiting);
        }
    }
}

/// Does what `event` says; returns the joins it starts.
fn step(sim: &Rc<RefCell<Sim>>, event: Event) -> Vec<(usize, usize)> {
    let mut s = sim.borrow_mut();
    let s = &mut *s;
    let mut joins = Vec::new();
    match event {
        Event::Db {
            op,
            replica,
            room,
            what,
        } => {
            let reply = s.db(replica, room, what);
            s.replies.insert(op, reply);
        }
        Event::Wake(op) => {
            s.replies.insert(op, Reply::Done);
        }
        Event::Arrives {
            op,
            server,
            room,
            call,
        } => {
            if !s.servers[server].up {
                return joins;
            }
            let reply = match call {
                Call::Create => Reply::Created(Ok(s.create(server, room))),
                Call::Holds => {
                    let holds = s.servers[server]
                        .meetings
                        .get(&room)
                        .is_some_and(|m| !m.ended);
                    s.trace(format_args!("s{server} asked for room {room}: {holds}"));
                    Reply::Holds(Some(holds))
                }
                Call::End => {
                    s.trace(format_args!(
                        "s{server} ends room {room}, made while it moved"
                    ));
                    s.kill(server, room);
                    Reply::Done
                }
            };
            let back = s.latency(server);
            s.at(
                back,
                Event::Answer {
                    op,
                    reply: Some(reply),
                },
            );
        }
        Event::Answer { op, reply } => {
            if s.settled.insert(op) {
                s.replies.insert(op, reply.unwrap_or(Reply::Done));
            }
        }
        Event::CalmJoin { replica, room } => joins.push((replica, room)),
        Event::Poll => {
            // The leader (replica 0) polls every server; a poll is dropped now and then.
            let sent = s.clock(0);
            for server in 0..SERVERS {
                if s.servers[server].up && !s.rng.random_bool(0.05) {
                    let there = s.latency(server);
                    s.at(there, Event::PollArrives { server, sent });
                } else {
                    s.at(
                        POLL_MS,
                        Event::PollAnswer {
                            server,
                            sent,
                            snapshot: None,
                        },
                    );
                }
            }
            s.at(POLL_MS, Event::Poll);
        }
        Event::PollArrives { server, sent } => {
            if !s.servers[server].up {
                return joins;
            }
            let meetings = &s.servers[server].meetings;
            let listed = meetings
                .iter()
                .filter(|(_, m)| !m.ended)
                .map(|(r, _)| *r)
                .collect();
            let back = s.latency(server);
            s.at(
                back,
                Event::PollAnswer {
                    server,
                    sent,
                    snapshot: Some(listed),
                },
            );
        }
        Event::PollAnswer {
            server,
            sent,
            snapshot,
        } => {
            // Too late for its round is a failed poll.
            let in_time = s.clock(0) - sent <= POLL_MS;
            let leader = &mut s.replicas[0];
            match snapshot.filter(|_| in_time) {
                Some(listed) => {
                    if std::env::var_os("EVENTYAY_BBB_SIM_TRACE").is_some() {
                        eprintln!(
                            "{:>6} poll of s{server} sent {} lists {listed:?}",
                            s.now - START,
                            sent - START
                        );
                    }
                    if leader.views[server].at.is_none_or(|at| at <= sent) {
                        leader.views[server] = View {
                            at: Some(sent),
                            listed,
                            failures: 0,
                        };
                    }
                }
                None => leader.views[server].failures += 1,
            }
            leader.apply_ends();
        }
        Event::Share(replica) => {
            // A follower takes the leader's view once a round.
            let views = s.replicas[0].views.clone();
            let follower = &mut s.replicas[replica];
            follower.views = views;
            follower.apply_ends();
            s.at(POLL_MS, Event::Share(replica));
        }
        Event::EndReported {
            replica,
            server,
            room,
        } => {
            let ended_at = s.clock(replica);
            let r = &mut s.replicas[replica];
            r.ends.push((server, room, ended_at));
            r.apply_ends();
        }
        Event::Purge {
            server,
            room,
            incarnation,
        } => {
            let meetings = &mut s.servers[server].meetings;
            if meetings
                .get(&room)
                .is_some_and(|m| m.incarnation == incarnation)
            {
                meetings.remove(&room);
            }
        }
        Event::Enter {
            server,
            room,
            incarnation,
        } => {
            let open = s.servers[server].up
                && s.servers[server]
                    .meetings
                    .get(&room)
                    .is_some_and(|m| !m.ended && m.incarnation == incarnation);
            s.trace(format_args!(
                "user enters s{server} room {room} #{incarnation}: {open}"
            ));
            if open {
                s.stats.entered += 1;
                if let Some(m) = s.servers[server].meetings.get_mut(&room) {
                    m.users += 1;
                }
            } else {
                // The meeting ended (or its server died) since the URL was made.
                s.stats.stale_urls += 1;
            }
        }
        Event::Tick => {
            let elapsed = s.now - START;
            if s.storm && elapsed >= STORM_MS {
                // Calm weather: every server back, enabled and fast.
                s.storm = false;
                for server in &mut s.servers {
                    (server.up, server.state, server.latency) = (true, ServerState::Enabled, 50);
                }
                // Every room joined through every replica once the views recovered, twice.
                let spread = CALM_MS / 2 / (REPLICAS * ROOMS) as Time;
                for i in 0..2 * REPLICAS * ROOMS {
                    let (replica, room) = (i % REPLICAS, (i / REPLICAS) % ROOMS);
                    s.at(
                        5_000 + i as Time * spread,
                        Event::CalmJoin { replica, room },
                    );
                }
                return joins;
            }
            chaos(s, &mut joins);
            let next = s.rng.random_range(20..300);
            s.at(next, Event::Tick);
        }
    }
    joins
}

/// One random thing happens to the world.
fn chaos(s: &mut Sim, joins: &mut Vec<(usize, usize)>) {
    let roll = s.rng.random_range(0..100);
    let server = s.rng.random_range(0..SERVERS);
    let room = s.rng.random_range(0..ROOMS);
    match roll {
        0..50 => {
            let replica = s.rng.random_range(0..REPLICAS);
            joins.push((replica, room));
        }
        // BBB ends a meeting: a moderator, its duration, or the last user left.
        50..62 => {
            s.trace(format_args!("BBB ends room {room} on s{server}"));
            s.kill(server, room);
        }
        62..68 => {
            if let Some(m) = s.servers[server].meetings.get_mut(&room) {
                m.users = m.users.saturating_sub(1);
            }
        }
        // A crash takes its meetings with it, and calls back nobody.
        68..71 if (0..SERVERS).filter(|&k| s.servers[k].up).count() > 1 => {
            s.trace(format_args!("s{server} crashes"));
            s.servers[server].up = false;
            s.servers[server].meetings.clear();
        }
        71..78 => s.servers[server].up = true,
        // (a server that comes back is empty)
        78..82 => {
            s.servers[server].state = match s.servers[server].state {
                ServerState::Enabled => ServerState::Cordoned,
                _ => ServerState::Enabled,
            }
        }
        // Slow, but answering within the create timeout: polls (1 s) may miss it, and the
        // server then counts as unhealthy while it serves its meetings fine.
        82..90 => {
            s.servers[server].latency = if s.rng.random_bool(0.3) {
                s.rng.random_range(500..=CREATE_TIMEOUT_MS / 2 - 100)
            } else {
                s.rng.random_range(0..300)
            }
        }
        _ => {}
    }
}

fn seeds() -> Vec<u64> {
    if let Ok(seed) = std::env::var("EVENTYAY_BBB_SIM_SEED") {
        return vec![seed.parse().expect("EVENTYAY_BBB_SIM_SEED is a number")];
    }
    let n = std::env::var("EVENTYAY_BBB_SIM_SEEDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    (1..=n).collect()
}

#[test]
fn one_room_one_meeting_under_every_order_of_events() {
    let mut total = Stats::default();
    for seed in seeds() {
        let stats = run(seed);
        total.joins += stats.joins;
        total.answered += stats.answered;
        total.entered += stats.entered;
        total.stale_urls += stats.stale_urls;
        total.moves += stats.moves;
        total.new_sessions += stats.new_sessions;
        for (cause, n) in stats.failed {
            *total.failed.entry(cause).or_default() += n;
        }
    }
    // The storm must have stirred what it is meant to: moves, new sessions and failures.
    assert!(total.moves > 0 && total.new_sessions > 0, "{total:?}");
    eprintln!("{total:?}");
}

#[test]
fn one_seed_replays_the_same_run() {
    let (a, b) = (run(7), run(7));
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
}
