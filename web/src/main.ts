// The authms web console: a single page whose router maps the console's
// paths to pages. authms dev serves index.html for every unknown GET path,
// so a reload or a shared link of /wallet opens the wallet page (after
// logging in again: tokens live only in memory).

import "./style.css";
import { h, replace, setTimeZone } from "./dom";
import { auth } from "./auth";
import { profiles, transportKind } from "./api";
import type { Page, PageContext } from "./pages/page";
import { loginPage, signupPage } from "./pages/account";
import { profilePage } from "./pages/profile";
import { walletPage } from "./pages/wallet";
import { sessionsPage } from "./pages/sessions";
import { usersPage, rolesPage } from "./pages/users";
import { streamsPage, deadLettersPage } from "./pages/streams";
import { eventsPage } from "./pages/events";

interface Route {
  title: string;
  page: Page;
  access: "public" | "user" | "admin";
  nav?: string;
}

const routes: Record<string, Route> = {
  "/login": { title: "Log in", page: loginPage, access: "public" },
  "/signup": { title: "Sign up", page: signupPage, access: "public" },
  "/profile": { title: "Profile", page: profilePage, access: "user", nav: "Profile" },
  "/wallet": { title: "Wallet", page: walletPage, access: "user", nav: "Wallet" },
  "/sessions": { title: "Sessions", page: sessionsPage, access: "user", nav: "Sessions" },
  "/admin/users": { title: "Users", page: usersPage, access: "admin", nav: "Users" },
  "/admin/roles": { title: "Roles", page: rolesPage, access: "admin", nav: "Roles" },
  "/admin/streams": { title: "Streams", page: streamsPage, access: "admin", nav: "Streams" },
  "/admin/dead-letters": { title: "Dead letters", page: deadLettersPage, access: "admin", nav: "Dead letters" },
  "/admin/events": { title: "Live events", page: eventsPage, access: "admin", nav: "Live events" },
};

const app = document.getElementById("app")!;
const header = h("header", { class: "top" });
const main = h("main", { id: "main", tabindex: "-1" });
const footer = h("footer", { class: "foot" });
app.append(header, main, footer);

let pageAbort: AbortController | null = null;
// loginNotice is why the router sent the user to the login page, shown
// there once.
let loginNotice = "";

/**
 * nextPath returns the ?next= of the login page when it names a page of
 * the console that needs a login, else undefined. Only a path that is a
 * key of routes is accepted, so the query string can never send a
 * logged-in user to another origin ("//evil.example", "https://…") or to
 * an arbitrary path.
 */
function nextPath(): string | undefined {
  if (location.pathname !== "/login") return undefined;
  const next = new URLSearchParams(location.search).get("next") ?? "";
  return Object.hasOwn(routes, next) && routes[next].access !== "public" ? next : undefined;
}

/** toLogin is the login page's URL that comes back to path afterwards. */
function toLogin(path: string): string {
  return routes[path] && routes[path].access !== "public" && path !== "/profile" ? `/login?next=${encodeURIComponent(path).replace(/%2F/g, "/")}` : "/login";
}

function navigate(path: string, replaceState = false): void {
  if (replaceState) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  void render();
}

function link(path: string, text: string, current: string): HTMLElement {
  return h("a", { href: path, "data-link": true, "aria-current": path === current ? "page" : undefined }, text);
}

function renderChrome(path: string): void {
  const who = auth.current();
  const items: HTMLElement[] = [];
  if (who) {
    for (const [p, r] of Object.entries(routes)) {
      if (!r.nav || (r.access === "admin" && !auth.isAdmin())) continue;
      items.push(h("li", { class: r.access === "admin" ? "admin" : undefined }, link(p, r.nav, path)));
    }
  } else {
    items.push(h("li", null, link("/login", "Log in", path)), h("li", null, link("/signup", "Sign up", path)));
  }
  replace(
    header,
    h("a", { class: "brand", href: who ? "/profile" : "/login", "data-link": true }, "authms"),
    h("nav", { "aria-label": "Main" }, h("ul", null, items)),
    who
      ? h(
          "div",
          { class: "who" },
          h("span", { class: "email", title: who.email }, who.email),
          auth.isAdmin() ? h("span", { class: "badge" }, "admin") : null,
          h("button", { type: "button", class: "link", onclick: () => void auth.logout().finally(() => navigate("/login")) }, "Log out"),
        )
      : null,
  );
  const other = transportKind === "grpc-web" ? "connect" : "grpc-web";
  replace(
    footer,
    h("span", { "data-testid": "transport" }, "Transport: ", h("strong", null, transportKind === "grpc-web" ? "gRPC-web" : "Connect")),
    " · ",
    h("a", { href: `${location.pathname}?transport=${other}` }, `Switch to ${other === "grpc-web" ? "gRPC-web" : "Connect"}`),
    " (reloads and logs out)",
  );
}

async function render(): Promise<void> {
  pageAbort?.abort();
  pageAbort = new AbortController();
  let path = location.pathname.replace(/\/+$/, "") || "/";
  const who = auth.current();
  if (path === "/") path = who ? "/profile" : "/login";
  let route = routes[path];
  if (!route) {
    renderChrome(path);
    document.title = "Not found · authms";
    replace(main, h("h1", { tabindex: "-1" }, "Page not found"), h("p", null, h("a", { href: "/", "data-link": true }, "Go to the start page")));
    return;
  }
  let url: string | undefined;
  if (route.access !== "public" && !who) {
    loginNotice ||= "Log in to continue.";
    url = toLogin(path);
    path = "/login";
    route = routes[path];
  } else if (route.access === "admin" && !auth.isAdmin()) {
    path = "/profile";
    route = routes[path];
  } else if (route.access === "public" && who) {
    path = "/profile";
    route = routes[path];
  }
  if (path !== location.pathname) history.replaceState(null, "", url ?? path);
  renderChrome(path);
  document.title = `${route.title} · authms`;
  const ctx: PageContext = { signal: pageAbort.signal, navigate, who: auth.current() };
  if (path === "/login") {
    ctx.notice = loginNotice || undefined;
    ctx.next = nextPath();
    loginNotice = "";
  }
  const signal = pageAbort.signal;
  replace(main, h("p", { class: "loading" }, "Loading…"));
  try {
    const el = await route.page(ctx);
    if (signal.aborted) return;
    replace(main, el);
  } catch (err) {
    if (signal.aborted) return;
    replace(main, h("h1", null, route.title), h("p", { class: "status", "data-kind": "error", role: "alert" }, String(err)));
  }
  // Move focus to the page's heading so screen readers announce the new
  // page and the next Tab starts at its content.
  main.querySelector<HTMLElement>("h1")?.focus({ preventScroll: true });
}

document.addEventListener("click", (e) => {
  const a = (e.target as Element).closest?.("a[data-link]") as HTMLAnchorElement | null;
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  e.preventDefault();
  navigate(a.pathname);
});
window.addEventListener("popstate", () => void render());
// A session that ends while the user is on a page needing one (revoked
// elsewhere, the user disabled, a refresh refused) sends them to log in,
// told why, and back to that page afterwards; a logout here needs no
// explanation.
//
// Times are shown in the profile's time zone: it is read once at login
// (the profile page sets it again when it reads or saves the profile);
// until then, and without one, in the browser's.
let zoneFor = "";
auth.onChange(() => {
  const who = auth.current();
  if (!who) {
    zoneFor = "";
    setTimeZone(undefined);
  } else if (zoneFor !== who.sessionId) {
    zoneFor = who.sessionId;
    profiles.getProfile({ tenantId: who.tenantId, userId: who.userId }).then(
      (res) => {
        if (auth.current()?.sessionId === zoneFor) setTimeZone(res.profile?.timezone);
      },
      () => {}, // no profile yet, or unreadable: the browser's zone stays
    );
  }
  if (!who && routes[location.pathname]?.access !== "public") {
    if (auth.endReason() === "ended") loginNotice = "Your session ended. Log in again.";
    else loginNotice = "";
    navigate(auth.endReason() === "ended" ? toLogin(location.pathname) : "/login", true);
  } else renderChrome(location.pathname);
});

void render();
