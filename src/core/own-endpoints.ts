import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';

/** Every address of this machine's interfaces, in the plain form sockets report (IPv4 dotted). */
export function interfaceAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((entry) => entry.address));
}

function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.');
}

/**
 * The UDP endpoints this process owns (its bound ports on this machine's addresses). A datagram
 * that claims to come from one of them is spoofed or looped back: it is never answered and never
 * registered, so nobody can make the server talk to itself.
 */
export class OwnEndpoints {
  private readonly ports = new Set<number>();
  private readonly addresses: Set<string>;
  /** The one address the sockets are bound to, when it is a specific IP (not a wildcard). */
  private readonly boundTo: string | null;

  /**
   * `bindHost`: what the sockets were bound to. A wildcard (or no host, or a name) receives on
   * every local address, so any of them with our port is us; a specific IP only that one, so a
   * player on another loopback address that happens to use the same port number is not taken for us.
   */
  constructor(addresses: readonly string[] = interfaceAddresses(), bindHost?: string) {
    this.addresses = new Set(addresses);
    const host = bindHost?.replace(/^\[(.*)\]$/, '$1') ?? '';
    const wildcard = host === '' || host === '0.0.0.0' || host === '::' || isIP(host) === 0;
    this.boundTo = wildcard ? null : host.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i, '$1');
  }

  add(ports: Iterable<number>): void {
    for (const port of ports) this.ports.add(port);
  }

  has(address: string, port: number): boolean {
    if (!this.ports.has(port)) return false;
    if (this.boundTo !== null) return address === this.boundTo;
    return isLoopback(address) || this.addresses.has(address);
  }
}
