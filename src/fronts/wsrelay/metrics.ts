import { Counter, Gauge, type Registry } from 'prom-client';

/** Why a connection ended: the label of `noray_wsrelay_closes_total`. */
export type CloseReason =
  | 'closed'
  | 'bad_login'
  | 'code_taken'
  | 'unknown_code'
  | 'invalid_json'
  | 'server_left'
  | 'slow_reader'
  | 'dead'
  | 'too_large'
  | 'protocol_error'
  | 'login_timeout'
  | 'message_rate'
  | 'byte_rate'
  | 'max_rooms'
  | 'guess_rate'
  | 'unavailable'
  | 'shutdown'
  | 'operator';

/** Why a message was not relayed: the label of `noray_wsrelay_messages_dropped_total`. */
export type DropReason = 'binary' | 'no_receiver' | 'not_object';

/** Every reason this front reports to the limit reporter (`noray_limit_rejections_total{front="wsrelay"}`). */
export type WsRelayLimitReason =
  | 'max_connections'
  | 'max_connections_per_ip'
  | 'login_timeout'
  | 'message_rate'
  | 'byte_rate'
  | 'source_rate'
  | 'message_too_large'
  | 'max_rooms'
  | 'guess_rate'
  | 'slow_reader';

/** Live counts the gauges read on scrape. */
export interface WsRelayCounts {
  /** Open connections, logged in or not. */
  connections(): number;
  /** Open rooms, one per logged-in game server. */
  rooms(): number;
  /** Logged-in clients over all rooms. */
  clients(): number;
}

export interface WsRelayMetrics {
  /** One server message was put on `count` client connections. */
  toClients(count: number): void;
  /** One client message was put on its server's connection. */
  toServer(): void;
  dropped(reason: DropReason): void;
  closed(reason: CloseReason): void;
}

/** Gauges are read from the live state on scrape; counters are bumped as things happen. */
export function createWsRelayMetrics(registry: Registry, counts: WsRelayCounts): WsRelayMetrics {
  const registers = [registry];
  new Gauge({
    name: 'noray_wsrelay_connections',
    help: 'Open WebSocket relay connections',
    registers,
    collect() {
      this.set(counts.connections());
    },
  });
  new Gauge({
    name: 'noray_wsrelay_rooms',
    help: 'Open WebSocket relay rooms (one per logged-in game server)',
    registers,
    collect() {
      this.set(counts.rooms());
    },
  });
  new Gauge({
    name: 'noray_wsrelay_clients',
    help: 'Logged-in WebSocket relay clients',
    registers,
    collect() {
      this.set(counts.clients());
    },
  });
  const relayed = new Counter({
    name: 'noray_wsrelay_messages_relayed_total',
    help: 'Messages put on a peer connection, by direction',
    labelNames: ['direction'] as const,
    registers,
  });
  const toClients = relayed.labels('to_clients');
  const toServer = relayed.labels('to_server');
  const dropped = new Counter({
    name: 'noray_wsrelay_messages_dropped_total',
    help: 'Messages not relayed, by reason',
    labelNames: ['reason'] as const,
    registers,
  });
  const closes = new Counter({
    name: 'noray_wsrelay_closes_total',
    help: 'Connections closed, by reason',
    labelNames: ['reason'] as const,
    registers,
  });
  return {
    toClients: (count) => toClients.inc(count),
    toServer: () => toServer.inc(),
    dropped: (reason) => dropped.inc({ reason }),
    closed: (reason) => closes.inc({ reason }),
  };
}
