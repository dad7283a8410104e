"""What every Python client script in this folder shares: the gateway it talks to, named
checks (plain or `async def`), and the one JSON report `tests/e2e/clients.rs` reads.

The gateway the scripts expect (started by `clients.rs`): route `default` for `gpt-4.1`
between mocks named `primary` and `candidate` at weight 50, sticky on `x-user-id`, gateway
keys required. A mock's answer text starts "Simulated answer from mock NAME.", which is
how a script sees which arm answered without reading headers its library hides.

Report on stdout:
  {"library": "...", "version": "...", "checks": [{"name": "...", "ok": true|false, "detail": "..."}]}
or, when the library is missing, {"error": "... install it with ..."}.
Exit status: 0 when every check passed, 1 when one failed, 2 when the library is missing.
"""

import asyncio
import inspect
import json
import os
import re
import sys
import traceback

BASE_URL = os.environ["CUTOVER_BASE_URL"]
KEY = os.environ["CUTOVER_KEY"]
MODEL = "gpt-4.1"
ARMS = {"primary", "candidate"}
# Sticky keys tried in order until both arms answered; the split is a stable hash, so at
# weight 50 the first few cover both (a handful of requests, never a long loop).
USERS = [f"client-user-{n}" for n in range(8)]

_CHECKS = []


def check(function):
    _CHECKS.append(function)
    return function


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


def arm_of(text):
    """The mock that wrote `text`: `primary` or `candidate`; fails on anything else."""
    found = re.match(r"Simulated answer from mock (\w+)\.", text or "")
    expect(found and found.group(1) in ARMS, f"not an answer from either mock: {text!r}")
    return found.group(1)


def both_arms(answer_for):
    """Calls `answer_for(user)` (the text answered to that sticky key) for users until
    both arms have answered; returns {user: arm}."""
    seen = {}
    for user in USERS:
        seen[user] = arm_of(answer_for(user))
        if set(seen.values()) == ARMS:
            return seen
    raise AssertionError(f"at weight 50, users {list(seen)} were all answered by {set(seen.values())}")


async def both_arms_async(answer_for):
    """`both_arms` for a coroutine `answer_for`."""
    seen = {}
    for user in USERS:
        seen[user] = arm_of(await answer_for(user))
        if set(seen.values()) == ARMS:
            return seen
    raise AssertionError(f"at weight 50, users {list(seen)} were all answered by {set(seen.values())}")


def missing(package, error):
    print(json.dumps({"error": f"the `{package}` Python package is missing ({error}); install it with `pip install {package}`"}))
    sys.exit(2)


def run(library, version):
    """Runs every check (or those named on the command line) and prints the report."""
    wanted = set(sys.argv[1:])
    results = []
    for function in _CHECKS:
        if wanted and function.__name__ not in wanted:
            continue
        try:
            outcome = function()
            if inspect.iscoroutine(outcome):
                asyncio.run(outcome)
            results.append({"name": function.__name__, "ok": True, "detail": ""})
        except Exception as error:  # noqa: BLE001 - every failure becomes a named result
            detail = f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=6)}"
            results.append({"name": function.__name__, "ok": False, "detail": detail})
    print(json.dumps({"library": library, "version": version, "checks": results}, indent=2))
    sys.exit(0 if all(result["ok"] for result in results) else 1)
