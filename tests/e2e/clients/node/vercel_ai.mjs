// The Vercel AI SDK (`ai` with `@ai-sdk/openai`) through the gateway: `generateText`,
// `streamText` and a tool with a zod schema. The provider's chat-completions model
// (`.chat(id)`) is used explicitly: its default model speaks the Responses API, which
// the mock answers with text only. Gateway and report: see `report.mjs`.

import { BASE_URL, KEY, MODEL, USERS, armOf, bothArms, check, expect, need, run, versionOf } from "./report.mjs";

// Warnings go to the console otherwise, mixed with the report.
globalThis.AI_SDK_LOG_WARNINGS = false;

const { generateText, streamText, tool } = await need("ai");
const { createOpenAI } = await need("@ai-sdk/openai");
const { z } = await need("zod");

const HELLO = "Say hello in five words.";

function model(user) {
  return createOpenAI({ baseURL: BASE_URL, apiKey: KEY, headers: { "x-user-id": user } }).chat(MODEL);
}

const getWeather = tool({
  description: "Current weather for a city.",
  inputSchema: z.object({ location: z.string(), unit: z.enum(["celsius", "fahrenheit"]).optional() }),
  execute: async ({ location, unit }) => ({ location, unit: unit ?? "celsius", degrees: 22 }),
});

check("generate_text_answers_from_both_arms", async () => {
  await bothArms(async (user) => {
    const result = await generateText({ model: model(user), prompt: HELLO, maxRetries: 0 });
    expect(result.finishReason === "stop", `finishReason ${result.finishReason}`);
    expect(result.usage.totalTokens > 0, `usage ${JSON.stringify(result.usage)}`);
    const upstream = result.response.headers?.["x-cutover-upstream"];
    expect(armOf(result.text) === upstream, `x-cutover-upstream ${upstream}, the answer ${result.text}`);
    return result.text;
  });
});

check("stream_text_concatenates_to_the_generated_text", async () => {
  const whole = (await generateText({ model: model(USERS[0]), prompt: HELLO, maxRetries: 0 })).text;
  const result = streamText({ model: model(USERS[0]), prompt: HELLO, maxRetries: 0, onError: () => {} });
  const parts = [];
  for await (const part of result.textStream) parts.push(part);
  const text = parts.join("");
  expect(parts.length > 2, `${parts.length} parts: not streamed`);
  expect(text === whole, `streamed ${JSON.stringify(text)} != generated ${JSON.stringify(whole)}`);
  expect((await result.finishReason) === "stop", `finishReason ${await result.finishReason}`);
  armOf(text);
});

check("tool_with_a_zod_schema_is_called_and_executed", async () => {
  const result = await generateText({
    model: model(USERS[1]), prompt: "What is the weather in Hanoi?", tools: { getWeather }, maxRetries: 0,
  });
  expect(result.finishReason === "tool-calls", `finishReason ${result.finishReason}`);
  const [call] = result.toolCalls;
  expect(result.toolCalls.length === 1 && call.toolName === "getWeather", `toolCalls ${JSON.stringify(result.toolCalls)}`);
  expect(typeof call.input.location === "string", `input ${JSON.stringify(call.input)}`);
  const [outcome] = result.toolResults;
  expect(outcome?.output?.degrees === 22, `toolResults ${JSON.stringify(result.toolResults)}`);
});

check("streamed_tool_call_is_parsed_against_the_zod_schema", async () => {
  const result = streamText({
    model: model(USERS[0]), prompt: "What is the weather in Hanoi?", tools: { getWeather }, maxRetries: 0, onError: () => {},
  });
  const calls = await result.toolCalls;
  expect(calls.length === 1 && calls[0].toolName === "getWeather", `toolCalls ${JSON.stringify(calls)}`);
  expect(typeof calls[0].input.location === "string", `input ${JSON.stringify(calls[0].input)}`);
  expect((await result.finishReason) === "tool-calls", `finishReason ${await result.finishReason}`);
});

await run("ai (Vercel AI SDK)", `ai ${versionOf("ai")}, @ai-sdk/openai ${versionOf("@ai-sdk/openai")}, zod ${versionOf("zod")}`);
