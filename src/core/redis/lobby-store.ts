// LobbyStore over Redis. Keys (P is the store's prefix):
//   P l:c:<clientId>  hash { token, lobby ('' when in none), node }
//   P l:t:<token>     string: the client id holding that token
//   P l:l:<lobbyId>   the lobby as one JSON document (a LobbyRecord)
//   P l:all           sorted set of every lobby id, scored by P l:seq (creation order, and the count for the limit)
//   P l:pub           the same for the public ones (publicLobbies, oldest first)
//   P l:n:<nodeId>    set of the client ids added through that node
//
// Every operation that reads and writes (addClient, removeClient, create, join, leave, delete,
// startMediation, captureAddress, reportConnected, endMediation) is one Lua script that decodes
// the lobby document with cjson, applies the same rules as MemoryLobbyStore, and writes it and
// the clients back. Lua rather than WATCH/MULTI: one operation touches a client, its token, a
// lobby and the indexes, and a script is atomic in one round trip with no retry loop under
// contention (20 joins racing for one seat would make WATCH retry many times); WATCH also needs a
// connection of its own per transaction, while scripts run on the one shared client.
//
// cjson writes an empty Lua table as {}, so arrays that may be empty (members, connected) are
// read back through `lobbyFrom`, which turns a non-array into [].
import type { Endpoint } from '../endpoint.js';
import type { ClientId } from '../lobbies/events.js';
import type {
  CaptureOutcome,
  ClientRecord,
  ConnectedOutcome,
  CreateOutcome,
  Departure,
  JoinOutcome,
  LobbyRecord,
  LobbyStore,
  MediationRecord,
  MemberRecord,
  NewLobby,
  StartOutcome,
} from '../lobbies/store.js';
import { asString, asStrings, LuaScript, type RedisClient, type RedisStoreOptions } from './script.js';

// Every script: ARGV[1] the prefix. KEYS name the main keys touched (a client's or a lobby's).
const PRELUDE = `
local P = ARGV[1]
local NULL = cjson.null
local function ckey(id) return P .. 'l:c:' .. id end
local function lkey(id) return P .. 'l:l:' .. id end
local function getClient(id)
  local f = redis.call('HMGET', ckey(id), 'token', 'lobby', 'node')
  if not f[1] then return nil end
  return { id = id, token = f[1], lobby = f[2], node = f[3] }
end
local function getLobby(id)
  local raw = redis.call('GET', lkey(id))
  if not raw then return nil end
  return cjson.decode(raw)
end
local function putLobby(l) redis.call('SET', lkey(l.id), cjson.encode(l)) end
local function hasMediation(l) return type(l.mediation) == 'table' end
local function deleteLobby(l)
  redis.call('DEL', lkey(l.id))
  redis.call('ZREM', P .. 'l:all', l.id)
  redis.call('ZREM', P .. 'l:pub', l.id)
  for _, m in ipairs(l.members) do
    if redis.call('HGET', ckey(m.clientId), 'lobby') == l.id then redis.call('HSET', ckey(m.clientId), 'lobby', '') end
  end
end
-- The client leaves its lobby (as MemoryLobbyStore.leaveNow): a departure table, or NULL.
local function leaveNow(client)
  local lobbyId = client.lobby
  if lobbyId == '' then return NULL end
  redis.call('HSET', ckey(client.id), 'lobby', '')
  local l = getLobby(lobbyId)
  if not l then return NULL end
  local index, name = nil, ''
  for i, m in ipairs(l.members) do
    if m.clientId == client.id then index = i; name = m.name; break end
  end
  if index then table.remove(l.members, index) end
  if l.hostId == client.id then
    deleteLobby(l)
    return { outcome = 'closed', name = name, lobby = l }
  end
  local ended = l.mediation
  l.mediation = NULL
  putLobby(l)
  return { outcome = 'left', name = name, lobby = l, ended = ended }
end
local function lobbyOfClient(clientId)
  local client = getClient(clientId)
  if not client or client.lobby == '' then return nil end
  return getLobby(client.lobby)
end
`;

// KEYS: client, token, node index. ARGV: prefix, id, token, node.
const ADD_CLIENT = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'token', ARGV[3], 'lobby', '', 'node', ARGV[4])
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[2])
return 1
`);

// KEYS: token. ARGV: prefix, token. The client's {id, lobby} as JSON, or false.
const CLIENT_BY_TOKEN = new LuaScript(`${PRELUDE}
local id = redis.call('GET', KEYS[1])
if not id then return false end
local client = getClient(id)
if not client or client.token ~= ARGV[2] then return false end
return cjson.encode({ id = id, lobby = client.lobby })
`);

// KEYS: client. ARGV: prefix, id, node or '' (remove only if added through that node).
const REMOVE_CLIENT = new LuaScript(`${PRELUDE}
local client = getClient(ARGV[2])
if not client then return false end
if ARGV[3] ~= '' and client.node ~= ARGV[3] then return false end
local departure = leaveNow(client)
redis.call('DEL', ckey(client.id))
if redis.call('GET', P .. 'l:t:' .. client.token) == client.id then redis.call('DEL', P .. 'l:t:' .. client.token) end
redis.call('SREM', P .. 'l:n:' .. client.node, client.id)
return cjson.encode({ departure = departure })
`);

// KEYS: lobby, host. ARGV: prefix, id, name, isPublic '1'/'0', maxMembers, hostId, hostName, limit ('' for none).
const CREATE = new LuaScript(`${PRELUDE}
local host = getClient(ARGV[6])
if not host then return cjson.encode({ ok = false, error = 'unregistered' }) end
if host.lobby ~= '' then return cjson.encode({ ok = false, error = 'alreadyInLobby' }) end
if ARGV[8] ~= '' and redis.call('ZCARD', P .. 'l:all') >= tonumber(ARGV[8]) then
  return cjson.encode({ ok = false, error = 'tooManyLobbies' })
end
if redis.call('EXISTS', lkey(ARGV[2])) == 1 then return cjson.encode({ ok = false, error = 'idTaken' }) end
local l = {
  id = ARGV[2], name = ARGV[3], isPublic = ARGV[4] == '1', maxMembers = tonumber(ARGV[5]), hostId = host.id,
  members = { { clientId = host.id, name = ARGV[7] } }, mediation = NULL,
}
putLobby(l)
local seq = redis.call('INCR', P .. 'l:seq')
redis.call('ZADD', P .. 'l:all', seq, l.id)
if l.isPublic then redis.call('ZADD', P .. 'l:pub', seq, l.id) end
redis.call('HSET', ckey(host.id), 'lobby', l.id)
return cjson.encode({ ok = true, lobby = l })
`);

// KEYS: lobby, client. ARGV: prefix, lobbyId, clientId, name.
const JOIN = new LuaScript(`${PRELUDE}
local client = getClient(ARGV[3])
if not client then return cjson.encode({ ok = false, error = 'unregistered' }) end
if client.lobby ~= '' then return cjson.encode({ ok = false, error = 'alreadyInLobby' }) end
local l = getLobby(ARGV[2])
if not l then return cjson.encode({ ok = false, error = 'lobbyMissing' }) end
if hasMediation(l) then return cjson.encode({ ok = false, error = 'lobbyLocked' }) end
if #l.members >= l.maxMembers then return cjson.encode({ ok = false, error = 'lobbyFull' }) end
for _, m in ipairs(l.members) do
  if m.name == ARGV[4] then return cjson.encode({ ok = false, error = 'nameTaken' }) end
end
table.insert(l.members, { clientId = client.id, name = ARGV[4] })
putLobby(l)
redis.call('HSET', ckey(client.id), 'lobby', l.id)
return cjson.encode({ ok = true, lobby = l })
`);

// KEYS: client. ARGV: prefix, clientId. The departure as JSON ('null' for none).
const LEAVE = new LuaScript(`${PRELUDE}
local client = getClient(ARGV[2])
if not client then return 'null' end
return cjson.encode(leaveNow(client))
`);

// KEYS: pub. ARGV: prefix. The public lobby documents, oldest first.
const PUBLIC = new LuaScript(`${PRELUDE}
local out = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local raw = redis.call('GET', lkey(id))
  if raw then table.insert(out, raw) end
end
return out
`);

// KEYS: lobby. ARGV: prefix, lobbyId. The last state, or false.
const DELETE = new LuaScript(`${PRELUDE}
local l = getLobby(ARGV[2])
if not l then return false end
deleteLobby(l)
return cjson.encode(l)
`);

// KEYS: lobby. ARGV: prefix, lobbyId, clientId, attempt. Checked in startRefusal's order.
const START = new LuaScript(`${PRELUDE}
local l = getLobby(ARGV[2])
local refusal = nil
if not l then refusal = 'lobbyMissing'
elseif l.hostId ~= ARGV[3] then refusal = 'notHost'
elseif hasMediation(l) then refusal = 'mediationUnderWay'
elseif #l.members < 2 then refusal = 'tooFewMembers' end
if refusal then return cjson.encode({ ok = false, error = refusal }) end
l.mediation = { attempt = ARGV[4], stage = 'collecting', addresses = {}, connected = {} }
putLobby(l)
return cjson.encode({ ok = true, lobby = l })
`);

// KEYS: client. ARGV: prefix, clientId, address, port.
const CAPTURE = new LuaScript(`${PRELUDE}
local l = lobbyOfClient(ARGV[2])
if not l or not hasMediation(l) or l.mediation.stage ~= 'collecting' then return cjson.encode({ outcome = 'ignored' }) end
l.mediation.addresses[ARGV[2]] = { address = ARGV[3], port = tonumber(ARGV[4]) }
local count = 0
for _ in pairs(l.mediation.addresses) do count = count + 1 end
local outcome = 'recorded'
if count >= #l.members then
  l.mediation.stage = 'connecting'
  outcome = 'complete'
end
putLobby(l)
return cjson.encode({ outcome = outcome, lobby = l })
`);

// KEYS: client. ARGV: prefix, clientId.
const CONNECTED = new LuaScript(`${PRELUDE}
local l = lobbyOfClient(ARGV[2])
if not l or not hasMediation(l) or l.mediation.stage ~= 'connecting' then return cjson.encode({ outcome = 'ignored' }) end
local seen = false
for _, id in ipairs(l.mediation.connected) do if id == ARGV[2] then seen = true end end
if not seen then table.insert(l.mediation.connected, ARGV[2]) end
if #l.mediation.connected < #l.members then
  putLobby(l)
  return cjson.encode({ outcome = 'recorded', lobby = l })
end
deleteLobby(l)
return cjson.encode({ outcome = 'succeeded', lobby = l })
`);

// KEYS: lobby. ARGV: prefix, lobbyId, attempt. The lobby after, or false.
const END = new LuaScript(`${PRELUDE}
local l = getLobby(ARGV[2])
if not l or not hasMediation(l) or l.mediation.attempt ~= ARGV[3] then return false end
l.mediation = NULL
putLobby(l)
return cjson.encode(l)
`);

// ---------------------------------------------------------------------------------------------
// Reading the documents back

interface RawMediation {
  readonly attempt: string;
  readonly stage: MediationRecord['stage'];
  readonly addresses: Record<ClientId, Endpoint>;
  readonly connected: unknown;
}

interface RawLobby extends Omit<LobbyRecord, 'members' | 'mediation'> {
  readonly members: unknown;
  readonly mediation: RawMediation | null;
}

type RawOutcome =
  | { readonly ok: true; readonly lobby: RawLobby }
  | { readonly ok: false; readonly error: string }
  | { readonly outcome: string; readonly lobby?: RawLobby; readonly name?: string; readonly ended?: RawMediation | null };

const list = <T>(value: unknown): T[] => (Array.isArray(value) ? (value as T[]) : []);

function mediationFrom(raw: RawMediation): MediationRecord {
  const addresses: Record<ClientId, Endpoint> = {};
  for (const [id, endpoint] of Object.entries(raw.addresses)) addresses[id] = { address: endpoint.address, port: endpoint.port };
  return { attempt: raw.attempt, stage: raw.stage, addresses, connected: list<ClientId>(raw.connected) };
}

function lobbyFrom(raw: RawLobby): LobbyRecord {
  return {
    id: raw.id,
    name: raw.name,
    isPublic: raw.isPublic,
    maxMembers: raw.maxMembers,
    hostId: raw.hostId,
    members: list<MemberRecord>(raw.members).map((member) => ({ clientId: member.clientId, name: member.name })),
    mediation: raw.mediation === null ? null : mediationFrom(raw.mediation),
  };
}

function parse<T>(reply: unknown): T | undefined {
  const text = asString(reply);
  return text === undefined ? undefined : (JSON.parse(text) as T);
}

function departureFrom(raw: RawOutcome | null): Departure | null {
  if (raw === null || !('outcome' in raw) || raw.lobby === undefined) return null;
  const lobby = lobbyFrom(raw.lobby);
  const name = raw.name ?? '';
  if (raw.outcome === 'closed') return { outcome: 'closed', name, lobby };
  return { outcome: 'left', name, lobby, ended: raw.ended ? mediationFrom(raw.ended) : null };
}

/** create/join/startMediation: {ok, lobby} or {ok: false, error}. */
function okFrom<T extends { readonly ok: boolean }>(reply: unknown): T {
  const raw = parse<RawOutcome>(reply);
  if (raw === undefined || !('ok' in raw)) throw new Error('unexpected reply from a lobby script');
  return (raw.ok ? { ok: true, lobby: lobbyFrom(raw.lobby) } : { ok: false, error: raw.error }) as unknown as T;
}

/** captureAddress/reportConnected: {outcome: 'ignored'} or {outcome, lobby}. */
function stepFrom<T extends { readonly outcome: string }>(reply: unknown): T {
  const raw = parse<RawOutcome>(reply);
  if (raw === undefined || !('outcome' in raw)) throw new Error('unexpected reply from a lobby script');
  return (raw.lobby === undefined ? { outcome: 'ignored' } : { outcome: raw.outcome, lobby: lobbyFrom(raw.lobby) }) as unknown as T;
}

export class RedisLobbyStore implements LobbyStore {
  readonly nodeId: string;

  constructor(
    private readonly client: RedisClient,
    private readonly prefix: string,
    options: RedisStoreOptions = {},
  ) {
    this.nodeId = options.nodeId ?? 'node';
  }

  async addClient(client: { readonly id: ClientId; readonly token: string }): Promise<boolean> {
    const reply = await ADD_CLIENT.run(
      this.client,
      [this.clientKey(client.id), this.tokenKey(client.token), this.nodeKey(this.nodeId)],
      [this.prefix, client.id, client.token, this.nodeId],
    );
    return reply === 1;
  }

  async clientById(id: ClientId): Promise<ClientRecord | undefined> {
    const [token, lobby] = await this.client.hmGet(this.clientKey(id), ['token', 'lobby']);
    if (typeof token !== 'string') return undefined;
    return { id, token, lobbyId: typeof lobby === 'string' && lobby !== '' ? lobby : null };
  }

  async clientByToken(token: string): Promise<ClientRecord | undefined> {
    const found = parse<{ id: string; lobby: string }>(await CLIENT_BY_TOKEN.run(this.client, [this.tokenKey(token)], [this.prefix, token]));
    return found && { id: found.id, token, lobbyId: found.lobby === '' ? null : found.lobby };
  }

  async removeClient(id: ClientId): Promise<{ readonly departure: Departure | null } | undefined> {
    return this.remove(id, '');
  }

  async create(lobby: NewLobby, limit: number): Promise<CreateOutcome> {
    const reply = await CREATE.run(
      this.client,
      [this.lobbyKey(lobby.id), this.clientKey(lobby.hostId)],
      [
        this.prefix,
        lobby.id,
        lobby.name,
        lobby.isPublic ? '1' : '0',
        String(lobby.maxMembers),
        lobby.hostId,
        lobby.hostName,
        Number.isFinite(limit) ? String(limit) : '',
      ],
    );
    return okFrom<CreateOutcome>(reply);
  }

  async join(lobbyId: string, clientId: ClientId, name: string): Promise<JoinOutcome> {
    const reply = await JOIN.run(this.client, [this.lobbyKey(lobbyId), this.clientKey(clientId)], [this.prefix, lobbyId, clientId, name]);
    return okFrom<JoinOutcome>(reply);
  }

  async leave(clientId: ClientId): Promise<Departure | null> {
    return departureFrom(parse<RawOutcome | null>(await LEAVE.run(this.client, [this.clientKey(clientId)], [this.prefix, clientId])) ?? null);
  }

  async lobby(id: string): Promise<LobbyRecord | undefined> {
    const raw = parse<RawLobby>(await this.client.get(this.lobbyKey(id)));
    return raw && lobbyFrom(raw);
  }

  async publicLobbies(): Promise<LobbyRecord[]> {
    const docs = asStrings(await PUBLIC.run(this.client, [`${this.prefix}l:pub`], [this.prefix]));
    return docs.map((doc) => lobbyFrom(JSON.parse(doc) as RawLobby));
  }

  async delete(lobbyId: string): Promise<LobbyRecord | undefined> {
    const raw = parse<RawLobby>(await DELETE.run(this.client, [this.lobbyKey(lobbyId)], [this.prefix, lobbyId]));
    return raw && lobbyFrom(raw);
  }

  async startMediation(lobbyId: string, clientId: ClientId, attempt: string): Promise<StartOutcome> {
    const reply = await START.run(this.client, [this.lobbyKey(lobbyId)], [this.prefix, lobbyId, clientId, attempt]);
    return okFrom<StartOutcome>(reply);
  }

  async captureAddress(clientId: ClientId, endpoint: Endpoint): Promise<CaptureOutcome> {
    const reply = await CAPTURE.run(this.client, [this.clientKey(clientId)], [this.prefix, clientId, endpoint.address, String(endpoint.port)]);
    return stepFrom<CaptureOutcome>(reply);
  }

  async reportConnected(clientId: ClientId): Promise<ConnectedOutcome> {
    return stepFrom<ConnectedOutcome>(await CONNECTED.run(this.client, [this.clientKey(clientId)], [this.prefix, clientId]));
  }

  async endMediation(lobbyId: string, attempt: string): Promise<LobbyRecord | undefined> {
    const raw = parse<RawLobby>(await END.run(this.client, [this.lobbyKey(lobbyId)], [this.prefix, lobbyId, attempt]));
    return raw && lobbyFrom(raw);
  }

  /**
   * Removes every client added through node `nodeId` (for when that node died), each as
   * removeClient does, so lobbies they hosted close and the others they were in see them leave.
   * Each removal is atomic on its own. Returns who was removed and their departures.
   */
  async purgeNode(nodeId: string): Promise<Array<{ readonly clientId: ClientId; readonly departure: Departure | null }>> {
    const removed: Array<{ clientId: ClientId; departure: Departure | null }> = [];
    for (const clientId of await this.client.sMembers(this.nodeKey(nodeId))) {
      const result = await this.remove(clientId, nodeId);
      if (result !== undefined) removed.push({ clientId, departure: result.departure });
      else await this.client.sRem(this.nodeKey(nodeId), clientId);
    }
    return removed;
  }

  private async remove(id: ClientId, node: string): Promise<{ readonly departure: Departure | null } | undefined> {
    const raw = parse<{ departure: RawOutcome | null }>(await REMOVE_CLIENT.run(this.client, [this.clientKey(id)], [this.prefix, id, node]));
    return raw && { departure: departureFrom(raw.departure) };
  }

  private clientKey(id: ClientId): string {
    return `${this.prefix}l:c:${id}`;
  }

  private tokenKey(token: string): string {
    return `${this.prefix}l:t:${token}`;
  }

  private lobbyKey(id: string): string {
    return `${this.prefix}l:l:${id}`;
  }

  private nodeKey(nodeId: string): string {
    return `${this.prefix}l:n:${nodeId}`;
  }
}
