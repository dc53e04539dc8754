// The NAT lab's agent protocol: the test process (root network namespace) drives one agent per
// lab machine (a process inside a home LAN namespace) with JSON lines on the agent's stdin and
// reads JSON lines back on its stdout. Every request carries an id that its reply repeats.
// One agent runs any number of players (`player` = a name the test picks); each player is one
// netfox.noray game: its own TCP control connection, registrar socket and game socket.

import type { StreamCheck } from './payload.js';

/** `IP:PORT` */
export type Address = string;

export interface Requests {
  /** TCP to the noray server from `bind`, then `register-host`. */
  open: { req: { player: string; bind: string; server: string; tcpPort: number }; res: { oid: string; tcpLocal: Address } };
  /** netfox's register_remote(): a new UDP socket on any port of `bind`, the pid every 100 ms up to 8 s. */
  registerRemote: { req: { player: string; registrarPort: number }; res: { result: 'OK' | 'FAILED' | 'TIMEOUT'; localPort: number } };
  /** Sends a control line (`connect OID`, `connect-relay OID`) and waits for the next line with one of `expect` or `error`. */
  command: {
    req: { player: string; name: string; data: string; expect: string[]; timeoutMs: number };
    res: { command: string; data: string };
  };
  /** Waits for the next line with one of `expect` or `error` (the host side of connect). */
  awaitLine: { req: { player: string; expect: string[]; timeoutMs: number }; res: { command: string; data: string } };
  /** Binds the game socket (ENet's) to the registered local port and starts recording what arrives. */
  bindGame: { req: { player: string }; res: { local: Address } };
  closeGame: { req: { player: string }; res: Record<string, never> };
  /** PacketHandshake.over_packet_peer from the game socket (the client side). */
  handshake: { req: { player: string; to: Address; timeoutMs: number }; res: { ok: boolean; ms: number; from: Address[] } };
  /** PacketHandshake.over_enet of a Godot host: `$rwx` every 100 ms for durationMs, in the background. */
  blast: { req: { player: string; to: Address; durationMs: number }; res: Record<string, never> };
  stopBlast: { req: { player: string }; res: Record<string, never> };
  /** Sends `count` datagrams of stream `seed` to `to`, paced to bytesPerSecond; resolves when all are out. */
  send: { req: { player: string; to: Address; seed: number; count: number; bytesPerSecond: number }; res: { sent: number; ms: number } };
  /**
   * Waits until `count` game datagrams came from `from`, or none came for quietMs, or timeoutMs
   * passed; then checks them against stream `seed`.
   */
  verify: {
    req: { player: string; from: Address; seed: number; count: number; quietMs: number; timeoutMs: number };
    res: StreamCheck & { sources: Record<Address, number> };
  };
  /** Forgets the game datagrams received so far from `from` (every source if absent). */
  clearInbox: { req: { player: string; from?: Address }; res: Record<string, never> };
  /** Game datagrams received so far, per source address. */
  sources: { req: { player: string }; res: { sources: Record<Address, number> } };
  /** Addresses as this machine sees them: TCP local end, game socket. */
  info: { req: { player: string }; res: { tcpLocal: Address; localPort: number; game: Address | null } };
  close: { req: { player: string }; res: Record<string, never> };
  /** HTTP GET from this machine (metrics of the server, from a machine on the public segment). */
  fetch: { req: { url: string }; res: { status: number; body: string } };
}

export type Command = keyof Requests;

export type RequestLine = { [C in Command]: { id: number; cmd: C } & Requests[C]['req'] }[Command];

export type ReplyLine = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };
