import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock, MAX_TIMER_DELAY_MS, systemClock, type Timer } from '../../src/core/clock.js';

describe('ManualClock', () => {
  it('starts at a fixed time, or the one given, and stands still', () => {
    expect(new ManualClock().now()).toBe(1_700_000_000_000);
    const clock = new ManualClock(5);
    expect(clock.now()).toBe(5);
    expect(clock.now()).toBe(5);
  });

  it('advance moves time by exactly the amount', () => {
    const clock = new ManualClock(0);
    clock.advance(10);
    clock.advance(0);
    clock.advance(2.5);
    expect(clock.now()).toBe(12.5);
  });

  it('a timeout fires once, at its deadline and not before', () => {
    const clock = new ManualClock(0);
    const fired: number[] = [];
    clock.setTimeout(() => fired.push(clock.now()), 100);
    clock.advance(99);
    expect(fired).toEqual([]);
    clock.advance(1);
    expect(fired).toEqual([100]);
    clock.advance(1000);
    expect(fired).toEqual([100]);
    expect(clock.pending).toBe(0);
  });

  it('a timeout of 0 (or less) fires on the next advance, even advance(0)', () => {
    const clock = new ManualClock(0);
    let count = 0;
    clock.setTimeout(() => count++, 0);
    clock.setTimeout(() => count++, -5);
    expect(count).toBe(0);
    clock.advance(0);
    expect(count).toBe(2);
  });

  it('fires timers in deadline order whatever the order they were set in, with now() at each deadline', () => {
    const clock = new ManualClock(0);
    const fired: Array<[string, number]> = [];
    const log = (name: string) => () => fired.push([name, clock.now()]);
    clock.setTimeout(log('c'), 30);
    clock.setTimeout(log('a'), 10);
    clock.setTimeout(log('b'), 20);
    clock.advance(100);
    expect(fired).toEqual([
      ['a', 10],
      ['b', 20],
      ['c', 30],
    ]);
    expect(clock.now()).toBe(100);
  });

  it('timers due at the same time fire in the order they were set', () => {
    const clock = new ManualClock(0);
    const fired: string[] = [];
    for (const name of ['first', 'second', 'third']) clock.setTimeout(() => fired.push(name), 50);
    clock.advance(50);
    expect(fired).toEqual(['first', 'second', 'third']);
  });

  it('an interval fires every period, several times in one advance', () => {
    const clock = new ManualClock(0);
    const ticks: number[] = [];
    clock.setInterval(() => ticks.push(clock.now()), 30);
    clock.advance(29);
    expect(ticks).toEqual([]);
    clock.advance(71);
    expect(ticks).toEqual([30, 60, 90]);
    clock.advance(30);
    expect(ticks).toEqual([30, 60, 90, 120]);
    expect(clock.pending).toBe(1);
  });

  it('intervals and timeouts interleave by time', () => {
    const clock = new ManualClock(0);
    const fired: string[] = [];
    clock.setInterval(() => fired.push(`i${clock.now()}`), 10);
    clock.setTimeout(() => fired.push(`t${clock.now()}`), 25);
    clock.advance(40);
    expect(fired).toEqual(['i10', 'i20', 't25', 'i30', 'i40']);
  });

  it('cancel stops a timeout before it fires; cancel twice is harmless', () => {
    const clock = new ManualClock(0);
    let fired = false;
    const timer = clock.setTimeout(() => (fired = true), 10);
    expect(clock.pending).toBe(1);
    timer.cancel();
    timer.cancel();
    expect(clock.pending).toBe(0);
    clock.advance(100);
    expect(fired).toBe(false);
  });

  it('cancel after a timeout fired is harmless', () => {
    const clock = new ManualClock(0);
    let count = 0;
    const timer = clock.setTimeout(() => count++, 10);
    clock.advance(10);
    timer.cancel();
    clock.advance(10);
    expect(count).toBe(1);
  });

  it('cancel stops an interval, also from inside its own callback', () => {
    const clock = new ManualClock(0);
    let count = 0;
    const timer: Timer = clock.setInterval(() => {
      count++;
      if (count === 3) timer.cancel();
    }, 10);
    clock.advance(1000);
    expect(count).toBe(3);
    expect(clock.pending).toBe(0);
  });

  it('a callback can cancel a later timer due in the same advance', () => {
    const clock = new ManualClock(0);
    const fired: string[] = [];
    const later = clock.setTimeout(() => fired.push('later'), 20);
    clock.setTimeout(() => {
      fired.push('first');
      later.cancel();
    }, 10);
    clock.advance(100);
    expect(fired).toEqual(['first']);
  });

  it('timers set from a callback count from the callback’s time and fire in the same advance when due', () => {
    const clock = new ManualClock(0);
    const fired: Array<[string, number]> = [];
    clock.setTimeout(() => {
      fired.push(['outer', clock.now()]);
      clock.setTimeout(() => fired.push(['inner', clock.now()]), 15);
      clock.setTimeout(() => fired.push(['too late', clock.now()]), 500);
    }, 10);
    clock.advance(100);
    expect(fired).toEqual([
      ['outer', 10],
      ['inner', 25],
    ]);
    expect(clock.pending).toBe(1);
    clock.advance(410);
    expect(fired.at(-1)).toEqual(['too late', 510]);
  });

  it('an interval of 0 does not spin: it repeats at least 1 ms apart', () => {
    const clock = new ManualClock(0);
    let count = 0;
    clock.setInterval(() => count++, 0);
    clock.advance(10);
    expect(count).toBeGreaterThanOrEqual(10);
    expect(count).toBeLessThanOrEqual(11);
  });
});

describe('systemClock', () => {
  const timers: Timer[] = [];
  afterEach(() => {
    for (const timer of timers.splice(0)) timer.cancel();
  });

  function after(ms: number): Promise<void> {
    return new Promise((resolve) => timers.push(systemClock.setTimeout(resolve, ms)));
  }

  it('now() is the wall clock', () => {
    const before = Date.now();
    const now = systemClock.now();
    expect(now).toBeGreaterThanOrEqual(before);
    expect(now).toBeLessThanOrEqual(Date.now());
  });

  it('a timeout fires, an interval repeats, cancel stops them', async () => {
    await after(5);
    let ticks = 0;
    await new Promise<void>((resolve) => {
      const interval = systemClock.setInterval(() => {
        ticks++;
        if (ticks === 3) {
          interval.cancel();
          resolve();
        }
      }, 2);
      timers.push(interval);
    });
    expect(ticks).toBe(3);
    let fired = false;
    systemClock.setTimeout(() => (fired = true), 1).cancel();
    await after(20);
    expect(fired).toBe(false);
    expect(ticks).toBe(3);
  });

  it('delays beyond what Node supports (e.g. 30d) do not fire after 1 ms', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      let fired = 0;
      const thirtyDays = 30 * 24 * 3600 * 1000;
      expect(thirtyDays).toBeGreaterThan(MAX_TIMER_DELAY_MS);
      timers.push(systemClock.setTimeout(() => fired++, thirtyDays));
      timers.push(systemClock.setInterval(() => fired++, thirtyDays));
      // Node turns an overflowing delay into 1 ms; this shorter timer fires well after that.
      await after(50);
      expect(fired).toBe(0);
      expect(warnings.filter((w) => w.name === 'TimeoutOverflowWarning')).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });
});
