/** One configuration key: where it comes from, its default and how its text is parsed. */
export interface OptionSpec<T> {
  /** Environment variable name, e.g. NORAY_SOCKET_PORT. The CLI flag is derived from it. */
  readonly env: string;
  /** Default as text, parsed exactly like user input so `--help` shows what a user would type. */
  readonly default: string;
  readonly parse: (raw: string) => T;
  readonly describe: string;
  /** Extra CLI flag names accepted for this key (e.g. Orion's own flag names). */
  readonly aliases?: readonly string[];
  /** Redacted when the effective config is logged. */
  readonly secret?: boolean;
}

export function option<T>(spec: OptionSpec<T>): OptionSpec<T> {
  return spec;
}

/** NORAY_UDP_RELAY_PORTS -> udp-relay-ports */
export function flagName(spec: Pick<OptionSpec<unknown>, 'env'>): string {
  return spec.env.replace(/^NORAY_/, '').toLowerCase().replace(/_/g, '-');
}

export type ConfigOf<O> = { readonly [K in keyof O]: O[K] extends OptionSpec<infer T> ? T : never };
