// LobbyClient against a running lobby front over loopback: every HTTP call, every WebSocket event,
// and mediation with its UDP step, using the `ws` package's WebSocket as Node 20 must.
import { createServer } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { App } from '../../src/app.js';
import { LobbyClient, LobbyHttpError, mediateOverUdp, ResponseTooLargeError, type MediationUdp } from '../../src/client/node.js';
import { port, startApp } from '../helpers/app.js';

const clients: LobbyClient[] = [];
const udps: MediationUdp[] = [];

afterEach(async () => {
  for (const udp of udps.splice(0)) udp.socket.close();
  await Promise.all(clients.splice(0).map((client) => client.close()));
});

async function lobbyClient(app: App): Promise<LobbyClient> {
  const client = await LobbyClient.connect({ url: `http://127.0.0.1:${port(app, 'lobby', 'http')}`, WebSocket });
  clients.push(client);
  return client;
}

function startLobby(): Promise<App> {
  return startApp({ lobbyHttpPort: 0, lobbyUdpPort: 0 });
}

describe('LobbyClient', () => {
  it('connects with a token; ping, create, list, join; peers hear joins and leaves', async () => {
    const app = await startLobby();
    const alice = await lobbyClient(app);
    const bob = await lobbyClient(app);
    expect(alice.token).toMatch(/^[0-9a-f-]{36}$/);
    expect(await alice.ping()).toBe('pong');

    const { lobbyId, lobbyName } = await alice.createLobby({ hostName: 'Alice', lobbyName: 'Friday night', isPublic: true, maxMembers: 4 });
    expect(lobbyName).toBe('Friday night');
    expect(await bob.listLobbies()).toEqual([{ name: 'Friday night', id: lobbyId, currentMembers: 1, maxMembers: 4 }]);

    const joined = alice.once('lobby_peerConnect');
    expect(await bob.joinLobby(lobbyId, 'Bob')).toEqual({ lobbyId, lobbyName: 'Friday night', lobbyMembers: ['Alice', 'Bob'], host: 'Alice' });
    expect(await joined).toEqual({ lobbyId, peerName: 'Bob' });

    const left = alice.once('lobby_peerDisconnect');
    await bob.close();
    expect(await left).toEqual({ lobbyId, peerName: 'Bob' });
    expect(bob.isClosed).toBe(true);
  });

  it('refusals are LobbyHttpErrors with the status and the server reasons', async () => {
    const app = await startLobby();
    const alice = await lobbyClient(app);
    const invalid = await alice.createLobby({ hostName: '', lobbyName: 'x', isPublic: true, maxMembers: 4 }).catch((error: unknown) => error);
    expect(invalid).toBeInstanceOf(LobbyHttpError);
    expect((invalid as LobbyHttpError).status).toBe(400);
    const missing = await alice.joinLobby('ZZZZZ', 'Alice').catch((error: unknown) => error);
    expect(missing).toMatchObject({ status: 409 });
    expect((missing as LobbyHttpError).errors.length).toBe(1);
  });

  it('chat reaches every member, the sender included; the host leaving closes the lobby', async () => {
    const app = await startLobby();
    const alice = await lobbyClient(app);
    const bob = await lobbyClient(app);
    const { lobbyId } = await alice.createLobby({ hostName: 'Alice', lobbyName: 'chat', isPublic: false, maxMembers: 2 });
    await bob.joinLobby(lobbyId, 'Bob');
    const heard = Promise.all([alice.once('lobby_messaging_received'), bob.once('lobby_messaging_received')]);
    bob.sendChat(lobbyId, 'ready?');
    for (const { lobbyId: id, message } of await heard) {
      expect(id).toBe(lobbyId);
      expect(message).toMatchObject({ senderName: 'Bob', message: 'ready?' });
      expect(typeof message.timestamp).toBe('number');
    }
    const closed = bob.once('lobby_closed');
    await alice.close();
    expect(await closed).toEqual({ lobbyId, lobbyName: 'chat' });
  });

  it('mediation: the UDP step from each game socket, peers exchanged, success, lobby closed', async () => {
    const app = await startLobby();
    const alice = await lobbyClient(app);
    const bob = await lobbyClient(app);
    const { lobbyId } = await alice.createLobby({ hostName: 'Alice', lobbyName: 'mediated', isPublic: true, maxMembers: 2 });
    await bob.joinLobby(lobbyId, 'Bob');
    const aliceUdp = await mediateOverUdp(alice, { bindAddress: '127.0.0.1' });
    const bobUdp = await mediateOverUdp(bob, { bindAddress: '127.0.0.1' });
    udps.push(aliceUdp, bobUdp);

    const asked = alice.once('ptpMediation_send');
    const starts = Promise.all([alice.once('ptpMediation_peersConnection_start'), bob.once('ptpMediation_peersConnection_start')]);
    await alice.startMediation(lobbyId);
    expect((await asked).port).toBe(port(app, 'lobby', 'udp'));
    const [toAlice, toBob] = await starts;
    // Each is given the address its game socket sent from: the one to punch through to.
    expect(toAlice.peers).toEqual([{ ip: '127.0.0.1', port: bobUdp.socket.address().port }]);
    expect(toBob.peers).toEqual([{ ip: '127.0.0.1', port: aliceUdp.socket.address().port }]);

    // Both events arrive back to back: wait for both from the start (once() sees only later events).
    const ends = Promise.all([alice, bob].map((member) => Promise.all([member.once('ptpMediation_success'), member.once('lobby_closed')])));
    alice.reportPeersConnected();
    bob.reportPeersConnected();
    expect(await ends).toEqual([
      [{}, { lobbyId, lobbyName: 'mediated' }],
      [{}, { lobbyId, lobbyName: 'mediated' }],
    ]);
  });

  it('mediation aborts when a member leaves, with the reason', async () => {
    const app = await startLobby();
    const alice = await lobbyClient(app);
    const bob = await lobbyClient(app);
    const { lobbyId } = await alice.createLobby({ hostName: 'Alice', lobbyName: 'aborted', isPublic: true, maxMembers: 2 });
    await bob.joinLobby(lobbyId, 'Bob');
    const sent = bob.once('ptpMediation_send');
    await alice.startMediation(lobbyId);
    await sent;
    const aborted = alice.once('ptpMediation_aborted');
    await bob.close();
    expect(await aborted).toEqual({ abortReason: 'Lobby members changed.' });
  });

  it('reads at most maxBodyChars of an HTTP answer', async () => {
    const app = await startLobby();
    const alice = await LobbyClient.connect({ url: `http://127.0.0.1:${port(app, 'lobby', 'http')}`, WebSocket, maxBodyChars: 70 });
    clients.push(alice);
    await alice.createLobby({ hostName: 'Alice', lobbyName: 'a lobby with a long name', isPublic: true, maxMembers: 4 });
    await expect(alice.listLobbies()).rejects.toBeInstanceOf(ResponseTooLargeError);

    // Without a content-length too (a chunked answer).
    const server = createServer((_request, response) => {
      response.write('x'.repeat(64));
      response.end('y'.repeat(64));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const address = server.address();
      const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/`;
      const { boundedText } = await import('../../src/client/http.js');
      await expect(fetch(url).then((response) => boundedText(response, 100))).rejects.toBeInstanceOf(ResponseTooLargeError);
      await expect(fetch(url).then((response) => boundedText(response, 128))).resolves.toHaveLength(128);
    } finally {
      server.close();
    }
  });
});
