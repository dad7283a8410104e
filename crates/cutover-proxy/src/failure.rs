//! An attempt that failed before anything reached the client, and what it allows: a retry
//! on the same upstream, a verdict against that upstream's health, a fallback. The
//! failure decides these itself; its metrics label is derived from it in one place.

use std::time::Duration;

use cutover_metrics::FailureReason;
use cutover_model::Outcome;
use http::{Response, StatusCode};

use super::error::TransportError;
use super::retry;
use super::translation::ArmBody;

/// An attempt that failed before anything reached the client.
pub enum Failure {
    /// The upstream answered with an HTTP error, passed to the client if nothing better comes.
    Status { response: Response<ArmBody>, retry_after: Option<Duration> },
    /// No answer: the connection failed, the upstream stayed silent, or the held stream
    /// failed before its first token.
    Transport(TransportError),
    /// Not an attempt: the breaker kept the request away from the upstream.
    BreakerOpen,
}

impl Failure {
    /// An HTTP error answer, with the wait the upstream asked for before a retry.
    pub fn status(response: Response<ArmBody>) -> Failure {
        let retry_after = retry::retry_after(response.headers());
        Failure::Status { response, retry_after }
    }

    /// Whether the same upstream may be tried again. A silent upstream is abandoned at
    /// once, and so is an answer that is the client's own fault.
    pub fn retryable(&self) -> bool {
        match self {
            Failure::Status { response, .. } => !is_clients_fault(response.status()),
            Failure::Transport(error) => error.retryable(),
            Failure::BreakerOpen => false,
        }
    }

    /// Whether the failure speaks against the upstream's health (its breaker).
    pub fn is_upstream_fault(&self) -> bool {
        match self {
            Failure::Status { response, .. } => !is_clients_fault(response.status()),
            Failure::Transport(error) => error.is_upstream_fault(),
            Failure::BreakerOpen => false,
        }
    }

    /// How long the upstream asked to be left alone (`Retry-After`).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::Status { retry_after, .. } => *retry_after,
            Failure::Transport(_) | Failure::BreakerOpen => None,
        }
    }

    /// The low-cardinality label of metrics and logs.
    pub fn reason(&self) -> FailureReason {
        match self {
            Failure::Status { response, .. } => status_reason(response.status()),
            Failure::Transport(error) => error.reason(),
            Failure::BreakerOpen => FailureReason::BreakerOpen,
        }
    }

    pub fn outcome(&self) -> Outcome {
        match self {
            Failure::Status { response, .. } => outcome_for_status(response.status()),
            Failure::Transport(_) | Failure::BreakerOpen => Outcome::UpstreamError,
        }
    }
}

/// Whether an answer with `status` is a failed one.
pub fn counts_as_failure(status: StatusCode) -> bool {
    (400..600).contains(&status.as_u16())
}

/// A 4xx other than 408 and 429: the request's fault, not the upstream's.
pub fn is_clients_fault(status: StatusCode) -> bool {
    status_reason(status) == FailureReason::Status4xx
}

/// The label of a failed answer's status.
fn status_reason(status: StatusCode) -> FailureReason {
    match status.as_u16() {
        408 => FailureReason::Status408,
        429 => FailureReason::Status429,
        400..=499 => FailureReason::Status4xx,
        _ => FailureReason::Status5xx,
    }
}

/// How an answer with `status` counts in the metrics and the rollout's evidence.
pub fn outcome_for_status(status: StatusCode) -> Outcome {
    if !counts_as_failure(status) {
        Outcome::Ok
    } else if is_clients_fault(status) {
        Outcome::ClientError
    } else {
        Outcome::UpstreamError
    }
}
