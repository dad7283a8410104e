//! The comparison of one pair — the primary's and the candidate's answers to the same
//! request — dimension by dimension, each a small function of its own. A dimension that
//! does not apply to a pair (no tools offered, no JSON asked, a side that failed) says
//! `None` and is left out of that dimension's rate, so a rate is always "of the pairs
//! where it could be judged". Each disagreement counts in one dimension only: a tool-call
//! difference is not counted again as a different finish, JSON answers are judged by the
//! JSON dimensions and not by text similarity.

use std::collections::HashSet;

use cutover_model::Dimension;
use serde_json::Value;

use super::answer::Answer;
use super::request::{JsonAsk, RequestFacts};

/// The candidate's `prompt_tokens` may differ from the primary's by this share…
pub const PROMPT_TOKENS_TOLERANCE: f64 = 0.05;
/// …or by this many tokens, whichever is larger (same model, same prompt: only a
/// different count of special tokens is honest).
pub const PROMPT_TOKENS_SLACK: u64 = 2;

/// One side of a pair as the dimensions see it.
#[derive(Debug, Clone, Copy)]
pub struct SideView<'a> {
    /// A successful answer read to its end.
    pub ok: bool,
    pub answer: &'a Answer,
    pub prompt_tokens: Option<u64>,
}

/// What the route says about judging.
#[derive(Debug, Clone, Copy)]
pub struct Settings<'a> {
    /// Token-set Jaccard at or above this is "the same content".
    pub min_similarity: f64,
    /// The model the candidate was asked for (after its alias map).
    pub expected_model: Option<&'a str>,
}

/// Every dimension's verdict on one pair, with the figures reported as distributions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Judged {
    /// Indexed by `Dimension`; `None`: not applicable to this pair.
    pub verdicts: [Option<bool>; Dimension::COUNT],
    pub similarity: Option<f64>,
    /// The candidate's text length over the primary's.
    pub length_ratio: Option<f64>,
    pub tool_f1: Option<f64>,
    /// What differed, in words, for the kept diffs.
    pub notes: Vec<String>,
}

impl Judged {
    pub fn get(&self, dimension: Dimension) -> Option<bool> {
        self.verdicts[dimension as usize]
    }

    /// Every applicable dimension agreed.
    pub fn agrees(&self) -> bool {
        self.verdicts.iter().all(|verdict| *verdict != Some(false))
    }

    pub fn disagreements(&self) -> impl Iterator<Item = Dimension> + '_ {
        Dimension::ALL.into_iter().filter(|dimension| self.get(*dimension) == Some(false))
    }

    fn set(&mut self, dimension: Dimension, verdict: Option<bool>, note: impl FnOnce() -> String) {
        self.verdicts[dimension as usize] = verdict;
        if verdict == Some(false) {
            self.notes.push(format!("{dimension}: {}", note()));
        }
    }
}

/// Judges a pair on every dimension.
pub fn judge(facts: &RequestFacts, primary: SideView<'_>, candidate: SideView<'_>, settings: Settings<'_>) -> Judged {
    let mut judged = Judged::default();
    let describe = |ok: bool| if ok { "succeeded" } else { "failed" };
    judged.set(Dimension::Outcome, Some(outcome(primary.ok, candidate.ok)), || {
        format!("primary {}, candidate {}", describe(primary.ok), describe(candidate.ok))
    });
    if !(primary.ok && candidate.ok) {
        return judged;
    }
    let (p, c) = (primary.answer, candidate.answer);
    judged.set(Dimension::FinishReason, finish_reason(p, c), || {
        format!("{:?} vs {:?}", p.finish_reason.as_deref().unwrap_or("-"), c.finish_reason.as_deref().unwrap_or("-"))
    });
    judged.set(Dimension::ToolCalls, tool_calls(facts, p, c), || {
        format!("[{}] vs [{}]", names(p).join(", "), names(c).join(", "))
    });
    judged
        .set(Dimension::ToolArgumentsJson, tool_arguments_json(c), || "the candidate's arguments are not JSON".into());
    judged.set(Dimension::ToolArgumentsSchema, tool_arguments_schema(facts, p, c), || {
        "the candidate's arguments break the tool's schema".into()
    });
    judged.set(Dimension::JsonValid, json_valid(facts, p, c), || {
        format!("primary parses: {}, candidate parses: {}", parses(&p.content), parses(&c.content))
    });
    judged.set(Dimension::JsonSchema, json_schema(facts, p, c), || "an answer breaks the requested schema".into());
    let content = content(facts, p, c, settings.min_similarity);
    judged.similarity = content.map(|(_, similarity, _)| similarity);
    judged.length_ratio = content.map(|(_, _, ratio)| ratio);
    judged.set(Dimension::Content, content.map(|(agrees, _, _)| agrees), || {
        format!("similarity {:.2} under {:.2}", judged_similarity(content), settings.min_similarity)
    });
    judged.set(Dimension::Model, model(c, settings.expected_model), || {
        format!(
            "asked for {:?}, reported {:?}",
            settings.expected_model.unwrap_or("-"),
            c.model.as_deref().unwrap_or("-")
        )
    });
    judged.set(Dimension::PromptTokens, prompt_tokens(primary.prompt_tokens, candidate.prompt_tokens), || {
        format!("{:?} vs {:?}", primary.prompt_tokens, candidate.prompt_tokens)
    });
    judged.tool_f1 = tool_f1(p, c);
    judged
}

fn judged_similarity(content: Option<(bool, f64, f64)>) -> f64 {
    content.map_or(0.0, |(_, similarity, _)| similarity)
}

fn names(answer: &Answer) -> Vec<&str> {
    answer.tool_calls.iter().map(|call| call.name.as_str()).collect()
}

fn parses(text: &str) -> bool {
    serde_json::from_str::<Value>(text).is_ok()
}

/// Both succeeded or both failed.
pub fn outcome(primary_ok: bool, candidate_ok: bool) -> bool {
    primary_ok == candidate_ok
}

/// The same finish, when both report one and both or neither called tools (a different
/// finish because only one called a tool is the tool-call dimension's disagreement).
pub fn finish_reason(primary: &Answer, candidate: &Answer) -> Option<bool> {
    let (p, c) = (primary.finish_reason.as_ref()?, candidate.finish_reason.as_ref()?);
    if primary.tool_calls.is_empty() != candidate.tool_calls.is_empty() {
        return None;
    }
    Some(p == c)
}

/// The same functions in the same order, when tools were offered and either side called
/// one, and both answers are whole.
pub fn tool_calls(facts: &RequestFacts, primary: &Answer, candidate: &Answer) -> Option<bool> {
    let called = !primary.tool_calls.is_empty() || !candidate.tool_calls.is_empty();
    if facts.tools.is_empty() || !called || !(primary.complete && candidate.complete) {
        return None;
    }
    Some(names(primary) == names(candidate))
}

/// Every candidate call's arguments parse as JSON (when it made whole calls).
pub fn tool_arguments_json(candidate: &Answer) -> Option<bool> {
    let calls: Vec<_> = candidate.tool_calls.iter().filter(|call| !call.truncated).collect();
    if calls.is_empty() || !candidate.complete {
        return None;
    }
    Some(calls.iter().all(|call| parses(&call.arguments)))
}

/// Every candidate call that names the function the primary called at the same place,
/// whose arguments parse and whose function has a schema in the request, is valid against
/// it (JSON Schema, `jsonschema`). A call of another function is the tool-call dimension's
/// disagreement, not this one's; a schema that does not compile judges nothing.
pub fn tool_arguments_schema(facts: &RequestFacts, primary: &Answer, candidate: &Answer) -> Option<bool> {
    if !candidate.complete {
        return None;
    }
    let mut verdict = None;
    let same_function = candidate
        .tool_calls
        .iter()
        .zip(&primary.tool_calls)
        .filter(|(call, primary)| call.name == primary.name)
        .map(|(call, _)| call);
    for call in same_function.filter(|call| !call.truncated) {
        let (Some(schema), Ok(arguments)) =
            (facts.schema_of(&call.name), serde_json::from_str::<Value>(&call.arguments))
        else {
            continue;
        };
        let Some(valid) = valid_against(schema, &arguments) else { continue };
        verdict = Some(verdict.unwrap_or(true) && valid);
    }
    verdict
}

/// `None` when the schema itself does not compile.
pub fn valid_against(schema: &Value, instance: &Value) -> Option<bool> {
    jsonschema::validator_for(schema).ok().map(|validator| validator.is_valid(instance))
}

/// JSON mode or structured output: both answers parse (when both are whole and neither
/// answered with tool calls instead).
pub fn json_valid(facts: &RequestFacts, primary: &Answer, candidate: &Answer) -> Option<bool> {
    if facts.json == JsonAsk::None || !json_judgeable(primary, candidate) {
        return None;
    }
    Some(parses(&primary.content) && parses(&candidate.content))
}

/// Structured output: both answers are valid against the schema (when both parse).
pub fn json_schema(facts: &RequestFacts, primary: &Answer, candidate: &Answer) -> Option<bool> {
    let JsonAsk::Schema(schema) = &facts.json else { return None };
    if !json_judgeable(primary, candidate) {
        return None;
    }
    let (p, c) =
        (serde_json::from_str::<Value>(&primary.content).ok()?, serde_json::from_str(&candidate.content).ok()?);
    Some(valid_against(schema, &p)? && valid_against(schema, &c)?)
}

fn json_judgeable(primary: &Answer, candidate: &Answer) -> bool {
    primary.complete && candidate.complete && primary.tool_calls.is_empty() && candidate.tool_calls.is_empty()
}

/// Text answers (no JSON asked, no tool calls on either side, both whole): (agrees,
/// similarity, length ratio). Two empty texts say nothing; one empty is a disagreement.
pub fn content(facts: &RequestFacts, primary: &Answer, candidate: &Answer, threshold: f64) -> Option<(bool, f64, f64)> {
    if facts.json != JsonAsk::None || !json_judgeable(primary, candidate) {
        return None;
    }
    let (p, c) = (primary.content.as_str(), candidate.content.as_str());
    if p.is_empty() && c.is_empty() {
        return None;
    }
    let similarity = similarity(p, c);
    let ratio = c.chars().count() as f64 / p.chars().count().max(1) as f64;
    Some((similarity >= threshold, similarity, ratio))
}

/// Token-set Jaccard over lower-cased words: cheap, order-blind, and 1.0 for equal texts.
pub fn similarity(a: &str, b: &str) -> f64 {
    let words = |text: &str| -> HashSet<String> {
        text.split(|ch: char| !ch.is_alphanumeric()).filter(|word| !word.is_empty()).map(str::to_lowercase).collect()
    };
    let (a, b) = (words(a), words(b));
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    a.intersection(&b).count() as f64 / a.union(&b).count() as f64
}

/// The candidate reports the model it was asked for, or a dated snapshot of it
/// (`gpt-4.1` answered as `gpt-4.1-2025-04-14`, as OpenAI itself does).
pub fn model(candidate: &Answer, expected: Option<&str>) -> Option<bool> {
    let (reported, expected) = (candidate.model.as_deref()?, expected?);
    Some(reported == expected || reported.strip_prefix(expected).is_some_and(|rest| rest.starts_with('-')))
}

/// The candidate's count of prompt tokens within tolerance of the primary's; a candidate
/// that reports none where the primary did disagrees (its usage cannot be checked).
pub fn prompt_tokens(primary: Option<u64>, candidate: Option<u64>) -> Option<bool> {
    let primary = primary?;
    let Some(candidate) = candidate else { return Some(false) };
    let allowed = ((primary as f64 * PROMPT_TOKENS_TOLERANCE) as u64).max(PROMPT_TOKENS_SLACK);
    Some(candidate.abs_diff(primary) <= allowed)
}

/// F1 of the candidate's called names against the primary's (as multisets), when either
/// called something.
pub fn tool_f1(primary: &Answer, candidate: &Answer) -> Option<f64> {
    let (p, c) = (names(primary), names(candidate));
    if p.is_empty() && c.is_empty() {
        return None;
    }
    let mut unmatched = p.clone();
    let mut hits = 0usize;
    for name in &c {
        if let Some(at) = unmatched.iter().position(|other| other == name) {
            unmatched.swap_remove(at);
            hits += 1;
        }
    }
    if hits == 0 {
        return Some(0.0);
    }
    let (precision, recall) = (hits as f64 / c.len() as f64, hits as f64 / p.len() as f64);
    Some(2.0 * precision * recall / (precision + recall))
}

#[cfg(test)]
mod tests;
