/**
 * 1. Registrar garbage: flood the UDP registrar with random-length random bytes (never a PrivateID:
 * must get no answer at all) and with registrar-looking datagrams (a PrivateID's length and
 * alphabet, unknown to the server: short refusals, rate-limited per source).
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { ATTACKER_IP, Counters, randomText, SERVER_HOST, type Attack } from '../common.js';

const PID_LENGTH = 128; // NORAY_PID_LENGTH default
const URL_ALPHABET = 'useandom-26T198340PX75pxJACKVERYMINDBUSHWOLF_GQZbfghjklqvwyzrict';
const BATCH = 64;

function bound(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket({ type: 'udp4', sendBufferSize: 1 << 20 });
    socket.once('error', reject);
    socket.bind(0, ATTACKER_IP, () => {
      socket.off('error', reject);
      socket.on('error', () => undefined);
      resolve(socket);
    });
  });
}

export const registrarGarbage: Attack = async ({ ports }) => {
  const counters = new Counters();
  const garbageSocket = await bound();
  const fakeSocket = await bound();
  garbageSocket.on('message', () => counters.add('replies_to_garbage'));
  fakeSocket.on('message', () => counters.add('replies_to_fake_pids'));
  // Pools of ready datagrams so the generator spends its time sending, not making bytes.
  const garbage = Array.from({ length: 256 }, () => {
    let length = 1 + Math.floor(Math.random() * 1400);
    if (length === PID_LENGTH) length++;
    return randomBytes(length);
  });
  const fakes = Array.from({ length: 256 }, () => Buffer.from(randomText(PID_LENGTH, URL_ALPHABET)));
  let running = true;
  let inFlight = 0;
  let i = 0;
  const pump = () => {
    if (!running) return;
    // Keep a bounded number of sends queued in libuv; the kernel drops what the server cannot take.
    while (inFlight < BATCH * 4) {
      const fake = i % 2 === 1;
      const datagram = fake ? fakes[i % fakes.length]! : garbage[i % garbage.length]!;
      i++;
      inFlight++;
      counters.add(fake ? 'fake_pids_sent' : 'garbage_sent');
      (fake ? fakeSocket : garbageSocket).send(datagram, ports.registrar, SERVER_HOST, () => {
        inFlight--;
      });
    }
    setImmediate(pump);
  };
  pump();
  return {
    stop: async () => {
      running = false;
      await new Promise((resolve) => setTimeout(resolve, 200));
      garbageSocket.close();
      fakeSocket.close();
      return counters.toJSON();
    },
  };
};
