// TcpRelayClient against a running tcprelay front over loopback: ids chosen and picked, frames
// between ids, ERROR frames, CLOSE, and a broken frame from the other end.
import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import { TcpRelayClient } from '../../src/client/node.js';
import { port, startApp } from '../helpers/app.js';

const clients: TcpRelayClient[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.end()));
});

async function relayClient(app: App, id?: string): Promise<TcpRelayClient> {
  const client = await TcpRelayClient.open({ host: '127.0.0.1', port: port(app, 'tcprelay', 'tcp'), ...(id === undefined ? {} : { id }) });
  clients.push(client);
  return client;
}

describe('TcpRelayClient', () => {
  it('takes a chosen id or one the relay picks; MESSAGE frames go between ids, stamped with the source', async () => {
    const app = await startApp({ tcprelayPort: 0 });
    const alice = await relayClient(app, 'alice');
    const picked = await relayClient(app);
    expect(alice.id).toBe('alice');
    expect(picked.id).toMatch(/.+/);

    const toPicked = picked.once('message');
    alice.send(picked.id as string, 'hi "there" ü');
    expect(await toPicked).toEqual({ source: 'alice', destination: picked.id, payload: 'hi "there" ü' });

    const back = alice.once('message');
    picked.send('alice', 'hello');
    expect(await back).toEqual({ source: picked.id, destination: 'alice', payload: 'hello' });

    const forwarded = alice.once('error');
    picked.sendError('alice', 'lost the round');
    expect(await forwarded).toEqual({ source: picked.id, destination: 'alice', payload: 'lost the round' });
  });

  it('a taken id rejects; an unknown destination is an error event from the relay', async () => {
    const app = await startApp({ tcprelayPort: 0 });
    await relayClient(app, 'bob');
    await expect(relayClient(app, 'bob')).rejects.toThrow(/INIT refused: ClientId: bob is already initialized/);
    const carol = await relayClient(app, 'carol');
    const refused = carol.once('error');
    carol.send('nobody', 'hello?');
    const error = await refused;
    expect(error.source).toBeUndefined();
    expect(error.payload).toMatch(/.+/);
  });

  it('release() frees the id for someone else; the connection stays and can INIT again', async () => {
    const app = await startApp({ tcprelayPort: 0 });
    const first = await relayClient(app, 'dave');
    first.release();
    const second = await TcpRelayClient.connect({ host: '127.0.0.1', port: port(app, 'tcprelay', 'tcp') });
    clients.push(second);
    // The CLOSE may still be on its way: INIT again until the id is free.
    let taken: string | null = null;
    for (let attempt = 0; attempt < 50 && taken === null; attempt++) {
      taken = await second.init('dave').catch(() => null);
    }
    expect(taken).toBe('dave');
    expect(await first.init('erin')).toBe('erin');
  });

  it('closes on an announced frame over maxFrameSize, without reading it', async () => {
    const server = createServer((socket) => {
      const header = Buffer.alloc(4);
      header.writeInt32BE(10_000);
      socket.write(header);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const address = server.address();
      const client = await TcpRelayClient.connect({ host: '127.0.0.1', port: typeof address === 'object' && address ? address.port : 0, maxFrameSize: 1000 });
      const closed = await client.once('close');
      expect(closed.error?.message).toMatch(/exceeds 1000/);
    } finally {
      server.close();
    }
  });

  it('an INIT the relay never answers rejects after timeoutMs', async () => {
    const server = createServer((socket) => socket.resume()); // reads (and so sees the FIN) but never answers
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const address = server.address();
      const client = await TcpRelayClient.connect({ host: '127.0.0.1', port: typeof address === 'object' && address ? address.port : 0, timeoutMs: 200 });
      clients.push(client);
      await expect(client.init('x')).rejects.toThrow(/no answer to INIT within 200 ms/);
    } finally {
      server.close();
    }
  });
});
