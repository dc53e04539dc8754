/**
 * Baselines for the control planes: the least code that does the same socket work as each front,
 * with no validation, limits, logging or metrics. One process hosts all four (idle ones cost nothing).
 *  - noray: net line server (register-host -> set-oid/set-pid; connect-relay -> both sides) + dgram `OK`.
 *  - lobby: node:http + ws + dgram with just enough state to run create/join/mediation.
 *  - wsrelay: bare `ws` broadcast (server message -> every client of the room).
 *  - tcprelay: bare `net` pipe (connections paired in accept order, bytes piped both ways).
 */
import { createSocket } from 'node:dgram';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import { WebSocketServer, type WebSocket } from 'ws';
import { serve } from './lib/rpc.js';

const HOST = '127.0.0.1';

function listen(server: Server | ReturnType<typeof createHttpServer>): Promise<number> {
  return new Promise((resolve) => server.listen(0, HOST, () => resolve((server.address() as { port: number }).port)));
}

// ---- noray ----
let nextId = 0;
const byOid = new Map<string, Socket>();
const noray = createServer((socket) => {
  let buffer = '';
  let oid = '';
  socket.setEncoding('utf8');
  socket.on('error', () => undefined);
  socket.on('close', () => byOid.get(oid) === socket && byOid.delete(oid));
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    let index: number;
    while ((index = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, index);
      buffer = buffer.slice(index + 1);
      if (line === 'register-host') {
        oid = `o${++nextId}`;
        byOid.set(oid, socket);
        socket.write(`set-oid ${oid}\nset-pid p${nextId}\n`);
      } else if (line.startsWith('connect-relay ')) {
        socket.write('connect-relay 1\n');
        byOid.get(line.slice(14))?.write('connect-relay 2\n');
      }
    }
  });
});
const registrar = createSocket('udp4');
registrar.on('message', (_message, from) => registrar.send('OK', from.port, from.address));

// ---- lobby ----
const encode = (method: string, payload: unknown) => `${method}:${Buffer.from(JSON.stringify(payload)).toString('base64')}`;
const decode = (text: string) => {
  const colon = text.indexOf(':');
  return { method: text.slice(0, colon), payload: JSON.parse(Buffer.from(text.slice(colon + 1), 'base64').toString()) as Record<string, string> };
};
interface BareLobby {
  members: string[];
  captured: Map<string, { ip: string; port: number }>;
  done: Set<string>;
}
const clients = new Map<string, WebSocket>();
const lobbies = new Map<string, BareLobby>();
const lobbyOf = new Map<string, BareLobby>();
let lobbyCount = 0;
const lobbyUdp = createSocket('udp4');
const lobbyHttp = createHttpServer((req: IncomingMessage, res: ServerResponse) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const body = JSON.parse(Buffer.concat(chunks).toString() || '{}') as Record<string, string>;
    const parts = (req.url ?? '').split('/');
    const reply = (status: number, payload?: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(payload === undefined ? '' : JSON.stringify(payload));
    };
    const token = body.token ?? '';
    if (parts.length === 2) {
      const lobbyId = String(++lobbyCount);
      const lobby: BareLobby = { members: [token], captured: new Map(), done: new Set() };
      lobbies.set(lobbyId, lobby);
      lobbyOf.set(token, lobby);
      return reply(201, { lobbyName: body.lobbyName, lobbyId });
    }
    const lobby = lobbies.get(parts[2] ?? '');
    if (!lobby) return reply(409, { errors: ['no lobby'] });
    if (parts[3] === 'join') {
      lobby.members.push(token);
      lobbyOf.set(token, lobby);
      return reply(200, { lobbyId: parts[2], lobbyName: 'x', lobbyMembers: ['host', body.peerName], host: 'host' });
    }
    for (const member of lobby.members) clients.get(member)?.send(encode('ptpMediation_send', { port: lobbyUdpPort }));
    return reply(200);
  });
});
const lobbyWs = new WebSocketServer({ server: lobbyHttp, perMessageDeflate: false });
lobbyWs.on('connection', (ws) => {
  const token = randomUUID();
  clients.set(token, ws);
  ws.on('close', () => clients.delete(token));
  ws.send(encode('client_registered', { token }));
  ws.on('message', (data) => {
    const { payload } = decode(data.toString());
    const lobby = lobbyOf.get(payload.token ?? '');
    if (!lobby) return;
    lobby.done.add(payload.token ?? '');
    if (lobby.done.size === lobby.members.length) {
      for (const member of lobby.members) {
        clients.get(member)?.send(encode('ptpMediation_success', {}));
        clients.get(member)?.send(encode('lobby_closed', { lobbyId: '1', lobbyName: 'x' }));
        lobbyOf.delete(member);
      }
    }
  });
});
lobbyUdp.on('message', (message, from) => {
  const { payload } = decode(message.toString());
  const lobby = lobbyOf.get(payload.token ?? '');
  if (!lobby) return;
  lobby.captured.set(payload.token ?? '', { ip: from.address, port: from.port });
  if (lobby.captured.size === lobby.members.length) {
    for (const member of lobby.members) {
      const peers = [...lobby.captured].filter(([t]) => t !== member).map(([, endpoint]) => endpoint);
      clients.get(member)?.send(encode('ptpMediation_peersConnection_start', { peers }));
    }
  }
});
let lobbyUdpPort = 0;

// ---- wsrelay: bare ws broadcast ----
const rooms = new Map<string, Set<WebSocket>>();
const wsHttp = createHttpServer();
const wsServer = new WebSocketServer({ server: wsHttp, perMessageDeflate: false });
wsServer.on('connection', (ws) => {
  let room: Set<WebSocket> | undefined;
  let isServer = false;
  let host: WebSocket | undefined;
  ws.once('message', (data) => {
    const login = JSON.parse(data.toString()) as { action: string; server_code: string; client_id?: string };
    if (login.action === 'login_server') {
      isServer = true;
      room = new Set();
      rooms.set(login.server_code, room);
      ws.on('message', (message, isBinary) => {
        for (const client of room ?? []) client.send(message, { binary: isBinary });
      });
    } else {
      room = rooms.get(login.server_code);
      room?.add(ws);
      host = hostOf.get(login.server_code);
      host?.send(JSON.stringify({ action: 'connect', client_id: login.client_id }));
    }
    if (isServer) hostOf.set(login.server_code, ws);
  });
  ws.on('close', () => room?.delete(ws));
});
const hostOf = new Map<string, WebSocket>();

// ---- tcprelay: bare net pipe ----
let waiting: Socket | null = null;
const pipeServer = createServer((socket) => {
  socket.setNoDelay(true);
  socket.on('error', () => undefined);
  if (waiting === null) {
    waiting = socket;
    return;
  }
  const peer = waiting;
  waiting = null;
  peer.pipe(socket);
  socket.pipe(peer);
});

const norayPort = await listen(noray);
const registrarPort = await new Promise<number>((resolve) => registrar.bind(0, HOST, () => resolve(registrar.address().port)));
const lobbyHttpPort = await listen(lobbyHttp);
lobbyUdpPort = await new Promise<number>((resolve) => lobbyUdp.bind(0, HOST, () => resolve(lobbyUdp.address().port)));
const wsPort = await listen(wsHttp);
const pipePort = await listen(pipeServer);

serve({
  ports: () => ({
    noray: { control: norayPort, registrar: registrarPort },
    lobby: { http: lobbyHttpPort, udp: lobbyUdpPort },
    wsrelay: { ws: wsPort },
    tcprelay: { tcp: pipePort },
  }),
});
