// The SDK's event plumbing alone: once() and EventQueue (ordered, bounded, ended by close), and the
// lobby UDP step's resends against a scripted lobby server over real sockets.
import { createSocket } from 'node:dgram';
import { describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { decodeLobbyMessage, Emitter, encodeLobbyMessage, EventQueue, LobbyClient, mediateOverUdp, type LobbyEvents } from '../../src/client/node.js';

type Events = { a: number; b: string; close: Record<string, never> };

class Source extends Emitter<Events> {
  fire<K extends keyof Events>(event: K, value: Events[K]): void {
    this.emit(event, value);
  }
  finish(): void {
    this.emit('close', {});
    this.rejectPending();
  }
}

describe('Emitter and EventQueue', () => {
  it('once() resolves with the next accepted event and rejects when the emitter ends', async () => {
    const source = new Source();
    const even = source.once('a', { accept: (n) => n % 2 === 0 });
    source.fire('a', 1);
    source.fire('a', 2);
    expect(await even).toBe(2);
    const never = source.once('b');
    source.finish();
    await expect(never).rejects.toThrow(/closed while waiting for b/);
  });

  it('keeps events in order per kind, so none is missed between two awaits', async () => {
    const source = new Source();
    const queue = new EventQueue<Events>(source, ['a', 'b']);
    source.fire('a', 1);
    source.fire('b', 'x');
    source.fire('a', 2);
    expect(await queue.next('a')).toBe(1);
    expect(await queue.next('a')).toBe(2);
    expect(await queue.next('b')).toBe('x');
    const later = queue.next('a');
    source.fire('a', 3);
    expect(await later).toBe(3);
  });

  it('holds at most `limit` unread events, dropping and counting the oldest', async () => {
    const source = new Source();
    const queue = new EventQueue<Events>(source, ['a'], 3);
    for (let i = 0; i < 10; i++) source.fire('a', i);
    expect(queue.count('a')).toBe(3);
    expect(queue.dropped).toBe(7);
    expect(await queue.next('a')).toBe(7);
  });

  it('after close, what was kept can still be read; waiting for more rejects', async () => {
    const source = new Source();
    const queue = new EventQueue<Events>(source, ['a']);
    source.fire('a', 1);
    source.finish();
    expect(await queue.next('a')).toBe(1);
    await expect(queue.next('a')).rejects.toThrow(/closed/);
    await expect(new EventQueue<Events>(new Source(), ['a']).next('a', 50)).rejects.toThrow(/timed out after 50 ms/);
  });
});

describe('mediateOverUdp', () => {
  it('answers ptpMediation_send, resends every resendMs until the peers list, then stops', async () => {
    const udp = createSocket('udp4');
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
    const datagrams: string[] = [];
    udp.on('message', (message) => datagrams.push(message.toString()));
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => server.once('listening', resolve));
    server.on('connection', (socket) => {
      socket.send(encodeLobbyMessage('client_registered', { token: 'secret' }));
      // Like ptp/start: mediation begins once the client is ready (here: its chat says so).
      socket.once('message', () => socket.send(encodeLobbyMessage('ptpMediation_send', { port: udp.address().port })));
      udp.on('message', () => {
        if (datagrams.length === 3) socket.send(encodeLobbyMessage('ptpMediation_peersConnection_start', { peers: [] }));
      });
    });
    try {
      const address = server.address();
      const lobby = await LobbyClient.connect({ url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`, WebSocket });
      const mediation = await mediateOverUdp(lobby, { bindAddress: '127.0.0.1', resendMs: 20 });
      const start = lobby.once('ptpMediation_peersConnection_start');
      lobby.sendChat('ABCDE', 'ready');
      const started = await start;
      expect(started).toEqual({ peers: [] });
      const sent = datagrams.length;
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(datagrams.length).toBe(sent);
      expect(datagrams.map((text) => decodeLobbyMessage(text))).toEqual(Array(sent).fill({ method: 'ptpMediation_connect', payload: { token: 'secret' } }));
      mediation.stop();
      mediation.socket.close();
      await lobby.close();
    } finally {
      udp.close();
      server.close();
    }
  });
});

describe('LobbyClient on hostile input', () => {
  it('reports what is not a lobby message, or does not fit its schema, as invalid and goes on', async () => {
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => server.once('listening', resolve));
    server.on('connection', (socket) => {
      socket.send(encodeLobbyMessage('client_registered', { token: 'secret' }));
      socket.once('message', () => {
        socket.send('no separator');
        socket.send(`lobby_closed:${'A'.repeat(70 * 1024)}`); // over the 64 KiB default
        socket.send(encodeLobbyMessage('lobby_closed', { lobbyId: 7 })); // wrong types
        socket.send(encodeLobbyMessage('unknown_method', {}));
        socket.send(Buffer.from('binary'), { binary: true });
        socket.send(encodeLobbyMessage('lobby_closed', { lobbyId: 'ABCDE', lobbyName: 'fine' }));
      });
    });
    try {
      const address = server.address();
      const lobby = await LobbyClient.connect({ url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`, WebSocket });
      const queue = new EventQueue<LobbyEvents>(lobby, ['invalid', 'lobby_closed']);
      lobby.sendChat('ABCDE', 'go');
      expect(await queue.next('lobby_closed')).toEqual({ lobbyId: 'ABCDE', lobbyName: 'fine' });
      const invalid = await Promise.all([1, 2, 3, 4, 5].map(() => queue.next('invalid')));
      expect(invalid.map((event) => event.text.slice(0, 12))).toEqual(['no separator', 'lobby_closed', expect.stringMatching(/^lobby_closed/), 'unknown_meth', '(binary)']);
      expect(invalid.every((event) => event.text.length <= 200)).toBe(true);
      await lobby.close();
    } finally {
      server.close();
    }
  });
});
