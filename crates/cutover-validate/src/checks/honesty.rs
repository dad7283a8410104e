//! Is the upstream what it says it is: the model it reports, the prompt tokens it
//! reports against a local count, and whether its streams are streamed.
//!
//! Model echo: a reported model passes when it is the model sent (after the alias map) or
//! a dated snapshot of it (`gpt-4.1` answered as `gpt-4.1-2025-04-14`).
//!
//! Real streaming: a long answer is streamed and the arrival time of every content chunk
//! recorded. It is *fake* when the whole answer took at least [`JUDGED_AFTER`] and all
//! of its content arrived within the last [`FAKE_SPREAD`] of that time (the generation
//! happened behind a buffer, then the chunks were dumped at once). An answer shorter
//! than [`JUDGED_AFTER`] is too fast to tell and passes with that said.

use std::time::Duration;

use cutover_model::Api;
use serde_json::json;

use super::{ask, stream_ok};
use crate::check::{Finding, Latency, Status};
use crate::exchange::Target;
use crate::tokens::{TOLERANCE_RATIO, TOLERANCE_TOKENS, chat_prompt_tokens, encoding_for, honest};

/// Streams shorter than this are not judged.
pub const JUDGED_AFTER: Duration = Duration::from_millis(200);
/// The share of the whole time within which a fake stream's content all arrives.
pub const FAKE_SPREAD: f64 = 0.10;

/// Whether `reported` names `sent` or one of its dated snapshots.
fn same_model(reported: &str, sent: &str) -> bool {
    reported == sent
        || reported
            .strip_prefix(sent)
            .is_some_and(|rest| rest.starts_with('-') && rest[1..].starts_with(|c: char| c.is_ascii_digit()))
}

/// The models reported by the chat and streaming checks' answers.
pub fn model_echo(target: &Target, reported: [Option<String>; 2]) -> Finding {
    let seen: Vec<String> = reported.into_iter().flatten().collect();
    let latency = Latency::default();
    if seen.is_empty() {
        return Finding::fail("no answer reported a model", latency);
    }
    match seen.iter().find(|model| !same_model(model, &target.sent_model)) {
        Some(other) => Finding::fail(format!("asked for {}, answered as {other}", target.sent_model), latency),
        None => Finding::pass(format!("answered as {}", seen[0]), latency),
    }
}

const USAGE_SYSTEM: &str = "You are a terse assistant. Answer in one short sentence.";
const USAGE_PROMPT: &str = "The quick brown fox jumps over the lazy dog near the quiet river bank, \
     while three small birds sing in the old oak tree and a farmer walks his horse home along the \
     dusty road before the evening rain begins to fall on the green hills. What is the fox doing?";

/// `prompt_tokens` of a fixed prompt against the local count (see `tokens`); answers the
/// reported count too, for the parity table.
pub async fn usage(target: &Target) -> (Finding, Option<u64>) {
    let mut body = ask(target, USAGE_PROMPT, json!({"max_tokens": 16}));
    body["messages"] = json!([{"role": "system", "content": USAGE_SYSTEM}, {"role": "user", "content": USAGE_PROMPT}]);
    let answer = match target.chat(&body).await {
        Ok(answer) => answer,
        Err(error) => return (Finding::broken(&error), None),
    };
    let latency = Latency::whole(&answer);
    if !answer.status.is_success() {
        return (Finding::refused(answer.status, &answer.body, latency), None);
    }
    let Some(reported) = answer.json().and_then(|completion| completion.pointer("/usage/prompt_tokens")?.as_u64())
    else {
        return (Finding::fail("no usage.prompt_tokens to check", latency), None);
    };
    if target.upstream.api == Api::Anthropic {
        // Claude's tokenizer is not published: a tiktoken count would judge it wrongly.
        let reason = format!("reported {reported} prompt tokens; no local tokenizer counts Claude models' tokens");
        return (Finding { status: Status::Unsupported, reason, latency }, Some(reported));
    }
    // The first count builds the encoding's vocabulary (hundreds of milliseconds of CPU):
    // never on an async worker, where the gateway's own validator runs this check.
    let model = target.sent_model.clone();
    let counted = tokio::task::spawn_blocking(move || {
        chat_prompt_tokens(&model, &[("system", USAGE_SYSTEM), ("user", USAGE_PROMPT)])
    })
    .await;
    let Ok(local) = counted else {
        return (Finding::fail("counting the prompt tokens locally panicked", latency), Some(reported));
    };
    let encoding = encoding_for(&target.sent_model).1;
    let difference = (reported as f64 - local as f64) / local as f64 * 100.0;
    let said = format!("reported {reported} prompt tokens, {local} counted locally ({encoding}, {difference:+.0}%)");
    let finding = if honest(reported, local) {
        Finding::pass(said, latency)
    } else {
        let tolerance = format!("tolerance {:.0}% + {TOLERANCE_TOKENS}", TOLERANCE_RATIO * 100.0);
        Finding::fail(format!("{said}: above the {tolerance}"), latency)
    };
    (finding, Some(reported))
}

/// A long answer's content chunks arrive spread over its generation (rule above).
pub async fn real_streaming(target: &Target) -> Finding {
    let prompt = "Write about 150 words on the history of the printing press.";
    let body = ask(target, prompt, json!({"max_tokens": 300, "stream": true}));
    let (streamed, assembled, latency) = match stream_ok(target, &body).await {
        Ok(answer) => answer,
        Err(finding) => return finding,
    };
    let (Some(&first), Some(&last)) = (assembled.content_times.first(), assembled.content_times.last()) else {
        return Finding::fail("no content chunks to time", latency);
    };
    let (total, spread) = (streamed.total, last - first);
    let chunks = assembled.content_times.len();
    let ms = |d: Duration| d.as_millis();
    if total < JUDGED_AFTER {
        return Finding::pass(format!("{chunks} chunks in {} ms: too fast to tell", ms(total)), latency);
    }
    if spread.as_secs_f64() < total.as_secs_f64() * FAKE_SPREAD {
        let reason = format!(
            "fake: {chunks} chunks all within {} ms after {} ms of silence ({} ms in all)",
            ms(spread),
            ms(first),
            ms(total)
        );
        return Finding::fail(reason, latency);
    }
    Finding::pass(format!("{chunks} chunks spread over {} of {} ms", ms(spread), ms(total)), latency)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dated_snapshots_are_the_same_model_and_others_are_not() {
        assert!(same_model("gpt-4.1-2025-04-14", "gpt-4.1"));
        assert!(same_model("gpt-4.1", "gpt-4.1"));
        assert!(!same_model("gpt-4.1-mini", "gpt-4.1"));
        assert!(!same_model("gpt-4o-mini", "gpt-4o"));
    }

    #[test]
    fn the_mock_estimate_of_the_usage_probe_is_within_the_tolerance() {
        // The mock reports a token per 4 characters of content; an honest upstream.
        let chars = USAGE_SYSTEM.chars().count() + USAGE_PROMPT.chars().count();
        let local = chat_prompt_tokens("gpt-4.1", &[("system", USAGE_SYSTEM), ("user", USAGE_PROMPT)]);
        assert!(honest(chars as u64 / 4, local), "{} vs {local}", chars / 4);
        assert!(!honest((chars as u64 / 4) * 3 / 2, local), "inflated by half must fail");
    }
}
