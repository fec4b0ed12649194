// The signed-in user's live sessions, with revoke for one and for all the
// others.

import { h, formatTime, replace, table } from "../dom";
import { say, status } from "../forms";
import { sessions } from "../api";
import { auth } from "../auth";
import { describe } from "../errors";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { signedIn, type Page } from "./page";

export const sessionsPage: Page = (ctx) => {
  const who = signedIn(ctx);
  const st = status();
  const list = h("div");
  const ids = { tenantId: who.tenantId, userId: who.userId };

  const load = async () => {
    try {
      const res = await sessions.listSessions(ids, { signal: ctx.signal });
      replace(
        list,
        table(
          "Your live sessions, newest first",
          ["Started", "Last refresh", "Ends", "Address", "Browser", ""],
          res.sessions.map((s) => [
            formatTime(s.createTime ? timestampDate(s.createTime) : undefined),
            formatTime(s.refreshTime ? timestampDate(s.refreshTime) : undefined),
            formatTime(s.expireTime ? timestampDate(s.expireTime) : undefined),
            s.ip || "—",
            h("span", { class: "ua", title: s.userAgent }, s.userAgent || "—"),
            s.id === who.sessionId
              ? h("span", { class: "badge" }, "this session")
              : h("button", { type: "button", onclick: () => void revoke(s.id) }, "Revoke"),
          ]),
        ),
      );
    } catch (err) {
      if (!ctx.signal.aborted) say(st, describe(err).message, "error");
    }
  };

  const revoke = async (sessionId: string) => {
    try {
      const res = await sessions.revokeSession({ ...ids, sessionId });
      say(st, res.wasActive ? "Session revoked." : "That session had already ended.", "ok");
      await load();
    } catch (err) {
      say(st, describe(err).message, "error");
    }
  };

  const revokeOthers = async () => {
    try {
      const res = await sessions.revokeAllSessions({ ...ids, exceptSessionId: who.sessionId });
      say(st, `Revoked ${res.revoked} other session${res.revoked === 1 ? "" : "s"}.`, "ok");
      await load();
    } catch (err) {
      say(st, describe(err).message, "error");
    }
  };

  void load();
  return h(
    "section",
    null,
    h("h1", { tabindex: "-1" }, "Sessions"),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "button", onclick: () => void revokeOthers() }, "Revoke all other sessions"),
      h("button", { type: "button", onclick: () => void auth.logout().finally(() => ctx.navigate("/login")) }, "Log out of this session"),
    ),
    st,
    list,
  );
};
