//! What the demo prints about the rollout, read from the admin API's view of the route:
//! one line per interval, one per transition, and a summary at the end (each step with
//! its time, evidence and verdict, the whole run per arm, the notifications received).
//! Counts are integers, latencies carry their unit, and estimates say so.

use std::fmt::Write as _;

use serde_json::Value;

use crate::cli::rollout::percent_json;

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

fn count(value: &Value) -> u64 {
    value.as_f64().map_or(0, |number| number.round().max(0.0) as u64)
}

/// `1 error`, `3 errors`.
fn plural(count: u64, noun: &str) -> String {
    if count == 1 { format!("{count} {noun}") } else { format!("{count} {noun}s") }
}

/// The line of one interval: time, step, weight, phase, per-arm evidence, latency and
/// what the next decision waits for.
pub fn interval_line(view: &Value, elapsed_seconds: u64) -> String {
    let arm = |name: &str| {
        let arm = &view["arms"][name];
        format!("{name} {} req, {}", count(&arm["requests"]), plural(count(&arm["upstream_errors"]), "error"))
    };
    let mut line = format!(
        "[{elapsed_seconds:>4}s] step {}/{} at {:>3}% {:<11} | {} | {}",
        view["step"].as_u64().unwrap_or(0) + 1,
        count(&view["steps"]),
        percent_json(&view["weight"]),
        text(&view["phase"]),
        arm("candidate"),
        arm("control"),
    );
    let evaluation = &view["evaluation"];
    for check in evaluation["checks"].as_array().into_iter().flatten() {
        if let Some(which) =
            text(&check["criterion"]).strip_prefix("max_latency_").and_then(|rest| rest.strip_suffix("_ratio"))
            && let (Some(candidate), Some(control)) = (check["candidate"].as_f64(), check["control"].as_f64())
        {
            let _ = write!(
                line,
                " | {which} {candidate:.0} ms vs {control:.0} ms (limit {}× control)",
                check["threshold"].as_f64().unwrap_or(0.0)
            );
        }
    }
    if let Some(verdict) = evaluation["verdict"].as_str() {
        let _ = write!(line, " | {verdict}");
        let missing: Vec<String> = evaluation["gates"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|gate| gate["met"] == false)
            .map(|gate| {
                let eta = gate["eta_seconds"].as_f64().map_or(String::new(), |eta| format!(" ~{eta:.0}s"));
                let name = text(&gate["gate"]);
                // Users are counted by a sketch: an estimate, said as one.
                let about = if name.ends_with("users") { "~" } else { "" };
                format!("{} {about}{}/{}{eta}", name.replace('_', " "), count(&gate["have"]), count(&gate["need"]))
            })
            .collect();
        let undecided: Vec<&str> = evaluation["checks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|check| check["verdict"] == "inconclusive")
            .map(|check| text(&check["criterion"]))
            .collect();
        if !missing.is_empty() {
            let _ = write!(line, ", waiting for {}", missing.join(", "));
        } else if !undecided.is_empty() {
            let _ = write!(line, ", waiting for evidence on {}", undecided.join(", "));
        }
    }
    line
}

/// The line of one transition: `── advance at 5% (progressing): …`, with the phase
/// change when there is one.
pub fn transition_line(event: &Value) -> String {
    let (from, to) = (text(&event["from_phase"]), text(&event["to_phase"]));
    let phases = if from == to { to.to_owned() } else { format!("{from} → {to}") };
    format!(
        "  ── {} at {}% ({phases}) by {}: {}",
        text(&event["kind"]),
        percent_json(&event["weight_percent"]),
        text(&event["actor"]),
        text(&event["reason"])
    )
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
    pub fn event(&mut self, event: &Value) {
        let kind = text(&event["kind"]);
        let ends = ["advance", "promoted", "rollback", "step_back", "promote", "promote_full", "abort", "set_weight"];
        if let Some(current) = self.records.last_mut()
            && ends.contains(&kind)
            && current.ended_by.is_none()
        {
            current.ended_by = Some(kind.to_owned());
            current.ended_at_ms = event["at"].as_i64();
        }
    }

    /// Takes a view: a new step begins, or the current one's evidence is brought up to date.
    pub fn view(&mut self, view: &Value) {
        if !matches!(text(&view["phase"]), "progressing" | "shadowing") {
            return;
        }
        let step = view["step"].as_u64().unwrap_or(0);
        let started_at_ms = view["step_started_at"].as_i64().unwrap_or(0);
        if self.records.last().is_none_or(|last| last.step != step || last.started_at_ms != started_at_ms) {
            if let Some(last) = self.records.last_mut()
                && last.ended_at_ms.is_none()
            {
                last.ended_at_ms = Some(started_at_ms);
            }
            self.records.push(StepRecord {
                step,
                steps: count(&view["steps"]),
                weight: percent_json(&view["weight"]),
                started_at_ms,
                ended_at_ms: None,
                candidate: (0, 0),
                control: (0, 0),
                last_verdict: None,
                ended_by: None,
            });
        }
        if let Some(current) = self.records.last_mut() {
            let arm =
                |name: &str| (count(&view["arms"][name]["requests"]), count(&view["arms"][name]["upstream_errors"]));
            current.candidate = arm("candidate");
            current.control = arm("control");
            current.weight = percent_json(&view["weight"]);
            current.last_verdict = view["evaluation"]["verdict"].as_str().map(str::to_owned);
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
    use serde_json::json;

    use super::*;

    fn view(step: u64, weight: f64, started: i64, candidate: u64, verdict: &str) -> Value {
        json!({"route": "default", "phase": "progressing", "step": step, "steps": 5, "weight": weight,
               "step_started_at": started,
               "arms": {"candidate": {"requests": candidate, "upstream_errors": 1, "users": 913},
                        "control": {"requests": 200, "upstream_errors": 0}},
               "evaluation": {"verdict": verdict,
                   "checks": [{"criterion": "max_latency_p95_ratio", "threshold": 1.5, "candidate": 54.76, "control": 88.2}],
                   "gates": [{"gate": "candidate_requests", "have": 17.0, "need": 200.0, "met": false, "eta_seconds": 12.4}]}})
    }

    #[test]
    fn an_interval_reads_counts_as_integers_and_latency_in_milliseconds_against_its_limit() {
        let line = interval_line(&view(0, 1.0, 0, 17, "inconclusive"), 12);
        assert_eq!(
            line,
            "[  12s] step 1/5 at   1% progressing | candidate 17 req, 1 error | control 200 req, 0 errors \
             | p95 55 ms vs 88 ms (limit 1.5× control) | inconclusive, waiting for candidate requests 17/200 ~12s"
        );
        assert!(!line.contains("users"), "user counts are estimates: not shown as exact");
    }

    #[test]
    fn a_transition_shows_a_phase_change_only_when_there_is_one() {
        let promoted = json!({"kind": "promoted", "from_phase": "progressing", "to_phase": "promoted",
                              "weight_percent": 100.0, "actor": "controller", "reason": "all steps passed"});
        assert_eq!(
            transition_line(&promoted),
            "  ── promoted at 100% (progressing → promoted) by controller: all steps passed"
        );
        let advance = json!({"kind": "advance", "from_phase": "progressing", "to_phase": "progressing",
                             "weight_percent": 5.0, "actor": "controller", "reason": "passed"});
        assert_eq!(transition_line(&advance), "  ── advance at 5% (progressing) by controller: passed");
    }

    #[test]
    fn each_step_gets_its_time_its_last_evidence_and_the_transition_that_ended_it() {
        let mut steps = Steps::default();
        steps.view(&view(0, 1.0, 1_000, 100, "inconclusive"));
        steps.view(&view(0, 1.0, 1_000, 210, "pass"));
        steps.event(&json!({"kind": "advance", "at": 11_000}));
        steps.view(&view(1, 5.0, 11_000, 40, "fail"));
        steps.event(&json!({"kind": "rollback", "at": 19_000}));
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
