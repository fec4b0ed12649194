// The console's one way to reach the APIs: the wire protocol of this page
// load and a factory of transports that speak it. The API clients (api.ts)
// and the session client that logs in and refreshes tokens (auth.ts) both
// build their transports here, so they cannot disagree on the protocol.
// The Connect protocol is the default; opening a page with
// ?transport=grpc-web switches the tab to gRPC-web (remembered for the tab
// in sessionStorage) and ?transport=connect switches it back.

import type { Interceptor, Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";

/** TransportKind names the wire protocol the console speaks. */
export type TransportKind = "connect" | "grpc-web";

const transportKey = "authms.transport";

function chooseTransport(): TransportKind {
  const asked = new URLSearchParams(location.search).get("transport");
  if (asked === "grpc-web" || asked === "connect") {
    sessionStorage.setItem(transportKey, asked);
    return asked;
  }
  return sessionStorage.getItem(transportKey) === "grpc-web" ? "grpc-web" : "connect";
}

/** transportKind is the protocol of this page load, chosen once. */
export const transportKind: TransportKind = chooseTransport();

/** baseUrl is where the APIs are: the console's own origin. */
export const baseUrl = location.origin;

/** newTransport returns a transport of transportKind to baseUrl with the given interceptors. */
export function newTransport(interceptors: Interceptor[] = []): Transport {
  const options = { baseUrl, interceptors };
  return transportKind === "grpc-web" ? createGrpcWebTransport(options) : createConnectTransport(options);
}
