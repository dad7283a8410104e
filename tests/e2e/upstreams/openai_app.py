#!/usr/bin/env python3
"""A small OpenAI-compatible chat server, run behind the gateway by `tests/e2e/upstreams.rs`
on third-party Python web servers: FastAPI under uvicorn (h11), or aiohttp's own server.

    openai_app.py uvicorn|aiohttp PORT

Environment: UPSTREAM_KEY (the one key it accepts, `Authorization: Bearer KEY`) and
GATEWAY_KEY (the gateway's client key, which must never reach an upstream).

It behaves as the servers it runs on do, and a little stricter (`refusal`): a request
target that is not origin-form (`/path`) or a request without `Host` is 400, any other
credential 401. Every answer names what it saw: `x-seen-host` (the `Host` header),
`x-seen-target` (the request target as sent), `x-seen-key` (`upstream`, `gateway`, `none` or `other`), `x-seen-client-only` (which of
the client's cookie, account identity and other credential headers arrived, `[]` when
none), `x-upstream-proto` (the HTTP version) and `x-upstream-server` (server and
version); and every answer sets a cookie, which must not reach the client.

`POST /v1/chat/completions`: a model named `ctx-*` gets OpenAI's 400
context_length_exceeded; a request with tools gets a call of the first tool; any other
gets `echo: ` and the last user message, as a whole answer or streamed word by word.
`GET /health` (no key) answers the server's name and version, for readiness probes.
The same rules are in `openai_app.mjs` (Node) and `main.go` (Go).
"""

import json
import os
import sys
import time

UPSTREAM_KEY = os.environ["UPSTREAM_KEY"]
GATEWAY_KEY = os.environ.get("GATEWAY_KEY", "")
CHAT_PATH = "/v1/chat/completions"
TOOL_ARGUMENTS = json.dumps({"location": "Hanoi", "unit": "celsius"})


def error_body(message, kind, param=None, code=None):
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def seen_key(headers):
    """What the credential headers carried: `headers` is a list of (lower-case name, value)."""
    values = [value for _, value in headers]
    if GATEWAY_KEY and any(GATEWAY_KEY in value for value in values):
        return "gateway"
    auth = [value for name, value in headers if name in ("authorization", "api-key")]
    if not auth:
        return "none"
    return "upstream" if auth == [f"Bearer {UPSTREAM_KEY}"] else "other"


# Request headers of the client's that must stay on the gateway's side.
CLIENT_ONLY = ["cookie", "openai-organization", "openai-project", "x-api-key", "x-goog-api-key"]


def seen(server, proto, target, headers):
    """The response headers that tell the test what this server saw, and a cookie of the
    upstream's own that must not reach the client."""
    host = [value for name, value in headers if name == "host"]
    names = {name for name, _ in headers}
    return {
        "x-seen-host": host[0] if host else "",
        "x-seen-target": target,
        "x-seen-key": seen_key(headers),
        "x-seen-client-only": "[" + ",".join(name for name in CLIENT_ONLY if name in names) + "]",
        "x-upstream-proto": proto,
        "x-upstream-server": server,
        "set-cookie": "upstream-session=1; Path=/",
    }


def refusal(target, headers, needs_key):
    """(status, body) when the request must be refused, else None."""
    if not target.startswith("/"):
        return 400, error_body(f"request target {target!r} is not in origin form", "invalid_request_error")
    if not [value for name, value in headers if name == "host"]:
        return 400, error_body("the request has no Host header", "invalid_request_error")
    key = seen_key(headers)
    if needs_key and key != "upstream":
        message = f"Incorrect API key provided (the upstream saw the {key} key)."
        return 401, error_body(message, "invalid_request_error", code="invalid_api_key")
    return None


def words(text):
    """`text` in pieces that concatenate back to it, each word with its trailing space."""
    pieces, current = [], ""
    for char in text:
        current += char
        if char == " ":
            pieces.append(current)
            current = ""
    return pieces + ([current] if current else [])


def last_user_text(request):
    for message in reversed(request.get("messages") or []):
        if message.get("role") == "user" and isinstance(message.get("content"), str):
            return message["content"]
    return ""


def usage(request, completion_tokens):
    prompt = sum(len(words(str(m.get("content", "")))) for m in request.get("messages") or [])
    return {"prompt_tokens": prompt, "completion_tokens": completion_tokens, "total_tokens": prompt + completion_tokens}


def chat(request, server):
    """(status, body) for a whole answer, or (200, list of SSE chunk objects) for a stream."""
    model = request.get("model")
    if not isinstance(model, str) or not isinstance(request.get("messages"), list):
        return 400, error_body("`model` and `messages` are required", "invalid_request_error")
    if model.startswith("ctx-"):
        message = f"This model's maximum context length is 8192 tokens. However, your messages resulted in 9001 tokens ({server})."
        return 400, error_body(message, "invalid_request_error", "messages", "context_length_exceeded")
    ident, created = f"chatcmpl-{int(time.time() * 1000)}", int(time.time())
    tools = request.get("tools") or []
    stream = bool(request.get("stream"))
    base = {"id": ident, "created": created, "model": model}
    if tools:
        call = {"id": "call_" + ident[-8:], "type": "function", "function": {"name": tools[0]["function"]["name"]}}
        if not stream:
            call["function"]["arguments"] = TOOL_ARGUMENTS
            message = {"role": "assistant", "content": None, "tool_calls": [call]}
            return 200, whole(base, message, "tool_calls", usage(request, 8))
        third = len(TOOL_ARGUMENTS) // 3
        pieces = [TOOL_ARGUMENTS[:third], TOOL_ARGUMENTS[third : 2 * third], TOOL_ARGUMENTS[2 * third :]]
        call["function"]["arguments"] = ""
        deltas = [{"role": "assistant", "content": None, "tool_calls": [{"index": 0, **call}]}]
        deltas += [{"tool_calls": [{"index": 0, "function": {"arguments": piece}}]} for piece in pieces]
        return 200, chunks(base, deltas, "tool_calls", request, 8)
    text = "echo: " + last_user_text(request)
    if not stream:
        return 200, whole(base, {"role": "assistant", "content": text}, "stop", usage(request, len(words(text))))
    deltas = [{"role": "assistant", "content": ""}] + [{"content": piece} for piece in words(text)]
    return 200, chunks(base, deltas, "stop", request, len(words(text)))


def whole(base, message, finish, counted):
    choice = {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
    return {**base, "object": "chat.completion", "choices": [choice], "usage": counted}


def chunks(base, deltas, finish, request, completion_tokens):
    def chunk(delta, finish_reason=None):
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
        return {**base, "object": "chat.completion.chunk", "choices": [choice]}

    out = [chunk(delta) for delta in deltas] + [chunk({}, finish)]
    if (request.get("stream_options") or {}).get("include_usage"):
        out.append({**base, "object": "chat.completion.chunk", "choices": [], "usage": usage(request, completion_tokens)})
    return out


def sse(events):
    for event in events:
        yield f"data: {json.dumps(event)}\n\n".encode()
    yield b"data: [DONE]\n\n"


def handle(method, target, headers, body, server, proto):
    """The whole exchange, independent of the web framework: (status, headers, JSON body or
    SSE chunk list). `headers` is a list of (lower-case name, value)."""
    path = target.split("?", 1)[0]
    out = seen(server, proto, target, headers)
    refused = refusal(target, headers, needs_key=path != "/health")
    if refused:
        return refused[0], out, refused[1]
    if method == "GET" and path == "/health":
        return 200, out, {"server": server}
    if method == "GET" and path == "/v1/models":
        return 200, out, {"object": "list", "data": [{"id": "gpt-4.1", "object": "model", "owned_by": "tests"}]}
    if method != "POST" or path != CHAT_PATH:
        return 404, out, error_body(f"no route for {method} {path}", "invalid_request_error")
    try:
        request = json.loads(body)
    except ValueError as error:
        return 400, out, error_body(f"the body is not JSON: {error}", "invalid_request_error")
    status, answer = chat(request, server)
    return status, out, answer


def fastapi_app():
    """FastAPI (Starlette) with one catch-all route, so that `handle` decides everything."""
    import fastapi
    import uvicorn
    from fastapi.responses import JSONResponse, StreamingResponse

    server = f"uvicorn/{uvicorn.__version__} fastapi/{fastapi.__version__}"
    app = fastapi.FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    async def everything(request: fastapi.Request):
        raw = request.scope.get("raw_path", b"").decode("latin-1")
        query = request.scope.get("query_string", b"").decode("latin-1")
        target = raw + ("?" + query if query else "")
        headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in request.scope["headers"]]
        proto = "HTTP/" + request.scope.get("http_version", "1.1")
        status, out, answer = handle(request.method, target, headers, await request.body(), server, proto)
        if isinstance(answer, list):
            return StreamingResponse(sse(answer), media_type="text/event-stream", headers=out)
        return JSONResponse(answer, status_code=status, headers=out)

    app.api_route("/{path:path}", methods=["GET", "POST"])(everything)

    # Before routing: an absolute-form target matches no route and would get Starlette's 404.
    @app.middleware("http")
    async def origin_form_only(request: fastapi.Request, call_next):
        if not request.scope.get("raw_path", b"/").startswith(b"/"):
            return await everything(request)
        return await call_next(request)

    return app


def run_uvicorn(port):
    import uvicorn

    # h11, the pure-Python HTTP/1.1 parser: strict about the request line and `Host`.
    uvicorn.run(fastapi_app(), host="127.0.0.1", port=port, http="h11", log_level="warning", access_log=False)


def run_aiohttp(port):
    import aiohttp
    from aiohttp import web

    server = f"aiohttp/{aiohttp.__version__}"

    async def everything(request):
        headers = [(name.lower(), value) for name, value in request.headers.items()]
        proto = f"HTTP/{request.version.major}.{request.version.minor}"
        body = await request.read()
        status, out, answer = handle(request.method, request.raw_path, headers, body, server, proto)
        if not isinstance(answer, list):
            return web.json_response(answer, status=status, headers=out)
        response = web.StreamResponse(status=200, headers={**out, "content-type": "text/event-stream"})
        await response.prepare(request)
        for piece in sse(answer):
            await response.write(piece)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", everything)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("uvicorn", "aiohttp"):
        sys.exit("usage: openai_app.py uvicorn|aiohttp PORT")
    {"uvicorn": run_uvicorn, "aiohttp": run_aiohttp}[sys.argv[1]](int(sys.argv[2]))
