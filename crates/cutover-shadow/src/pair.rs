//! The two sides of a mirrored request, each delivered once to the mirror's task through a
//! `Tap`: the body stack's tee fills it from the answer as it passes (`proxy/body/tee.rs`),
//! and a tap that never reached an answer (every attempt failed, or the other arm answered)
//! reports "no answer" when it is dropped. So the task always hears from both sides, and
//! waits for the primary's only as long as the client's own answer takes.

use std::time::Duration;

use cutover_model::Outcome;
use cutover_wire::usage::Usage;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::capture::Captured;

/// One side's answer, as far as the comparison needs it.
#[derive(Debug, Default)]
pub struct Side {
    pub outcome: Option<Outcome>,
    /// From the attempt's start to the answer's end.
    pub duration: Duration,
    pub ttft: Option<Duration>,
    pub usage: Option<Usage>,
    /// The answer's cost in nano-dollars once settled: `Some(None)` unknown.
    pub cost: Option<Option<u64>>,
    pub captured: Captured,
    pub streamed: bool,
}

impl Side {
    /// A side that got no answer at all.
    pub fn unanswered(duration: Duration) -> Side {
        Side { outcome: Some(Outcome::UpstreamError), duration, ..Side::default() }
    }

    /// A successful answer read to its end.
    pub fn ok(&self) -> bool {
        self.outcome == Some(Outcome::Ok)
    }

    /// The client left before the answer ended: there is nothing to compare with.
    pub fn cancelled(&self) -> bool {
        self.outcome == Some(Outcome::Cancelled)
    }
}

/// Where one side's answer goes; sends "no answer" if dropped unused.
#[derive(Debug)]
pub struct Tap {
    sender: Option<oneshot::Sender<Side>>,
    started: Instant,
}

impl Tap {
    /// A tap for a request whose first attempt starts about now, and its receiving end.
    pub fn pair() -> (Tap, oneshot::Receiver<Side>) {
        let (sender, receiver) = oneshot::channel();
        (Tap { sender: Some(sender), started: Instant::now() }, receiver)
    }

    pub fn send(mut self, side: Side) {
        if let Some(sender) = self.sender.take() {
            // The mirror's task may be gone (a shutdown): then nobody compares.
            let _ = sender.send(side);
        }
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        if let Some(sender) = self.sender.take() {
            let _ = sender.send(Side::unanswered(self.started.elapsed()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_tap_dropped_unused_reports_no_answer_and_a_used_one_its_side() {
        let (tap, receiver) = Tap::pair();
        drop(tap);
        let side = receiver.await.unwrap();
        assert_eq!(side.outcome, Some(Outcome::UpstreamError));
        let (tap, receiver) = Tap::pair();
        tap.send(Side { outcome: Some(Outcome::Ok), ..Side::default() });
        assert!(receiver.await.unwrap().ok());
    }
}
