/**
 * 3. wsrelay big messages: a phone logged into the attacker's own room sends ~1 MB JSON objects
 * full of numbers (some past 2^53, which the relay must keep exact) as fast as the connection
 * drains. When the byte rate closes it, it logs in again and goes on.
 */
import { WebSocket } from 'ws';
import { WsPeer } from '../../../test/clients/carparty.js';
import { Counters, errorText, loops, randomText, SERVER_HOST, sleep, withTimeout, type Attack } from '../common.js';

const MESSAGE_BYTES = 1_000_000 - 4096; // under NORAY_WSRELAY_MAX_MESSAGE_SIZE (1mb)

function bigMessage(): string {
  const numbers: string[] = [];
  let length = 20;
  for (let i = 0; length < MESSAGE_BYTES; i++) {
    const n = i % 3 === 0 ? `${9007199254740993n + BigInt(i)}` : (Math.random() * 1e6).toFixed(3);
    numbers.push(n);
    length += n.length + 1;
  }
  return `{"numbers":[${numbers.join(',')}]}`;
}

export const wsrelayBig: Attack = async ({ ports }) => {
  const counters = new Counters();
  const code = `ABUSE${randomText(6).toUpperCase()}`;
  // The room's game server: a plain ws socket that only counts (WsPeer would keep every message).
  const server = new WebSocket(`ws://${SERVER_HOST}:${ports.wsrelay}/`, { perMessageDeflate: false });
  await withTimeout(new Promise<void>((resolve, reject) => {
    server.once('open', () => resolve());
    server.once('error', reject);
  }), 5000, 'room server open');
  server.on('error', () => undefined);
  server.on('message', (data: Buffer) => {
    if (data.length < 200) counters.add(data.toString('utf8').includes('"disconnect"') ? 'server_got_disconnect' : 'server_got_notice');
    else {
      counters.add('messages_relayed');
      counters.add('bytes_relayed', data.length);
    }
  });
  server.on('close', () => counters.add('room_server_closed'));
  server.send(JSON.stringify({ action: 'login_server', server_code: code }));
  await sleep(50);
  const message = bigMessage();
  counters.add('message_bytes', Buffer.byteLength(message));
  let phone: WsPeer | null = null;
  const running = loops(1, async (_, isRunning) => {
    try {
      if (phone === null) {
        phone = await WsPeer.open(ports.wsrelay, '/', {});
        phone.send({ action: 'login_client', server_code: code, client_id: 'phone1' });
        counters.add('phone_logins');
        void phone.closed.then((closed) => counters.add(`phone_closed_${closed.code}${closed.reason ? `_${closed.reason}` : ''}`));
      }
      const ws = phone.ws;
      if (ws.readyState !== WebSocket.OPEN) {
        phone = null;
        return;
      }
      if (ws.bufferedAmount > 2 * MESSAGE_BYTES) {
        await sleep(1);
        return;
      }
      ws.send(message);
      counters.add('messages_sent');
      await new Promise<void>((resolve) => setImmediate(resolve));
    } catch (error) {
      counters.add(`failed: ${errorText(error)}`);
      phone = null;
      if (isRunning()) await sleep(50);
    }
  });
  return {
    stop: async () => {
      await running.stop();
      const last: WsPeer | null = phone;
      if (last !== null) (last as WsPeer).ws.terminate();
      server.terminate();
      return counters.toJSON();
    },
  };
};
