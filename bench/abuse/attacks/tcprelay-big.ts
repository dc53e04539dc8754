/**
 * 6. tcprelay big frames: 4 Rocco clients of one IP send ~1 MB MESSAGE frames to one receiver id
 * as fast as their sockets drain. The receiver (also the attacker's) reads everything, so the
 * server does the full work: parse, stamp, re-encode, write. A sender cut by the server reconnects.
 */
import type { Socket } from 'node:net';
import { raw, RoccoClient } from '../../../test/clients/rocco.js';
import { ATTACKER_IP, Counters, errorText, loops, randomText, sleep, tcpConnect, withTimeout, type Attack } from '../common.js';

const SENDERS = 4;
const PAYLOAD_CHARS = 1_000_000 - 1024; // the frame stays under NORAY_TCPRELAY_MAX_FRAME_SIZE (1mb)

export const tcprelayBig: Attack = async ({ ports }) => {
  const counters = new Counters();
  const receiverId = `victim-${randomText(8)}`;
  const receiver: Socket = await tcpConnect(ports.tcprelay, ATTACKER_IP);
  receiver.on('data', (chunk: Buffer) => counters.add('receiver_bytes', chunk.length));
  receiver.on('error', () => undefined);
  receiver.on('close', () => counters.add('receiver_closed'));
  receiver.write(raw({ payloadType: 'INIT', source: receiverId }));
  await sleep(100);
  const frame = raw({ payloadType: 'MESSAGE', destination: receiverId, payload: '1234567890'.repeat(PAYLOAD_CHARS / 10) });
  counters.add('frame_bytes', frame.length);
  const senders: (RoccoClient | null)[] = Array.from({ length: SENDERS }, () => null);
  const running = loops(SENDERS, async (index, isRunning) => {
    try {
      let sender = senders[index] ?? null;
      if (sender === null || sender.socket.destroyed) {
        if (sender !== null) counters.add('senders_cut');
        sender = (await withTimeout(RoccoClient.init(ports.tcprelay), 5000, 'sender INIT')).client;
        senders[index] = sender;
      }
      const socket = sender.socket;
      counters.add('frames_sent');
      if (!socket.write(frame)) {
        await new Promise<void>((resolve) => {
          const done = () => {
            socket.off('drain', done);
            socket.off('close', done);
            resolve();
          };
          socket.on('drain', done);
          socket.on('close', done);
        });
      }
    } catch (error) {
      counters.add(`failed: ${errorText(error)}`);
      if (isRunning()) await sleep(50);
    }
  });
  return {
    stop: async () => {
      const stopped = running.stop(); // no new round starts from here on
      for (const sender of senders) sender?.socket.destroy(); // wakes a sender waiting for 'drain'
      receiver.destroy();
      await stopped;
      return counters.toJSON();
    },
  };
};
