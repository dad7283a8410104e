// The official `@anthropic-ai/sdk` Node SDK through the gateway, on the Messages API: a
// whole answer (the gateway's headers read through `withResponse`), a stream assembled by
// the SDK's `stream` helper, a forced tool call streamed, and the SDK's error class for a
// wrong gateway key. The gateway: `tests/e2e/anthropic.rs` (route `claude` for
// claude-sonnet-4-5 between `cutover mock --api anthropic` upstreams `claude-a` and
// `claude-b` at weight 50); CUTOVER_BASE_URL is its address without `/v1`. Report: see
// `report.mjs`.

import { BASE_URL, KEY, check, expect, need, run, versionOf } from "./report.mjs";

const { default: Anthropic } = await need("@anthropic-ai/sdk");

const MODEL = "claude-sonnet-4-5";
const ARMS = ["claude-a", "claude-b"];
const HELLO = [{ role: "user", content: "Say hello in five words." }];
const WEATHER_TOOL = {
  name: "get_weather",
  description: "Current weather for a city.",
  input_schema: {
    type: "object",
    properties: { location: { type: "string" }, unit: { type: "string", enum: ["celsius", "fahrenheit"] } },
    required: ["location"],
  },
};

function client(key = KEY, user = "node-user") {
  // SDK defaults otherwise (retries included): that is what users run.
  return new Anthropic({ baseURL: BASE_URL, apiKey: key, timeout: 30_000, defaultHeaders: { "x-user-id": user } });
}

check("create_answers_text_named_in_headers", async () => {
  const { data, response } = await client().messages.create({ model: MODEL, max_tokens: 256, messages: HELLO }).withResponse();
  expect(response.headers.get("x-cutover-route") === "claude", `x-cutover-route ${response.headers.get("x-cutover-route")}`);
  expect(ARMS.includes(response.headers.get("x-cutover-upstream")), `x-cutover-upstream ${response.headers.get("x-cutover-upstream")}`);
  expect(data.type === "message" && data.content[0]?.type === "text" && data.content[0].text, `not a text message: ${JSON.stringify(data)}`);
  expect(data.stop_reason === "end_turn", `stop_reason ${data.stop_reason}`);
  expect(data.usage.input_tokens > 0 && data.usage.output_tokens > 0, `usage ${JSON.stringify(data.usage)}`);
});

check("stream_helper_assembles_the_final_message", async () => {
  let text = "";
  const stream = client().messages.stream({ model: MODEL, max_tokens: 256, messages: HELLO });
  stream.on("text", (delta) => { text += delta; });
  const final = await stream.finalMessage();
  expect(text.length > 0, "the stream carried no text");
  expect(final.content[0].text === text, `final ${JSON.stringify(final.content[0].text)} != streamed ${JSON.stringify(text)}`);
  expect(final.stop_reason === "end_turn", `stop_reason ${final.stop_reason}`);
  expect(final.usage.output_tokens > 0, `usage ${JSON.stringify(final.usage)}`);
});

check("forced_tool_use_streamed_parses_its_input", async () => {
  const stream = client().messages.stream({
    model: MODEL, max_tokens: 256, messages: HELLO, tools: [WEATHER_TOOL], tool_choice: { type: "tool", name: "get_weather" },
  });
  const final = await stream.finalMessage();
  const call = final.content.find((block) => block.type === "tool_use");
  expect(call && call.name === "get_weather", `no get_weather call: ${JSON.stringify(final.content)}`);
  expect(typeof call.input === "object" && typeof call.input.location === "string", `input ${JSON.stringify(call.input)}`);
  expect(final.stop_reason === "tool_use", `stop_reason ${final.stop_reason}`);
});

check("wrong_gateway_key_is_authentication_error", async () => {
  try {
    await client("sk-wrong").messages.create({ model: MODEL, max_tokens: 16, messages: HELLO });
  } catch (error) {
    expect(error instanceof Anthropic.AuthenticationError, `expected AuthenticationError, got ${error?.constructor?.name}: ${error}`);
    expect(error.status === 401 && error.error?.error?.type === "authentication_error", `body ${JSON.stringify(error.error)}`);
    return;
  }
  throw new Error("a wrong gateway key was answered");
});

await run("@anthropic-ai/sdk", versionOf("@anthropic-ai/sdk"));
