#!/usr/bin/env python3
"""The official `openai` Python SDK against a running cutover gateway, used as our users use it.

Run by `tests/e2e/sdk.rs`, which starts the gateway (routes below) and passes:

  CUTOVER_BASE_URL   the gateway's OpenAI base URL, e.g. http://127.0.0.1:PORT/v1
  CUTOVER_KEY        a valid gateway key

The gateway it expects: route `default` (models gpt-4.1, gpt-4.1-*) between mocks named
`primary` and `candidate` at weight 50, sticky on `x-user-id`; route `strict` (models
ctx-*) to a mock that answers every inference with 400 context_length_exceeded; route
`cutter` (models cut-*) to a mock that cuts every stream after a few chunks; no route for
other models; `max_body_mb = 1`.

Prints one JSON report on stdout:
  {"openai_version": "...", "checks": [{"name": "...", "ok": true|false, "detail": "..."}]}
Exit status: 0 when every check passed, 1 when one failed, 2 when the SDK is missing.
Run one check by name with `sdk_client.py NAME...`.
"""

import json
import os
import sys
import traceback

try:
    import openai
except ImportError as error:
    print(json.dumps({"error": f"the `openai` package is missing ({error}); install it with `pip install openai`"}))
    sys.exit(2)

BASE_URL = os.environ["CUTOVER_BASE_URL"]
KEY = os.environ["CUTOVER_KEY"]
MODEL = "gpt-4.1"
HELLO = [{"role": "user", "content": "Say hello in five words."}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["location"],
        },
    },
}

CHECKS = []


def check(function):
    CHECKS.append(function)
    return function


def client(key=KEY, user="sdk-user"):
    # SDK defaults otherwise (retries included): that is what users run.
    return openai.OpenAI(base_url=BASE_URL, api_key=key, timeout=30.0, default_headers={"x-user-id": user})


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


def expect_status_error(call, error_class, status):
    """Runs `call`, which must raise `error_class` with HTTP `status`; returns the error."""
    try:
        result = call()
    except error_class as error:
        expect(error.status_code == status, f"{error_class.__name__} with status {error.status_code}, expected {status}")
        expect(isinstance(error.body, dict) and error.body.get("message"), f"no error message in the body: {error.body!r}")
        return error
    except openai.APIError as error:
        raise AssertionError(f"expected {error_class.__name__} ({status}), got {type(error).__name__}: {error}") from error
    raise AssertionError(f"expected {error_class.__name__} ({status}), got an answer: {result!r}"[:500])


@check
def chat_non_streamed():
    completion = client().chat.completions.create(model=MODEL, messages=HELLO)
    expect(completion.object == "chat.completion", f"object {completion.object!r}")
    choice = completion.choices[0]
    expect(choice.finish_reason == "stop", f"finish_reason {choice.finish_reason!r}")
    expect(choice.message.role == "assistant", f"role {choice.message.role!r}")
    expect((choice.message.content or "").startswith("Simulated answer from mock "), f"content {choice.message.content!r}")
    usage = completion.usage
    expect(usage is not None and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens, f"usage {usage!r}")


@check
def chat_streamed_concatenates_to_the_whole_answer():
    whole = client().chat.completions.create(model=MODEL, messages=HELLO).choices[0].message.content
    stream = client().chat.completions.create(
        model=MODEL, messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    text, finish, usage, ids = "", None, None, set()
    for chunk in stream:
        ids.add(chunk.id)
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    expect(text == whole, f"streamed {text!r} != whole {whole!r}")
    expect(finish == "stop", f"finish_reason {finish!r}")
    expect(usage is not None and usage.completion_tokens > 0, f"no usage chunk: {usage!r}")
    expect(len(ids) == 1, f"chunks carry several ids: {ids}")


@check
def tool_call_non_streamed():
    completion = client().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Weather in Hanoi?"}], tools=[WEATHER_TOOL]
    )
    choice = completion.choices[0]
    expect(choice.finish_reason == "tool_calls", f"finish_reason {choice.finish_reason!r}")
    calls = choice.message.tool_calls or []
    expect(len(calls) == 1, f"tool_calls {calls!r}")
    expect(calls[0].function.name == "get_weather", f"function {calls[0].function.name!r}")
    arguments = json.loads(calls[0].function.arguments)
    expect(isinstance(arguments.get("location"), str), f"arguments {arguments!r}")
    expect(calls[0].id, "a tool call without id")


@check
def tool_call_streamed():
    stream = client().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Weather in Hanoi?"}], tools=[WEATHER_TOOL], stream=True
    )
    calls, finish = {}, None
    for chunk in stream:
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for delta in choice.delta.tool_calls or []:
                call = calls.setdefault(delta.index, {"id": None, "name": "", "arguments": ""})
                call["id"] = delta.id or call["id"]
                if delta.function is not None:
                    call["name"] += delta.function.name or ""
                    call["arguments"] += delta.function.arguments or ""
    expect(finish == "tool_calls", f"finish_reason {finish!r}")
    expect(list(calls) == [0], f"tool call indexes {list(calls)}")
    expect(calls[0]["id"] and calls[0]["name"] == "get_weather", f"call {calls[0]!r}")
    arguments = json.loads(calls[0]["arguments"])
    expect(isinstance(arguments.get("location"), str), f"arguments {arguments!r}")


@check
def json_mode_answers_a_json_object():
    completion = client().chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Reply in JSON."}],
        response_format={"type": "json_object"},
    )
    parsed = json.loads(completion.choices[0].message.content)
    expect(isinstance(parsed, dict), f"not an object: {parsed!r}")


@check
def models_list():
    ids = [model.id for model in client().models.list()]
    expect(MODEL in ids, f"{MODEL} not listed: {ids}")


@check
def embeddings_in_the_sdk_default_base64_encoding():
    response = client().embeddings.create(model="gpt-4.1", input=["hello", "world"])
    expect(len(response.data) == 2, f"{len(response.data)} embeddings")
    vector = response.data[0].embedding
    expect(len(vector) > 0 and all(isinstance(x, float) for x in vector), f"embedding {vector!r}"[:300])


@check
def legacy_completions():
    completion = client().completions.create(model=MODEL, prompt="Say hello")
    expect(completion.choices[0].text, f"empty text: {completion!r}"[:300])


@check
def gateway_headers_name_route_and_upstream():
    raw = client().chat.completions.with_raw_response.create(model=MODEL, messages=HELLO)
    expect(raw.headers.get("x-cutover-route") == "default", f"x-cutover-route {raw.headers.get('x-cutover-route')!r}")
    upstream = raw.headers.get("x-cutover-upstream")
    expect(upstream in ("primary", "candidate"), f"x-cutover-upstream {upstream!r}")
    content = raw.parse().choices[0].message.content
    expect(f"mock {upstream}." in content, f"the header names {upstream!r} but the answer is {content!r}")


@check
def sticky_split_keeps_each_user_on_one_upstream():
    seen = {}
    for n in range(40):
        user = f"split-user-{n}"
        upstreams = {
            client(user=user).chat.completions.with_raw_response.create(model=MODEL, messages=HELLO).headers.get(
                "x-cutover-upstream"
            )
            for _ in range(2)
        }
        expect(len(upstreams) == 1, f"{user} answered by {upstreams}")
        seen[user] = upstreams.pop()
    arms = set(seen.values())
    expect(arms == {"primary", "candidate"}, f"at weight 50, 40 users all went to {arms}")


@check
def wrong_gateway_key_is_authentication_error():
    error = expect_status_error(
        lambda: client(key="sk-not-a-gateway-key").chat.completions.create(model=MODEL, messages=HELLO),
        openai.AuthenticationError,
        401,
    )
    expect("sk-not-a-gateway-key" not in str(error), "the error echoes the key")


@check
def model_without_route_is_not_found_error():
    expect_status_error(
        lambda: client().chat.completions.create(model="no-such-model", messages=HELLO), openai.NotFoundError, 404
    )


@check
def upstream_400_is_bad_request_error():
    error = expect_status_error(
        lambda: client().chat.completions.create(model="ctx-long", messages=HELLO), openai.BadRequestError, 400
    )
    expect(error.code == "context_length_exceeded", f"code {error.code!r}")


@check
def oversized_body_is_413():
    big = [{"role": "user", "content": "x" * (2 * 1024 * 1024)}]
    error = expect_status_error(
        lambda: client().chat.completions.create(model=MODEL, messages=big), openai.APIStatusError, 413
    )
    expect(type(error) is openai.APIStatusError, f"{type(error).__name__}")


@check
def broken_stream_raises_api_error_not_a_truncated_answer():
    stream = client().chat.completions.create(model="cut-now", messages=HELLO, stream=True)
    text = ""
    try:
        for chunk in stream:
            for choice in chunk.choices:
                text += choice.delta.content or ""
    except openai.APIConnectionError as error:
        raise AssertionError(f"the connection broke instead of a terminal error event: {error!r}") from error
    except openai.APIError as error:
        expect(text, "the error came before any content; the fault should cut mid-stream")
        expect(str(error), "an APIError without message")
        return
    raise AssertionError(f"the stream ended silently after {text!r}: a truncated answer passed for a complete one")


def main():
    wanted = set(sys.argv[1:])
    results = []
    for function in CHECKS:
        if wanted and function.__name__ not in wanted:
            continue
        try:
            function()
            results.append({"name": function.__name__, "ok": True, "detail": ""})
        except Exception as error:  # noqa: BLE001 - every failure becomes a named result
            detail = f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=4)}"
            results.append({"name": function.__name__, "ok": False, "detail": detail})
    print(json.dumps({"openai_version": openai.__version__, "checks": results}, indent=2))
    sys.exit(0 if all(result["ok"] for result in results) else 1)


if __name__ == "__main__":
    main()
