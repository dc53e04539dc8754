import { describe, expect, it } from 'vitest';
import { port, startApp } from '../helpers/app.js';
import { raw, RoccoClient } from '../clients/rocco.js';

const header = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};

/** One misbehaving client; resolves once its connection is gone. */
async function misbehave(p: number, kind: number, name: string, max: number): Promise<void> {
  const client = await RoccoClient.open(p);
  if (kind !== 4) await client.init(name);
  switch (kind) {
    case 0: // broken framing
      client.write(header(-1));
      break;
    case 1: // malformed JSON
      client.write(raw('{"payloadType":"MESSAGE","destination":'));
      break;
    case 2: // oversize
      client.write(header(max + 1));
      break;
    case 3: // abrupt disconnect mid-frame, holding an id
      client.write(Buffer.concat([header(100), Buffer.from('{"payloadType":"MESS')]));
      client.socket.destroy();
      break;
    default: // abrupt disconnect mid-header, before INIT
      client.write(Buffer.from([0, 0]));
      client.socket.destroy();
  }
  await client.closed;
}

async function behave(p: number, pairs: Array<[string, string]>): Promise<void> {
  const clients = await Promise.all(pairs.flat().map((name) => RoccoClient.init(p, name)));
  for (let i = 0; i < clients.length; i += 2) {
    const [a, b] = [clients[i]!, clients[i + 1]!];
    a.client.message(b.id, `hello ${b.id}`);
    b.client.message(a.id, `hello ${a.id}`);
  }
  for (const { client, id } of clients) expect((await client.next()).payload).toBe(`hello ${id}`);
  await Promise.all(clients.map(({ client }) => client.end()));
}

describe('tcprelay churn', () => {
  it('leaves no connection or id behind after thousands of good and bad clients', async () => {
    const max = 64 * 1024;
    const app = await startApp({ tcprelayPort: 0, tcprelayMaxFrameSize: max });
    const p = port(app, 'tcprelay', 'tcp');
    const batches = 40;
    const perBatch = 100;
    for (let batch = 0; batch < batches; batch++) {
      const pairs: Array<[string, string]> = [];
      for (let i = 0; i < perBatch / 4; i++) pairs.push([`b${batch}-${i}a`, `b${batch}-${i}b`]);
      const bad = Array.from({ length: perBatch / 2 }, (_, i) => misbehave(p, i % 5, `x${batch}-${i}`, max));
      await Promise.all([behave(p, pairs), ...bad]);
    }
    const front = app.front('tcprelay')!;
    await expect.poll(() => front.stats(), { timeout: 10_000 }).toEqual({ connections: 0, ids: 0, admitted: 0 });
    const closes = await app.metrics.getSingleMetric('noray_tcprelay_closes_total')!.get();
    const total = closes.values.reduce((n, v) => n + v.value, 0);
    expect(total).toBe(batches * perBatch);
  });
});
