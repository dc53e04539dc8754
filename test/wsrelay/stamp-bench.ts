// ms per client message of about 1 MB through stampClientId (streaming scan) and the parsing
// reference it replaced: `npx tsx test/wsrelay/stamp-bench.ts`.
import { stampClientId, stampClientIdByParsing } from '../../src/fronts/wsrelay/codec.js';

function gameMessage(bytes: number): string {
  const players: unknown[] = [];
  let text = '';
  for (let n = 0; text.length < bytes; n++) {
    players.push({ id: `player-${n}`, x: n * 1.25, y: -n, alive: n % 3 !== 0, tags: ['a', 'b\n'], score: 9007199254740993 + n });
    if (n % 256 === 0) text = JSON.stringify({ action: 'state', client_id: 'forged', players });
  }
  return JSON.stringify({ action: 'state', client_id: 'forged', players });
}

const shapes: Record<string, string> = {
  'objects, numbers, strings': gameMessage(1 << 20),
  'one long string': JSON.stringify({ action: 'blob', data: 'x'.repeat(1 << 20) }),
  'spaced (pretty-printed)': JSON.stringify(JSON.parse(gameMessage(1 << 20)) as unknown, null, 1),
};

function msPer(stamp: (text: string, id: string) => unknown, text: string): number {
  for (let k = 0; k < 3; k++) stamp(text, '467');
  const rounds = 20;
  const start = performance.now();
  for (let k = 0; k < rounds; k++) stamp(text, '467');
  return (performance.now() - start) / rounds;
}

for (const [name, text] of Object.entries(shapes)) {
  const fast = msPer(stampClientId, text);
  const slow = msPer(stampClientIdByParsing, text);
  console.log(`${name} (${(text.length / 1024).toFixed(0)} KiB): scan ${fast.toFixed(2)} ms, parse+stringify ${slow.toFixed(2)} ms (${(slow / fast).toFixed(1)}x)`);
}
