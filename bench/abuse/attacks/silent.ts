/**
 * 7. Silent connections: one IP opens as many idle TCP connections as it can (1000 per port) to the
 * wsrelay, the lobby HTTP and the ops HTTP ports, sends nothing and holds them. Counts how many the
 * server accepted, refused, and closed while they were held (the measurement starts once the
 * burst of accepts has settled).
 */
import type { Socket } from 'node:net';
import { ATTACKER_IP, Counters, errorText, tcpConnect, type Attack } from '../common.js';

const PER_PORT = 1000;
const BATCH = 200;

export const silent: Attack = async ({ ports }) => {
  const counters = new Counters();
  const sockets: Socket[] = [];
  let stopping = false;
  const targets: Array<[string, number]> = [
    ['wsrelay', ports.wsrelay],
    ['lobby', ports.lobbyHttp],
    ['ops', ports.ops],
  ];
  await Promise.all(
    targets.map(async ([name, port]) => {
      for (let i = 0; i < PER_PORT; i += BATCH) {
        await Promise.all(
          Array.from({ length: Math.min(BATCH, PER_PORT - i) }, async () => {
            try {
              const socket = await tcpConnect(port, ATTACKER_IP, 3000);
              sockets.push(socket);
              counters.add(`${name}_open`);
              socket.on('error', () => undefined);
              // Read whatever comes (a refusal's 503): only a flowing socket notices the server's close.
              socket.resume();
              socket.on('close', () => {
                if (!stopping) counters.add(`${name}_closed_by_server`);
              });
            } catch (error) {
              counters.add(`${name}_refused: ${errorText(error)}`);
            }
          }),
        );
      }
    }),
  );
  // The server accepts (and refuses) the burst a little after the kernel completed the handshakes:
  // let that pass, so the measurement sees the connections being held, not being opened.
  let last = -1;
  for (let waited = 0; waited < 3000; waited += 250) {
    const closed = ['wsrelay', 'lobby', 'ops'].reduce((sum, name) => sum + counters.get(`${name}_closed_by_server`), 0);
    if (closed === last) break;
    last = closed;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  counters.add('held', sockets.filter((socket) => !socket.destroyed).length);
  return {
    stop: async () => {
      stopping = true;
      for (const socket of sockets) socket.destroy();
      return counters.toJSON();
    },
  };
};
