// A small OpenAI-compatible chat server on Node's own `http` module, run behind the
// gateway by `tests/e2e/upstreams.rs`: `node openai_app.mjs PORT`, with UPSTREAM_KEY and
// GATEWAY_KEY in the environment. The same rules as `openai_app.py` (read its docstring):
// a target not in origin form or a request without Host is 400 (Node itself refuses a
// request without Host), any credential but `Bearer $UPSTREAM_KEY` 401; `ctx-*` models
// get 400 context_length_exceeded, requests with tools a call of the first tool, others
// `echo: ` and the last user message; every answer carries x-seen-host, x-seen-target,
// x-seen-key, x-seen-client-only, x-upstream-proto and x-upstream-server, and sets a cookie.

import http from "node:http";

const UPSTREAM_KEY = process.env.UPSTREAM_KEY;
const GATEWAY_KEY = process.env.GATEWAY_KEY || "";
const SERVER = `node/${process.versions.node}`;
const TOOL_ARGUMENTS = JSON.stringify({ location: "Hanoi", unit: "celsius" });
// Request headers of the client's that must stay on the gateway's side.
const CLIENT_ONLY = ["cookie", "openai-organization", "openai-project", "x-api-key", "x-goog-api-key"];

function errorBody(message, type, param = null, code = null) {
  return { error: { message, type, param, code } };
}

function seenKey(headers) {
  if (GATEWAY_KEY && Object.values(headers).some((value) => String(value).includes(GATEWAY_KEY))) {
    return "gateway";
  }
  const auth = [headers.authorization, headers["api-key"]].filter((value) => value !== undefined);
  if (auth.length === 0) return "none";
  return auth.length === 1 && auth[0] === `Bearer ${UPSTREAM_KEY}` ? "upstream" : "other";
}

function refusal(req, needsKey) {
  if (!req.url.startsWith("/")) {
    return [400, errorBody(`request target ${JSON.stringify(req.url)} is not in origin form`, "invalid_request_error")];
  }
  if (!req.headers.host) return [400, errorBody("the request has no Host header", "invalid_request_error")];
  const key = seenKey(req.headers);
  if (needsKey && key !== "upstream") {
    const message = `Incorrect API key provided (the upstream saw the ${key} key).`;
    return [401, errorBody(message, "invalid_request_error", null, "invalid_api_key")];
  }
  return null;
}

// Pieces that concatenate back to `text`, each word with its trailing space.
function words(text) {
  return text.match(/[^ ]* ?/g).filter((piece) => piece !== "");
}

function lastUserText(request) {
  const user = [...(request.messages || [])].reverse().find((m) => m.role === "user" && typeof m.content === "string");
  return user ? user.content : "";
}

function usage(request, completion) {
  const prompt = (request.messages || []).reduce((n, m) => n + words(String(m.content ?? "")).length, 0);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

function whole(base, message, finish, counted) {
  const choice = { index: 0, message, finish_reason: finish, logprobs: null };
  return { ...base, object: "chat.completion", choices: [choice], usage: counted };
}

function chunks(base, deltas, finish, request, completion) {
  const chunk = (delta, finishReason = null) => ({
    ...base,
    object: "chat.completion.chunk",
    choices: [{ index: 0, delta, finish_reason: finishReason, logprobs: null }],
  });
  const out = [...deltas.map((delta) => chunk(delta)), chunk({}, finish)];
  if (request.stream_options && request.stream_options.include_usage) {
    out.push({ ...base, object: "chat.completion.chunk", choices: [], usage: usage(request, completion) });
  }
  return out;
}

// [status, body] for a whole answer, or [200, array of SSE chunks] for a stream.
function chat(request) {
  const model = request.model;
  if (typeof model !== "string" || !Array.isArray(request.messages)) {
    return [400, errorBody("`model` and `messages` are required", "invalid_request_error")];
  }
  if (model.startsWith("ctx-")) {
    const message = `This model's maximum context length is 8192 tokens. However, your messages resulted in 9001 tokens (${SERVER}).`;
    return [400, errorBody(message, "invalid_request_error", "messages", "context_length_exceeded")];
  }
  const id = `chatcmpl-${Date.now()}`;
  const base = { id, created: Math.floor(Date.now() / 1000), model };
  const tools = request.tools || [];
  if (tools.length > 0) {
    const call = { id: `call_${id.slice(-8)}`, type: "function", function: { name: tools[0].function.name } };
    if (!request.stream) {
      call.function.arguments = TOOL_ARGUMENTS;
      const message = { role: "assistant", content: null, tool_calls: [call] };
      return [200, whole(base, message, "tool_calls", usage(request, 8))];
    }
    const third = Math.floor(TOOL_ARGUMENTS.length / 3);
    const pieces = [TOOL_ARGUMENTS.slice(0, third), TOOL_ARGUMENTS.slice(third, 2 * third), TOOL_ARGUMENTS.slice(2 * third)];
    call.function.arguments = "";
    const deltas = [{ role: "assistant", content: null, tool_calls: [{ index: 0, ...call }] }];
    for (const piece of pieces) deltas.push({ tool_calls: [{ index: 0, function: { arguments: piece } }] });
    return [200, chunks(base, deltas, "tool_calls", request, 8)];
  }
  const text = `echo: ${lastUserText(request)}`;
  if (!request.stream) {
    return [200, whole(base, { role: "assistant", content: text }, "stop", usage(request, words(text).length))];
  }
  const deltas = [{ role: "assistant", content: "" }, ...words(text).map((content) => ({ content }))];
  return [200, chunks(base, deltas, "stop", request, words(text).length)];
}

function answer(req, body) {
  const path = req.url.split("?")[0];
  const refused = refusal(req, path !== "/health");
  if (refused) return refused;
  if (req.method === "GET" && path === "/health") return [200, { server: SERVER }];
  if (req.method === "GET" && path === "/v1/models") {
    return [200, { object: "list", data: [{ id: "gpt-4.1", object: "model", owned_by: "tests" }] }];
  }
  if (req.method !== "POST" || path !== "/v1/chat/completions") {
    return [404, errorBody(`no route for ${req.method} ${path}`, "invalid_request_error")];
  }
  let request;
  try {
    request = JSON.parse(body.toString("utf8"));
  } catch (error) {
    return [400, errorBody(`the body is not JSON: ${error.message}`, "invalid_request_error")];
  }
  return chat(request);
}

const server = http.createServer((req, res) => {
  const parts = [];
  req.on("data", (part) => parts.push(part));
  req.on("end", () => {
    const seen = {
      "x-seen-host": req.headers.host || "",
      "x-seen-target": req.url,
      "x-seen-key": seenKey(req.headers),
      "x-seen-client-only": `[${CLIENT_ONLY.filter((name) => name in req.headers).join(",")}]`,
      "set-cookie": "upstream-session=1; Path=/",
      "x-upstream-proto": `HTTP/${req.httpVersion}`,
      "x-upstream-server": SERVER,
    };
    const [status, body] = answer(req, Buffer.concat(parts));
    if (!Array.isArray(body)) {
      res.writeHead(status, { ...seen, "content-type": "application/json" });
      res.end(JSON.stringify(body));
      return;
    }
    res.writeHead(200, { ...seen, "content-type": "text/event-stream", "cache-control": "no-cache" });
    for (const event of body) res.write(`data: ${JSON.stringify(event)}\n\n`);
    res.end("data: [DONE]\n\n");
  });
});

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || !UPSTREAM_KEY) {
  console.error("usage: UPSTREAM_KEY=... node openai_app.mjs PORT");
  process.exit(2);
}
server.listen(port, "127.0.0.1");
