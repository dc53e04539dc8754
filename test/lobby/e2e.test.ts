import { describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import { ABORT_REASONS } from '../../src/fronts/lobby/errors.js';
import { port, startApp } from '../helpers/app.js';
import { clientPool, startLobby } from './fixtures.js';
import { eventually, http, OrionClient } from '../clients/orion.js';

const UNREGISTERED = 'The client is unregistered. Try reconnecting.';

const connect = clientPool();

async function invalidCount(app: App, transport: string, reason: string): Promise<number> {
  const metric = await app.metrics.getSingleMetric('noray_lobby_invalid_messages_total')?.get();
  return metric?.values.find((v) => v.labels.transport === transport && v.labels.reason === reason)?.value ?? 0;
}
const lobbyApp = startLobby;

/** A host and `others.length` joined members; returns them in join order, host first. */
async function lobbyWith(
  httpPort: number,
  udpPort: number,
  others: string[],
  options: { isPublic?: boolean; maxMembers?: number } = {},
): Promise<{ lobbyId: string; members: OrionClient[] }> {
  const host = await connect(httpPort, udpPort);
  const created = await host.createLobby({ hostName: 'Host', lobbyName: 'My Lobby', ...options });
  expect(created.status).toBe(201);
  const lobbyId = (created.body as { lobbyId: string }).lobbyId;
  const members = [host];
  for (const name of others) {
    const member = await connect(httpPort, udpPort);
    const joined = await member.join(lobbyId, name);
    expect(joined.status).toBe(200);
    for (const existing of members) expect(await existing.next('lobby_peerConnect')).toEqual({ lobbyId, peerName: name });
    members.push(member);
  }
  return { lobbyId, members };
}

describe('lobby front: connection and HTTP', () => {
  it('registers a client with a UUID token on any WebSocket path', async () => {
    const { httpPort } = await lobbyApp();
    const root = await connect(httpPort);
    expect(root.token).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const other = await connect(httpPort, null, '/some/where?x=1');
    expect(other.token).not.toBe(root.token);
  });

  it('GET /ping answers pong as text with CORS', async () => {
    const { httpPort } = await lobbyApp();
    const answer = await http(httpPort, 'GET', '/ping');
    expect(answer.status).toBe(200);
    expect(answer.text).toBe('pong');
    expect(answer.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(answer.headers.get('access-control-allow-origin')).toBe('*');
  });

  it('answers OPTIONS preflight with 200 and unknown routes with 404, both with CORS', async () => {
    const { httpPort } = await lobbyApp();
    const preflight = await http(httpPort, 'OPTIONS', '/lobbies', undefined, {
      headers: { origin: 'http://game.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    expect(preflight.status).toBe(200);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('*');
    expect(preflight.headers.get('access-control-allow-methods')).toContain('POST');
    const missing = await http(httpPort, 'GET', '/nope');
    expect(missing.status).toBe(404);
    expect(missing.headers.get('access-control-allow-origin')).toBe('*');
    const wrongMethod = await http(httpPort, 'DELETE', '/lobbies');
    expect(wrongMethod.status).toBe(404);
  });

  it('creates a lobby (201), lists public lobbies only, with the host counted', async () => {
    const { httpPort } = await lobbyApp();
    const host = await connect(httpPort);
    const created = await host.createLobby({ hostName: 'Big Host', lobbyName: 'Open Lobby', isPublic: true, maxMembers: 4 });
    expect(created.status).toBe(201);
    expect(created.headers.get('access-control-allow-origin')).toBe('*');
    const { lobbyId, lobbyName } = created.body as { lobbyId: string; lobbyName: string };
    expect(lobbyId).toMatch(/^[0-9A-Z]{5}$/);
    expect(lobbyName).toBe('Open Lobby');

    const hidden = await connect(httpPort);
    expect((await hidden.createLobby({ lobbyName: 'Hidden', isPublic: false })).status).toBe(201);

    const listed = await http(httpPort, 'GET', '/lobbies');
    expect(listed.status).toBe(200);
    expect(listed.headers.get('access-control-allow-origin')).toBe('*');
    expect(listed.body).toEqual({ lobbies: [{ name: 'Open Lobby', id: lobbyId, currentMembers: 1, maxMembers: 4 }] });
  });

  it('joins: 200 with every name in join order, host first; existing members get lobby_peerConnect, the joiner does not', async () => {
    const { httpPort, udpPort } = await lobbyApp();
    const { lobbyId, members } = await lobbyWith(httpPort, udpPort, ['Alice']);
    const bob = await connect(httpPort);
    const joined = await bob.join(lobbyId, 'Bob 2');
    expect(joined.status).toBe(200);
    expect(joined.body).toEqual({ lobbyId, lobbyName: 'My Lobby', lobbyMembers: ['Host', 'Alice', 'Bob 2'], host: 'Host' });
    for (const member of members) expect(await member.next('lobby_peerConnect')).toEqual({ lobbyId, peerName: 'Bob 2' });
    const listed = await http(httpPort, 'GET', '/lobbies');
    expect((listed.body as { lobbies: Array<{ currentMembers: number }> }).lobbies[0]?.currentMembers).toBe(3);
    expect(bob.count('lobby_peerConnect')).toBe(0);
  });

  it('validates bodies first (400), then the token (400 with the exact text)', async () => {
    const { httpPort } = await lobbyApp();
    const client = await connect(httpPort);
    const bad = [
      { hostName: 'h', lobbyName: 'l', isPublic: true, maxMembers: 2 },
      { token: client.token, hostName: ' space first', lobbyName: 'l', isPublic: true, maxMembers: 2 },
      { token: client.token, hostName: 'h', lobbyName: 'x'.repeat(51), isPublic: true, maxMembers: 2 },
      { token: client.token, hostName: 'h-yphen', lobbyName: 'l', isPublic: true, maxMembers: 2 },
      { token: client.token, hostName: 'h', lobbyName: 'l', isPublic: 'yes', maxMembers: 2 },
      { token: client.token, hostName: 'h', lobbyName: 'l', isPublic: true, maxMembers: 0 },
      { token: client.token, hostName: 'h', lobbyName: 'l', isPublic: true, maxMembers: 65 },
      { token: client.token, hostName: 'h', lobbyName: 'l', isPublic: true, maxMembers: 2.5 },
      { token: client.token, hostName: 'héllo', lobbyName: 'l', isPublic: true, maxMembers: 2 },
      [],
      'text',
      null,
    ];
    for (const body of bad) {
      const answer = await http(httpPort, 'POST', '/lobbies', body);
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect(Array.isArray((answer.body as { errors: unknown }).errors)).toBe(true);
      expect(answer.headers.get('access-control-allow-origin')).toBe('*');
    }
    // A bad body with an unknown token is still a schema failure, not "unregistered".
    const both = await http(httpPort, 'POST', '/lobbies', { token: 'nope', hostName: '' });
    expect(both.status).toBe(400);
    expect(both.body).not.toEqual({ errors: [UNREGISTERED] });

    const unknown = await http(httpPort, 'POST', '/lobbies', { token: 'nope', hostName: 'h', lobbyName: 'l', isPublic: true, maxMembers: 2 });
    expect(unknown.status).toBe(400);
    expect(unknown.body).toEqual({ errors: [UNREGISTERED] });
    const joinUnknown = await http(httpPort, 'POST', '/lobbies/AAAAA/join', { token: 'nope', peerName: 'p' });
    expect(joinUnknown.body).toEqual({ errors: [UNREGISTERED] });
    const startUnknown = await http(httpPort, 'POST', '/lobbies/AAAAA/ptp/start', { token: 'nope' });
    expect(startUnknown.status).toBe(400);
    expect(startUnknown.body).toEqual({ errors: [UNREGISTERED] });
    // The name rule allows 50 characters exactly and spaces after the first character.
    expect((await client.createLobby({ hostName: 'a'.repeat(50), lobbyName: 'x  y_' })).status).toBe(201);
  });

  it('answers malformed JSON with 400 (Orion: 500), whatever the content type', async () => {
    const { httpPort } = await lobbyApp();
    for (const [rawBody, type] of [
      ['{"token":', 'application/json'],
      ['not json', 'text/plain'],
      ['', 'application/json'],
    ] as const) {
      const answer = await http(httpPort, 'POST', '/lobbies', undefined, { rawBody, headers: { 'content-type': type } });
      expect(answer.status, rawBody).toBe(400);
      expect(answer.headers.get('access-control-allow-origin')).toBe('*');
      expect(Array.isArray((answer.body as { errors: unknown }).errors)).toBe(true);
    }
    const noBody = await http(httpPort, 'POST', '/lobbies/AAAAA/join');
    expect(noBody.status).toBe(400);
  });

  it('accepts JSON sent as text/plain, as Orion does', async () => {
    const { httpPort } = await lobbyApp();
    const client = await connect(httpPort);
    const answer = await http(httpPort, 'POST', '/lobbies', undefined, {
      rawBody: JSON.stringify({ token: client.token, hostName: 'h', lobbyName: 'l', isPublic: true, maxMembers: 2 }),
      headers: { 'content-type': 'text/plain;charset=UTF-8' },
    });
    expect(answer.status).toBe(201);
  });

  it('refuses bodies over the limit without harm', async () => {
    const { httpPort } = await lobbyApp();
    const answer = await http(httpPort, 'POST', '/lobbies', { token: 'x'.repeat(64 * 1024) });
    expect(answer.status).toBe(413);
    expect(answer.headers.get('access-control-allow-origin')).toBe('*');
    expect((await http(httpPort, 'GET', '/ping')).status).toBe(200);
  });

  it('create conflict: a client is in at most one lobby', async () => {
    const { httpPort, udpPort } = await lobbyApp();
    const { lobbyId, members } = await lobbyWith(httpPort, udpPort, ['Alice']);
    for (const member of members) {
      const again = await member.createLobby();
      expect(again.status).toBe(409);
      expect((again.body as { errors: string[] }).errors).toHaveLength(1);
    }
    const rejoin = await members[1]!.join(lobbyId, 'Other');
    expect(rejoin.status).toBe(409);
  });

  it('join conflicts in order: already in a lobby, missing, locked, full, name taken', async () => {
    const { httpPort, udpPort } = await lobbyApp();
    const host = await connect(httpPort, udpPort);
    const lobbyId = ((await host.createLobby({ hostName: 'Host', maxMembers: 2 })).body as { lobbyId: string }).lobbyId;
    const stranger = await connect(httpPort);

    const errorsOf = async (answer: Promise<{ status: number; body: unknown }>): Promise<string[]> => {
      const { status, body } = await answer;
      expect(status).toBe(409);
      return (body as { errors: string[] }).errors;
    };
    const alreadyIn = await errorsOf(host.join(lobbyId, 'Again'));
    const missing = await errorsOf(stranger.join('ZZZZZ', 'Name'));
    expect(missing[0]).toContain('ZZZZZ');
    // Lobby ids are case-sensitive.
    await errorsOf(stranger.join(lobbyId.toLowerCase() === lobbyId ? 'zzzzz' : lobbyId.toLowerCase(), 'Name'));
    const taken = await errorsOf(stranger.join(lobbyId, 'Host'));
    expect(taken[0]).toMatch(/name/i);
    const second = await connect(httpPort, udpPort);
    expect((await second.join(lobbyId, 'Second')).status).toBe(200);
    const full = await errorsOf(stranger.join(lobbyId, 'Host'));
    expect(full[0]).toMatch(/full/i);
    expect((await host.startMediation(lobbyId)).status).toBe(200);
    const locked = await errorsOf(stranger.join(lobbyId, 'Host'));
    expect(locked[0]).toMatch(/mediation/i);
    // Locked comes before "already in a lobby"? No: already-in-a-lobby is checked first.
    expect(await errorsOf(host.join(lobbyId, 'Host'))).toEqual(alreadyIn);
    expect(new Set([alreadyIn[0], missing[0], taken[0], full[0], locked[0]]).size).toBe(5);
  });

  it('ptp/start conflicts in order: unknown lobby, not the host, under way, fewer than 2 members', async () => {
    const { httpPort, udpPort } = await lobbyApp();
    const host = await connect(httpPort, udpPort);
    const lobbyId = ((await host.createLobby()).body as { lobbyId: string }).lobbyId;
    const errorsOf = async (answer: Promise<{ status: number; body: unknown }>): Promise<string> => {
      const { status, body } = await answer;
      expect(status).toBe(409);
      return (body as { errors: string[] }).errors[0] as string;
    };
    const unknownLobby = await errorsOf(host.startMediation('00000'));
    const tooFew = await errorsOf(host.startMediation(lobbyId));
    const member = await connect(httpPort, udpPort);
    await member.join(lobbyId, 'Member');
    const notHost = await errorsOf(member.startMediation(lobbyId));
    const outsider = await connect(httpPort, udpPort);
    expect(await errorsOf(outsider.startMediation(lobbyId))).toBe(notHost);
    const started = await host.startMediation(lobbyId);
    expect(started.status).toBe(200);
    expect(started.text).toBe('');
    const underWay = await errorsOf(host.startMediation(lobbyId));
    expect(new Set([unknownLobby, tooFew, notHost, underWay]).size).toBe(4);
  });

  it('serves an OpenAPI 3 document that names every route', async () => {
    const { httpPort } = await lobbyApp();
    const answer = await http(httpPort, 'GET', '/openapi.json');
    expect(answer.status).toBe(200);
    const document = answer.body as { openapi: string; paths: Record<string, Record<string, unknown>> };
    expect(document.openapi).toMatch(/^3\./);
    expect(Object.keys(document.paths).sort()).toEqual(
      ['/lobbies', '/lobbies/{id}/join', '/lobbies/{id}/ptp/start', '/openapi.json', '/ping'].sort(),
    );
    expect(Object.keys(document.paths['/lobbies'] ?? {}).sort()).toEqual(['get', 'post']);
  });
});

describe('lobby front: WebSocket events and chat', () => {
  it('chat reaches every member including the sender, with a timestamp', async () => {
    const { httpPort, udpPort } = await lobbyApp();
    const { lobbyId, members } = await lobbyWith(httpPort, udpPort, ['Alice', 'Bob']);
    const before = Date.now();
    members[1]!.chat(lobbyId, 'hello there');
    for (const member of members) {
      const received = await member.next('lobby_messaging_received');
      expect(received).toMatchObject({ lobbyId, message: { senderName: 'Alice', message: 'hello there' } });
      const timestamp = (received.message as { timestamp: number }).timestamp;
      expect(timestamp).toBeGreaterThanOrEqual(before - 1000);
      expect(timestamp).toBeLessThanOrEqual(Date.now() + 1000);
    }
  });

  it('ignores invalid chat: empty, too long, wrong lobby, non-member, unknown token; the socket stays open', async () => {
    const { app, httpPort, udpPort } = await lobbyApp();
    const { lobbyId, members } = await lobbyWith(httpPort, udpPort, ['Alice']);
    const outsider = await connect(httpPort);
    const alice = members[1]!;
    alice.chat(lobbyId, '');
    alice.chat(lobbyId, 'x'.repeat(251));
    alice.chat('ZZZZZ', 'wrong lobby');
    outsider.chat(lobbyId, 'not a member');
    alice.sendWs('lobby_messaging_send', { token: 'not-a-token', lobbyId, message: 'forged' });
    alice.sendWs('lobby_messaging_send', { token: alice.token, lobbyId, message: 42 });
    // Another socket may speak for a token: messages identify the client by token, not by socket.
    outsider.sendWs('lobby_messaging_send', { token: alice.token, lobbyId, message: 'x'.repeat(250) });
    alice.chat(lobbyId, 'last');
    // Two sockets: their messages may arrive in either order.
    const texts: string[] = [];
    for (let i = 0; i < 2; i++) {
      const received = await members[0]!.next('lobby_messaging_received');
      texts.push((received.message as { message: string }).message);
    }
    expect(texts.sort()).toEqual(['last', 'x'.repeat(250)]);
    expect(members[0]!.unreadMethods()).not.toContain('lobby_messaging_received');
    expect(alice.closed).toBe(false);
    expect(outsider.count('lobby_messaging_received')).toBe(0);
    const metrics = await app.metrics.getSingleMetricAsString('noray_lobby_invalid_messages_total');
    expect(metrics).toContain('transport="ws"');
  });

  it('garbage WebSocket frames are ignored and the socket stays open', async () => {
    const { app, httpPort, udpPort } = await lobbyApp();
    const { lobbyId, members } = await lobbyWith(httpPort, udpPort, ['Alice']);
    const alice = members[1]!;
    for (const garbage of ['', ':', 'nocolon', 'lobby_messaging_send:!!!!', 'lobby_messaging_send:bnVsbA==', 'x:W10=', '\u0000\uffff', 'a'.repeat(1000) + ':']) {
      alice.sendRaw(garbage);
    }
    alice.sendRaw(Buffer.from([0xff, 0xfe, 0x00, 0x3a, 0x80]));
    alice.chat(lobbyId, 'still here');
    expect(await members[0]!.next('lobby_messaging_received')).toMatchObject({ message: { message: 'still here' } });
    expect(alice.closed).toBe(false);
    expect(app.front('lobby')?.stats().clients).toBe(2);
  });

  it('a WebSocket message over the payload limit closes that socket only', async () => {
    const { app, httpPort, udpPort } = await lobbyApp();
    const { lobbyId, members } = await lobbyWith(httpPort, udpPort, ['Alice']);
    const alice = members[1]!;
    alice.sendRaw('lobby_messaging_send:' + 'A'.repeat(70 * 1024));
    expect(await alice.waitClosed()).toBe(1009);
    expect(await members[0]!.next('lobby_peerDisconnect')).toEqual({ lobbyId, peerName: 'Alice' });
    await eventually(() => app.front('lobby')?.stats().clients === 1);
    expect(members[0]!.closed).toBe(false);
  });

  it('a member closing its WebSocket leaves: lobby_peerDisconnect to the rest; the host leaving closes the lobby', async () => {
    const { app, httpPort, udpPort } = await lobbyApp();
    const { lobbyId, members } = await lobbyWith(httpPort, udpPort, ['Alice', 'Bob']);
    const [host, alice, bob] = members as [OrionClient, OrionClient, OrionClient];
    await alice.close();
    expect(await host.next('lobby_peerDisconnect')).toEqual({ lobbyId, peerName: 'Alice' });
    expect(await bob.next('lobby_peerDisconnect')).toEqual({ lobbyId, peerName: 'Alice' });
    await host.close();
    expect(await bob.next('lobby_closed')).toEqual({ lobbyId, lobbyName: 'My Lobby' });
    expect((await http(httpPort, 'GET', '/lobbies')).body).toEqual({ lobbies: [] });
    // Bob is free again.
    expect((await bob.createLobby({ hostName: 'Bob' })).status).toBe(201);
    expect(app.front('lobby')?.stats()).toMatchObject({ clients: 1, lobbies: 1 });
  });
});

describe('lobby front: peer-to-peer mediation', () => {
  it('mediates three members end to end over WebSocket and UDP', async () => {
    const { app, httpPort, udpPort } = await lobbyApp();
    const { lobbyId, members } = await lobbyWith(httpPort, udpPort, ['Alice', 'Bob']);
    const [host, alice, bob] = members as [OrionClient, OrionClient, OrionClient];
    expect((await host.startMediation(lobbyId)).status).toBe(200);
    for (const member of members) expect(await member.next('ptpMediation_send')).toEqual({ port: udpPort });

    // Locked but still listed.
    const late = await connect(httpPort);
    expect((await late.join(lobbyId, 'Late')).status).toBe(409);
    expect((await http(httpPort, 'GET', '/lobbies')).body).toMatchObject({ lobbies: [{ id: lobbyId, currentMembers: 3 }] });

    const hostPort = await host.sendUdp();
    const alicePort = await alice.sendUdp();
    const bobPort = await bob.sendUdp();

    expect(await host.next('ptpMediation_peersConnection_start')).toEqual({
      peers: [
        { ip: '127.0.0.1', port: alicePort },
        { ip: '127.0.0.1', port: bobPort },
      ],
    });
    for (const member of [alice, bob]) {
      expect(await member.next('ptpMediation_peersConnection_start')).toEqual({ peers: [{ ip: '127.0.0.1', port: hostPort }] });
    }
    expect(app.front('lobby')?.stats().timers).toBe(1);

    for (const member of members) member.sendWs('ptpMediation_peersConnection_success', { token: member.token });
    for (const member of members) {
      expect(await member.next('ptpMediation_success')).toEqual({});
      expect(await member.next('lobby_closed')).toEqual({ lobbyId, lobbyName: 'My Lobby' });
      // success comes before lobby_closed
      const methods = member.received.map((message) => message.method);
      expect(methods.indexOf('ptpMediation_success')).toBeLessThan(methods.indexOf('lobby_closed'));
      expect(member.closed).toBe(false);
    }
    expect(app.front('lobby')?.stats()).toMatchObject({ lobbies: 0, timers: 0, clients: 4 });
    expect((await http(httpPort, 'GET', '/lobbies')).body).toEqual({ lobbies: [] });
    expect(await app.metrics.getSingleMetricAsString('noray_lobby_mediations_succeeded_total')).toMatch(/ 1$/m);
    // Members are free to create or join again.
    expect((await alice.createLobby({ hostName: 'Alice' })).status).toBe(201);
  });

  it('reminds only the members whose UDP packet is missing, every interval', async () => {
    const { httpPort, udpPort } = await lobbyApp({ lobbyConnectRequestInterval: 50 });
    const { lobbyId, members } = await lobbyWith(httpPort, udpPort, ['Alice']);
    const [host, alice] = members as [OrionClient, OrionClient];
    expect((await host.startMediation(lobbyId)).status).toBe(200);
    await host.next('ptpMediation_send');
    await alice.next('ptpMediation_send');
    await host.sendUdp();
    const hostRemindersAtSend = host.count('ptpMediation_send');
    for (let i = 0; i < 4; i++) expect(await alice.next('ptpMediation_send')).toEqual({ port: udpPort });
    // At most one reminder could have been in flight when the host's packet arrived.
    expect(host.count('ptpMediation_send') - hostRemindersAtSend).toBeLessThanOrEqual(1);
    await alice.sendUdp();
    await host.next('ptpMediation_peersConnection_start');
    await alice.next('ptpMediation_peersConnection_start');
  });

  it('aborts when the server-connect timeout passes; the lobby survives unlocked and can start again', async () => {
    const { app, httpPort, udpPort } = await lobbyApp({ lobbyServerConnectTimeout: 200, lobbyConnectRequestInterval: 1000 });
    const { lobbyId, members } = await lobbyWith(httpPort, udpPort, ['Alice']);
    const [host, alice] = members as [OrionClient, OrionClient];
    expect((await host.startMediation(lobbyId)).status).toBe(200);
    await host.sendUdp();
    for (const member of members) {
      expect(await member.next('ptpMediation_aborted')).toEqual({ abortReason: ABORT_REASONS.serverConnectTimeout });
    }
    expect(app.front('lobby')?.stats()).toMatchObject({ lobbies: 1, timers: 0, mediations: 0 });
    const joiner = await connect(httpPort, udpPort);
    expect((await joiner.join(lobbyId, 'Joiner')).status).toBe(200);
    // No spurious abort on join or leave after an abort (an Orion bug).
    await joiner.close();
    await host.next('lobby_peerDisconnect');
    await alice.next('lobby_peerDisconnect');
    expect((await host.startMediation(lobbyId)).status).toBe(200);
    await host.next('ptpMediation_send');
    expect(host.count('ptpMediation_aborted')).toBe(1);
    expect(alice.count('ptpMediation_aborted')).toBe(1);
    expect(await app.metrics.getSingleMetricAsString('noray_lobby_mediations_aborted_total')).toContain(
      'reason="serverConnectTimeout"',
    );
  });

  it('aborts when the connect timeout passes', async () => {
    const { app, httpPort, udpPort } = await lobbyApp({ lobbyConnectTimeout: 200 });
    const { lobbyId, members } = await lobbyWith(httpPort, udpPort, ['Alice', 'Bob']);
    expect((await members[0]!.startMediation(lobbyId)).status).toBe(200);
    for (const member of members) await member.sendUdp();
    for (const member of members) await member.next('ptpMediation_peersConnection_start');
    members[1]!.sendWs('ptpMediation_peersConnection_success', { token: members[1]!.token });
    for (const member of members) {
      expect(await member.next('ptpMediation_aborted')).toEqual({ abortReason: ABORT_REASONS.connectTimeout });
    }
    expect(app.front('lobby')?.stats()).toMatchObject({ lobbies: 1, timers: 0, mediations: 0 });
    expect(members.every((member) => member.count('ptpMediation_success') === 0)).toBe(true);
  });

  it('aborts with "Lobby members changed." after lobby_peerDisconnect when a member leaves mid-mediation', async () => {
    const { app, httpPort, udpPort } = await lobbyApp();
    const { lobbyId, members } = await lobbyWith(httpPort, udpPort, ['Alice', 'Bob']);
    const [host, alice, bob] = members as [OrionClient, OrionClient, OrionClient];
    expect((await host.startMediation(lobbyId)).status).toBe(200);
    await host.sendUdp();
    await bob.close();
    for (const member of [host, alice]) {
      expect(await member.next('lobby_peerDisconnect')).toEqual({ lobbyId, peerName: 'Bob' });
      expect(await member.next('ptpMediation_aborted')).toEqual({ abortReason: ABORT_REASONS.membersChanged });
      const methods = member.received.map((message) => message.method);
      expect(methods.indexOf('lobby_peerDisconnect')).toBeLessThan(methods.indexOf('ptpMediation_aborted'));
    }
    expect(app.front('lobby')?.stats()).toMatchObject({ lobbies: 1, timers: 0 });
    // Unlocked: someone can join again and the host can restart.
    const carol = await connect(httpPort, udpPort);
    expect((await carol.join(lobbyId, 'Carol')).status).toBe(200);
    expect((await host.startMediation(lobbyId)).status).toBe(200);
  });

  it('the host leaving mid-mediation closes the lobby for the others, with no timers left', async () => {
    const { app, httpPort, udpPort } = await lobbyApp();
    const { lobbyId, members } = await lobbyWith(httpPort, udpPort, ['Alice', 'Bob']);
    const [host, alice, bob] = members as [OrionClient, OrionClient, OrionClient];
    expect((await host.startMediation(lobbyId)).status).toBe(200);
    await alice.sendUdp();
    await host.close();
    for (const member of [alice, bob]) expect(await member.next('lobby_closed')).toEqual({ lobbyId, lobbyName: 'My Lobby' });
    await eventually(() => app.front('lobby')?.stats().clients === 2);
    expect(app.front('lobby')?.stats()).toMatchObject({ lobbies: 0, timers: 0, mediations: 0 });
  });

  it('ignores peersConnection_success before peersConnection_start (Orion accepts it)', async () => {
    const { httpPort, udpPort } = await lobbyApp({ lobbyConnectTimeout: 60_000 });
    const { lobbyId, members } = await lobbyWith(httpPort, udpPort, ['Alice']);
    const [host, alice] = members as [OrionClient, OrionClient];
    // Before any mediation, and during the UDP stage: both ignored.
    host.sendWs('ptpMediation_peersConnection_success', { token: host.token });
    expect((await host.startMediation(lobbyId)).status).toBe(200);
    for (const member of members) member.sendWs('ptpMediation_peersConnection_success', { token: member.token });
    await host.sendUdp();
    await alice.sendUdp();
    await host.next('ptpMediation_peersConnection_start');
    await alice.next('ptpMediation_peersConnection_start');
    // Had the early reports counted, one more would finish the mediation; it needs both again.
    host.sendWs('ptpMediation_peersConnection_success', { token: host.token });
    alice.chat(lobbyId, 'marker');
    await host.next('lobby_messaging_received');
    expect(host.count('ptpMediation_success')).toBe(0);
    alice.sendWs('ptpMediation_peersConnection_success', { token: alice.token });
    await host.next('ptpMediation_success');
    await alice.next('lobby_closed');
  });

  it('ignores duplicate UDP packets after capture: no second peersConnection_start, no stray timer', async () => {
    const { app, httpPort, udpPort } = await lobbyApp();
    const { lobbyId, members } = await lobbyWith(httpPort, udpPort, ['Alice']);
    const [host, alice] = members as [OrionClient, OrionClient];
    expect((await host.startMediation(lobbyId)).status).toBe(200);
    await host.sendUdp();
    await alice.sendUdp();
    await host.next('ptpMediation_peersConnection_start');
    await alice.next('ptpMediation_peersConnection_start');
    await host.sendUdp();
    await alice.sendUdp();
    // Wait until the server has seen (and refused) both duplicates.
    await eventually(async () => (await invalidCount(app, 'udp', 'rejected')) >= 2);
    expect(host.count('ptpMediation_peersConnection_start')).toBe(1);
    expect(app.front('lobby')?.stats().timers).toBe(1);
    for (const member of members) member.sendWs('ptpMediation_peersConnection_success', { token: member.token });
    await host.next('lobby_closed');
    expect(app.front('lobby')?.stats().timers).toBe(0);
  });

  it('ignores garbage UDP datagrams (Orion crashes) and keeps serving', async () => {
    const { app, httpPort, udpPort } = await lobbyApp();
    const { lobbyId, members } = await lobbyWith(httpPort, udpPort, ['Alice']);
    const [host, alice] = members as [OrionClient, OrionClient];
    expect((await host.startMediation(lobbyId)).status).toBe(200);
    const { createSocket } = await import('node:dgram');
    const raw = createSocket('udp4');
    const garbage = [
      Buffer.from('hello'),
      Buffer.from('ptpMediation_connect:not base64!'),
      Buffer.from('ptpMediation_connect:' + Buffer.from('not json').toString('base64')),
      Buffer.from('ptpMediation_connect:' + Buffer.from('[1,2]').toString('base64')),
      Buffer.from('ptpMediation_connect:' + Buffer.from('{"token":5}').toString('base64')),
      Buffer.from('ptpMediation_connect:' + Buffer.from('{"token":"unknown"}').toString('base64')),
      Buffer.from([0xff, 0x00, 0xc3, 0x28]),
      Buffer.alloc(0),
      Buffer.alloc(4000, 0x41),
    ];
    for (const datagram of garbage) {
      await new Promise<void>((resolve) => raw.send(datagram, udpPort, '127.0.0.1', () => resolve()));
    }
    raw.close();
    await host.sendUdp();
    await alice.sendUdp();
    await host.next('ptpMediation_peersConnection_start');
    expect(app.front('lobby')?.stats().lobbies).toBe(1);
    expect((await http(httpPort, 'GET', '/ping')).status).toBe(200);
  });
});

describe('lobby front: ports and configuration', () => {
  it('exposes only the enabled ports; with UDP off, lobbies and chat work and ptp/start is refused', async () => {
    const app = await startApp({ lobbyHttpPort: 0, lobbyUdpPort: null });
    expect(Object.keys(app.ports().lobby ?? {})).toEqual(['http']);
    const httpPort = port(app, 'lobby', 'http');
    const host = await connect(httpPort);
    const lobbyId = ((await host.createLobby()).body as { lobbyId: string }).lobbyId;
    const member = await connect(httpPort);
    expect((await member.join(lobbyId, 'Member')).status).toBe(200);
    const start = await host.startMediation(lobbyId);
    expect(start.status).toBe(409);
    expect((start.body as { errors: string[] }).errors[0]).toMatch(/not available/);
  });

  it('listens only on the configured host (Orion listens on every interface)', async () => {
    const { httpPort } = await lobbyApp();
    expect((await http(httpPort, 'GET', '/ping')).status).toBe(200);
    // 127.0.0.2 is loopback too on Linux, but not the address the front was told to bind.
    await expect(fetch(`http://127.0.0.2:${httpPort}/ping`)).rejects.toThrow();
  });

  it('with the HTTP port off there is no lobby front at all', async () => {
    const app = await startApp({ lobbyHttpPort: null, lobbyUdpPort: 0 });
    expect(app.front('lobby')).toBeUndefined();
  });

  it('reports IPv4 addresses in dotted form when listening on IPv6 any-address', async () => {
    let app: App;
    try {
      app = await startApp({ lobbyHost: '::', lobbyHttpPort: 0, lobbyUdpPort: 0 });
    } catch {
      return; // no IPv6 on this machine
    }
    const httpPort = port(app, 'lobby', 'http');
    const udpPort = port(app, 'lobby', 'udp');
    const { lobbyId, members } = await lobbyWith(httpPort, udpPort, ['Alice']);
    expect((await members[0]!.startMediation(lobbyId)).status).toBe(200);
    for (const member of members) await member.sendUdp();
    const start = await members[0]!.next('ptpMediation_peersConnection_start');
    expect((start.peers as Array<{ ip: string }>)[0]?.ip).toBe('127.0.0.1');
  });
});
