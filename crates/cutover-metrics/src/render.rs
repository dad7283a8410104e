//! The Prometheus text exposition of `Metrics` and the rollout gauges.

use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

use cutover_config::PerRoute;
use cutover_model::{Outcome, Role, ShadowDrop, ShadowOutcome};
use cutover_wire::prometheus::{LabelValue, header};

use super::{FailureReason, Histogram, Metrics, Overload, ReloadResult};

/// The gauges that live outside `Metrics`: one per route.
pub struct RouteGauges {
    pub weight_percent: f64,
    pub step: u32,
    /// Paused by a step that ended undecided (`on_undecided = "pause"`), until an operator acts.
    pub undecided: bool,
}

/// The gauges of one upstream.
pub struct UpstreamGauges<'a> {
    pub name: &'a str,
    pub up: bool,
    pub breaker_open: bool,
    /// Its traffic's connections open (or being opened) now, idle ones included.
    pub connections: usize,
    /// Times so far a request found `max_connections` reached and waited.
    pub connection_waits: u64,
}

/// Renders every series. Writing into a `String` cannot fail, hence the ignored results.
pub fn render(metrics: &Metrics, gauges: &PerRoute<RouteGauges>, upstreams: &[UpstreamGauges<'_>]) -> String {
    let mut out = String::with_capacity(16 * 1024);
    header(&mut out, "cutover_requests_total", "counter", "Attempts on an upstream, by how they ended.");
    for route in metrics.routes().values() {
        for role in Role::ALL {
            let Some(arm) = route.arm(role) else { continue };
            for outcome in Outcome::ALL {
                let _ = writeln!(
                    out,
                    "cutover_requests_total{{route=\"{}\",upstream=\"{}\",role=\"{}\",outcome=\"{}\"}} {}",
                    LabelValue(&route.name),
                    LabelValue(&arm.upstream),
                    role.as_str(),
                    outcome.as_str(),
                    arm.count(outcome)
                );
            }
        }
    }
    type Pick = fn(&super::ArmMetrics) -> &Histogram;
    let histograms: [(&str, &str, Pick); 2] = [
        ("cutover_request_duration_seconds", "Whole request time per attempt (streams: to the last byte).", |arm| {
            &arm.duration
        }),
        ("cutover_ttft_seconds", "Streams: time to the first content chunk.", |arm| &arm.ttft),
    ];
    for (name, help, pick) in histograms {
        header(&mut out, name, "histogram", help);
        for route in metrics.routes().values() {
            for role in Role::ALL {
                let Some(arm) = route.arm(role) else { continue };
                let labels = format!(
                    "route=\"{}\",upstream=\"{}\",role=\"{}\"",
                    LabelValue(&route.name),
                    LabelValue(&arm.upstream),
                    role.as_str()
                );
                histogram(&mut out, name, &labels, pick(arm));
            }
        }
    }
    header(&mut out, "cutover_fallbacks_total", "counter", "Requests answered by the other upstream after a failure.");
    for route in metrics.routes().values() {
        for (from, to) in [(Role::Candidate, Role::Primary), (Role::Primary, Role::Candidate)] {
            let (Some(from_arm), Some(to_arm)) = (route.arm(from), route.arm(to)) else { continue };
            for reason in FailureReason::ALL {
                let _ = writeln!(
                    out,
                    "cutover_fallbacks_total{{route=\"{}\",from=\"{}\",to=\"{}\",reason=\"{}\"}} {}",
                    LabelValue(&route.name),
                    LabelValue(&from_arm.upstream),
                    LabelValue(&to_arm.upstream),
                    reason.as_str(),
                    route.fallbacks(from, reason)
                );
            }
        }
    }
    header(&mut out, "cutover_retries_total", "counter", "Attempts repeated on the same upstream, by why.");
    for route in metrics.routes().values() {
        for role in [Role::Primary, Role::Candidate] {
            let Some(arm) = route.arm(role) else { continue };
            for reason in FailureReason::ALL {
                let _ = writeln!(
                    out,
                    "cutover_retries_total{{route=\"{}\",upstream=\"{}\",reason=\"{}\"}} {}",
                    LabelValue(&route.name),
                    LabelValue(&arm.upstream),
                    reason.as_str(),
                    route.retries(role, reason)
                );
            }
        }
    }
    let per_upstream = [
        (
            "cutover_upstream_up",
            "gauge",
            "1 while the upstream answers, 0 while its breaker is open.",
            (|upstream| u64::from(upstream.up)) as fn(&UpstreamGauges<'_>) -> u64,
        ),
        (
            "cutover_upstream_connections",
            "gauge",
            "Connections to the upstream open or being opened, idle ones included (upstreams.*.max_connections bounds them; health probes' are not counted).",
            |upstream| upstream.connections as u64,
        ),
        (
            "cutover_upstream_connection_waits_total",
            "counter",
            "Times a request found upstreams.*.max_connections reached and waited (for a connection to free up or close).",
            |upstream| upstream.connection_waits,
        ),
        (
            "cutover_breaker_open",
            "gauge",
            "1 while the upstream's circuit breaker keeps traffic away from it.",
            |upstream| u64::from(upstream.breaker_open),
        ),
    ];
    for (name, kind, help, value) in per_upstream {
        header(&mut out, name, kind, help);
        for upstream in upstreams {
            let _ = writeln!(out, "{name}{{upstream=\"{}\"}} {}", LabelValue(upstream.name), value(upstream));
        }
    }
    header(
        &mut out,
        "cutover_shadow_requests_total",
        "counter",
        "Requests mirrored to the candidate, by what became of them.",
    );
    for route in metrics.routes().values() {
        for outcome in ShadowOutcome::ALL {
            let _ = writeln!(
                out,
                "cutover_shadow_requests_total{{route=\"{}\",outcome=\"{}\"}} {}",
                LabelValue(&route.name),
                outcome.as_str(),
                route.shadow(outcome)
            );
        }
    }
    header(
        &mut out,
        "cutover_shadow_dropped_total",
        "counter",
        "Mirrors not sent: full (every slot busy with a slow candidate) or cap (shadow_max_rps, shadow_max_usd_per_hour).",
    );
    for route in metrics.routes().values() {
        for reason in ShadowDrop::ALL {
            let _ = writeln!(
                out,
                "cutover_shadow_dropped_total{{route=\"{}\",reason=\"{}\"}} {}",
                LabelValue(&route.name),
                reason.as_str(),
                route.shadow_drops(reason)
            );
        }
    }
    header(&mut out, "cutover_rollout_transitions_total", "counter", "Rollout events, by kind.");
    for route in metrics.routes().values() {
        for (kind, count) in route.transitions() {
            let _ = writeln!(
                out,
                "cutover_rollout_transitions_total{{route=\"{}\",kind=\"{kind}\"}} {count}",
                LabelValue(&route.name)
            );
        }
    }
    header(
        &mut out,
        "cutover_state_write_failures_total",
        "counter",
        "Writes to the rollout state file (or a fleet's database) that failed, unserialisable evidence included \
         (each is logged with its route and error).",
    );
    for route in metrics.routes().values() {
        let _ = writeln!(
            out,
            "cutover_state_write_failures_total{{route=\"{}\"}} {}",
            LabelValue(&route.name),
            route.state_write_failures()
        );
    }
    header(&mut out, "cutover_rollout_weight_percent", "gauge", "Share of users sent to the candidate.");
    for (id, route) in metrics.routes().iter() {
        let gauge = &gauges[id];
        let _ = writeln!(
            out,
            "cutover_rollout_weight_percent{{route=\"{}\"}} {}",
            LabelValue(&route.name),
            gauge.weight_percent
        );
    }
    header(&mut out, "cutover_rollout_step", "gauge", "Index of the current rollout step (0-based).");
    for (id, route) in metrics.routes().iter() {
        let gauge = &gauges[id];
        let _ = writeln!(out, "cutover_rollout_step{{route=\"{}\"}} {}", LabelValue(&route.name), gauge.step);
    }
    header(
        &mut out,
        "cutover_rollout_undecided",
        "gauge",
        "1 while a step that ended undecided keeps the rollout paused for an operator.",
    );
    for (id, route) in metrics.routes().iter() {
        let undecided = u8::from(gauges[id].undecided);
        let _ = writeln!(out, "cutover_rollout_undecided{{route=\"{}\"}} {undecided}", LabelValue(&route.name));
    }
    header(&mut out, "cutover_config_reloads_total", "counter", "Configuration reloads (SIGHUP), by result.");
    for result in ReloadResult::ALL {
        let _ =
            writeln!(out, "cutover_config_reloads_total{{result=\"{}\"}} {}", result.as_str(), metrics.reloads(result));
    }
    header(
        &mut out,
        "cutover_inflight_requests",
        "gauge",
        "Proxied requests in flight (server.max_inflight bounds them).",
    );
    let _ = writeln!(out, "cutover_inflight_requests {}", metrics.admission.in_flight.load(Relaxed));
    header(
        &mut out,
        "cutover_admission_refused_total",
        "counter",
        "Requests refused at once with 503, by the limit they were past.",
    );
    for overload in Overload::ALL {
        let refused = metrics.admission.refusals(overload);
        let _ = writeln!(out, "cutover_admission_refused_total{{limit=\"{}\"}} {refused}", overload.as_str());
    }
    cutover_cost::write_metrics(&mut out, &metrics.cost);
    out
}

fn histogram(out: &mut String, name: &str, labels: &str, histogram: &Histogram) {
    let (cumulative, total) = histogram.cumulative();
    for (bound, count) in histogram.bounds().iter().zip(cumulative) {
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {count}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {total}");
    let _ = writeln!(out, "{name}_sum{{{labels}}} {}", histogram.sum_seconds());
    let _ = writeln!(out, "{name}_count{{{labels}}} {total}");
}

/// `cutover_notifications_total{notifier,outcome}`, from each notifier's counts in the
/// order of `notify::Outcome::ALL` (sent, failed, dropped).
pub fn render_notifications(out: &mut String, counts: &[(String, [u64; 3])]) {
    header(out, "cutover_notifications_total", "counter", "Notifications to each notifier, by how they ended.");
    for (notifier, counts) in counts {
        for (outcome, count) in ["sent", "failed", "dropped"].iter().zip(counts) {
            let _ = writeln!(
                out,
                "cutover_notifications_total{{notifier=\"{}\",outcome=\"{outcome}\"}} {count}",
                LabelValue(notifier)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use cutover_config::testing;

    /// A name with each character the text format escapes: `\`, `"` and a line feed.
    const HOSTILE: &str = "we\\b\"app\nx";
    /// `HOSTILE` as a label value must be written.
    const ESCAPED: &str = "we\\\\b\\\"app\\nx";

    /// Route `default` and its two upstreams renamed to `HOSTILE` (and `HOSTILE` plus a
    /// suffix), as no validated configuration can name them: the page must hold anyway.
    fn hostile_metrics() -> Metrics {
        let config = testing::load(&testing::two_upstreams_toml("", ""), Path::new("/tmp"), |_| None);
        let mut metrics = Metrics::new(&config);
        for (_, route) in metrics.routes.iter_mut() {
            route.name = HOSTILE.to_owned();
            for (index, arm) in route.arms.iter_mut().flatten().enumerate() {
                arm.upstream = format!("{HOSTILE}{}", index.min(1));
            }
        }
        metrics
    }

    fn hostile_page() -> String {
        let metrics = hostile_metrics();
        let gauges = metrics.routes().map(|_, _| RouteGauges { weight_percent: 5.0, step: 1, undecided: false });
        let upstream = format!("{HOSTILE}0");
        let upstreams =
            [UpstreamGauges { name: &upstream, up: true, breaker_open: false, connections: 3, connection_waits: 1 }];
        let mut page = render(&metrics, &gauges, &upstreams);
        render_notifications(&mut page, &[(HOSTILE.to_owned(), [1, 2, 3])]);
        page
    }

    #[test]
    fn quotes_backslashes_and_newlines_in_names_are_escaped_in_every_series() {
        let page = hostile_page();
        let expected = [
            format!(
                "cutover_requests_total{{route=\"{ESCAPED}\",upstream=\"{ESCAPED}0\",role=\"primary\",outcome=\"ok\"}} 0"
            ),
            format!(
                "cutover_request_duration_seconds_bucket{{route=\"{ESCAPED}\",upstream=\"{ESCAPED}1\",role=\"candidate\",le=\"+Inf\"}} 0"
            ),
            format!(
                "cutover_fallbacks_total{{route=\"{ESCAPED}\",from=\"{ESCAPED}1\",to=\"{ESCAPED}0\",reason=\"connect\"}} 0"
            ),
            format!("cutover_retries_total{{route=\"{ESCAPED}\",upstream=\"{ESCAPED}0\",reason=\"connect\"}} 0"),
            format!("cutover_upstream_up{{upstream=\"{ESCAPED}0\"}} 1"),
            format!("cutover_breaker_open{{upstream=\"{ESCAPED}0\"}} 0"),
            format!("cutover_upstream_connections{{upstream=\"{ESCAPED}0\"}} 3"),
            format!("cutover_upstream_connection_waits_total{{upstream=\"{ESCAPED}0\"}} 1"),
            format!("cutover_shadow_requests_total{{route=\"{ESCAPED}\",outcome=\"mirrored\"}} 0"),
            format!("cutover_state_write_failures_total{{route=\"{ESCAPED}\"}} 0"),
            format!("cutover_rollout_weight_percent{{route=\"{ESCAPED}\"}} 5"),
            format!("cutover_rollout_step{{route=\"{ESCAPED}\"}} 1"),
            format!("cutover_notifications_total{{notifier=\"{ESCAPED}\",outcome=\"dropped\"}} 3"),
        ];
        for line in expected {
            assert!(page.lines().any(|written| written == line), "missing {line}\nin:\n{page}");
        }
    }

    #[test]
    fn a_hostile_name_cannot_split_a_sample_across_lines() {
        let page = hostile_page();
        for line in page.lines() {
            let unlabelled = !line.contains(['{', '"']) && line.split(' ').count() == 2;
            let is_sample = line.starts_with("cutover_") && (line.contains("} ") || unlabelled);
            assert!(line.starts_with("# ") || is_sample, "not a comment or a whole sample: {line:?}");
        }
    }
}
