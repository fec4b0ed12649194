// What a page of the console is given and returns.

import type { Signed } from "../auth";

/** PageContext is a page's view of the console. */
export interface PageContext {
  /** signal aborts when the user leaves the page: a live feed stops with it. */
  signal: AbortSignal;
  navigate(path: string, replace?: boolean): void;
  /** who is the signed-in user; null on public pages. */
  who: Signed | null;
  /** notice is why the router brought the user here ("Your session ended. Log in again."). */
  notice?: string;
  /** next is the console path to open after logging in: a known route, never a URL from elsewhere. */
  next?: string;
}

/** Page renders one page of the console. */
export type Page = (ctx: PageContext) => HTMLElement | Promise<HTMLElement>;

/** signedIn returns ctx.who of a page the router only shows to signed-in users. */
export function signedIn(ctx: PageContext): Signed {
  if (!ctx.who) throw new Error("not signed in");
  return ctx.who;
}
