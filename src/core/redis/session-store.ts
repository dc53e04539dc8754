// SessionStore over Redis. Keys (P is the store's prefix):
//   P s:pub:<publicId>  hash { id, secret, data (the encoded record), node }
//   P s:sec:<secret>    string: the public id holding that secret
//   P s:node:<nodeId>   set of the public ids claimed through that node
// claim, release, bySecret and the purge of one session are Lua scripts, so each is atomic: two
// nodes claiming one public id or secret at once get one true and one false.
import type { SessionRecord, SessionStore } from '../directory.js';
import { asString, asStrings, LuaScript, type RedisClient, type RedisStoreOptions } from './script.js';

export interface Codec<T> {
  encode(value: T): string;
  decode(text: string): T;
}

/** Plain-data records as JSON. */
export function jsonCodec<T>(): Codec<T> {
  return { encode: (value) => JSON.stringify(value), decode: (text) => JSON.parse(text) as T };
}

export interface RedisSessionStoreOptions<S> extends RedisStoreOptions {
  /** How a record is held. Default: JSON, for plain-data records. */
  readonly codec?: Codec<S>;
}

// KEYS: pub, sec, node set. ARGV: id, secret, data, nodeId, publicId.
const CLAIM = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'secret', ARGV[2], 'data', ARGV[3], 'node', ARGV[4])
redis.call('SET', KEYS[2], ARGV[5])
redis.call('SADD', KEYS[3], ARGV[5])
return 1
`);

// Removes the session at KEYS[1] (public id ARGV[2]) if ARGV[1] matches its field ARGV[3]
// ('id' for release, 'node' for a purge); its data, or false. ARGV[4]: the prefix.
const REMOVE = new LuaScript(`
local fields = redis.call('HMGET', KEYS[1], 'id', 'secret', 'data', 'node')
local id, secret, data, node = fields[1], fields[2], fields[3], fields[4]
if not id then return false end
local matched = (ARGV[3] == 'id' and id == ARGV[1]) or (ARGV[3] == 'node' and node == ARGV[1])
if not matched then return false end
redis.call('DEL', KEYS[1])
local secKey = ARGV[4] .. 's:sec:' .. secret
if redis.call('GET', secKey) == ARGV[2] then redis.call('DEL', secKey) end
redis.call('SREM', ARGV[4] .. 's:node:' .. node, ARGV[2])
return data
`);

// KEYS: sec. ARGV: prefix, secret.
const BY_SECRET = new LuaScript(`
local publicId = redis.call('GET', KEYS[1])
if not publicId then return false end
local fields = redis.call('HMGET', ARGV[1] .. 's:pub:' .. publicId, 'secret', 'data')
if fields[1] ~= ARGV[2] then return false end
return fields[2]
`);

export class RedisSessionStore<S extends SessionRecord> implements SessionStore<S> {
  private readonly codec: Codec<S>;
  readonly nodeId: string;
  /** What this node claimed and holds, by public id: put back into a Redis that restarted empty. */
  private readonly own = new Map<string, S>();

  constructor(
    private readonly client: RedisClient,
    private readonly prefix: string,
    options: RedisSessionStoreOptions<S> = {},
  ) {
    this.codec = options.codec ?? jsonCodec<S>();
    this.nodeId = options.nodeId ?? 'node';
  }

  async claim(session: S): Promise<boolean> {
    const reply = await CLAIM.run(
      this.client,
      [this.pubKey(session.publicId), this.secKey(session.secret), this.nodeKey(this.nodeId)],
      [session.id, session.secret, this.codec.encode(session), this.nodeId, session.publicId],
    );
    if (reply === 1) this.own.set(session.publicId, session);
    return reply === 1;
  }

  async release(session: S): Promise<boolean> {
    if (this.own.get(session.publicId)?.id === session.id) this.own.delete(session.publicId);
    const reply = await REMOVE.run(this.client, [this.pubKey(session.publicId)], [session.id, session.publicId, 'id', this.prefix]);
    return asString(reply) !== undefined;
  }

  /**
   * Claims again what this node holds (after a Redis restart lost it); a session another node
   * claimed meanwhile stays theirs. Returns how many were put back.
   */
  async republish(): Promise<number> {
    let restored = 0;
    for (const session of [...this.own.values()]) {
      const reply = await CLAIM.run(
        this.client,
        [this.pubKey(session.publicId), this.secKey(session.secret), this.nodeKey(this.nodeId)],
        [session.id, session.secret, this.codec.encode(session), this.nodeId, session.publicId],
      );
      if (reply === 1) restored++;
    }
    return restored;
  }

  async byPublicId(publicId: string): Promise<S | undefined> {
    const data = await this.client.hGet(this.pubKey(publicId), 'data');
    return data === null || data === undefined ? undefined : this.codec.decode(data);
  }

  async bySecret(secret: string): Promise<S | undefined> {
    const data = asString(await BY_SECRET.run(this.client, [this.secKey(secret)], [this.prefix, secret]));
    return data === undefined ? undefined : this.codec.decode(data);
  }

  /**
   * Removes every session claimed through node `nodeId` (for when that node died: its
   * connections are gone); each removal is atomic on its own. Returns the sessions removed.
   */
  async purgeNode(nodeId: string): Promise<S[]> {
    const removed: S[] = [];
    for (const publicId of asStrings(await this.client.sMembers(this.nodeKey(nodeId)))) {
      const data = asString(await REMOVE.run(this.client, [this.pubKey(publicId)], [nodeId, publicId, 'node', this.prefix]));
      if (data !== undefined) removed.push(this.codec.decode(data));
      else await this.client.sRem(this.nodeKey(nodeId), publicId); // held by another node's session now
    }
    return removed;
  }

  private pubKey(publicId: string): string {
    return `${this.prefix}s:pub:${publicId}`;
  }

  private secKey(secret: string): string {
    return `${this.prefix}s:sec:${secret}`;
  }

  private nodeKey(nodeId: string): string {
    return `${this.prefix}s:node:${nodeId}`;
  }
}
