use serde_json::{Value, json};

use super::*;

fn messages(body: Value) -> Value {
    let translated = request(body.to_string().as_bytes()).unwrap();
    serde_json::from_slice(&translated.body).unwrap()
}

fn refused(body: Value) -> Untranslatable {
    request(body.to_string().as_bytes()).unwrap_err()
}

/// The smallest chat request, with `member` set to `value`.
fn with(member: &str, value: Value) -> Value {
    let mut body = json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "Hi"}]});
    body[member] = value;
    body
}

fn conversation(messages: Value) -> Value {
    with("messages", messages)
}

#[test]
fn a_tool_conversation_becomes_the_exact_messages_request() {
    let body = json!({
        "model": "claude-sonnet-4-5",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Use metric units."}]},
            {"role": "user", "content": "Weather in Hanoi and Hue?"},
            {"role": "assistant", "content": "Checking both.", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"Hanoi\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"Hue\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "31°C"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "29°C"}]},
            {"role": "user", "content": "Thanks."}
        ],
        "tools": [
            {"type": "function", "function": {"name": "get_weather", "description": "Current weather",
                "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}}},
            {"type": "function", "function": {"name": "now"}}
        ],
        "tool_choice": "required",
        "parallel_tool_calls": false,
        "stop": "END",
        "max_completion_tokens": 512,
        "temperature": 0.3,
        "top_p": 0.8,
        "user": "user-42",
        "stream": true,
        "stream_options": {"include_usage": true}
    });
    assert_eq!(
        messages(body),
        json!({
            "model": "claude-sonnet-4-5",
            "system": "You are terse.\n\nUse metric units.",
            "messages": [
                {"role": "user", "content": "Weather in Hanoi and Hue?"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Checking both."},
                    {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"location": "Hanoi"}},
                    {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {"location": "Hue"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "31°C"},
                    {"type": "tool_result", "tool_use_id": "call_2", "content": "29°C"}
                ]},
                {"role": "user", "content": "Thanks."}
            ],
            "tools": [
                {"name": "get_weather", "description": "Current weather",
                 "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}}},
                {"name": "now", "input_schema": {"type": "object", "properties": {}}}
            ],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
            "stop_sequences": ["END"],
            "max_tokens": 512,
            "temperature": 0.3,
            "top_p": 0.8,
            "metadata": {"user_id": "user-42"},
            "stream": true
        })
    );
}

#[test]
fn max_tokens_prefers_max_completion_tokens_and_defaults_when_absent() {
    assert_eq!(messages(with("max_tokens", json!(100)))["max_tokens"], 100);
    let mut both = with("max_tokens", json!(100));
    both["max_completion_tokens"] = json!(200);
    assert_eq!(messages(both)["max_tokens"], 200);
    assert_eq!(messages(with("max_tokens", Value::Null))["max_tokens"], DEFAULT_MAX_TOKENS);
}

#[test]
fn tool_choices_map_to_anthropics_and_parallel_false_disables_parallel_use() {
    let tools = json!([{"type": "function", "function": {"name": "f"}}]);
    let cases = [
        (json!("none"), Value::Null, json!({"type": "none"})),
        (json!("auto"), Value::Null, json!({"type": "auto"})),
        (json!("required"), Value::Null, json!({"type": "any"})),
        (json!({"type": "function", "function": {"name": "f"}}), Value::Null, json!({"type": "tool", "name": "f"})),
        (Value::Null, json!(false), json!({"type": "auto", "disable_parallel_tool_use": true})),
        (json!("none"), json!(false), json!({"type": "none"})),
        (json!("auto"), json!(true), json!({"type": "auto"})),
    ];
    for (choice, parallel, expected) in cases {
        let mut body = with("tools", tools.clone());
        body["tool_choice"] = choice.clone();
        body["parallel_tool_calls"] = parallel.clone();
        assert_eq!(messages(body)["tool_choice"], expected, "{choice} {parallel}");
    }
    assert!(messages(with("tools", tools)).get("tool_choice").is_none());
}

#[test]
fn image_urls_become_image_blocks_data_urls_as_base64() {
    let body = conversation(json!([{"role": "user", "content": [
        {"type": "text", "text": "Compare"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "auto"}}
    ]}]));
    assert_eq!(
        messages(body)["messages"][0]["content"],
        json!([
            {"type": "text", "text": "Compare"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}
        ])
    );
}

#[test]
fn the_client_decides_whether_its_stream_carries_usage() {
    let flags = |body: Value| {
        let translated = request(body.to_string().as_bytes()).unwrap();
        (translated.stream, translated.include_usage)
    };
    assert_eq!(flags(with("stream", json!(true))), (true, false));
    let mut asked = with("stream", json!(true));
    asked["stream_options"] = json!({"include_usage": true});
    assert_eq!(flags(asked), (true, true));
    assert_eq!(flags(with("stream", json!(false))), (false, false));
}

#[test]
fn members_at_their_defaults_or_null_pass() {
    let mut body = with("n", json!(1));
    let defaults = json!({
        "logprobs": false, "frequency_penalty": 0, "presence_penalty": 0.0, "response_format": {"type": "text"},
        "modalities": ["text"], "metadata": {}, "store": false, "service_tier": "auto", "seed": null,
        "logit_bias": {}, "prompt_cache_key": "k", "safety_identifier": "u", "user": "u"
    });
    body.as_object_mut().unwrap().extend(defaults.as_object().unwrap().clone());
    assert_eq!(
        messages(body),
        json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "Hi"}],
               "max_tokens": DEFAULT_MAX_TOKENS, "metadata": {"user_id": "u"}})
    );
}

#[test]
fn every_refusal_names_the_member_it_refuses() {
    let user_part = |part: Value| conversation(json!([{"role": "user", "content": [part]}]));
    let call = |arguments: &str| {
        conversation(json!([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": null, "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "f", "arguments": arguments}}
        ]}]))
    };
    let mut two_users = with("safety_identifier", json!("someone-else"));
    two_users["user"] = json!("me");
    let cases = [
        (with("n", json!(2)), "n"),
        (with("logprobs", json!(true)), "logprobs"),
        (with("top_logprobs", json!(3)), "top_logprobs"),
        (with("logit_bias", json!({"50256": -100})), "logit_bias"),
        (with("frequency_penalty", json!(0.5)), "frequency_penalty"),
        (with("presence_penalty", json!(-1)), "presence_penalty"),
        (with("seed", json!(7)), "seed"),
        (with("response_format", json!({"type": "json_object"})), "response_format"),
        (with("audio", json!({"voice": "alloy", "format": "wav"})), "audio"),
        (with("modalities", json!(["text", "audio"])), "modalities"),
        (with("prediction", json!({"type": "content", "content": "x"})), "prediction"),
        (with("functions", json!([{"name": "f"}])), "functions"),
        (with("function_call", json!("auto")), "function_call"),
        (with("reasoning_effort", json!("low")), "reasoning_effort"),
        (with("web_search_options", json!({})), "web_search_options"),
        (with("metadata", json!({"purpose": "eval"})), "metadata"),
        (with("store", json!(true)), "store"),
        (with("service_tier", json!("flex")), "service_tier"),
        (with("temperature", json!(1.5)), "temperature"),
        (with("frobnicate", json!(1)), "frobnicate"),
        (with("frobnicate", Value::Null), "frobnicate"),
        (with("stream", json!("true")), "stream"),
        (with("stream_options", json!({"include_usage": true, "chunk_size": 4})), "stream_options.chunk_size"),
        (with("stream_options", json!({"include_usage": "yes"})), "stream_options.include_usage"),
        (two_users, "safety_identifier"),
        (with("tools", json!([{"type": "custom", "custom": {"name": "x"}}])), "tools[0].type"),
        (
            with("tools", json!([{"type": "function", "function": {"name": "f", "strict": true}}])),
            "tools[0].function.strict",
        ),
        (with("tool_choice", json!({"type": "allowed_tools", "allowed_tools": {}})), "tool_choice.type"),
        (conversation(json!([{"role": "user", "content": "Hi", "name": "ann"}])), "messages[0].name"),
        (conversation(json!([{"role": "function", "name": "f", "content": "x"}])), "messages[0].name"),
        (conversation(json!([{"role": "function", "content": "x"}])), "messages[0].role"),
        (
            conversation(json!([{"role": "user", "content": "Hi"}, {"role": "system", "content": "x"}])),
            "messages[1].role",
        ),
        (
            user_part(json!({"type": "input_audio", "input_audio": {"data": "", "format": "wav"}})),
            "messages[0].content[0].type",
        ),
        (user_part(json!({"type": "file", "file": {"file_id": "f"}})), "messages[0].content[0].type"),
        (
            user_part(json!({"type": "image_url", "image_url": {"url": "ftp://x/y.png"}})),
            "messages[0].content[0].image_url.url",
        ),
        (
            user_part(json!({"type": "image_url", "image_url": {"url": "data:image/png,abc"}})),
            "messages[0].content[0].image_url.url",
        ),
        (
            user_part(json!({"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}})),
            "messages[0].content[0].image_url.detail",
        ),
        (
            conversation(json!([{"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]}])),
            "messages[0].content[0].type",
        ),
        (conversation(json!([{"role": "assistant", "content": null, "refusal": "no"}])), "messages[0].refusal"),
        (call("[1, 2]"), "messages[1].tool_calls[0].function.arguments"),
        (call("{\"a\":"), "messages[1].tool_calls[0].function.arguments"),
    ];
    for (body, field) in cases {
        assert_eq!(refused(body.clone()).field, field, "{body}");
    }
}

#[test]
fn a_body_that_is_not_an_object_is_refused_as_a_whole() {
    let refusal = request(b"\"hello\"").unwrap_err();
    assert_eq!((refusal.field.as_str(), refusal.reason.as_str()), ("", "the body is not a JSON object"));
}

#[test]
fn include_obfuscation_is_read_and_not_carried() {
    let mut body = with("stream", json!(true));
    body["stream_options"] = json!({"include_usage": true, "include_obfuscation": false});
    let translated = request(body.to_string().as_bytes()).unwrap();
    assert!(translated.include_usage);
    let upstream: Value = serde_json::from_slice(&translated.body).unwrap();
    assert!(upstream.get("stream_options").is_none());
}

#[test]
fn without_tools_neither_tools_nor_a_tool_choice_is_sent() {
    let mut body = with("tools", json!([]));
    body["tool_choice"] = json!("none");
    body["parallel_tool_calls"] = json!(false);
    let translated = messages(body);
    assert!(translated.get("tools").is_none() && translated.get("tool_choice").is_none(), "{translated}");
    let mut bad_choice = with("tools", json!([]));
    bad_choice["tool_choice"] = json!("sometimes");
    assert_eq!(refused(bad_choice).field, "tool_choice");
}

#[test]
fn a_conversation_ending_with_the_assistants_message_is_refused_as_a_prefill() {
    let prefill =
        conversation(json!([{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "It is"}]));
    assert_eq!(refused(prefill).field, "messages[1].role");
}

#[test]
fn turns_that_say_nothing_are_refused() {
    let before_user = |assistant: Value| conversation(json!([assistant, {"role": "user", "content": "Go on."}]));
    let cases = [
        conversation(json!([{"role": "user", "content": []}])),
        before_user(json!({"role": "assistant", "content": null})),
        before_user(json!({"role": "assistant", "content": ""})),
        before_user(json!({"role": "assistant", "content": [], "tool_calls": []})),
    ];
    for body in cases {
        assert_eq!(refused(body.clone()).field, "messages[0].content", "{body}");
    }
}

#[test]
fn empty_system_messages_make_no_system_prompt() {
    let body = conversation(json!([
        {"role": "system", "content": ""},
        {"role": "developer", "content": [{"type": "text", "text": ""}, {"type": "text", "text": "Be brief."}]},
        {"role": "user", "content": "Hi"}
    ]));
    assert_eq!(messages(body)["system"], "Be brief.");
    let empty = conversation(json!([{"role": "system", "content": ""}, {"role": "user", "content": "Hi"}]));
    assert!(messages(empty).get("system").is_none());
}

#[test]
fn a_choice_that_forces_a_call_among_no_tools_is_refused_and_any_other_left_out() {
    let forcing = [json!("required"), json!({"type": "function", "function": {"name": "get_weather"}})];
    for choice in forcing {
        assert_eq!(refused(with("tool_choice", choice)).field, "tool_choice");
    }
    let upstream = messages(with("tool_choice", json!("auto")));
    assert!(upstream.get("tool_choice").is_none() && upstream.get("tools").is_none(), "{upstream}");
}
