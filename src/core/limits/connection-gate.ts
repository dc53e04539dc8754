import { sourceKey } from './source-key.js';

export type GateVerdict = 'ok' | 'total' | 'per_ip';

/**
 * Caps concurrent connections of one front, in total and per source: an IPv4 address, or an IPv6
 * /64 (one subscriber's network), so rotating through a prefix's addresses gains nothing.
 */
export class ConnectionGate {
  private total = 0;
  private readonly perIp = new Map<string, number>();

  constructor(
    private readonly maxTotal: number,
    private readonly maxPerIp: number,
  ) {}

  /** Counts the connection in if allowed; every 'ok' must be matched by one release(). */
  admit(ip: string): GateVerdict {
    if (this.total >= this.maxTotal) return 'total';
    const source = sourceKey(ip);
    const current = this.perIp.get(source) ?? 0;
    if (current >= this.maxPerIp) return 'per_ip';
    this.perIp.set(source, current + 1);
    this.total++;
    return 'ok';
  }

  release(ip: string): void {
    const source = sourceKey(ip);
    const current = this.perIp.get(source);
    if (current === undefined) return;
    if (current <= 1) this.perIp.delete(source);
    else this.perIp.set(source, current - 1);
    this.total--;
  }

  get size(): number {
    return this.total;
  }

  get sources(): number {
    return this.perIp.size;
  }
}
