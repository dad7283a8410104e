#!/usr/bin/env python3
"""The official `anthropic` Python SDK against a running cutover gateway, used as Claude users use it.

Run by `tests/e2e/anthropic.rs`, which starts the gateway (routes below) and passes:

  CUTOVER_BASE_URL   the gateway's address, e.g. http://127.0.0.1:PORT (the SDK adds /v1/messages)
  CUTOVER_KEY        a valid gateway key (the SDK sends it as `x-api-key`)

The gateway it expects, every upstream a `cutover mock --api anthropic`:
  route `claude` (model claude-sonnet-4-5) between `claude-a` and `claude-b` at weight 50, sticky
    on `x-user-id`;
  route `flaky` (model flaky-*) whose candidate, at weight 100, starts every stream with an
    `event: error` (overloaded) and whose primary is `claude-a`: the gateway falls back;
  route `limited` (model limited-*) to a mock answering 429, `overloaded` (model overloaded-*)
    to one answering 529, `cutter` (model cut-*) to one cutting its streams after a few events;
  no route for other models.

Prints one JSON report on stdout:
  {"anthropic_version": "...", "checks": [{"name": "...", "ok": true|false, "detail": "..."}]}
Exit status: 0 when every check passed, 1 when one failed, 2 when the SDK is missing.
Run one check by name with `anthropic_client.py NAME...`.
"""

import json
import os
import sys
import traceback

try:
    import anthropic
except ImportError as error:
    print(json.dumps({"error": f"the `anthropic` package is missing ({error}); install it with `pip install anthropic`"}))
    sys.exit(2)

BASE_URL = os.environ["CUTOVER_BASE_URL"]
KEY = os.environ["CUTOVER_KEY"]
MODEL = "claude-sonnet-4-5"
HELLO = [{"role": "user", "content": "Say hello in five words."}]
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {
        "type": "object",
        "properties": {"location": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["location"],
    },
}
FORCE_WEATHER = {"type": "tool", "name": "get_weather"}

CHECKS = []


def check(function):
    CHECKS.append(function)
    return function


def client(key=KEY, user="sdk-user", retries=2):
    # SDK defaults otherwise: that is what users run.
    return anthropic.Anthropic(
        base_url=BASE_URL, api_key=key, timeout=30.0, max_retries=retries, default_headers={"x-user-id": user}
    )


def expect(condition, detail):
    if not condition:
        raise AssertionError(detail)


def raises(error_class, call):
    try:
        call()
    except error_class as error:
        return error
    except Exception as error:  # noqa: BLE001 - the wrong class is the failure reported
        raise AssertionError(f"expected {error_class.__name__}, got {type(error).__name__}: {error}") from error
    raise AssertionError(f"expected {error_class.__name__}, got an answer")


@check
def messages_create_answers_text_with_usage():
    raw = client().messages.with_raw_response.create(model=MODEL, max_tokens=256, messages=HELLO)
    message = raw.parse()
    expect(message.type == "message" and message.role == "assistant", f"not a message: {message}")
    expect(message.content and message.content[0].type == "text" and message.content[0].text, f"no text: {message}")
    expect(message.stop_reason == "end_turn", f"stop_reason {message.stop_reason}")
    expect(message.usage.input_tokens > 0 and message.usage.output_tokens > 0, f"usage {message.usage}")
    expect(raw.headers.get("x-cutover-route") == "claude", f"route header {raw.headers.get('x-cutover-route')}")
    expect(raw.headers.get("x-cutover-upstream") in ("claude-a", "claude-b"), "upstream header")
    return f"{message.content[0].text!r} from {raw.headers.get('x-cutover-upstream')}"


@check
def messages_stream_concatenates_to_its_final_message():
    with client().messages.stream(model=MODEL, max_tokens=256, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    expect(text, "the stream carried no text")
    expect(final.content[0].text == text, f"final {final.content[0].text!r} != streamed {text!r}")
    expect(final.stop_reason == "end_turn", f"stop_reason {final.stop_reason}")
    expect(final.usage.output_tokens > 0 and final.usage.input_tokens > 0, f"usage {final.usage}")
    return f"{len(text)} characters, usage {final.usage.input_tokens}/{final.usage.output_tokens}"


@check
def tool_use_forced():
    message = client().messages.create(
        model=MODEL, max_tokens=256, messages=HELLO, tools=[WEATHER_TOOL], tool_choice=FORCE_WEATHER
    )
    blocks = [block for block in message.content if block.type == "tool_use"]
    expect(blocks, f"no tool_use block: {message.content}")
    expect(blocks[0].name == "get_weather", f"tool {blocks[0].name}")
    expect(isinstance(blocks[0].input, dict) and "location" in blocks[0].input, f"input {blocks[0].input}")
    expect(message.stop_reason == "tool_use", f"stop_reason {message.stop_reason}")
    return json.dumps(blocks[0].input)


@check
def tool_use_streamed_assembles_its_input():
    with client().messages.stream(
        model=MODEL, max_tokens=256, messages=HELLO, tools=[WEATHER_TOOL], tool_choice=FORCE_WEATHER
    ) as stream:
        final = stream.get_final_message()
    blocks = [block for block in final.content if block.type == "tool_use"]
    expect(blocks and blocks[0].name == "get_weather", f"no get_weather call: {final.content}")
    expect(isinstance(blocks[0].input, dict) and "location" in blocks[0].input, f"input {blocks[0].input}")
    return json.dumps(blocks[0].input)


@check
def count_tokens_answers_a_count():
    counted = client().messages.count_tokens(model=MODEL, messages=HELLO)
    expect(isinstance(counted.input_tokens, int) and counted.input_tokens > 0, f"count {counted}")
    return str(counted.input_tokens)


@check
def sticky_split_keeps_each_user_on_one_upstream():
    seen = {}
    for number in range(16):
        user = f"user-{number}"
        upstreams = set()
        for _ in range(2):
            raw = client(user=user).messages.with_raw_response.create(model=MODEL, max_tokens=16, messages=HELLO)
            upstreams.add(raw.headers.get("x-cutover-upstream"))
        expect(len(upstreams) == 1, f"{user} was served by {upstreams}")
        seen[user] = upstreams.pop()
    arms = set(seen.values())
    expect(arms == {"claude-a", "claude-b"}, f"a 50% split of 16 users used {arms}")
    return f"{sum(1 for arm in seen.values() if arm == 'claude-b')} of 16 users on claude-b"


@check
def a_candidate_whose_stream_starts_with_an_error_event_falls_back_to_the_primary():
    with client().messages.with_streaming_response.create(
        model="flaky-sonnet", max_tokens=64, messages=HELLO, stream=True
    ) as raw:
        headers = raw.headers
        events = [line for line in raw.iter_lines() if line.startswith("event: ")]
    expect(headers.get("x-cutover-upstream") == "claude-a", f"served by {headers.get('x-cutover-upstream')}")
    expect(headers.get("x-cutover-fallback") == "true", "no fallback header")
    expect("event: error" not in events, f"the candidate's error reached the client: {events}")
    expect(events[0] == "event: message_start" and events[-1] == "event: message_stop", f"events {events}")
    with client().messages.stream(model="flaky-sonnet", max_tokens=64, messages=HELLO) as stream:
        final = stream.get_final_message()
    expect(final.content[0].text, "no text through the SDK")
    return f"{len(events)} events from claude-a"


@check
def wrong_gateway_key_is_authentication_error():
    error = raises(anthropic.AuthenticationError, lambda: client(key="sk-wrong").messages.create(
        model=MODEL, max_tokens=16, messages=HELLO))
    expect(error.status_code == 401, f"status {error.status_code}")
    expect(error.body["type"] == "error" and error.body["error"]["type"] == "authentication_error", f"{error.body}")
    return error.body["error"]["message"]


@check
def model_without_route_is_not_found_error():
    error = raises(anthropic.NotFoundError, lambda: client().messages.create(
        model="no-such-model", max_tokens=16, messages=HELLO))
    expect(error.body["error"]["type"] == "not_found_error", f"{error.body}")
    return error.body["error"]["message"]


@check
def rate_limited_upstream_is_rate_limit_error():
    error = raises(anthropic.RateLimitError, lambda: client(retries=0).messages.create(
        model="limited-sonnet", max_tokens=16, messages=HELLO))
    expect(error.body["error"]["type"] == "rate_limit_error", f"{error.body}")
    return str(error.status_code)


@check
def overloaded_upstream_is_overloaded_error():
    error = raises(anthropic.OverloadedError, lambda: client(retries=0).messages.create(
        model="overloaded-sonnet", max_tokens=16, messages=HELLO))
    expect(error.status_code == 529, f"status {error.status_code}")
    return error.body["error"]["type"]


@check
def broken_stream_raises_an_error_not_a_truncated_message():
    def read():
        with client(retries=0).messages.stream(model="cut-sonnet", max_tokens=256, messages=HELLO) as stream:
            for _ in stream.text_stream:
                pass
            return stream.get_final_message()

    error = raises(anthropic.APIStatusError, read)
    expect(error.body["type"] == "error" and error.body["error"]["type"] == "api_error", f"{error.body}")
    return error.body["error"]["message"]


def main():
    wanted = set(sys.argv[1:])
    results = []
    for function in CHECKS:
        if wanted and function.__name__ not in wanted:
            continue
        try:
            detail = function()
            results.append({"name": function.__name__, "ok": True, "detail": detail or ""})
        except Exception as error:  # noqa: BLE001 - every failure is reported, not raised
            detail = f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=3)}"
            results.append({"name": function.__name__, "ok": False, "detail": detail})
    print(json.dumps({"anthropic_version": anthropic.__version__, "checks": results}))
    sys.exit(0 if all(result["ok"] for result in results) else 1)


if __name__ == "__main__":
    main()
