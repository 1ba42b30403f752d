//! Work done in rounds. Requests that arrive while a round runs wait for the next, which takes
//! all that wait: a burst costs a few rounds (a few transactions), not one per request.

use std::sync::{Mutex, MutexGuard, PoisonError};
use tokio::sync::oneshot;

/// Requests of one kind waiting for their round.
#[derive(Debug)]
pub struct Batches<T> {
    waiting: Mutex<Vec<T>>,
    running: tokio::sync::Mutex<()>,
}

impl<T> Default for Batches<T> {
    fn default() -> Self {
        Self {
            waiting: Mutex::new(Vec::new()),
            running: tokio::sync::Mutex::new(()),
        }
    }
}

/// The right to run a round; one at a time.
pub struct Round<'a> {
    _running: tokio::sync::MutexGuard<'a, ()>,
    /// No round was running: this may be the first request of a burst whose others are a
    /// moment behind.
    pub after_quiet: bool,
}

impl<T> Batches<T> {
    pub fn push(&self, item: T) {
        self.waiting().push(item);
    }

    /// Queues the request `make` builds around where its answer goes, starts a round (`round`)
    /// and waits for the answer; `None` when the round ended without one. The round runs in a
    /// task of its own: a caller that gives up (its deadline passed) must not take the others'
    /// requests down with it. A round that panics drops its waiters' answers; the log says why,
    /// naming `what` the requests are.
    pub async fn submit<R>(
        &self,
        make: impl FnOnce(oneshot::Sender<R>) -> T,
        round: impl Future<Output = ()> + Send + 'static,
        what: &'static str,
    ) -> Option<R> {
        let (reply, answer) = oneshot::channel();
        self.push(make(reply));
        tokio::spawn(async move {
            if let Err(err) = tokio::spawn(round).await
                && err.is_panic()
            {
                let payload = err.into_panic();
                let why = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(panic = %why, what, "a round panicked: its requests are answered as lost");
            }
        });
        answer.await.ok()
    }

    /// How many wait.
    pub fn waiting_now(&self) -> usize {
        self.waiting().len()
    }

    /// Waits until no other round runs. Every request starts one (in a task of its own, so
    /// that a caller who gives up takes nobody else's work down); whichever runs first takes
    /// all that waits, and the later ones find less or nothing.
    pub async fn round(&self) -> Round<'_> {
        match self.running.try_lock() {
            Ok(running) => Round {
                _running: running,
                after_quiet: true,
            },
            Err(_) => Round {
                _running: self.running.lock().await,
                after_quiet: false,
            },
        }
    }

    /// Up to `max` of the waiting requests, oldest first.
    pub fn take(&self, max: usize) -> Vec<T> {
        let mut waiting = self.waiting();
        let n = waiting.len().min(max);
        waiting.drain(..n).collect()
    }

    fn waiting(&self) -> MutexGuard<'_, Vec<T>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
