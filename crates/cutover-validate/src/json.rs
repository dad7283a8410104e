//! `--json`: the same results for machines, with stable keys (documented in the README):
//!
//! ```text
//! {"passed": bool,
//!  "upstream": REPORT, "compare": REPORT | null,
//!  "parity": {"lacks": [capability], "lacking_checks": [id], "extra": [capability],
//!             "prompt_token_difference_percent": number | null, "summary": text} | null}
//! REPORT = {"upstream", "model", "sent_model", "passed",
//!           "checks": [{"id", "capability", "required", "quality_note", "status", "reason",
//!                       "ttft_ms", "total_ms"}],
//!           "sample": {"answers", "failed", "median_ttft_ms", "median_tokens_per_second"},
//!           "spent": {"prompt_tokens", "completion_tokens", "cost_usd"},
//!           "usage_probe_prompt_tokens"}
//! ```
//! Absent values are `null`, never missing keys.

use serde_json::{Value, json};

use super::Validation;
use super::report::Report;

pub fn render(validation: &Validation) -> Value {
    let parity = validation.parity.as_ref().zip(validation.compare.as_ref()).map(|(parity, reference)| {
        json!({
            "lacks": parity.lacks,
            "lacking_checks": parity.lacking_checks,
            "extra": parity.extra,
            "prompt_token_difference_percent": parity.prompt_token_difference_percent,
            "summary": parity.summary(&validation.report.upstream, &reference.upstream),
        })
    });
    json!({
        "passed": validation.passed(),
        "upstream": report(&validation.report),
        "compare": validation.compare.as_ref().map(report),
        "parity": parity,
    })
}

fn report(report: &Report) -> Value {
    let millis = |d: Option<std::time::Duration>| d.map(|d| d.as_millis() as u64);
    let checks: Vec<Value> = report
        .results
        .iter()
        .map(|r| {
            json!({
                "id": r.check.id,
                "capability": r.check.capability,
                "required": r.required,
                "quality_note": r.check.quality_note,
                "status": r.finding.status,
                "reason": r.finding.reason,
                "ttft_ms": millis(r.finding.latency.ttft),
                "total_ms": millis(r.finding.latency.total),
            })
        })
        .collect();
    json!({
        "upstream": report.upstream,
        "model": report.model,
        "sent_model": report.sent_model,
        "passed": report.passed(),
        "checks": checks,
        "sample": {
            "answers": report.sample.answers,
            "failed": report.sample.failed,
            "median_ttft_ms": millis(report.sample.median_ttft),
            "median_tokens_per_second": report.sample.median_tokens_per_second,
        },
        "spent": {
            "prompt_tokens": report.spent.prompt,
            "completion_tokens": report.spent.completion,
            "cost_usd": report.spent.cost.map(|cost| cost.as_dollars()),
        },
        "usage_probe_prompt_tokens": report.usage_probe_prompt_tokens,
    })
}
