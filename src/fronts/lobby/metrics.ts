import { Counter, Gauge, type Registry } from 'prom-client';
import type { MediationOutcome } from '../../core/lobbies/index.js';

export type Transport = 'http' | 'ws' | 'udp';
export type InvalidReason = 'malformed' | 'unknown_method' | 'invalid_payload' | 'rejected';

/** Every reason the lobby front reports to the limit reporter (`noray_limit_rejections_total{front="lobby"}`). */
export type LobbyLimitReason =
  | 'http_rate'
  | 'max_lobbies'
  | 'max_connections'
  | 'max_connections_per_ip'
  | 'message_rate'
  | 'byte_rate'
  | 'source_rate'
  | 'denied_peer';

export interface LobbyCounts {
  clients: number;
  lobbies: number;
  mediations: number;
}

export interface LobbyMetrics {
  mediationStarted(): void;
  mediationEnded(outcome: MediationOutcome): void;
  invalidMessage(transport: Transport, reason: InvalidReason): void;
}

/** Gauges are read from the live state on scrape; counters are bumped as things happen. */
export function createLobbyMetrics(registry: Registry, counts: () => LobbyCounts): LobbyMetrics {
  const registers = [registry];
  new Gauge({
    name: 'noray_lobby_clients',
    help: 'Connected lobby clients (open WebSockets with a token)',
    registers,
    collect() {
      this.set(counts().clients);
    },
  });
  new Gauge({
    name: 'noray_lobby_lobbies',
    help: 'Open lobbies',
    registers,
    collect() {
      this.set(counts().lobbies);
    },
  });
  new Gauge({
    name: 'noray_lobby_mediations_active',
    help: 'Lobbies in peer-to-peer mediation',
    registers,
    collect() {
      this.set(counts().mediations);
    },
  });
  const started = new Counter({
    name: 'noray_lobby_mediations_started_total',
    help: 'Peer-to-peer mediations started',
    registers,
  });
  const succeeded = new Counter({
    name: 'noray_lobby_mediations_succeeded_total',
    help: 'Peer-to-peer mediations where every member reported a direct connection',
    registers,
  });
  const aborted = new Counter({
    name: 'noray_lobby_mediations_aborted_total',
    help: 'Peer-to-peer mediations that ended without success, by reason',
    labelNames: ['reason'] as const,
    registers,
  });
  const invalid = new Counter({
    name: 'noray_lobby_invalid_messages_total',
    help: 'Client messages ignored or refused as invalid, by transport and reason',
    labelNames: ['transport', 'reason'] as const,
    registers,
  });
  return {
    mediationStarted: () => started.inc(),
    mediationEnded(outcome) {
      if (outcome === 'succeeded') succeeded.inc();
      else aborted.inc({ reason: outcome });
    },
    invalidMessage: (transport, reason) => invalid.inc({ transport, reason }),
  };
}
