/** Settings of one benchmark run, shared by the suites. */
export interface BenchContext {
  readonly quick: boolean;
  readonly serverCpu: string | undefined;
  readonly loadCpu: string | undefined;
  readonly stepMs: number;
  readonly drainMs: number;
  readonly rates: readonly number[];
  readonly sizes: readonly number[];
  readonly pairCounts: readonly number[];
  /** Pair counts at which the generator's own ceiling (direct to the sink) is measured. */
  readonly directAt: readonly number[];
  readonly rttRate: number;
  /** Fixed rates at which server CPU per datagram is compared. */
  readonly cpuRates: readonly number[];
  readonly rttMs: number;
  /** Alternating bare/noray round-trip rounds; the median round (by p99) is reported. */
  readonly rttRounds: number;
  readonly controlMs: number;
  log(line: string): void;
}
