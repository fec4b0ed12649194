// Admin pages over the event streams: message counts and consumer lag,
// and the dead letters a service's consumers could not handle, with their
// payload and a re-drive. A tenant admin passes their own tenant_id: the
// counts are the same for everyone, the dead letters only their tenant's.

import { h, formatClock, formatTime, replace, table } from "../dom";
import { say, status } from "../forms";
import { deadLetters, streams } from "../api";
import { describe } from "../errors";
import { RedriveOutcome, type DeadLetter } from "../gen/authms/admin/v1/admin_pb";
import type { StreamInfo } from "../gen/authms/admin/v1/streams_pb";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { signedIn, type Page } from "./page";

function bytes(n: bigint): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = Number(n);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

export const streamsPage: Page = (ctx) => {
  const who = signedIn(ctx);
  const st = status();
  const list = h("div");
  const load = async () => {
    say(st, "Loading streams…");
    try {
      const res = await streams.listStreams({ tenantId: who.tenantId }, { signal: ctx.signal });
      say(st, `${res.streams.length} streams, as of ${formatClock(new Date())}.`);
      replace(list, streamTable(res.streams.filter((s) => !s.deadLetter), "Event streams"), streamTable(res.streams.filter((s) => s.deadLetter), "Dead-letter streams"));
    } catch (err) {
      if (!ctx.signal.aborted) say(st, describe(err).message, "error");
    }
  };
  void load();
  return h(
    "section",
    null,
    h("h1", { tabindex: "-1" }, "Streams"),
    h("div", { class: "actions" }, h("button", { type: "button", onclick: () => void load() }, "Refresh")),
    st,
    list,
  );
};

function streamTable(list: StreamInfo[], caption: string): HTMLElement {
  return table(
    caption,
    ["Stream", "Messages", "Size", "Last sequence", "Last message", "Consumers (lag · unacknowledged)"],
    list.map((s) => [
      h("strong", null, s.name),
      h("span", { class: "num" }, s.messages.toString()),
      bytes(s.bytes),
      s.lastSequence.toString(),
      formatTime(s.lastTime ? timestampDate(s.lastTime) : undefined),
      s.consumers.length === 0
        ? "—"
        : h(
            "ul",
            { class: "consumers" },
            s.consumers.map((c) =>
              h(
                "li",
                { class: c.pending > 0n ? "lagging" : undefined },
                h("code", null, c.name), " ",
                h("span", { class: "num", title: "messages not yet delivered" }, `${c.pending} behind`),
                " · ",
                h("span", { class: "num", title: "delivered, not yet acknowledged" }, `${c.ackPending} unacked`),
                c.paused ? h("span", { class: "badge bad" }, "paused") : null,
              ),
            ),
          ),
    ]),
  );
}

/**
 * hexDump renders bytes that did not decode the way xxd does: offset, 16
 * bytes in hex, and those bytes as ASCII (a dot for the rest), so an
 * operator can tell a truncated message from text or another encoding.
 * Past 4 KiB it stops and says how much it left out.
 */
function hexDump(b: Uint8Array): string {
  const limit = 4096;
  const lines: string[] = [];
  for (let off = 0; off < Math.min(b.length, limit); off += 16) {
    const row = b.subarray(off, Math.min(off + 16, b.length, limit));
    const hex = [...row].map((x) => x.toString(16).padStart(2, "0")).join(" ");
    const text = [...row].map((x) => (x >= 0x20 && x < 0x7f ? String.fromCharCode(x) : ".")).join("");
    lines.push(`${off.toString(16).padStart(8, "0")}  ${hex.padEnd(47)}  ${text}`);
  }
  if (b.length > limit) lines.push(`… ${b.length - limit} more bytes`);
  return lines.join("\n");
}

// Services whose consumers dead-letter; the page also offers every
// DLQ_<SERVICE> stream the server reports.
const knownServices = ["billing", "identity", "profile", "risk", "session", "tenant", "wallet"];

export const deadLettersPage: Page = async (ctx) => {
  const who = signedIn(ctx);
  const st = status();
  const list = h("div");
  const detail = h("div", { class: "detail" });
  let services = knownServices;
  try {
    const res = await streams.listStreams({ tenantId: who.tenantId }, { signal: ctx.signal });
    const dlq = res.streams.filter((s) => s.deadLetter).map((s) => s.name.replace(/^DLQ_/, "").toLowerCase());
    if (dlq.length) services = [...new Set(dlq)].sort();
  } catch {
    // The list of known services serves when streams cannot be listed.
  }
  const selectId = "dlq-service";
  const picker = h(
    "select",
    { id: selectId, name: "service", onchange: () => void load() },
    services.map((s) => h("option", { value: s }, s)),
  );
  const service = () => picker.value;

  const load = async () => {
    replace(detail);
    say(st, `Loading ${service()}'s dead letters…`);
    try {
      const res = await deadLetters.listDeadLetters({ service: service(), tenantId: who.tenantId }, { signal: ctx.signal });
      say(st, res.deadLetters.length === 0 ? `${service()} has no dead letters.` : `${res.deadLetters.length} dead letter${res.deadLetters.length === 1 ? "" : "s"} in ${service()}.`);
      replace(
        list,
        table(
          `Dead letters of ${service()}, oldest first`,
          ["Sequence", "Subject", "Consumer", "Attempts", "Last failure", "Error", ""],
          res.deadLetters.map((d) => [
            d.sequence.toString(),
            h("code", null, d.subject),
            h("code", null, d.consumer),
            String(d.attempts),
            formatTime(d.lastFailureTime ? timestampDate(d.lastFailureTime) : undefined),
            h("span", { class: "error-text" }, d.error, d.permanent ? h("span", { class: "badge bad" }, "permanent") : null),
            h(
              "div",
              { class: "actions tight" },
              h("button", { type: "button", onclick: () => void show(d), "aria-label": `Show dead letter ${d.sequence}` }, "Show"),
              h("button", { type: "button", onclick: () => void redrive(d.sequence), "aria-label": `Redrive dead letter ${d.sequence}` }, "Redrive"),
            ),
          ]),
        ),
        res.deadLetters.length > 0
          ? h("div", { class: "actions" }, h("button", { type: "button", onclick: () => void redrive("all") }, `Redrive all of ${service()}`))
          : null,
      );
    } catch (err) {
      if (!ctx.signal.aborted) say(st, describe(err).message, "error");
    }
  };

  const show = async (d: DeadLetter) => {
    try {
      const res = await deadLetters.getDeadLetter({ service: service(), sequence: d.sequence, tenantId: who.tenantId });
      const dl = res.deadLetter ?? d;
      replace(
        detail,
        h(
          "section",
          { class: "card", "aria-labelledby": "dl-title" },
          h("h2", { id: "dl-title", tabindex: "-1" }, `Dead letter ${dl.sequence} · ${dl.subject}`),
          h(
            "dl",
            { class: "summary" },
            h("dt", null, "Event"), h("dd", null, dl.eventType || "—", " ", h("code", null, dl.eventId)),
            h("dt", null, "Source"), h("dd", null, `${dl.stream} #${dl.streamSequence}`),
            h("dt", null, "Aggregate"), h("dd", null, h("code", null, dl.aggregateId), ` v${dl.aggregateVersion}`),
            h("dt", null, "Consumer"), h("dd", null, h("code", null, dl.consumer)),
            h("dt", null, "Attempts"), h("dd", null, String(dl.attempts)),
            h("dt", null, "First failure"), h("dd", null, formatTime(dl.firstFailureTime ? timestampDate(dl.firstFailureTime) : undefined)),
            h("dt", null, "Last failure"), h("dd", null, formatTime(dl.lastFailureTime ? timestampDate(dl.lastFailureTime) : undefined)),
            h("dt", null, "Error"), h("dd", { class: "error-text" }, dl.error, dl.permanent ? h("span", { class: "badge bad" }, "permanent") : null),
            dl.envelopeError ? [h("dt", null, "Envelope"), h("dd", null, dl.envelopeError)] : null,
          ),
          h("h3", null, "Payload"),
          res.payload
            ? h("pre", { class: "json", tabindex: "0" }, JSON.stringify(res.payload, null, 2))
            : [
                h("p", { class: "error-text" }, res.payloadError || "No payload."),
                res.payloadRaw.length
                  ? h("pre", { class: "json", tabindex: "0", "aria-label": `Raw payload, ${res.payloadRaw.length} bytes` }, hexDump(res.payloadRaw))
                  : null,
              ],
          h("h3", null, "Headers"),
          table("Headers", ["Name", "Values"], res.headers.map((hd) => [h("code", null, hd.name), hd.values.join(", ")]), { hideCaption: true }),
          h("div", { class: "actions" }, h("button", { type: "button", onclick: () => void redrive(dl.sequence) }, "Redrive this one")),
        ),
      );
      detail.querySelector<HTMLElement>("h2")?.focus();
    } catch (err) {
      say(st, describe(err).message, "error");
    }
  };

  const redrive = async (target: bigint | "all") => {
    try {
      const res = await deadLetters.redriveDeadLetters({
        service: service(),
        tenantId: who.tenantId,
        target: target === "all" ? { case: "all", value: true } : { case: "sequence", value: target },
      });
      const count = (o: RedriveOutcome) => res.results.filter((r) => r.outcome === o).length;
      // Each one not applied, with why; a failed one stays under a new
      // sequence, which the reloaded list shows.
      const failed = res.results
        .filter((r) => r.outcome !== RedriveOutcome.APPLIED)
        .map((r) =>
          r.outcome === RedriveOutcome.FAILED
            ? `Dead letter ${r.sequence} failed again and is now dead letter ${r.newSequence}: ${r.error}`
            : `Dead letter ${r.sequence} was skipped: ${r.error || "no reason given"}`,
        );
      await load();
      say(
        st,
        `Redrive: ${count(RedriveOutcome.APPLIED)} applied, ${count(RedriveOutcome.FAILED)} failed again, ${count(RedriveOutcome.SKIPPED)} skipped.${failed.length ? ` ${failed.join(" ")}` : ""}`,
        failed.length ? "error" : "ok",
      );
    } catch (err) {
      say(st, describe(err).message, "error");
    }
  };

  void load();
  return h(
    "section",
    null,
    h("h1", { tabindex: "-1" }, "Dead letters"),
    h("div", { class: "field inline" }, h("label", { for: selectId }, "Service"), picker, h("button", { type: "button", onclick: () => void load() }, "Reload")),
    st,
    list,
    detail,
  );
};
