import { Counter, Gauge, type Registry } from 'prom-client';
import type { DecodeErrorCode } from './codec.js';

/** Every reason this front reports to the limit reporter (`noray_limit_rejections_total{front="tcprelay"}`). */
export type TcpRelayLimitReason =
  | 'max_connections'
  | 'max_connections_per_ip'
  | 'login_timeout'
  | 'message_rate'
  | 'byte_rate'
  | 'source_rate'
  | 'frame_too_large'
  | 'slow_reader'
  | 'backpressure'
  | 'sender_cut'
  | 'id_reserved'
  | 'guess_rate';

/** Why a frame was answered with an ERROR instead of being delivered (`noray_tcprelay_frames_rejected_total`). */
export type Rejection = 'not_initialized' | 'no_destination' | 'unknown_destination' | 'id_taken';

/** The frame types the relay delivers to another id (`noray_tcprelay_frames_relayed_total`). */
export type RelayedType = 'MESSAGE' | 'ERROR';

/** A decode error closes the connection under `malformed_<code in lower case>`. */
const MALFORMED = {
  BAD_LENGTH: 'malformed_bad_length',
  FRAME_TOO_LARGE: 'malformed_frame_too_large',
  INVALID_UTF8: 'malformed_invalid_utf8',
  INVALID_JSON: 'malformed_invalid_json',
  NOT_AN_OBJECT: 'malformed_not_an_object',
  BAD_FIELD_TYPE: 'malformed_bad_field_type',
  UNKNOWN_PAYLOAD_TYPE: 'malformed_unknown_payload_type',
} as const satisfies { [code in DecodeErrorCode]: `malformed_${Lowercase<code>}` };

/** Why a connection ended (`noray_tcprelay_closes_total`). */
export type CloseReason =
  | 'closed'
  | 'error'
  | 'slow_reader'
  | 'sender_cut'
  | 'shutdown'
  | 'login_timeout'
  | 'message_rate'
  | 'byte_rate'
  | 'operator'
  | (typeof MALFORMED)[DecodeErrorCode];

export function malformedReason(code: DecodeErrorCode): CloseReason {
  return MALFORMED[code];
}

/** Live counts the gauges read on scrape. */
export interface TcpRelayLive {
  connections(): number;
  ids(): number;
}

/** The tcprelay front's metrics; counters take only this front's reasons. */
export function createTcpRelayMetrics(registry: Registry, live: TcpRelayLive) {
  const registers = [registry];
  new Gauge({
    name: 'noray_tcprelay_connections',
    help: 'Open TCP relay connections',
    registers,
    collect() {
      this.set(live.connections());
    },
  });
  new Gauge({
    name: 'noray_tcprelay_ids',
    help: 'Client ids currently initialized on the TCP relay',
    registers,
    collect() {
      this.set(live.ids());
    },
  });
  const relayed = new Counter({
    name: 'noray_tcprelay_frames_relayed_total',
    help: 'Frames delivered to their destination, by payloadType',
    labelNames: ['type'] as const,
    registers,
  });
  const rejected = new Counter({
    name: 'noray_tcprelay_frames_rejected_total',
    help: 'Frames answered with an ERROR instead of being delivered, by reason',
    labelNames: ['reason'] as const,
    registers,
  });
  const closes = new Counter({
    name: 'noray_tcprelay_closes_total',
    help: 'Connections closed, by reason',
    labelNames: ['reason'] as const,
    registers,
  });
  const relayedByType = { MESSAGE: relayed.labels('MESSAGE'), ERROR: relayed.labels('ERROR') };
  return {
    relayed: (type: RelayedType): void => relayedByType[type].inc(),
    rejected: (reason: Rejection): void => rejected.inc({ reason }),
    closed: (reason: CloseReason): void => closes.inc({ reason }),
  };
}

export type TcpRelayMetrics = ReturnType<typeof createTcpRelayMetrics>;
