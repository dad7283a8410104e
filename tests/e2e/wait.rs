//! Waiting for events, not for the clock: a test polls for the thing it waits on (a port
//! that refuses, a phase, an event row, saved evidence) under one generous deadline that
//! only turns a hang into a failure and never asserts speed.

use std::time::Duration;

use tokio::time::Instant;

/// How long an awaited event may take before the test fails: far above what any of them
/// needs, even on a loaded machine.
pub const EVENTUALLY: Duration = Duration::from_secs(60);

/// The pause between two looks.
const POLL_EVERY: Duration = Duration::from_millis(20);

/// Polls `probe` until it returns `Some`, and returns that value; fails naming `what`
/// when [`EVENTUALLY`] passes first.
pub async fn until<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + EVENTUALLY;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "still waiting after {EVENTUALLY:?} for {what}");
        tokio::time::sleep(POLL_EVERY).await;
    }
}
