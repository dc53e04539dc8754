/**
 * Property-test run counts: the numbers in the tests are sized for `npm test`; `npm run fuzz`
 * multiplies them by FUZZ_SCALE (tens of thousands of runs per codec).
 */
export function runs(base: number): number {
  const scale = Number(process.env.FUZZ_SCALE ?? '1');
  return Math.max(1, Math.round(base * (Number.isFinite(scale) && scale > 0 ? scale : 1)));
}
