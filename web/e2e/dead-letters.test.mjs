// The Dead letters page against a real dead letter: the test publishes a
// poison event straight to the IDENTITY stream of its own `authms dev`, as
// a broken publisher would, with a well-formed envelope in the dev tenant
// but a payload that is not protobuf. billing's user_profiles projector,
// the only consumer of identity.user.email_changed, cannot decode it,
// marks the failure permanent and dead-letters it into DLQ_BILLING at
// once. The tenant's admin then lists it, opens it (headers, error, the
// raw payload), and re-drives it: the handler fails again, so the page
// must say FAILED with the error, and the dead letter stays under a new
// sequence with one more attempt, as admin.proto promises. The admin reads
// the failure's category, never billing's error text: only the payload's
// own decoding error, which describes the bytes shown, is spelled out.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { connect, headers } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { consoleConfig, devAdmin, launch, shot, startAuthms, until } from "./harness.mjs";

const subject = "identity.user.email_changed";
const consumer = "billing_user_profiles";
// Not protobuf: 't' (0x74) opens field 14 with wire type 4, an end-group
// marker with no group open, so proto.Unmarshal refuses the first byte.
const poison = new TextEncoder().encode("this is not a protobuf message");

let authms;
let tenant;
let admin;
let nc;

before(async () => {
  authms = await startAuthms();
  tenant = (await consoleConfig(authms)).tenant;
  assert.ok(tenant?.id, "authms dev suggests its dev tenant in /console/config.json");
  admin = await devAdmin(authms);
  nc = await connect({ servers: authms.natsURL, name: "authms e2e dead letters" });
});

after(async () => {
  await nc?.close();
  await authms?.stop();
});

// publishPoison publishes an event whose envelope is what a relay writes
// (events.Event.Headers plus Nats-Msg-Id) and whose payload is poison. It
// returns the event id and where JetStream stored it.
async function publishPoison(js) {
  const eventId = randomUUID();
  const userId = randomUUID();
  const h = headers();
  for (const [k, v] of Object.entries({
    "ce-specversion": "1.0",
    "ce-id": eventId,
    "ce-source": "/authms/identity",
    "ce-type": `${subject}.v1`,
    "ce-subject": userId,
    "ce-time": new Date().toISOString(),
    "content-type": "application/protobuf",
    "ce-dataschema": "type.googleapis.com/authms.identity.v1.UserEmailChanged",
    "ce-tenantid": tenant.id,
    "ce-aggregatetype": "user",
    "ce-aggregateversion": "2",
  })) {
    h.set(k, v);
  }
  const ack = await js.publish(subject, poison, { msgID: eventId, headers: h });
  return { eventId, userId, stream: ack.stream, seq: ack.seq };
}

// rows reads the dead-letter table's rows as objects keyed by column.
function rows(p) {
  return p.getByRole("region", { name: "Dead letters of billing, oldest first" }).evaluate((region) =>
    [...region.querySelectorAll("tbody tr")]
      .filter((tr) => !tr.querySelector("td.empty"))
      .map((tr) => Object.fromEntries([...tr.querySelectorAll("td[data-label]")].map((td) => [td.dataset.label, td.textContent.trim()]))),
  );
}

test("a real dead letter on the Dead letters page: list, show, redrive", { timeout: 180_000 }, async () => {
  const js = jetstream(nc);
  const ev = await publishPoison(js);
  assert.equal(ev.stream, "IDENTITY", "the poison event is stored in identity's stream");

  // Read DLQ_BILLING with an ordered consumer until the poison event's
  // dead letter arrives, so the test waits for the dead letter itself
  // rather than polling the page.
  const dlq = await js.consumers.get("DLQ_BILLING");
  let dead;
  while (!dead) {
    const m = await dlq.next({ expires: 30_000 });
    assert.ok(m, "billing dead-letters the poison event within 30 s");
    if (m.headers?.get("ce-id") === ev.eventId) dead = m;
  }
  assert.equal(dead.subject, `dlq.billing.${subject}`);
  assert.equal(dead.headers.get("ce-id"), ev.eventId, "the dead letter is the event published");
  assert.equal(dead.headers.get("authms-dlq-consumer"), consumer);
  assert.equal(dead.headers.get("authms-dlq-permanent"), "true", "an undecodable payload is a permanent failure");
  const firstSeq = dead.seq;
  await dlq.delete();

  const browser = await launch();
  try {
    const a = await browser.context.newPage();
    await a.goto(`${authms.url}/login`);
    await a.getByRole("heading", { level: 1, name: "Log in" }).waitFor();
    await a.getByLabel("Email").fill(admin.email);
    await a.getByLabel("Password").fill(admin.password);
    await a.getByRole("button", { name: "Log in" }).click();
    await a.getByRole("heading", { level: 1, name: "Profile" }).waitFor();
    await a.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Dead letters", exact: true }).click();
    await a.getByRole("heading", { level: 1, name: "Dead letters" }).waitFor();

    // The list: the one dead letter of billing, permanent, with its error.
    await a.getByLabel("Service").selectOption("billing");
    await until(a, () => document.querySelector("main [role=status]")?.textContent === "1 dead letter in billing.", null, "billing's dead letter listed");
    const [listed, ...more] = await rows(a);
    assert.equal(more.length, 0, "billing has only the poison event's dead letter");
    assert.equal(listed.Sequence, String(firstSeq));
    assert.equal(listed.Subject, subject);
    assert.equal(listed.Consumer, consumer);
    assert.equal(listed.Attempts, "1");
    // A tenant admin reads the failure's category, not billing's error
    // text (admin.proto); only the operator reads the text.
    assert.equal(listed.Error, "permanent: the event cannot be applied" + "permanent", "the category, with the permanent badge");
    assert.doesNotMatch(listed.Error, /decode/, "the handler's text is the operator's");
    const table = a.getByRole("region", { name: "Dead letters of billing, oldest first" });
    const { scroll, client } = await table.evaluate((el) => ({ scroll: el.scrollWidth, client: el.clientWidth }));
    assert.ok(scroll <= client, `the dead letters' table fits at 1280 px, its buttons in view: ${scroll} px in ${client}`);
    await shot(a, "dlq-01-list");

    // Show: the envelope and dead-letter headers, the error, and the
    // payload that did not decode, byte for byte.
    await a.getByRole("button", { name: `Show dead letter ${firstSeq}`, exact: true }).click();
    const card = a.getByRole("region", { name: `Dead letter ${firstSeq} · ${subject}` });
    await card.waitFor();
    assert.equal(await a.evaluate(() => document.activeElement?.id), "dl-title", "focus moves to the dead letter's heading");
    const summary = Object.fromEntries(
      await card.locator(".summary dt").evaluateAll((dts) => dts.map((dt) => [dt.textContent, dt.nextElementSibling.textContent])),
    );
    assert.equal(summary.Event, `${subject}.v1 ${ev.eventId}`);
    assert.equal(summary.Source, `IDENTITY #${ev.seq}`);
    assert.equal(summary.Aggregate, `${ev.userId} v2`);
    assert.equal(summary.Consumer, consumer);
    assert.equal(summary.Attempts, "1");
    assert.equal(summary.Error, "permanent: the event cannot be applied" + "permanent");
    const hdrs = Object.fromEntries(
      await card.getByRole("region", { name: "Headers" }).locator("tbody tr").evaluateAll((trs) => trs.map((tr) => [tr.cells[0].textContent, tr.cells[1].textContent])),
    );
    assert.equal(hdrs["ce-tenantid"], tenant.id);
    assert.equal(hdrs["ce-id"], ev.eventId);
    assert.equal(hdrs["ce-type"], `${subject}.v1`);
    assert.equal(hdrs["authms-dlq-consumer"], consumer);
    assert.equal(hdrs["authms-dlq-stream"], "IDENTITY");
    assert.equal(hdrs["authms-dlq-sequence"], String(ev.seq));
    assert.equal(hdrs["authms-dlq-permanent"], "true");
    assert.equal(hdrs["authms-dlq-error"], "permanent: the event cannot be applied", "the header carries the category too");
    const payloadError = await card.locator("h3:text-is('Payload') + p").textContent();
    assert.match(payloadError, new RegExp(`^decode ${subject.replace(/\./g, "\\.")}\\.v1 payload of event ${ev.eventId}: `));
    const raw = card.getByLabel(`Raw payload, ${poison.length} bytes`);
    assert.match(await raw.textContent(), /^00000000  74 68 69 73 20 69 73 20 6e 6f 74 20 61 20 70 72  this is not a pr$/m);
    await shot(a, "dlq-02-detail");
    await a.setViewportSize({ width: 375, height: 812 });
    const width = await a.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
    assert.ok(width.scroll <= width.client, `the dead letter does not scroll sideways at 375 px: ${width.scroll} px wide`);
    await shot(a, "dlq-375-detail");
    await a.setViewportSize({ width: 1280, height: 900 });

    // Redrive it: the payload still does not decode, so the handler fails
    // again; the page says so, with the error and the new sequence, and
    // the reloaded list holds it there with one more attempt.
    await card.getByRole("button", { name: "Redrive this one" }).click();
    await until(a, () => document.querySelector("main [role=status]")?.textContent?.startsWith("Redrive:"), null, "redrive reported");
    const st = a.locator("main [role=status]").first();
    const said = await st.textContent();
    assert.equal(await st.getAttribute("data-kind"), "error");
    const m = /^Redrive: 0 applied, 1 failed again, 0 skipped\. Dead letter (\d+) failed again and is now dead letter (\d+): (.*)$/.exec(said);
    assert.ok(m, `the redrive outcome names the failure: ${said}`);
    assert.equal(m[1], String(firstSeq));
    const secondSeq = Number(m[2]);
    assert.ok(secondSeq > firstSeq, `the dead letter moved to a new sequence (${firstSeq} → ${secondSeq})`);
    assert.equal(m[3], "permanent: the event cannot be applied");
    let [after, ...rest] = await rows(a);
    assert.equal(rest.length, 0, "the dead letter stays, once");
    assert.equal(after.Sequence, String(secondSeq));
    assert.equal(after.Attempts, "2", "a failed redrive counts as an attempt");
    assert.equal(await a.getByRole("button", { name: `Show dead letter ${firstSeq}`, exact: true }).count(), 0, "the old sequence is gone");
    await shot(a, "dlq-03-redrive-failed");

    // Redrive all of billing: the same, once more.
    await a.getByRole("button", { name: "Redrive all of billing" }).click();
    await until(a, (seq) => document.querySelector("main [role=status]")?.textContent?.startsWith(`Redrive: 0 applied, 1 failed again, 0 skipped. Dead letter ${seq} failed again`), secondSeq, "redrive all reported");
    [after, ...rest] = await rows(a);
    assert.equal(rest.length, 0);
    assert.ok(Number(after.Sequence) > secondSeq);
    assert.equal(after.Attempts, "3");
  } finally {
    await browser.close();
  }
});
