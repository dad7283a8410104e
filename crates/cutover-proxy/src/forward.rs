//! The attempts behind one client request: the chosen arm's upstream first, retried with
//! backoff while the failure, the route's budget and the upstream's breaker allow, then
//! the other arm if the route falls over for that failure. Every failed attempt is
//! recorded as its own upstream's error in the metrics; the rollout's evidence takes one
//! outcome per client request on the arm the split chose, failed if any attempt there
//! failed; the client sees one answer.

use cutover_config::FallbackOn;
use cutover_metrics::FailureReason;
use cutover_model::{Outcome, Role};
use cutover_net::body::BoxBody;
use tokio::time::Instant;

use super::breaker::Admission;
use super::error::GatewayError;
use super::exchange::{Attempt, Exchange};
use super::failure::Failure;
use super::retry;

/// The last failure of an arm, kept in case nothing better comes.
struct Unanswered {
    role: Role,
    failure: Failure,
    started: Instant,
}

/// Sends the exchange to `role`, retrying and falling over as the route allows.
pub(super) async fn forward(exchange: &Exchange<'_>, role: Role) -> Result<http::Response<BoxBody>, GatewayError> {
    let gateway = exchange.gateway;
    exchange.route.runtime.retry_budget.record_request();
    let mut retried = false;
    let mut last: Option<Unanswered> = None;
    let mut current = role;
    for position in 0..2 {
        if let Some(previous) = &last {
            let Some(other) = fall_over(exchange, previous) else { break };
            current = other;
        }
        let breaker = &gateway.upstreams[exchange.upstream_index(current)].breaker;
        let mut admission = breaker.admit();
        if admission == Admission::Rejected {
            if position == 0 && exchange.fallback_role(current).is_some() {
                exchange.record_skipped(current);
                last = Some(Unanswered { role: current, failure: Failure::BreakerOpen, started: Instant::now() });
                continue;
            }
            // Nobody else can answer: trying a sick upstream beats refusing unasked.
            admission = Admission::Allowed;
        }
        match retry_upstream(exchange, current, admission, &mut retried).await {
            Ok(response) => return Ok(response),
            Err(failed) => last = Some(failed),
        }
    }
    // Every path through the loops above returns an answer or leaves a failure here.
    let Some(last) = last else {
        return Err(GatewayError::BreakerOpen { upstream: exchange.upstream(role).name.clone() });
    };
    give_up(exchange, last, retried)
}

/// Sends the exchange to `role`'s upstream, again while the failure, the route's budget
/// and the upstream's breaker allow; the last failure if none succeeded.
async fn retry_upstream(
    exchange: &Exchange<'_>,
    role: Role,
    mut admission: Admission,
    retried: &mut bool,
) -> Result<http::Response<BoxBody>, Unanswered> {
    let breaker = &exchange.gateway.upstreams[exchange.upstream_index(role)].breaker;
    // The start times of the last two attempts on this upstream: all the spacing rule needs.
    let mut attempts = [None; 2];
    // Past the route's last retry `wait` is `None`, which returns.
    let mut retry = 0;
    loop {
        let started = Instant::now();
        attempts = [attempts[1], Some(started)];
        let failure = match exchange.attempt(role, started, Some(admission)).await {
            // Its body reports to the breaker when it ends.
            Attempt::Committed(response) => return Ok(response),
            Attempt::Failed(failure) => failure,
        };
        if failure.is_upstream_fault() {
            breaker.on_failure(admission)
        } else {
            breaker.on_success(admission)
        }
        admission = Admission::Allowed;
        let wait = (failure.retryable() && retry < exchange.route.config.retries && !breaker.is_open())
            .then(|| retry::delay(retry, attempts[0], failure.retry_after(), exchange.route.config.max_retry_after))
            .flatten()
            .filter(|_| exchange.route.runtime.retry_budget.try_acquire());
        let Some(wait) = wait else {
            return Err(Unanswered { role, failure, started });
        };
        exchange.record_failure(role, started, failure.outcome());
        exchange.route.metrics.record_retry(role, failure.reason());
        *retried = true;
        drop(failure);
        tokio::time::sleep(wait).await;
        retry += 1;
    }
}

/// The arm to try after `previous` failed, if the route falls over for that failure; the
/// failed attempt is recorded as its upstream's error.
fn fall_over(exchange: &Exchange<'_>, previous: &Unanswered) -> Option<Role> {
    let reason = previous.failure.reason();
    let other =
        exchange.fallback_role(previous.role).filter(|_| may_fall_over(exchange.route.config.fallback_on, reason))?;
    if !matches!(previous.failure, Failure::BreakerOpen) {
        exchange.record_failure(previous.role, previous.started, previous.failure.outcome());
    }
    exchange.route.metrics.record_fallback(previous.role, reason);
    tracing::info!(route = %exchange.route.config.name, from = %exchange.upstream(previous.role).name,
        to = %exchange.upstream(other).name, reason = reason.as_str(), "falling back");
    Some(other)
}

/// The client's answer when no attempt succeeded: the last upstream's own error answer,
/// or the gateway's error naming why there was none.
fn give_up(exchange: &Exchange<'_>, last: Unanswered, retried: bool) -> Result<http::Response<BoxBody>, GatewayError> {
    let Unanswered { role, failure, started } = last;
    let upstream = exchange.upstream(role).name.clone();
    match failure {
        Failure::Status { response, .. } => Ok(exchange.respond(response, role, started, None, None)),
        Failure::Transport(error) => {
            exchange.record_failure(role, started, Outcome::UpstreamError);
            let gave_up_after_retries = retried || role != exchange.first_role;
            Err(GatewayError::Upstream { upstream, error, gave_up_after_retries })
        }
        Failure::BreakerOpen => Err(GatewayError::BreakerOpen { upstream }),
    }
}

fn may_fall_over(on: FallbackOn, reason: FailureReason) -> bool {
    match reason {
        FailureReason::Connect => on.connect,
        FailureReason::Timeout => on.timeout,
        FailureReason::Status5xx => on.status_5xx,
        FailureReason::Status429 => on.status_429,
        FailureReason::Status408 => on.status_408,
        FailureReason::Stream => on.stream,
        FailureReason::Status4xx => on.status_4xx,
        FailureReason::BreakerOpen => true,
        FailureReason::InvalidAnswer => on.invalid_answer,
    }
}
