// Well-behaved clients, written with the client SDK (src/client/): one function per front that
// runs one complete flow and verifies every answer. Anything unexpected throws; the caller counts
// it as an error of a well-behaved client. (The chaos clients and the SIGTERM observers stay on
// raw sockets: they break the protocols on purpose or watch for a TCP FIN.)
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { WebSocket } from 'ws';
import {
  EventQueue,
  GameServer,
  handshake,
  LobbyClient,
  mediateOverUdp,
  NorayClient,
  Phone,
  TcpRelayClient,
  type GameServerEvents,
  type LobbyEvents,
  type NorayEvents,
  type PhoneEvents,
  type TcpRelayEvents,
} from '../../src/client/node.js';
import { HOST, type Ports } from './server.js';
import { check, expectEqual, rnd, sleep, within } from './util.js';

const STEP_MS = 8000;

/**
 * Relay ports are a shared, small pool (about 200): a relay flow holds two of them until the
 * server frees them after the idle timeout. This budget keeps the soak below the pool size, so
 * "no relay port free" (a legitimate answer) never reaches a well-behaved client.
 */
export class RelayBudget {
  private inUse = 0;
  constructor(
    private readonly capacity: number,
    private readonly holdMs: number,
  ) {}

  async acquire(count: number, stop: () => boolean): Promise<boolean> {
    while (this.inUse + count > this.capacity) {
      if (stop()) return false;
      await sleep(50);
    }
    this.inUse += count;
    return true;
  }

  /** Gives the ports back once the server has surely expired the relays. */
  release(count: number): void {
    setTimeout(() => (this.inUse -= count), this.holdMs).unref();
  }

  get used(): number {
    return this.inUse;
  }
}

// ---- noray ----------------------------------------------------------------------------------

async function gameSocket(): Promise<UdpSocket> {
  const udp = createSocket('udp4');
  await new Promise<void>((resolve) => udp.bind(0, HOST, () => resolve()));
  return udp;
}

/** Sends `text` to port every 100 ms until `receiver` has it from `fromPort`; bounded. */
async function deliver(sender: UdpSocket, port: number, receiver: UdpSocket, fromPort: number, text: string): Promise<void> {
  let got = false;
  let wrong: string | null = null;
  const onMessage = (message: Buffer, info: RemoteInfo) => {
    if (message.toString('utf8') !== text) return;
    if (info.port === fromPort && info.address === HOST) got = true;
    else wrong = `${info.address}:${info.port}`;
  };
  receiver.on('message', onMessage);
  try {
    const deadline = Date.now() + 4000;
    while (!got && Date.now() < deadline) {
      sender.send(text, port, HOST);
      await sleep(got ? 0 : 100);
    }
    check(wrong === null, `relayed datagram "${text}" came from ${wrong}, expected ${HOST}:${fromPort}`);
    check(got, `relayed datagram "${text}" never arrived`);
  } finally {
    receiver.off('message', onMessage);
  }
}

/** Two players: register, register_remote, connect (punchthrough handshake), connect-relay, datagrams both ways, leave. */
export async function norayFlow(ports: Ports, tag: string, budget: RelayBudget, stop: () => boolean): Promise<boolean> {
  const closers: Array<() => void> = [];
  let relayed = false;
  const player = async (role: string) => {
    const noray = await within(NorayClient.connect({ host: HOST, port: ports.control, registrarPort: ports.registrar }), STEP_MS, `noray ${role} connect`);
    closers.push(() => void noray.close());
    const events = new EventQueue<NorayEvents>(noray, ['connect', 'connect-relay']);
    await within(noray.register(), STEP_MS, `${role} register-host`);
    const udp = await gameSocket();
    closers.push(() => udp.close());
    // register_remote from the socket the game keeps using (netfox's timing: 100 ms, up to 8 s).
    await noray.registerRemote({ socket: udp });
    return { noray, events, udp, port: udp.address().port };
  };
  try {
    const host = await player('host');
    const client = await player('client');
    check(host.noray.oid.length === 21 && host.noray.pid.length === 128, `odd ids: oid ${host.noray.oid.length}, pid ${host.noray.pid.length}`);

    expectEqual(await within(client.noray.connectNat(host.noray.oid), STEP_MS, 'connect'), { address: HOST, port: host.port }, 'connect to requester');
    expectEqual(await host.events.next('connect', STEP_MS), { address: HOST, port: client.port }, 'connect to host');
    const [a, b] = await Promise.all([
      handshake(client.udp, HOST, host.port, { timeoutMs: 4000 }),
      handshake(host.udp, HOST, client.port, { timeoutMs: 4000 }),
    ]);
    check(a && b, 'direct handshake failed');

    if (!(await budget.acquire(2, stop))) return false;
    relayed = true;
    const hostRelay = (await within(client.noray.connectRelay(host.noray.oid), STEP_MS, 'connect-relay')).port;
    const clientRelay = (await host.events.next('connect-relay', STEP_MS)).port;
    check(ports.relay.includes(hostRelay) && ports.relay.includes(clientRelay), `relay ports ${hostRelay}/${clientRelay} not in range`);
    check(hostRelay !== clientRelay, 'both sides got the same relay port');
    for (let i = 0; i < 4; i++) {
      await deliver(client.udp, hostRelay, host.udp, clientRelay, `c2h ${tag} ${i}`);
      await deliver(host.udp, clientRelay, client.udp, hostRelay, `h2c ${tag} ${i}`);
    }
    expectEqual(await within(host.noray.echo(tag), STEP_MS, 'echo'), tag, 'echo');
    return true;
  } finally {
    if (relayed) budget.release(2);
    for (const close of closers.reverse()) close();
  }
}

// ---- lobby ----------------------------------------------------------------------------------

const LOBBY_EVENTS = [
  'lobby_peerConnect',
  'lobby_peerDisconnect',
  'lobby_closed',
  'lobby_messaging_received',
  'ptpMediation_send',
  'ptpMediation_peersConnection_start',
  'ptpMediation_success',
  'ptpMediation_aborted',
] as const;

interface Member {
  name: string;
  client: LobbyClient;
  events: EventQueue<LobbyEvents>;
  udp: UdpSocket;
}

export async function lobbyFlow(ports: Ports, tag: string): Promise<boolean> {
  const everyone: Member[] = [];
  const member = async (name: string): Promise<Member> => {
    const client = await within(LobbyClient.connect({ url: `http://${HOST}:${ports.lobbyHttp}`, WebSocket }), STEP_MS, 'lobby connect');
    const events = new EventQueue<LobbyEvents>(client, LOBBY_EVENTS);
    // The UDP step from the member's game socket, again every 300 ms until the peers list comes.
    const { socket: udp } = await mediateOverUdp(client, { bindAddress: HOST, resendMs: 300 });
    const joined = { name, client, events, udp };
    everyone.push(joined);
    return joined;
  };
  try {
    const host = await member('host');
    const joiners = 1 + rnd(3);
    const { lobbyId } = await host.client.createLobby({
      hostName: 'host',
      lobbyName: `lobby ${tag}`,
      isPublic: rnd(2) === 0,
      maxMembers: joiners + 1 + rnd(2),
    });
    check(/^[0-9A-Z]{5}$/.test(lobbyId), `odd lobby id ${lobbyId}`);
    const members: Member[] = [host];
    for (let j = 0; j < joiners; j++) {
      const joiner = await member(`peer${j}`);
      const joined = await joiner.client.joinLobby(lobbyId, joiner.name);
      expectEqual(joined.lobbyMembers, [...members.map((m) => m.name), joiner.name], 'lobbyMembers');
      for (const m of members) expectEqual(await m.events.next('lobby_peerConnect'), { lobbyId, peerName: joiner.name }, 'peerConnect');
      members.push(joiner);
    }

    const speaker = members[rnd(members.length)] as Member;
    const text = `hi from ${speaker.name} ${tag}`;
    speaker.client.sendChat(lobbyId, text);
    for (const m of members) {
      const got = await m.events.next('lobby_messaging_received');
      expectEqual([got.lobbyId, got.message.senderName, got.message.message], [lobbyId, speaker.name, text], 'chat');
    }

    const closed = { lobbyId, lobbyName: `lobby ${tag}` };
    const variant = rnd(10);
    if (variant === 8) {
      // The host leaves before mediation: everyone else is told the lobby closed.
      await host.client.close();
      for (const m of members.slice(1)) expectEqual(await m.events.next('lobby_closed'), closed, 'lobby_closed (host left)');
      return true;
    }
    if (variant === 9 && members.length > 2) {
      // A member leaves before mediation; the rest go on.
      const leaver = members.pop() as Member;
      await leaver.client.close();
      for (const m of members) expectEqual(await m.events.next('lobby_peerDisconnect'), { lobbyId, peerName: leaver.name }, 'peerDisconnect');
    }

    await host.client.startMediation(lobbyId);
    for (const m of members) expectEqual(await m.events.next('ptpMediation_send'), { port: ports.lobbyUdp }, 'ptpMediation_send');
    if ((variant === 6 || variant === 7) && members.length > 2) {
      // A member leaves mid-mediation: the others are told and the mediation aborts.
      const leaver = members.pop() as Member;
      await leaver.client.close();
      for (const m of members) {
        expectEqual(await m.events.next('lobby_peerDisconnect'), { lobbyId, peerName: leaver.name }, 'peerDisconnect');
        expectEqual(await m.events.next('ptpMediation_aborted'), { abortReason: 'Lobby members changed.' }, 'aborted');
      }
      await host.client.close();
      for (const m of members.slice(1)) expectEqual(await m.events.next('lobby_closed'), closed, 'lobby_closed');
      return true;
    }

    const peersOf = await Promise.all(members.map((m) => m.events.next('ptpMediation_peersConnection_start')));
    const addressOf = (m: Member) => ({ ip: HOST, port: m.udp.address().port });
    expectEqual(peersOf[0]?.peers, members.slice(1).map(addressOf), 'peers for the host');
    for (let i = 1; i < members.length; i++) expectEqual(peersOf[i]?.peers, [addressOf(members[0] as Member)], 'peers for a member');
    for (const m of members) m.client.reportPeersConnected();
    for (const m of members) {
      expectEqual(await m.events.next('ptpMediation_success'), {}, 'ptpMediation_success');
      expectEqual(await m.events.next('lobby_closed'), closed, 'lobby_closed (success)');
    }
    return true;
  } finally {
    for (const m of everyone) m.udp.close();
    await Promise.all(everyone.map((m) => m.client.close().catch(() => undefined)));
  }
}

// ---- wsrelay --------------------------------------------------------------------------------

export async function wsrelayFlow(ports: Ports, tag: string): Promise<boolean> {
  const peers: Array<GameServer | Phone> = [];
  try {
    const url = `ws://${HOST}:${ports.ws}/`;
    const code = `soak-${tag}`;
    const server = await within(GameServer.open({ url, WebSocket, code }), STEP_MS, 'wsrelay server login');
    peers.push(server);
    const heard = new EventQueue<GameServerEvents>(server, ['connect', 'disconnect', 'message']);
    const phones: Array<{ id: string; phone: Phone; inbox: EventQueue<PhoneEvents> }> = [];
    const count = 2 + rnd(3);
    for (let i = 0; i < count; i++) {
      const id = `p${i}`;
      const phone = await within(Phone.join({ url, WebSocket, code, clientId: id }), STEP_MS, 'wsrelay phone login');
      peers.push(phone);
      phones.push({ id, phone, inbox: new EventQueue<PhoneEvents>(phone, ['message', 'close']) });
      expectEqual(await heard.next('connect', STEP_MS), { clientId: id }, 'connect notice');
    }
    const text = async (inbox: EventQueue<PhoneEvents>, what: string) => (await within(inbox.next('message', STEP_MS), STEP_MS, what)).text;
    // Server -> every phone, byte for byte.
    const all = `{"t":"state","tag":"${tag}","n":1}`;
    server.sendRaw(all);
    for (const phone of phones) expectEqual(await text(phone.inbox, 'broadcast'), all, 'broadcast');
    // Server -> one phone by receiver_id; a marker after it shows the others did not get it.
    const target = phones[rnd(phones.length)] as (typeof phones)[number];
    const one = `{"receiver_id":"${target.id}","t":"private"}`;
    const mark = '{"t":"mark"}';
    server.sendRaw(one);
    server.sendRaw(mark);
    for (const phone of phones) {
      if (phone === target) expectEqual(await text(phone.inbox, 'targeted'), one, 'targeted message');
      expectEqual(await text(phone.inbox, 'marker'), mark, `marker for ${phone.id}`);
    }
    // Phones -> server: stamped with the sender's id, big integers exact.
    for (const phone of phones) phone.phone.sendRaw(`{"t":"input","big":12345678901234567890,"client_id":"forged"}`);
    const seen = new Set<string>();
    for (let i = 0; i < phones.length; i++) {
      const message = await heard.next('message', STEP_MS);
      check(message.text.includes('12345678901234567890'), `big integer changed: ${message.text}`);
      expectEqual([message.data.t, message.data.client_id], ['input', message.clientId], 'phone message body');
      seen.add(message.clientId);
    }
    expectEqual([...seen].sort(), phones.map((p) => p.id).sort(), 'stamped client ids');
    // One phone leaves: the server is told.
    const leaver = phones.shift() as (typeof phones)[number];
    await within(leaver.phone.close(), STEP_MS, 'phone close');
    expectEqual(await heard.next('disconnect', STEP_MS), { clientId: leaver.id }, 'disconnect notice');
    // The server leaves: every phone gets a close frame.
    await within(server.close(), STEP_MS, 'server close');
    for (const phone of phones) expectEqual((await phone.inbox.next('close', STEP_MS)).code, 1000, 'phone close code');
    return true;
  } finally {
    await Promise.all(peers.map((peer) => peer.close().catch(() => undefined)));
  }
}

// ---- tcprelay -------------------------------------------------------------------------------

export async function tcprelayFlow(ports: Ports, tag: string): Promise<boolean> {
  const clients: TcpRelayClient[] = [];
  const open = async (id?: string) => {
    const client = await within(TcpRelayClient.connect({ host: HOST, port: ports.tcp }), STEP_MS, 'tcprelay connect');
    clients.push(client);
    const inbox = new EventQueue<TcpRelayEvents>(client, ['message', 'error']);
    const taken = await within(client.init(id), STEP_MS, id === undefined ? 'INIT without id' : 'INIT with id');
    return { client, inbox, id: taken };
  };
  try {
    const a = await open();
    const wanted = `soak-${tag}`;
    const b = await open(wanted);
    expectEqual(b.id, wanted, 'INIT with id');
    if (rnd(4) === 0) {
      const c = await within(TcpRelayClient.connect({ host: HOST, port: ports.tcp }), STEP_MS, 'tcprelay connect');
      clients.push(c);
      const refused = await within(c.init(wanted).then(() => 'accepted', (error: Error) => error.message), STEP_MS, 'duplicate INIT reply');
      expectEqual(refused, `INIT refused: ClientId: ${wanted} is already initialized`, 'duplicate INIT');
    }
    for (let i = 0; i < 5; i++) {
      const ab = `a→b "${tag}" ${i} ✓`;
      a.client.send(wanted, ab);
      expectEqual(await b.inbox.next('message', STEP_MS), { source: a.id, destination: wanted, payload: ab }, 'a→b');
      const ba = `b→a ${i} \\ é`;
      b.client.send(a.id, ba);
      expectEqual(await a.inbox.next('message', STEP_MS), { source: wanted, destination: a.id, payload: ba }, 'b→a');
    }
    // CLOSE frees a's id; a's next MESSAGE proves the server handled it, then b cannot reach a.
    a.client.release();
    a.client.send(wanted, 'after close');
    await a.inbox.next('error', STEP_MS);
    b.client.send(a.id, 'to a closed id');
    const unknown = await b.inbox.next('error', STEP_MS);
    check(unknown.source === undefined && String(unknown.payload).includes('is not initialized'), `expected ERROR, got ${JSON.stringify(unknown)}`);
    await within(Promise.all([a.client.end(), b.client.end()]), STEP_MS, 'tcprelay close');
    return true;
  } finally {
    await within(Promise.all(clients.map((client) => client.end())), STEP_MS, 'tcprelay close').catch(() => undefined);
  }
}
