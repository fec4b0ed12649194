// The console in a real browser against a real `authms dev`: a new user
// signs up, logs in (by keyboard), edits their profile with a field error
// first; the tenant's bootstrap admin finds them, deposits into their
// wallet while watching the live event feed; the user withdraws; the feed
// shows both wallet events; the admin disables the user, who then cannot
// log in. Once over the Connect protocol and once over gRPC-web. Apart from
// that: the APIs answer a page of an allowed origin and refuse one of
// another (the server answers its calls 403, with no effect), and no page
// scrolls sideways at 375 px. authms is started with only the allowed
// page's origin in its allow-list, so the console itself runs same-origin,
// as it is deployed by default.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { consoleConfig, devAdmin, launch, shot, startAuthms, until, staticServer } from "./harness.mjs";

const page = "<!doctype html><html lang=en><meta charset=utf-8><title>another origin</title><p>A page of another origin.</p></html>";
let authms;
let allowed;
let refused;
let tenant;
let admin;

before(async () => {
  allowed = await staticServer(page);
  refused = await staticServer(page);
  authms = await startAuthms({ corsOrigins: [allowed.origin] });
  tenant = (await consoleConfig(authms)).tenant;
  assert.ok(tenant?.id, "authms dev suggests its dev tenant in /console/config.json");
  admin = await devAdmin(authms);
});

after(async () => {
  await authms?.stop();
  await allowed?.close();
  await refused?.close();
});

async function heading(p, text) {
  await p.getByRole("heading", { level: 1, name: text }).waitFor({ timeout: 30_000 });
}

async function nav(p, name) {
  await p.getByRole("navigation", { name: "Main" }).getByRole("link", { name, exact: true }).click();
}

async function login(p, email, password) {
  await heading(p, "Log in");
  await p.getByLabel("Email").fill(email);
  await p.getByLabel("Password").fill(password);
  await p.getByRole("button", { name: "Log in" }).click();
  await heading(p, "Profile");
}

// narrow visits pages at 375 px: each must fit without sideways scrolling.
async function narrow(p, names) {
  await p.setViewportSize({ width: 375, height: 812 });
  for (const name of names) {
    await p.getByRole("navigation", { name: "Main" }).getByRole("link", { name, exact: true }).click();
    await heading(p, name);
    await p.waitForFunction(() => document.querySelector("main .table-wrap, main .feed, main .summary, main [data-kind=error]"));
    await noSideScroll(p, name);
    await shot(p, `375-${name.toLowerCase().replace(/ /g, "-")}`);
  }
  await p.setViewportSize({ width: 1280, height: 900 });
}

async function noSideScroll(p, what) {
  const { scroll, client } = await p.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
  assert.ok(scroll <= client, `${what} scrolls sideways at ${client} px: ${scroll} px wide`);
}

for (const transport of ["connect", "grpc-web"]) {
  test(`a user and the tenant admin over ${transport}`, { timeout: 240_000 }, async () => {
    const tag = transport.replace(/[^a-z]/g, "");
    const email = `user-${randomBytes(4).toString("hex")}@example.com`;
    const password = `long enough password ${randomBytes(3).toString("hex")}`;
    const user = await launch();
    const boss = await launch();
    try {
      // Sign up. The tenant is prefilled from /console/config.json.
      const u = await user.context.newPage();
      await u.goto(`${authms.url}/signup?transport=${transport}`);
      await heading(u, "Sign up");
      assert.equal(await u.getByLabel("Tenant ID").inputValue(), tenant.id);
      assert.equal(await u.getByTestId("transport").textContent(), `Transport: ${transport === "grpc-web" ? "gRPC-web" : "Connect"}`);
      await u.getByLabel("Email").fill("not-an-email");
      await u.getByLabel("Password").fill("short");
      await u.getByRole("button", { name: "Create account" }).click();
      // The server's field violation (the password) and the console's own
      // check of the address's shape, both at once under their inputs.
      await u.locator('[data-field="password"] .field-error:not([hidden])').waitFor();
      assert.equal(await u.locator('[data-field="email"] .field-error').textContent(), "Enter an address such as name@example.com.");
      await shot(u, `${tag}-01-signup-error`);
      await u.getByLabel("Email").fill(email);
      await u.getByLabel("Password").fill(password);
      await u.getByRole("button", { name: "Create account" }).click();
      await heading(u, "Log in");
      await until(u, () => document.querySelector("[role=status]")?.textContent?.startsWith("Thanks. If this address can be used, your account is ready"), null, "sign-up notice");
      assert.equal(await u.getByLabel("Email").inputValue(), email);
      await shot(u, `${tag}-02-login`);

      // Log in by keyboard: from the password, Tab reaches the button and
      // Enter presses it.
      await u.getByLabel("Password").fill(password);
      await u.keyboard.press("Tab");
      assert.equal(await u.evaluate(() => document.activeElement?.textContent), "Log in");
      await u.keyboard.press("Enter");
      await heading(u, "Profile");
      assert.equal(await u.evaluate(() => localStorage.length + document.cookie.length), 0, "tokens stay in memory");

      // Profile: an invalid locale is refused with the field named, then a
      // good edit is saved.
      await u.getByLabel("Display name").fill("Ada Lovelace");
      await u.getByLabel("Locale").fill("Not A Locale");
      await u.getByRole("button", { name: "Save profile" }).click();
      await u.locator('[data-field="locale"] .field-error:not([hidden])').waitFor();
      assert.match(await u.locator('[data-field="locale"] .field-error').textContent(), /BCP 47 language tag/);
      await shot(u, `${tag}-03-profile-error`);
      await u.getByLabel("Locale").fill("pt-BR");
      await u.getByLabel("Time zone").fill("America/Sao_Paulo");
      await u.getByRole("button", { name: "Save profile" }).click();
      await until(u, () => document.querySelector('[data-testid="display-name"]')?.textContent === "Ada Lovelace", null, "saved profile");
      await shot(u, `${tag}-04-profile`);
      const userId = await u.locator(".summary code").first().textContent();
      assert.match(userId, /^[0-9a-f-]{36}$/);

      // The admin, in another browser, watches the feed in one tab and
      // manages users in another (each tab is its own session: tokens
      // live in the page's memory).
      const feed = await boss.context.newPage();
      await feed.goto(`${authms.url}/login?transport=${transport}`);
      await login(feed, admin.email, admin.password);
      await nav(feed, "Live events");
      await heading(feed, "Live events");
      await until(feed, () => document.querySelector('[data-testid="feed-status"]')?.textContent?.startsWith("Live"), null, "feed connected");

      const a = await boss.context.newPage();
      await a.goto(`${authms.url}/login?transport=${transport}`);
      await login(a, admin.email, admin.password);
      await nav(a, "Users");
      await heading(a, "Users");
      await a.getByLabel("Search by email").fill(email.split("@")[0]);
      await a.getByRole("button", { name: "Search" }).click();
      await a.getByRole("button", { name: `Manage ${email}` }).click();
      await a.getByRole("heading", { level: 2, name: email }).waitFor();
      await until(a, () => document.querySelector('[data-testid="balance"]')?.textContent === "No money yet.", null, "user's empty wallet");
      const deposit = a.getByRole("form", { name: `Deposit (${email}'s wallet)` });
      await deposit.getByLabel("Currency").selectOption("EUR");
      await deposit.getByLabel("Amount").fill("25.00");
      await deposit.getByRole("button", { name: "Deposit" }).click();
      await until(a, () => document.querySelector('[data-testid="balance"]')?.textContent?.includes("25.00"), null, "deposit shown");
      await shot(a, `${tag}-05-admin-user`);

      // The user withdraws part of it, and cannot overdraw.
      await nav(u, "Wallet");
      await heading(u, "Wallet");
      await until(u, () => document.querySelector('[data-testid="balance"]')?.textContent?.includes("25.00"), null, "user sees the deposit");
      assert.equal(await u.getByRole("form", { name: /^Deposit/ }).count(), 0, "a plain user has no deposit form");
      const withdraw = u.getByRole("form", { name: "Withdraw (your wallet)" });
      await withdraw.getByLabel("Amount").fill("100");
      await withdraw.getByRole("button", { name: "Withdraw" }).click();
      await until(u, () => document.querySelector('form[aria-label^="Withdraw"] [role=status]')?.getAttribute("data-kind") === "error", null, "overdraft refused");
      await withdraw.getByLabel("Amount").fill("10.50");
      await withdraw.getByRole("button", { name: "Withdraw" }).click();
      await until(u, () => document.querySelector('[data-testid="balance"]')?.textContent?.includes("14.50"), null, "withdrawal shown");
      await until(u, () => document.querySelectorAll(".history tbody tr").length === 2, null, "two transactions in the history");
      // Times are in the profile's zone, not the browser's: the newest
      // transaction's time is what São Paulo's clock read within the last
      // ten minutes.
      const zoned = await u.evaluate(() => {
        const cell = document.querySelector(".history tbody tr td")?.textContent;
        const at = (t, timeZone) => new Date(t).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium", timeZone });
        const now = Math.floor(Date.now() / 1000) * 1000;
        let found = false;
        for (let t = now + 1000; t > now - 600_000 && !found; t -= 1000) found = at(t, "America/Sao_Paulo") === cell;
        return { found, cell, browser: Intl.DateTimeFormat().resolvedOptions().timeZone };
      });
      assert.notEqual(zoned.browser, "America/Sao_Paulo", "the browser's own zone would prove nothing");
      assert.ok(zoned.found, `a transaction at ${zoned.cell} is not in the profile's zone`);
      await shot(u, `${tag}-06-wallet`);

      await nav(u, "Sessions");
      await heading(u, "Sessions");
      await u.getByText("this session", { exact: true }).waitFor();
      await shot(u, `${tag}-07-sessions`);
      if (transport === "connect") await narrow(u, ["Profile", "Wallet", "Sessions"]);

      // The feed shows both of this user's wallet transactions (their
      // payloads name the user).
      await until(
        feed,
        (id) => [...document.querySelectorAll('.event[data-subject="wallet.transaction.completed"]')].filter((e) => e.textContent.includes(id)).length === 2,
        userId,
        "the user's wallet events in the feed",
      );
      await shot(feed, `${tag}-08-live-events`);

      // Admin pages over the streams.
      await nav(a, "Streams");
      await heading(a, "Streams");
      await a.getByRole("region", { name: "Event streams" }).getByText("WALLET", { exact: true }).waitFor();
      await shot(a, `${tag}-09-streams`);
      await nav(a, "Dead letters");
      await heading(a, "Dead letters");
      await until(a, () => /dead letter/.test(document.querySelector("main [role=status]")?.textContent ?? ""), null, "dead letters listed");
      await shot(a, `${tag}-10-dead-letters`);
      await nav(a, "Roles");
      await heading(a, "Roles");
      await a.getByRole("region", { name: "Roles of the tenant" }).getByText("admin", { exact: true }).waitFor();
      // A malformed role name and permission each say what is expected.
      await a.getByLabel("Name").fill("Bad Name!");
      await a.getByLabel("Permissions").fill("wallet.read");
      await a.getByRole("button", { name: "Create role" }).click();
      await a.locator('[data-field="permissions"] .field-error:not([hidden])').waitFor();
      assert.match(await a.locator('[data-field="name"] .field-error').textContent(), /^Use 1 to 63 lower-case letters/);
      assert.match(await a.locator('[data-field="permissions"] .field-error').textContent(), /resource:action/);
      await shot(a, `${tag}-11-roles`);

      // The admin disables the user; the user can no longer log in.
      await nav(a, "Users");
      await heading(a, "Users");
      await a.getByLabel("Search by email").fill(email);
      await a.getByRole("button", { name: "Search" }).click();
      await a.getByRole("button", { name: `Manage ${email}` }).click();
      await a.getByRole("button", { name: "Disable user" }).click();
      await a.getByRole("button", { name: "Enable user" }).waitFor();
      await shot(a, `${tag}-12-user-disabled`);

      // The admin's feed tab is another session of theirs: revoke one.
      await nav(a, "Sessions");
      await heading(a, "Sessions");
      await a.getByRole("button", { name: "Revoke", exact: true }).first().click();
      await until(a, () => document.querySelector("main [role=status]")?.textContent === "Session revoked.", null, "session revoked");
      await shot(a, `${tag}-14-admin-sessions`);

      await u.getByRole("button", { name: "Log out", exact: true }).click();
      await heading(u, "Log in");
      await u.getByLabel("Email").fill(email);
      await u.getByLabel("Password").fill(password);
      await u.getByRole("button", { name: "Log in" }).click();
      await until(u, () => /invalid email or password/i.test(document.querySelector("[role=status]")?.textContent ?? ""), null, "disabled user refused");
      await shot(u, `${tag}-13-login-refused`);

      if (transport === "connect") {
        // Failed logins lock the address out; the refusal says for how
        // long, in minutes, not as a missing permission.
        const stranger = `locked-${randomBytes(4).toString("hex")}@example.com`;
        let said = "";
        for (let i = 0; i < 10 && !said.startsWith("Too many attempts."); i++) {
          await u.getByLabel("Email").fill(stranger);
          await u.getByLabel("Password").fill(`wrong password ${i}`);
          await u.getByRole("button", { name: "Log in" }).click();
          await until(u, () => !document.querySelector("form[aria-busy]"), null, "login answered");
          said = await u.locator("form [role=status]").textContent();
        }
        assert.match(said, /^Too many attempts\. Try again in \d+ (minutes?|seconds?|hours?)( \d+ minutes?)?\.$/);
        await shot(u, `${tag}-15-login-locked`);

        // A deep link while logged out asks to log in, then opens the page
        // asked for; a next= that is not a page of the console is ignored.
        const deep = await boss.context.newPage();
        await deep.goto(`${authms.url}/admin/roles`);
        await heading(deep, "Log in");
        assert.equal(new URL(deep.url()).search, "?next=/admin/roles");
        assert.equal(await deep.locator("form [role=status]").textContent(), "Log in to continue.");
        await shot(deep, `${tag}-16-login-deep-link`);
        await deep.getByLabel("Email").fill(admin.email);
        await deep.getByLabel("Password").fill(admin.password);
        await deep.getByRole("button", { name: "Log in" }).click();
        await heading(deep, "Roles");

        // When the server ends that session (here: the admin revokes all
        // their other sessions), the next call lands on the login page,
        // told why, and logging in comes back. Revocations reach the API
        // services asynchronously, so it takes a few clicks at most.
        await nav(a, "Sessions");
        await heading(a, "Sessions");
        await a.getByRole("button", { name: "Revoke all other sessions" }).click();
        await until(a, () => /^Revoked \d+ other session/.test(document.querySelector("main [role=status]")?.textContent ?? ""), null, "other sessions revoked");
        let out = false;
        for (let i = 0; i < 20 && !out; i++) {
          await nav(deep, i % 2 ? "Roles" : "Users");
          out = await deep.getByRole("heading", { level: 1, name: "Log in" }).waitFor({ timeout: 1_500 }).then(() => true, () => false);
        }
        assert.ok(out, "a revoked session ends in the console");
        assert.equal(await deep.locator("form [role=status]").textContent(), "Your session ended. Log in again.");
        const back = new URL(deep.url()).searchParams.get("next");
        assert.ok(back === "/admin/users" || back === "/admin/roles", `next=${back}`);
        await shot(deep, `${tag}-17-login-session-ended`);
        await deep.getByLabel("Email").fill(admin.email);
        await deep.getByLabel("Password").fill(admin.password);
        await deep.getByRole("button", { name: "Log in" }).click();
        await heading(deep, back === "/admin/users" ? "Users" : "Roles");

        await deep.goto(`${authms.url}/login?next=//evil.example/admin/roles`);
        await login(deep, admin.email, admin.password);
        assert.equal(new URL(deep.url()).origin, authms.url);

        await narrow(a, ["Users", "Roles", "Streams", "Dead letters", "Live events"]);
        await u.setViewportSize({ width: 375, height: 812 });
        await noSideScroll(u, "Log in");
        await shot(u, "375-login");
      }
    } finally {
      await user.close();
      await boss.close();
    }
  });
}

// rpc calls a Connect method with JSON from Node (no Origin unless given).
async function rpc(method, body, headers = {}) {
  const res = await fetch(`${authms.url}/${method}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "Connect-Protocol-Version": "1", ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, body: json };
}

test("the APIs answer an allowed origin and refuse another, in the browser and on the server", { timeout: 120_000 }, async () => {
  const browser = await launch();
  try {
    const call = async (origin) => {
      const p = await browser.context.newPage();
      await p.goto(origin);
      return p.evaluate(async ({ api, body }) => {
        try {
          const res = await fetch(`${api}/authms.session.v1.SessionService/Login`, {
            method: "POST",
            headers: { "Content-Type": "application/json", "Connect-Protocol-Version": "1" },
            body: JSON.stringify(body),
          });
          const json = await res.json();
          return { ok: res.ok, session: Boolean(json.session?.id), code: json.code };
        } catch (err) {
          return { refused: String(err) };
        }
      }, { api: authms.url, body: { tenantId: tenant.id, email: admin.email, password: admin.password } });
    };
    const ok = await call(allowed.origin);
    assert.deepEqual(ok, { ok: true, session: true, code: undefined }, "an allowed origin logs in");

    // What the refused origin could change, read without an Origin header
    // (a non-browser client) before and after its calls.
    const signed = await rpc("authms.session.v1.SessionService/Login", { tenantId: tenant.id, email: admin.email, password: admin.password });
    assert.equal(signed.status, 200, JSON.stringify(signed.body));
    const userId = signed.body.session.userId;
    const bearer = { Authorization: `Bearer ${signed.body.tokens.accessToken}` };
    const effects = async () => {
      const s = await rpc("authms.session.v1.SessionService/ListSessions", { tenantId: tenant.id, userId }, bearer);
      const w = await rpc("authms.wallet.v1.WalletService/GetWallet", { tenantId: tenant.id, userId }, bearer);
      assert.equal(s.status, 200, JSON.stringify(s.body));
      // The wallet may not exist yet when this test runs alone right after
      // the bootstrap (it is created from identity.user.created): no CHF.
      assert.ok(w.status === 200 || w.body?.code === "not_found", JSON.stringify(w.body));
      return { sessions: (s.body.sessions ?? []).length, chf: (w.body.wallet?.balances ?? []).find((b) => b.currency === "CHF")?.amount ?? "0" };
    };
    const before = await effects();

    const no = await call(refused.origin);
    assert.match(no.refused ?? JSON.stringify(no), /TypeError|Failed to fetch/, "the browser refuses another origin's call");
    // The server refuses it too, whoever sends it: a preflight, a login and
    // an admin's deposit with the refused Origin get 403 without CORS
    // headers, before they reach the services.
    const from = { Origin: refused.origin };
    const preflight = await fetch(`${authms.url}/authms.session.v1.SessionService/Login`, {
      method: "OPTIONS",
      headers: { ...from, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,connect-protocol-version" },
    });
    assert.equal(preflight.status, 403, "a preflight from another origin is refused");
    assert.equal(preflight.headers.get("access-control-allow-origin"), null);
    const login = await rpc("authms.session.v1.SessionService/Login", { tenantId: tenant.id, email: admin.email, password: admin.password }, from);
    assert.equal(login.status, 403, "a login from another origin is refused");
    assert.equal(login.headers.get("access-control-allow-origin"), null);
    assert.match(login.text, /cross-origin request refused/);
    const deposit = await rpc(
      "authms.wallet.v1.WalletService/Deposit",
      { tenantId: tenant.id, userId, currency: "CHF", amount: "100", idempotencyKey: `cors-${randomBytes(8).toString("hex")}` },
      { ...from, ...bearer },
    );
    assert.equal(deposit.status, 403, "an admin's deposit from another origin is refused");
    assert.deepEqual(await effects(), before, "the refused calls opened no session and deposited nothing");

    // The console's own origin needs no allow-list entry (authms was
    // started with only the allowed page's origin): same-origin passes.
    const own = await rpc("authms.wallet.v1.WalletService/GetWallet", { tenantId: tenant.id, userId }, { Origin: authms.url, ...bearer });
    assert.ok(own.status === 200 || own.body?.code === "not_found", `the service answers its own origin: ${own.status} ${own.text}`);
  } finally {
    await browser.close();
  }
});
