/**
 * Load generator / sink for UDP: a set of sockets that can register with the noray registrar,
 * connect to a target port each, send paced datagrams, count what arrives, echo, or ping
 * with timestamps for round-trip times. Runs as a child process; driven over IPC.
 */
import { createSocket, type Socket } from 'node:dgram';
import { serve } from './lib/rpc.js';

const HOST = '127.0.0.1';
const BUFFER = 4 * 1024 * 1024;

let sockets: Socket[] = [];
let received = 0;
let receivedBytes = 0;
let echo = false;
let rttSamples: number[] = [];
let collectRtt = false;

function onMessage(socket: Socket, message: Buffer): void {
  received++;
  receivedBytes += message.length;
  if (echo) {
    socket.send(message);
    return;
  }
  if (collectRtt && message.length >= 8) {
    rttSamples.push(performance.now() - message.readDoubleLE(0));
  }
}

function bindAt(port: number): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    const socket = createSocket({ type: 'udp4', recvBufferSize: BUFFER, sendBufferSize: BUFFER });
    socket.once('error', (error) => {
      socket.close();
      reject(error);
    });
    socket.bind(port, HOST, () => {
      socket.removeAllListeners('error');
      // ECONNREFUSED and friends after connect(): count as nothing, never crash.
      socket.on('error', () => undefined);
      resolve(socket);
    });
  });
}

/**
 * Binds a socket to an explicit port. (Linux forgets an ephemeral (port 0) binding when a connected
 * UDP socket is disconnected, so the socket would come back on a new port; an explicit port sticks.)
 */
async function bindSticky(): Promise<Socket> {
  for (let attempt = 0; ; attempt++) {
    const probe = await bindAt(0);
    const port = probe.address().port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    try {
      return await bindAt(port);
    } catch (error) {
      if (attempt >= 5) throw error;
    }
  }
}

async function bind(params: { count: number }): Promise<number[]> {
  const made: Socket[] = [];
  for (let i = 0; i < params.count; i++) made.push(await bindSticky());
  sockets.push(...made);
  return made.map((socket) => socket.address().port);
}

/** Each socket sends its pid to the registrar until it answers OK (as the Godot client does). */
async function register(params: { registrarPort: number; pids: string[] }): Promise<void> {
  await Promise.all(
    sockets.map(
      (socket, index) =>
        new Promise<void>((resolve, reject) => {
          const pid = params.pids[index];
          if (pid === undefined) return resolve();
          let tries = 0;
          const attempt = () => {
            if (tries++ > 50) {
              cleanup();
              reject(new Error(`registrar did not answer socket ${index}`));
              return;
            }
            socket.send(pid, params.registrarPort, HOST);
          };
          const timer = setInterval(attempt, 100);
          const onReply = (message: Buffer) => {
            cleanup();
            if (message.toString() === 'OK') resolve();
            else reject(new Error(`registrar said ${message.toString().slice(0, 80)}`));
          };
          const cleanup = () => {
            clearInterval(timer);
            socket.removeListener('message', onReply);
          };
          socket.on('message', onReply);
          attempt();
        }),
    ),
  );
}

/** Socket i only talks to 127.0.0.1:ports[i] from now on. */
async function connect(params: { ports: number[] }): Promise<void> {
  await Promise.all(
    sockets.map(
      (socket, index) =>
        new Promise<void>((resolve) => {
          const port = params.ports[index];
          socket.removeAllListeners('message');
          socket.on('message', (message: Buffer) => onMessage(socket, message));
          try {
            socket.disconnect();
          } catch {
            // was not connected
          }
          if (port === undefined) return resolve();
          socket.connect(port, HOST, () => resolve());
        }),
    ),
  );
}

function reset(params: { echo?: boolean; rtt?: boolean }): void {
  received = 0;
  receivedBytes = 0;
  echo = params.echo ?? false;
  collectRtt = params.rtt ?? false;
  rttSamples = [];
}

function counts(): { received: number; receivedBytes: number } {
  return { received, receivedBytes };
}

interface SendParams {
  rate: number;
  durationMs: number;
  size: number;
  /** Put a send timestamp in the first 8 bytes (round-trip mode). */
  stamp?: boolean;
}

/**
 * Paced sending: every timer tick (about 1 ms) sends what is due since the start, round-robin
 * over the sockets, in a burst capped so a late tick never floods. Returns what was really sent.
 */
function send(params: SendParams): Promise<{ sent: number; elapsedMs: number; sendErrors: number }> {
  const { rate, durationMs, size, stamp = false } = params;
  const fixed = Buffer.alloc(size, 0x61);
  const total = Math.floor((rate * durationMs) / 1000);
  const maxBurst = Math.max(16, Math.ceil(rate / 250)); // at most ~4 ms of load in one tick
  let sent = 0;
  let scheduled = 0; // sent + skipped
  let sendErrors = 0;
  let next = 0;
  const count = sockets.length;
  const start = performance.now();
  return new Promise((resolve) => {
    const tick = () => {
      const elapsed = performance.now() - start;
      if (elapsed >= durationMs || scheduled >= total) {
        resolve({ sent, elapsedMs: Math.min(elapsed, durationMs), sendErrors });
        return;
      }
      let burst = Math.min(total, Math.floor((rate * elapsed) / 1000)) - scheduled;
      if (burst > maxBurst) {
        // Behind schedule: skip the backlog rather than burst it (the achieved rate is reported).
        scheduled += burst - maxBurst;
        burst = maxBurst;
      }
      scheduled += burst;
      for (let i = 0; i < burst; i++) {
        const socket = sockets[next]!;
        next = next + 1 === count ? 0 : next + 1;
        try {
          if (stamp) {
            const message = Buffer.allocUnsafe(size);
            message.fill(0x61, 8);
            message.writeDoubleLE(performance.now(), 0);
            socket.send(message);
          } else {
            socket.send(fixed);
          }
          sent++;
        } catch {
          sendErrors++;
        }
      }
      setTimeout(tick, 1);
    };
    tick();
  });
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

function rtt(): { samples: number; p50: number; p99: number; p999: number; max: number } {
  const sorted = Float64Array.from(rttSamples).sort();
  return {
    samples: sorted.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    p999: percentile(sorted, 99.9),
    max: sorted.length ? sorted[sorted.length - 1]! : NaN,
  };
}

async function close(): Promise<void> {
  await Promise.all(sockets.map((socket) => new Promise<void>((resolve) => socket.close(() => resolve()))));
  sockets = [];
}

serve({ bind, register, connect, reset, counts, send, rtt, close });
