//! Keeps a long-running background task alive: when it panics or returns before the
//! gateway stops, it is started again, with a log line and a growing delay.
//!
//! Why restart rather than fail `/healthz`: the rollout driver holds no state of its own
//! (the controller and the state file hold it all), so a fresh loop loses nothing, while a
//! failing health check would make a load balancer or an orchestrator take a gateway
//! whose request path works out of service, dropping users' traffic over a control-path
//! fault. A task that keeps dying is logged at every restart, at most once a minute.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// The wait before the first restart; doubled at each restart in a row.
const FIRST_DELAY: Duration = Duration::from_secs(1);
/// The longest wait between restarts.
const MAX_DELAY: Duration = Duration::from_secs(60);
/// A run at least this long was healthy: the next restart waits `FIRST_DELAY` again.
const HEALTHY_RUN: Duration = Duration::from_secs(300);

/// Runs `start()` until `stop` turns true (or its sender is gone), starting it again
/// whenever it ends before that.
pub async fn supervise<F, Fut>(name: &'static str, mut stop: watch::Receiver<bool>, mut start: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut delay = FIRST_DELAY;
    loop {
        let began = Instant::now();
        let ended = tokio::spawn(start()).await;
        if stopping(&stop) {
            return;
        }
        if began.elapsed() >= HEALTHY_RUN {
            delay = FIRST_DELAY;
        }
        match ended {
            Ok(()) => tracing::error!(task = name, ?delay, "background task returned unexpectedly; restarting"),
            Err(failure) if failure.is_panic() => {
                let panic = panic_message(failure.into_panic());
                tracing::error!(task = name, panic, ?delay, "background task panicked; restarting");
            }
            Err(failure) => tracing::error!(task = name, %failure, ?delay, "background task was cancelled; restarting"),
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        delay = (delay * 2).min(MAX_DELAY);
    }
}

/// Whether the gateway is stopping: asked to, or its stop sender dropped.
fn stopping(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow() || stop.has_changed().is_err()
}

fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    match panic.downcast::<String>() {
        Ok(text) => *text,
        Err(panic) => {
            panic.downcast_ref::<&str>().map_or_else(|| "(not a string)".to_owned(), |text| (*text).to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use tokio::sync::mpsc;

    use super::*;

    /// The `n`th run (from 0) of a supervised test task, given the stop signal.
    type Run = fn(u32, watch::Receiver<bool>) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

    /// Supervises a task whose `n`th run (from 0) does what `run(n)` says, and reports
    /// each start on the returned channel.
    fn supervised(
        stop: watch::Receiver<bool>,
        run: Run,
    ) -> (tokio::task::JoinHandle<()>, mpsc::UnboundedReceiver<u32>) {
        let (started, starts) = mpsc::unbounded_channel();
        let count = Arc::new(AtomicU32::new(0));
        let task_stop = stop.clone();
        let supervisor = tokio::spawn(supervise("test task", stop, move || {
            let n = count.fetch_add(1, Ordering::Relaxed);
            let _ = started.send(n);
            run(n, task_stop.clone())
        }));
        (supervisor, starts)
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_panics_or_returns_early_is_started_again_until_the_gateway_stops() {
        let (stop, stopped) = watch::channel(false);
        let (supervisor, mut starts) = supervised(stopped, |n, mut stop| {
            Box::pin(async move {
                match n {
                    0 => panic!("the driver hit a bug"),
                    1 => {}
                    _ => {
                        let _ = stop.wait_for(|stop| *stop).await;
                    }
                }
            })
        });
        for expected in 0..3 {
            assert_eq!(starts.recv().await, Some(expected));
        }
        stop.send(true).unwrap();
        supervisor.await.unwrap();
        assert_eq!(starts.recv().await, None, "not started again once stopping");
    }

    #[tokio::test(start_paused = true)]
    async fn restarts_in_a_row_wait_longer_each_time() {
        let (_stop, stopped) = watch::channel(false);
        let began = Instant::now();
        let (supervisor, mut starts) = supervised(stopped, |_, _| Box::pin(async {}));
        let mut at = Vec::new();
        for _ in 0..4 {
            starts.recv().await.unwrap();
            at.push(began.elapsed().as_secs());
        }
        assert_eq!(at, [0, 1, 3, 7]);
        supervisor.abort();
    }
}
