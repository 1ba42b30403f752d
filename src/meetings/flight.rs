//! Single flight per meeting: concurrent joins of one meeting share one "ensure it exists on
//! its server" attempt, and a successful attempt is trusted for a short while.
//!
//! The attempt runs as its own task, so it finishes (and its outcome is kept) even when the
//! caller that started it gives up: a BBB slower than one caller's deadline still serves the
//! next. Callers that arrive while it runs wait for it and take its outcome, success or failure,
//! so a thousand joins in the same second cost one BBB create — and a dead server costs them one
//! timeout, not a thousand in a row. Later callers reuse a success younger than the TTL; older
//! successes and failures start a new attempt.

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tokio::sync::watch;

/// Past this many keys, idle ones are pruned down to half of it, bounding memory by the
/// meetings actually in use.
const PRUNE_ABOVE: usize = 4096;

pub struct Flights<T> {
    ttl: Duration,
    slots: Mutex<HashMap<String, Slot<T>>>,
}

enum Slot<T> {
    /// An attempt is running; its outcome will be sent here.
    Running(watch::Receiver<Option<T>>),
    /// The last attempt's outcome and when it finished.
    Done(Instant, T),
}

/// Why a caller got no outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abandoned {
    /// The attempt's task died (it panicked) before it had an outcome.
    Lost,
}

impl<T, E> Flights<Result<T, E>>
where
    T: Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + 'static,
{
    pub fn new(ttl: Duration) -> Arc<Self> {
        Arc::new(Self {
            ttl,
            slots: Mutex::new(HashMap::new()),
        })
    }

    /// The outcome for `key`: a fresh success that `still_true` confirms, the running attempt's
    /// outcome, or that of a new attempt made by `attempt`. Dropping the returned future only
    /// stops the waiting.
    pub async fn run<Fut>(
        self: &Arc<Self>,
        key: &str,
        still_true: impl Fn(&T) -> bool,
        attempt: impl FnOnce() -> Fut,
    ) -> Result<Result<T, E>, Abandoned>
    where
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let mut outcome = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            match slots.get(key) {
                Some(Slot::Done(at, Ok(value))) if at.elapsed() < self.ttl && still_true(value) => {
                    return Ok(Ok(value.clone()));
                }
                Some(Slot::Running(rx)) => rx.clone(),
                _ => {
                    self.prune(&mut slots);
                    let (tx, rx) = watch::channel(None);
                    slots.insert(key.to_owned(), Slot::Running(rx.clone()));
                    let guard = Finish {
                        flights: self.clone(),
                        key: key.to_owned(),
                        tx,
                    };
                    let work = attempt();
                    // The attempt belongs to the trace of the caller that started it.
                    let work = tracing::Instrument::in_current_span(work);
                    tokio::spawn(async move { guard.finish(work.await) });
                    rx
                }
            }
        };
        match outcome.wait_for(Option::is_some).await {
            Ok(value) => Ok(value.clone().expect("waited for Some")),
            Err(_) => Err(Abandoned::Lost),
        }
    }

    /// Forgets a finished outcome for `key` (its meeting moved or ended), so the next caller
    /// asks BBB again. A running attempt is left to finish.
    pub fn forget(&self, key: &str) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if matches!(slots.get(key), Some(Slot::Done(..))) {
            slots.remove(key);
        }
    }

    fn prune(&self, slots: &mut HashMap<String, Slot<Result<T, E>>>) {
        if slots.len() < PRUNE_ABOVE {
            return;
        }
        let ttl = self.ttl;
        slots.retain(|_, slot| match slot {
            Slot::Running(_) => true,
            Slot::Done(at, outcome) => outcome.is_ok() && at.elapsed() < ttl,
        });
        // Still crowded with fresh successes: drop the oldest half.
        if slots.len() >= PRUNE_ABOVE / 2 {
            let mut ages: Vec<Instant> = slots
                .values()
                .filter_map(|s| match s {
                    Slot::Done(at, _) => Some(*at),
                    Slot::Running(_) => None,
                })
                .collect();
            ages.sort();
            if let Some(cut) = ages.get(ages.len() / 2).copied() {
                slots.retain(|_, slot| !matches!(slot, Slot::Done(at, _) if *at < cut));
            }
        }
    }
}

/// Records an attempt's outcome, or — if the task dies first — clears the slot so that the
/// next caller starts afresh instead of waiting on nothing.
struct Finish<V> {
    flights: Arc<Flights<V>>,
    key: String,
    tx: watch::Sender<Option<V>>,
}

impl<V: Clone> Finish<V> {
    fn finish(self, outcome: V) {
        {
            let mut slots = self.flights.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots.insert(
                self.key.clone(),
                Slot::Done(Instant::now(), outcome.clone()),
            );
        }
        // Sent before the drop below, so `Drop` sees an outcome and leaves the slot alone.
        self.tx.send_replace(Some(outcome));
    }
}

impl<V> Drop for Finish<V> {
    fn drop(&mut self) {
        if self.tx.borrow().is_none() {
            let mut slots = self.flights.slots.lock().unwrap_or_else(|p| p.into_inner());
            if matches!(slots.get(&self.key), Some(Slot::Running(_))) {
                slots.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    type F = Flights<Result<u32, String>>;

    #[tokio::test]
    async fn concurrent_callers_share_one_attempt() {
        let flights = F::new(Duration::from_secs(2));
        let attempts = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..200 {
            let (flights, attempts) = (flights.clone(), attempts.clone());
            tasks.push(tokio::spawn(async move {
                flights
                    .run(
                        "room",
                        |_| true,
                        || async move {
                            attempts.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            Ok::<_, String>(7)
                        },
                    )
                    .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), Ok(Ok(7)));
        }
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn waiters_share_a_failure_but_later_callers_retry() {
        let flights = F::new(Duration::from_secs(2));
        let attempts = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (flights, attempts) = (flights.clone(), attempts.clone());
            tasks.push(tokio::spawn(async move {
                flights
                    .run(
                        "room",
                        |_| true,
                        || async move {
                            attempts.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            Err::<u32, _>("down".to_owned())
                        },
                    )
                    .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), Ok(Err("down".into())));
        }
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
        let again = flights
            .run("room", |_| true, || async { Ok::<_, String>(1) })
            .await;
        assert_eq!(again, Ok(Ok(1)));
    }

    #[tokio::test]
    async fn successes_expire() {
        let flights = F::new(Duration::from_millis(100));
        assert_eq!(
            flights
                .run("m", |_| true, || async { Ok::<_, String>(1) })
                .await,
            Ok(Ok(1))
        );
        assert_eq!(
            flights
                .run("m", |_| true, || async { Ok::<_, String>(2) })
                .await,
            Ok(Ok(1))
        );
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(
            flights
                .run("m", |_| true, || async { Ok::<_, String>(3) })
                .await,
            Ok(Ok(3))
        );
        assert_eq!(
            flights
                .run("other", |_| true, || async { Ok::<_, String>(5) })
                .await,
            Ok(Ok(5))
        );
    }

    #[tokio::test]
    async fn a_forgotten_success_is_not_reused() {
        let flights = F::new(Duration::from_secs(60));
        assert_eq!(
            flights
                .run("m", |_| true, || async { Ok::<_, String>(1) })
                .await,
            Ok(Ok(1))
        );
        flights.forget("m");
        assert_eq!(
            flights
                .run("m", |_| true, || async { Ok::<_, String>(2) })
                .await,
            Ok(Ok(2))
        );
    }

    #[tokio::test]
    async fn a_success_that_is_no_longer_true_is_not_reused() {
        let flights = F::new(Duration::from_secs(60));
        assert_eq!(
            flights
                .run("m", |_| true, || async { Ok::<_, String>(1) })
                .await,
            Ok(Ok(1))
        );
        assert_eq!(
            flights
                .run("m", |v| *v != 1, || async { Ok::<_, String>(2) })
                .await,
            Ok(Ok(2))
        );
    }

    #[tokio::test]
    async fn an_attempt_outlives_the_caller_that_started_it() {
        let flights = F::new(Duration::from_secs(2));
        let attempts = Arc::new(AtomicUsize::new(0));
        let slow = |attempts: Arc<AtomicUsize>| async move {
            attempts.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(200)).await;
            Ok::<_, String>(9)
        };
        let impatient = tokio::time::timeout(
            Duration::from_millis(50),
            flights.run("m", |_| true, || slow(attempts.clone())),
        )
        .await;
        assert!(impatient.is_err(), "the first caller gave up");
        // The next caller joins the attempt already running instead of starting over.
        assert_eq!(
            flights.run("m", |_| true, || slow(attempts.clone())).await,
            Ok(Ok(9))
        );
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_panicking_attempt_frees_its_slot() {
        let flights = F::new(Duration::from_secs(2));
        let lost = flights
            .run(
                "m",
                |_| true,
                || async {
                    panic!("attempt failed hard");
                    #[allow(unreachable_code)]
                    Ok::<u32, String>(0)
                },
            )
            .await;
        assert_eq!(lost, Err(Abandoned::Lost));
        assert_eq!(
            flights
                .run("m", |_| true, || async { Ok::<_, String>(4) })
                .await,
            Ok(Ok(4))
        );
    }

    #[tokio::test]
    async fn pruning_keeps_memory_bounded() {
        let flights = F::new(Duration::from_secs(60));
        for i in 0..(PRUNE_ABOVE * 2) {
            let _ = flights
                .run(&format!("k{i}"), |_| true, || async { Ok::<_, String>(1) })
                .await;
        }
        assert!(flights.slots.lock().unwrap().len() <= PRUNE_ABOVE);
    }
}
