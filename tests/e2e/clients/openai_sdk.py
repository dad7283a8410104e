#!/usr/bin/env python3
"""The official `openai` Python SDK, sync (`OpenAI`) and async (`AsyncOpenAI`), through the
gateway: structured output parsed into a pydantic model, and the gateway's headers read
with `with_raw_response`. Gateway and report: see `report.py`.
"""

import asyncio
from typing import List, Literal

from report import ARMS, BASE_URL, KEY, MODEL, USERS, arm_of, both_arms_async, check, expect, missing, run

try:
    import openai
except ImportError as error:
    missing("openai", error)
try:
    import pydantic
except ImportError as error:
    missing("pydantic", error)

FORECAST = [{"role": "user", "content": "Tomorrow's forecast for Hanoi, as structured data."}]
HELLO = [{"role": "user", "content": "Say hello in five words."}]


class Temperature(pydantic.BaseModel):
    low_c: float
    high_c: float


class Forecast(pydantic.BaseModel):
    city: str
    sky: Literal["sunny", "cloudy", "rain"]
    temperature: Temperature
    warnings: List[str]
    humidity_percent: int


def options(user):
    # SDK defaults otherwise (retries included): that is what users run.
    return {"base_url": BASE_URL, "api_key": KEY, "timeout": 30.0, "default_headers": {"x-user-id": user}}


def parse_method(completions):
    """`chat.completions.parse` (openai >= 1.92) or `beta.chat.completions.parse` before it."""
    return getattr(completions, "parse", None)


def parser(client):
    method = parse_method(client.chat.completions)
    if method is None:
        method = client.beta.chat.completions.parse
    return method


def expect_forecast(completion):
    message = completion.choices[0].message
    expect(completion.choices[0].finish_reason == "stop", f"finish_reason {completion.choices[0].finish_reason!r}")
    expect(message.refusal is None, f"refusal {message.refusal!r}")
    expect(isinstance(message.parsed, Forecast), f"parsed {message.parsed!r} from content {message.content!r}")
    # The content is exactly the JSON the model was parsed from: pydantic accepts it as is.
    expect(Forecast.model_validate_json(message.content) == message.parsed, f"content {message.content!r}")


def expect_gateway_headers(raw):
    route, upstream = raw.headers.get("x-cutover-route"), raw.headers.get("x-cutover-upstream")
    expect(route == "default", f"x-cutover-route {route!r}")
    expect(upstream in ARMS, f"x-cutover-upstream {upstream!r}")
    content = raw.parse().choices[0].message.content
    expect(arm_of(content) == upstream, f"the header names {upstream!r} but the answer is {content!r}")
    return upstream


def split_seen_through_headers(create):
    """`create(user)` answers a raw response; both arms must be named across users, and
    each user again by the arm that answered it first."""
    seen = {}
    for user in USERS:
        seen[user] = expect_gateway_headers(create(user))
        if set(seen.values()) == ARMS:
            break
    expect(set(seen.values()) == ARMS, f"at weight 50, users {list(seen)} were all answered by {set(seen.values())}")
    for user, arm in seen.items():
        again = expect_gateway_headers(create(user))
        expect(again == arm, f"{user} moved from {arm} to {again}")


@check
def sync_parse_fills_the_pydantic_model():
    client = openai.OpenAI(**options(USERS[0]))
    expect_forecast(parser(client)(model=MODEL, messages=FORECAST, response_format=Forecast))


@check
def async_parse_fills_the_pydantic_model():
    async def both():
        async with openai.AsyncOpenAI(**options(USERS[1])) as client:
            parse = parser(client)
            # Two at once on one client: the async path's own connection handling.
            completions = await asyncio.gather(
                parse(model=MODEL, messages=FORECAST, response_format=Forecast),
                parse(model=MODEL, messages=FORECAST, response_format=Forecast),
            )
        for completion in completions:
            expect_forecast(completion)

    return both()


@check
def sync_raw_response_names_the_route_and_both_arms():
    def create(user):
        return openai.OpenAI(**options(user)).chat.completions.with_raw_response.create(model=MODEL, messages=HELLO)

    split_seen_through_headers(create)


@check
def async_raw_response_names_the_route_and_both_arms():
    async def split():
        seen = {}

        async def answer_for(user):
            async with openai.AsyncOpenAI(**options(user)) as client:
                raw = await client.chat.completions.with_raw_response.create(model=MODEL, messages=HELLO)
            seen[user] = expect_gateway_headers(raw)
            return raw.parse().choices[0].message.content

        await both_arms_async(answer_for)
        expect(set(seen.values()) == ARMS, f"arms seen: {seen}")

    return split()


@check
def async_stream_concatenates_to_an_answer_from_one_arm():
    async def streamed():
        async with openai.AsyncOpenAI(**options(USERS[0])) as client:
            stream = await client.chat.completions.create(model=MODEL, messages=HELLO, stream=True)
            text, finish = "", None
            async for chunk in stream:
                for choice in chunk.choices:
                    text += choice.delta.content or ""
                    finish = choice.finish_reason or finish
        arm_of(text)
        expect(finish == "stop", f"finish_reason {finish!r}")

    return streamed()


if __name__ == "__main__":
    run("openai (Python)", f"{openai.__version__} (pydantic {pydantic.VERSION})")
