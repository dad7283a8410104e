// The official `openai` Node SDK through the gateway: a whole answer (with the gateway's
// headers read through `withResponse`), a streamed one, and a tool call, whole and
// streamed. Gateway and report: see `report.mjs`.

import { ARMS, BASE_URL, KEY, MODEL, USERS, armOf, bothArms, check, expect, need, run, versionOf } from "./report.mjs";

const { default: OpenAI } = await need("openai");

const HELLO = [{ role: "user", content: "Say hello in five words." }];
const WEATHER = [{ role: "user", content: "Weather in Hanoi?" }];
const WEATHER_TOOL = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Current weather for a city.",
    parameters: {
      type: "object",
      properties: { location: { type: "string" }, unit: { type: "string", enum: ["celsius", "fahrenheit"] } },
      required: ["location"],
    },
  },
};

function client(user) {
  // SDK defaults otherwise (retries included): that is what users run.
  return new OpenAI({ baseURL: BASE_URL, apiKey: KEY, timeout: 30_000, defaultHeaders: { "x-user-id": user } });
}

check("whole_answers_come_from_both_arms_named_in_headers", async () => {
  await bothArms(async (user) => {
    const { data, response } = await client(user).chat.completions.create({ model: MODEL, messages: HELLO }).withResponse();
    const upstream = response.headers.get("x-cutover-upstream");
    expect(response.headers.get("x-cutover-route") === "default", `x-cutover-route ${response.headers.get("x-cutover-route")}`);
    expect(ARMS.includes(upstream), `x-cutover-upstream ${upstream}`);
    const choice = data.choices[0];
    expect(choice.finish_reason === "stop", `finish_reason ${choice.finish_reason}`);
    expect(armOf(choice.message.content) === upstream, `the header names ${upstream}, the answer ${choice.message.content}`);
    return choice.message.content;
  });
});

check("stream_concatenates_to_the_whole_answer", async () => {
  const whole = (await client(USERS[0]).chat.completions.create({ model: MODEL, messages: HELLO })).choices[0].message.content;
  const stream = await client(USERS[0]).chat.completions.create({
    model: MODEL, messages: HELLO, stream: true, stream_options: { include_usage: true },
  });
  let text = "", finish = null, usage = null;
  for await (const chunk of stream) {
    usage = chunk.usage ?? usage;
    for (const choice of chunk.choices) {
      text += choice.delta.content ?? "";
      finish = choice.finish_reason ?? finish;
    }
  }
  expect(text === whole, `streamed ${JSON.stringify(text)} != whole ${JSON.stringify(whole)}`);
  expect(finish === "stop", `finish_reason ${finish}`);
  expect(usage?.completion_tokens > 0, `no usage chunk: ${JSON.stringify(usage)}`);
});

check("tool_call_whole", async () => {
  const completion = await client(USERS[1]).chat.completions.create({ model: MODEL, messages: WEATHER, tools: [WEATHER_TOOL] });
  const choice = completion.choices[0];
  expect(choice.finish_reason === "tool_calls", `finish_reason ${choice.finish_reason}`);
  const calls = choice.message.tool_calls ?? [];
  expect(calls.length === 1 && calls[0].function.name === "get_weather", `tool_calls ${JSON.stringify(calls)}`);
  expect(calls[0].id, "a tool call without id");
  expect(typeof JSON.parse(calls[0].function.arguments).location === "string", `arguments ${calls[0].function.arguments}`);
});

check("tool_call_streamed_through_the_stream_helper", async () => {
  // `chat.completions.stream` assembles the tool-call deltas itself.
  const runner = client(USERS[0]).chat.completions.stream({ model: MODEL, messages: WEATHER, tools: [WEATHER_TOOL] });
  const completion = await runner.finalChatCompletion();
  const choice = completion.choices[0];
  expect(choice.finish_reason === "tool_calls", `finish_reason ${choice.finish_reason}`);
  const calls = choice.message.tool_calls ?? [];
  expect(calls.length === 1 && calls[0].function.name === "get_weather", `tool_calls ${JSON.stringify(calls)}`);
  expect(typeof JSON.parse(calls[0].function.arguments).location === "string", `arguments ${calls[0].function.arguments}`);
});

await run("openai (Node)", versionOf("openai"));
