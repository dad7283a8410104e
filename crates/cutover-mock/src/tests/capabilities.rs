//! OpenAI's chat capabilities as the mock answers them without quirks: tool choice and
//! parallel calls, schema-valid arguments, structured output, images, `stop`, `n`,
//! refused parameters and unknown models.

use http::StatusCode;
use serde_json::json;

use super::*;

/// Two offered functions; `get_weather` takes a required city and an enum unit.
fn two_tools() -> Value {
    let weather = json!({"type": "object", "required": ["city", "unit"], "properties": {
        "city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer"}}});
    let time = json!({"type": "object", "properties": {"zone": {"type": "string"}}});
    json!([{"type": "function", "function": {"name": "get_weather", "parameters": weather}},
           {"type": "function", "function": {"name": "get_time", "parameters": time}}])
}

fn asking(prompt: &str, stream: bool) -> Value {
    json!({"model": "gpt-4.1", "stream": stream, "messages": [{"role": "user", "content": prompt}]})
}

fn names(reply: &Reply) -> Vec<String> {
    let calls = reply.at("/choices/0/message/tool_calls");
    calls.as_array().unwrap().iter().map(|c| c["function"]["name"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn forced_tool_choice_calls_that_function_with_its_required_arguments() {
    let mock = mock(MockConfig::default()).await;
    let mut request = asking("Weather and time in Hanoi: get_weather, get_time", false);
    request["tools"] = two_tools();
    request["tool_choice"] = json!({"type": "function", "function": {"name": "get_time"}});
    let reply = chat(&mock, request.clone()).await;
    assert_eq!(names(&reply), ["get_time"]);
    request["tool_choice"] = json!({"type": "function", "function": {"name": "get_weather"}});
    let reply = chat(&mock, request).await;
    let arguments = reply.at("/choices/0/message/tool_calls/0/function/arguments");
    let arguments: Value = serde_json::from_str(arguments.as_str().unwrap()).unwrap();
    assert_eq!(arguments, json!({"city": "simulated", "unit": "celsius"}), "required only, first enum value");
}

#[tokio::test]
async fn auto_calls_every_function_the_prompt_names_unless_parallel_calls_are_off() {
    let mock = mock(MockConfig::default()).await;
    let mut request = asking("Use get_time and get_weather.", false);
    request["tools"] = two_tools();
    for choice in [json!("auto"), json!("required"), Value::Null] {
        request["tool_choice"] = choice;
        assert_eq!(names(&chat(&mock, request.clone()).await), ["get_weather", "get_time"], "in the order offered");
    }
    request["parallel_tool_calls"] = json!(false);
    assert_eq!(names(&chat(&mock, request.clone()).await), ["get_weather"]);
    let mut unnamed = asking("What now?", false);
    unnamed["tools"] = two_tools();
    assert_eq!(names(&chat(&mock, unnamed).await), ["get_weather"], "the first offered when none is named");
    request["tool_choice"] = json!("none");
    let reply = chat(&mock, request).await;
    assert_eq!(reply.at("/choices/0/finish_reason"), "stop");
    assert!(reply.at("/choices/0/message/content").is_string());
}

#[tokio::test]
async fn parallel_calls_stream_as_deltas_keyed_by_index() {
    let mock = mock(MockConfig::default()).await;
    let mut request = asking("get_weather then get_time", true);
    request["tools"] = two_tools();
    let reply = chat(&mock, request).await;
    let chunks = reply.chunks();
    assert_eq!(chunks[0]["choices"][0]["delta"], json!({"role": "assistant", "content": null}));
    let deltas: Vec<&Value> = chunks.iter().filter_map(|c| c.pointer("/choices/0/delta/tool_calls/0")).collect();
    for k in [0, 1] {
        let of_call: Vec<&&Value> = deltas.iter().filter(|d| d["index"] == k).collect();
        assert!(of_call[0]["id"].is_string() && of_call[0]["type"] == "function");
        assert_eq!(of_call[0]["function"]["arguments"], "", "the head carries no arguments");
        assert!(of_call[1..].iter().all(|d| d.get("id").is_none() && d["function"].get("name").is_none()));
        let arguments: String = of_call.iter().map(|d| d["function"]["arguments"].as_str().unwrap()).collect();
        serde_json::from_str::<Value>(&arguments).unwrap();
    }
    assert_eq!(deltas[0]["function"]["name"], "get_weather");
    assert_eq!(chunks.last().unwrap()["choices"][0]["finish_reason"], "tool_calls");
}

#[tokio::test]
async fn json_schema_output_is_a_minimal_valid_instance() {
    let mock = mock(MockConfig::default()).await;
    let schema = json!({"type": "object", "additionalProperties": false, "required": ["name", "tags", "kind", "size"],
        "properties": {"name": {"type": "string", "minLength": 3}, "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}, "minItems": 2},
                       "kind": {"anyOf": [{"type": "integer", "minimum": 5}, {"type": "null"}]},
                       "size": {"type": ["number", "null"]}},
        "$defs": {"tag": {"type": "object", "required": ["label"], "properties": {"label": {"const": "t"}}}}});
    let mut request = hello(false);
    request["response_format"] =
        json!({"type": "json_schema", "json_schema": {"name": "x", "strict": true, "schema": schema}});
    let content = chat(&mock, request).await.at("/choices/0/message/content");
    let parsed: Value = serde_json::from_str(content.as_str().unwrap()).unwrap();
    assert_eq!(parsed, json!({"name": "xxx", "tags": [{"label": "t"}, {"label": "t"}], "kind": 5, "size": 0.0}));
}

/// A PNG signature and the start of its header chunk, base64.
const PNG: &str = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB";

fn with_image(url: &str) -> Value {
    let parts = json!([{"type": "text", "text": "What colour?"}, {"type": "image_url", "image_url": {"url": url}}]);
    json!({"model": "gpt-4o", "messages": [{"role": "user", "content": parts}]})
}

#[tokio::test]
async fn image_parts_are_answered_when_they_are_images_and_refused_otherwise() {
    let mock = mock(MockConfig::default()).await;
    assert_eq!(chat(&mock, with_image(PNG)).await.status, StatusCode::OK);
    let refused = chat(&mock, with_image("data:image/png;base64,aGVsbG8=")).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        (refused.at("/error/code"), refused.at("/error/param")),
        (json!("invalid_image_url"), json!("messages"))
    );
}

#[tokio::test]
async fn stop_cuts_the_answer_before_the_sequence() {
    let mock = mock(MockConfig::default().with_name("primary")).await;
    let mut request = hello(false);
    request["stop"] = json!(["nothing", "mock"]);
    let reply = chat(&mock, request.clone()).await;
    assert_eq!(reply.at("/choices/0/message/content"), "Simulated answer from");
    assert_eq!(reply.at("/choices/0/finish_reason"), "stop");
    assert_eq!(reply.at("/usage/completion_tokens"), 3);
    request["max_tokens"] = json!(2);
    assert_eq!(chat(&mock, request).await.at("/choices/0/finish_reason"), "length", "the cap comes first");
}

#[tokio::test]
async fn n_answers_that_many_choices_whole_and_streamed() {
    let mock = mock(MockConfig::default().with_answer_tokens(3)).await;
    let mut request = hello(false);
    request.as_object_mut().unwrap().extend([
        ("n".into(), json!(3)),
        ("seed".into(), json!(7)),
        ("temperature".into(), json!(0.2)),
    ]);
    let reply = chat(&mock, request.clone()).await;
    let indexes: Vec<Value> = reply.at("/choices").as_array().unwrap().iter().map(|c| c["index"].clone()).collect();
    assert_eq!(indexes, [json!(0), json!(1), json!(2)]);
    assert_eq!(reply.at("/usage/completion_tokens"), 9);
    request["stream"] = json!(true);
    let reply = chat(&mock, request).await;
    for index in 0..3 {
        let text: String = reply
            .chunks()
            .iter()
            .filter_map(|c| {
                c["choices"].as_array()?.first().filter(|ch| ch["index"] == index)?["delta"]["content"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect();
        assert_eq!(text, "Simulated answer from");
    }
}

#[tokio::test]
async fn invalid_parameters_and_unknown_models_are_refused_in_openai_shape() {
    let mock = mock(MockConfig::default()).await;
    for (param, value) in
        [("temperature", json!(3)), ("n", json!(0)), ("max_tokens", json!(0)), ("tool_choice", json!("required"))]
    {
        let mut request = hello(false);
        request[param] = value;
        let reply = chat(&mock, request).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{param}");
        assert_eq!((reply.at("/error/type"), reply.at("/error/param")), (json!("invalid_request_error"), json!(param)));
    }
    let wrong_type = chat(&mock, json!({"model": "gpt-4.1", "messages": "hello"})).await;
    assert_eq!(wrong_type.status, StatusCode::BAD_REQUEST);
    let mut unknown = hello(false);
    unknown["model"] = json!(format!("{}model", crate::UNKNOWN_MODEL_PREFIX));
    let reply = chat(&mock, unknown).await;
    assert_eq!((reply.status, reply.at("/error/code")), (StatusCode::NOT_FOUND, json!("model_not_found")));
    let mut aliased = hello(false);
    aliased["model"] = json!("relay-gpt-4.1");
    assert_eq!(chat(&mock, aliased).await.status, StatusCode::OK, "unlisted names are still answered");
}
