#!/usr/bin/env python3
"""LangChain's `ChatOpenAI` (`langchain-openai`) through the gateway: `invoke`, `stream`
and `bind_tools` with a tool call coming back, whole and streamed. Gateway and report:
see `report.py`.
"""

from report import BASE_URL, KEY, MODEL, USERS, arm_of, both_arms, check, expect, missing, run

try:
    from importlib.metadata import version

    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI
except ImportError as error:
    missing("langchain-openai", error)

HELLO = "Say hello in five words."


@tool
def get_weather(location: str, unit: str = "celsius") -> str:
    """Current weather for a city."""
    return f"22 degrees {unit} in {location}"


def chat(user):
    return ChatOpenAI(
        model=MODEL, base_url=BASE_URL, api_key=KEY, timeout=30, max_retries=1, default_headers={"x-user-id": user}
    )


@check
def invoke_answers_from_both_arms():
    def answer_for(user):
        message = chat(user).invoke(HELLO)
        expect(message.response_metadata.get("finish_reason") == "stop", f"metadata {message.response_metadata!r}")
        usage = message.usage_metadata or {}
        expect(usage.get("total_tokens", 0) > 0, f"usage_metadata {message.usage_metadata!r}")
        return message.content

    both_arms(answer_for)


@check
def stream_concatenates_to_the_invoked_answer():
    whole = chat(USERS[0]).invoke(HELLO).content
    chunks = list(chat(USERS[0]).stream(HELLO))
    text = "".join(chunk.content for chunk in chunks)
    expect(len(chunks) > 2, f"{len(chunks)} chunks: not streamed")
    expect(text == whole, f"streamed {text!r} != invoked {whole!r}")
    arm_of(text)


@check
def bind_tools_returns_a_tool_call():
    message = chat(USERS[1]).bind_tools([get_weather]).invoke("What is the weather in Hanoi? Use get_weather.")
    calls = message.tool_calls
    expect(len(calls) == 1, f"tool_calls {calls!r}")
    expect(calls[0]["name"] == "get_weather", f"call {calls[0]!r}")
    expect(isinstance(calls[0]["args"].get("location"), str), f"args {calls[0]['args']!r}")
    expect(calls[0]["id"], "a tool call without id")
    expect(message.response_metadata.get("finish_reason") == "tool_calls", f"metadata {message.response_metadata!r}")
    # The call runs as a LangChain tool: its arguments fit the tool's own schema.
    result = get_weather.invoke(calls[0])
    expect("degrees" in result.content and result.tool_call_id == calls[0]["id"], f"the tool answered {result!r}")


@check
def streamed_tool_call_chunks_add_up_to_one_call():
    bound = chat(USERS[0]).bind_tools([get_weather])
    total = None
    for chunk in bound.stream("What is the weather in Hanoi? Use get_weather."):
        total = chunk if total is None else total + chunk
    expect(total is not None, "no chunks")
    calls = total.tool_calls
    expect(len(calls) == 1 and calls[0]["name"] == "get_weather", f"tool_calls {calls!r}")
    expect(isinstance(calls[0]["args"].get("location"), str), f"args {calls[0]['args']!r}")


if __name__ == "__main__":
    run("langchain-openai", f"{version('langchain-openai')} (langchain-core {version('langchain-core')})")
