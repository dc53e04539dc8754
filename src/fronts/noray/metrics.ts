import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { RelayEngine } from '../../core/relay/engine.js';
import { collectedCounter, collectedLabelledCounter, collectedSumCountHistogram } from '../shared/metrics.js';

/** Why the noray front refused something: the `reason` of `noray_limit_rejections_total{front="noray"}`. */
export type NorayLimitReason =
  | 'max_connections'
  | 'max_connections_per_ip'
  | 'login_timeout'
  | 'message_rate'
  | 'source_rate'
  | 'line_too_long'
  | 'slow_reader'
  | 'max_sessions'
  | 'denied_peer'
  | 'own_address'
  | 'registrar_reply_rate'
  | 'stun_reply_rate'
  | 'connect_rate'
  | 'connect_host_rate'
  | 'connect_coalesced'
  | 'unknown_oid_rate'
  | 'oid_reserved'
  | 'notification_dropped'
  | 'relays_per_source'
  | 'relays_per_session';

/** The noray front's metrics, with upstream noray's names where it has them. */
export function createNorayMetrics(registry: Registry) {
  return {
    tcpConnections: new Gauge({ name: 'noray_tcp_connections', help: 'Open TCP control connections', registers: [registry] }),
    activeHosts: new Gauge({ name: 'noray_active_hosts', help: 'Registered hosts (sessions)', registers: [registry] }),
    registrarSuccess: new Counter({
      name: 'noray_remote_registrar_success',
      help: 'UDP registrations that set or changed an external address',
      registers: [registry],
    }),
    registrarFail: new Counter({
      name: 'noray_remote_registrar_fail',
      help: 'UDP registrations with an unknown PrivateID',
      registers: [registry],
    }),
    registrarRepeat: new Counter({
      name: 'noray_remote_registrar_repeat',
      help: 'UDP registrations repeating a known address',
      registers: [registry],
    }),
    commandDuration: new Histogram({
      name: 'noray_command_duration',
      help: 'Time to handle a control command, seconds',
      labelNames: ['command'],
      buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05],
      registers: [registry],
    }),
    commandException: new Counter({
      name: 'noray_command_exception',
      help: 'Control commands that failed with an internal error',
      labelNames: ['command'],
      registers: [registry],
    }),
    stunRequests: new Counter({
      name: 'noray_stun_requests_total',
      help: 'STUN datagrams on the registrar and alt ports, by socket and outcome (answered, or why not)',
      labelNames: ['socket', 'outcome'],
      registers: [registry],
    }),
    connectionsClosed: new Counter({
      name: 'noray_tcp_closes_total',
      help: 'Control connections closed by the server, by reason',
      labelNames: ['reason'],
      registers: [registry],
    }),
    punchPairs: new Counter({
      name: 'noray_connect_pairs_total',
      help: 'Pairs answered connect (told to punch through); a pair asking again within 30 s counts once',
      registers: [registry],
    }),
    relayFallbacks: new Counter({
      name: 'noray_connect_relay_fallbacks_total',
      help: 'connect-relay answers to a pair told to punch through (connect) in the 30 s before: punchthrough failed',
      registers: [registry],
    }),
  };
}

export type NorayMetrics = ReturnType<typeof createNorayMetrics>;

/** Relay counters are plain numbers in the engine; these read them on scrape. */
export function registerRelayMetrics(registry: Registry, engine: RelayEngine): void {
  new Gauge({
    name: 'noray_relay_count',
    help: 'Relays currently allocated, one UDP port each',
    registers: [registry],
    collect() {
      this.set(engine.stats.relays);
    },
  });
  new Gauge({
    name: 'noray_relay_ports_free',
    help: 'Relay ports bound and not in use',
    registers: [registry],
    collect() {
      this.set(engine.stats.freePorts);
    },
  });
  collectedCounter(registry, 'noray_relay_expired', 'Relays freed after the idle timeout', () => engine.stats.expired);
  collectedCounter(registry, 'noray_relay_packets_total', 'Datagrams relayed', () => engine.stats.packets);
  collectedCounter(registry, 'noray_relay_bytes_total', 'Bytes relayed', () => engine.stats.bytes);
  collectedCounter(
    registry,
    'noray_relay_mapping_learned_total',
    'Sources learned on relay ports: players whose NAT maps relay traffic elsewhere than the registrar saw (symmetric NATs)',
    () => engine.stats.learned,
  );
  collectedCounter(
    registry,
    'noray_relay_mapping_relearned_total',
    'Learned sources replaced after the earlier mapping went silent (NAT rebinding)',
    () => engine.stats.relearned,
  );
  collectedLabelledCounter(
    registry,
    'noray_relay_drop_count',
    'Relay datagrams dropped, by reason',
    'reason',
    () => engine.stats.drops,
  );
  collectedSumCountHistogram(
    registry,
    'noray_relay_size',
    'Bytes per relayed datagram (_sum is bytes, _count is datagrams)',
    () => ({ sum: engine.stats.bytes, count: engine.stats.packets }),
  );
}
