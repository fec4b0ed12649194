// The tenant's events, live: StreamService.TailEvents, a server stream,
// confined to the admin's tenant. It starts with the streams' latest events,
// shows the newest on top, tells whether it is connected (the server sends
// a heartbeat after 15 quiet seconds, so silence past that means a dead
// connection) and reconnects with a growing pause after a failure, skipping
// the events it has shown already.

import { h, formatTime, replace } from "../dom";
import { say, status } from "../forms";
import { Code, ConnectError } from "@connectrpc/connect";
import { streams } from "../api";
import { describe } from "../errors";
import type { TailedEvent } from "../gen/authms/admin/v1/streams_pb";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { signedIn, type Page } from "./page";

const keep = 200;
const quietLimitMs = 40_000;
const transient = new Set([Code.Unknown, Code.Unavailable, Code.Internal, Code.DeadlineExceeded, Code.Aborted, Code.ResourceExhausted, Code.Canceled]);

export const eventsPage: Page = (ctx) => {
  const who = signedIn(ctx);
  const conn = h("p", { class: "conn", role: "status", "aria-live": "polite", "data-testid": "feed-status" });
  const st = status();
  const list = h("ol", { class: "feed", "aria-label": "Events, newest first", reversed: true });
  // seen holds the ids of the events on the list, cleared those the last
  // Clear removed, so neither a reconnect's repeat of the latest events nor
  // a cleared one comes back; both are bounded by keep.
  const seen = new Set<string>();
  let cleared = new Set<string>();
  let attempt = 0;
  let current: AbortController | null = null;
  let paused = false;

  const setConn = (text: string, kind: "ok" | "error" | "info") => say(conn, text, kind);

  const add = (e: TailedEvent) => {
    const id = `${e.stream}/${e.sequence}`;
    if (seen.has(id) || cleared.has(id)) return;
    seen.add(id);
    const time = e.eventTime ? timestampDate(e.eventTime) : e.storedTime ? timestampDate(e.storedTime) : undefined;
    const item = h(
      "li",
      { class: "event", "data-subject": e.subject },
      h(
        "div",
        { class: "event-head" },
        h("strong", { class: "subject" }, e.subject),
        h("span", { class: "meta" }, `${e.stream} #${e.sequence} · ${formatTime(time)}`),
      ),
      h("div", { class: "meta" }, "aggregate ", h("code", null, e.aggregateId), ` v${e.aggregateVersion}`),
      h(
        "details",
        null,
        h("summary", null, "Payload"),
        e.payload ? h("pre", { class: "json" }, JSON.stringify(e.payload, null, 2)) : h("p", null, e.payloadError || "No payload."),
      ),
    );
    // The first batch arrives stream by stream; placing each event by its
    // time keeps the whole list newest first.
    const at = time?.getTime() ?? Date.now();
    item.dataset.at = String(at);
    item.dataset.id = id;
    const later = [...list.children].find((c) => Number((c as HTMLElement).dataset.at) <= at);
    list.insertBefore(item, later ?? null);
    // Events dropped off the list leave seen too, so it is as small as the
    // list. One that a reconnect sends again is older than every event
    // kept, so it is placed last and dropped again at once.
    while (list.children.length > keep) {
      const gone = list.lastElementChild as HTMLElement | null;
      if (!gone) break;
      seen.delete(gone.dataset.id ?? "");
      gone.remove();
    }
  };

  const run = async () => {
    current?.abort();
    const ac = new AbortController();
    current = ac;
    const stop = () => ac.abort();
    ctx.signal.addEventListener("abort", stop, { once: true });
    let quiet: ReturnType<typeof setTimeout> | undefined;
    const alive = () => {
      clearTimeout(quiet);
      quiet = setTimeout(() => ac.abort(new Error("no event or heartbeat for 40 seconds")), quietLimitMs);
    };
    setConn("Connecting…", "info");
    try {
      alive();
      // The first connection starts with the latest events; a reconnect
      // asks for them again and skips those already shown.
      // Response headers only say the server took the call (an error may
      // still follow in the trailers); the first event or heartbeat says
      // the feed is live.
      const answered = () => setConn("Connected; waiting for the first event or heartbeat…", "info");
      for await (const res of streams.tailEvents({ tenantId: who.tenantId, last: 20 }, { signal: ac.signal, onHeader: answered })) {
        alive();
        if (conn.dataset.kind !== "ok") setConn("Live: connected.", "ok");
        attempt = 0;
        if (res.kind.case === "event") add(res.kind.value);
      }
      if (!ac.signal.aborted) throw new Error("the server ended the feed");
    } catch (err) {
      // A call that a newer run() (Reconnect, Resume) aborted is over: its
      // Canceled must not report a disconnect over the new call's status
      // or count as a failed attempt.
      if (ctx.signal.aborted || paused || current !== ac) return;
      // Retrying helps a dropped connection or a restarting server, not a
      // refusal: those wait for the Reconnect button.
      const code = err instanceof ConnectError ? err.code : undefined;
      if (code !== undefined && !transient.has(code)) {
        setConn(`Disconnected: ${describe(err).message}`, "error");
        return;
      }
      attempt++;
      const wait = Math.min(30, 2 ** Math.min(attempt, 5));
      const why = code === undefined && err instanceof Error ? `${err.message}.` : describe(err).message;
      setConn(`Disconnected: ${why} Reconnecting in ${wait} s.`, "error");
      setTimeout(() => {
        if (!ctx.signal.aborted && !paused && current === ac) void run();
      }, wait * 1000);
    } finally {
      clearTimeout(quiet);
      ctx.signal.removeEventListener("abort", stop);
    }
  };

  const toggle = h("button", { type: "button" }, "Pause");
  toggle.addEventListener("click", () => {
    paused = !paused;
    toggle.textContent = paused ? "Resume" : "Pause";
    if (paused) {
      current?.abort();
      setConn("Paused.", "info");
    } else {
      attempt = 0;
      void run();
    }
  });
  const reconnect = h("button", { type: "button", onclick: () => { paused = false; toggle.textContent = "Pause"; attempt = 0; void run(); } }, "Reconnect");
  const clear = h("button", { type: "button", onclick: () => { replace(list); cleared = new Set(seen); seen.clear(); say(st, "Cleared."); } }, "Clear");

  void run();
  return h(
    "section",
    null,
    h("h1", { tabindex: "-1" }, "Live events"),
    h("p", { class: "aside" }, "Every event of your tenant as it is stored, newest first."),
    conn,
    h("div", { class: "actions" }, toggle, reconnect, clear),
    st,
    list,
  );
};
