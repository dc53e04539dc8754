/**
 * The relay phase of `bench/cluster.ts`: a netfox host/client pair relayed by one node (both on
 * n1) or across two nodes (host on n1, client on n2, the two nodes' relays chained by the bridge),
 * set up exactly as netfox does it, then ping-pong RTT and one-way throughput through it. Runs in
 * the runner's process; the caller samples the nodes' CPU around `throughput`.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { EventQueue, NorayClient, type NorayEvents } from '../../src/client/node.js';

export interface RelayPair {
  /** The host's game socket (its registered port, on its node's address). */
  readonly hostUdp: UdpSocket;
  readonly clientUdp: UdpSocket;
  /** Where the host sends to reach the client: the relay port it was told, on its own node. */
  readonly toClient: { readonly address: string; readonly port: number };
  readonly toHost: { readonly address: string; readonly port: number };
  close(): void;
}

/**
 * register-host on both nodes, register_remote with each node's registrar (OK), the client sends
 * `connect-relay <host OID>`, both get their relay port, both bind their registered UDP port and
 * send to the relay port on the node they opened TCP to (like test/cluster/three-nodes.test.ts).
 */
export async function relayPair(control: number, registrar: number, hostNode: string, clientNode: string): Promise<RelayPair> {
  const sockets: UdpSocket[] = [];
  const clients: NorayClient[] = [];
  const close = () => {
    for (const client of clients) void client.close();
    for (const socket of sockets) socket.close();
  };
  /** A player on `node`: TCP to it, its game socket on its address, registered with its registrar. */
  const player = async (node: string) => {
    const noray = await NorayClient.connect({ host: node, port: control, registrarPort: registrar });
    clients.push(noray);
    const events = new EventQueue<NorayEvents>(noray, ['connect-relay']);
    await noray.register();
    const udp = createSocket('udp4');
    sockets.push(udp);
    udp.on('error', () => undefined);
    await new Promise<void>((resolve) => udp.bind(0, node, () => resolve()));
    await noray.registerRemote({ socket: udp });
    return { noray, events, udp };
  };
  try {
    const [host, client] = await Promise.all([player(hostNode), player(clientNode)]);
    const [toHost, toClient] = await Promise.all([client.noray.connectRelay(host.noray.oid), host.events.next('connect-relay', 5000)]);
    return { hostUdp: host.udp, clientUdp: client.udp, toClient, toHost, close };
  } catch (error) {
    close();
    throw error;
  }
}

export interface RttResult {
  samples: number;
  /** Round trips that got no answer within 1 s (then the next one is sent). */
  lost: number;
  p50Us: number | null;
  p99Us: number | null;
}

const quantile = (sorted: number[], q: number): number | null => (sorted.length === 0 ? null : (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? null));

/** `count` sequential round trips client -> relay -> host -> relay -> client (the host echoes). */
export async function pingPong(pair: RelayPair, count: number, size = 64): Promise<RttResult> {
  const payload = Buffer.alloc(size, 0x70);
  const echo = (message: Buffer) => pair.hostUdp.send(message, pair.toClient.port, pair.toClient.address);
  pair.hostUdp.on('message', echo);
  const times: number[] = [];
  let lost = 0;
  try {
    for (let seq = 0; seq < count; seq++) {
      payload.writeUInt32BE(seq, 0);
      const began = performance.now();
      const answered = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          pair.clientUdp.removeListener('message', onMessage);
          resolve(false);
        }, 1000);
        const onMessage = (message: Buffer) => {
          if (message.length < 4 || message.readUInt32BE(0) !== seq) return; // a late answer to a lost one
          clearTimeout(timer);
          pair.clientUdp.removeListener('message', onMessage);
          resolve(true);
        };
        pair.clientUdp.on('message', onMessage);
        pair.clientUdp.send(payload, pair.toHost.port, pair.toHost.address);
      });
      if (answered) times.push((performance.now() - began) * 1000);
      else lost++;
    }
  } finally {
    pair.hostUdp.removeListener('message', echo);
  }
  times.sort((x, y) => x - y);
  return { samples: times.length, lost, p50Us: quantile(times, 0.5), p99Us: quantile(times, 0.99) };
}

export interface ThroughputResult {
  sent: number;
  received: number;
  /** From the first send to the last datagram received. */
  seconds: number;
  pps: number;
  loss: number;
}

/**
 * Client -> host, `size`-byte datagrams, at most `window` sent and not yet received; a datagram
 * the host receives frees a slot. Loss would stall the window: if nothing arrives for 20 ms, the
 * datagrams in flight are written off. Runs for `durationMs`, then waits up to 200 ms for the rest.
 */
export async function throughput(pair: RelayPair, durationMs: number, window = 64, size = 64): Promise<ThroughputResult> {
  const payload = Buffer.alloc(size, 0x71);
  let sent = 0;
  let received = 0;
  let writtenOff = 0;
  let sending = true;
  let lastAt = performance.now();
  const pump = () => {
    while (sending && sent - received - writtenOff < window) {
      pair.clientUdp.send(payload, pair.toHost.port, pair.toHost.address);
      sent++;
    }
  };
  const onMessage = () => {
    received++;
    lastAt = performance.now();
    pump();
  };
  pair.hostUdp.on('message', onMessage);
  let seen = 0;
  const stall = setInterval(() => {
    if (received === seen) {
      writtenOff = sent - received;
      pump();
    }
    seen = received;
  }, 20);
  const began = performance.now();
  pump();
  await new Promise((resolve) => setTimeout(resolve, durationMs));
  sending = false;
  clearInterval(stall);
  const drainEnd = performance.now() + 200;
  while (received < sent && performance.now() < drainEnd) await new Promise((resolve) => setTimeout(resolve, 5));
  const seconds = (Math.max(lastAt, began + 1) - began) / 1000;
  pair.hostUdp.removeListener('message', onMessage);
  return { sent, received, seconds, pps: received / seconds, loss: sent > 0 ? 1 - received / sent : 0 };
}
