#!/usr/bin/env python3
"""The `litellm` library as a client of the gateway (`openai/<model>` with `api_base`),
whole and streamed. Gateway and report: see `report.py`.

litellm fetches its model cost map from the internet at import unless told not to; the
tests run offline, so the local copy it ships is used.
"""

import os

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ.setdefault("LITELLM_TELEMETRY", "False")

from report import BASE_URL, KEY, MODEL, USERS, arm_of, both_arms, check, expect, missing, run  # noqa: E402

try:
    from importlib.metadata import version

    import litellm
except ImportError as error:
    missing("litellm", error)

HELLO = [{"role": "user", "content": "Say hello in five words."}]


def completion(user, **extra):
    return litellm.completion(
        model=f"openai/{MODEL}",
        api_base=BASE_URL,
        api_key=KEY,
        messages=HELLO,
        extra_headers={"x-user-id": user},
        timeout=30,
        num_retries=0,
        **extra,
    )


@check
def completion_answers_from_both_arms():
    def answer_for(user):
        response = completion(user)
        choice = response.choices[0]
        expect(choice.finish_reason == "stop", f"finish_reason {choice.finish_reason!r}")
        usage = response.usage
        expect(usage.total_tokens == usage.prompt_tokens + usage.completion_tokens > 0, f"usage {usage!r}")
        return choice.message.content

    both_arms(answer_for)


@check
def streamed_completion_concatenates_to_the_whole_answer():
    whole = completion(USERS[0]).choices[0].message.content
    text, finish, chunks = "", None, 0
    for chunk in completion(USERS[0], stream=True):
        chunks += 1
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    expect(chunks > 2, f"{chunks} chunks: not streamed")
    expect(text == whole, f"streamed {text!r} != whole {whole!r}")
    expect(finish == "stop", f"finish_reason {finish!r}")
    arm_of(text)


if __name__ == "__main__":
    run("litellm", version("litellm"))
