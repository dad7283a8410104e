//! Image input (a real PNG made in memory) and JSON output: `json_object` content that
//! parses, `json_schema` (strict) content valid against the schema.

use serde_json::{Value, json};

use super::{ask, content};
use crate::check::{Finding, Latency, one_line};
use crate::exchange::Target;
use crate::png::solid_png_data_url;

/// An image part of one solid red is answered; whether the answer says "red" is the
/// quality note (the second finding).
pub async fn vision(target: &Target) -> (Finding, Finding) {
    let parts = json!([
        {"type": "text", "text": "What single colour fills this image? Answer with one word."},
        {"type": "image_url", "image_url": {"url": solid_png_data_url([255, 0, 0], 16), "detail": "low"}},
    ]);
    let body = json!({"model": target.sent_model, "max_tokens": 10, "messages": [{"role": "user", "content": parts}]});
    let answer = match target.chat(&body).await {
        Ok(answer) => answer,
        Err(error) => return (Finding::broken(&error), Finding::broken(&error)),
    };
    let latency = Latency::whole(&answer);
    if !answer.status.is_success() {
        let refused = Finding::refused(answer.status, &answer.body, latency);
        return (refused.clone(), refused);
    }
    let text = answer.json().and_then(|completion| content(&completion).map(str::to_owned)).unwrap_or_default();
    if text.trim().is_empty() {
        let empty = Finding::fail("accepted, but the answer has no content", latency);
        return (empty.clone(), empty);
    }
    let said = one_line(&text, 40);
    let colour = if text.to_lowercase().contains("red") {
        Finding::pass(format!("named the colour: {said}"), latency)
    } else {
        Finding::fail(format!("did not name red: {said}"), latency)
    };
    (Finding::pass("a 16×16 PNG data URL accepted and answered", latency), colour)
}

/// `response_format: json_object` gets content that parses as a JSON object.
pub async fn json_mode(target: &Target) -> Finding {
    let prompt = "Reply in JSON: an object with the key \"colour\" set to your favourite colour.";
    let body = ask(target, prompt, json!({"response_format": {"type": "json_object"}, "max_tokens": 60}));
    json_answer(target, &body, None).await
}

fn city_schema() -> Value {
    json!({"type": "object", "additionalProperties": false, "required": ["city", "country", "population"],
           "properties": {"city": {"type": "string"}, "country": {"type": "string"}, "population": {"type": "integer"}}})
}

/// `response_format: json_schema` (strict) gets content valid against the schema.
pub async fn json_schema(target: &Target) -> Finding {
    let format =
        json!({"type": "json_schema", "json_schema": {"name": "city", "strict": true, "schema": city_schema()}});
    let body = ask(target, "Describe Hanoi.", json!({"response_format": format, "max_tokens": 60}));
    json_answer(target, &body, Some(&city_schema())).await
}

async fn json_answer(target: &Target, body: &Value, schema: Option<&Value>) -> Finding {
    let answer = match target.chat(body).await {
        Ok(answer) => answer,
        Err(error) => return Finding::broken(&error),
    };
    let latency = Latency::whole(&answer);
    if !answer.status.is_success() {
        return Finding::refused(answer.status, &answer.body, latency);
    }
    let text = answer.json().and_then(|completion| content(&completion).map(str::to_owned)).unwrap_or_default();
    let parsed: Value = match serde_json::from_str(&text) {
        Ok(parsed) => parsed,
        Err(_) => return Finding::fail(format!("content is not JSON: {}", one_line(&text, 60)), latency),
    };
    if !parsed.is_object() {
        return Finding::fail(format!("content is JSON but not an object: {}", one_line(&text, 60)), latency);
    }
    match schema.map(|schema| jsonschema::validate(schema, &parsed).map_err(|error| error.to_string())) {
        Some(Err(error)) => Finding::fail(format!("content breaks the schema: {error}"), latency),
        Some(Ok(())) => Finding::pass("content valid against the schema", latency),
        None => Finding::pass("content parses as a JSON object", latency),
    }
}
