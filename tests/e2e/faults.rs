//! Failure handling, one fault of the mock at a time: what the client receives, how many
//! attempts each upstream saw, and which upstream answered. All traffic goes to the
//! candidate (weight 100), which misbehaves; the primary is healthy. Timeouts are short
//! (500 ms). Wall time is asserted only where it is the behaviour: lower bounds for waits
//! that must happen (backoff, `Retry-After`, a timeout), and one loose upper bound where
//! "at once" is the point, far below the wait it rules out.

use std::time::{Duration, Instant};

use cutover::mock::{FaultKind, FaultRule, MockConfig};
use http::StatusCode;

use crate::support::{ADMIN_TOKEN, Reply, Setup, metric, send};
use crate::wait::until;

const ROUTE: &str = r#"
retries = 2
[upstreams.candidate.breaker]
consecutive_failures = 100
cooldown = "1s"
"#;

/// A gateway whose candidate answers with `fault` (for `limit` requests, or always).
async fn setup(fault: FaultKind, limit: Option<u64>) -> Setup {
    let mut rule = FaultRule::always(fault);
    rule.limit = limit;
    let setup = Setup::new(MockConfig::default(), MockConfig::default().with_fault(rule), ROUTE).await;
    setup.set_weight(100.0).await;
    setup
}

/// Sends one chat request and measures it.
async fn timed_chat(setup: &Setup, stream: bool) -> (Reply, Duration) {
    let started = Instant::now();
    let reply = setup.chat("user-1", stream).await;
    let elapsed = started.elapsed();
    // Shown with `--nocapture`: the wall times reported in the failure-handling table.
    println!("{} stream={stream}: {} in {elapsed:?}", std::thread::current().name().unwrap_or("?"), reply.status);
    (reply, elapsed)
}

/// The answer is a complete one from `upstream`.
fn assert_complete_from(reply: &Reply, upstream: &str, stream: bool) {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.header("x-cutover-upstream"), Some(upstream));
    let text = reply.text();
    if stream {
        assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
        assert!(!text.contains("\"error\""), "{text}");
    } else {
        assert_eq!(reply.json()["choices"][0]["finish_reason"], "stop");
    }
}

/// The stream began, then failed: its last event is an error and there is no `[DONE]`.
fn assert_ends_with_error_event(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::OK);
    let text = reply.text();
    let last = text.trim_end().rsplit("\n\n").next().unwrap_or_default();
    assert!(last.starts_with("data: {\"error\""), "last event: {last}");
    assert!(!text.contains("[DONE]"), "{text}");
}

/// Whether the admin API reports the breaker of `upstream` open.
async fn breaker_open(setup: &Setup, upstream: &str) -> bool {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let listed =
        send(http::Method::GET, &setup.admin_url("/admin/upstreams"), &[("authorization", &auth)], "").await.json();
    let entry = listed.as_array().and_then(|all| all.iter().find(|entry| entry["name"] == upstream));
    entry.unwrap_or_else(|| panic!("no upstream {upstream:?} in {listed}"))["breaker_open"] == true
}

/// After the fault is gone, the next ordinary request succeeds on the candidate: a few
/// failures leave its breaker closed (100 in a row open it), so there is no cool-down to
/// wait out.
async fn assert_recovers(setup: &Setup) {
    setup.candidate.set_faults(Vec::new());
    assert!(!breaker_open(setup, "candidate").await, "a few failures opened the candidate's breaker");
    let reply = setup.chat("user-1", true).await;
    assert_complete_from(&reply, "candidate", true);
}

#[tokio::test]
async fn status_500_once_is_retried_on_the_same_upstream() {
    for stream in [false, true] {
        let setup = setup(FaultKind::Status500, Some(1)).await;
        let (reply, _) = timed_chat(&setup, stream).await;
        assert_complete_from(&reply, "candidate", stream);
        assert_eq!(reply.header("x-cutover-fallback"), None);
        assert_eq!((setup.candidate.calls(), setup.primary.calls()), (2, 0));
        let page = setup.metrics().await;
        assert_eq!(metric(&page, r#"cutover_retries_total{route="default",upstream="candidate",reason="5xx"}"#), 1.0);
        assert_eq!(
            metric(
                &page,
                r#"cutover_requests_total{route="default",upstream="candidate",role="candidate",outcome="upstream_error"}"#
            ),
            1.0
        );
    }
}

#[tokio::test]
async fn persistent_503_is_retried_with_backoff_then_falls_over() {
    for stream in [false, true] {
        let setup = setup(FaultKind::Status503, None).await;
        let (reply, elapsed) = timed_chat(&setup, stream).await;
        assert_complete_from(&reply, "primary", stream);
        assert_eq!(reply.header("x-cutover-fallback"), Some("true"));
        assert_eq!((setup.candidate.calls(), setup.primary.calls()), (3, 1));
        assert!(elapsed >= Duration::from_millis(1500), "three attempts on one upstream took only {elapsed:?}");
        let page = setup.metrics().await;
        assert_eq!(metric(&page, r#"cutover_retries_total{route="default",upstream="candidate",reason="5xx"}"#), 2.0);
        assert_eq!(
            metric(&page, r#"cutover_fallbacks_total{route="default",from="candidate",to="primary",reason="5xx"}"#),
            1.0
        );
        assert_recovers(&setup).await;
    }
}

#[tokio::test]
async fn rate_limit_with_a_short_retry_after_is_waited_for() {
    let setup = setup(FaultKind::RateLimited { retry_after: Some(Duration::from_millis(800)) }, Some(1)).await;
    let (reply, elapsed) = timed_chat(&setup, false).await;
    assert_complete_from(&reply, "candidate", false);
    assert_eq!((setup.candidate.calls(), setup.primary.calls()), (2, 0));
    assert!(elapsed >= Duration::from_millis(800), "Retry-After honoured: {elapsed:?}");
}

#[tokio::test]
async fn rate_limit_with_a_long_retry_after_falls_over_at_once() {
    let setup = setup(FaultKind::RateLimited { retry_after: Some(Duration::from_secs(30)) }, None).await;
    let (reply, elapsed) = timed_chat(&setup, false).await;
    assert_complete_from(&reply, "primary", false);
    assert_eq!((setup.candidate.calls(), setup.primary.calls()), (1, 1));
    // "At once" is the behaviour: far below the 30 s it was told to wait.
    assert!(elapsed < Duration::from_secs(15), "the 30 s Retry-After was waited for: {elapsed:?}");
    let page = setup.metrics().await;
    assert_eq!(
        metric(&page, r#"cutover_fallbacks_total{route="default",from="candidate",to="primary",reason="429"}"#),
        1.0
    );
}

#[tokio::test]
async fn rate_limit_without_retry_after_is_retried_then_falls_over() {
    let setup = setup(FaultKind::RateLimited { retry_after: None }, None).await;
    let (reply, _) = timed_chat(&setup, true).await;
    assert_complete_from(&reply, "primary", true);
    assert_eq!((setup.candidate.calls(), setup.primary.calls()), (3, 1));
}

#[tokio::test]
async fn reset_before_headers_is_retried_then_falls_over() {
    for stream in [false, true] {
        let setup = setup(FaultKind::ResetBeforeHeaders, None).await;
        let (reply, _) = timed_chat(&setup, stream).await;
        assert_complete_from(&reply, "primary", stream);
        assert_eq!((setup.candidate.calls(), setup.primary.calls()), (3, 1));
        assert_recovers(&setup).await;
    }
}

#[tokio::test]
async fn a_silent_upstream_is_abandoned_at_its_first_timeout_and_not_retried() {
    for stream in [false, true] {
        let setup = setup(FaultKind::NoAnswer, None).await;
        let (reply, elapsed) = timed_chat(&setup, stream).await;
        assert_complete_from(&reply, "primary", stream);
        assert_eq!((setup.candidate.calls(), setup.primary.calls()), (1, 1));
        assert!(elapsed >= Duration::from_millis(500), "abandoned before its 500 ms timeout: {elapsed:?}");
        // Which timeout fired is the behaviour: the first byte's (500 ms), not the total
        // (600 s by default) that would have held the request.
        assert!(elapsed < Duration::from_secs(15), "not abandoned at the first-byte timeout: {elapsed:?}");
    }
}

#[tokio::test]
async fn a_slow_first_token_switches_to_the_other_upstream_before_anything_is_sent() {
    let setup = setup(FaultKind::SlowFirstToken(Duration::from_secs(5)), None).await;
    let (reply, elapsed) = timed_chat(&setup, true).await;
    assert_complete_from(&reply, "primary", true);
    assert_eq!(reply.header("x-cutover-fallback"), Some("true"));
    // The primary answered: the switch came before the candidate's first token (at 5 s),
    // which would have made the candidate's answer complete.
    assert_eq!((setup.candidate.calls(), setup.primary.calls()), (1, 1));
    assert!(elapsed >= Duration::from_millis(500), "switched before the 500 ms first-token timeout: {elapsed:?}");
    let page = setup.metrics().await;
    assert_eq!(
        metric(&page, r#"cutover_fallbacks_total{route="default",from="candidate",to="primary",reason="timeout"}"#),
        1.0
    );
}

#[tokio::test]
async fn a_stream_cut_after_its_first_token_ends_with_an_error_event() {
    let setup = setup(FaultKind::StreamCut, None).await;
    let (reply, _) = timed_chat(&setup, true).await;
    assert_ends_with_error_event(&reply);
    assert_eq!((setup.candidate.calls(), setup.primary.calls()), (1, 0));
    assert_recovers(&setup).await;
}

#[tokio::test]
async fn a_stalled_stream_ends_with_an_error_event_after_the_idle_timeout() {
    let setup = setup(FaultKind::StreamStall, None).await;
    let (reply, _) = timed_chat(&setup, true).await;
    assert_ends_with_error_event(&reply);
    // The idle timeout (500 ms) ended it, not the mock (silent for an hour) nor another timeout.
    assert!(reply.text().contains("sent nothing for 500ms"), "{}", reply.text());
    assert_recovers(&setup).await;
}

#[tokio::test]
async fn a_malformed_event_never_reaches_the_client() {
    let setup = setup(FaultKind::MalformedChunk, None).await;
    let (reply, _) = timed_chat(&setup, true).await;
    assert_ends_with_error_event(&reply);
    assert!(!reply.text().contains("[tru"), "the broken event was forwarded");
    assert_eq!(setup.candidate.calls(), 1);
}

#[tokio::test]
async fn a_finished_stream_without_done_is_completed_with_done() {
    let setup = setup(FaultKind::NoDone, None).await;
    let (reply, _) = timed_chat(&setup, true).await;
    assert_complete_from(&reply, "candidate", true);
}

#[tokio::test]
async fn client_errors_reach_the_client_unchanged_and_are_not_retried() {
    for (fault, code) in [
        (FaultKind::ContextLengthExceeded, "context_length_exceeded"),
        (FaultKind::ContentFilter, "content_policy_violation"),
    ] {
        for stream in [false, true] {
            let setup = setup(fault, None).await;
            let (reply, _) = timed_chat(&setup, stream).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST);
            assert_eq!(reply.openai_error()["code"], code);
            assert_eq!((setup.candidate.calls(), setup.primary.calls()), (1, 0));
        }
    }
}

#[tokio::test]
async fn an_upstream_down_for_a_while_is_ejected_then_serves_again_after_recovering() {
    let config =
        ROUTE.replace("consecutive_failures = 100", "consecutive_failures = 3").replace("retries = 2", "retries = 0");
    let setup = Setup::new(
        MockConfig::default(),
        MockConfig::default().with_fault(FaultRule::always(FaultKind::Status503)),
        &config,
    )
    .await;
    setup.set_weight(100.0).await;
    for _ in 0..10 {
        assert_complete_from(&setup.chat("user-1", false).await, "primary", false);
    }
    assert_eq!(setup.candidate.calls(), 3, "the breaker opened after three failures in a row");
    let page = setup.metrics().await;
    assert_eq!(metric(&page, r#"cutover_breaker_open{upstream="candidate"}"#), 1.0);
    assert!(breaker_open(&setup, "candidate").await, "the admin API does not list the candidate's breaker open");
    assert_eq!(
        metric(
            &page,
            r#"cutover_fallbacks_total{route="default",from="candidate",to="primary",reason="breaker_open"}"#
        ),
        7.0
    );
    setup.candidate.set_faults(Vec::new());
    // Until its cool-down (1 s) ends the primary answers; then a probe reaches the
    // candidate, succeeds and closes the breaker.
    let probe = until("a probe to reach the recovered candidate", async || {
        let reply = setup.chat("user-1", false).await;
        if reply.header("x-cutover-upstream") == Some("candidate") {
            return Some(reply);
        }
        assert_complete_from(&reply, "primary", false);
        None
    })
    .await;
    assert_complete_from(&probe, "candidate", false);
    assert_complete_from(&setup.chat("user-1", false).await, "candidate", false);
    assert_eq!(metric(&setup.metrics().await, r#"cutover_breaker_open{upstream="candidate"}"#), 0.0);
}

#[tokio::test]
async fn with_stream_commit_an_early_cut_still_falls_over() {
    let config = format!("stream_commit = \"3s\"\n{ROUTE}");
    let slow_cut = MockConfig::default()
        .with_chunk_gap(Duration::from_millis(20))
        .with_fault(FaultRule::always(FaultKind::StreamCut));
    let setup = Setup::new(MockConfig::default(), slow_cut, &config).await;
    setup.set_weight(100.0).await;
    let (reply, _) = timed_chat(&setup, true).await;
    assert_complete_from(&reply, "primary", true);
    assert_eq!(reply.header("x-cutover-fallback"), Some("true"));
    let page = setup.metrics().await;
    assert_eq!(
        metric(&page, r#"cutover_fallbacks_total{route="default",from="candidate",to="primary",reason="stream"}"#),
        1.0
    );
}

#[tokio::test]
async fn streams_that_keep_breaking_after_their_first_token_eject_the_upstream() {
    let config =
        ROUTE.replace("consecutive_failures = 100", "consecutive_failures = 3").replace("retries = 2", "retries = 0");
    let cutting = MockConfig::default().with_fault(FaultRule::always(FaultKind::StreamCut));
    let setup = Setup::new(MockConfig::default(), cutting, &config).await;
    setup.set_weight(100.0).await;
    for _ in 0..3 {
        assert_ends_with_error_event(&setup.chat("user-1", true).await);
    }
    let rescued = setup.chat("user-1", true).await;
    assert_complete_from(&rescued, "primary", true);
    assert_eq!(setup.candidate.calls(), 3, "the fourth request never reached the ejected candidate");
}

#[tokio::test]
async fn answers_no_api_gives_fall_over_at_once_and_never_reach_the_client() {
    for fault in [FaultKind::Redirect, FaultKind::Html200, FaultKind::WrongContentType] {
        for stream in [false, true] {
            let setup = setup(fault, None).await;
            let (reply, _) = timed_chat(&setup, stream).await;
            assert_complete_from(&reply, "primary", stream);
            assert_eq!(reply.header("x-cutover-fallback"), Some("true"), "{fault} stream={stream}");
            assert_eq!(reply.header("location"), None, "{fault}: the redirect's target crossed");
            assert!(!reply.text().contains("suspended"), "{fault}: the page crossed: {}", reply.text());
            // The same upstream would answer the same again: no retry.
            assert_eq!((setup.candidate.calls(), setup.primary.calls()), (1, 1), "{fault} stream={stream}");
            let page = setup.metrics().await;
            let fallbacks =
                r#"cutover_fallbacks_total{route="default",from="candidate",to="primary",reason="invalid_answer"}"#;
            assert_eq!(metric(&page, fallbacks), 1.0, "{fault} stream={stream}");
            let failed = r#"cutover_requests_total{route="default",upstream="candidate",role="candidate",outcome="upstream_error"}"#;
            assert_eq!(metric(&page, failed), 1.0, "{fault} stream={stream}");
            let ok = r#"cutover_requests_total{route="default",upstream="candidate",role="candidate",outcome="ok"}"#;
            assert_eq!(metric(&page, ok), 0.0, "{fault} stream={stream}: counted as a success");
            assert_recovers(&setup).await;
        }
    }
}

#[tokio::test]
async fn an_answer_no_api_gives_is_the_gateways_502_when_nobody_else_can_answer() {
    let config = format!("fallback = false\n{ROUTE}");
    for (fault, says) in [
        (FaultKind::Redirect, "answered 302 Found, a redirect"),
        (FaultKind::Html200, "answered 200 OK with Content-Type `text/html; charset=utf-8` to a request for a stream"),
        (FaultKind::WrongContentType, "to a request for a stream (text/event-stream)"),
    ] {
        let candidate = MockConfig::default().with_fault(FaultRule::always(fault));
        let setup = Setup::new(MockConfig::default(), candidate, &config).await;
        setup.set_weight(100.0).await;
        let (reply, _) = timed_chat(&setup, true).await;
        assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{fault}: {}", reply.text());
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert_eq!(reply.header("location"), None);
        let error = reply.openai_error();
        assert_eq!(error["code"], "upstream_unavailable", "{error}");
        let message = error["message"].as_str().unwrap();
        assert!(message.starts_with("Upstream `candidate` failed: ") && message.contains(says), "{fault}: {message}");
        assert_eq!((setup.candidate.calls(), setup.primary.calls()), (1, 0), "{fault}");
    }
}
