"""Streamed usage through the gateway, as the official `openai` SDK sees it: a stream whose
client did not ask for usage carries none; one that asked gets the upstream's. Prints a
JSON report on stdout for tests/e2e/cost.rs."""

import json
import os
import sys

import openai

client = openai.OpenAI(base_url=os.environ["CUTOVER_BASE_URL"], api_key="unused", max_retries=0)
messages = [{"role": "user", "content": "Hello there"}]


def stream(**extra):
    chunks = list(client.chat.completions.create(model="gpt-4.1", messages=messages, stream=True, **extra))
    usages = [chunk.usage.model_dump() for chunk in chunks if chunk.usage is not None]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return {"chunks": len(chunks), "usages": usages, "text": text}


report = {
    "openai_version": openai.__version__,
    "not_asked": stream(),
    "asked": stream(stream_options={"include_usage": True}),
}
json.dump(report, sys.stdout)
