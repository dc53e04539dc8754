// The benchmark's printed verdict: a quick (CI) run reports its targets as informational.
import { describe, expect, it } from 'vitest';
import { targetLines, type Verdict } from '../bench/report.js';

const verdicts: Verdict[] = [
  { pairs: 1, rateRatio: 1.1, perCoreRatio: 1.0, p99Ratio: 0.9, rateOk: true, p99Ok: true },
  { pairs: 100, rateRatio: 0.6, perCoreRatio: 0.7, p99Ratio: 2.5, rateOk: false, p99Ok: false },
];

describe('benchmark targets', () => {
  it('a full run gives a verdict per pair count', () => {
    const text = targetLines(verdicts, false).join('\n');
    expect(text).toContain('   1 pairs: rate 1.10x MET');
    expect(text).toContain(' 100 pairs: rate 0.60x NOT MET');
    expect(text).not.toContain('informational');
  });

  it('a quick run labels every line informational and never prints NOT MET', () => {
    const lines = targetLines(verdicts, true);
    const text = lines.join('\n');
    expect(text).not.toContain('NOT MET');
    expect(text).toContain('Informational only in quick mode');
    expect(text).toContain(' 100 pairs: rate 0.60x below target');
    for (const line of lines.filter((l) => l.includes('pairs:'))) expect(line).toMatch(/\(informational\)$/);
  });
});
