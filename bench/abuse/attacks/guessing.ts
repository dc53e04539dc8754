/**
 * 8. Guessing: 32 loops of wsrelay `login_client` with random room codes (each a new WebSocket:
 * an unknown code closes it), and 4 tcprelay connections sending INITs for random ids and
 * MESSAGEs to random ids as fast as their sockets drain, counting the ERROR answers they get.
 */
import { WebSocket } from 'ws';
import { raw, RoccoClient } from '../../../test/clients/rocco.js';
import { Counters, errorText, loops, randomText, SERVER_HOST, sleep, withTimeout, type Attack } from '../common.js';

const WS_LOOPS = 32;
const TCP_SENDERS = 4;
const FRAMES_PER_ROUND = 50;

function guessRoom(port: number, counters: Counters): Promise<void> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://${SERVER_HOST}:${port}/`, { perMessageDeflate: false });
    const timer = setTimeout(() => {
      counters.add('ws_guess_no_answer');
      ws.terminate();
    }, 3000);
    ws.on('open', () => {
      counters.add('ws_guesses');
      ws.send(JSON.stringify({ action: 'login_client', server_code: randomText(4).toUpperCase(), client_id: 'guess' }));
    });
    ws.on('unexpected-response', (_, response) => {
      counters.add(`ws_upgrade_http_${response.statusCode ?? 0}`);
      ws.terminate();
    });
    ws.on('error', () => undefined);
    ws.on('close', (code) => {
      clearTimeout(timer);
      counters.add(`ws_closed_${code}`);
      resolve();
    });
  });
}

export const guessing: Attack = async ({ ports }) => {
  const counters = new Counters();
  const wsLoops = loops(WS_LOOPS, async (_, isRunning) => {
    try {
      await guessRoom(ports.wsrelay, counters);
    } catch (error) {
      counters.add(`ws_failed: ${errorText(error)}`);
      if (isRunning()) await sleep(20);
    }
  });
  const senders: (RoccoClient | null)[] = Array.from({ length: TCP_SENDERS }, () => null);
  const seen = new Map<RoccoClient, number>();
  const tcpLoops = loops(TCP_SENDERS, async (index, isRunning) => {
    try {
      let sender = senders[index] ?? null;
      if (sender === null || sender.socket.destroyed) {
        if (sender !== null) counters.add('tcp_senders_closed_by_server');
        sender = (await withTimeout(RoccoClient.init(ports.tcprelay), 5000, 'INIT')).client;
        senders[index] = sender;
        seen.set(sender, 0);
      }
      const frames: Buffer[] = [];
      for (let i = 0; i < FRAMES_PER_ROUND; i++) {
        frames.push(
          i % 5 === 0
            ? raw({ payloadType: 'INIT', source: randomText(12) })
            : raw({ payloadType: 'MESSAGE', destination: randomText(12), payload: 'hi' }),
        );
      }
      counters.add('tcp_frames_sent', FRAMES_PER_ROUND);
      const socket = sender.socket;
      if (!socket.write(Buffer.concat(frames))) {
        await new Promise<void>((resolve) => {
          socket.once('drain', resolve);
          socket.once('close', resolve);
        });
      } else await new Promise<void>((resolve) => setImmediate(resolve));
      // What came back (ERROR answers, and an INIT whenever a random id was free).
      const before = seen.get(sender) ?? 0;
      const now = sender.frames.length;
      for (const text of sender.frames.slice(before, now)) counters.add(text.includes('"ERROR"') ? 'tcp_error_answers' : 'tcp_other_answers');
      seen.set(sender, now);
    } catch (error) {
      counters.add(`tcp_failed: ${errorText(error)}`);
      if (isRunning()) await sleep(50);
    }
  });
  return {
    stop: async () => {
      const stopped = Promise.all([wsLoops.stop(), tcpLoops.stop()]);
      for (const sender of senders) sender?.socket.destroy();
      await stopped;
      return counters.toJSON();
    },
  };
};
