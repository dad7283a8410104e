//! One request's view of the mock server (its state, runtime and id) and what every
//! inference answer goes through before it is written: the drawn fault and the latency.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use cutover_net::body::{BoxBody, BoxError};
use http::Response;

use super::faults::FaultKind;
use super::reply;
use super::runtime::Runtime;
use super::state::State;
use super::stream::Pacing;

/// One request's view of the server.
pub(super) struct Ctx {
    pub state: Arc<State>,
    pub runtime: Arc<Runtime>,
    /// Hex id of this request, shared by `x-request-id` and the answer's ids.
    pub id: String,
}

impl Ctx {
    /// How a stream of this request is paced: the configured TTFT and chunk gap, the
    /// drawn stream fault, the server's stop signal; `buffered` for fake streaming.
    pub(super) fn pacing(&self, fault: Option<FaultKind>, buffered: bool) -> Pacing {
        Pacing {
            ttft: self.runtime.ttft,
            chunk_gap: self.runtime.chunk_gap,
            fault,
            stopping: self.state.stopping.subscribe(),
            buffered,
        }
    }

    /// Draws the fault for an inference request and plays its part before the answer:
    /// an error response (`Ok(Some)`), a dropped connection (`Err`), or the configured
    /// latency (`Ok(None)`, answer now; stream faults are applied by the stream).
    pub(super) async fn before_answer(
        &self,
        streamed: bool,
    ) -> Result<(Option<FaultKind>, Option<Response<BoxBody>>), BoxError> {
        let fault = self.runtime.faults.pick(streamed);
        match fault {
            Some(FaultKind::ResetBeforeHeaders) => {
                return Err("simulated reset before headers".into());
            }
            Some(FaultKind::NoAnswer) => {
                let mut stopping = self.state.stopping.subscribe();
                tokio::select! {
                    () = tokio::time::sleep(super::stream::HANG) => {}
                    _ = stopping.wait_for(|stopping| *stopping) => {}
                }
                return Err("simulated request never answered".into());
            }
            Some(kind) => {
                if let Some(response) = reply::fault_response(&self.runtime, kind, streamed) {
                    return Ok((fault, Some(response)));
                }
            }
            None => {}
        }
        let mut delay = self.runtime.latency;
        if let (false, Some(FaultKind::SlowFirstToken(extra))) = (streamed, fault) {
            delay += extra;
        }
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Ok((fault, None))
    }
}

/// Seconds since the epoch, for `created`.
pub(super) fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
