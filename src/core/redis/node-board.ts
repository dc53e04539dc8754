import { parseNodeFigures, type NodeBoard, type NodeFigures } from '../node-board.js';
import type { RedisClient } from './script.js';

/**
 * The board in Redis: one key per node with a ttl, read with one MGET over the nodes the
 * membership knows alive (no key scan), so a dead node's figures vanish with its key.
 */
export class RedisNodeBoard implements NodeBoard {
  constructor(
    private readonly client: RedisClient,
    private readonly prefix: string,
    private readonly liveNodes: () => Iterable<string>,
    private readonly ttlMs: number,
  ) {}

  async post(figures: NodeFigures): Promise<void> {
    await this.client.set(this.key(figures.nodeId), JSON.stringify(figures), { PX: this.ttlMs });
  }

  async read(): Promise<NodeFigures[]> {
    const nodes = [...new Set(this.liveNodes())].sort();
    if (nodes.length === 0) return [];
    const values = await this.client.mGet(nodes.map((node) => this.key(node)));
    return values.flatMap((value) => {
      const parsed = typeof value === 'string' ? parseNodeFigures(value) : undefined;
      return parsed ? [parsed] : [];
    });
  }

  private key(nodeId: string): string {
    return `${this.prefix}board:${nodeId}`;
  }
}
