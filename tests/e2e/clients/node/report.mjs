// What the Node client scripts share: the gateway they talk to, named checks, and the one
// JSON report `tests/e2e/clients.rs` reads (the same shape as `../report.py`):
//   {"library": "...", "version": "...", "checks": [{"name", "ok", "detail"}]}
// or {"error": "... install ..."} with exit status 2 when a package is missing.
//
// The gateway: route `default` for `gpt-4.1` between mocks `primary` and `candidate` at
// weight 50, sticky on `x-user-id`, gateway keys required. A mock's answer starts
// "Simulated answer from mock NAME.", which names the arm that answered.

import { readFileSync } from "node:fs";

export const BASE_URL = process.env.CUTOVER_BASE_URL;
export const KEY = process.env.CUTOVER_KEY;
export const MODEL = "gpt-4.1";
export const ARMS = ["primary", "candidate"];
// Sticky keys tried in order until both arms answered: a stable hash, so a few suffice.
export const USERS = Array.from({ length: 8 }, (_, n) => `client-user-${n}`);

const checks = [];

export function check(name, body) {
  checks.push({ name, body });
}

export function expect(condition, message) {
  if (!condition) throw new Error(message);
}

/** The mock that wrote `text`, `primary` or `candidate`; throws on anything else. */
export function armOf(text) {
  const found = /^Simulated answer from mock (\w+)\./.exec(text ?? "");
  expect(found && ARMS.includes(found[1]), `not an answer from either mock: ${JSON.stringify(text)}`);
  return found[1];
}

/** Awaits `answerFor(user)` (the text answered to that sticky key) for users until both
 * arms answered; returns {user: arm}. */
export async function bothArms(answerFor) {
  const seen = {};
  for (const user of USERS) {
    seen[user] = armOf(await answerFor(user));
    if (new Set(Object.values(seen)).size === ARMS.length) return seen;
  }
  throw new Error(`at weight 50, users ${Object.keys(seen)} were all answered by ${Object.values(seen)[0]}`);
}

/** Imports npm package `name`, or reports what to install and exits 2. */
export async function need(name) {
  try {
    return await import(name);
  } catch (error) {
    console.log(JSON.stringify({
      error: `the npm package \`${name}\` is missing (${error.message}); run \`npm ci\` in tests/e2e/clients/node`,
    }));
    process.exit(2);
  }
}

/** The installed version of npm package `name`. */
export function versionOf(name) {
  const url = new URL(`./node_modules/${name}/package.json`, import.meta.url);
  return JSON.parse(readFileSync(url, "utf8")).version;
}

/** Runs every check (or those named as arguments) and prints the report. */
export async function run(library, version) {
  const wanted = new Set(process.argv.slice(2));
  const results = [];
  for (const { name, body } of checks) {
    if (wanted.size && !wanted.has(name)) continue;
    try {
      await body();
      results.push({ name, ok: true, detail: "" });
    } catch (error) {
      results.push({ name, ok: false, detail: String(error?.stack ?? error) });
    }
  }
  console.log(JSON.stringify({ library, version, checks: results }, null, 2));
  process.exitCode = results.every((result) => result.ok) ? 0 : 1;
}
