import { availableParallelism } from 'node:os';
import { option } from '../option.js';
import { NODE_ID_PATTERN as NODE_ID } from '../../core/shared-state.js';
import { ConfigValueError, parseHost, parsePositiveDuration } from '../units.js';

/** NORAY_REDIS_URL: empty means one process with its state in memory. */
export function parseRedisUrl(raw: string): string | null {
  const value = raw.trim();
  if (value === '') return null;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigValueError('expected a URL such as redis://host:6379 or rediss://user:password@host:6380/0');
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new ConfigValueError(`expected a redis:// or rediss:// URL, not ${url.protocol}//`);
  }
  return value;
}

function parseNodeId(raw: string): string | null {
  const value = raw.trim();
  if (value === '') return null;
  if (!NODE_ID.test(value)) throw new ConfigValueError('expected 1 to 64 letters, digits, "_" or "-"');
  return value;
}

function parseClusterName(raw: string): string {
  const value = raw.trim();
  if (!NODE_ID.test(value)) throw new ConfigValueError('expected 1 to 64 letters, digits, "_" or "-"');
  return value;
}

/** Most workers one host may ask for: far above any core count, low enough to catch a typo. */
export const MAX_WORKERS = 1024;

/** NORAY_WORKERS: a count, or `auto` for one per core (os.availableParallelism()). */
export function parseWorkers(raw: string): number {
  const value = raw.trim().toLowerCase();
  if (value === 'auto') return availableParallelism();
  if (!/^\d+$/.test(value)) throw new ConfigValueError(`expected a whole number from 1 to ${MAX_WORKERS}, or auto`);
  const count = Number(value);
  if (count < 1 || count > MAX_WORKERS) throw new ConfigValueError(`expected a whole number from 1 to ${MAX_WORKERS}, or auto`);
  return count;
}

function parseOptionalHost(raw: string): string | null {
  return raw.trim() === '' ? null : parseHost(raw);
}

/** Several noray processes sharing one Redis (README, Running a cluster). */
export const clusterOptions = {
  redisUrl: option({
    env: 'NORAY_REDIS_URL',
    default: '',
    parse: parseRedisUrl,
    describe:
      'Redis shared by the nodes of a cluster (redis:// or rediss://, user and password in the URL); empty: one process, state in memory',
    secret: true,
  }),
  nodeId: option({
    env: 'NORAY_NODE_ID',
    default: '',
    parse: parseNodeId,
    describe: 'This node\'s id in the cluster (letters, digits, "_", "-"); empty: a random one per start',
  }),
  clusterName: option({
    env: 'NORAY_CLUSTER_NAME',
    default: 'noray',
    parse: parseClusterName,
    describe: 'Name of the cluster: the Redis key prefix, so several clusters can share one Redis',
  }),
  nodeAddress: option({
    env: 'NORAY_NODE_ADDRESS',
    default: '',
    parse: parseOptionalHost,
    describe:
      'Address other nodes reach this node at (inter-node relay forwarding); empty: NORAY_UDP_HOST if it names one address, else this machine\'s first non-loopback IPv4 address',
  }),
  nodeHeartbeat: option({
    env: 'NORAY_NODE_HEARTBEAT',
    default: '2s',
    parse: parsePositiveDuration,
    describe: 'How often a node tells the cluster it is alive',
  }),
  nodeTimeout: option({
    env: 'NORAY_NODE_TIMEOUT',
    default: '6s',
    parse: parsePositiveDuration,
    describe: 'A node silent this long is dead: another node removes its sessions, lobbies and rooms and tells their peers',
  }),
  workers: option({
    env: 'NORAY_WORKERS',
    default: '1',
    parse: parseWorkers,
    describe:
      'Processes on this host, one cluster node each (auto: one per core); more than 1 needs NORAY_REDIS_URL and splits NORAY_UDP_RELAY_PORTS among them',
  }),
};
