// A server with traffic on every front, as the dashboard tests need it: a relayed pair of netfox
// players (who tried punchthrough first), a lobby with members, a wsrelay room with phones, and
// tcprelay clients. Everything is closed by `close()`.
import type { Socket as UdpSocket } from 'node:dgram';
import type { App } from '../../src/app.js';
import type { Config } from '../../src/config/schema.js';
import { loginClient, loginServer, type WsPeer } from '../clients/carparty.js';
import { bindLocalPort, NetfoxClient } from '../clients/netfox.js';
import { OrionClient } from '../clients/orion.js';
import { RoccoClient } from '../clients/rocco.js';
import { EVERY_FRONT_ON, port, startApp } from '../helpers/app.js';
import { parseSamples } from '../helpers/metrics.js';

export const OPS_TOKEN = 'dashboard-test-token-0123456789';

export interface BusyServer {
  readonly app: App;
  readonly ops: string;
  /** The netfox players by OpenID: `alpha-host` hosts, `bravo-client` relays to it. */
  readonly players: ReadonlyMap<string, NetfoxClient>;
  readonly room: { readonly code: string; readonly server: WsPeer; readonly phones: readonly WsPeer[] };
  readonly lobbyId: string;
  close(): Promise<void>;
}

async function until(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function player(app: App, oid: string): Promise<NetfoxClient> {
  const client = await NetfoxClient.connect(port(app, 'noray', 'control'));
  client.putCommand('register-host', oid);
  await client.next('set-pid');
  const registered = await client.registerRemote(port(app, 'noray', 'registrar'));
  if (registered !== 'OK') throw new Error(`register-remote: ${registered}`);
  return client;
}

/** `keep`: the server outlives the test that started it (a suite's beforeAll); close() stops it. */
export async function startBusyServer(overrides: Partial<Config> = {}, { keep = false } = {}): Promise<BusyServer> {
  const app = await startApp(
    { ...EVERY_FRONT_ON, opsToken: OPS_TOKEN, udpRelayPorts: Array.from({ length: 16 }, () => 0), ...overrides },
    { keep },
  );
  const closers: Array<() => unknown> = [];
  const sockets: UdpSocket[] = [];

  // noray: the client tries punchthrough (connect), gives up and relays (connect-relay), then both send.
  const host = await player(app, 'alpha-host');
  const client = await player(app, 'bravo-client');
  closers.push(() => host.close(), () => client.close());
  client.putCommand('connect', host.oid);
  await client.next('connect');
  await host.next('connect');
  client.putCommand('connect-relay', host.oid);
  const hostRelayPort = Number(await client.next('connect-relay'));
  const clientRelayPort = Number(await host.next('connect-relay'));
  const hostUdp = await bindLocalPort(host.localPort);
  const clientUdp = await bindLocalPort(client.localPort);
  sockets.push(hostUdp, clientUdp);
  let arrived = 0;
  hostUdp.on('message', () => arrived++);
  clientUdp.on('message', () => arrived++);
  for (let i = 0; i < 20; i++) clientUdp.send(Buffer.alloc(100, i), hostRelayPort, '127.0.0.1');
  for (let i = 0; i < 10; i++) hostUdp.send(Buffer.alloc(50, i), clientRelayPort, '127.0.0.1');
  await until(() => arrived === 30, 'the relayed datagrams');

  // lobby: a public lobby with a host and one member.
  const lobbyPort = port(app, 'lobby', 'http');
  const lobbyUdp = port(app, 'lobby', 'udp');
  const lobbyHost = await OrionClient.connect(lobbyPort, lobbyUdp);
  const lobbyGuest = await OrionClient.connect(lobbyPort, lobbyUdp);
  closers.push(() => lobbyHost.close(), () => lobbyGuest.close());
  const created = await lobbyHost.createLobby({ lobbyName: 'Friday league', isPublic: true, maxMembers: 4 });
  const lobbyId = (created.body as { lobbyId?: string }).lobbyId;
  if (typeof lobbyId !== 'string') throw new Error(`createLobby: ${JSON.stringify(created.body)}`);
  const joined = await lobbyGuest.join(lobbyId, 'guest');
  if (joined.status !== 200) throw new Error(`join: ${joined.status}`);

  // wsrelay: a game server and two phones.
  const wsPort = port(app, 'wsrelay', 'ws');
  const code = 'ROOM42';
  const gameServer = await loginServer(wsPort, code);
  const phones = [await loginClient(wsPort, gameServer, code, 'phone-1'), await loginClient(wsPort, gameServer, code, 'phone-2')];
  closers.push(() => gameServer.close(), ...phones.map((phone) => () => phone.close()));

  // tcprelay: two clients with chosen ids.
  const tcpPort = port(app, 'tcprelay', 'tcp');
  for (const id of ['rocco-one', 'rocco-two']) {
    const { client: rocco } = await RoccoClient.init(tcpPort, id);
    closers.push(() => rocco.end());
  }

  return {
    app,
    ops: `http://127.0.0.1:${port(app, 'ops', 'http')}`,
    players: new Map([
      [host.oid, host],
      [client.oid, client],
    ]),
    room: { code, server: gameServer, phones },
    lobbyId,
    close: async () => {
      for (const socket of sockets) socket.close();
      await Promise.allSettled(closers.map(async (close) => close()));
      if (keep) await app.stop();
    },
  };
}

/** Every sample of /metrics by `name{labels}` (labels sorted), with the token. */
export async function scrape(ops: string): Promise<Map<string, number>> {
  const response = await fetch(`${ops}/metrics`, { headers: { authorization: `Bearer ${OPS_TOKEN}` } });
  if (response.status !== 200) throw new Error(`/metrics answered ${response.status}`);
  return parseSamples(await response.text());
}
