use serde_json::json;

use super::*;
use crate::answer::ToolCall;

fn text(content: &str) -> Answer {
    Answer {
        model: Some("gpt-4.1".into()),
        finish_reason: Some("stop".into()),
        content: content.into(),
        complete: true,
        ..Answer::default()
    }
}

fn calls(names: &[(&str, &str)]) -> Answer {
    Answer {
        model: Some("gpt-4.1".into()),
        finish_reason: Some("tool_calls".into()),
        tool_calls: names
            .iter()
            .map(|(name, arguments)| ToolCall {
                name: (*name).into(),
                arguments: (*arguments).into(),
                truncated: false,
            })
            .collect(),
        complete: true,
        ..Answer::default()
    }
}

fn tools() -> RequestFacts {
    let schema = json!({"type":"object","properties":{"city":{"type":"string"}},"required":["city"]});
    RequestFacts { tools: vec![("weather".into(), Some(schema)), ("time".into(), None)], json: JsonAsk::None }
}

fn judged(facts: &RequestFacts, primary: &Answer, candidate: &Answer) -> Judged {
    let side = |answer| SideView { ok: true, answer, prompt_tokens: Some(100) };
    let settings = Settings { min_similarity: 0.5, expected_model: Some("gpt-4.1") };
    judge(facts, side(primary), side(candidate), settings)
}

fn disagreeing(judged: &Judged) -> Vec<Dimension> {
    judged.disagreements().collect()
}

#[test]
fn outcome_agrees_when_both_succeed_or_both_fail() {
    assert!(outcome(true, true) && outcome(false, false));
    assert!(!outcome(true, false) && !outcome(false, true));
}

#[test]
fn a_failed_side_is_judged_on_its_outcome_alone() {
    let answer = text("hello");
    let primary = SideView { ok: true, answer: &answer, prompt_tokens: Some(1) };
    let candidate = SideView { ok: false, answer: &Answer::default(), prompt_tokens: None };
    let judged =
        judge(&RequestFacts::default(), primary, candidate, Settings { min_similarity: 0.5, expected_model: None });
    assert_eq!(disagreeing(&judged), [Dimension::Outcome]);
    assert_eq!(judged.verdicts.iter().flatten().count(), 1);
}

#[test]
fn identical_answers_agree_on_every_dimension_that_applies() {
    let same = calls(&[("weather", r#"{"city":"Paris"}"#)]);
    let judged = judged(&tools(), &same, &same);
    assert!(judged.agrees(), "{judged:?}");
    assert_eq!(judged.tool_f1, Some(1.0));
}

#[test]
fn another_function_called_is_a_tool_call_disagreement_only() {
    let judged = judged(&tools(), &calls(&[("weather", r#"{"city":"Paris"}"#)]), &calls(&[("time", "{}")]));
    assert_eq!(disagreeing(&judged), [Dimension::ToolCalls]);
    assert_eq!(judged.tool_f1, Some(0.0));
}

#[test]
fn text_instead_of_a_tool_call_is_a_tool_call_disagreement_not_a_finish_one() {
    let judged = judged(&tools(), &calls(&[("weather", r#"{"city":"Paris"}"#)]), &text("It is sunny in Paris"));
    assert_eq!(disagreeing(&judged), [Dimension::ToolCalls]);
}

#[test]
fn arguments_that_do_not_parse_or_break_the_schema_are_each_their_own_dimension() {
    assert_eq!(tool_arguments_json(&calls(&[("weather", "{\"city\":")])), Some(false));
    assert_eq!(tool_arguments_json(&calls(&[("weather", "{}")])), Some(true));
    let primary = calls(&[("weather", r#"{"city":"Paris"}"#), ("weather", r#"{"city":"Rome"}"#)]);
    assert_eq!(tool_arguments_schema(&tools(), &primary, &calls(&[("weather", r#"{"city":3}"#)])), Some(false));
    assert_eq!(tool_arguments_schema(&tools(), &primary, &calls(&[("weather", r#"{"city":"Oslo"}"#)])), Some(true));
    // Unparsable arguments are the JSON dimension's, another function the tool calls'.
    assert_eq!(tool_arguments_schema(&tools(), &primary, &calls(&[("time", r#"{"x":1}"#), ("weather", "{")])), None);
    let time = calls(&[("time", r#"{"x":1}"#)]);
    assert_eq!(tool_arguments_schema(&tools(), &time, &time), None, "no schema offered for `time`");
}

#[test]
fn json_mode_needs_both_answers_to_parse_and_structured_output_both_valid() {
    let object = RequestFacts { json: JsonAsk::Object, ..RequestFacts::default() };
    assert_eq!(json_valid(&object, &text(r#"{"a":1}"#), &text(r#"{"a":2}"#)), Some(true));
    assert_eq!(json_valid(&object, &text(r#"{"a":1}"#), &text(r#"{"a":"#)), Some(false));
    assert_eq!(json_valid(&RequestFacts::default(), &text("{}"), &text("x")), None);
    let schema =
        RequestFacts { json: JsonAsk::Schema(json!({"type":"object","required":["a"]})), ..RequestFacts::default() };
    assert_eq!(json_schema(&schema, &text(r#"{"a":1}"#), &text(r#"{"a":2}"#)), Some(true));
    assert_eq!(json_schema(&schema, &text(r#"{"a":1}"#), &text(r#"{"b":2}"#)), Some(false));
    assert_eq!(json_schema(&schema, &text(r#"{"a":1}"#), &text("prose")), None);
    // JSON answers are not judged by text similarity.
    let judged = judged(&object, &text(r#"{"a":1}"#), &text("Sure! Here is prose."));
    assert_eq!(disagreeing(&judged), [Dimension::JsonValid]);
}

#[test]
fn content_agrees_at_or_above_the_threshold_and_reports_similarity_and_length() {
    assert_eq!(similarity("The cat sat", "the CAT sat"), 1.0);
    assert!((similarity("a b c d", "a b x y") - 2.0 / 6.0).abs() < 1e-9);
    let (agrees, similarity, ratio) = content(&RequestFacts::default(), &text("a b c d"), &text("a b c"), 0.5).unwrap();
    assert!(agrees && similarity == 0.75 && (ratio - 5.0 / 7.0).abs() < 1e-9);
    assert_eq!(content(&RequestFacts::default(), &text("a b c d"), &text("x y"), 0.5).map(|c| c.0), Some(false));
    assert_eq!(content(&RequestFacts::default(), &text(""), &text(""), 0.5), None);
    let mut cut = text("a b");
    cut.complete = false;
    assert_eq!(content(&RequestFacts::default(), &text("a b"), &cut, 0.5), None);
}

#[test]
fn the_model_must_be_the_one_asked_for_or_a_dated_snapshot_of_it() {
    let reported = |model: &str| Answer { model: Some(model.into()), ..Answer::default() };
    assert_eq!(model(&reported("gpt-4.1"), Some("gpt-4.1")), Some(true));
    assert_eq!(model(&reported("gpt-4.1-2025-04-14"), Some("gpt-4.1")), Some(true));
    assert_eq!(model(&reported("gpt-4.1-mini"), Some("gpt-4.1")), Some(true));
    assert_eq!(model(&reported("gpt-4o-mini"), Some("gpt-4.1")), Some(false));
    assert_eq!(model(&reported("gpt-4.1x"), Some("gpt-4.1")), Some(false));
    assert_eq!(model(&Answer::default(), Some("gpt-4.1")), None);
}

#[test]
fn prompt_tokens_are_honest_within_five_percent_or_two_tokens() {
    assert_eq!(prompt_tokens(Some(100), Some(105)), Some(true));
    assert_eq!(prompt_tokens(Some(100), Some(106)), Some(false));
    assert_eq!(prompt_tokens(Some(10), Some(12)), Some(true));
    assert_eq!(prompt_tokens(Some(100), Some(150)), Some(false));
    assert_eq!(prompt_tokens(Some(100), None), Some(false));
    assert_eq!(prompt_tokens(None, Some(100)), None);
}

#[test]
fn a_finish_reason_differs_only_when_both_report_one() {
    let mut cut = text("a");
    cut.finish_reason = Some("length".into());
    assert_eq!(finish_reason(&text("a"), &cut), Some(false));
    cut.finish_reason = None;
    assert_eq!(finish_reason(&text("a"), &cut), None);
}

#[test]
fn tool_f1_counts_names_as_a_multiset() {
    let f1 = tool_f1(&calls(&[("a", "{}"), ("b", "{}")]), &calls(&[("a", "{}"), ("c", "{}")])).unwrap();
    assert!((f1 - 0.5).abs() < 1e-9);
    assert_eq!(tool_f1(&text("x"), &text("y")), None);
}
