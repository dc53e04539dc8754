// One node per core on one host (README, "One node per core"): `noray --workers N` forks N
// processes with node:cluster. The primary only supervises; each worker is a cluster node of its
// own (`<node id>-w<i>`) running the normal App over the shared Redis. TCP listeners and the UDP
// registrar and lobby ports are shared by node:cluster; relay ports are not: each worker binds
// its own slice of NORAY_UDP_RELAY_PORTS (exclusively, see core/relay/port-pool.ts).
import cluster, { type Worker } from 'node:cluster';
import type { Readable, Writable } from 'node:stream';
import type { Logger } from 'pino';
import type { Config } from './config/schema.js';
import { configProblems } from './config/validate.js';
import { NODE_ID_PATTERN, randomNodeId } from './core/shared-state.js';

/** Which worker this process is: handed from the primary to each fork in its environment. */
export interface WorkerSeat {
  /** 0 .. count-1: the slot, which decides the worker's relay ports. */
  readonly index: number;
  readonly count: number;
  /** This process's cluster node id: `<base>-w<index>`, `-r<k>` added on the k-th restart. */
  readonly nodeId: string;
}

const SEAT_ENV = 'NORAY_WORKER_SEAT';
/** The longest NORAY_NODE_ID that leaves room for `-w1023-r99999` within the 64 characters of an id. */
const MAX_BASE_ID_LENGTH = 50;
const RESTART_BACKOFF_MIN_MS = 500;
const RESTART_BACKOFF_MAX_MS = 30_000;
/** A worker that ran this long before dying starts its backoff from the minimum again. */
const HEALTHY_RUN_MS = 30_000;
/** Workers drain within the bin's own deadline (5 s); past this the primary kills what is left. */
const STOP_DEADLINE_MS = 10_000;

/** What is wrong with running config.workers workers, in words that name the options. */
export function workerProblems(config: Config): string[] {
  if (config.workers <= 1) return [];
  const problems: string[] = [];
  if (config.redisUrl === null) {
    problems.push(
      `NORAY_WORKERS=${config.workers} needs NORAY_REDIS_URL: the workers are cluster nodes and share their state there ` +
        '(set NORAY_REDIS_URL, or run one worker)',
    );
  }
  if (config.udpRelayPorts !== null && config.udpRelayPorts.length < config.workers) {
    problems.push(
      `NORAY_UDP_RELAY_PORTS has ${config.udpRelayPorts.length} ports for NORAY_WORKERS=${config.workers}: ` +
        'each worker needs relay ports of its own (configure more ports or fewer workers)',
    );
  }
  if (config.nodeId !== null && config.nodeId.length > MAX_BASE_ID_LENGTH) {
    problems.push(`NORAY_NODE_ID is longer than ${MAX_BASE_ID_LENGTH} characters: with NORAY_WORKERS each worker adds "-w<i>" to it`);
  }
  // Each worker's own config must hold too (its relay slice against the minimum, ...).
  if (problems.length === 0) {
    for (let index = 0; index < config.workers; index++) {
      const seat = { index, count: config.workers, nodeId: `${config.nodeId ?? 'node'}-w${index}` };
      for (const problem of configProblems(workerConfig(config, seat))) problems.push(`worker ${index}: ${problem}`);
    }
  }
  return [...new Set(problems)];
}

/** Worker `index` of `count` takes ports index, index+count, index+2*count, ... of the list. */
export function relayPortsOf(ports: readonly number[], index: number, count: number): number[] {
  return ports.filter((_, position) => position % count === index);
}

/**
 * The config a worker runs its App with: its node id, and its own slice of the relay ports with
 * NORAY_UDP_RELAY_MIN_PORTS scaled to the slice (at least one).
 */
export function workerConfig(config: Config, seat: WorkerSeat): Config {
  const all = config.udpRelayPorts;
  const ports = all === null ? null : relayPortsOf(all, seat.index, seat.count);
  const minPorts =
    all === null || ports === null || all.length === 0
      ? config.udpRelayMinPorts
      : Math.max(1, Math.min(ports.length, Math.ceil((config.udpRelayMinPorts * ports.length) / all.length)));
  return { ...config, nodeId: seat.nodeId, udpRelayPorts: ports, udpRelayMinPorts: minPorts };
}

/** This process's seat when it is a worker forked by runPrimary; null otherwise. */
export function workerSeat(): WorkerSeat | null {
  if (!cluster.isWorker) return null;
  const raw = process.env[SEAT_ENV];
  const match = raw === undefined ? null : /^(\d+)\/(\d+)\/(.+)$/.exec(raw);
  if (match === null) return null;
  const [, index, count, nodeId] = match as unknown as [string, string, string, string];
  if (!NODE_ID_PATTERN.test(nodeId)) return null;
  return { index: Number(index), count: Number(count), nodeId };
}

/** A worker tells the primary it is serving (every port bound): restarts are for crashes after this. */
export function reportReady(): void {
  if (cluster.isWorker && process.send) process.send({ noray: 'ready' });
}

function isReady(message: unknown): boolean {
  return typeof message === 'object' && message !== null && (message as { noray?: unknown }).noray === 'ready';
}

interface Slot {
  readonly index: number;
  worker: Worker | null;
  restarts: number;
  /** Deaths in a row that came soon after a start: the backoff doubles with each. */
  quickDeaths: number;
  startedAt: number;
  ready: boolean;
  timer: NodeJS.Timeout | null;
}

/**
 * Copies a worker's output to ours whole lines at a time, so lines of two workers never mix in
 * the middle (writes to a pipe are only atomic up to PIPE_BUF). Resolves when the worker closed it.
 */
function forwardLines(from: Readable | null, to: Writable): Promise<void> {
  if (from === null) return Promise.resolve();
  let pending = '';
  from.setEncoding('utf8');
  from.on('data', (text: string) => {
    const end = text.lastIndexOf('\n');
    if (end === -1) {
      pending += text;
      return;
    }
    to.write(pending + text.slice(0, end + 1));
    pending = text.slice(end + 1);
  });
  return new Promise((resolve) => {
    from.once('close', () => {
      if (pending !== '') to.write(`${pending}\n`);
      resolve();
    });
  });
}

export interface PrimaryOptions {
  readonly config: Config;
  /** The primary's own log (forks, deaths, restarts, shutdown). */
  readonly logger: Logger;
}

/**
 * The primary of `--workers N`: forks the workers and supervises them, nothing else (no Redis,
 * no ports of its own; node:cluster accepts the shared TCP listeners' connections here and hands
 * them round-robin to the workers). A worker that dies is restarted with a backoff, under a new
 * node id so the cluster purges the dead one's state as for any dead node. A worker that fails
 * before it ever became ready stops everything: the same config would fail again. On SIGINT,
 * SIGTERM or SIGHUP the signal goes to every worker, each drains, and the primary exits 0 when
 * all stopped cleanly; with TLS configured SIGHUP goes to every worker as a certificate reload
 * instead, and nothing stops. Resolves with the exit code.
 */
export function runPrimary(options: PrimaryOptions): Promise<number> {
  const { config, logger } = options;
  const count = config.workers;
  const baseId = config.nodeId ?? randomNodeId();
  cluster.setupPrimary({ silent: true });
  const slots: Slot[] = Array.from({ length: count }, (_, index) => ({
    index,
    worker: null,
    restarts: 0,
    quickDeaths: 0,
    startedAt: 0,
    ready: false,
    timer: null,
  }));
  const outputs: Array<Promise<void>> = [];
  let stopping = false;
  let exitCode = 0;
  let finish: (code: number) => void = () => undefined;
  const done = new Promise<number>((resolve) => (finish = resolve));

  const nodeIdOf = (slot: Slot) => `${baseId}-w${slot.index}${slot.restarts === 0 ? '' : `-r${slot.restarts}`}`;

  const fork = (slot: Slot) => {
    slot.timer = null;
    const nodeId = nodeIdOf(slot);
    const worker = cluster.fork({ [SEAT_ENV]: `${slot.index}/${count}/${nodeId}` });
    slot.worker = worker;
    slot.startedAt = Date.now();
    slot.ready = false;
    outputs.push(forwardLines(worker.process.stdout, process.stdout), forwardLines(worker.process.stderr, process.stderr));
    worker.on('message', (message: unknown) => {
      if (isReady(message)) slot.ready = true;
    });
    worker.once('exit', (code, signal) => onExit(slot, worker, nodeId, code, signal));
    logger.info({ worker: slot.index, node: nodeId, osPid: worker.process.pid }, 'worker started');
  };

  const allGone = () => slots.every((slot) => slot.worker === null);

  const settle = () => {
    if (!allGone() || slots.some((slot) => slot.timer !== null)) return;
    // Every worker's last lines are out before the primary reports and exits.
    void Promise.all(outputs).then(() => {
      logger.info({ code: exitCode }, 'workers stopped');
      finish(exitCode);
    });
  };

  const onExit = (slot: Slot, worker: Worker, nodeId: string, code: number | null, signal: string | null) => {
    if (slot.worker !== worker) return;
    slot.worker = null;
    const fields = { worker: slot.index, node: nodeId, osPid: worker.process.pid, code, signal };
    if (stopping) {
      if (code !== 0) {
        exitCode = 1;
        logger.error(fields, 'worker did not stop cleanly');
      } else logger.info(fields, 'worker stopped');
      settle();
      return;
    }
    if (!slot.ready) {
      // It never served: a bad port, Redis unreachable, a live node with its id... Restarting
      // would fail the same way, so stop the others and exit as a single process would.
      logger.fatal(fields, 'worker failed to start, stopping the others');
      exitCode = code === null || code === 0 ? 1 : code;
      stop();
      return;
    }
    const ranFor = Date.now() - slot.startedAt;
    slot.quickDeaths = ranFor >= HEALTHY_RUN_MS ? 0 : slot.quickDeaths + 1;
    const delay = Math.min(RESTART_BACKOFF_MAX_MS, RESTART_BACKOFF_MIN_MS * 2 ** Math.max(0, slot.quickDeaths - 1));
    slot.restarts++;
    logger.error({ ...fields, ranForMs: ranFor, restartInMs: delay, nextNode: nodeIdOf(slot) }, 'worker died, restarting');
    slot.timer = setTimeout(() => fork(slot), delay);
  };

  const stop = (signal: NodeJS.Signals = 'SIGTERM') => {
    if (stopping) return;
    stopping = true;
    for (const slot of slots) {
      if (slot.timer !== null) clearTimeout(slot.timer);
      slot.timer = null;
      slot.worker?.process.kill(signal);
    }
    const deadline = setTimeout(() => {
      logger.error('workers did not stop in time, killing them');
      exitCode = 1;
      for (const slot of slots) slot.worker?.process.kill('SIGKILL');
    }, STOP_DEADLINE_MS);
    deadline.unref();
    settle();
  };

  // With TLS, SIGHUP means "reread the certificate": every worker gets it and reloads, none stops.
  const tls = config.tlsCert !== null && config.tlsKey !== null;
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      if (signal === 'SIGHUP' && tls) {
        if (stopping) return;
        logger.info({ signal, workers: count }, 'reloading tls in every worker');
        for (const slot of slots) slot.worker?.process.kill('SIGHUP');
        return;
      }
      if (!stopping) logger.info({ signal, workers: count }, 'shutting down');
      stop(signal);
    });
  }
  logger.info({ workers: count, node: baseId }, 'starting workers');
  for (const slot of slots) fork(slot);
  return done;
}
