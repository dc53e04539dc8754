// Guessing wsrelay room codes: failed logins are limited per source with a backoff, and past the
// limit every login is refused before its code is looked at, so guessing learns nothing.
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { loginClient, loginServer, WsPeer } from '../clients/carparty.js';
import { port, startApp } from '../helpers/app.js';
import { rejections } from '../helpers/metrics.js';

const onLinux = process.platform === 'linux';

async function attempt(wsPort: number, code: string, localAddress?: string): Promise<number> {
  const phone = await WsPeer.open(wsPort, '/', localAddress === undefined ? {} : { localAddress });
  phone.send({ action: 'login_client', server_code: code, client_id: 'guess' });
  return (await phone.closed).code;
}

describe('wsrelay: guessing room codes', () => {
  it('refuses every login of a source past its failed-login budget, the right code too, with a backoff; other sources log in', async () => {
    const clock = new ManualClock();
    const app = await startApp({ wsrelayPort: 0, wsrelayGuessRate: 1, wsrelayGuessBurst: 3 }, { clock });
    const wsPort = port(app, 'wsrelay', 'ws');
    const server = await loginServer(wsPort, 'REAL');
    await new Promise((done) => setTimeout(done, 50));
    // A server login on a taken code tells that the code is in use: it counts as a guess.
    const taken = await loginServer(wsPort, 'REAL');
    expect((await taken.closed).code).toBe(1008);
    for (const code of ['AAAA', 'BBBB']) expect(await attempt(wsPort, code)).toBe(1008);
    expect(await rejections(app.metrics, 'wsrelay', 'guess_rate')).toBe(0);
    // Out of budget: the right code is refused the same way, so a hit cannot be told from a miss.
    expect(await attempt(wsPort, 'REAL')).toBe(1008);
    expect(await attempt(wsPort, 'DDDD')).toBe(1008);
    expect(await rejections(app.metrics, 'wsrelay', 'guess_rate')).toBe(2);
    expect(server.received).toEqual([]);

    if (onLinux) {
      const phone = await loginClient(wsPort, server, 'REAL', 'p1', '127.0.0.2');
      phone.send({ ok: true });
      expect(JSON.parse(await server.next())).toEqual({ ok: true, client_id: 'p1' });
      await phone.close();
      await server.next();
    }

    // Backoff: the two refused tries left a debt of 2 tokens. At one token a second, 2 s later
    // the source is still refused (and deeper in debt), 4 s after that it may try again.
    clock.advance(2000);
    expect(await attempt(wsPort, 'REAL')).toBe(1008);
    expect(await rejections(app.metrics, 'wsrelay', 'guess_rate')).toBe(3);
    clock.advance(2000);
    const back = await loginClient(wsPort, server, 'REAL', 'p2');
    await back.close();
    await server.close();
  });
});
