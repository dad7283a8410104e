//! One upstream's validation: every check's line, the latency sample, the tokens spent
//! and their cost, and which checks are required (`--require`).

use cutover_cost::Nanos;

use super::check::{CATALOGUE, CheckResult, Status};
use super::sample::Sample;

/// The checks whose failure fails the validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    ids: Vec<&'static str>,
}

/// A `--require` entry that names no check nor group.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--require: {0:?} is neither a check nor a group of checks; checks: {checks}", checks = catalogue_ids())]
pub struct UnknownCheck(pub String);

fn catalogue_ids() -> String {
    CATALOGUE.iter().map(|check| check.id).collect::<Vec<_>>().join(", ")
}

impl Default for Requirement {
    /// Every check but the quality notes.
    fn default() -> Self {
        Requirement { ids: CATALOGUE.iter().filter(|check| !check.quality_note).map(|check| check.id).collect() }
    }
}

impl Requirement {
    /// A comma-separated list of check ids (`tools.parallel`), groups (`tools`: every
    /// `tools.*` check and `tools` itself), `all` (quality notes included) or `none`.
    pub fn parse(list: &str) -> Result<Requirement, UnknownCheck> {
        let mut ids = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|entry| !entry.is_empty()) {
            let matched: Vec<&'static str> = match entry {
                "all" => CATALOGUE.iter().map(|check| check.id).collect(),
                "none" => Vec::new(),
                _ => CATALOGUE
                    .iter()
                    .map(|check| check.id)
                    .filter(|id| *id == entry || id.strip_prefix(entry).is_some_and(|rest| rest.starts_with('.')))
                    .collect(),
            };
            if matched.is_empty() && entry != "none" {
                return Err(UnknownCheck(entry.to_owned()));
            }
            ids.extend(matched);
        }
        Ok(Requirement { ids })
    }

    pub fn requires(&self, id: &str) -> bool {
        self.ids.contains(&id)
    }
}

/// Tokens the suite spent on one upstream, as it reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spent {
    pub prompt: u64,
    pub completion: u64,
    /// Their cost from `[prices.<upstream>]`; `None` without a price for the model.
    pub cost: Option<Nanos>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub upstream: String,
    /// As the operator names it, and as the upstream is sent it.
    pub model: String,
    pub sent_model: String,
    pub results: Vec<CheckResult>,
    pub sample: Sample,
    pub spent: Spent,
    /// `prompt_tokens` reported for the usage probe, for the parity table.
    pub usage_probe_prompt_tokens: Option<u64>,
}

impl Report {
    /// Whether every required check passed.
    pub fn passed(&self) -> bool {
        self.results.iter().all(|result| !result.required || result.finding.status == Status::Pass)
    }

    /// The required checks that did not pass.
    pub fn failed_required(&self) -> Vec<&CheckResult> {
        self.results.iter().filter(|result| result.required && result.finding.status != Status::Pass).collect()
    }

    pub fn result(&self, id: &str) -> Option<&CheckResult> {
        self.results.iter().find(|result| result.check.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn require_takes_ids_groups_all_and_none() {
        let default = Requirement::default();
        assert!(default.requires("tools.parallel") && !default.requires("vision.colour"));
        let tools = Requirement::parse("tools, chat").unwrap();
        assert!(tools.requires("tools.forced") && tools.requires("chat") && !tools.requires("streaming"));
        assert!(Requirement::parse("streaming").unwrap().requires("streaming.usage"));
        assert!(Requirement::parse("all").unwrap().requires("vision.colour"));
        assert!(!Requirement::parse("none").unwrap().requires("chat"));
        assert_eq!(Requirement::parse("tool").unwrap_err(), UnknownCheck("tool".to_owned()));
    }
}
