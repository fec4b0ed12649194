// The signed-in user's tokens, kept in memory only: a module variable, not
// localStorage, so a script injected into another page of the origin or a
// copied profile directory finds no token. Reloading the page therefore
// logs out. The access token is refreshed by rotation a minute before it
// expires (each Refresh returns a new refresh token and retires the old
// one), and once more on demand when a call is answered UNAUTHENTICATED.

import { createClient } from "@connectrpc/connect";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { SessionService, type Tokens } from "./gen/authms/session/v1/session_pb";
import { newTransport } from "./transport";

/** Signed is who is signed in, from Login and the access token's claims. */
export interface Signed {
  tenantId: string;
  userId: string;
  sessionId: string;
  email: string;
  roles: string[];
}

interface State extends Signed {
  accessToken: string;
  accessExpires: number;
  refreshToken: string;
}

let state: State | null = null;
let timer: ReturnType<typeof setTimeout> | undefined;
let inflight: Promise<string | null> | null = null;
// ended says how the last session ended: "logout" when the user logged
// out here, "ended" when the server refused it (revoked elsewhere, the
// user disabled, the tenant suspended, a reused refresh token), so the
// login page can say why the user is back there.
let ended: "logout" | "ended" | null = null;
const listeners = new Set<() => void>();

// Login, Refresh and Logout go through a client of their own, built once,
// on a transport without the token interceptor, so a failed refresh cannot
// recurse into another one. Its transport comes from the same factory as
// the API clients', in the same protocol.
const sessionClient = createClient(SessionService, newTransport());

function claims(jwt: string): { roles?: unknown } {
  try {
    const payload = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload.padEnd(payload.length + ((4 - (payload.length % 4)) % 4), "=")));
  } catch {
    return {};
  }
}

function apply(tokens: Tokens | undefined, who: Omit<Signed, "roles">): void {
  if (!tokens) throw new Error("the server answered without tokens");
  const roles = claims(tokens.accessToken).roles;
  state = {
    ...who,
    roles: Array.isArray(roles) ? roles.map(String) : [],
    accessToken: tokens.accessToken,
    accessExpires: tokens.accessTokenExpireTime ? timestampDate(tokens.accessTokenExpireTime).getTime() : Date.now() + 5 * 60_000,
    refreshToken: tokens.refreshToken,
  };
  clearTimeout(timer);
  const due = Math.max(state.accessExpires - Date.now() - 60_000, 5_000);
  timer = setTimeout(() => void auth.refresh(), due);
  notify();
}

function notify(): void {
  for (const l of listeners) l();
}

export const auth = {
  /** current is who is signed in, or null. */
  current(): Signed | null {
    if (!state) return null;
    const { tenantId, userId, sessionId, email, roles } = state;
    return { tenantId, userId, sessionId, email, roles };
  },

  /** isAdmin says whether the user holds the tenant's built-in admin role. */
  isAdmin(): boolean {
    return state?.roles.includes("admin") ?? false;
  },

  /** endReason says how the last session ended, null while one is live or none was. */
  endReason(): "logout" | "ended" | null {
    return state ? null : ended;
  },

  /** onChange calls fn whenever someone signs in or out. */
  onChange(fn: () => void): () => void {
    listeners.add(fn);
    return () => listeners.delete(fn);
  },

  async login(tenantId: string, email: string, password: string): Promise<void> {
    const res = await sessionClient.login({ tenantId, email, password });
    const s = res.session;
    apply(res.tokens, { tenantId: s?.tenantId ?? tenantId, userId: s?.userId ?? "", sessionId: s?.id ?? "", email });
  },

  /** accessToken returns a valid access token, refreshing first when it is about to expire. */
  async accessToken(): Promise<string | null> {
    if (!state) return null;
    if (state.accessExpires - Date.now() < 30_000) return auth.refresh();
    return state.accessToken;
  },

  /**
   * refresh rotates the refresh token. Concurrent callers share one
   * Refresh: presenting the same refresh token twice would be a reuse,
   * which revokes the session. A refused refresh signs out.
   */
  refresh(): Promise<string | null> {
    if (!state) return Promise.resolve(null);
    if (inflight) return inflight;
    const before = state;
    inflight = (async () => {
      try {
        const res = await sessionClient.refresh({ refreshToken: before.refreshToken });
        if (state !== before) return state?.accessToken ?? null; // signed out meanwhile
        apply(res.tokens, before);
        return state!.accessToken;
      } catch {
        if (state === before) auth.forget();
        return null;
      } finally {
        inflight = null;
      }
    })();
    return inflight;
  },

  /** logout ends the session on the server, then forgets it here whatever the answer. */
  async logout(): Promise<void> {
    const s = state;
    if (!s) return;
    try {
      const token = await auth.accessToken();
      await sessionClient.logout(
        { tenantId: s.tenantId, sessionId: s.sessionId },
        { headers: token ? { Authorization: `Bearer ${token}` } : {} },
      );
    } finally {
      auth.forget("logout");
    }
  },

  /** forget drops the tokens without calling the server (a revoked or expired session, unless why says the user logged out). */
  forget(why: "logout" | "ended" = "ended"): void {
    clearTimeout(timer);
    if (!state) return;
    state = null;
    ended = why;
    notify();
  },
};
