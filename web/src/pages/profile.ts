// The signed-in user's profile: display name, locale and time zone.

import { h, setTimeZone } from "../dom";
import { busy, clearProblems, field, say, showProblem, status, values } from "../forms";
import { profiles } from "../api";
import { describe } from "../errors";
import { signedIn, type Page } from "./page";
import type { Profile } from "../gen/authms/profile/v1/profile_pb";

export const profilePage: Page = async (ctx) => {
  const who = signedIn(ctx);
  const st = status();
  let profile: Profile | undefined;
  try {
    profile = (await profiles.getProfile({ tenantId: who.tenantId, userId: who.userId }, { signal: ctx.signal })).profile;
  } catch (err) {
    return h("section", null, h("h1", { tabindex: "-1" }, "Profile"), h("p", { class: "status", "data-kind": "error", role: "alert" }, describe(err).message));
  }
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  const summary = h("dl", { class: "summary" });
  const show = (p: Profile | undefined) => {
    setTimeZone(p?.timezone);
    summary.replaceChildren(
      h("dt", null, "Email"), h("dd", null, who.email),
      h("dt", null, "User ID"), h("dd", null, h("code", null, who.userId)),
      h("dt", null, "Display name"), h("dd", { "data-testid": "display-name" }, p?.displayName || "—"),
      h("dt", null, "Locale"), h("dd", null, p?.locale || "—"),
      h("dt", null, "Time zone"), h("dd", null, p?.timezone || "—"),
    );
  };
  show(profile);
  const form = h(
    "form",
    { class: "card", novalidate: true, "aria-labelledby": "profile-edit" },
    h("h2", { id: "profile-edit" }, "Edit"),
    field({ name: "display_name", label: "Display name", value: profile?.displayName, autocomplete: "name", attrs: { maxlength: "100" } }),
    field({ name: "locale", label: "Locale", value: profile?.locale, hint: "A language tag such as en or pt-BR.", format: "Use a BCP 47 language tag: a lower-case language, then optional parts after hyphens, such as en, en-US or pt-BR.", attrs: { spellcheck: "false" } }),
    field({ name: "timezone", label: "Time zone", value: profile?.timezone, list: "zones", hint: "An IANA name such as Europe/Berlin.", attrs: { spellcheck: "false" } }),
    h("datalist", { id: "zones" }, zones.map((z) => h("option", { value: z }))),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Save profile")),
    st,
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const v = values(form);
    clearProblems(form);
    say(st, "Saving…");
    void busy(form, async () => {
      try {
        // Only changed attributes are sent, each an optional field, and
        // the version read makes a concurrent edit ABORTED, not lost.
        const res = await profiles.updateProfile({
          tenantId: who.tenantId,
          userId: who.userId,
          displayName: v.display_name !== (profile?.displayName ?? "") ? v.display_name : undefined,
          locale: v.locale !== (profile?.locale ?? "") ? v.locale : undefined,
          timezone: v.timezone !== (profile?.timezone ?? "") ? v.timezone : undefined,
          expectedVersion: profile?.version ? profile.version : undefined,
        });
        profile = res.profile;
        show(profile);
        say(st, "Profile saved.", "ok");
      } catch (err) {
        showProblem(form, st, err);
      }
    });
  });
  return h("section", null, h("h1", { tabindex: "-1" }, "Profile"), h("div", { class: "card" }, summary), form);
};
