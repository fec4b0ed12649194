// Unit tests of web/src/money.ts: the minor-unit exponents the console
// types and reads amounts with. money.ts has no imports, so it is
// compiled here with Vite's own TypeScript transform (oxc) and imported
// from a data: URL; no build step or separate compiler is needed.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { transformWithOxc } from "vite";

const here = dirname(fileURLToPath(import.meta.url));
const source = join(here, "..", "src", "money.ts");
const { code } = await transformWithOxc(await readFile(source, "utf8"), source, { lang: "ts" });
const { currencies, formatMoney, minorDigits, parseMoney } = await import(`data:text/javascript,${encodeURIComponent(code)}`);

test("the exponents are ISO 4217's, not Intl's", () => {
  // HUF and IDR have 2 minor digits in ISO 4217, 0 in ICU's currency data.
  assert.equal(minorDigits("HUF"), 2);
  assert.equal(minorDigits("IDR"), 2);
  assert.equal(minorDigits("USD"), 2);
  assert.equal(minorDigits("JPY"), 0);
  assert.equal(minorDigits("KRW"), 0);
  // The wallet accepts no 3-decimal currency (BHD, KWD, …): none is known.
  assert.equal(minorDigits("BHD"), undefined);
  assert.equal(minorDigits("toString"), undefined, "only the table's own keys count");
});

test("parseMoney counts typed amounts in ISO 4217 minor units", () => {
  assert.equal(parseMoney("100", "HUF"), 10000n);
  assert.equal(parseMoney("100,5", "HUF"), 10050n);
  assert.equal(parseMoney("12.34", "USD"), 1234n);
  assert.equal(parseMoney("12.3", "USD"), 1230n);
  assert.equal(parseMoney("100", "JPY"), 100n);
  assert.equal(parseMoney("100", "KRW"), 100n);
  assert.equal(parseMoney("1.5", "JPY"), "JPY has no minor units.");
  assert.equal(parseMoney("1.234", "USD"), "At most 2 decimals for USD.");
  assert.equal(parseMoney("0.00", "USD"), "Enter an amount greater than zero.");
  assert.equal(parseMoney("1e3", "USD"), "Enter an amount such as 12.50.");
  assert.equal(parseMoney("1.000", "BHD"), "The wallet does not accept BHD.");
});

test("formatMoney reads minor units back the way they were typed", () => {
  // en-US puts a no-break space between the code and the amount.
  assert.equal(formatMoney(10000n, "HUF", "en-US"), "HUF\u00a0100.00");
  assert.equal(formatMoney(123456789n, "USD", "en-US"), "$1,234,567.89");
  assert.equal(formatMoney(-5n, "USD", "en-US"), "-$0.05");
  assert.equal(formatMoney(100n, "JPY", "en-US"), "¥100");
  assert.equal(formatMoney(100n, "KRW", "en-US"), "₩100");
  // Beyond a float's 2^53: no amount goes through a Number.
  assert.equal(formatMoney(9007199254740993n, "USD", "en-US"), "$90,071,992,547,409.93");
  assert.equal(formatMoney(1234n, "BHD", "en-US"), "1234 BHD (minor units)");
  for (const c of currencies) {
    const typed = minorDigits(c) === 0 ? "42" : "42.07";
    const minor = parseMoney(typed, c);
    assert.equal(typeof minor, "bigint", c);
    assert.match(formatMoney(minor, c, "en-US"), new RegExp(typed.replace(".", "\\.")), c);
  }
});

test("the table holds exactly the currencies the wallet accepts", async () => {
  const proto = await readFile(join(here, "..", "..", "schemas", "authms", "wallet", "v1", "wallet.proto"), "utf8");
  const lists = [...proto.matchAll(/string currency = \d+ \[\(buf\.validate\.field\)\.string = \{\s*in: \[([^\]]*)\]/g)].map((m) =>
    [...m[1].matchAll(/"([A-Z]{3})"/g)].map((c) => c[1]).sort(),
  );
  assert.equal(lists.length, 2, "Deposit and Withdraw each list their currencies");
  for (const list of lists) assert.deepEqual(list, currencies);
});
