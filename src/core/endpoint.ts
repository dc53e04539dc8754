/** A UDP or TCP address as the server sees it. IPv4 addresses are always plain dotted form. */
export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

/** `::ffff:1.2.3.4` -> `1.2.3.4`; clients parse plain dotted IPv4 only. */
export function normalizeAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
