/**
 * The load of `bench/cluster.ts`: closed loops of noray control-plane flows and lobby flows, each
 * flow's two sides on the node addresses the phase picks. Runs in the runner's process.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { Agent, request } from 'node:http';
import WebSocket from 'ws';
import { EventQueue, NorayClient, type NorayEvents } from '../../src/client/node.js';

export interface LoopResult {
  flows: number;
  errors: number;
  firstError: string | null;
  elapsedMs: number;
  /** Each completed flow's duration, ms. */
  latencies: number[];
}

/** Which node each side of worker `w`'s flows uses (host/creator first). */
export type Pick = (worker: number) => readonly [string, string];

const FLOW_TIMEOUT_MS = 5000;

function udpSocket(): Promise<UdpSocket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      socket.removeListener('error', reject);
      socket.on('error', () => undefined);
      resolve(socket);
    });
  });
}

/** netfox's register_remote: the PrivateID every 100 ms until the registrar answers. */
function registerUdp(socket: UdpSocket, pid: string, host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let tries = 0;
    const finish = () => {
      clearInterval(timer);
      socket.removeListener('message', onMessage);
    };
    const onMessage = (message: Buffer) => {
      finish();
      resolve(message.toString());
    };
    const timer = setInterval(() => {
      if (++tries > FLOW_TIMEOUT_MS / 100) {
        finish();
        reject(new Error('no registrar reply'));
      } else socket.send(pid, port, host);
    }, 100);
    socket.on('message', onMessage);
    socket.send(pid, port, host);
  });
}

/**
 * `concurrency` workers, each running flows back to back until `durationMs` has passed (flows in
 * flight then finish). A worker stops after 50 errors of its own.
 */
export interface Worker {
  run(): Promise<void>;
  close(): void;
}

export async function closedLoop(concurrency: number, durationMs: number, worker: (index: number) => Promise<Worker>): Promise<LoopResult> {
  const result: LoopResult = { flows: 0, errors: 0, firstError: null, elapsedMs: 0, latencies: [] };
  const start = performance.now();
  const deadline = start + durationMs;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, index) => {
      const flow = await worker(index);
      let mine = 0;
      try {
        while (performance.now() < deadline && mine < 50) {
          const began = performance.now();
          try {
            await flow.run();
            result.flows++;
            result.latencies.push(performance.now() - began);
          } catch (error) {
            mine++;
            result.errors++;
            result.firstError ??= error instanceof Error ? error.message.slice(0, 200) : String(error);
          }
        }
      } finally {
        flow.close();
      }
    }),
  );
  result.elapsedMs = performance.now() - start;
  return result;
}

export interface NorayPorts {
  control: number;
  registrar: number;
}

/**
 * One noray flow: host and client each open TCP to their node and `register-host`, each registers
 * its UDP address with its node's registrar (PrivateID, wait for OK), the client sends
 * `connect <host OID>`, and both get their `connect` line. Both connections are closed after.
 */
export function norayWorker(ports: NorayPorts, pick: Pick): (index: number) => Promise<Worker> {
  return async (index) => {
    const [hostNode, clientNode] = pick(index);
    const hostUdp = await udpSocket();
    const clientUdp = await udpSocket();
    const close = () => {
      hostUdp.close();
      clientUdp.close();
    };
    const run = async () => {
      const [host, client] = await Promise.all([
        NorayClient.connect({ host: hostNode, port: ports.control }),
        NorayClient.connect({ host: clientNode, port: ports.control }),
      ]);
      const hostEvents = new EventQueue<NorayEvents>(host, ['connect']);
      try {
        await Promise.all([host.register(), client.register()]);
        // The registrar step stays raw: answered at once, not netfox's 100 ms poll (the load would be timer-bound).
        const [a, b] = await Promise.all([
          registerUdp(hostUdp, host.pid, hostNode, ports.registrar),
          registerUdp(clientUdp, client.pid, clientNode, ports.registrar),
        ]);
        if (a !== 'OK' || b !== 'OK') throw new Error(`registrar said ${a}/${b}`);
        const [toClient, toHost] = await Promise.all([client.connectNat(host.oid), hostEvents.next('connect', FLOW_TIMEOUT_MS)]);
        if (toClient.port !== hostUdp.address().port || toHost.port !== clientUdp.address().port) {
          throw new Error(`connect gave ${toClient.address}:${toClient.port} / ${toHost.address}:${toHost.port}`);
        }
      } finally {
        void host.close();
        void client.close();
      }
    };
    return { run, close };
  };
}

// ---- lobby (Orion wire format from the server: method:BASE64(JSON)) ----

type Payload = Record<string, unknown>;

/** An Orion-style WebSocket client that can await the next event of a method. */
class LobbyClient {
  private queue: { method: string; payload: Payload }[] = [];
  private waiters: { method: string; resolve: (payload: Payload) => void; reject: (error: Error) => void }[] = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      const text = data.toString();
      const colon = text.indexOf(':');
      const method = text.slice(0, colon);
      let payload: Payload = {};
      try {
        payload = JSON.parse(Buffer.from(text.slice(colon + 1), 'base64').toString()) as Payload;
      } catch {
        payload = {};
      }
      const index = this.waiters.findIndex((w) => w.method === method);
      if (index >= 0) this.waiters.splice(index, 1)[0]?.resolve(payload);
      else this.queue.push({ method, payload });
    });
    ws.on('close', () => {
      for (const w of this.waiters.splice(0)) w.reject(new Error('ws closed'));
    });
    ws.on('error', () => undefined);
  }

  static open(host: string, port: number): Promise<LobbyClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://${host}:${port}/`, { perMessageDeflate: false });
      const client = new LobbyClient(ws);
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error('ws open timed out'));
      }, FLOW_TIMEOUT_MS);
      ws.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      ws.once('open', () => {
        clearTimeout(timer);
        resolve(client);
      });
    });
  }

  next(method: string, timeoutMs = FLOW_TIMEOUT_MS): Promise<Payload> {
    const index = this.queue.findIndex((m) => m.method === method);
    const queued = index >= 0 ? this.queue.splice(index, 1)[0] : undefined;
    if (queued) return Promise.resolve(queued.payload);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${method}`)), timeoutMs);
      this.waiters.push({
        method,
        resolve: (payload) => {
          clearTimeout(timer);
          resolve(payload);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
    });
  }

  close(): void {
    this.ws.terminate();
  }
}

const agent = new Agent({ keepAlive: true, maxSockets: 256 });

function post(host: string, port: number, path: string, body: unknown): Promise<Payload> {
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      { host, port, path, method: 'POST', agent, timeout: FLOW_TIMEOUT_MS, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          const status = res.statusCode ?? 0;
          if (status >= 300) {
            reject(new Error(`POST ${path} on ${host} -> ${status} ${text.slice(0, 120)}`));
            return;
          }
          try {
            resolve(text ? (JSON.parse(text) as Payload) : {});
          } catch {
            reject(new Error(`POST ${path}: not JSON: ${text.slice(0, 120)}`));
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`POST ${path} timed out`)));
    req.on('error', reject);
    req.end(data);
  });
}

let lobbyCounter = 0;

/**
 * One lobby flow: A opens its WebSocket to its node, B to its node (both wait for
 * client_registered), A creates a lobby over HTTP on its node, B joins it over HTTP on its node,
 * A receives lobby_peerConnect. Both WebSockets are closed after (the lobby goes with its host).
 */
export function lobbyWorker(port: number, pick: Pick): (index: number) => Promise<Worker> {
  return async (index) => {
    const [aNode, bNode] = pick(index);
    const run = async () => {
      const [a, b] = await Promise.all([LobbyClient.open(aNode, port), LobbyClient.open(bNode, port)]);
      try {
        const [ra, rb] = await Promise.all([a.next('client_registered'), b.next('client_registered')]);
        const created = await post(aNode, port, '/lobbies', {
          token: String(ra.token),
          hostName: 'host',
          lobbyName: `bench ${process.pid} ${++lobbyCounter}`,
          isPublic: false,
          maxMembers: 2,
        });
        const joined = a.next('lobby_peerConnect');
        joined.catch(() => undefined); // a failed join must not leave an unhandled rejection behind
        await post(bNode, port, `/lobbies/${String(created.lobbyId)}/join`, { token: String(rb.token), peerName: 'member' });
        await joined;
      } finally {
        a.close();
        b.close();
      }
    };
    return { run, close: () => undefined };
  };
}

export function closeAgent(): void {
  agent.destroy();
}
