import { isIPv6 } from 'node:net';

/**
 * The key per-source limits count under: an IPv4 address as it is, an IPv6 address by its /64
 * (one subscriber gets a whole /64, so counting single IPv6 addresses would let one source be
 * millions). IPv4-mapped IPv6 addresses count as their IPv4 address.
 */
export function sourceKey(address: string): string {
  if (address.startsWith('::ffff:') && address.includes('.')) return address.slice(7);
  if (!isIPv6(address)) return address;
  const groups = expandIPv6(address.split('%')[0] ?? address);
  return `${groups.slice(0, 4).join(':')}::/64`;
}

/** The eight 16-bit groups of an IPv6 address, without leading zeros. */
function expandIPv6(address: string): string[] {
  const [head = '', tail] = address.split('::');
  const part = (text: string) => (text === '' ? [] : text.split(':'));
  const left = part(head);
  const right = tail === undefined ? [] : part(tail);
  // An embedded IPv4 tail (::1.2.3.4) fills two groups.
  const last = right.length > 0 ? right : left;
  const v4 = last.length > 0 && (last[last.length - 1] ?? '').includes('.') ? last.pop() : undefined;
  if (v4 !== undefined) {
    const [a = 0, b = 0, c = 0, d = 0] = v4.split('.').map(Number);
    last.push(((a << 8) | b).toString(16), ((c << 8) | d).toString(16));
  }
  const missing = 8 - left.length - right.length;
  const groups = [...left, ...Array.from({ length: tail === undefined ? 0 : missing }, () => '0'), ...right];
  return groups.map((group) => parseInt(group, 16).toString(16));
}
