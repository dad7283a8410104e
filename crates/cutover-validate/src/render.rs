//! The tables a person reads: one upstream's checks (result, latency, reason), the
//! latency sample and the tokens spent; with `--compare`, the parity table and its line.

use std::fmt::Write as _;
use std::time::Duration;

use super::check::{CheckResult, Latency, Status};
use super::parity::Parity;
use super::report::Report;

fn ms(duration: Duration) -> String {
    format!("{} ms", duration.as_millis())
}

fn latency(latency: &Latency) -> String {
    match (latency.ttft, latency.total) {
        (Some(ttft), Some(total)) => format!("{} / {}", ms(ttft), ms(total)),
        (None, Some(total)) => ms(total),
        _ => "-".to_owned(),
    }
}

fn result(result: &CheckResult) -> String {
    let status = result.finding.status.as_str();
    match (result.required, result.check.quality_note) {
        (false, true) => format!("{status} (note)"),
        (false, false) => format!("{status} (not required)"),
        _ => status.to_owned(),
    }
}

/// The table of one upstream's report.
pub fn report(report: &Report) -> String {
    let mut out = format!("validate {} (model {}", report.upstream, report.model);
    if report.sent_model != report.model {
        let _ = write!(out, ", sent as {}", report.sent_model);
    }
    out.push_str(")\n\n");
    let rows: Vec<[String; 4]> = report
        .results
        .iter()
        .map(|r| [r.check.id.to_owned(), result(r), latency(&r.finding.latency), r.finding.reason.clone()])
        .collect();
    out.push_str(&table(&["check", "result", "ttft / total", "reason"], &rows));
    let sample = &report.sample;
    let _ = write!(
        out,
        "\nlatency sample: {} streamed answers ({} failed), median TTFT {}, median {} output tokens/s\n",
        sample.answers,
        sample.failed,
        sample.median_ttft.map_or("-".to_owned(), ms),
        sample.median_tokens_per_second.map_or("-".to_owned(), |rate| format!("{rate:.1}")),
    );
    let spent = &report.spent;
    let cost = spent.cost.map_or("no price configured".to_owned(), |cost| format!("${cost}"));
    let _ = writeln!(out, "spent: {} prompt + {} completion tokens ({cost})", spent.prompt, spent.completion);
    let failed = report.failed_required();
    if failed.is_empty() {
        out.push_str("result: every required check passed\n");
    } else {
        let ids: Vec<&str> = failed.iter().map(|r| r.check.id).collect();
        let _ = writeln!(out, "result: {} required check(s) did not pass: {}", ids.len(), ids.join(", "));
    }
    out
}

/// The parity table of `tested` against `reference`, then its summary line.
pub fn parity(tested: &Report, reference: &Report, parity: &Parity) -> String {
    let rows: Vec<[String; 4]> = tested
        .results
        .iter()
        .map(|r| {
            let theirs = reference.result(r.check.id).map_or(Status::Fail, |t| t.finding.status);
            let mark = if parity.lacking_checks.contains(&r.check.id) { "lacks" } else { "" };
            [r.check.id.to_owned(), r.finding.status.as_str().to_owned(), theirs.as_str().to_owned(), mark.to_owned()]
        })
        .collect();
    let mut out = format!("parity: {} against {}\n\n", tested.upstream, reference.upstream);
    out.push_str(&table(&["check", &tested.upstream, &reference.upstream, ""], &rows));
    let _ = writeln!(out, "\n{}", parity.summary(&tested.upstream, &reference.upstream));
    out
}

/// Left-aligned columns, two spaces apart; the last column is not padded.
fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == N {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<width$}  ", width = widths[i]);
            }
        }
        text.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}
