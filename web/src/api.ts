// The console's API clients. Every service is called directly from the
// browser, in the protocol transport.ts chose for the page load (Connect,
// or gRPC-web when the page was opened with ?transport=grpc-web), through
// one transport whose interceptor adds the caller's access token.

import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { IdentityService } from "./gen/authms/identity/v1/identity_pb";
import { SessionService } from "./gen/authms/session/v1/session_pb";
import { ProfileService } from "./gen/authms/profile/v1/profile_pb";
import { WalletService } from "./gen/authms/wallet/v1/wallet_pb";
import { StreamService } from "./gen/authms/admin/v1/streams_pb";
import { DeadLetterService } from "./gen/authms/admin/v1/admin_pb";
import { auth } from "./auth";
import { newTransport } from "./transport";

export { transportKind, type TransportKind } from "./transport";

// Public calls carry their credentials in the request; they must not
// trigger a refresh (Refresh itself would recurse) when they answer
// UNAUTHENTICATED, which for them means wrong credentials.
const publicMethods = new Set(["Login", "Refresh", "RegisterUser", "RequestPasswordReset", "ResetPassword", "VerifyEmail"]);

/**
 * withToken adds "Authorization: Bearer" from the in-memory session. A
 * unary call answered UNAUTHENTICATED (the token expired early, or the
 * session's keys rotated) is retried once after a refresh.
 */
const withToken: Interceptor = (next) => async (req) => {
  if (publicMethods.has(req.method.name)) return next(req);
  const token = await auth.accessToken();
  if (token) req.header.set("Authorization", `Bearer ${token}`);
  try {
    return await next(req);
  } catch (err) {
    if (!token || req.stream || ConnectError.from(err).code !== Code.Unauthenticated) throw err;
    const fresh = await auth.refresh();
    if (!fresh) throw err;
    req.header.set("Authorization", `Bearer ${fresh}`);
    return await next(req);
  }
};

const transport = newTransport([withToken]);

export const identity = createClient(IdentityService, transport);
export const sessions = createClient(SessionService, transport);
export const profiles = createClient(ProfileService, transport);
export const wallets = createClient(WalletService, transport);
export const streams = createClient(StreamService, transport);
export const deadLetters = createClient(DeadLetterService, transport);

/** TenantInfo is the tenant authms dev suggests for logging in. */
export interface TenantInfo {
  id: string;
  slug?: string;
  name?: string;
}

/** consoleConfig fetches /console/config.json; a server without one suggests no tenant. */
export async function consoleConfig(): Promise<{ tenant?: TenantInfo }> {
  try {
    const res = await fetch("/console/config.json", { headers: { Accept: "application/json" } });
    if (!res.ok) return {};
    const body = (await res.json()) as { tenant?: TenantInfo };
    return body && typeof body === "object" ? body : {};
  } catch {
    return {};
  }
}
