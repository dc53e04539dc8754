import { describe, expect, it } from 'vitest';
import {
  countOpenFiles,
  descriptorReserve,
  isDescriptorExhaustion,
  readOpenFileLimit,
  relayPortBudget,
  suggestedOpenFileLimit,
} from '../../src/core/open-files.js';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            1024                 524288               files
Max locked memory         8388608              8388608              bytes
`;

describe('open-file limit', () => {
  it('reads the soft limit from /proc/self/limits text', () => {
    expect(readOpenFileLimit(() => LIMITS)).toBe(1024);
    expect(readOpenFileLimit(() => LIMITS.replace('1024      ', 'unlimited '))).toBe(Number.POSITIVE_INFINITY);
    expect(readOpenFileLimit(() => 'no such line')).toBeNull();
    expect(
      readOpenFileLimit(() => {
        throw new Error('ENOENT');
      }),
    ).toBeNull();
  });

  it('reads this process’s real limit on Linux', () => {
    const limit = readOpenFileLimit();
    if (process.platform === 'linux') expect(limit).toBeGreaterThan(0);
    const open = countOpenFiles();
    if (process.platform === 'linux') expect(open).toBeGreaterThan(2);
  });

  it('keeps a quarter of the limit, at least 256, for connections; half of a tiny limit', () => {
    expect(descriptorReserve(1024)).toBe(256);
    expect(descriptorReserve(4096)).toBe(1024);
    expect(descriptorReserve(256)).toBe(128);
  });

  it('budgets relay ports under the limit, and not at all when the limit is unknown or unlimited', () => {
    expect(relayPortBudget(2049, 1024)).toEqual({ bind: 768, configured: 2049, limit: 1024, reserve: 256 });
    expect(relayPortBudget(2049, 4096).bind).toBe(2049);
    expect(relayPortBudget(2049, 100).bind).toBe(50);
    expect(relayPortBudget(2049, null)).toEqual({ bind: 2049, configured: 2049, limit: null, reserve: 0 });
    expect(relayPortBudget(2049, Number.POSITIVE_INFINITY).bind).toBe(2049);
  });

  it('suggests a power-of-two limit that holds every configured port', () => {
    expect(suggestedOpenFileLimit(2049)).toBe(4096);
    expect(suggestedOpenFileLimit(500)).toBe(1024);
    expect(suggestedOpenFileLimit(10_000)).toBe(16_384);
    for (const ports of [1, 768, 769, 2049, 3072, 3073]) expect(relayPortBudget(ports, suggestedOpenFileLimit(ports)).bind).toBe(ports);
  });

  it('knows EMFILE and ENFILE from other errors', () => {
    expect(isDescriptorExhaustion(Object.assign(new Error('x'), { code: 'EMFILE' }))).toBe(true);
    expect(isDescriptorExhaustion({ code: 'ENFILE' })).toBe(true);
    expect(isDescriptorExhaustion(Object.assign(new Error('x'), { code: 'EADDRINUSE' }))).toBe(false);
    expect(isDescriptorExhaustion(null)).toBe(false);
  });
});
