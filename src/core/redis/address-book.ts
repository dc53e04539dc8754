// AddressBook over Redis. Keys (P is the store's prefix):
//   P a:s:<sessionId>  hash { address, port, node }
//   P a:n:<nodeId>     set of the session ids last recorded through that node
// `record` is one Lua script (read, compare, write), so two nodes recording one session at once
// each get an outcome that matches some serial order; the latest write wins.
import type { AddressBook, Recorded } from '../address-book.js';
import type { Endpoint } from '../endpoint.js';
import { asStrings, LuaScript, type RedisClient, type RedisStoreOptions } from './script.js';

// KEYS: entry, node set of this store. ARGV: address, port, nodeId, sessionId, prefix.
// Returns {outcome, previous address, previous port}.
const RECORD = new LuaScript(`
local previous = redis.call('HMGET', KEYS[1], 'address', 'port', 'node')
if previous[1] == ARGV[1] and previous[2] == ARGV[2] then return {'repeat'} end
if previous[3] and previous[3] ~= ARGV[3] then redis.call('SREM', ARGV[5] .. 'a:n:' .. previous[3], ARGV[4]) end
redis.call('HSET', KEYS[1], 'address', ARGV[1], 'port', ARGV[2], 'node', ARGV[3])
redis.call('SADD', KEYS[2], ARGV[4])
if previous[1] then return {'moved', previous[1], previous[2]} end
return {'registered'}
`);

// KEYS: entry. ARGV: sessionId, prefix, nodeId or '' (forget only if recorded by that node).
const FORGET = new LuaScript(`
local node = redis.call('HGET', KEYS[1], 'node')
if not node then return 0 end
if ARGV[3] ~= '' and node ~= ARGV[3] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', ARGV[2] .. 'a:n:' .. node, ARGV[1])
return 1
`);

export class RedisAddressBook implements AddressBook {
  readonly nodeId: string;
  /** The latest endpoint recorded through this node per session: put back after a Redis restart. */
  private readonly own = new Map<string, Endpoint>();

  constructor(
    private readonly client: RedisClient,
    private readonly prefix: string,
    options: RedisStoreOptions = {},
  ) {
    this.nodeId = options.nodeId ?? 'node';
  }

  async record(sessionId: string, endpoint: Endpoint): Promise<Recorded> {
    const stored = { address: endpoint.address, port: endpoint.port };
    this.own.set(sessionId, stored);
    const reply = asStrings(
      await RECORD.run(
        this.client,
        [this.entryKey(sessionId), this.nodeKey(this.nodeId)],
        [stored.address, String(stored.port), this.nodeId, sessionId, this.prefix],
      ),
    );
    const [outcome, address, port] = reply;
    if (outcome === 'repeat') return { outcome: 'repeat', endpoint: stored };
    if (outcome === 'moved' && address !== undefined && port !== undefined) {
      return { outcome: 'moved', endpoint: stored, previous: { address, port: Number(port) } };
    }
    return { outcome: 'registered', endpoint: stored };
  }

  async endpointOf(sessionId: string): Promise<Endpoint | undefined> {
    const [address, port] = await this.client.hmGet(this.entryKey(sessionId), ['address', 'port']);
    return typeof address === 'string' && typeof port === 'string' ? { address, port: Number(port) } : undefined;
  }

  /** Records again what this node recorded (after a Redis restart lost it); how many. */
  async republish(): Promise<number> {
    for (const [sessionId, endpoint] of [...this.own]) {
      await RECORD.run(
        this.client,
        [this.entryKey(sessionId), this.nodeKey(this.nodeId)],
        [endpoint.address, String(endpoint.port), this.nodeId, sessionId, this.prefix],
      );
    }
    return this.own.size;
  }

  async forget(sessionId: string): Promise<void> {
    this.own.delete(sessionId);
    await FORGET.run(this.client, [this.entryKey(sessionId)], [sessionId, this.prefix, '']);
  }

  /** Forgets every endpoint last recorded through node `nodeId`; the session ids forgotten. */
  async purgeNode(nodeId: string): Promise<string[]> {
    const forgotten: string[] = [];
    for (const sessionId of asStrings(await this.client.sMembers(this.nodeKey(nodeId)))) {
      const reply = await FORGET.run(this.client, [this.entryKey(sessionId)], [sessionId, this.prefix, nodeId]);
      if (reply === 1) forgotten.push(sessionId);
      else await this.client.sRem(this.nodeKey(nodeId), sessionId);
    }
    return forgotten;
  }

  private entryKey(sessionId: string): string {
    return `${this.prefix}a:s:${sessionId}`;
  }

  private nodeKey(nodeId: string): string {
    return `${this.prefix}a:n:${nodeId}`;
  }
}
