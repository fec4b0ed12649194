// Unit tests of web/src/duration.ts: how the console says a Retry-After.
// Compiled with Vite's TypeScript transform like money.test.mjs.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { transformWithOxc } from "vite";

const here = dirname(fileURLToPath(import.meta.url));
const source = join(here, "..", "src", "duration.ts");
const { code } = await transformWithOxc(await readFile(source, "utf8"), source, { lang: "ts" });
const { humanWait } = await import(`data:text/javascript,${encodeURIComponent(code)}`);

test("waits under a minute are said in seconds", () => {
  assert.equal(humanWait(1), "1 second");
  assert.equal(humanWait(42), "42 seconds");
  assert.equal(humanWait(59), "59 seconds");
  assert.equal(humanWait(0), "1 second", "a wait is at least a second");
  assert.equal(humanWait(0.2), "1 second");
});

test("waits under an hour are said in minutes, rounded up", () => {
  assert.equal(humanWait(60), "1 minute");
  assert.equal(humanWait(61), "2 minutes");
  assert.equal(humanWait(767), "13 minutes");
  assert.equal(humanWait(900), "15 minutes");
  assert.equal(humanWait(3599), "1 hour", "60 minutes rounded up is an hour");
});

test("longer waits are said in hours and minutes", () => {
  assert.equal(humanWait(3600), "1 hour");
  assert.equal(humanWait(3601), "1 hour 1 minute");
  assert.equal(humanWait(5400), "1 hour 30 minutes");
  assert.equal(humanWait(7200), "2 hours");
  assert.equal(humanWait(86400), "24 hours");
});
