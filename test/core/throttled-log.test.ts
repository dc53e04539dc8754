import { describe, expect, it } from 'vitest';
import { ThrottledLog, THROTTLED_LOG_EVERY_MS } from '../../src/core/throttled-log.js';

describe('ThrottledLog', () => {
  it('logs the first report of a minute with how many were skipped since the last one logged', () => {
    let now = 0;
    const log = new ThrottledLog(() => now);
    const logged: number[] = [];
    for (let i = 0; i < 5; i++) log.report((skipped) => logged.push(skipped));
    now += THROTTLED_LOG_EVERY_MS;
    log.report((skipped) => logged.push(skipped));
    expect(logged).toEqual([0, 4]);
  });

  it('recovered() says so once, with the unlogged count, and the next failure logs at once', () => {
    let now = 0;
    const log = new ThrottledLog(() => now);
    const recoveries: number[] = [];
    log.recovered((skipped) => recoveries.push(skipped));
    expect(recoveries).toEqual([]);
    const logged: number[] = [];
    log.report((skipped) => logged.push(skipped));
    log.report((skipped) => logged.push(skipped));
    log.recovered((skipped) => recoveries.push(skipped));
    log.recovered((skipped) => recoveries.push(skipped));
    expect(recoveries).toEqual([1]);
    now += 1;
    log.report((skipped) => logged.push(skipped));
    expect(logged).toEqual([0, 0]);
  });
});
