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

  constructor(addresses: readonly string[] = interfaceAddresses()) {
    this.addresses = new Set(addresses);
  }

  add(ports: Iterable<number>): void {
    for (const port of ports) this.ports.add(port);
  }

  has(address: string, port: number): boolean {
    return this.ports.has(port) && (isLoopback(address) || this.addresses.has(address));
  }
}
