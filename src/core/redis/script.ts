// What every Redis store shares: the client type, the options, and Lua scripts run by EVALSHA.
//
// Atomicity: every check-then-act step of a store is one Lua script. Redis runs a script to its
// end with no other command in between, so two nodes (two clients) can never both pass the same
// check. Scripts name their keys through the store's prefix; a prefix with a hash tag
// (`noray:{cluster}:`) keeps every key of a store in one slot, as scripts that build keys from
// ones they were given need on a Redis Cluster.
import { createHash } from 'node:crypto';
import type { RedisClientType } from 'redis';

/** A connected node-redis client (the stores never connect or close it). */
export type RedisClient = RedisClientType;

export interface RedisStoreOptions {
  /**
   * The node (process) creating records through this store instance: they are indexed under it,
   * so `purgeNode` can remove a dead node's records later. Default: 'node'.
   */
  readonly nodeId?: string;
}

/** A Lua script run by its SHA1, loaded on first use (and again after a SCRIPT FLUSH or a restart). */
export class LuaScript {
  readonly sha: string;

  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(client: RedisClient, keys: readonly string[], args: readonly string[]): Promise<unknown> {
    const options = { keys: [...keys], arguments: [...args] };
    try {
      return (await client.evalSha(this.sha, options)) as unknown;
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return (await client.eval(this.source, options)) as unknown;
    }
  }
}

export function asString(reply: unknown): string | undefined {
  if (typeof reply === 'string') return reply;
  if (Buffer.isBuffer(reply)) return reply.toString('utf8');
  return undefined;
}

export function asStrings(reply: unknown): string[] {
  if (!Array.isArray(reply)) return [];
  const out: string[] = [];
  for (const item of reply as unknown[]) {
    const text = asString(item);
    if (text !== undefined) out.push(text);
  }
  return out;
}

export function asNumber(reply: unknown): number {
  if (typeof reply === 'number') return reply;
  const text = asString(reply);
  return text === undefined ? 0 : Number(text);
}

/**
 * A key part that may hold any character, followed by more parts: prefixed with its length in
 * UTF-8 bytes (as Lua's string.len counts), so no two tuples share a key.
 */
export function part(value: string): string {
  return `${Buffer.byteLength(value, 'utf8')}:${value}`;
}

/** Lua for the same: `part(s)`. */
export const LUA_PART = `local function part(s) return string.len(s) .. ':' .. s end\n`;
