// One lab machine: runs inside a network namespace (`ip netns exec NS node --import tsx agent.ts`)
// and plays netfox.noray games on it, driven by JSON lines on stdin (see protocol.ts). The wire
// behaviour is test/noray/netfox.ts, byte for byte: register-host, register_remote every 100 ms,
// PacketHandshake statuses every 100 ms, a Godot host blasting `$rwx`, then game traffic from the
// local port the registrar saw. Exits when stdin closes, so it never outlives the test.
import type { Socket as UdpSocket } from 'node:dgram';
import { createInterface } from 'node:readline';
import { blastHostHandshake, bindLocalPort, handshakeOverPacketPeer, NetfoxClient } from '../clients/netfox.js';
import { checkStream, datagram, isHandshakeStatus, MAX_PAYLOAD } from './payload.js';
import type { Address, Command, ReplyLine, RequestLine, Requests } from './protocol.js';

interface Player {
  readonly netfox: NetfoxClient;
  readonly bind: string;
  readonly server: string;
  game: UdpSocket | null;
  /** Game datagrams (not handshake statuses) per source address, in arrival order. */
  readonly inbox: Map<Address, Buffer[]>;
  /** Running host handshakes (a host answers every client at once), by target address. */
  readonly blasts: Map<Address, { stop(): void; timer: NodeJS.Timeout }>;
  /** The registrar's address once register_remote ran. */
  registrar: Address | null;
}

const players = new Map<string, Player>();
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function player(name: string): Player {
  const found = players.get(name);
  if (!found) throw new Error(`no player ${name}`);
  return found;
}

function split(address: Address): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  return { host: address.slice(0, colon), port: Number(address.slice(colon + 1)) };
}

/** The next line with one of these commands (or `error`), consuming it and the lines before it. */
async function nextLine(client: NetfoxClient, expect: string[], timeoutMs: number): Promise<{ command: string; data: string }> {
  const wanted = new Set([...expect, 'error']);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const entry = client.rawLines.find((line) => wanted.has(line.command));
    if (entry) return { command: entry.command, data: await client.next(entry.command, 1000) };
    if (client.closed) throw new Error(`control connection closed while waiting for ${expect.join('/')}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${expect.join('/')}; got ${JSON.stringify(client.rawLines)}`);
    await sleep(5);
  }
}

function stopBlasts(p: Player): void {
  for (const blast of p.blasts.values()) {
    blast.stop();
    clearTimeout(blast.timer);
  }
  p.blasts.clear();
}

function closeGame(p: Player): void {
  stopBlasts(p);
  p.game?.close();
  p.game = null;
}

type Handler<C extends Command> = (req: Requests[C]['req']) => Promise<Requests[C]['res']>;

const handlers: { [C in Command]: Handler<C> } = {
  async open({ player: name, bind, server, tcpPort }) {
    if (players.has(name)) throw new Error(`player ${name} exists`);
    const netfox = await NetfoxClient.connect(tcpPort, server, bind);
    const p: Player = { netfox, bind, server, game: null, inbox: new Map(), blasts: new Map(), registrar: null };
    players.set(name, p);
    await netfox.registerHost();
    return { oid: netfox.oid, tcpLocal: `${netfox.socket.localAddress}:${netfox.socket.localPort}` };
  },

  async registerRemote({ player: name, registrarPort }) {
    const p = player(name);
    p.registrar = `${p.server}:${registrarPort}`;
    const result = await p.netfox.registerRemote(registrarPort);
    return { result, localPort: p.netfox.localPort };
  },

  async command({ player: name, name: command, data, expect, timeoutMs }) {
    const p = player(name);
    p.netfox.putCommand(command, data);
    return nextLine(p.netfox, expect, timeoutMs);
  },

  async awaitLine({ player: name, expect, timeoutMs }) {
    return nextLine(player(name).netfox, expect, timeoutMs);
  },

  async bindGame({ player: name }) {
    const p = player(name);
    if (p.netfox.localPort < 0) throw new Error('register_remote first');
    closeGame(p);
    const game = await bindLocalPort(p.netfox.localPort, p.bind);
    game.on('error', () => undefined);
    // Not on the wire: room for a second of traffic if this process is starved of CPU for a moment.
    try {
      game.setRecvBufferSize(1 << 20);
    } catch {
      // capped by net.core.rmem_max; the default still works at the lab's rates
    }
    game.on('message', (message, info) => {
      if (isHandshakeStatus(message)) return;
      const from = `${info.address}:${info.port}`;
      // register_remote sends its PrivateID every 100 ms until the first OK: on a busy server the
      // OK to a repeat arrives after the game socket took the port over. ENet drops it as not its own.
      if (from === p.registrar) return;
      let list = p.inbox.get(from);
      if (!list) p.inbox.set(from, (list = []));
      list.push(message);
    });
    p.game = game;
    p.inbox.clear();
    return { local: `${game.address().address}:${game.address().port}` };
  },

  async closeGame({ player: name }) {
    closeGame(player(name));
    return {};
  },

  async handshake({ player: name, to, timeoutMs }) {
    const p = player(name);
    if (!p.game) throw new Error('bindGame first');
    const { host, port } = split(to);
    const started = Date.now();
    const result = await handshakeOverPacketPeer(p.game, host, port, timeoutMs);
    const from = [...new Set(result.from.map((info) => `${info.address}:${info.port}`))];
    return { ok: result.ok, ms: Date.now() - started, from };
  },

  async blast({ player: name, to, durationMs }) {
    const p = player(name);
    if (!p.game) throw new Error('bindGame first');
    p.blasts.get(to)?.stop();
    const { host, port } = split(to);
    const blast = blastHostHandshake(p.game, host, port);
    const timer = setTimeout(() => {
      blast.stop();
      if (p.blasts.get(to)?.timer === timer) p.blasts.delete(to);
    }, durationMs);
    p.blasts.set(to, { stop: blast.stop, timer });
    return {};
  },

  async stopBlast({ player: name }) {
    stopBlasts(player(name));
    return {};
  },

  async send({ player: name, to, seed, count, bytesPerSecond }) {
    const p = player(name);
    const { host, port } = split(to);
    const started = Date.now();
    // Token bucket with room for a few datagrams only: a late timer never turns into a burst.
    const capacity = 4 * MAX_PAYLOAD;
    let tokens = capacity;
    let last = started;
    for (let seq = 0; seq < count; ) {
      const game = p.game;
      if (!game) throw new Error('game socket closed while sending');
      const now = Date.now();
      tokens = Math.min(capacity, tokens + ((now - last) * bytesPerSecond) / 1000);
      last = now;
      const message = datagram(seed, seq);
      if (tokens >= message.length) {
        tokens -= message.length;
        game.send(message, port, host);
        seq++;
      } else {
        await sleep(Math.max(1, Math.ceil(((message.length - tokens) * 1000) / bytesPerSecond)));
      }
    }
    return { sent: count, ms: Date.now() - started };
  },

  async verify({ player: name, from, seed, count, quietMs, timeoutMs }) {
    const p = player(name);
    const deadline = Date.now() + timeoutMs;
    let seen = -1;
    let lastNews = Date.now();
    for (;;) {
      const now = Date.now();
      const have = p.inbox.get(from)?.length ?? 0;
      if (have !== seen) {
        seen = have;
        lastNews = now;
      }
      if (have >= count || now >= deadline || now - lastNews >= quietMs) break;
      await sleep(10);
    }
    // A moment more, so extra datagrams (duplicates) would be seen too.
    await sleep(50);
    return { ...checkStream(p.inbox.get(from) ?? [], seed, count), sources: counts(p) };
  },

  async clearInbox({ player: name, from }) {
    const p = player(name);
    if (from === undefined) p.inbox.clear();
    else p.inbox.delete(from);
    return {};
  },

  async sources({ player: name }) {
    return { sources: counts(player(name)) };
  },

  async info({ player: name }) {
    const p = player(name);
    const game = p.game?.address();
    return {
      tcpLocal: `${p.netfox.socket.localAddress}:${p.netfox.socket.localPort}`,
      localPort: p.netfox.localPort,
      game: game ? `${game.address}:${game.port}` : null,
    };
  },

  async close({ player: name }) {
    const p = players.get(name);
    if (p) {
      closeGame(p);
      p.netfox.close();
      players.delete(name);
    }
    return {};
  },

  async fetch({ url }) {
    const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
    return { status: response.status, body: await response.text() };
  },
};

function counts(p: Player): Record<Address, number> {
  return Object.fromEntries([...p.inbox].map(([from, list]) => [from, list.length]));
}

function reply(line: ReplyLine): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

async function dispatch(request: RequestLine): Promise<void> {
  try {
    const handler = handlers[request.cmd] as Handler<Command>;
    reply({ id: request.id, ok: true, result: await handler(request) });
  } catch (error) {
    reply({ id: request.id, ok: false, error: error instanceof Error ? error.message : String(error) });
  }
}

const input = createInterface({ input: process.stdin });
input.on('line', (text) => {
  if (text.trim() === '') return;
  void dispatch(JSON.parse(text) as RequestLine);
});
input.on('close', () => {
  for (const name of [...players.keys()]) void handlers.close({ player: name });
  process.exit(0);
});
reply({ id: 0, ok: true, result: 'ready' });
