import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { Counter, Gauge } from 'prom-client';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import type { Timer } from '../../core/clock.js';
import { normalizeAddress } from '../../core/endpoint.js';
import { ConnectionGate, type GateVerdict } from '../../core/limits/connection-gate.js';
import { TokenBucket } from '../../core/limits/token-bucket.js';
import { Rooms, type Member, type Room } from '../../core/rooms.js';
import type { Front, FrontDeps } from '../front.js';
import { frameText, notice, parseLogin, stampClientId, targetOf } from './codec.js';

/** What the room carries: server messages as received (forwarded byte for byte) or stamped text. */
type Outgoing = Buffer | string;

type PeerState = 'login' | 'server' | 'client' | 'gone';

interface Peer {
  readonly ws: WebSocket;
  /** The upgraded TCP socket under `ws`, corked while a burst of sends is collected. */
  readonly socket: Duplex;
  /** Source address, as counted by the connection gate and named in limit reports. */
  readonly ip: string;
  /** Messages this peer may still send (every message counts, the login too; fan-out does not). */
  readonly bucket: TokenBucket;
  /** Closes the peer if it has not logged in by then; null once logged in or gone. */
  loginTimer: Timer | null;
  corked: boolean;
  state: PeerState;
  room: Room<Outgoing> | null;
  member: Member<Outgoing> | null;
  /** Pings sent since the last sign of life. */
  missed: number;
}

/** Pings left unanswered before a peer counts as dead. */
const MAX_MISSED_PINGS = 2;

/** Corked bytes that make a peer's socket flush before the end of the burst. */
const CORK_FLUSH_BYTES = 64 * 1024;
const BAD_REQUEST = 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n';
const BUSY_BODY = 'Server busy: too many connections\n';
const BUSY =
  'HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain\r\n' +
  `Content-Length: ${BUSY_BODY.length}\r\n\r\n${BUSY_BODY}`;
const CLOSE_NORMAL = 1000;
const CLOSE_GOING_AWAY = 1001;
/** On stop(), how long close handshakes may take before the remaining peers are cut off. */
const SHUTDOWN_GRACE_MS = 1000;
const CLOSE_INVALID_DATA = 1007;
const CLOSE_POLICY = 1008;

type CloseReason =
  | 'closed'
  | 'bad_login'
  | 'code_taken'
  | 'unknown_code'
  | 'invalid_json'
  | 'server_left'
  | 'slow'
  | 'dead'
  | 'too_large'
  | 'protocol_error'
  | 'login_timeout'
  | 'message_rate'
  | 'max_rooms'
  | 'shutdown';

export function createWsRelayFront(deps: FrontDeps): Front {
  return new WsRelayFront(deps);
}

class WsRelayFront implements Front {
  readonly name = 'wsrelay';
  private readonly log;
  private readonly rooms = new Rooms<Outgoing>();
  private readonly peers = new Set<Peer>();
  private readonly maxMessage: number;
  private readonly sendLimit: number;
  private readonly pingInterval: number;
  /** Counts every upgraded connection from its upgrade request until its socket closes. */
  private readonly gate: ConnectionGate;
  private http: Server | null = null;
  private wss: WebSocketServer | null = null;
  private pinger: Timer | null = null;
  private boundPort = 0;
  private stopped = false;
  private readonly relayed;
  private readonly dropped;
  private readonly closes;

  constructor(private readonly deps: FrontDeps) {
    this.log = deps.logger.child({ front: 'wsrelay' });
    this.maxMessage = deps.config.wsrelayMaxMessageSize;
    this.sendLimit = deps.config.wsrelaySendBuffer;
    this.pingInterval = deps.config.wsrelayPingInterval;
    this.gate = new ConnectionGate(deps.config.maxConnections, deps.config.maxConnectionsPerIp);
    const registers = [deps.metrics];
    const peers = this.peers;
    const rooms = this.rooms;
    new Gauge({
      name: 'noray_wsrelay_connections',
      help: 'Open WebSocket relay connections',
      registers,
      collect() {
        this.set(peers.size);
      },
    });
    new Gauge({
      name: 'noray_wsrelay_rooms',
      help: 'Open WebSocket relay rooms (one per logged-in game server)',
      registers,
      collect() {
        this.set(rooms.size);
      },
    });
    new Gauge({
      name: 'noray_wsrelay_clients',
      help: 'Logged-in WebSocket relay clients',
      registers,
      collect() {
        this.set(rooms.stats().members);
      },
    });
    const relayed = new Counter({
      name: 'noray_wsrelay_messages_relayed_total',
      help: 'Messages put on a peer connection, by direction',
      labelNames: ['direction'] as const,
      registers,
    });
    this.relayed = { toClients: relayed.labels('to_clients'), toServer: relayed.labels('to_server') };
    this.dropped = new Counter({
      name: 'noray_wsrelay_messages_dropped_total',
      help: 'Messages not relayed, by reason',
      labelNames: ['reason'] as const,
      registers,
    });
    this.closes = new Counter({
      name: 'noray_wsrelay_closes_total',
      help: 'Connections closed, by reason',
      labelNames: ['reason'] as const,
      registers,
    });
  }

  async start(): Promise<void> {
    const { wsrelayHost: host, wsrelayPort: port } = this.deps.config;
    if (port === null) throw new Error('wsrelay is switched off');
    const wss = new WebSocketServer({
      noServer: true,
      maxPayload: this.maxMessage,
      clientTracking: false,
      perMessageDeflate: false,
    });
    const http = createServer((_request, response) => {
      response.writeHead(426, { 'content-type': 'text/plain', connection: 'close' });
      response.end('WebSocket only\n');
    });
    // Not HTTP at all: answer 400 and close our side fully instead of waiting for the peer.
    http.on('clientError', (_err, socket: Duplex) => {
      if (socket.writable) socket.end(BAD_REQUEST, () => socket.destroy());
      else socket.destroy();
    });
    http.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      // A socket already closed would never emit the 'close' that releases its gate slot.
      if (this.stopped || socket.destroyed) return void socket.destroy();
      const ip = normalizeAddress(request.socket.remoteAddress ?? '?');
      const verdict = this.gate.admit(ip);
      if (verdict !== 'ok') return this.refuse(socket, ip, verdict);
      // Released on whatever ends the socket: a failed handshake, any close of the peer, stop().
      socket.once('close', () => this.gate.release(ip));
      wss.handleUpgrade(request, socket, head, (ws) => this.accept(ws, socket, ip));
    });
    this.wss = wss;
    this.http = http;
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(port, host, () => {
        http.off('error', reject);
        resolve();
      });
    });
    http.on('error', (err) => this.log.warn({ err }, 'wsrelay listener error'));
    const address = http.address();
    this.boundPort = typeof address === 'object' && address !== null ? address.port : port;
    this.pinger = this.deps.clock.setInterval(() => this.pingAll(), this.pingInterval);
    this.log.info({ host, port: this.boundPort }, 'wsrelay listening');
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.pinger?.cancel();
    // Every peer is told with a close frame (1001 going away; phones whose server went first get
    // 1000), the close handshakes get a moment, then whoever has not answered is cut off.
    const closing = [...this.peers].map((peer) =>
      peer.ws.readyState === WebSocket.CLOSED ? undefined : new Promise<void>((resolve) => peer.ws.once('close', () => resolve())),
    );
    for (const peer of this.peers) this.drop(peer, 'shutdown', CLOSE_GOING_AWAY, false);
    this.rooms.closeAll();
    this.uncorkAll();
    if (closing.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(closing), new Promise<void>((resolve) => (timer = setTimeout(resolve, SHUTDOWN_GRACE_MS)))]);
      clearTimeout(timer);
    }
    for (const peer of this.peers) peer.ws.terminate();
    const http = this.http;
    if (http !== null) {
      await new Promise<void>((resolve) => {
        http.close(() => resolve());
        http.closeAllConnections();
      });
    }
    this.wss?.close();
    this.peers.clear();
  }

  ports(): Record<string, number> {
    return { ws: this.boundPort };
  }

  stats(): Record<string, number> {
    const { rooms, members } = this.rooms.stats();
    return { connections: this.peers.size, rooms, clients: members, admitted: this.gate.size };
  }

  /** Over a connection limit: an HTTP 503 instead of the upgrade, then close. */
  private refuse(socket: Duplex, ip: string, verdict: Exclude<GateVerdict, 'ok'>): void {
    this.deps.limits.report('wsrelay', verdict === 'total' ? 'max_connections' : 'max_connections_per_ip', ip);
    // The HTTP server has let go of the socket: without a listener an error would be thrown.
    socket.on('error', () => {});
    if (socket.writable) socket.end(BUSY, () => socket.destroy());
    else socket.destroy();
  }

  private accept(ws: WebSocket, socket: Duplex, ip: string): void {
    const { config, clock } = this.deps;
    const peer: Peer = {
      ws,
      socket,
      ip,
      bucket: new TokenBucket(config.messageRate, config.messageBurst, clock),
      loginTimer: null,
      corked: false,
      state: 'login',
      room: null,
      member: null,
      missed: 0,
    };
    if (this.stopped) return void ws.terminate();
    this.peers.add(peer);
    peer.loginTimer = clock.setTimeout(() => {
      peer.loginTimer = null;
      if (peer.state !== 'login') return;
      this.deps.limits.report('wsrelay', 'login_timeout', ip);
      this.drop(peer, 'login_timeout', CLOSE_POLICY);
    }, config.loginTimeout);
    ws.on('message', (data: RawData, isBinary: boolean) => this.onMessage(peer, data as Buffer, isBinary));
    ws.on('pong', () => void (peer.missed = 0));
    ws.on('error', (err: Error & { code?: string }) => {
      // ws has already started closing with the right code (1009 too large, 1007 bad UTF-8, 1002).
      const reason: CloseReason = err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 'too_large' : 'protocol_error';
      if (reason === 'too_large' && peer.state !== 'gone') this.deps.limits.report('wsrelay', 'message_too_large', ip);
      this.drop(peer, reason, 'none');
    });
    ws.on('close', () => {
      this.drop(peer, 'closed', 'none');
      this.peers.delete(peer);
    });
  }

  private onMessage(peer: Peer, data: Buffer, isBinary: boolean): void {
    if (peer.state === 'gone') return;
    peer.missed = 0;
    if (!peer.bucket.take()) {
      this.deps.limits.report('wsrelay', 'message_rate', peer.ip);
      return this.drop(peer, 'message_rate', CLOSE_POLICY);
    }
    switch (peer.state) {
      case 'login':
        return this.login(peer, isBinary ? frameText(data) : data.toString('utf8'));
      case 'server': {
        if (isBinary) return void this.dropped.inc({ reason: 'binary' });
        const room = peer.room as Room<Outgoing>;
        const target = targetOf(data.toString('utf8'));
        const reached =
          target.kind === 'all' ? room.broadcast(data) : target.kind === 'id' ? room.toId(target.id, data) : 0;
        if (reached > 0) this.relayed.toClients.inc(reached);
        else this.dropped.inc({ reason: 'no_receiver' });
        return;
      }
      case 'client': {
        if (isBinary) return void this.dropped.inc({ reason: 'binary' });
        const member = peer.member as Member<Outgoing>;
        const stamped = stampClientId(data.toString('utf8'), member.id);
        if (stamped.kind === 'invalid') return this.drop(peer, 'invalid_json', CLOSE_INVALID_DATA);
        if (stamped.kind === 'not-object') return void this.dropped.inc({ reason: 'not_object' });
        if ((peer.room as Room<Outgoing>).toOwner(stamped.text, member)) this.relayed.toServer.inc();
        return;
      }
    }
  }

  private login(peer: Peer, text: string | null): void {
    const login = text === null ? null : parseLogin(text);
    if (login === null) return this.drop(peer, 'bad_login', CLOSE_POLICY);
    const member: Member<Outgoing> = {
      id: login.role === 'client' ? login.clientId : login.code,
      deliver: (message) => this.send(peer, message),
      released: () => this.released(peer),
    };
    if (login.role === 'server') {
      if (this.rooms.size >= this.deps.config.maxRooms && this.rooms.get(login.code) === undefined) {
        // Refused like a taken code: closed without a message.
        this.deps.limits.report('wsrelay', 'max_rooms', peer.ip);
        return this.drop(peer, 'max_rooms', CLOSE_POLICY);
      }
      const room = this.rooms.open(login.code, member);
      if (room === undefined) return this.drop(peer, 'code_taken', CLOSE_POLICY);
      peer.state = 'server';
      peer.room = room;
      peer.member = member;
      this.log.debug({ code: clip(login.code) }, 'server logged in');
    } else {
      const room = this.rooms.get(login.code);
      if (room === undefined || room.join(member) !== 'joined') return this.drop(peer, 'unknown_code', CLOSE_POLICY);
      peer.state = 'client';
      peer.room = room;
      peer.member = member;
      room.toOwner(notice('connect', login.clientId), member);
      this.log.debug({ code: clip(login.code), clientId: clip(login.clientId) }, 'client logged in');
    }
    peer.loginTimer?.cancel();
    peer.loginTimer = null;
    this.ping(peer);
  }

  private send(peer: Peer, message: Outgoing): void {
    const ws = peer.ws;
    if (peer.state === 'gone' || ws.readyState !== WebSocket.OPEN) return;
    if (ws.bufferedAmount > this.sendLimit) {
      this.deps.limits.report('wsrelay', 'slow_reader', peer.ip);
      return this.drop(peer, 'slow', 'terminate');
    }
    // A fan-out sends one frame per client per message; corking until the burst is over turns
    // many small writes into one writev per client.
    if (!peer.corked) {
      peer.corked = true;
      peer.socket.cork();
      this.corked.push(peer);
      if (this.corked.length === 1) setImmediate(this.uncorkAll);
    }
    ws.send(message, { binary: false });
    // Big bursts go out at once, so the slow-peer check above only sees what the kernel refused.
    if (peer.corked && peer.socket.writableLength >= CORK_FLUSH_BYTES) {
      peer.corked = false;
      peer.socket.uncork();
    }
  }

  private readonly corked: Peer[] = [];
  private readonly uncorkAll = (): void => {
    for (const peer of this.corked) {
      if (!peer.corked) continue;
      peer.corked = false;
      peer.socket.uncork();
    }
    this.corked.length = 0;
  };

  /** The room closed because its server left: close this client without a notice. */
  private released(peer: Peer): void {
    if (peer.state === 'gone') return;
    peer.state = 'gone';
    this.closes.inc({ reason: 'server_left' });
    peer.ws.close(CLOSE_NORMAL);
  }

  /**
   * Ends a peer once: a client leaves its room (its server gets `disconnect`), a server closes its
   * room (every client gets a close frame). `how`: a close code, 'terminate', or 'none' when the
   * socket is already closing.
   */
  private drop(peer: Peer, reason: CloseReason, how: number | 'terminate' | 'none', notify = true): void {
    peer.loginTimer?.cancel();
    peer.loginTimer = null;
    const state = peer.state;
    if (state === 'gone') return;
    peer.state = 'gone';
    this.closes.inc({ reason });
    const room = peer.room;
    const member = peer.member;
    if (room !== null && member !== null) {
      if (state === 'client') {
        if (room.leave(member) && notify) room.toOwner(notice('disconnect', member.id), member);
      } else if (state === 'server') {
        room.close();
      }
    }
    if (reason !== 'closed') this.log.debug({ reason, role: state }, 'wsrelay connection dropped');
    if (how === 'terminate') peer.ws.terminate();
    else if (how !== 'none') peer.ws.close(how);
  }

  private pingAll(): void {
    for (const peer of this.peers) {
      if (peer.state === 'gone') continue;
      if (peer.missed >= MAX_MISSED_PINGS) this.drop(peer, 'dead', 'terminate');
      else this.ping(peer);
    }
  }

  private ping(peer: Peer): void {
    if (peer.ws.readyState !== WebSocket.OPEN) return;
    peer.missed++;
    peer.ws.ping();
  }
}

function clip(text: string): string {
  return text.length <= 64 ? text : `${text.slice(0, 64)}…`;
}
