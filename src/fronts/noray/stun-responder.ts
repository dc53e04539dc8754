import type { AddressPolicy } from '../../core/address-policy.js';
import type { Clock } from '../../core/clock.js';
import type { Endpoint } from '../../core/endpoint.js';
import type { LimitSink } from '../../core/limits/reporting.js';
import { sourceKey } from '../../core/limits/source-key.js';
import { SourceRateLimiter } from '../../core/limits/source-rate-limiter.js';
import type { NorayLimitReason, NorayMetrics } from './metrics.js';
import { classifyStun, encodeBindingSuccess } from '../../core/stun.js';

/** Which of our sockets a STUN request came to: the `socket` label of noray_stun_requests_total. */
export type StunSocketName = 'registrar' | 'alt';

export interface StunResponderOptions {
  /** Answers per second (and burst) to one source IP, over every socket that answers STUN. */
  readonly replyRate: number;
  readonly replyBurst: number;
  readonly clock: Clock;
  readonly addressPolicy: AddressPolicy;
  readonly metrics: NorayMetrics;
  readonly limits: LimitSink<NorayLimitReason>;
}

/**
 * Answers STUN Binding requests (RFC 8489) with the source address they came from, for every
 * socket that serves STUN (the registrar port and NORAY_STUN_ALT_PORT). Nothing but a well-formed
 * Binding request is answered, so responses, indications and errors (another server's answer
 * included) never start a ping-pong; answers to one source IP are rate-limited; an answer is at
 * most MAX_RESPONSE_BYTES (44). Datagrams from our own endpoints are the caller's to drop first.
 */
export class StunResponder {
  private readonly replies: SourceRateLimiter;

  constructor(private readonly options: StunResponderOptions) {
    this.replies = new SourceRateLimiter(options.replyRate, options.replyBurst, options.clock);
  }

  /**
   * Handles `message` if it is STUN: returns false for anything else (the caller's to handle),
   * true when it was STUN, answered through `send` or not.
   */
  handle(message: Buffer, from: Endpoint, socket: StunSocketName, send: (answer: Buffer) => void): boolean {
    const parsed = classifyStun(message);
    if (parsed.kind === 'not_stun') return false;
    const count = (outcome: string) => this.options.metrics.stunRequests.inc({ socket, outcome });
    if (parsed.kind === 'refused') {
      count(parsed.reason);
      return true;
    }
    if (!this.options.addressPolicy.allows(from.address)) {
      count('denied');
      this.options.limits.report('denied_peer', from.address);
      return true;
    }
    if (!this.replies.take(sourceKey(from.address))) {
      count('rate_limited');
      this.options.limits.report('stun_reply_rate', from.address);
      return true;
    }
    count('answered');
    send(encodeBindingSuccess(parsed.transactionId, from));
    return true;
  }
}
