// Admin pages of the tenant: users (search, disable and enable, roles, a
// user's wallet) and roles (list, create).

import { h, formatTime, replace, table } from "../dom";
import { busy, clearProblems, field, say, showProblem, status, values } from "../forms";
import { identity } from "../api";
import { describe } from "../errors";
import { UserStatus, type User } from "../gen/authms/identity/v1/identity_pb";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { walletView } from "./wallet";
import { signedIn, type Page } from "./page";

export const usersPage: Page = (ctx) => {
  const who = signedIn(ctx);
  const st = status();
  const results = h("div");
  const detail = h("div", { class: "detail" });
  let query = "";
  let pageToken = "";

  const search = h(
    "form",
    { class: "card search", role: "search", novalidate: true },
    field({ name: "query", label: "Search by email", type: "search", autocomplete: "off" }),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Search")),
  );
  search.addEventListener("submit", (e) => {
    e.preventDefault();
    query = values(search).query.trim();
    pageToken = "";
    clearProblems(search);
    void load();
  });

  const load = async () => {
    say(st, "Loading users…");
    try {
      const res = await identity.listUsers({ tenantId: who.tenantId, query, pageSize: 50, pageToken }, { signal: ctx.signal });
      say(st, res.users.length === 0 ? "No users match." : `${res.users.length} user${res.users.length === 1 ? "" : "s"}${query ? ` matching “${query}”` : ""}.`);
      replace(
        results,
        table(
          "Users of the tenant",
          ["Email", "Status", "Roles", "Created", ""],
          res.users.map((u) => [
            h("span", { class: "email" }, u.email),
            statusBadge(u),
            u.roles.join(", ") || "—",
            formatTime(u.createTime ? timestampDate(u.createTime) : undefined),
            h("button", { type: "button", onclick: () => show(u), "aria-label": `Manage ${u.email}` }, "Manage"),
          ]),
        ),
        res.nextPageToken
          ? h("div", { class: "actions" }, h("button", { type: "button", onclick: () => { pageToken = res.nextPageToken; void load(); } }, "Next page"))
          : null,
      );
    } catch (err) {
      if (!ctx.signal.aborted) showProblem(search, st, err);
    }
  };

  const show = (u: User, said?: string) => {
    const ust = status();
    if (said) say(ust, said, "ok");
    const self = u.id === who.userId;
    const toggle = h(
      "button",
      {
        type: "button",
        disabled: self,
        title: self ? "You cannot disable yourself here." : undefined,
        onclick: async () => {
          try {
            const res = u.status === UserStatus.DISABLED
              ? await identity.enableUser({ tenantId: who.tenantId, userId: u.id })
              : await identity.disableUser({ tenantId: who.tenantId, userId: u.id });
            if (res.user) {
              show(res.user, res.user.status === UserStatus.DISABLED ? `${u.email} is disabled: their sessions end and they cannot log in.` : `${u.email} is enabled again.`);
              void load();
            }
          } catch (err) {
            say(ust, describe(err).message, "error");
          }
        },
      },
      u.status === UserStatus.DISABLED ? "Enable user" : "Disable user",
    );
    const rolesForm = h(
      "form",
      { class: "card", novalidate: true, "aria-label": `Roles of ${u.email}` },
      field({ name: "roles", label: "Roles", value: u.roles.join(", "), hint: "Role names separated by commas; empty removes every role.", format: roleNamesFormat, attrs: { spellcheck: "false" } }),
      h("div", { class: "actions" }, h("button", { type: "submit" }, "Set roles")),
    );
    const rst = status();
    rolesForm.append(rst);
    rolesForm.addEventListener("submit", (e) => {
      e.preventDefault();
      clearProblems(rolesForm);
      const roles = values(rolesForm).roles.split(",").map((r) => r.trim()).filter(Boolean);
      void busy(rolesForm, async () => {
        try {
          const res = await identity.assignRoles({ tenantId: who.tenantId, userId: u.id, roles });
          say(rst, `Roles set: ${res.user?.roles.join(", ") || "none"}.`, "ok");
          void load();
        } catch (err) {
          showProblem(rolesForm, rst, err);
        }
      });
    });
    replace(
      detail,
      h(
        "section",
        { class: "card", "aria-labelledby": "user-detail" },
        h("h2", { id: "user-detail", tabindex: "-1" }, u.email),
        h(
          "dl",
          { class: "summary" },
          h("dt", null, "User ID"), h("dd", null, h("code", null, u.id)),
          h("dt", null, "Status"), h("dd", null, statusBadge(u)),
          h("dt", null, "Email verified"), h("dd", null, u.emailVerified ? "yes" : "no"),
        ),
        h("div", { class: "actions" }, toggle, h("button", { type: "button", onclick: () => replace(detail) }, "Close")),
        ust,
        rolesForm,
        h("h3", null, "Wallet"),
        walletView({ tenantId: who.tenantId, userId: u.id, label: `${u.email}'s wallet`, deposit: true, withdraw: false, signal: ctx.signal }),
      ),
    );
    detail.querySelector<HTMLElement>("h2")?.focus();
  };

  void load();
  return h("section", null, h("h1", { tabindex: "-1" }, "Users"), search, st, results, detail);
};

// What the identity service's patterns for role names and permissions
// (schemas/authms/identity/v1/identity.proto) ask for, in words.
const roleNameFormat = "Use 1 to 63 lower-case letters, digits, _ and -, starting with a letter, such as support-agent.";
const roleNamesFormat = "Each role name is 1 to 63 lower-case letters, digits, _ and -, starting with a letter, such as support-agent.";
const permissionFormat = "Each permission is resource:action in lower-case letters, digits, _ and -, such as wallet:read or profile:*, or * alone.";

function statusBadge(u: User): HTMLElement {
  const disabled = u.status === UserStatus.DISABLED;
  return h("span", { class: `badge ${disabled ? "bad" : "good"}` }, disabled ? "disabled" : "active");
}

export const rolesPage: Page = (ctx) => {
  const who = signedIn(ctx);
  const st = status();
  const list = h("div");

  const load = async () => {
    try {
      const res = await identity.listRoles({ tenantId: who.tenantId }, { signal: ctx.signal });
      replace(
        list,
        table(
          "Roles of the tenant",
          ["Name", "Permissions", "Kind", "Created"],
          res.roles.map((r) => [
            h("strong", null, r.name),
            r.permissions.length ? h("ul", { class: "perms" }, r.permissions.map((p) => h("li", null, h("code", null, p)))) : "—",
            r.builtIn ? "built-in" : "custom",
            formatTime(r.createTime ? timestampDate(r.createTime) : undefined),
          ]),
        ),
      );
    } catch (err) {
      if (!ctx.signal.aborted) say(st, describe(err).message, "error");
    }
  };

  const cst = status();
  const form = h(
    "form",
    { class: "card", novalidate: true, "aria-labelledby": "new-role" },
    h("h2", { id: "new-role" }, "New role"),
    field({ name: "name", label: "Name", required: true, hint: "Lower-case letters, digits, _ and -; starts with a letter.", format: roleNameFormat, attrs: { spellcheck: "false" } }),
    field({ name: "permissions", label: "Permissions", hint: "Separated by commas or spaces, such as wallet:read profile:*.", format: permissionFormat, attrs: { spellcheck: "false" } }),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Create role")),
    cst,
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const v = values(form);
    clearProblems(form);
    const permissions = v.permissions.split(/[\s,]+/).filter(Boolean);
    void busy(form, async () => {
      try {
        const res = await identity.createRole({ tenantId: who.tenantId, name: v.name.trim(), permissions });
        say(cst, `Role ${res.role?.name} created.`, "ok");
        form.reset();
        await load();
      } catch (err) {
        showProblem(form, cst, err);
      }
    });
  });

  void load();
  return h("section", null, h("h1", { tabindex: "-1" }, "Roles"), st, list, form);
};
