// The node board: one process's memory board, the Redis board over a real Redis, and the parser
// that checks what other nodes posted before a page gets it.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryNodeBoard, parseNodeFigures } from '../../src/core/node-board.js';
import { RedisNodeBoard } from '../../src/core/redis/node-board.js';
import type { RedisClient } from '../../src/core/redis/script.js';
import { runs } from '../helpers/fuzz.js';
import { uniquePrefix, useRedis } from '../helpers/redis.js';

const redis = useRedis();

describe('MemoryNodeBoard', () => {
  it('holds this node latest figures only', async () => {
    const board = new MemoryNodeBoard();
    expect(await board.read()).toEqual([]);
    await board.post({ nodeId: 'local', at: 1, figures: { a: 1 } });
    await board.post({ nodeId: 'local', at: 2, figures: { a: 2 } });
    expect(await board.read()).toEqual([{ nodeId: 'local', at: 2, figures: { a: 2 } }]);
  });
});

describe('parseNodeFigures', () => {
  it('keeps finite numbers only, and refuses what is not a figure set', () => {
    expect(parseNodeFigures('{"nodeId":"a","at":5,"figures":{"x":1,"y":"2","z":null,"w":1e999}}')).toEqual({ nodeId: 'a', at: 5, figures: { x: 1 } });
    for (const text of ['', 'null', '[]', '{"nodeId":1,"at":1,"figures":{}}', '{"nodeId":"a","at":"1","figures":{}}', '{"nodeId":"a","at":1}', '{']) {
      expect(parseNodeFigures(text)).toBeUndefined();
    }
    expect(parseNodeFigures(`{"nodeId":"a","at":1,"figures":{"x":1},"pad":"${'p'.repeat(70_000)}"}`)).toBeUndefined();
  });

  it('never throws, and bounds what it returns, for any text', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json(), fc.dictionary(fc.string(), fc.jsonValue()).map((figures) => JSON.stringify({ nodeId: 'n', at: 1, figures }))), (text) => {
        const parsed = parseNodeFigures(text, 10);
        if (parsed === undefined) return;
        expect(Object.keys(parsed.figures).length).toBeLessThanOrEqual(10);
        for (const value of Object.values(parsed.figures)) expect(Number.isFinite(value)).toBe(true);
      }),
      { numRuns: runs(500) },
    );
  });
});

describe.skipIf(!redis.available)('RedisNodeBoard', () => {
  it('shows every live node figures, and a node stops showing once it is not live or its key expired', async () => {
    const prefix = uniquePrefix('board');
    const live = new Set(['a', 'b']);
    const client: RedisClient = redis.client();
    const board = (ttlMs: number) => new RedisNodeBoard(client, prefix, () => live, ttlMs);
    await board(10_000).post({ nodeId: 'a', at: 1, figures: { hosts: 3 } });
    await board(150).post({ nodeId: 'b', at: 2, figures: { hosts: 4 } });
    expect(await board(10_000).read()).toEqual([
      { nodeId: 'a', at: 1, figures: { hosts: 3 } },
      { nodeId: 'b', at: 2, figures: { hosts: 4 } },
    ]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await board(10_000).read()).map((node) => node.nodeId)).toEqual(['a']);
    live.delete('a');
    expect(await board(10_000).read()).toEqual([]);
  });
});
