//! One way to run background workers: `n` copies of a step loop, woken through a `Notify`
//! without lost wake-ups, supervised (a panic is logged and counted, the worker restarts
//! with backoff, and readiness reports it down meanwhile), drained on shutdown.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The longest a worker sleeps without looking at its queue (other processes may have
/// queued work; their wake-ups do not reach us).
pub const POLL: Duration = Duration::from_secs(5);

/// What one step of a worker found.
#[derive(Debug)]
pub enum Step {
    /// It did some work: step again at once.
    Worked,
    /// Nothing to do; the next work falls due then, if known.
    Idle(Option<DateTime<Utc>>),
}

/// Which workers are down (panicked and waiting to restart), for readiness.
#[derive(Debug, Default)]
pub struct Health {
    down: Mutex<BTreeMap<&'static str, usize>>,
}

impl Health {
    /// The names of the worker kinds with a worker down.
    pub fn down(&self) -> Vec<&'static str> {
        let down = self.down.lock().expect("health lock");
        down.iter().filter(|(_, n)| **n > 0).map(|(k, _)| *k).collect()
    }

    fn mark(&self, name: &'static str, down: bool) {
        let mut map = self.down.lock().expect("health lock");
        let n = map.entry(name).or_default();
        *n = if down { *n + 1 } else { n.saturating_sub(1) };
    }
}

/// Runs `n` supervised workers named `name` until `shutdown`; the handle finishes when
/// all have finished their step in progress.
pub fn spawn<F, Fut>(
    name: &'static str,
    n: usize,
    wake: Arc<Notify>,
    health: Arc<Health>,
    shutdown: CancellationToken,
    step: F,
) -> JoinHandle<()>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<Step>> + Send + 'static,
{
    let step: StepFn = Arc::new(move || Box::pin(step()));
    let supervisors: Vec<_> = (0..n.max(1))
        .map(|_| {
            tokio::spawn(supervise(
                name,
                step.clone(),
                wake.clone(),
                health.clone(),
                shutdown.clone(),
            ))
        })
        .collect();
    tokio::spawn(async move {
        for s in supervisors {
            let _ = s.await;
        }
    })
}

/// One step of a worker, boxed once in `spawn` so the runner itself is not generic.
type StepFn = Arc<dyn Fn() -> BoxFuture<'static, anyhow::Result<Step>> + Send + Sync>;

async fn supervise(
    name: &'static str,
    step: StepFn,
    wake: Arc<Notify>,
    health: Arc<Health>,
    shutdown: CancellationToken,
) {
    let mut restarts: u32 = 0;
    loop {
        let worker = tokio::spawn(work(name, step.clone(), wake.clone(), shutdown.clone()));
        let Err(e) = worker.await else { return };
        if !e.is_panic() {
            return;
        }
        let panic = e.into_panic();
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-text panic".into());
        restarts += 1;
        let backoff = Duration::from_millis(500 * 2u64.pow(restarts.min(7)));
        tracing::error!(worker = name, panic = ?message, restart_in = ?backoff, "worker panicked; restarting");
        metrics::counter!("paperboy_worker_panics_total", "worker" => name).increment(1);
        health.mark(name, true);
        let stopping = tokio::select! {
            _ = tokio::time::sleep(backoff) => false,
            _ = shutdown.cancelled() => true,
        };
        health.mark(name, false);
        if stopping {
            return;
        }
    }
}

async fn work(name: &'static str, step: StepFn, wake: Arc<Notify>, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        // Registered before looking at the queue: a wake-up sent while we look is kept.
        let notified = wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        match step().await {
            Ok(Step::Worked) => continue,
            Ok(Step::Idle(next_due)) => {
                let pause = match next_due {
                    Some(at) => (at - Utc::now()).to_std().unwrap_or_default().min(POLL),
                    None => POLL,
                };
                tokio::select! {
                    _ = &mut notified => {}
                    _ = tokio::time::sleep(pause.max(Duration::from_millis(10))) => {}
                    _ = shutdown.cancelled() => {}
                }
            }
            Err(e) => {
                tracing::warn!(worker = name, error = ?format!("{e:#}"), "worker step failed");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.cancelled() => {}
                }
            }
        }
    }
}

/// Turns `NOTIFY`s on `channel` into wake-ups (for work queued by other processes); the
/// workers' polling covers any gap while reconnecting.
pub async fn listen(
    db: sqlx::PgPool,
    channel: &'static str,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) {
    while !shutdown.is_cancelled() {
        let connected = async {
            let mut listener = sqlx::postgres::PgListener::connect_with(&db).await?;
            listener.listen(channel).await?;
            // Anything queued while we were not listening.
            wake.notify_waiters();
            while listener.recv().await.is_ok() {
                wake.notify_waiters();
            }
            Ok::<(), sqlx::Error>(())
        };
        tokio::select! {
            _ = connected => {}
            _ = shutdown.cancelled() => return,
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn a_panicking_worker_is_reported_down_and_restarted() {
        let health = Arc::new(Health::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let shutdown = CancellationToken::new();
        let c = calls.clone();
        let handle =
            spawn("test", 1, Default::default(), health.clone(), shutdown.clone(), move || {
                let n = c.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n == 0 {
                        panic!("boom");
                    }
                    Ok(Step::Idle(None))
                }
            });
        // Down while it waits for its restart …
        let mut seen_down = false;
        for _ in 0..100 {
            if health.down() == ["test"] {
                seen_down = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(seen_down, "the panicked worker is reported down");
        // … then back, working again.
        for _ in 0..300 {
            if calls.load(Ordering::SeqCst) >= 2 && health.down().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(calls.load(Ordering::SeqCst) >= 2, "restarted");
        assert!(health.down().is_empty());
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), handle).await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_wake_up_sent_while_the_step_runs_is_not_lost() {
        let wake = Arc::new(Notify::new());
        let shutdown = CancellationToken::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let (c, w) = (calls.clone(), wake.clone());
        let handle =
            spawn("wake", 1, wake.clone(), Default::default(), shutdown.clone(), move || {
                let n = c.fetch_add(1, Ordering::SeqCst);
                let w = w.clone();
                async move {
                    if n == 0 {
                        // Work arrives (and its wake-up) after we looked but before we sleep.
                        w.notify_waiters();
                    }
                    Ok(Step::Idle(None))
                }
            });
        // Without the early registration the worker would sleep the whole POLL (5 s).
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(calls.load(Ordering::SeqCst) >= 2, "woken at once");
        shutdown.cancel();
        handle.await.unwrap();
    }
}
