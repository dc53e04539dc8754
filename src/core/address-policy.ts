import { BlockList, isIPv4, isIPv6 } from 'node:net';

/**
 * Addresses a public server should neither relay to nor accept registrations from when asked
 * to (like coturn's denied-peer-ip): private, loopback, link-local, CGNAT, unspecified, multicast.
 */
export function createPrivateAddressList(): BlockList {
  const list = new BlockList();
  for (const [network, prefix] of [
    ['0.0.0.0', 8],
    ['10.0.0.0', 8],
    ['100.64.0.0', 10],
    ['127.0.0.0', 8],
    ['169.254.0.0', 16],
    ['172.16.0.0', 12],
    ['192.168.0.0', 16],
    ['224.0.0.0', 3],
  ] as const) {
    list.addSubnet(network, prefix, 'ipv4');
  }
  for (const [network, prefix] of [
    ['::', 127],
    ['fc00::', 7],
    ['fe80::', 10],
    ['ff00::', 8],
  ] as const) {
    list.addSubnet(network, prefix, 'ipv6');
  }
  return list;
}

export class AddressPolicy {
  private readonly denied: BlockList | null;

  constructor(denyPrivate: boolean) {
    this.denied = denyPrivate ? createPrivateAddressList() : null;
  }

  /** True when the address may take part (register, be relayed to). */
  allows(address: string): boolean {
    if (this.denied === null) return true;
    const plain = address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address;
    if (isIPv4(plain)) return !this.denied.check(plain, 'ipv4');
    if (isIPv6(plain)) return !this.denied.check(plain, 'ipv6');
    return false;
  }
}
