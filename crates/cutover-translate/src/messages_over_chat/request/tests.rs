use serde_json::{Value, json};

use super::*;

fn chat(body: Value) -> Value {
    let translated = request(body.to_string().as_bytes()).unwrap();
    serde_json::from_slice(&translated.body).unwrap()
}

fn refused(body: Value) -> Untranslatable {
    request(body.to_string().as_bytes()).unwrap_err()
}

/// The smallest Messages request, with `member` set to `value`.
fn with(member: &str, value: Value) -> Value {
    let mut body = json!({"model": "gpt-4.1", "max_tokens": 100, "messages": [{"role": "user", "content": "Hi"}]});
    body[member] = value;
    body
}

/// The smallest Messages request, its one user message holding `content`.
fn user_says(content: Value) -> Value {
    with("messages", json!([{"role": "user", "content": content}]))
}

#[test]
fn a_tool_use_conversation_becomes_the_exact_chat_request() {
    let body = json!({
        "model": "gpt-4.1",
        "max_tokens": 1024,
        "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": "Weather in Hanoi?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"location": "Hanoi"}}
            ]},
            {"role": "user", "content": [
                {"type": "text", "text": "Also, be quick."},
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "31°C, humid"}
            ]}
        ],
        "tools": [{
            "name": "get_weather", "description": "Current weather",
            "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}
        }],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
        "stop_sequences": ["END"],
        "temperature": 0.2,
        "top_p": 0.9,
        "metadata": {"user_id": "user-42"}
    });
    assert_eq!(
        chat(body),
        json!({
            "model": "gpt-4.1",
            "max_completion_tokens": 1024,
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "Weather in Hanoi?"},
                {"role": "assistant", "content": "Let me look.", "tool_calls": [
                    {"id": "toolu_1", "type": "function",
                     "function": {"name": "get_weather", "arguments": "{\"location\":\"Hanoi\"}"}}
                ]},
                {"role": "tool", "tool_call_id": "toolu_1", "content": "31°C, humid"},
                {"role": "user", "content": "Also, be quick."}
            ],
            "tools": [{"type": "function", "function": {
                "name": "get_weather", "description": "Current weather",
                "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}
            }}],
            "tool_choice": "auto",
            "parallel_tool_calls": false,
            "stop": ["END"],
            "temperature": 0.2,
            "top_p": 0.9,
            "user": "user-42"
        })
    );
}

#[test]
fn tool_results_come_first_in_order_and_several_texts_stay_separate_parts() {
    let body = user_says(json!([
        {"type": "text", "text": "Here:"},
        {"type": "tool_result", "tool_use_id": "a", "content": [{"type": "text", "text": "one"}]},
        {"type": "tool_result", "tool_use_id": "b", "content": [{"type": "text", "text": "two"}, {"type": "text", "text": "three"}]},
        {"type": "tool_result", "tool_use_id": "c"},
        {"type": "text", "text": "Go on."}
    ]));
    assert_eq!(
        chat(body)["messages"],
        json!([
            {"role": "tool", "tool_call_id": "a", "content": "one"},
            {"role": "tool", "tool_call_id": "b", "content": [{"type": "text", "text": "two"}, {"type": "text", "text": "three"}]},
            {"role": "tool", "tool_call_id": "c", "content": ""},
            {"role": "user", "content": [{"type": "text", "text": "Here:"}, {"type": "text", "text": "Go on."}]}
        ])
    );
}

#[test]
fn an_assistant_turn_of_tool_calls_only_has_null_content() {
    let body = with(
        "messages",
        json!([
            {"role": "assistant", "content": [
                {"type": "text", "text": ""},
                {"type": "tool_use", "id": "t", "name": "now", "input": {}}
            ]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "noon"}]}
        ]),
    );
    assert_eq!(
        chat(body)["messages"][0],
        json!({"role": "assistant", "content": null, "tool_calls": [
            {"id": "t", "type": "function", "function": {"name": "now", "arguments": "{}"}}
        ]})
    );
}

#[test]
fn images_become_image_url_parts_base64_as_a_data_url() {
    let body = user_says(json!([
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {"type": "text", "text": "What differs?"}
    ]));
    assert_eq!(
        chat(body)["messages"][0]["content"],
        json!([
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
            {"type": "text", "text": "What differs?"}
        ])
    );
}

#[test]
fn tool_choices_map_to_their_chat_equivalents() {
    let cases = [
        (json!({"type": "auto"}), json!("auto")),
        (json!({"type": "any"}), json!("required")),
        (json!({"type": "none"}), json!("none")),
        (
            json!({"type": "tool", "name": "get_weather"}),
            json!({"type": "function", "function": {"name": "get_weather"}}),
        ),
    ];
    for (choice, expected) in cases {
        let mut body = with("tool_choice", choice.clone());
        body["tools"] = json!([{"name": "get_weather", "input_schema": {"type": "object"}}]);
        let translated = chat(body);
        assert_eq!(translated["tool_choice"], expected, "{choice}");
        assert!(translated.get("parallel_tool_calls").is_none(), "{choice}");
    }
}

#[test]
fn a_stream_asks_the_upstream_for_its_usage_chunk() {
    let translated = request(with("stream", json!(true)).to_string().as_bytes()).unwrap();
    assert!(translated.stream && translated.include_usage);
    let body: Value = serde_json::from_slice(&translated.body).unwrap();
    assert_eq!((&body["stream"], &body["stream_options"]), (&json!(true), &json!({"include_usage": true})));

    let whole = request(with("stream", json!(false)).to_string().as_bytes()).unwrap();
    assert!(!whole.stream && whole.include_usage);
    let body: Value = serde_json::from_slice(&whole.body).unwrap();
    assert!(body.get("stream").is_none() && body.get("stream_options").is_none());
}

#[test]
fn cache_control_is_dropped_everywhere_and_defaults_pass() {
    let mut body = user_says(json!([{"type": "text", "text": "Hi", "cache_control": {"type": "ephemeral"}}]));
    body["cache_control"] = json!({"type": "ephemeral"});
    body["tools"] = json!([{"name": "f", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}}]);
    body["thinking"] = json!({"type": "disabled"});
    body["service_tier"] = json!("auto");
    body["top_k"] = Value::Null;
    assert_eq!(
        chat(body),
        json!({"model": "gpt-4.1", "max_completion_tokens": 100, "messages": [{"role": "user", "content": "Hi"}],
               "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]})
    );
}

#[test]
fn every_refusal_names_the_member_it_refuses() {
    let text = |extra: Value| {
        let mut block = json!({"type": "text", "text": "Hi"});
        block.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        block
    };
    let cases = [
        (with("thinking", json!({"type": "enabled", "budget_tokens": 2000})), "thinking"),
        (with("top_k", json!(40)), "top_k"),
        (with("mcp_servers", json!([{"type": "url", "url": "https://mcp.example"}])), "mcp_servers"),
        (with("container", json!("container_1")), "container"),
        (with("service_tier", json!("standard_only")), "service_tier"),
        (with("n", json!(2)), "n"),
        (with("frobnicate", json!(true)), "frobnicate"),
        (with("frobnicate", Value::Null), "frobnicate"),
        (with("stream", json!("yes")), "stream"),
        (with("metadata", json!({"user_id": "u", "tier": "gold"})), "metadata.tier"),
        (with("tools", json!([{"type": "web_search_20250305", "name": "web_search"}])), "tools[0].type"),
        (with("tool_choice", json!({"type": "sometimes"})), "tool_choice.type"),
        (with("system", json!([{"type": "image", "source": {}}])), "system[0].type"),
        (with("messages", json!([{"role": "system", "content": "x"}])), "messages[0].role"),
        (
            user_says(json!([text(json!({"citations": [{"type": "char_location"}]}))])),
            "messages[0].content[0].citations",
        ),
        (user_says(json!([{"type": "document", "source": {}}])), "messages[0].content[0].type"),
        (user_says(json!([{"type": "search_result"}])), "messages[0].content[0].type"),
        (
            user_says(json!([{"type": "tool_result", "tool_use_id": "t", "is_error": true}])),
            "messages[0].content[0].is_error",
        ),
        (
            user_says(
                json!([{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "image", "source": {}}]}]),
            ),
            "messages[0].content[0].content[0].type",
        ),
        (
            user_says(json!([{"type": "image", "source": {"type": "file", "file_id": "f"}}])),
            "messages[0].content[0].source.type",
        ),
        (
            with(
                "messages",
                json!([{"role": "assistant", "content": [{"type": "thinking", "thinking": "…", "signature": "s"}]}]),
            ),
            "messages[0].content[0].type",
        ),
        (
            with("messages", json!([{"role": "assistant", "content": [{"type": "redacted_thinking", "data": "…"}]}])),
            "messages[0].content[0].type",
        ),
        (
            with("messages", json!([{"role": "assistant", "content": [{"type": "server_tool_use"}]}])),
            "messages[0].content[0].type",
        ),
    ];
    for (body, field) in cases {
        assert_eq!(refused(body.clone()).field, field, "{body}");
    }
}

#[test]
fn a_body_that_is_not_an_object_is_refused_as_a_whole() {
    for body in [&b"[1]"[..], b"not json", b""] {
        let refusal = request(body).unwrap_err();
        assert_eq!((refusal.field.as_str(), refusal.reason.as_str()), ("", "the body is not a JSON object"));
    }
}

#[test]
fn max_tokens_is_sent_as_max_completion_tokens() {
    let translated = chat(with("max_tokens", json!(256)));
    assert_eq!(translated["max_completion_tokens"], 256);
    assert!(translated.get("max_tokens").is_none(), "deprecated, and refused by o-series and GPT-5 models");
}

#[test]
fn without_tools_neither_tools_nor_a_tool_choice_is_sent() {
    let choice = json!({"type": "auto", "disable_parallel_tool_use": true});
    let mut empty = with("tools", json!([]));
    empty["tool_choice"] = choice.clone();
    let mut absent = with("tool_choice", choice);
    absent["tools"] = Value::Null;
    for body in [empty, absent] {
        let translated = chat(body.clone());
        for member in ["tools", "tool_choice", "parallel_tool_calls"] {
            assert!(translated.get(member).is_none(), "{member} in {translated}");
        }
    }
    let mut bad_choice = with("tools", json!([]));
    bad_choice["tool_choice"] = json!({"type": "sometimes"});
    assert_eq!(refused(bad_choice).field, "tool_choice.type");
}

#[test]
fn a_conversation_ending_with_the_assistants_message_is_refused_as_a_prefill() {
    let prefill = with(
        "messages",
        json!([{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "The colour is"}]),
    );
    assert_eq!(refused(prefill).field, "messages[1].role");
}

#[test]
fn turns_that_say_nothing_are_refused() {
    let before_user = |content: Value| {
        with("messages", json!([{"role": "assistant", "content": content}, {"role": "user", "content": "Go on."}]))
    };
    let cases = [
        user_says(json!([])),
        before_user(json!([])),
        before_user(json!([{"type": "text", "text": ""}])),
        before_user(json!("")),
    ];
    for body in cases {
        assert_eq!(refused(body.clone()).field, "messages[0].content", "{body}");
    }
}

#[test]
fn an_empty_system_prompt_sends_no_system_message() {
    for system in [json!(""), json!([]), json!([{"type": "text", "text": ""}])] {
        assert_eq!(
            chat(with("system", system.clone()))["messages"],
            json!([{"role": "user", "content": "Hi"}]),
            "{system}"
        );
    }
}

#[test]
fn a_choice_that_forces_a_call_among_no_tools_is_refused_and_any_other_left_out() {
    for choice in [json!({"type": "any"}), json!({"type": "tool", "name": "get_weather"})] {
        assert_eq!(refused(with("tool_choice", choice)).field, "tool_choice");
    }
    let chat = chat(with("tool_choice", json!({"type": "auto"})));
    assert!(chat.get("tool_choice").is_none() && chat.get("tools").is_none(), "{chat}");
}
