// RoomStore over Redis: the rooms of every node in one place, so counts() and the uniqueness of
// codes and ids hold cluster-wide. Every answer is a promise. Keys (P is the store's prefix):
//   P rooms               set of the open codes (counts().rooms, maxRooms)
//   P r:count             members over all rooms (counts().members)
//   P r:o:<code>          hash { n: node that opened it, q: join counter, o: owner (absent: none) }
//   P r:m:<code>          sorted set: member connections scored by join order
//   P r:c:<code>          hash: member connection -> its id
//   P r:mn:<code>         hash: member connection -> the node it joined through
//   P r:i:<part(code)><id> sorted set: the connections holding that id, by join order
//   P r:n:<node>          set of the owned rooms opened through that node
//   P r:nm:<node>         set of part(code)+connection: memberships joined through that node
// open, join, leave, close and counts are Lua scripts, each atomic: of two nodes opening one code
// or joining one unique id at once, one wins. members/membersWithId/owner are single reads.
import type { JoinOptions, JoinResult, OpenOptions, OpenResult, PurgedRooms, RoomCounts, RoomMember, RoomStore } from '../room-store.js';

export type { PurgedRooms } from '../room-store.js';
import { asNumber, asString, asStrings, LUA_PART, LuaScript, part, type RedisClient, type RedisStoreOptions } from './script.js';

// Every script: KEYS[1] the room's r:o key; ARGV[1] the prefix, ARGV[2] the code.
const PRELUDE = `${LUA_PART}
local P, code = ARGV[1], ARGV[2]
local roomKey = KEYS[1]
local function key(kind) return P .. 'r:' .. kind .. ':' .. code end
local function idKey(id) return P .. 'r:i:' .. part(code) .. id end
local function openRoom(owner, node)
  redis.call('HSET', roomKey, 'n', node, 'q', 0)
  if owner ~= false then
    redis.call('HSET', roomKey, 'o', owner)
    redis.call('SADD', P .. 'r:n:' .. node, code)
  end
  redis.call('SADD', P .. 'rooms', code)
end
local function removeMember(connection, id)
  redis.call('ZREM', key('m'), connection)
  redis.call('HDEL', key('c'), connection)
  redis.call('ZREM', idKey(id), connection)
  local node = redis.call('HGET', key('mn'), connection)
  redis.call('HDEL', key('mn'), connection)
  if node then redis.call('SREM', P .. 'r:nm:' .. node, part(code) .. connection) end
  redis.call('DECR', P .. 'r:count')
end
-- Closes the room (already checked): every key of it goes; returns the released connections.
local function closeRoom()
  local released = redis.call('ZRANGE', key('m'), 0, -1)
  for _, connection in ipairs(released) do
    removeMember(connection, redis.call('HGET', key('c'), connection))
  end
  local fields = redis.call('HMGET', roomKey, 'n', 'o')
  if fields[2] then redis.call('SREM', P .. 'r:n:' .. fields[1], code) end
  redis.call('DEL', roomKey, key('m'), key('c'), key('mn'))
  redis.call('SREM', P .. 'rooms', code)
  return released
end
`;

// ARGV[3] owner ('' with ARGV[4] '0': none), ARGV[5] maxRooms ('' for none), ARGV[6] node.
const OPEN = new LuaScript(`${PRELUDE}
if redis.call('EXISTS', roomKey) == 1 then return 'taken' end
if ARGV[5] ~= '' and redis.call('SCARD', P .. 'rooms') >= tonumber(ARGV[5]) then return 'full' end
openRoom(ARGV[4] == '1' and ARGV[3], ARGV[6])
return 'opened'
`);

// ARGV[3] connection, ARGV[4] id, ARGV[5] uniqueIds '1', ARGV[6] openIfAbsent '1', ARGV[7] node.
const JOIN = new LuaScript(`${PRELUDE}
local connection, id, node = ARGV[3], ARGV[4], ARGV[7]
if redis.call('EXISTS', roomKey) == 0 then
  if ARGV[6] ~= '1' then return 'closed' end
  openRoom(false, node)
end
local current = redis.call('HGET', key('c'), connection)
if current == id then return 'joined' end
if ARGV[5] == '1' and redis.call('EXISTS', idKey(id)) == 1 then return 'id-taken' end
if current then removeMember(connection, current) end
local seq = redis.call('HINCRBY', roomKey, 'q', 1)
redis.call('ZADD', key('m'), seq, connection)
redis.call('HSET', key('c'), connection, id)
redis.call('ZADD', idKey(id), seq, connection)
redis.call('HSET', key('mn'), connection, node)
redis.call('SADD', P .. 'r:nm:' .. node, part(code) .. connection)
redis.call('INCR', P .. 'r:count')
return 'joined'
`);

// ARGV[3] connection, ARGV[4] node or '' (leave only if it joined through that node).
const LEAVE = new LuaScript(`${PRELUDE}
local connection = ARGV[3]
local id = redis.call('HGET', key('c'), connection)
if not id then return 0 end
if ARGV[4] ~= '' and redis.call('HGET', key('mn'), connection) ~= ARGV[4] then return 0 end
removeMember(connection, id)
return 1
`);

// A dead node's membership: ARGV[3] connection, ARGV[4] node. Leaves only if it joined through
// that node; returns {id, owner or ''} so the owner can be told, or false.
const PURGE_LEAVE = new LuaScript(`${PRELUDE}
local connection = ARGV[3]
local id = redis.call('HGET', key('c'), connection)
if not id or redis.call('HGET', key('mn'), connection) ~= ARGV[4] then return false end
removeMember(connection, id)
return {id, redis.call('HGET', roomKey, 'o') or ''}
`);
// ARGV[3] owner, ARGV[4] '1' if there is one ('0': close an ownerless room), or '2': close if
// ARGV[3] is the node that opened it, whoever owns it. Returns {'closed', released...} or false.
const CLOSE = new LuaScript(`${PRELUDE}
local fields = redis.call('HMGET', roomKey, 'n', 'o')
if not fields[1] then return false end
if ARGV[4] == '2' then
  if fields[1] ~= ARGV[3] or not fields[2] then return false end
elseif ARGV[4] == '1' then
  if fields[2] ~= ARGV[3] then return false end
elseif fields[2] then
  return false
end
local released = closeRoom()
table.insert(released, 1, 'closed')
return released
`);

const COUNTS = new LuaScript(`
return {redis.call('SCARD', KEYS[1]), tonumber(redis.call('GET', KEYS[2]) or '0')}
`);

/** [code, connection] of a membership index entry, part(code) + connection. */
const SPLIT = (entry: string): [string, string] | undefined => {
  const colon = entry.indexOf(':');
  if (colon < 0) return undefined;
  const bytes = Buffer.from(entry.slice(colon + 1), 'utf8');
  const length = Number(entry.slice(0, colon));
  if (!Number.isInteger(length) || length > bytes.length) return undefined;
  return [bytes.subarray(0, length).toString('utf8'), bytes.subarray(length).toString('utf8')];
};


export class RedisRoomStore implements RoomStore {
  readonly nodeId: string;
  /** Rooms this node opened with an owner (code -> owner) and its memberships: put back after a Redis restart. */
  private readonly ownRooms = new Map<string, string>();
  private readonly ownMemberships = new Map<string, { code: string; member: RoomMember; options: JoinOptions }>();

  constructor(
    private readonly client: RedisClient,
    private readonly prefix: string,
    options: RedisStoreOptions = {},
  ) {
    this.nodeId = options.nodeId ?? 'node';
  }

  async open(code: string, owner: string | null, options: OpenOptions = {}): Promise<OpenResult> {
    const max = options.maxRooms === undefined ? '' : String(options.maxRooms);
    const reply = await this.run(OPEN, code, [owner ?? '', owner === null ? '0' : '1', max, this.nodeId]);
    const result = asString(reply) as OpenResult;
    if (result === 'opened' && owner !== null) this.ownRooms.set(code, owner);
    return result;
  }

  async join(code: string, member: RoomMember, options: JoinOptions = {}): Promise<JoinResult> {
    const result = asString(await this.runJoin(code, member, options)) as JoinResult;
    if (result === 'joined') {
      // Joining under a new id moves the membership: one entry per room and connection.
      this.ownMemberships.set(`${part(code)}${member.connection}`, { code, member, options });
    }
    return result;
  }

  private runJoin(code: string, member: RoomMember, options: JoinOptions): Promise<unknown> {
    return this.run(JOIN, code, [
      member.connection,
      member.id,
      options.uniqueIds === true ? '1' : '0',
      options.openIfAbsent === true ? '1' : '0',
      this.nodeId,
    ]);
  }

  async leave(code: string, connection: string): Promise<boolean> {
    this.ownMemberships.delete(`${part(code)}${connection}`);
    return (await this.run(LEAVE, code, [connection, ''])) === 1;
  }

  /**
   * Opens and joins again what this node holds (after a Redis restart lost it): rooms first,
   * then memberships; a code or id another node took meanwhile stays theirs. How many were put back.
   */
  async republish(): Promise<number> {
    let restored = 0;
    for (const [code, owner] of [...this.ownRooms]) {
      if ((await this.run(OPEN, code, [owner, '1', '', this.nodeId])) === 'opened') restored++;
    }
    for (const { code, member, options } of [...this.ownMemberships.values()]) {
      if ((await this.runJoin(code, member, options)) === 'joined') restored++;
    }
    return restored;
  }

  async members(code: string): Promise<Iterable<string>> {
    return this.client.zRange(this.key('m', code), 0, -1);
  }

  async membersWithId(code: string, id: string): Promise<Iterable<string>> {
    return this.client.zRange(`${this.prefix}r:i:${part(code)}${id}`, 0, -1);
  }

  async owner(code: string): Promise<string | undefined> {
    return asString(await this.client.hGet(this.key('o', code), 'o'));
  }

  async close(code: string, owner: string | null): Promise<readonly string[] | undefined> {
    if (owner !== null && this.ownRooms.get(code) === owner) this.ownRooms.delete(code);
    const reply = await this.run(CLOSE, code, [owner ?? '', owner === null ? '0' : '1']);
    return reply === null ? undefined : asStrings(reply).slice(1);
  }

  async counts(): Promise<RoomCounts> {
    const reply = await COUNTS.run(this.client, [`${this.prefix}rooms`, `${this.prefix}r:count`], []);
    const [rooms, members] = Array.isArray(reply) ? (reply as unknown[]) : [];
    return { rooms: asNumber(rooms), members: asNumber(members) };
  }

  /**
   * Removes what node `nodeId` left behind when it died: its connections' memberships, then the
   * rooms with an owner it opened (their owners were its connections). Rooms without an owner
   * (shared directories) stay. Each removal is atomic on its own.
   */
  async purgeNode(nodeId: string): Promise<PurgedRooms> {
    const left: Array<{ code: string; id: string; owner: string | undefined }> = [];
    const membershipIndex = `${this.prefix}r:nm:${nodeId}`;
    for (const entry of await this.client.sMembers(membershipIndex)) {
      const split = SPLIT(entry);
      const reply = split === undefined ? null : await this.run(PURGE_LEAVE, split[0], [split[1], nodeId]);
      if (split !== undefined && Array.isArray(reply)) {
        const [id = '', owner = ''] = asStrings(reply);
        left.push({ code: split[0], id, owner: owner === '' ? undefined : owner });
      } else await this.client.sRem(membershipIndex, entry);
    }
    const memberships = left.length;
    const closed: Array<{ code: string; released: string[] }> = [];
    const roomIndex = `${this.prefix}r:n:${nodeId}`;
    for (const code of await this.client.sMembers(roomIndex)) {
      const reply = await this.run(CLOSE, code, [nodeId, '2']);
      if (reply === null) await this.client.sRem(roomIndex, code);
      else closed.push({ code, released: asStrings(reply).slice(1) });
    }
    return { memberships, left, closed };
  }

  private run(script: LuaScript, code: string, args: readonly string[]): Promise<unknown> {
    return script.run(this.client, [this.key('o', code)], [this.prefix, code, ...args]);
  }

  private key(kind: string, code: string): string {
    return `${this.prefix}r:${kind}:${code}`;
  }
}
