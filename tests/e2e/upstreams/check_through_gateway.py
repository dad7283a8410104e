#!/usr/bin/env python3
"""The official `openai` Python SDK through a cutover gateway whose route leads to a
third-party HTTP server, run by `tests/e2e/upstreams.rs` once per server.

Environment:

  CHECK_BASE_URL        the gateway's OpenAI base URL, e.g. http://127.0.0.1:PORT/v1
  CHECK_KEY             a valid gateway key (the upstream must never see it)
  CHECK_ANSWERS         `echo`: the upstream is one of our apps (`openai_app.*`), which
                        answer `echo: ` and the last user message; `mock`: it is (or is in
                        front of) `cutover mock`, which answers "Simulated answer from mock …"
  CHECK_UPSTREAM_HOST   the `Host` the server must have seen, e.g. 127.0.0.1:PORT
  CHECK_UPSTREAM_PROTO  the HTTP version the server must have seen, e.g. HTTP/1.1, HTTP/2.0
  CHECK_UPSTREAM_KEY    the upstream's own key, which nothing the client gets may contain

Model `gpt-4.1` must be answered normally and model `ctx-too-long` with OpenAI's 400
context_length_exceeded, by the upstream itself. Every answer of the server must carry
`x-seen-host`, `x-seen-target`, `x-seen-key`, `x-seen-client-only` and `x-upstream-proto`
(what it saw), `x-upstream-server`, and a `set-cookie` that the gateway must drop.

Prints one JSON report on stdout:
  {"openai_version": "...", "upstream_server": "...", "checks": [{"name", "ok", "detail"}]}
Exit status: 0 when every check passed, 1 when one failed, 2 when the SDK is missing.
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

BASE_URL = os.environ["CHECK_BASE_URL"]
KEY = os.environ["CHECK_KEY"]
ANSWERS = os.environ["CHECK_ANSWERS"]
UPSTREAM_HOST = os.environ["CHECK_UPSTREAM_HOST"]
UPSTREAM_PROTO = os.environ["CHECK_UPSTREAM_PROTO"]
UPSTREAM_KEY = os.environ["CHECK_UPSTREAM_KEY"]
MODEL = "gpt-4.1"
ERROR_MODEL = "ctx-too-long"
# Non-ASCII on purpose: the body must cross every hop byte for byte.
PROMPT = "Say hello in five words — ünïcødé ✓"
HELLO = [{"role": "user", "content": PROMPT}]
WEATHER = [{"role": "user", "content": "Weather in Hanoi?"}]
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

# (which call, the response headers the upstream's answer came back with)
SEEN = []
# (which call, a body the client received: a whole answer, a chunk, an error)
BODIES = []


# What a client may send besides its gateway key, none of which is for an upstream: the
# gateway key again in other providers' credential headers, a cookie of the gateway's
# origin, and an OpenAI account identity of the client's own (`organization` and
# `project`, which the SDK sends as `OpenAI-Organization` and `OpenAI-Project`; given as
# default headers instead, the SDK's own unset values would drop them).
CLIENT_ONLY_HEADERS = {"x-api-key": KEY, "x-goog-api-key": KEY, "cookie": f"session={KEY}"}


def client():
    # No retries: a refusal by the upstream must show, not be retried away.
    return openai.OpenAI(
        base_url=BASE_URL,
        api_key=KEY,
        organization="org-of-the-client",
        project="proj_of_the_client",
        timeout=30.0,
        max_retries=0,
        default_headers=CLIENT_ONLY_HEADERS,
    )


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


def create(call, **arguments):
    """`chat.completions.create` through `with_raw_response`, keeping the headers and
    what the body held (every chunk of a stream, as the SDK parsed it)."""
    raw = client().chat.completions.with_raw_response.create(**arguments)
    SEEN.append((call, raw.headers))
    if not arguments.get("stream"):
        BODIES.append((call, raw.text))
        return raw.parse()
    return kept_chunks(call, raw.parse())


def kept_chunks(call, stream):
    for chunk in stream:
        BODIES.append((call, chunk.model_dump_json()))
        yield chunk


def expect_answer_text(text):
    if ANSWERS == "echo":
        expect(text == f"echo: {PROMPT}", f"content {text!r}, expected {'echo: ' + PROMPT!r}")
    else:
        expect((text or "").startswith("Simulated answer from mock "), f"content {text!r}")


def chat_non_streamed():
    completion = create("chat_non_streamed", model=MODEL, messages=HELLO)
    expect(completion.object == "chat.completion", f"object {completion.object!r}")
    choice = completion.choices[0]
    expect(choice.finish_reason == "stop", f"finish_reason {choice.finish_reason!r}")
    expect(choice.message.role == "assistant", f"role {choice.message.role!r}")
    expect_answer_text(choice.message.content)
    usage = completion.usage
    expect(usage is not None and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens, f"usage {usage!r}")


def chat_streamed_concatenates_to_the_whole_answer():
    whole = create("chat_streamed (whole)", model=MODEL, messages=HELLO).choices[0].message.content
    stream = create(
        "chat_streamed", model=MODEL, messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    text, finish, usage, pieces = "", None, None, 0
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            pieces += 1 if choice.delta.content else 0
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    expect(text == whole, f"streamed {text!r} != whole {whole!r}")
    expect_answer_text(text)
    expect(pieces > 1, f"the answer came in {pieces} content chunk(s), not streamed")
    expect(finish == "stop", f"finish_reason {finish!r}")
    expect(usage is not None and usage.completion_tokens > 0, f"no usage chunk: {usage!r}")


def tool_call_non_streamed():
    completion = create("tool_call_non_streamed", model=MODEL, messages=WEATHER, tools=[WEATHER_TOOL])
    choice = completion.choices[0]
    expect(choice.finish_reason == "tool_calls", f"finish_reason {choice.finish_reason!r}")
    calls = choice.message.tool_calls or []
    expect(len(calls) == 1, f"tool_calls {calls!r}")
    expect(calls[0].id, "a tool call without id")
    expect(calls[0].function.name == "get_weather", f"function {calls[0].function.name!r}")
    arguments = json.loads(calls[0].function.arguments)
    expect(isinstance(arguments.get("location"), str), f"arguments {arguments!r}")


def tool_call_streamed():
    stream = create("tool_call_streamed", model=MODEL, messages=WEATHER, tools=[WEATHER_TOOL], stream=True)
    calls, finish, deltas = {}, None, 0
    for chunk in stream:
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for delta in choice.delta.tool_calls or []:
                deltas += 1
                call = calls.setdefault(delta.index, {"id": None, "name": "", "arguments": ""})
                call["id"] = delta.id or call["id"]
                if delta.function is not None:
                    call["name"] += delta.function.name or ""
                    call["arguments"] += delta.function.arguments or ""
    expect(finish == "tool_calls", f"finish_reason {finish!r}")
    expect(list(calls) == [0], f"tool call indexes {list(calls)}")
    expect(deltas > 1, f"the tool call came in {deltas} delta(s), not streamed")
    expect(calls[0]["id"] and calls[0]["name"] == "get_weather", f"call {calls[0]!r}")
    arguments = json.loads(calls[0]["arguments"])
    expect(isinstance(arguments.get("location"), str), f"arguments {arguments!r}")


def upstream_400_is_bad_request_error_with_its_message():
    try:
        result = create("upstream_400", model=ERROR_MODEL, messages=HELLO)
    except openai.BadRequestError as error:
        SEEN.append(("upstream_400", error.response.headers))
        BODIES.append(("upstream_400", error.response.text))
        expect(error.status_code == 400, f"status {error.status_code}")
        body = error.body if isinstance(error.body, dict) else {}
        expect(body.get("code") == "context_length_exceeded", f"error body {error.body!r}")
        expect("maximum context length" in (body.get("message") or ""), f"error message {body.get('message')!r}")
        return
    except openai.APIError as error:
        raise AssertionError(f"expected BadRequestError (400), got {type(error).__name__}: {error}") from error
    raise AssertionError(f"expected BadRequestError (400), got an answer: {result!r}"[:500])


def answers():
    """The answers so far, failing the check (rather than passing it vacuously) when the
    first five checks did not all get one."""
    expect(len(SEEN) >= 5, f"only {len(SEEN)} answers came back from the upstream: {[call for call, _ in SEEN]}")
    return SEEN


def seen_values(header):
    """`header` of every answer so far, by call; an answer without it fails the check."""
    missing = [call for call, headers in answers() if headers.get(header) is None]
    expect(not missing, f"answers without {header} (not from the upstream?): {missing}")
    return {call: headers.get(header) for call, headers in SEEN}


def upstream_saw_host_header_with_its_own_address():
    wrong = {call: host for call, host in seen_values("x-seen-host").items() if host != UPSTREAM_HOST}
    expect(not wrong, f"the upstream saw Host other than {UPSTREAM_HOST!r}: {wrong}")


def upstream_saw_origin_form_targets():
    # `/v1/…` or, behind nginx, `/errors/v1/…`: a path, never `http://host/…`.
    wrong = {
        call: target
        for call, target in seen_values("x-seen-target").items()
        if not (target.startswith("/") and target.endswith("/v1/chat/completions"))
    }
    expect(not wrong, f"the upstream saw targets not in origin form: {wrong}")


def upstream_got_its_own_key_never_the_gateway_key():
    wrong = {call: key for call, key in seen_values("x-seen-key").items() if key != "upstream"}
    expect(not wrong, f"the upstream saw credentials other than its own key: {wrong}")


def no_client_credential_cookie_or_account_identity_reached_the_upstream():
    wrong = {call: names for call, names in seen_values("x-seen-client-only").items() if names != "[]"}
    expect(not wrong, f"the upstream received client-only headers: {wrong}")


def the_upstreams_cookie_did_not_reach_the_client():
    leaked = [call for call, headers in answers() if headers.get("set-cookie") is not None]
    expect(not leaked, f"answers with the upstream's set-cookie: {leaked}")


def the_client_never_saw_the_upstreams_key():
    expect(len(BODIES) >= len(answers()), f"{len(BODIES)} bodies kept for {len(SEEN)} answers")
    leaked = [f"{call} (headers)" for call, headers in SEEN if any(UPSTREAM_KEY in v for v in headers.values())]
    leaked += [f"{call} (body)" for call, body in BODIES if UPSTREAM_KEY in body]
    expect(not leaked, f"the upstream's key reached the client in: {leaked}")


def upstream_saw_the_expected_http_version():
    wrong = {call: proto for call, proto in seen_values("x-upstream-proto").items() if proto != UPSTREAM_PROTO}
    expect(not wrong, f"the upstream saw an HTTP version other than {UPSTREAM_PROTO!r}: {wrong}")


# In order: the checks after the first five read what those collected.
CHECKS = [
    chat_non_streamed,
    chat_streamed_concatenates_to_the_whole_answer,
    tool_call_non_streamed,
    tool_call_streamed,
    upstream_400_is_bad_request_error_with_its_message,
    upstream_saw_host_header_with_its_own_address,
    upstream_saw_origin_form_targets,
    upstream_got_its_own_key_never_the_gateway_key,
    no_client_credential_cookie_or_account_identity_reached_the_upstream,
    the_upstreams_cookie_did_not_reach_the_client,
    the_client_never_saw_the_upstreams_key,
    upstream_saw_the_expected_http_version,
]


def main():
    results = []
    for function in CHECKS:
        try:
            function()
            results.append({"name": function.__name__, "ok": True, "detail": ""})
        except Exception as error:  # a failed check is reported, the others still run
            detail = f"{type(error).__name__}: {error}"
            if not isinstance(error, AssertionError):
                detail += "\n" + traceback.format_exc(limit=3)
            results.append({"name": function.__name__, "ok": False, "detail": detail})
    servers = sorted({headers.get("x-upstream-server") or "?" for _, headers in SEEN})
    print(json.dumps({"openai_version": openai.__version__, "upstream_server": ", ".join(servers), "checks": results}))
    return 0 if all(result["ok"] for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
