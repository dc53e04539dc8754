/**
 * Baseline: the barest Node UDP forwarder. Per pair two sockets FA and FB; whatever arrives on FB
 * goes to B from FA, whatever arrives on FA goes to A from FB (the relay's addressing), with a
 * fixed target per socket: no table lookup, no limiter, no counters.
 */
import { createSocket, type Socket } from 'node:dgram';
import { serve } from './lib/rpc.js';

const HOST = '127.0.0.1';
const bufferBytes = Number(process.env.BENCH_UDP_BUFFER ?? 4 * 1024 * 1024);
const sockets: Socket[] = [];

function bindOne(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket({ type: 'udp4', recvBufferSize: bufferBytes, sendBufferSize: bufferBytes });
    socket.once('error', reject);
    socket.bind(0, HOST, () => {
      socket.removeListener('error', reject);
      socket.on('error', () => undefined);
      sockets.push(socket);
      resolve(socket);
    });
  });
}

/** pairs: [aPort, bPort]; returns [faPort, fbPort] per pair. A sends to FB, B sends to FA. */
async function setup(params: { pairs: [number, number][] }): Promise<[number, number][]> {
  const out: [number, number][] = [];
  for (const [aPort, bPort] of params.pairs) {
    const fa = await bindOne();
    const fb = await bindOne();
    fb.on('message', (message) => fa.send(message, bPort, HOST));
    fa.on('message', (message) => fb.send(message, aPort, HOST));
    out.push([fa.address().port, fb.address().port]);
  }
  return out;
}

function buffers(): { recv: number; send: number } | null {
  const socket = sockets[0];
  return socket ? { recv: socket.getRecvBufferSize(), send: socket.getSendBufferSize() } : null;
}

serve({ setup, buffers });
