// Arbitrary input on the noray front's real sockets: the server answers well-formed lines or
// nothing, never more registrar bytes than it got, and keeps serving everyone else.
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { port, startApp } from '../helpers/app.js';
import { runs } from '../helpers/fuzz.js';
import { NetfoxClient } from '../clients/netfox.js';

describe('noray front under arbitrary input', () => {
  it('registrar: any datagram gets no reply or at most as many bytes back, never OK for a non-pid', async () => {
    const app = await startApp({ socketPort: 0, udpRegistrarPort: 0, udpRegistrarReplyRate: 1_000_000, udpRegistrarReplyBurst: 1_000_000 });
    const udp = createSocket('udp4');
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
    const registrar = port(app, 'noray', 'registrar');
    const replies: Buffer[] = [];
    udp.on('message', (message) => replies.push(message));
    // An unknown but well-formed PrivateID: always answered, and after what was sent before it.
    const probe = Buffer.from('y'.repeat(128));
    try {
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 1400 }), async (bytes) => {
          replies.length = 0;
          udp.send(bytes, registrar, '127.0.0.1');
          udp.send(probe, registrar, '127.0.0.1');
          await expect.poll(() => replies.some((reply) => reply.length === probe.length || reply.toString() === 'Unknown host pid!'), { interval: 1 }).toBe(true);
          const [first, ...rest] = replies;
          // Either the probe's reply alone, or the datagram's own reply first and then the probe's.
          const own = rest.length > 0 ? first : undefined;
          if (own !== undefined) {
            expect(own.length).toBeLessThanOrEqual(bytes.length);
            expect(own.toString()).not.toBe('OK');
          }
          expect(replies.length).toBeLessThanOrEqual(2);
        }),
        { numRuns: runs(300) },
      );
      const client = await NetfoxClient.connect(port(app, 'noray', 'control'));
      await client.registerHost();
      expect(await client.registerRemote(registrar)).toBe('OK');
      client.close();
    } finally {
      udp.close();
    }
  });

  it('control channel: any byte stream gets only LF-terminated lines without CR, and others are unaffected', async () => {
    const app = await startApp({ socketPort: 0, udpRegistrarPort: 0, socketMaxLineLength: 512 });
    const control = port(app, 'noray', 'control');
    const bystander = await NetfoxClient.connect(control);
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.uint8Array({ maxLength: 700 }),
            fc.constantFrom('register-host', 'connect x', 'connect-relay x', 'echo y', '\r\n', '\n', '\r').map((text) =>
              Buffer.from(`${text}\n`),
            ),
          ),
          { maxLength: 8 },
        ),
        async (chunks) => {
          const socket = connect({ port: control, host: '127.0.0.1' });
          const received: Buffer[] = [];
          socket.on('data', (chunk) => received.push(chunk));
          socket.on('error', () => undefined);
          await new Promise<void>((resolve) => socket.once('connect', resolve));
          for (const chunk of chunks) socket.write(chunk);
          socket.write('\necho end-of-case\n');
          const text = await new Promise<string>((resolve) => {
            const check = () => {
              const all = Buffer.concat(received).toString('utf8');
              if (all.includes('echo end-of-case\n') || /error line too long[^\n]*\n/.test(all)) resolve(all);
            };
            socket.on('data', check);
            socket.on('close', () => resolve(Buffer.concat(received).toString('utf8')));
          });
          socket.destroy();
          expect(text).not.toContain('\r');
          if (text.length > 0) expect(text.endsWith('\n')).toBe(true);
        },
      ),
      { numRuns: runs(60) },
    );
    bystander.putCommand('echo', 'still-here');
    expect(await bystander.next('echo')).toBe('still-here');
    bystander.close();
  });
});
