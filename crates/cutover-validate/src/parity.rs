//! `--compare`: what the upstream under test lacks that the reference has (a check that
//! passes on the reference and not on it), what it has that the reference lacks, and how
//! many more prompt tokens it reports for the same prompt (the usage probe).

use super::check::Status;
use super::report::Report;

#[derive(Debug, Clone, PartialEq)]
pub struct Parity {
    /// Capabilities the reference has and the upstream under test lacks, in catalogue order.
    pub lacks: Vec<&'static str>,
    /// Check ids behind `lacks`.
    pub lacking_checks: Vec<&'static str>,
    /// Capabilities the upstream under test has and the reference lacks.
    pub extra: Vec<&'static str>,
    /// (tested − reference) / reference × 100 of the usage probe's `prompt_tokens`.
    pub prompt_token_difference_percent: Option<f64>,
}

pub fn compare(tested: &Report, reference: &Report) -> Parity {
    let (mut lacks, mut lacking_checks, mut extra) = (Vec::new(), Vec::new(), Vec::new());
    for result in &tested.results {
        let Some(theirs) = reference.result(result.check.id) else { continue };
        match (result.finding.status, theirs.finding.status) {
            (Status::Pass, Status::Pass) => {}
            (_, Status::Pass) => {
                lacks.push(result.check.capability);
                lacking_checks.push(result.check.id);
            }
            (Status::Pass, _) => extra.push(result.check.capability),
            _ => {}
        }
    }
    let difference = match (tested.usage_probe_prompt_tokens, reference.usage_probe_prompt_tokens) {
        (Some(tested), Some(reference)) if reference > 0 => {
            Some((tested as f64 - reference as f64) / reference as f64 * 100.0)
        }
        _ => None,
    };
    Parity { lacks, lacking_checks, extra, prompt_token_difference_percent: difference }
}

impl Parity {
    /// "relay lacks: streamed usage, parallel tool calls; reports 12% more prompt tokens
    /// than official".
    pub fn summary(&self, tested: &str, reference: &str) -> String {
        let mut parts = Vec::new();
        if self.lacks.is_empty() {
            parts.push(format!("{tested} lacks nothing {reference} has"));
        } else {
            parts.push(format!("{tested} lacks: {}", self.lacks.join(", ")));
        }
        if !self.extra.is_empty() {
            parts.push(format!("has what {reference} lacks: {}", self.extra.join(", ")));
        }
        match self.prompt_token_difference_percent {
            Some(d) if d.round() > 0.0 => parts.push(format!("reports {d:.0}% more prompt tokens than {reference}")),
            Some(d) if d.round() < 0.0 => {
                parts.push(format!("reports {:.0}% fewer prompt tokens than {reference}", -d))
            }
            Some(_) => parts.push(format!("reports the same prompt tokens as {reference}")),
            None => {}
        }
        parts.join("; ")
    }
}
