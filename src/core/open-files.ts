import { readdirSync, readFileSync } from 'node:fs';

/**
 * File descriptors: every relay port is one, so is every connection, listener and log file. The
 * common soft limit (`ulimit -n 1024`) is below the default relay range (2049 ports), so ports
 * are bound within a budget that leaves a reserve for everything else.
 */

/**
 * The process's soft RLIMIT_NOFILE. Linux: "Max open files" in /proc/self/limits. Infinity when
 * unlimited, null when unknown (another system, or /proc not mounted): then nothing is budgeted.
 */
export function readOpenFileLimit(readLimits: () => string = () => readFileSync('/proc/self/limits', 'utf8')): number | null {
  let text: string;
  try {
    text = readLimits();
  } catch {
    return null;
  }
  const soft = /^Max open files\s+(\S+)/m.exec(text)?.[1];
  if (soft === undefined) return null;
  if (soft === 'unlimited') return Number.POSITIVE_INFINITY;
  const value = Number(soft);
  return Number.isInteger(value) && value >= 0 ? value : null;
}

/** Descriptors kept free for connections and everything else: a quarter of the limit, at least 256 (half of a tiny limit). */
export function descriptorReserve(limit: number): number {
  return Math.max(Math.min(256, Math.floor(limit / 2)), Math.ceil(limit / 4));
}

export interface RelayPortBudget {
  /** Ports to bind: the configured ones, or as many as the limit leaves room for. */
  readonly bind: number;
  readonly configured: number;
  /** The soft open-file limit; null when unknown (nothing budgeted). */
  readonly limit: number | null;
  /** Descriptors kept for everything but relay ports (0 when nothing is budgeted). */
  readonly reserve: number;
}

/** How many of `configured` relay ports to bind under an open-file limit. */
export function relayPortBudget(configured: number, limit: number | null): RelayPortBudget {
  if (limit === null || !Number.isFinite(limit)) return { bind: configured, configured, limit, reserve: 0 };
  const reserve = descriptorReserve(limit);
  return { bind: Math.min(configured, Math.max(0, limit - reserve)), configured, limit, reserve };
}

/** The smallest power of two (at least 1024) whose budget holds `ports` relay ports: the limit to suggest. */
export function suggestedOpenFileLimit(ports: number): number {
  let limit = 1024;
  while (limit - descriptorReserve(limit) < ports) limit *= 2;
  return limit;
}

/** Descriptors open now (Linux /proc/self/fd, macOS /dev/fd), or null when it cannot be seen. */
export function countOpenFiles(): number | null {
  for (const dir of ['/proc/self/fd', '/dev/fd']) {
    try {
      // The directory handle itself shows up in the listing.
      return Math.max(0, readdirSync(dir).length - 1);
    } catch {
      // try the next
    }
  }
  return null;
}

/** EMFILE (this process is out of descriptors) or ENFILE (the whole system is). */
export function isDescriptorExhaustion(error: unknown): error is NodeJS.ErrnoException {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return code === 'EMFILE' || code === 'ENFILE';
}

/** What to do wherever descriptors run out: which limit to raise, or which range to narrow. */
export function openFileAdvice(relayPorts: number): string {
  const limit = suggestedOpenFileLimit(relayPorts);
  return `raise the open-file limit (ulimit -n ${limit}, LimitNOFILE=${limit} in systemd) or narrow NORAY_UDP_RELAY_PORTS`;
}

const REPORT_EVERY_MS = 60_000;

/**
 * A listener out of descriptors fails every accept (libuv sheds the connection and tells us each
 * time): pass the first EMFILE/ENFILE of a minute on with what to do, count the rest, and pass
 * every other error on as it is.
 */
export function throttleDescriptorErrors(
  onError: (error: Error) => void,
  options: { relayPorts?: number; now?: () => number } = {},
): (error: Error) => void {
  const now = options.now ?? Date.now;
  let quietUntil = Number.NEGATIVE_INFINITY;
  let suppressed = 0;
  return (error) => {
    if (!isDescriptorExhaustion(error)) {
      onError(error);
      return;
    }
    const at = now();
    if (at < quietUntil) {
      suppressed++;
      return;
    }
    quietUntil = at + REPORT_EVERY_MS;
    const repeats = suppressed > 0 ? ` (${suppressed} more in the last minute)` : '';
    suppressed = 0;
    const hint = new Error(
      `${error.message}: out of file descriptors, new connections are dropped${repeats}; ${openFileAdvice(options.relayPorts ?? 0)}`,
      { cause: error },
    );
    onError(Object.assign(hint, { code: error.code }));
  };
}
