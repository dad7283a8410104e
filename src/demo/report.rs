//! What the demo prints about the rollout, read from the admin API's view of the route:
//! one line per interval, one per transition, and a summary at the end (each step with
//! its time, evidence and verdict, the whole run per arm, the notifications received).
//! Counts are integers, latencies carry their unit, and estimates say so.

use std::fmt::Write as _;

use cutover_model::Phase;
use cutover_model::evaluation::Verdict;
use cutover_model::event::Event;
use cutover_model::view::{ArmView, RolloutView};

use crate::cli::rollout::percent;

/// `1 error`, `3 errors`.
fn plural(count: u64, noun: &str) -> String {
    if count == 1 { format!("{count} {noun}") } else { format!("{count} {noun}s") }
}

/// A gate's figure, a whole count as the step's gates count.
fn count(figure: f64) -> u64 {
    figure.round().max(0.0) as u64
}

/// The line of one interval: time, step, weight, phase, per-arm evidence, latency and
/// what the next decision waits for.
pub fn interval_line(view: &RolloutView, elapsed_seconds: u64) -> String {
    let arm = |name: &str, arm: &ArmView| {
        let counts = &arm.counts;
        format!("{name} {} req, {}", counts.requests, plural(counts.upstream_errors, "error"))
    };
    let mut line = format!(
        "[{elapsed_seconds:>4}s] step {}/{} at {:>3}% {:<11} | {} | {}",
        view.step + 1,
        view.steps,
        percent(view.weight),
        view.phase.as_str(),
        arm("candidate", &view.arms.candidate),
        arm("control", &view.arms.control),
    );
    let Some(evaluation) = &view.evaluation else { return line };
    for check in &evaluation.checks {
        if let Some(which) =
            check.criterion.key().strip_prefix("max_latency_").and_then(|rest| rest.strip_suffix("_ratio"))
            && let (Some(candidate), Some(control)) = (check.candidate, check.control)
        {
            let _ =
                write!(line, " | {which} {candidate:.0} ms vs {control:.0} ms (limit {}× control)", check.threshold);
        }
    }
    let _ = write!(line, " | {}", evaluation.verdict.as_str());
    let missing: Vec<String> = evaluation
        .gates
        .iter()
        .filter(|gate| !gate.met)
        .map(|gate| {
            let eta = gate.eta_seconds.map_or(String::new(), |eta| format!(" ~{eta:.0}s"));
            // Users are counted by a sketch: an estimate, said as one.
            let about = if gate.gate.ends_with("users") { "~" } else { "" };
            format!("{} {about}{}/{}{eta}", gate.gate.replace('_', " "), count(gate.have), count(gate.need))
        })
        .collect();
    let undecided: Vec<&str> = evaluation
        .checks
        .iter()
        .filter(|check| check.verdict == Verdict::Inconclusive)
        .map(|check| check.criterion.key())
        .collect();
    if !missing.is_empty() {
        let _ = write!(line, ", waiting for {}", missing.join(", "));
    } else if !undecided.is_empty() {
        let _ = write!(line, ", waiting for evidence on {}", undecided.join(", "));
    }
    line
}

/// The line of one transition: `── advance at 5% (progressing): …`, with the phase
/// change when there is one.
pub fn transition_line(event: &Event) -> String {
    let (from, to) = (&event.from_phase, &event.to_phase);
    let phases = if from == to { to.clone() } else { format!("{from} → {to}") };
    format!("  ── {} at {}% ({phases}) by {}: {}", event.kind, percent(event.weight_percent), event.actor, event.reason)
}

/// One step of the run as the demo saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRecord {
    pub step: u64,
    pub steps: u64,
    pub weight: String,
    pub started_at_ms: i64,
    pub ended_at_ms: Option<i64>,
    /// Requests and upstream errors of the candidate and the control at the last look.
    pub candidate: (u64, u64),
    pub control: (u64, u64),
    pub last_verdict: Option<String>,
    /// The transition that ended the step.
    pub ended_by: Option<String>,
}

/// The steps of one run, from the views and events seen every interval.
#[derive(Debug, Default)]
pub struct Steps {
    pub records: Vec<StepRecord>,
}

impl Steps {
    /// Takes a transition: the current step ended with it, if it moves the rollout.
    pub fn event(&mut self, event: &Event) {
        let kind = event.kind.as_str();
        let ends = ["advance", "promoted", "rollback", "step_back", "promote", "promote_full", "abort", "set_weight"];
        if let Some(current) = self.records.last_mut()
            && ends.contains(&kind)
            && current.ended_by.is_none()
        {
            current.ended_by = Some(kind.to_owned());
            current.ended_at_ms = Some(event.at);
        }
    }

    /// Takes a view: a new step begins, or the current one's evidence is brought up to date.
    pub fn view(&mut self, view: &RolloutView) {
        if !matches!(view.phase, Phase::Progressing | Phase::Shadowing) {
            return;
        }
        let step = u64::from(view.step);
        let started_at_ms = view.step_started_at;
        if self.records.last().is_none_or(|last| last.step != step || last.started_at_ms != started_at_ms) {
            if let Some(last) = self.records.last_mut()
                && last.ended_at_ms.is_none()
            {
                last.ended_at_ms = Some(started_at_ms);
            }
            self.records.push(StepRecord {
                step,
                steps: view.steps as u64,
                weight: percent(view.weight),
                started_at_ms,
                ended_at_ms: None,
                candidate: (0, 0),
                control: (0, 0),
                last_verdict: None,
                ended_by: None,
            });
        }
        if let Some(current) = self.records.last_mut() {
            let arm = |arm: &ArmView| (arm.counts.requests, arm.counts.upstream_errors);
            current.candidate = arm(&view.arms.candidate);
            current.control = arm(&view.arms.control);
            current.weight = percent(view.weight);
            current.last_verdict = view.evaluation.as_ref().map(|evaluation| evaluation.verdict.as_str().to_owned());
        }
    }

    /// The table of steps; `now_ms` ends a step still running.
    pub fn render(&self, now_ms: i64) -> String {
        let mut out = String::from("  step  weight   time  candidate req  errors  control req  errors  verdict\n");
        for record in &self.records {
            let seconds = (record.ended_at_ms.unwrap_or(now_ms) - record.started_at_ms).max(0) / 1000;
            let verdict = match record.ended_by.as_deref() {
                Some("advance" | "promoted") => "pass → ".to_owned() + record.ended_by.as_deref().unwrap_or_default(),
                Some("rollback" | "step_back") => "fail → ".to_owned() + record.ended_by.as_deref().unwrap_or_default(),
                Some(other) => format!("{} (by hand)", other),
                None => format!("{} (still running)", record.last_verdict.as_deref().unwrap_or("no analysis yet")),
            };
            let _ = writeln!(
                out,
                "  {:>4}  {:>5}%  {:>4}s  {:>13}  {:>6}  {:>11}  {:>6}  {verdict}",
                format!("{}/{}", record.step + 1, record.steps),
                record.weight,
                seconds,
                record.candidate.0,
                record.candidate.1,
                record.control.0,
                record.control.1,
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_model::evaluation::{Check, ControlKind, Evaluation, Gate};
    use cutover_model::{Criterion, EventKind};

    fn view(step: u32, weight: f64, started: i64, candidate: u64, verdict: Verdict) -> RolloutView {
        let mut view = crate::cli::rollout::empty_view();
        (view.phase, view.step, view.steps, view.weight, view.step_started_at) =
            (Phase::Progressing, step, 5, weight, started);
        view.arms.candidate.counts.requests = candidate;
        view.arms.candidate.counts.upstream_errors = 1;
        view.arms.candidate.counts.users = 913;
        view.arms.control.counts.requests = 200;
        let check = Check {
            criterion: Criterion::MaxLatencyP95Ratio,
            threshold: 1.5,
            candidate: Some(54.76),
            control: Some(88.2),
            verdict,
            candidate_samples: candidate,
            control_samples: 200,
            evidence: String::new(),
            dimension: None,
            detectable: None,
            lower: None,
            upper: None,
            alpha_pass: 0.05,
            alpha_fail: 0.05,
        };
        let gate =
            Gate { gate: "candidate_requests".into(), have: 17.0, need: 200.0, met: false, eta_seconds: Some(12.4) };
        view.evaluation = Some(Evaluation {
            verdict,
            control: ControlKind::EqualSlice,
            checks: vec![check],
            gates: vec![gate],
            held: None,
            ahead: Vec::new(),
        });
        view
    }

    fn event(kind: EventKind, at: i64, (from, to): (&str, &str), weight_percent: f64, reason: &str) -> Event {
        Event {
            id: 1,
            at,
            route: "default".to_owned(),
            kind,
            actor: "controller".to_owned(),
            from_phase: from.to_owned(),
            to_phase: to.to_owned(),
            weight_percent,
            reason: reason.to_owned(),
        }
    }

    #[test]
    fn an_interval_reads_counts_as_integers_and_latency_in_milliseconds_against_its_limit() {
        let line = interval_line(&view(0, 1.0, 0, 17, Verdict::Inconclusive), 12);
        assert_eq!(
            line,
            "[  12s] step 1/5 at   1% progressing | candidate 17 req, 1 error | control 200 req, 0 errors \
             | p95 55 ms vs 88 ms (limit 1.5× control) | inconclusive, waiting for candidate requests 17/200 ~12s"
        );
        assert!(!line.contains("users"), "user counts are estimates: not shown as exact");
    }

    #[test]
    fn a_transition_shows_a_phase_change_only_when_there_is_one() {
        let promoted = event(EventKind::Promoted, 0, ("progressing", "promoted"), 100.0, "all steps passed");
        assert_eq!(
            transition_line(&promoted),
            "  ── promoted at 100% (progressing → promoted) by controller: all steps passed"
        );
        let advance = event(EventKind::Advance, 0, ("progressing", "progressing"), 5.0, "passed");
        assert_eq!(transition_line(&advance), "  ── advance at 5% (progressing) by controller: passed");
    }

    #[test]
    fn each_step_gets_its_time_its_last_evidence_and_the_transition_that_ended_it() {
        let mut steps = Steps::default();
        let progressing = ("progressing", "progressing");
        steps.view(&view(0, 1.0, 1_000, 100, Verdict::Inconclusive));
        steps.view(&view(0, 1.0, 1_000, 210, Verdict::Pass));
        steps.event(&event(EventKind::Advance, 11_000, progressing, 5.0, ""));
        steps.view(&view(1, 5.0, 11_000, 40, Verdict::Fail));
        steps.event(&event(EventKind::Rollback, 19_000, progressing, 0.0, ""));
        assert_eq!(steps.records.len(), 2);
        assert_eq!((steps.records[0].candidate.0, steps.records[0].ended_at_ms), (210, Some(11_000)));
        let table = steps.render(30_000);
        assert!(table.contains("1/5      1%    10s"), "{table}");
        assert!(
            table.contains("2/5      5%     8s             40       1          200       0  fail → rollback"),
            "{table}"
        );
    }
}
