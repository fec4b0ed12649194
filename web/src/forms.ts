// Form building blocks: every input has a <label for>, its error text
// below it (linked by aria-describedby and announced through
// aria-invalid), and every form has a status line in an aria-live region.

import { h, uid, type Child } from "./dom";
import { describe, type FieldProblem, type Problem } from "./errors";

export interface FieldOptions {
  /** name is the request field the input fills, as the API names it (display_name). */
  name: string;
  label: string;
  type?: string;
  value?: string;
  required?: boolean;
  autocomplete?: string;
  placeholder?: string;
  hint?: string;
  /**
   * format says what a value must look like ("Use lower-case letters…"),
   * shown when the server refuses the value's format (a string.pattern
   * violation), whose own message only quotes a regular expression.
   */
  format?: string;
  list?: string;
  inputmode?: string;
  attrs?: Record<string, unknown>;
}

/** field returns a labelled input with room for its error. */
export function field(o: FieldOptions): HTMLElement {
  const id = uid(o.name.replace(/[^a-z0-9]/gi, "-"));
  const hintId = o.hint ? `${id}-hint` : undefined;
  const errId = `${id}-error`;
  return h(
    "div",
    { class: "field", "data-field": o.name, "data-format": o.format },
    h("label", { for: id }, o.label),
    h("input", {
      id,
      name: o.name,
      type: o.type ?? "text",
      value: o.value ?? "",
      required: o.required,
      autocomplete: o.autocomplete,
      placeholder: o.placeholder,
      list: o.list,
      inputmode: o.inputmode,
      "aria-describedby": [hintId, errId].filter(Boolean).join(" "),
      ...o.attrs,
    }),
    o.hint ? h("p", { class: "hint", id: hintId }, o.hint) : null,
    h("p", { class: "field-error", id: errId, hidden: true }),
  );
}

/** select returns a labelled <select>. */
export function select(name: string, label: string, options: string[], value?: string): HTMLElement {
  const id = uid(name);
  const errId = `${id}-error`;
  return h(
    "div",
    { class: "field", "data-field": name },
    h("label", { for: id }, label),
    h("select", { id, name, "aria-describedby": errId }, options.map((o) => h("option", { value: o, selected: o === value }, o))),
    h("p", { class: "field-error", id: errId, hidden: true }),
  );
}

/** status returns an aria-live region for a form's or a page's messages. */
export function status(): HTMLElement {
  return h("p", { class: "status", role: "status", "aria-live": "polite" });
}

/** say shows a message in a status region; kind styles it. */
export function say(el: HTMLElement, text: string, kind: "ok" | "error" | "info" = "info"): void {
  el.textContent = text;
  el.dataset.kind = kind;
}

/** values reads a form's named inputs. */
export function values(form: HTMLFormElement): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of new FormData(form)) out[k] = typeof v === "string" ? v : "";
  return out;
}

/** clearProblems hides every field error of a form. */
export function clearProblems(form: HTMLElement): void {
  for (const el of form.querySelectorAll<HTMLElement>(".field-error")) {
    el.hidden = true;
    el.textContent = "";
  }
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
}

/**
 * showProblem puts an API error on a form: each field violation under its
 * input (or in a list under the status line when the form has no such
 * input), the sentence in the status line, and focus on the first invalid
 * input so a keyboard user lands where the fix is. local holds the
 * problems the console found itself (an address without an "@"), shown
 * with the server's unless the server named the same field.
 */
export function showProblem(form: HTMLElement, statusEl: HTMLElement, err: unknown, local: FieldProblem[] = []): Problem {
  const p = describe(err);
  const named = new Set(p.fields.map((f) => f.field));
  const extra = local.filter((f) => !named.has(f.field));
  if (extra.length) {
    const plain = p.fields.length === 0;
    p.fields = [...extra, ...p.fields];
    if (plain) p.message = `Please correct the highlighted fields. ${p.message}`;
  }
  clearProblems(form);
  const unplaced: Child[] = [];
  let first: HTMLElement | null = null;
  for (const f of p.fields) {
    const wrap = form.querySelector<HTMLElement>(`[data-field="${CSS.escape(f.field)}"]`)
      ?? form.querySelector<HTMLElement>(`[data-field="${CSS.escape(f.field.split(".")[0])}"]`);
    const errEl = wrap?.querySelector<HTMLElement>(".field-error");
    const input = wrap?.querySelector<HTMLElement>("input, select, textarea");
    if (errEl && input) {
      const message = (f.rule === "string.pattern" && wrap?.dataset.format) || f.message;
      errEl.textContent = message.charAt(0).toUpperCase() + message.slice(1);
      errEl.hidden = false;
      input.setAttribute("aria-invalid", "true");
      first ??= input;
    } else {
      unplaced.push(h("li", null, h("code", null, f.field || "request"), ": ", f.message));
    }
  }
  say(statusEl, p.message, "error");
  if (unplaced.length) statusEl.append(h("ul", { class: "violations" }, unplaced));
  first?.focus();
  return p;
}

/** busy disables a form's buttons while a call runs. */
export async function busy<T>(form: HTMLElement, fn: () => Promise<T>): Promise<T> {
  const buttons = [...form.querySelectorAll<HTMLButtonElement>("button")];
  for (const b of buttons) b.disabled = true;
  form.setAttribute("aria-busy", "true");
  try {
    return await fn();
  } finally {
    for (const b of buttons) b.disabled = false;
    form.removeAttribute("aria-busy");
  }
}
