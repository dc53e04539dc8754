// STUN on the noray front's real sockets: the registrar port and NORAY_STUN_ALT_PORT answer
// Binding requests with the source address (checked with a STUN client we did not write), while
// PrivateIDs still register; nothing else is answered, and answers are rate-limited per source.
import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { AddressPolicy } from '../../src/core/address-policy.js';
import { ManualClock } from '../../src/core/clock.js';
import { OwnEndpoints } from '../../src/core/own-endpoints.js';
import { createNorayMetrics, type NorayLimitReason } from '../../src/fronts/noray/metrics.js';
import { StunResponder } from '../../src/fronts/noray/stun-responder.js';
import { StunSocket } from '../../src/fronts/noray/stun-socket.js';
import { LimitReporter } from '../../src/ops/limit-reporter.js';
import { classifyStun, decodeBindingSuccess, encodeBindingRequest, encodeBindingSuccess, MAX_RESPONSE_BYTES } from '../../src/core/stun.js';
import { NetfoxClient } from '../clients/netfox.js';
import { port, startApp } from '../helpers/app.js';
import { runs } from '../helpers/fuzz.js';
import { rejections, sampleOf } from '../helpers/metrics.js';
import { onCi, stunClientMissing, thirdPartyStun } from '../helpers/stun-client.js';

const sockets: Socket[] = [];
afterEach(() => {
  for (const socket of sockets.splice(0)) socket.close();
});

async function udp(): Promise<{ socket: Socket; replies: Buffer[] }> {
  const socket = createSocket('udp4');
  sockets.push(socket);
  const replies: Buffer[] = [];
  socket.on('message', (message) => replies.push(message));
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return { socket, replies };
}

const stunApp = (extra: Parameters<typeof startApp>[0] = {}) => startApp({ socketPort: 0, udpRegistrarPort: 0, stunAltPort: 0, ...extra });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('STUN on the registrar and alt ports', () => {
  it('answers a Binding request on both ports with the address the request came from', async () => {
    const app = await stunApp();
    const { socket, replies } = await udp();
    for (const role of ['registrar', 'stunAlt']) {
      replies.length = 0;
      const id = randomBytes(12);
      socket.send(encodeBindingRequest(id), port(app, 'noray', role), '127.0.0.1');
      await expect.poll(() => replies.length).toBe(1);
      expect(replies[0]?.length).toBeLessThanOrEqual(MAX_RESPONSE_BYTES);
      expect(decodeBindingSuccess(replies[0] ?? Buffer.alloc(0), id)).toEqual({ address: '127.0.0.1', port: socket.address().port });
    }
    expect(await sampleOf(app.metrics, 'noray_stun_requests_total', { socket: 'registrar', outcome: 'answered' })).toBe(1);
    expect(await sampleOf(app.metrics, 'noray_stun_requests_total', { socket: 'alt', outcome: 'answered' })).toBe(1);
  });

  it('over IPv6: XOR-MAPPED-ADDRESS carries the IPv6 source', async () => {
    const app = await startApp({ socketPort: 0, udpHost: '::1', udpRegistrarPort: 0, stunAltPort: 0 });
    const socket = createSocket('udp6');
    sockets.push(socket);
    const replies: Buffer[] = [];
    socket.on('message', (message) => replies.push(message));
    await new Promise<void>((resolve) => socket.bind(0, '::1', resolve));
    const id = randomBytes(12);
    socket.send(encodeBindingRequest(id), port(app, 'noray', 'stunAlt'), '::1');
    await expect.poll(() => replies.length).toBe(1);
    expect(replies[0]?.length).toBe(MAX_RESPONSE_BYTES);
    expect(decodeBindingSuccess(replies[0] ?? Buffer.alloc(0), id)).toEqual({ address: '::1', port: socket.address().port });
  });

  it('the registrar still registers PrivateIDs beside STUN', async () => {
    const app = await stunApp();
    const client = await NetfoxClient.connect(port(app, 'noray', 'control'));
    try {
      await client.registerHost();
      expect(await client.registerRemote(port(app, 'noray', 'registrar'))).toBe('OK');
    } finally {
      client.close();
    }
  });

  it('answers no response, indication, other method or unsupported request, and nothing that is not STUN on the alt port', async () => {
    const app = await stunApp();
    const { socket, replies } = await udp();
    const id = randomBytes(12);
    const response = encodeBindingSuccess(id, { address: '127.0.0.1', port: socket.address().port });
    const indication = encodeBindingRequest(id);
    indication.writeUInt16BE(0x0011, 0);
    const allocate = encodeBindingRequest(id);
    allocate.writeUInt16BE(0x0003, 0);
    const withUsername = Buffer.concat([encodeBindingRequest(id), Buffer.from('0006000475736572', 'hex')]);
    withUsername.writeUInt16BE(8, 2);
    for (const role of ['registrar', 'stunAlt']) {
      for (const datagram of [response, indication, allocate, withUsername, Buffer.from('hello')]) socket.send(datagram, port(app, 'noray', role), '127.0.0.1');
    }
    // Then one good request: its answer must be the only reply.
    socket.send(encodeBindingRequest(id), port(app, 'noray', 'stunAlt'), '127.0.0.1');
    await expect.poll(() => replies.length).toBe(1);
    await sleep(50);
    expect(replies).toHaveLength(1);
    expect(classifyStun(replies[0] ?? Buffer.alloc(0))).toEqual({ kind: 'refused', reason: 'not_request' });
    expect(await sampleOf(app.metrics, 'noray_stun_requests_total', { socket: 'alt', outcome: 'not_request' })).toBe(2);
    expect(await sampleOf(app.metrics, 'noray_stun_requests_total', { socket: 'registrar', outcome: 'unsupported' })).toBe(1);
    expect(await sampleOf(app.metrics, 'noray_stun_requests_total', { socket: 'alt', outcome: 'not_stun' })).toBe(1);
  });

  it('answers one source at most its burst over both ports together, and counts the rest', async () => {
    const app = await stunApp({ udpRegistrarReplyRate: 1, udpRegistrarReplyBurst: 4 });
    const { socket, replies } = await udp();
    for (let i = 0; i < 5; i++) {
      socket.send(encodeBindingRequest(randomBytes(12)), port(app, 'noray', 'registrar'), '127.0.0.1');
      socket.send(encodeBindingRequest(randomBytes(12)), port(app, 'noray', 'stunAlt'), '127.0.0.1');
    }
    await expect.poll(() => rejections(app.metrics, 'noray', 'stun_reply_rate')).toBeGreaterThanOrEqual(5);
    await sleep(50);
    expect(replies.length).toBeLessThanOrEqual(5);
    expect(replies.length).toBeGreaterThanOrEqual(4);
  });

  it('the alt port never answers one of our own endpoints (no loop between our sockets)', async () => {
    const registry = new Registry();
    const logger = pino({ level: 'silent' });
    const clock = new ManualClock();
    const metrics = createNorayMetrics(registry);
    const limits = new LimitReporter(registry, logger, clock).forFront<NorayLimitReason>('noray');
    const responder = new StunResponder({ replyRate: 100, replyBurst: 100, clock, addressPolicy: new AddressPolicy(false), metrics, limits });
    const ours = await udp();
    const player = await udp();
    const own = new OwnEndpoints([]);
    own.add([ours.socket.address().port]);
    const alt = new StunSocket({ host: '127.0.0.1', port: 0, responder, isOwnEndpoint: (a, p) => own.has(a, p), metrics, limits, logger });
    await alt.bind();
    try {
      ours.socket.send(encodeBindingRequest(randomBytes(12)), alt.port, '127.0.0.1');
      player.socket.send(encodeBindingRequest(randomBytes(12)), alt.port, '127.0.0.1');
      await expect.poll(() => player.replies.length).toBe(1);
      await expect.poll(() => rejections(registry, 'noray', 'own_address')).toBe(1);
      expect(ours.replies).toEqual([]);
    } finally {
      await alt.close();
    }
  });

  const missing = stunClientMissing();
  if (missing !== null && !onCi) {
    it.skip(`a third-party STUN client reads our answers (skipped: ${missing})`, () => undefined);
  } else {
    it('a third-party STUN client (coturn turnutils_stunclient) reads the mapped address from both ports', async () => {
      if (missing !== null) throw new Error(`${missing}: required on CI`);
      const app = await stunApp();
      for (const role of ['registrar', 'stunAlt']) {
        const mapped = await thirdPartyStun('127.0.0.1', port(app, 'noray', role));
        expect(mapped, role).toMatch(/^127\.0\.0\.1:\d+$/);
        expect(Number(mapped?.split(':')[1])).toBeGreaterThan(0);
      }
      expect(await sampleOf(app.metrics, 'noray_stun_requests_total', { socket: 'registrar', outcome: 'answered' })).toBeGreaterThanOrEqual(1);
    }, 20_000);
  }
});

describe('STUN ports under arbitrary input', () => {
  it('a STUN-shaped or arbitrary datagram gets no reply, or one Binding success of at most 44 bytes to a Binding request', async () => {
    const app = await stunApp({ udpRegistrarReplyRate: 1_000_000, udpRegistrarReplyBurst: 1_000_000 });
    const { socket, replies } = await udp();
    const targets = [port(app, 'noray', 'registrar'), port(app, 'noray', 'stunAlt')];
    const stunShaped = fc
      .tuple(
        fc.oneof(fc.constant(0x0001), fc.integer({ min: 0, max: 0x3fff })),
        fc.oneof(fc.constant(new Uint8Array(0)), fc.uint8Array({ maxLength: 64 })),
        fc.uint8Array({ minLength: 12, maxLength: 12 }),
      )
      .map(([type, body, id]) => {
        const request = encodeBindingRequest(id);
        request.writeUInt16BE(type, 0);
        const attributes = Buffer.from(body.subarray(0, body.length - (body.length % 4)));
        request.writeUInt16BE(attributes.length, 2);
        return Buffer.concat([request, attributes]);
      });
    await fc.assert(
      fc.asyncProperty(fc.oneof(stunShaped, fc.uint8Array({ minLength: 1, maxLength: 600 }).map((b) => Buffer.from(b))), fc.constantFrom(...targets), async (datagram, target) => {
        replies.length = 0;
        const probeId = randomBytes(12);
        socket.send(datagram, target, '127.0.0.1');
        socket.send(encodeBindingRequest(probeId), target, '127.0.0.1');
        await expect.poll(() => replies.some((reply) => decodeBindingSuccess(reply, probeId) !== null), { interval: 1 }).toBe(true);
        const own = replies.filter((reply) => decodeBindingSuccess(reply, probeId) === null);
        const isRequest = classifyStun(datagram).kind === 'binding_request';
        expect(own.length).toBe(isRequest ? 1 : 0);
        for (const reply of own) {
          expect(reply.length).toBeLessThanOrEqual(MAX_RESPONSE_BYTES);
          expect(decodeBindingSuccess(reply, datagram.subarray(8, 20))).toEqual({ address: '127.0.0.1', port: socket.address().port });
        }
      }),
      { numRuns: runs(200) },
    );
  }, 60_000);
});
