// ms per client message of about 1 MB through stampClientId, the previous per-character scan and
// the parsing reference: `npx tsx test/wsrelay/stamp-bench.ts`.
import { stampClientId, stampClientIdByParsing, stampClientIdPerCharacter } from '../../src/fronts/wsrelay/codec.js';

function gameMessage(bytes: number): string {
  const players: unknown[] = [];
  let text = '';
  for (let n = 0; text.length < bytes; n++) {
    players.push({ id: `player-${n}`, x: n * 1.25, y: -n, alive: n % 3 !== 0, tags: ['a', 'b\n'], score: 9007199254740993 + n });
    if (n % 256 === 0) text = JSON.stringify({ action: 'state', client_id: 'forged', players });
  }
  return JSON.stringify({ action: 'state', client_id: 'forged', players });
}

/** What bench:abuse's wsrelay attacker sends: numbers, a third of them past 2^53. */
function numberArray(bytes: number): string {
  const numbers: string[] = [];
  let length = 20;
  for (let i = 0; length < bytes; i++) {
    const n = i % 3 === 0 ? `${9007199254740993n + BigInt(i)}` : ((i * 7919) % 1e6 / 1.7).toFixed(3);
    numbers.push(n);
    length += n.length + 1;
  }
  return `{"numbers":[${numbers.join(',')}]}`;
}

const shapes: Record<string, string> = {
  'number array (bench:abuse)': numberArray(1 << 20),
  'objects, numbers, strings': gameMessage(1 << 20),
  'one long string': JSON.stringify({ action: 'blob', data: 'x'.repeat(1 << 20) }),
  'spaced (pretty-printed)': JSON.stringify(JSON.parse(gameMessage(1 << 20)) as unknown, null, 1),
  'deep nesting (200 levels, repeated)': JSON.stringify({ a: Array.from({ length: 800 }, () => JSON.parse(`${'['.repeat(200)}1,2${']'.repeat(200)}`) as unknown) }),
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
  const scan = msPer(stampClientIdPerCharacter, text);
  const slow = msPer(stampClientIdByParsing, text);
  console.log(`${name} (${(text.length / 1024).toFixed(0)} KiB): now ${fast.toFixed(2)} ms, previous scan ${scan.toFixed(2)} ms (${(scan / fast).toFixed(1)}x), parse+stringify ${slow.toFixed(2)} ms`);
}
