// The registrar socket alone over real UDP: which datagrams are answered, registered or ignored.
import { createSocket, type Socket } from 'node:dgram';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { AddressPolicy } from '../../src/core/address-policy.js';
import { MemoryAddressBook } from '../../src/core/address-book.js';
import { ManualClock } from '../../src/core/clock.js';
import { MemorySessionStore } from '../../src/core/directory.js';
import { OwnEndpoints } from '../../src/core/own-endpoints.js';
import { SessionRegistrar } from '../../src/core/session-registrar.js';
import type { HostSession } from '../../src/fronts/noray/handlers.js';
import { createNorayMetrics } from '../../src/fronts/noray/metrics.js';
import { RegistrarSocket } from '../../src/fronts/noray/registrar-socket.js';
import { LimitReporter } from '../../src/ops/limit-reporter.js';
import { rejections } from '../helpers/metrics.js';

const PID = 'p'.repeat(16);
const open: Array<Socket | RegistrarSocket> = [];
afterEach(async () => {
  for (const item of open.splice(0)) {
    if (item instanceof RegistrarSocket) await item.close();
    else item.close();
  }
});

async function udp(): Promise<Socket> {
  const socket = createSocket('udp4');
  open.push(socket);
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return socket;
}

async function setup(own: OwnEndpoints) {
  const sessions = new MemorySessionStore<HostSession>();
  const addresses = new MemoryAddressBook();
  await sessions.claim({ id: 's1', publicId: 'host', secret: PID, connection: 'c1' });
  const registry = new Registry();
  const logger = pino({ level: 'silent' });
  const clock = new ManualClock();
  const socket = new RegistrarSocket({
    host: '127.0.0.1',
    port: 0,
    pidLength: 16,
    pidCharset: 'p',
    replyRate: 5,
    replyBurst: 5,
    clock,
    isOwnEndpoint: (address, port) => own.has(address, port),
    registrar: new SessionRegistrar(sessions, addresses),
    metrics: createNorayMetrics(registry),
    logger,
    addressPolicy: new AddressPolicy(false),
    limits: new LimitReporter(registry, logger, clock).forFront('noray'),
  });
  open.push(socket);
  await socket.bind();
  return { socket, addresses, registry, clock };
}

function repliesOf(socket: Socket): string[] {
  const replies: string[] = [];
  socket.on('message', (message) => replies.push(message.toString()));
  return replies;
}

async function until(condition: () => boolean): Promise<void> {
  await expect.poll(condition, { timeout: 3000, interval: 2 }).toBe(true);
}

describe('registrar socket', () => {
  it('never answers nor registers a datagram from one of our own endpoints (no self-sustaining loop)', async () => {
    const own = new OwnEndpoints([]);
    const { socket, addresses } = await setup(own);
    const spoofed = await udp();
    const player = await udp();
    own.add([spoofed.address().port]);
    const atSpoofed = repliesOf(spoofed);
    const atPlayer = repliesOf(player);
    spoofed.send(PID, socket.port, '127.0.0.1');
    player.send(PID, socket.port, '127.0.0.1');
    await until(() => atPlayer.length === 1);
    expect(atPlayer).toEqual(['OK']);
    expect(atSpoofed).toEqual([]);
    expect(await addresses.endpointOf('s1')).toEqual({ address: '127.0.0.1', port: player.address().port });
  });

  it('takes PrivateIDs with a line ending, and nothing of another length or charset', async () => {
    const { socket } = await setup(new OwnEndpoints([]));
    const player = await udp();
    const replies = repliesOf(player);
    for (const text of [`${PID}x`, PID.slice(1), `${PID.slice(1)}q`, `${PID}\n\n`, '']) player.send(text, socket.port, '127.0.0.1');
    player.send(`${PID}\r\n`, socket.port, '127.0.0.1');
    await until(() => replies.length === 1);
    expect(replies).toEqual(['OK']);
  });

  it('answers one source at most its burst, then its rate, and counts what it withheld', async () => {
    const { socket, registry, clock } = await setup(new OwnEndpoints([]));
    const player = await udp();
    const replies = repliesOf(player);
    for (let i = 0; i < 20; i++) player.send(PID, socket.port, '127.0.0.1');
    await expect.poll(() => rejections(registry, 'noray', 'registrar_reply_rate')).toBe(15);
    expect(replies).toHaveLength(5);
    clock.advance(1000);
    player.send(PID, socket.port, '127.0.0.1');
    await until(() => replies.length === 6);
  });
});

describe('OwnEndpoints', () => {
  it('knows its ports on loopback and on the given interface addresses only', () => {
    const own = new OwnEndpoints(['203.0.113.1']);
    own.add([8809, 49152]);
    expect(own.has('127.0.0.1', 8809)).toBe(true);
    expect(own.has('::1', 49152)).toBe(true);
    expect(own.has('203.0.113.1', 8809)).toBe(true);
    expect(own.has('203.0.113.2', 8809)).toBe(false);
    expect(own.has('127.0.0.1', 8810)).toBe(false);
  });

  it('bound to one IP: only that address with our port is us; bound to a wildcard: every local address', () => {
    const specific = new OwnEndpoints(['203.0.113.1'], '127.0.0.1');
    specific.add([8809]);
    expect(specific.has('127.0.0.1', 8809)).toBe(true);
    // A player bound to another loopback address that drew the same port number.
    expect(specific.has('127.0.1.5', 8809)).toBe(false);
    expect(specific.has('203.0.113.1', 8809)).toBe(false);
    for (const host of ['0.0.0.0', '::', '']) {
      const wildcard = new OwnEndpoints(['203.0.113.1'], host);
      wildcard.add([8809]);
      expect([host, wildcard.has('127.0.1.5', 8809), wildcard.has('203.0.113.1', 8809)]).toEqual([host, true, true]);
    }
  });
});
