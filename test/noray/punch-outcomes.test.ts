import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { PunchthroughOutcomes } from '../../src/fronts/noray/punch-outcomes.js';

describe('PunchthroughOutcomes', () => {
  it('counts a relay after a connect of the same pair within the window, once', () => {
    const clock = new ManualClock();
    const outcomes = new PunchthroughOutcomes(clock, 30_000);
    outcomes.punched('client', 'host');
    clock.advance(8_000);
    expect(outcomes.fellBack('other', 'host')).toBe(false);
    expect(outcomes.fellBack('client', 'other')).toBe(false);
    expect(outcomes.fellBack('client', 'host')).toBe(true);
    expect(outcomes.fellBack('client', 'host')).toBe(false);
  });

  it('does not count a relay asked for after the window', () => {
    const clock = new ManualClock();
    const outcomes = new PunchthroughOutcomes(clock, 30_000);
    outcomes.punched('client', 'host');
    clock.advance(30_000);
    expect(outcomes.fellBack('client', 'host')).toBe(false);
    expect(outcomes.size).toBe(0);
  });

  it('a repeated connect restarts the window; memory stays bounded whatever the rate', () => {
    const clock = new ManualClock();
    const outcomes = new PunchthroughOutcomes(clock, 30_000, 100);
    expect(outcomes.punched('client', 'host')).toBe(true);
    clock.advance(20_000);
    expect(outcomes.punched('client', 'host')).toBe(false);
    clock.advance(20_000);
    expect(outcomes.fellBack('client', 'host')).toBe(true);
    for (let i = 0; i < 10_000; i++) outcomes.punched(`client-${i}`, 'host');
    expect(outcomes.size).toBeLessThanOrEqual(100);
    // The newest pairs are kept, the oldest dropped.
    expect(outcomes.fellBack('client-9999', 'host')).toBe(true);
    expect(outcomes.fellBack('client-0', 'host')).toBe(false);
  });
});
