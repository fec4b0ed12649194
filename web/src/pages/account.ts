// Sign up and log in. Both are public calls with the tenant in the
// request; the tenant field is prefilled with the one authms dev suggests
// (/console/config.json).

import { h } from "../dom";
import { busy, clearProblems, field, say, showProblem, status, values } from "../forms";
import { consoleConfig, identity, type TenantInfo } from "../api";
import { auth } from "../auth";
import type { Page } from "./page";

// Remembered between the two pages (memory only) so a new user does not
// type their address twice.
let lastEmail = "";
let lastTenant = "";
// notice is shown once by the login page: what sign-up has done.
let notice = "";

async function tenantField(): Promise<HTMLElement> {
  const cfg = await consoleConfig();
  const t: TenantInfo | undefined = cfg.tenant;
  const hint = t?.id
    ? `Prefilled with the development tenant ${t.name ?? ""}${t.slug ? ` (${t.slug})` : ""}.`
    : "The id (a UUID) of your organisation's tenant.";
  return field({ name: "tenant_id", label: "Tenant ID", value: lastTenant || t?.id || "", required: true, autocomplete: "organization", hint, attrs: { spellcheck: "false" } });
}

// emailShape is the console's own check of an address: something, an
// "@", something with a dot. It only lets a sign-up name a mistyped
// address together with the server's other problems; the server decides.
const emailShape = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

export const loginPage: Page = async (ctx) => {
  const st = status();
  if (notice) {
    say(st, notice, "ok");
    notice = "";
  } else if (ctx.notice) {
    say(st, ctx.notice, "info");
  }
  const form = h(
    "form",
    { class: "card narrow", novalidate: true, "aria-labelledby": "login-title" },
    await tenantField(),
    field({ name: "email", label: "Email", type: "email", value: lastEmail, required: true, autocomplete: "username" }),
    field({ name: "password", label: "Password", type: "password", required: true, autocomplete: "current-password" }),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Log in")),
    st,
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const v = values(form);
    clearProblems(form);
    say(st, "Logging in…");
    void busy(form, async () => {
      try {
        await auth.login(v.tenant_id.trim(), v.email.trim(), v.password);
        lastTenant = v.tenant_id.trim();
        ctx.navigate(ctx.next ?? "/profile");
      } catch (err) {
        showProblem(form, st, err);
      }
    });
  });
  return h(
    "section",
    null,
    h("h1", { id: "login-title", tabindex: "-1" }, "Log in"),
    form,
    h("p", { class: "aside" }, "No account yet? ", h("a", { href: "/signup", "data-link": true }, "Sign up")),
  );
};

export const signupPage: Page = async (ctx) => {
  const st = status();
  const form = h(
    "form",
    { class: "card narrow", novalidate: true, "aria-labelledby": "signup-title" },
    await tenantField(),
    field({ name: "email", label: "Email", type: "email", required: true, autocomplete: "email" }),
    field({ name: "password", label: "Password", type: "password", required: true, autocomplete: "new-password", hint: "12 to 128 characters; not a common password, and not your address." }),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Create account")),
    st,
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const v = values(form);
    clearProblems(form);
    say(st, "Creating your account…");
    void busy(form, async () => {
      try {
        await identity.registerUser({ tenantId: v.tenant_id.trim(), email: v.email.trim(), password: v.password });
        lastEmail = v.email.trim();
        lastTenant = v.tenant_id.trim();
        // Registration is enumeration-safe: a taken address is answered
        // like a new one, and its owner is told instead. So the notice
        // must be true of both: it never says an account was created.
        notice = "Thanks. If this address can be used, your account is ready: log in with it. If you already had an account, log in with your existing password.";
        ctx.navigate("/login");
      } catch (err) {
        const email = v.email.trim();
        showProblem(form, st, err, emailShape.test(email) ? [] : [{ field: "email", message: email ? "Enter an address such as name@example.com." : "Required." }]);
      }
    });
  });
  return h(
    "section",
    null,
    h("h1", { id: "signup-title", tabindex: "-1" }, "Sign up"),
    form,
    h("p", { class: "aside" }, "Have an account? ", h("a", { href: "/login", "data-link": true }, "Log in")),
  );
};
