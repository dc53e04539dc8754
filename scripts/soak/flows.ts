// Well-behaved clients: one function per front that runs one complete flow and verifies every
// answer. Anything unexpected throws; the caller counts it as an error of a well-behaved client.
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { handshakeOverPacketPeer, NetfoxClient } from '../../test/clients/netfox.js';
import { OrionClient } from '../../test/clients/orion.js';
import { RoccoClient, type Received } from '../../test/clients/rocco.js';
import { loginClient, loginServer, type WsPeer } from '../../test/clients/carparty.js';
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

/** register_remote with a socket that stays open (the game keeps using that local port). */
async function registerUdp(client: NetfoxClient, registrar: number): Promise<UdpSocket> {
  const udp = createSocket('udp4');
  await new Promise<void>((resolve) => udp.bind(0, HOST, () => resolve()));
  try {
    let reply: string | null = null;
    const onMessage = (message: Buffer, info: RemoteInfo) => {
      if (info.port === registrar) reply = message.toString('utf8');
    };
    udp.on('message', onMessage);
    const deadline = Date.now() + 8000;
    while (reply === null && Date.now() < deadline) {
      udp.send(client.pid, registrar, HOST);
      await sleep(100);
    }
    udp.off('message', onMessage);
    expectEqual(reply, 'OK', 'registrar reply');
    return udp;
  } catch (error) {
    udp.close();
    throw error;
  }
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
  try {
    const host = await within(NetfoxClient.connect(ports.control), STEP_MS, 'noray host connect');
    closers.push(() => host.close());
    const client = await within(NetfoxClient.connect(ports.control), STEP_MS, 'noray client connect');
    closers.push(() => client.close());
    await within(host.registerHost(), STEP_MS, 'host register-host');
    await within(client.registerHost(), STEP_MS, 'client register-host');
    check(host.oid.length === 21 && host.pid.length === 128, `odd ids: oid ${host.oid.length}, pid ${host.pid.length}`);
    const hostUdp = await registerUdp(host, ports.registrar);
    closers.push(() => hostUdp.close());
    const clientUdp = await registerUdp(client, ports.registrar);
    closers.push(() => clientUdp.close());
    const hostPort = hostUdp.address().port;
    const clientPort = clientUdp.address().port;

    client.putCommand('connect', host.oid);
    expectEqual(await client.next('connect', STEP_MS), `${HOST}:${hostPort}`, 'connect to requester');
    expectEqual(await host.next('connect', STEP_MS), `${HOST}:${clientPort}`, 'connect to host');
    const [a, b] = await Promise.all([
      handshakeOverPacketPeer(clientUdp, HOST, hostPort, 4000),
      handshakeOverPacketPeer(hostUdp, HOST, clientPort, 4000),
    ]);
    check(a.ok && b.ok, 'direct handshake failed');

    if (!(await budget.acquire(2, stop))) return false;
    relayed = true;
    client.putCommand('connect-relay', host.oid);
    const hostRelay = Number(await client.next('connect-relay', STEP_MS));
    const clientRelay = Number(await host.next('connect-relay', STEP_MS));
    check(ports.relay.includes(hostRelay) && ports.relay.includes(clientRelay), `relay ports ${hostRelay}/${clientRelay} not in range`);
    check(hostRelay !== clientRelay, 'both sides got the same relay port');
    for (let i = 0; i < 4; i++) {
      await deliver(clientUdp, hostRelay, hostUdp, clientRelay, `c2h ${tag} ${i}`);
      await deliver(hostUdp, clientRelay, clientUdp, hostRelay, `h2c ${tag} ${i}`);
    }
    host.putCommand('echo', tag);
    expectEqual(await host.next('echo', STEP_MS), tag, 'echo');
    return true;
  } finally {
    if (relayed) budget.release(2);
    for (const close of closers.reverse()) close();
  }
}

// ---- lobby ----------------------------------------------------------------------------------

interface Member {
  name: string;
  client: OrionClient;
}

export async function lobbyFlow(ports: Ports, tag: string): Promise<boolean> {
  const everyone: OrionClient[] = [];
  try {
    const host = await within(OrionClient.connect(ports.lobbyHttp, ports.lobbyUdp), STEP_MS, 'lobby host connect');
    everyone.push(host);
    const joiners = 1 + rnd(3);
    const created = await host.createLobby({
      hostName: 'host',
      lobbyName: `lobby ${tag}`,
      isPublic: rnd(2) === 0,
      maxMembers: joiners + 1 + rnd(2),
    });
    expectEqual(created.status, 201, `create lobby (${created.text})`);
    const lobbyId = (created.body as { lobbyId: string }).lobbyId;
    check(/^[0-9A-Z]{5}$/.test(lobbyId), `odd lobby id ${lobbyId}`);
    const members: Member[] = [{ name: 'host', client: host }];
    for (let j = 0; j < joiners; j++) {
      const client = await within(OrionClient.connect(ports.lobbyHttp, ports.lobbyUdp), STEP_MS, 'lobby peer connect');
      everyone.push(client);
      const name = `peer${j}`;
      const joined = await client.join(lobbyId, name);
      expectEqual(joined.status, 200, `join (${joined.text})`);
      const body = joined.body as { lobbyMembers: string[]; host: string };
      expectEqual(body.lobbyMembers, [...members.map((m) => m.name), name], 'lobbyMembers');
      for (const member of members) {
        expectEqual(await member.client.next('lobby_peerConnect'), { lobbyId, peerName: name }, 'peerConnect');
      }
      members.push({ name, client });
    }

    const speaker = members[rnd(members.length)] as Member;
    const text = `hi from ${speaker.name} ${tag}`;
    speaker.client.chat(lobbyId, text);
    for (const member of members) {
      const got = (await member.client.next('lobby_messaging_received')) as { lobbyId: string; message: { senderName: string; message: string } };
      expectEqual([got.lobbyId, got.message.senderName, got.message.message], [lobbyId, speaker.name, text], 'chat');
    }

    const variant = rnd(10);
    if (variant === 8) {
      // The host leaves before mediation: everyone else is told the lobby closed.
      await host.close();
      for (const member of members.slice(1)) {
        expectEqual(await member.client.next('lobby_closed'), { lobbyId, lobbyName: `lobby ${tag}` }, 'lobby_closed (host left)');
      }
      return true;
    }
    if (variant === 9 && members.length > 2) {
      // A member leaves before mediation; the rest go on.
      const leaver = members.pop() as Member;
      await leaver.client.close();
      for (const member of members) {
        expectEqual(await member.client.next('lobby_peerDisconnect'), { lobbyId, peerName: leaver.name }, 'peerDisconnect');
      }
    }

    const started = await host.startMediation(lobbyId);
    expectEqual(started.status, 200, `ptp/start (${started.text})`);
    for (const member of members) {
      expectEqual(await member.client.next('ptpMediation_send'), { port: ports.lobbyUdp }, 'ptpMediation_send');
    }
    if ((variant === 6 || variant === 7) && members.length > 2) {
      // A member leaves mid-mediation: the others are told and the mediation aborts.
      const leaver = members.pop() as Member;
      await leaver.client.close();
      for (const member of members) {
        expectEqual(await member.client.next('lobby_peerDisconnect'), { lobbyId, peerName: leaver.name }, 'peerDisconnect');
        expectEqual(await member.client.next('ptpMediation_aborted'), { abortReason: 'Lobby members changed.' }, 'aborted');
      }
      await host.close();
      for (const member of members.slice(1)) {
        expectEqual(await member.client.next('lobby_closed'), { lobbyId, lobbyName: `lobby ${tag}` }, 'lobby_closed');
      }
      return true;
    }

    // Every member sends its UDP packet (again every 300 ms until the peers list arrives).
    const peersOf = await Promise.all(
      members.map(async (member) => {
        const peers = member.client.next('ptpMediation_peersConnection_start');
        let done = false;
        void peers.finally(() => (done = true)).catch(() => undefined);
        for (let i = 0; i < 20 && !done; i++) {
          await member.client.sendUdp();
          await sleep(300);
        }
        return (await peers) as { peers: Array<{ ip: string; port: number }> };
      }),
    );
    const addressOf = (member: Member) => ({ ip: HOST, port: member.client.udpLocalPort });
    expectEqual(peersOf[0]?.peers, members.slice(1).map(addressOf), 'peers for the host');
    for (let i = 1; i < members.length; i++) expectEqual(peersOf[i]?.peers, [addressOf(members[0] as Member)], 'peers for a member');
    for (const member of members) member.client.sendWs('ptpMediation_peersConnection_success', { token: member.client.token });
    for (const member of members) {
      expectEqual(await member.client.next('ptpMediation_success'), {}, 'ptpMediation_success');
      expectEqual(await member.client.next('lobby_closed'), { lobbyId, lobbyName: `lobby ${tag}` }, 'lobby_closed (success)');
    }
    return true;
  } finally {
    await Promise.all(everyone.map((client) => client.close().catch(() => undefined)));
  }
}

// ---- wsrelay --------------------------------------------------------------------------------

const next = (peer: WsPeer, what: string) => within(peer.next(), STEP_MS, what);

export async function wsrelayFlow(ports: Ports, tag: string): Promise<boolean> {
  const peers: WsPeer[] = [];
  try {
    const code = `soak-${tag}`;
    const server = await within(loginServer(ports.ws, code), STEP_MS, 'wsrelay server login');
    peers.push(server);
    const phones: Array<{ id: string; peer: WsPeer }> = [];
    const count = 2 + rnd(3);
    for (let i = 0; i < count; i++) {
      const id = `p${i}`;
      const peer = await within(loginClient(ports.ws, server, code, id), STEP_MS, 'wsrelay phone login');
      peers.push(peer);
      phones.push({ id, peer });
    }
    // Server -> every phone, byte for byte.
    const all = `{"t":"state","tag":"${tag}","n":1}`;
    server.send(all);
    for (const phone of phones) expectEqual(await next(phone.peer, 'broadcast'), all, 'broadcast');
    // Server -> one phone by receiver_id; a marker after it shows the others did not get it.
    const target = phones[rnd(phones.length)] as (typeof phones)[number];
    const one = `{"receiver_id":"${target.id}","t":"private"}`;
    const mark = '{"t":"mark"}';
    server.send(one);
    server.send(mark);
    for (const phone of phones) {
      if (phone === target) expectEqual(await next(phone.peer, 'targeted'), one, 'targeted message');
      expectEqual(await next(phone.peer, 'marker'), mark, `marker for ${phone.id}`);
    }
    // Phones -> server: stamped with the sender's id, big integers exact.
    for (const phone of phones) phone.peer.send(`{"t":"input","big":12345678901234567890,"client_id":"forged"}`);
    const seen = new Set<string>();
    for (let i = 0; i < phones.length; i++) {
      const text = await next(server, 'phone message');
      check(text.includes('12345678901234567890'), `big integer changed: ${text}`);
      const parsed = JSON.parse(text) as { client_id: string; t: string };
      expectEqual(parsed.t, 'input', 'phone message body');
      seen.add(parsed.client_id);
    }
    expectEqual([...seen].sort(), phones.map((p) => p.id).sort(), 'stamped client ids');
    // One phone leaves: the server is told.
    const leaver = phones.shift() as (typeof phones)[number];
    await within(leaver.peer.close(), STEP_MS, 'phone close');
    expectEqual(await next(server, 'disconnect notice'), JSON.stringify({ action: 'disconnect', client_id: leaver.id }), 'disconnect notice');
    // The server leaves: every phone gets a close frame.
    await within(server.close(), STEP_MS, 'server close');
    for (const phone of phones) {
      const closed = await within(phone.peer.closed, STEP_MS, 'phone closed after server left');
      expectEqual(closed.code, 1000, 'phone close code');
    }
    return true;
  } finally {
    for (const peer of peers) peer.ws.terminate();
  }
}

// ---- tcprelay -------------------------------------------------------------------------------

const nextFrame = (client: RoccoClient, what: string): Promise<Received> => within(client.next(), STEP_MS, what);

export async function tcprelayFlow(ports: Ports, tag: string): Promise<boolean> {
  const clients: RoccoClient[] = [];
  try {
    const a = await within(RoccoClient.open(ports.tcp), STEP_MS, 'tcprelay connect');
    clients.push(a);
    const idA = await within(a.init(), STEP_MS, 'INIT without id');
    const wanted = `soak-${tag}`;
    const b = await within(RoccoClient.open(ports.tcp), STEP_MS, 'tcprelay connect');
    clients.push(b);
    expectEqual(await within(b.init(wanted), STEP_MS, 'INIT with id'), wanted, 'INIT with id');
    if (rnd(4) === 0) {
      const c = await within(RoccoClient.open(ports.tcp), STEP_MS, 'tcprelay connect');
      clients.push(c);
      c.send({ payloadType: 'INIT', source: wanted });
      const reply = await nextFrame(c, 'duplicate INIT reply');
      expectEqual([reply.payloadType, reply.payload], ['ERROR', `ClientId: ${wanted} is already initialized`], 'duplicate INIT');
    }
    for (let i = 0; i < 5; i++) {
      const ab = `a→b "${tag}" ${i} ✓`;
      a.message(wanted, ab);
      expectEqual(await nextFrame(b, 'a→b'), { payloadType: 'MESSAGE', source: idA, destination: wanted, payload: ab }, 'a→b');
      const ba = `b→a ${i} \\ é`;
      b.message(idA, ba);
      expectEqual(await nextFrame(a, 'b→a'), { payloadType: 'MESSAGE', source: wanted, destination: idA, payload: ba }, 'b→a');
    }
    // CLOSE frees a's id; a's next MESSAGE proves the server handled it, then b cannot reach a.
    a.send({ payloadType: 'CLOSE' });
    a.message(wanted, 'after close');
    const refused = await nextFrame(a, 'MESSAGE after CLOSE');
    expectEqual(refused.payloadType, 'ERROR', 'MESSAGE after CLOSE');
    b.message(idA, 'to a closed id');
    const unknown = await nextFrame(b, 'MESSAGE to a closed id');
    check(unknown.payloadType === 'ERROR' && String(unknown.payload).includes('is not initialized'), `expected ERROR, got ${JSON.stringify(unknown)}`);
    await within(Promise.all([a.end(), b.end()]), STEP_MS, 'tcprelay close');
    return true;
  } finally {
    for (const client of clients) client.socket.destroy();
  }
}
