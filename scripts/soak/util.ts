// Small helpers shared by the soak script's parts: bounded waits, error bookkeeping, statistics.

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Rejects with `what` if the promise has not settled within ms. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Throws with a readable message when a check of a well-behaved flow fails. */
export function expectEqual(actual: unknown, expected: unknown, what: string): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`);
}

export function check(condition: boolean, what: string): asserts condition {
  if (!condition) throw new Error(what);
}

/** Flows completed and errors seen by the well-behaved clients, by front. */
export class Tally {
  readonly flows = new Map<string, number>();
  readonly errors = new Map<string, number>();
  readonly firstErrors: string[] = [];
  /** Misbehaving actions done, by kind (informational). */
  readonly abuse = new Map<string, number>();

  flow(front: string): void {
    this.flows.set(front, (this.flows.get(front) ?? 0) + 1);
  }

  error(front: string, error: unknown): void {
    this.errors.set(front, (this.errors.get(front) ?? 0) + 1);
    if (this.firstErrors.length < 10) {
      const message = error instanceof Error ? error.message : String(error);
      this.firstErrors.push(`[${front}] ${message.slice(0, 400)}`);
    }
  }

  abused(kind: string, count = 1): void {
    this.abuse.set(kind, (this.abuse.get(kind) ?? 0) + count);
  }

  get totalFlows(): number {
    let sum = 0;
    for (const n of this.flows.values()) sum += n;
    return sum;
  }

  get totalErrors(): number {
    let sum = 0;
    for (const n of this.errors.values()) sum += n;
    return sum;
  }
}

/** Least-squares slope of y over x. */
export function slope(points: ReadonlyArray<{ x: number; y: number }>): number {
  const n = points.length;
  if (n < 2) return 0;
  let sx = 0;
  let sy = 0;
  for (const p of points) {
    sx += p.x;
    sy += p.y;
  }
  const mx = sx / n;
  const my = sy / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.x - mx) * (p.y - my);
    den += (p.x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/** `15s`, `10m`, `1h`, `500ms` or bare seconds. */
export function parseDurationArg(raw: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(raw.trim().toLowerCase());
  if (!match) throw new Error(`bad duration "${raw}" (use e.g. 15s, 10m, 1h)`);
  const value = Number(match[1]);
  const unit = match[2] ?? 's';
  const factor = unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000;
  return Math.round(value * factor);
}

export const MB = 1024 * 1024;

export function mb(bytes: number): string {
  return (bytes / MB).toFixed(1);
}

/** A random integer in [0, n). */
export function rnd(n: number): number {
  return Math.floor(Math.random() * n);
}
