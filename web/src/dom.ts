// Small helpers to build the console's DOM without a UI framework: the
// pages are forms and tables, and plain elements keep the bundle small and
// the markup easy to check for accessibility.

export type Child = Node | string | number | bigint | null | undefined | false | Child[];

type Attrs = Record<string, unknown>;

/**
 * h creates an element. Attributes named on<event> become listeners,
 * true booleans become empty attributes, and false, null and undefined are
 * left out, so optional attributes read naturally at the call site.
 */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs?: Attrs | null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2).toLowerCase(), value as EventListener);
    } else if (name === "value" && "value" in el) {
      (el as HTMLInputElement).value = String(value);
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

/** append adds children to a parent, flattening arrays and skipping empty ones. */
export function append(parent: Node, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(parent, c);
    else parent.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** replace sets a parent's children. */
export function replace(parent: Node, ...children: Child[]): void {
  while (parent.firstChild) parent.removeChild(parent.firstChild);
  append(parent, children);
}

let ids = 0;

/** uid returns a document-unique id for labels and descriptions. */
export function uid(prefix: string): string {
  ids += 1;
  return `${prefix}-${ids}`;
}

// timeZone is the signed-in user's profile time zone, undefined for the
// browser's own (before the profile is read, or when it names none).
let timeZone: string | undefined;

/**
 * setTimeZone makes formatTime show times in the given IANA zone (the
 * profile's). A name this browser does not know, or an empty one, falls
 * back to the browser's zone rather than failing every table.
 */
export function setTimeZone(zone: string | undefined): void {
  timeZone = undefined;
  if (!zone) return;
  try {
    new Intl.DateTimeFormat(undefined, { timeZone: zone });
    timeZone = zone;
  } catch {
    // RangeError: unknown to this browser's ICU data.
  }
}

/** formatTime renders a timestamp for people, in their locale and their profile's time zone. */
export function formatTime(d: Date | undefined): string {
  if (!d) return "—";
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium", timeZone });
}

/** formatClock renders the time of day of d, like formatTime. */
export function formatClock(d: Date): string {
  return d.toLocaleTimeString(undefined, { timeZone });
}

/**
 * table renders rows in a horizontally scrollable wrapper, so a wide table
 * never widens the page; on narrow screens the stylesheet stacks each row
 * as a card whose cells are labelled with their column (data-label).
 * hideCaption keeps the caption for screen readers only, for a table
 * right under a heading that says the same.
 */
export function table(caption: string, headers: string[], rows: Child[][], opts: { hideCaption?: boolean } = {}): HTMLElement {
  return h(
    "div",
    { class: "table-wrap", role: "region", "aria-label": caption, tabindex: "0" },
    h(
      "table",
      null,
      h("caption", { class: opts.hideCaption ? "visually-hidden" : undefined }, caption),
      h("thead", null, h("tr", null, headers.map((t) => h("th", { scope: "col" }, t)))),
      h(
        "tbody",
        null,
        rows.length === 0
          ? h("tr", null, h("td", { colspan: String(headers.length), class: "empty" }, "Nothing here yet."))
          : rows.map((r) => h("tr", null, r.map((c, i) => h("td", { "data-label": headers[i] || undefined }, c)))),
      ),
    ),
  );
}
